import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { post } from '../../test/support/builders.ts'
import { silentLogger } from '../logger.ts'
import { AgentHost } from './host.ts'
import { checkScores } from './scores.ts'
import { defineAgent, DROP, type AgentDefinition } from './sdk.ts'

const agent = (id: string, scoreBatch: AgentDefinition['scoreBatch'], api = 1) =>
  defineAgent({ id, version: '1.0.0', title: id, description: id, api, options: z.object({}), needs: ['text'], scoreBatch })

describe('AgentHost', () => {
  const bad = new Map<string, AgentDefinition>([
    [
      'thrower',
      agent('thrower', () => {
        throw new Error('boom')
      }),
    ],
    ['short', agent('short', () => [1])],
    ['nan', agent('nan', (ps) => ps.map(() => Number.NaN))],
    ['words', agent('words', (ps) => ps.map(() => 'high' as never))],
    ['good', agent('good', (ps) => ps.map((_, i) => (i === 0 ? DROP : i)))],
  ])
  const host = new AgentHost(bad, silentLogger)
  const posts = [post(), post(), post()]

  it('turns a crash or bad output into a strike and no opinion, never an exception', () => {
    for (const id of ['thrower', 'short', 'nan', 'words']) {
      expect(host.run(host.instance(id), posts, 0)).toEqual([null, null, null])
      expect(host.stats.get(id)?.strikes).toBe(1)
    }
    expect(host.stats.get('thrower')?.lastError).toMatch(/boom/)
    expect(host.stats.get('short')?.lastError).toMatch(/1 entries for 3 posts/)
  })

  it('passes good output through and counts calls', () => {
    expect(host.run(host.instance('good'), posts, 0)).toEqual([DROP, 1, 2])
    expect(host.stats.get('good')).toMatchObject({ calls: 1, posts: 3, strikes: 0 })
  })

  it('gives ranking the same scores as a typed column, and the same strikes for bad output', () => {
    const cols = new AgentHost(new Map([...bad, ['nulls', agent('nulls', (ps) => ps.map((_, i) => (i === 1 ? null : -0.5)))]]), silentLogger)
    expect([...cols.runColumn(cols.instance('good'), posts, 0)]).toEqual([-Infinity, 1, 2])
    expect([...cols.runColumn(cols.instance('nulls'), posts, 0)]).toEqual([-0.5, NaN, -0.5])
    for (const id of ['thrower', 'short', 'nan', 'words']) {
      expect([...cols.runColumn(cols.instance(id), posts, 0)]).toEqual([NaN, NaN, NaN])
      expect(cols.stats.get(id)?.strikes).toBe(1)
    }
    expect(cols.stats.get('good')).toMatchObject({ calls: 1, posts: 3, strikes: 0 })
  })

  it('checks what an agent scoring columns returns like any other output, and never calls it with a prefilter', () => {
    const columnar = (id: string, scoreColumns: NonNullable<AgentDefinition['scoreColumns']>, extra: Partial<AgentDefinition> = {}) =>
      defineAgent({ ...agent(id, (ps) => ps.map(() => 1)), needs: ['time'], scoreColumns, ...extra })
    const host = new AgentHost(
      new Map([
        ['ok', columnar('ok', (c) => Float64Array.from(c.createdAt, (t, i) => (i === 0 ? -Infinity : i === 1 ? NaN : t / 1000)))],
        ['plain', columnar('plain', (c) => [...c.createdAt] as never)],
        ['long', columnar('long', (c) => new Float64Array(c.length + 1))],
        ['inf', columnar('inf', (c) => new Float64Array(c.length).fill(Infinity))],
        [
          'throws',
          columnar('throws', () => {
            throw new Error('kaboom')
          }),
        ],
        [
          'filtered',
          columnar(
            'filtered',
            () => {
              throw new Error('must not be called')
            },
            { prefilter: { langs: ['en'] } },
          ),
        ],
      ]),
      silentLogger,
    )
    const cols = { length: 3, createdAt: Float64Array.of(1000, 2000, 3000), likeCount: new Float64Array(3), repostCount: new Float64Array(3) }
    expect([...host.runColumns(host.instance('ok'), cols, 0)!]).toEqual([-Infinity, NaN, 3])
    for (const [id, why] of [
      ['plain', /not a Float64Array/],
      ['long', /4 entries for 3 posts/],
      ['inf', /entry 0/],
      ['throws', /kaboom/],
    ] as const) {
      expect([...host.runColumns(host.instance(id), cols, 0)!]).toEqual([NaN, NaN, NaN])
      expect(host.stats.get(id)).toMatchObject({ strikes: 1, lastError: expect.stringMatching(why) })
    }
    expect(host.runColumns(host.instance('filtered'), cols, 0)).toBeNull()
    expect(host.stats.get('ok')).toMatchObject({ calls: 1, posts: 3, strikes: 0 })
  })

  it('refuses an agent built for another SDK API version', () => {
    expect(() => new AgentHost(new Map([['old', agent('old', () => [], 0)]]), silentLogger)).toThrow(/SDK API 0/)
  })

  it('gives equal options the same instance key and different options different keys', () => {
    const h = new AgentHost(
      new Map([['kk', defineAgent({ ...agent('kk', () => []), options: z.object({ a: z.number().optional(), b: z.number().optional() }) })]]),
      silentLogger,
    )
    expect(h.instance('kk', { a: 1, b: 2 }).key).toBe(h.instance('kk', { b: 2, a: 1 }).key)
    expect(h.instance('kk', { a: 1 }).key).not.toBe(h.instance('kk', { a: 2 }).key)
  })
})

