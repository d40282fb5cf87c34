import { readFileSync } from 'node:fs'
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises'
import { afterAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../src/logger.ts'
import { AgentHost } from '../src/score/host.ts'
import { FieldError } from '../src/util/field-error.ts'
import { loadSandboxedAgent, SandboxError, type SandboxedAgent, type SandboxLimits } from '../src/score/sandbox.ts'
import type { AgentDefinition, AgentPost, Score } from '../src/score/sdk.ts'
import { HOUR, post } from './support/builders.ts'

/**
 * Sandboxed agents: uploaded JavaScript in QuickJS, in a worker thread,
 * called synchronously. Every bound here is generous (a few times the
 * deadline) so a slow, busy two-core machine passes; what matters is that
 * nothing runs for as long as the hostile code would like.
 */

const DEADLINE = 200
const BOUND = DEADLINE * 5
const NOW = Date.parse('2026-11-22T12:00:00Z')

const source = (name: string) => readFileSync(new URL(`./fixtures/agents/${name}.js`, import.meta.url), 'utf8')

const opened: SandboxedAgent[] = []
afterAll(async () => {
  await Promise.all(opened.map((a) => a.close()))
})

async function load(src: string, limits?: Partial<SandboxLimits>): Promise<SandboxedAgent> {
  const a = await loadSandboxedAgent(src, limits)
  opened.push(a)
  return a
}

const hostFor = (def: AgentDefinition) => new AgentHost(new Map([[def.id, def]]), silentLogger)

function timed<T>(fn: () => T): { value: T; ms: number } {
  const t0 = performance.now()
  const value = fn()
  return { value, ms: performance.now() - t0 }
}

function thrown(fn: () => unknown): { err: SandboxError; ms: number } {
  const t0 = performance.now()
  try {
    fn()
  } catch (err) {
    return { err: err as SandboxError, ms: performance.now() - t0 }
  }
  throw new Error('expected a throw')
}

const TEXTS = [
  'Just watched the sunset from the pier, the sky was unreal tonight',
  'Sky blue, sky high — SKY! Nothing else to say about the sky today.',
  'Skyline photos from the rooftop bar 🌆 #city',
  'Reading about category theory on the train, send help',
  'Blue skies over Lisbon this morning, café and pastéis de nata ☀️',
  'the sky is falling? no, just the prices of eggs',
  '',
  'Who else is watching the game tonight? #football',
]

function posts(n: number): AgentPost[] {
  return Array.from({ length: n }, (_, i) =>
    post({
      text: TEXTS[i % TEXTS.length] + (i >= TEXTS.length ? ` (${i})` : ''),
      langs: i % 5 === 4 ? ['pt'] : ['en'],
      tags: TEXTS[i % TEXTS.length].includes('#') ? [TEXTS[i % TEXTS.length].split('#')[1]] : [],
      embed: i % 3 === 0 ? 'images' : null,
      replyParent: i % 4 === 1 ? 'at://did:plc:someone/app.bsky.feed.post/3kparent' : null,
      replyRoot: i % 4 === 1 ? 'at://did:plc:someone/app.bsky.feed.post/3kroot' : null,
      likeCount: i * 3,
      createdAt: NOW - (i % 24) * HOUR,
    }),
  )
}

describe('a well-behaved sandboxed agent', () => {
  it('loads with its metadata and a zod schema built from its JSON Schema', async () => {
    const a = await load(source('good-agent'))
    expect(a).toMatchObject({
      kind: 'sandboxed',
      id: 'word-count',
      version: '1.0.0',
      title: 'Word count',
      author: 'did:plc:fixtureauthor',
      api: 1,
      needs: ['text'],
    })
    expect(a.options.parse({})).toEqual({ word: 'sky', lengthWeight: 0.001, dropIfMissing: false })
    expect(a.sandboxStats().state).toBe('ready')
  })

  it('scores exactly like the same code run as plain JavaScript, in chunks of batchSize', async () => {
    const a = await load(source('good-agent'))
    const plain = (await import(new URL('./fixtures/agents/good-agent.js', import.meta.url).href)).default as {
      scoreBatch(p: AgentPost[], c: unknown): Score[]
    }
    const ps = posts(250)
    for (const raw of [{}, { word: 'SKY', lengthWeight: 0 }, { word: 'sunset', dropIfMissing: true }]) {
      const ctx = { options: a.options.parse(raw), now: NOW }
      const before = a.sandboxStats().chunks
      const got = a.scoreBatch(ps, ctx)
      expect(got).toEqual(plain.scoreBatch(ps, ctx))
      expect(a.sandboxStats().chunks - before).toBe(3)
    }
    const few = a.scoreBatch(ps.slice(0, 3), { options: a.options.parse({}), now: NOW })
    expect(few[0]).toBeCloseTo(1 + TEXTS[0].length * 0.001)
    expect(few[1]).toBeCloseTo(4 + TEXTS[1].length * 0.001)
    expect(few[2]).toBeCloseTo(TEXTS[2].length * 0.001) // "Skyline" is not "sky"
    expect(a.scoreBatch([], { options: a.options.parse({}), now: NOW })).toEqual([])
  })

  it('runs through AgentHost, which validates its options and names the bad field', async () => {
    const a = await load(source('good-agent'))
    const host = hostFor(a)
    const inst = host.instance(a.id, { word: 'sky' })
    const ps = posts(8)
    const scores = host.run(inst, ps, NOW)
    expect(scores).toHaveLength(8)
    expect(scores.every((s) => typeof s === 'number' && Number.isFinite(s))).toBe(true)
    expect(host.run(host.instance(a.id, { word: 'nowhere', dropIfMissing: true }), ps, NOW)).toEqual(new Array(8).fill('drop'))
    expect(host.stats.get(a.id)).toMatchObject({ strikes: 0, calls: 2 })

    const fieldOf = (opts: Record<string, unknown>) => {
      try {
        host.instance(a.id, opts)
      } catch (err) {
        expect(err).toBeInstanceOf(FieldError)
        return (err as FieldError).field
      }
      return null
    }
    expect(fieldOf({ word: '' })).toBe('agent.options.word')
    expect(fieldOf({ lengthWeight: 5 })).toBe('agent.options.lengthWeight')
    expect(fieldOf({ dropIfMissing: 'yes' })).toBe('agent.options.dropIfMissing')
    expect(fieldOf({ surprise: 1 })).toBe('agent.options')

    // as the catalog shows it
    const catalog = new AgentHost(new Map(), silentLogger)
    catalog.add(a, 'sandboxed')
    const [status] = catalog.describe()
    expect(status).toMatchObject({ id: 'word-count', kind: 'sandboxed', author: 'did:plc:fixtureauthor', needs: ['text'], status: 'active' })
    expect(status.options).toMatchObject({ type: 'object', properties: { word: { type: 'string', default: 'sky' } } })
  })

  it('sees only uri, createdAt and the fields its needs ask for', async () => {
    let n = 0
    const keysOf = async (needs: string[]) => {
      const a = await load(`export default {
        id: 'keys-${++n}', version: '1', title: 'Keys', description: 'Counts the keys it sees', api: 1, needs: ${JSON.stringify(needs)},
        scoreBatch(posts) { return posts.map(p => Object.keys(p).length) },
      }`)
      expect(a.scoreBatch(posts(2), { options: {}, now: NOW })).toHaveLength(2)
      return a.scoreBatch(posts(1), { options: {}, now: NOW })[0]
    }
    expect(await keysOf([])).toBe(2)
    expect(await keysOf(['text'])).toBe(3)
    expect(await keysOf(['engagement', 'author', 'reply'])).toBe(7)
    expect(await keysOf(['text', 'langs', 'tags', 'embed', 'reply', 'labels', 'author', 'engagement', 'time'])).toBe(13)
  })

  it('also loads from a plain script that sets globalThis.agent', async () => {
    const a = await load(`
      var helper = function (p) { return p.text.length }
      globalThis.agent = { id: 'script-agent', version: '0.1', title: 'Script', description: 'A classic script', api: 1, needs: ['text'],
        scoreBatch: function (posts) { return posts.map(helper) } }`)
    expect(a.id).toBe('script-agent')
    expect(a.options.parse({})).toEqual({})
    expect(a.scoreBatch(posts(2), { options: {}, now: NOW })).toEqual([TEXTS[0].length, TEXTS[1].length])
  })
})

describe('calls of several chunks (one round trip for all of them)', () => {
  const inline = (body: string) =>
    `export default { id: 'chunky', version: '1', title: 'Chunky', description: 'for tests', api: 1, needs: ['text'], scoreBatch(posts) { ${body} } }`

  it('a chunk that fails half way through a call fails the call, and the next call starts clean', async () => {
    const a = await load(inline("if (posts.some((p) => p.text === 'BOOM')) throw new Error('boom'); return posts.map((p) => p.text.length)"), { batchSize: 50 })
    const ps = posts(250)
    const bad = ps.map((p, i) => (i === 170 ? { ...p, text: 'BOOM' } : p))
    const { err } = thrown(() => a.scoreBatch(bad, { options: {}, now: NOW }))
    expect(err).toBeInstanceOf(SandboxError)
    expect(err.kind).toBe('threw')
    expect(err.message).toMatch(/boom/)
    expect(a.sandboxStats().failures.threw).toBe(1)
    // every chunk of the next call is scored, in order
    expect(a.scoreBatch(ps, { options: {}, now: NOW })).toEqual(ps.map((p) => p.text.length))
  })

  it('a call larger than the channel between the threads goes in several round trips', async () => {
    const a = await load(inline('return posts.map((p) => p.text.length)'))
    // 70 MB of payload, more than the 64 MiB the shared buffer may grow to
    const long = 'x'.repeat(9_990)
    const ps = posts(7000).map((p, i) => ({ ...p, text: `${long}${String(i).padStart(10, '0')}` }))
    const got = a.scoreBatch(ps, { options: {}, now: NOW })
    expect(got).toHaveLength(ps.length)
    expect(got.every((v) => v === 10_000)).toBe(true)
    expect(a.sandboxStats().failures.input).toBe(0)
  }, 60_000)

  it('chunks stream to the worker one after another: any chunk size arrives whole and in order', async () => {
    const a = await load(inline('return posts.map((p, i) => posts.length * 1000 + i + p.text.length / 1e6)'), { batchSize: 120 })
    const ps = posts(307)
    const want = ps.map((p, j) => {
      const size = j < 240 ? 120 : 67
      return size * 1000 + (j % 120) + p.text.length / 1e6
    })
    expect(a.scoreBatch(ps, { options: {}, now: NOW })).toEqual(want)
    expect(a.sandboxStats().chunks).toBe(3)
  })

  it('a later chunk of a streamed call still has its own deadline, and its output is still checked', async () => {
    const a = await load(
      inline(
        "if (posts.some((p) => p.text === 'LOOP')) for (;;) {} return posts.some((p) => p.text === 'SHORT') ? posts.slice(1).map(() => 1) : posts.map(() => 1)",
      ),
      { batchSize: 120 },
    )
    const ps = posts(360)
    const loop = thrown(() =>
      a.scoreBatch(
        ps.map((p, i) => (i === 250 ? { ...p, text: 'LOOP' } : p)),
        { options: {}, now: NOW },
      ),
    )
    expect(loop.err.kind).toBe('deadline')
    expect(loop.ms).toBeLessThan(BOUND + 1000)
    await a.whenReady(20_000)
    const short = thrown(() =>
      a.scoreBatch(
        ps.map((p, i) => (i === 130 ? { ...p, text: 'SHORT' } : p)),
        { options: {}, now: NOW },
      ),
    )
    expect(short.err.kind).toBe('output')
    expect(short.err.message).toBe('output has 119 entries for 120 posts')
    expect(a.scoreBatch(ps, { options: {}, now: NOW })).toEqual(ps.map(() => 1))
  })

  it('a single chunk larger than the channel is refused, and the sandbox answers the next call', async () => {
    const a = await load(
      `export default { id: 'whole', version: '1', title: 'Whole', description: 'for tests', api: 1, needs: ['text', 'candidates'], scoreBatch(posts) { return posts.map(() => 1) } }`,
    )
    const long = 'x'.repeat(9_990)
    const ps = posts(7000).map((p, i) => ({ ...p, text: `${long}${String(i).padStart(10, '0')}` }))
    const { err } = thrown(() => a.scoreBatch(ps, { options: {}, now: NOW }))
    expect(err.kind).toBe('input')
    expect(err.message).toMatch(/larger than/)
    await a.whenReady(20_000)
    expect(a.scoreBatch(posts(3), { options: {}, now: NOW })).toEqual([1, 1, 1])
  }, 60_000)

  it('is not cut off when its chunks together take longer than one chunk may', async () => {
    // each post costs a fixed amount of QuickJS work; measure a chunk on this machine first
    const work = 'return posts.map((p) => { let x = 0; for (let i = 0; i < 100000; i++) x = (x + i * 7) % 1000003; return x % 2 })'
    const probe = await load(inline(work), { batchSize: 10, deadlineMs: 10_000 })
    probe.scoreBatch(posts(10), { options: {}, now: NOW }) // the first call warms up
    // the slowest of a few chunks: one measured while the machine happened to be quiet would make the deadline tight
    const t = { ms: Math.max(...[1, 2, 3].map(() => timed(() => probe.scoreBatch(posts(10), { options: {}, now: NOW })).ms)) }
    // a deadline of 20 chunks' time (a chunk stays far inside it, even on a busy machine), and more chunks than
    // deadline + grace allow for one call
    const deadlineMs = Math.max(100, Math.ceil(20 * t.ms))
    const hard = deadlineMs + Math.max(200, deadlineMs)
    const chunks = Math.ceil((3 * hard) / Math.max(1, t.ms))
    const a = await load(inline(work), { batchSize: 10, deadlineMs })
    const ps = posts(10 * chunks)
    const r = timed(() => a.scoreBatch(ps, { options: {}, now: NOW }))
    expect(r.value).toHaveLength(ps.length)
    expect(r.ms).toBeGreaterThan(hard)
    expect(a.sandboxStats()).toMatchObject({ restarts: 0, state: 'ready' })
    expect(a.sandboxStats().failures.deadline).toBe(0)
  }, 60_000)
})

describe('answers cross back as float64s', () => {
  const inline = (body: string) =>
    `export default { id: 'answers', version: '1', title: 'Answers', description: 'for tests', api: 1, needs: ['text'], scoreBatch(posts, ctx) { ${body} } }`
  const mixed = [0, -0, 1.5, -2.25, 1e-300, 1.7976931348623157e308, Number.MIN_VALUE, null, 'drop', 42, 0.1 + 0.2]

  it('keeps every finite number exactly, null and "drop", also after the agent tampered with typed arrays', async () => {
    const a = await load(
      inline(`const out = ${JSON.stringify(mixed)}.map((v) => (v === null ? null : v === 'drop' ? 'drop' : Number(v)))
        out[1] = -0
        Object.defineProperty(Float64Array.prototype, '0', { set() {}, get() { return 7 }, configurable: true })
        Object.defineProperty(ArrayBuffer.prototype, 'byteLength', { get() { return 0 }, configurable: true })
        globalThis.Float64Array = function () { return [666] }
        globalThis.ArrayBuffer = function () { return {} }
        return out`),
    )
    for (let i = 0; i < 2; i++) {
      const got = a.scoreBatch(posts(mixed.length), { options: {}, now: NOW })
      expect(got).toEqual(mixed)
      expect(Object.is(got[1], -0)).toBe(true)
    }
  })

  it.each([
    ['-Infinity', 'return posts.map((p, i) => (i === 2 ? -Infinity : 1))', /^entry 2 is -Infinity, not a finite number, "drop" or null$/],
    ['a boolean', 'return posts.map((p, i) => (i === 0 ? true : 1))', /^entry 0 is a boolean, not a finite number/],
    ['a bigint', 'return posts.map((p, i) => (i === 1 ? 1n : 1))', /^entry 1 is a bigint/],
    ['"DROP"', "return posts.map((p, i) => (i === 1 ? 'DROP' : 1))", /^entry 1 is a string/],
    ['too many entries', 'return posts.map(() => 1).concat([1])', /^output has 4 entries for 3 posts$/],
    ['not an array', 'return new Float64Array(posts.length)', /^output is not an array \(got object\)$/],
  ])('refuses %s', async (_what, body, message) => {
    const a = await load(inline(body))
    const { err } = thrown(() => a.scoreBatch(posts(3), { options: {}, now: NOW }))
    expect(err.kind).toBe('output')
    expect(err.message).toMatch(message)
  })

  it('refuses an answer larger than maxOutputBytes (8 bytes a post)', async () => {
    const a = await load(inline('return posts.map(() => 1)'), { maxOutputBytes: 1024, batchSize: 200 })
    expect(a.scoreBatch(posts(128), { options: {}, now: NOW })).toHaveLength(128)
    const { err } = thrown(() => a.scoreBatch(posts(129), { options: {}, now: NOW }))
    expect(err.kind).toBe('output')
    expect(err.message).toBe('output is larger than 1024 bytes')
  })
})

describe('loading refuses', () => {
  const meta = (extra: string, body = 'scoreBatch(posts) { return posts.map(() => 1) }') =>
    `export default { id: 'bad-one', version: '1', title: 'T', description: 'D', api: 1, needs: ['text'], ${extra} ${body} }`

  it('an agent written for another SDK API', async () => {
    await expect(loadSandboxedAgent(source('wrong-api'))).rejects.toThrow('sandboxed agent wrong-api targets SDK API 99; this host speaks 1')
  })

  it.each([
    ['a bad id', meta("id: 'Bad_ID',"), /invalid id: must be 2-41 lower-case/],
    ['an unknown need', meta("needs: ['text', 'mind-reading'],"), /invalid needs\.1/],
    ['a missing title', meta('title: undefined,'), /invalid title/],
    ['a too-long description', meta(`description: ${JSON.stringify('x'.repeat(3000))},`), /invalid description/],
    ['options that are not an object schema', meta("options: { type: 'string' },"), /invalid options schema: must have "type": "object"/],
    [
      'regexes in the options schema',
      meta("options: { type: 'object', properties: { w: { type: 'string', pattern: '^(a+)+$' } } },"),
      /regular expressions are not allowed/,
    ],
    ['a bad prefilter', meta("prefilter: { media: ['holograms'] },"), /invalid prefilter\.media/],
    ['no scoreBatch', meta('', 'score() { return [] }'), /no scoreBatch function/],
    ['no agent at all', 'const x = 1', /no agent found/],
    ['a syntax error', 'export default { id: ', /failed to load: SyntaxError/],
    ['an import', "import fs from 'node:fs'\nexport default {}", /failed to load: .*could not load module/],
    ['a throw at load time', "throw new Error('nope')", /failed to load: Error: nope/],
  ])('%s', async (_what, src, message) => {
    await expect(loadSandboxedAgent(src)).rejects.toThrow(message)
  })

  it('a source over the size limit, before running any of it', async () => {
    await expect(loadSandboxedAgent(`// ${'x'.repeat(2000)}`, { maxSourceBytes: 1000 })).rejects.toThrow(/the source is 2003 bytes; the limit is 1000/)
  })

  it('bad limits', async () => {
    await expect(loadSandboxedAgent(source('good-agent'), { batchSize: 0 })).rejects.toThrow(/batchSize must be an integer from 1/)
    await expect(loadSandboxedAgent(source('good-agent'), { stackBytes: 64 * 1024 * 1024 })).rejects.toThrow(/stackBytes/)
  })

  it('an agent that loops at load time, within its load budget', async () => {
    const t0 = performance.now()
    await expect(loadSandboxedAgent('while (true) {}', { loadDeadlineMs: 100 })).rejects.toThrow("the agent's code failed to load: deadline exceeded (100 ms)")
    expect(performance.now() - t0).toBeLessThan(10_000) // includes starting the worker
  })
})

describe('hostile agents are contained', () => {
  const cases: { fixture: string; kind: string; message: RegExp; options?: Record<string, unknown>; safe?: boolean }[] = [
    { fixture: 'infinite-loop', kind: 'deadline', message: /^deadline exceeded: scoring 3 posts took longer than 200 ms$/, safe: true },
    { fixture: 'regex-bomb', kind: 'deadline', message: /^deadline exceeded/, safe: true },
    { fixture: 'alloc-bomb', kind: 'memory', message: /^memory limit exceeded \(32 MiB\)$/, safe: true },
    { fixture: 'stack-overflow', kind: 'stack', message: /^stack overflow \(256 KiB stack\)$/, safe: true },
    { fixture: 'throws', kind: 'threw', message: /^threw Error: boom: refused 3 posts$/ },
    { fixture: 'wrong-length', kind: 'output', message: /^output has 2 entries for 3 posts$/ },
    { fixture: 'non-numeric', kind: 'output', message: /^entry 1 is a string, not a finite number/ },
    { fixture: 'non-numeric', kind: 'output', message: /^entry 1 is NaN/, options: { kind: 'nan' } },
    { fixture: 'non-numeric', kind: 'output', message: /^entry 1 is Infinity/, options: { kind: 'infinity' } },
    { fixture: 'non-numeric', kind: 'output', message: /^entry 1 is an object/, options: { kind: 'object' } },
    { fixture: 'non-numeric', kind: 'output', message: /^entry 1 is undefined, not a finite number/, options: { kind: 'undefined' } },
  ]

  /** On a starved machine the worker may miss even the grace period and be killed instead: still a deadline, still bounded. */
  const KILLED = /^deadline exceeded: no answer within \d+ ms .*killed/

  it.each(cases.map((c) => ({ ...c, label: c.options ? `${c.fixture} ${JSON.stringify(c.options)}` : c.fixture })))(
    '$label: $kind, a strike, no opinion, bounded time',
    async ({ fixture, kind, message, options = {}, safe }) => {
      const a = await load(source(fixture))
      const host = hostFor(a)
      const inst = host.instance(a.id, options)
      const ps = posts(3)
      const matches = (text: string, prefix = '') => {
        if (kind === 'deadline' && KILLED.test(text.slice(prefix.length))) return true
        return new RegExp(`^${prefix}${message.source.replace(/^\^/, '')}`).test(text)
      }

      const direct = thrown(() => a.scoreBatch(ps, { options: inst.options, now: NOW }))
      expect(direct.err).toBeInstanceOf(SandboxError)
      expect(direct.err.kind).toBe(kind)
      expect(matches(direct.err.message), direct.err.message).toBe(true)
      expect(direct.ms).toBeLessThan(BOUND)
      await a.whenReady(20_000)

      const viaHost = timed(() => host.run(inst, ps, NOW))
      expect(viaHost.value).toEqual([null, null, null])
      expect(viaHost.ms).toBeLessThan(BOUND)
      const st = host.stats.get(a.id)!
      expect(st.strikes).toBe(1)
      expect(matches(st.lastError!, 'failed: '), st.lastError!).toBe(true)
      await a.whenReady(20_000)

      if (safe) {
        // the same sandbox, next batch: clean again
        const ok = host.run(host.instance(a.id, { safe: true }), ps, NOW)
        expect(ok).toEqual(fixture === 'alloc-bomb' ? [0, 0, 0] : [1, 1, 1]) // alloc-bomb: its hoard did not survive the reset
        expect(host.stats.get(a.id)!.strikes).toBe(1)
      }
      expect(a.sandboxStats().state).toBe('ready')
      if (kind !== 'deadline') expect(a.sandboxStats().restarts).toBe(0)
    },
  )

  it('a built-in that ignores the interrupt handler: the worker is killed and restarted', async () => {
    const a = await load(source('builtin-hang'))
    const host = hostFor(a)
    const ps = posts(3)
    const hang = timed(() => host.run(host.instance(a.id, {}), ps, NOW))
    expect(hang.value).toEqual([null, null, null])
    expect(hang.ms).toBeGreaterThanOrEqual(DEADLINE)
    expect(hang.ms).toBeLessThan(BOUND)
    expect(host.stats.get(a.id)!.lastError).toMatch(/^failed: deadline exceeded: no answer within 400 ms .* killed/)

    // until the new worker is up, calls fail at once instead of waiting
    const early = thrown(() => a.scoreBatch(ps, { options: { safe: true }, now: NOW }))
    expect(['restarting', 'deadline']).toContain(early.err.kind)
    expect(early.ms).toBeLessThan(BOUND)

    await a.whenReady(20_000)
    expect(a.scoreBatch(ps, { options: { safe: true }, now: NOW })).toEqual([1, 1, 1])
    expect(a.sandboxStats().restarts).toBe(1)
  })

  it('a Promise is not an answer', async () => {
    const a = await load(`export default { id: 'async-agent', version: '1', title: 'Async', description: 'd', api: 1, needs: [],
      async scoreBatch(posts) { return posts.map(() => 1) } }`)
    expect(thrown(() => a.scoreBatch(posts(2), { options: {}, now: NOW })).err.message).toMatch(/output is not an array \(got a Promise/)
  })

  it('nothing escapes, and tampering inside the VM does not reach the host', async () => {
    const a = await load(source('escape-attempt'))
    const host = hostFor(a)
    const inst = host.instance(a.id, {})
    const ps = posts(5)
    // twice: the second batch runs after the agent replaced JSON, Array, prototypes… inside its VM
    expect(host.run(inst, ps, NOW)).toEqual([0, 0, 0, 0, 0])
    expect(host.run(inst, ps, NOW + 1000)).toEqual([0, 0, 0, 0, 0])
    expect(host.stats.get(a.id)!.strikes).toBe(0)

    // Node's own objects are untouched
    const probe: Record<string, unknown> = {}
    expect(probe.polluted).toBeUndefined()
    expect(Object.hasOwn(Object.prototype, 'toJSON')).toBe(false)
    expect(([] as unknown as Record<string, unknown>).polluted).toBeUndefined()
    expect(Array.isArray([])).toBe(true)
    expect([1, 2].join('+')).toBe('1+2')
    expect(JSON.parse('[1]')).toEqual([1])
    expect(JSON.stringify({ a: 1 })).toBe('{"a":1}')
    expect((5).toString()).toBe('5')
    expect('abc'.slice(1)).toBe('bc')
    expect(typeof process.exit).toBe('function')
  })
})

describe('the host keeps serving', () => {
  it('a good agent works after hostile ones', async () => {
    const a = await load(source('good-agent'))
    const host = hostFor(a)
    const ps = posts(20)
    expect(host.run(host.instance(a.id, {}), ps, NOW).every((s) => typeof s === 'number')).toBe(true)
    expect(host.stats.get(a.id)!.strikes).toBe(0)
  })

  it('a looping agent stalls the event loop for about its deadline per call, no more', async () => {
    // scoreBatch is synchronous, so the calling thread waits; the deadline bounds that wait
    const a = await load(source('infinite-loop'))
    const host = hostFor(a)
    const inst = host.instance(a.id, {})
    const ps = posts(10)
    const gaps: number[] = []
    let last = performance.now()
    const iv = setInterval(() => {
      const t = performance.now()
      gaps.push(t - last)
      last = t
    }, 5)
    try {
      await sleep(30)
      for (let i = 0; i < 3; i++) {
        const r = timed(() => host.run(inst, ps, NOW))
        expect(r.value.every((s) => s === null)).toBe(true)
        expect(r.ms).toBeLessThan(BOUND)
        await sleep(20) // the loop gets to serve other work between calls
      }
    } finally {
      clearInterval(iv)
    }
    expect(host.stats.get(a.id)!.strikes).toBe(3)
    const worst = Math.max(...gaps)
    expect(worst).toBeGreaterThanOrEqual(DEADLINE * 0.9) // the stall is real…
    expect(worst).toBeLessThan(BOUND) // …and bounded
    expect(gaps.filter((g) => g < DEADLINE / 2).length).toBeGreaterThan(3) // and ticks ran in between
  })

  it('a timer due during a hung call fires within deadline + margin', async () => {
    const a = await load(source('builtin-hang'))
    const host = hostFor(a)
    const t0 = performance.now()
    const fired = new Promise<number>((resolve) => setTimeout(() => resolve(performance.now() - t0), 5))
    await tick()
    host.run(host.instance(a.id, {}), posts(3), NOW)
    expect(await fired).toBeLessThan(BOUND)
  })

  it('honours a shorter deadline and a smaller memory limit', async () => {
    const loop = await load(source('infinite-loop'), { deadlineMs: 50 })
    const r = thrown(() => loop.scoreBatch(posts(2), { options: { safe: false }, now: NOW }))
    expect(r.err.kind).toBe('deadline')
    expect(r.err.message).toMatch(/^deadline exceeded: (scoring 2 posts took longer than 50 ms$|no answer within 250 ms)/)
    expect(r.ms).toBeLessThan(BOUND)

    const bomb = await load(source('alloc-bomb'), { memoryBytes: 8 * 1024 * 1024 })
    expect(thrown(() => bomb.scoreBatch(posts(2), { options: { safe: false }, now: NOW })).err.message).toBe('memory limit exceeded (8 MiB)')
  })

  it('a closed sandbox refuses calls', async () => {
    const a = await loadSandboxedAgent(source('good-agent'))
    await a.close()
    expect(thrown(() => a.scoreBatch(posts(1), { options: a.options.parse({}), now: NOW })).err.kind).toBe('closed')
    expect(a.sandboxStats().state).toBe('closed')
  })
})