describe('AgentHost prefilters, strikes and asynchronous agents', () => {
  it('calls an agent only with posts that pass its prefilter; the rest get no opinion', () => {
    const seen: string[] = []
    const def = { ...agent('english-only', (ps) => ps.map((p) => (seen.push(p.uri), 1))), prefilter: { langs: ['en'], replies: 'exclude' as const } }
    const h = new AgentHost(new Map([[def.id, def]]), silentLogger)
    const posts = [
      post({ langs: ['en'] }),
      post({ langs: ['ja'] }),
      post({ langs: ['en'], replyParent: 'at://x/app.bsky.feed.post/1', replyRoot: 'at://x/app.bsky.feed.post/1' }),
      post({ langs: ['en', 'de'] }),
    ]
    expect(h.run(h.instance(def.id), posts, 0)).toEqual([1, null, null, 1])
    expect(seen).toEqual([posts[0].uri, posts[3].uri])
  })

  it('disables an agent after repeated strikes, reports why, and stops calling it', () => {
    let calls = 0
    const disabled: string[] = []
    const def = agent('flaky', () => {
      calls++
      throw new Error('kaput')
    })
    const h = new AgentHost(new Map([[def.id, def]]), silentLogger, { strikeLimit: 3, onDisable: (id) => disabled.push(id) })
    const inst = h.instance(def.id)
    for (let i = 0; i < 5; i++) expect(h.run(inst, [post()], 0)).toEqual([null])
    expect(calls).toBe(3)
    expect(disabled).toEqual(['flaky'])
    const status = h.describe().find((a) => a.id === 'flaky')!
    expect(status.status).toBe('disabled')
    expect(status.reason).toMatch(/3 strikes.*kaput/)
    h.enable('flaky')
    h.run(inst, [post()], 0)
    expect(calls).toBe(4)
  })

  it('awaits an asynchronous agent within the deadline, and gives no opinion when it is late', async () => {
    const slow = {
      ...agent('slow', () => []),
      scoreBatch: undefined,
      scoreBatchAsync: (ps: unknown[]) => new Promise<number[]>((r) => setTimeout(() => r(ps.map(() => 1)), 500)),
    }
    const fast = { ...slow, id: 'fast', scoreBatchAsync: async (ps: unknown[]) => ps.map(() => 2) }
    const h = new AgentHost(
      new Map<string, any>([
        ['slow', slow],
        ['fast', fast],
      ]),
      silentLogger,
      { asyncDeadlineMs: 100 },
    )
    expect(await h.runAsync(h.instance('fast'), [post(), post()], 0)).toEqual([2, 2])
    const t0 = Date.now()
    expect(await h.runAsync(h.instance('slow'), [post()], 0)).toEqual([null])
    expect(Date.now() - t0).toBeLessThan(450)
    expect(h.stats.get('slow')?.lastError).toMatch(/deadline/)
    // at rank time (synchronous) an asynchronous agent is never called
    expect(h.run(h.instance('fast'), [post()], 0)).toEqual([null])
  })

  it('describes every agent with a JSON Schema of its options', () => {
    const keywordLike = defineAgent({ ...agent('kw', () => []), options: z.object({ include: z.array(z.string()).default([]) }) })
    const h = new AgentHost(new Map([[keywordLike.id, keywordLike]]), silentLogger)
    const d = h.describe()[0]
    expect(d).toMatchObject({ id: 'kw', kind: 'builtin', status: 'active', options: { type: 'object', properties: { include: { type: 'array' } } } })
  })
})

describe('checkScores', () => {
  it('accepts numbers, drop and null; rejects everything else', () => {
    expect(checkScores([1, -2.5, DROP, null], 4)).toBeNull()
    expect(checkScores([Infinity], 1)).toMatch(/entry 0/)
    expect(checkScores({ length: 1 }, 1)).toMatch(/not an array/)
  })
})

describe('AgentHost instances', () => {
  const withOption = defineAgent({
    id: 'opt',
    version: '1.0.0',
    title: 'opt',
    description: 'opt',
    api: 1,
    options: z.object({ n: z.number() }),
    needs: ['text'],
    scoreBatch: (ps) => ps.map(() => 1),
  })

  it('remembers at most maxInstances, forgetting the least recently used first', () => {
    const host = new AgentHost(new Map([['opt', withOption]]), silentLogger, { maxInstances: 64 })
    const first = host.instance('opt', { n: 0 })
    for (let n = 1; n < 200; n++) {
      host.instance('opt', { n })
      // the first one is used all along: it stays
      expect(host.instance('opt', { n: 0 })).toBe(first)
      expect(host.instanceCount).toBeLessThanOrEqual(64)
    }
    expect(host.instanceCount).toBe(64)
    // one used long ago was forgotten: asked again, it is a new (equal) object
    const again = host.instance('opt', { n: 1 })
    expect(again.key).toBe(host.instance('opt', { n: 1 }).key)
    expect(host.instance('opt', { n: 0 })).toBe(first)
  })

  it('keeps nothing of an instance made with keep: false, and still returns one it remembers', () => {
    const host = new AgentHost(new Map([['opt', withOption]]), silentLogger)
    const kept = host.instance('opt', { n: 1 })
    const before = host.instanceCount
    for (let n = 2; n < 100; n++) expect(host.instance('opt', { n }, 'agent', { keep: false }).options).toEqual({ n })
    expect(host.instanceCount).toBe(before)
    expect(host.instance('opt', { n: 1 }, 'agent', { keep: false })).toBe(kept)
    expect(() => host.instance('opt', { n: 'x' }, 'agents.0', { keep: false })).toThrow(/agents\.0\.options\.n/)
  })
})
