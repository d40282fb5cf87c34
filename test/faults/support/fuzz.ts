/**
 * Hostile Jetstream input: fuzzed lines of many kinds, each with what a
 * correct ingest must do with it — reject it (and keep it in
 * `rejected_events`): anything that cannot become a sound event (not JSON,
 * wrong types, identifiers that break the atproto syntax: DIDs, record keys,
 * CIDs, at-uris, unpaired surrogates, over-long text); ignore it (a kind or
 * collection Skysift does not use); or accept it (odd but harmless: unknown
 * fields, unknown embed types, text with replacement characters, a clock in
 * the future), after which it must be stored. The verdicts are written from
 * the Jetstream wire format and the atproto specs, not read off Skysift's
 * decoder; the scenario checks the running chain against them.
 */
import fs from 'node:fs'
import { syntheticEvents } from '../../../src/ingest/synthetic.ts'
import { rng } from './rng.ts'

export type Verdict = 'reject' | 'ignore' | 'accept'

export interface FuzzLine {
  kind: string
  verdict: Verdict
  bytes: Buffer
}

const B32 = 'abcdefghijklmnopqrstuvwxyz234567'
const S32 = '234567abcdefghijklmnopqrstuvwxyz'

/** `clock`: the stream's current time_us (fuzz lines take the time of the valid events around them) */
export function fuzzer(seed: number, clock: () => number = () => Date.now() * 1000) {
  const r = rng(seed)
  let serial = 0
  const str = (alphabet: string, n: number) => Array.from({ length: n }, () => alphabet[r.int(alphabet.length)]).join('')
  // a "9" never appears in a real or synthetic did:plc (base32), so these authors are told apart
  const did = () => `did:plc:fz99${str(B32, 20)}`
  const tid = () => `3${str(S32, 12)}`
  const cid = () => `bafyrei${str(B32, 52)}`
  const nowUs = () => clock() + serial++
  const iso = () => new Date(Math.floor(clock() / 1000)).toISOString()
  const commit = (collection: string, record: unknown, over: Record<string, unknown> = {}, envelope: Record<string, unknown> = {}) => ({
    did: did(),
    time_us: nowUs(),
    kind: 'commit',
    commit: { rev: tid(), operation: 'create', collection, rkey: tid(), record, cid: cid(), ...over },
    ...envelope,
  })
  const post = (rec: Record<string, unknown> = {}) => ({ $type: 'app.bsky.feed.post', createdAt: iso(), text: 'fuzz: an ordinary post', ...rec })
  const strongRef = (uri: string) => ({ uri, cid: cid() })
  const postUri = () => `at://${did()}/app.bsky.feed.post/${tid()}`
  const deep = (n: number, leaf: unknown = 1): unknown => {
    let v: unknown = leaf
    for (let i = 0; i < n; i++) v = i % 2 ? [v] : { x: v }
    return v
  }
  const deepText = (n: number) => '['.repeat(n) + ']'.repeat(n)
  const line = (kind: string, verdict: Verdict, v: unknown): FuzzLine => ({
    kind,
    verdict,
    bytes: Buffer.from(typeof v === 'string' ? v : JSON.stringify(v), 'utf8'),
  })
  const raw = (kind: string, verdict: Verdict, b: Buffer): FuzzLine => ({ kind, verdict, bytes: b })
  const hugeLine = () => JSON.stringify(commit('app.bsky.feed.post', post({ text: 'x'.repeat(1_000_100) })))

  /** [weight, generator] — rare kinds (1 MB lines) carry small weights */
  const kinds: [number, () => FuzzLine][] = [
    // -- malformed JSON ------------------------------------------------------
    [
      6,
      () => {
        const s = JSON.stringify(commit('app.bsky.feed.post', post()))
        return line('truncated JSON', 'reject', s.slice(0, 1 + r.int(s.length - 2)))
      },
    ],
    [3, () => line('garbage text', 'reject', `${str('abcdefghij<>{}[]:;,"\'\\/ ', 1 + r.int(60)).replace(/^\s+/, '')}x`)],
    [
      2,
      () =>
        raw(
          'random bytes',
          'reject',
          Buffer.concat([
            Buffer.from('x'),
            Buffer.from(
              Array.from({ length: 1 + r.int(200) }, () => {
                const b = r.int(256)
                return b === 10 || b === 13 ? 32 : b
              }),
            ),
          ]),
        ),
    ],
    [2, () => line('JSON with trailing garbage', 'reject', `${JSON.stringify(commit('app.bsky.feed.post', post()))}}}`)],
    [2, () => line('JSON scalar or array', 'reject', r.pick(['42', '"a string"', 'null', 'true', '[]', '[1,2,3]', '-0', '1e999']))],
    [1, () => line('deeply nested array', 'reject', deepText(5000 + r.int(100_000)))],
    [1, () => line('deeply nested object', 'reject', JSON.stringify(deep(1000 + r.int(2000))))],
    // -- wrong types in the envelope ------------------------------------------
    [
      3,
      () =>
        line('bad time_us', 'reject', {
          ...commit('app.bsky.feed.post', post()),
          time_us: r.pick<unknown>(['123', -5, 0, 1.5, null, 2 ** 53 + 2, 1e300, [], {}, true]),
        }),
    ],
    [
      1,
      () =>
        line(
          'giant number literal',
          'reject',
          JSON.stringify(commit('app.bsky.feed.post', post())).replace(/"time_us":\d+/, `"time_us":${'9'.repeat(400 + r.int(2000))}`),
        ),
    ],
    [2, () => line('unknown kind', 'reject', { ...commit('app.bsky.feed.post', post()), kind: r.pick<unknown>(['frobnicate', 42, null, '', 'COMMIT']) })],
    [2, () => line('commit not an object', 'reject', { ...commit('app.bsky.feed.post', post()), commit: r.pick<unknown>(['a commit', null, 42, []]) })],
    [2, () => line('account not an object', 'reject', { did: did(), time_us: nowUs(), kind: 'account', account: r.pick<unknown>([null, 'active', 7]) })],
    [
      2,
      () =>
        line('account active not a boolean', 'reject', {
          did: did(),
          time_us: nowUs(),
          kind: 'account',
          account: { active: r.pick<unknown>(['true', 1, null, deep(50)]), did: did(), seq: 1, time: iso() },
        }),
    ],
    // -- bad identifiers -------------------------------------------------------
    [
      3,
      () =>
        line('bad DID', 'reject', {
          ...commit('app.bsky.feed.post', post()),
          did: r.pick<unknown>(['did:PLC:abc', 'did:', 'plc:abc', `did:plc:${'a'.repeat(2100)}`, 'did:plc:ab cd', 42, null, 'did:plc:a/b']),
        }),
    ],
    [
      3,
      () =>
        line(
          'bad rkey',
          'reject',
          commit('app.bsky.feed.post', post(), { rkey: r.pick<unknown>(['', 'a/b', 'x'.repeat(600), 'has space', 12, null, '..', '.', '\u00e9t\u00e9']) }),
        ),
    ],
    [
      2,
      () =>
        line('bad collection type', 'reject', commit('app.bsky.feed.post', post(), { collection: r.pick<unknown>([42, null, ['app.bsky.feed.post'], {}]) })),
    ],
    [
      3,
      () =>
        line(
          'bad CID',
          'reject',
          commit('app.bsky.feed.post', post(), { cid: r.pick<unknown>(['', 'bafy', 'bafyrei!!!!!!!!', 'b'.repeat(201), 42, null, 'bafy rei']) }),
        ),
    ],
    [
      2,
      () =>
        line(
          'bad operation',
          'reject',
          commit(
            'app.bsky.feed.like',
            { $type: 'app.bsky.feed.like', createdAt: iso(), subject: strongRef(postUri()) },
            { operation: r.pick<unknown>(['upsert', '', 42, null]) },
          ),
        ),
    ],
    [2, () => line('record not an object', 'reject', commit('app.bsky.feed.post', r.pick<unknown>(['text', [1, 2], null, 42])))],
    // -- bad records ------------------------------------------------------------
    [2, () => line('post text not a string', 'reject', commit('app.bsky.feed.post', post({ text: r.pick<unknown>([42, null, ['a'], { t: 1 }]) })))],
    [2, () => line('post text too long', 'reject', commit('app.bsky.feed.post', post({ text: 'y'.repeat(10_001 + r.int(50_000)) })))],
    [
      3,
      () =>
        line(
          'lone surrogate in text',
          'reject',
          JSON.stringify(commit('app.bsky.feed.post', post({ text: 'before LONE after' }))).replace(
            'LONE',
            r.pick(['\\ud800', '\\udfff', '\\ud83d x', 'x \\udc00']),
          ),
        ),
    ],
    [
      2,
      () =>
        line(
          'bad createdAt',
          'reject',
          commit('app.bsky.feed.post', post({ createdAt: r.pick<unknown>(['yesterday', '', 1700000000, null, '2024-13-45T99:99:99Z']) })),
        ),
    ],
    [
      2,
      () =>
        line(
          'bad langs',
          'reject',
          commit('app.bsky.feed.post', post({ langs: r.pick<unknown>(['en', [1], [''], Array(9).fill('en'), ['x'.repeat(64)], { 0: 'en' }]) })),
        ),
    ],
    [
      2,
      () =>
        line(
          'bad reply refs',
          'reject',
          commit(
            'app.bsky.feed.post',
            post({
              reply: r.pick<unknown>([
                'reply',
                { root: strongRef('http://example.com/x'), parent: strongRef(postUri()) },
                { root: strongRef(postUri()) },
                { root: { uri: 42 }, parent: { uri: 42 } },
              ]),
            }),
          ),
        ),
    ],
    [2, () => line('embed without $type', 'reject', commit('app.bsky.feed.post', post({ embed: r.pick<unknown>([{}, 'embed', { images: [] }, 42]) })))],
    [
      3,
      () =>
        line(
          'bad like subject',
          'reject',
          commit('app.bsky.feed.like', {
            $type: 'app.bsky.feed.like',
            createdAt: iso(),
            subject: r.pick<unknown>([
              undefined,
              null,
              'at://x',
              { uri: 'at://notadid/app.bsky.feed.post/1' },
              { uri: 'https://bsky.app/profile/x/post/1' },
              { uri: deep(30) },
            ]),
          }),
        ),
    ],
    [
      2,
      () =>
        line(
          'bad follow subject',
          'reject',
          commit('app.bsky.graph.follow', {
            $type: 'app.bsky.graph.follow',
            createdAt: iso(),
            subject: r.pick<unknown>(['alice.bsky.social', 42, null, `did:plc:${'b'.repeat(2100)}`]),
          }),
        ),
    ],
    [
      2,
      () =>
        line(
          'bad block subject',
          'reject',
          commit('app.bsky.graph.block', {
            $type: 'app.bsky.graph.block',
            createdAt: iso(),
            subject: r.pick<unknown>(['alice.bsky.social', 42, null, { did: did() }]),
          }),
        ),
    ],
    [
      2,
      () =>
        line(
          'bad mix record',
          'reject',
          commit('app.skysift.feed.mix', {
            $type: 'app.skysift.feed.mix',
            createdAt: iso(),
            feed: `at://${did()}/app.bsky.feed.generator/fresh`,
            agents: r.pick<unknown>([
              [{ agent: 'recency', weight: 1e308 }],
              [{ agent: 'recency', weight: 1.5 }],
              Array(17).fill({ agent: 'recency', weight: 1 }),
              [{ agent: 'recency', weight: 1, options: deep(40) }],
              'recency',
              [{ agent: '', weight: 1 }],
            ]),
          }),
        ),
    ],
    // -- encoding -----------------------------------------------------------------
    [
      3,
      () =>
        raw(
          'invalid UTF-8 outside strings',
          'reject',
          Buffer.concat([Buffer.from([0xff, 0xfe, 0xc0]), Buffer.from(JSON.stringify(commit('app.bsky.feed.post', post())))]),
        ),
    ],
    [0.05, () => line('line over 1 MB', 'reject', hugeLine())],
    // -- ignored: valid input Skysift does not use ----------------------------------
    [
      3,
      () =>
        line('identity event', 'ignore', {
          did: did(),
          time_us: nowUs(),
          kind: 'identity',
          identity: { did: did(), handle: 'fuzz.example.com', seq: 1, time: iso() },
        }),
    ],
    [
      3,
      () =>
        line(
          'unknown collection',
          'ignore',
          commit(
            r.pick(['app.bsky.feed.threadgate', 'app.bsky.feed.postgate', 'com.example.fuzz.thing', 'app.bsky.graph.starterpack']),
            r.pick<unknown>([{ anything: deep(500) }, { big: 1e308 }, { text: 'z'.repeat(20_000) }]),
          ),
        ),
    ],
    // -- accepted: odd but valid ------------------------------------------------------
    [
      3,
      () => {
        const s = JSON.stringify(commit('app.bsky.feed.post', post({ text: 'bad bytes here: MARK end' })))
        const [a, b] = s.split('MARK')
        return raw(
          'invalid UTF-8 inside text',
          'accept',
          Buffer.concat([Buffer.from(a), Buffer.from(r.pick([[0xff], [0xc3, 0x28], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0xed, 0xa0, 0x80]])), Buffer.from(b)]),
        )
      },
    ],
    [
      2,
      () =>
        line(
          'odd but valid text',
          'accept',
          commit(
            'app.bsky.feed.post',
            post({
              text: r.pick([
                'NUL \u0000 inside',
                '\u202egnp.exe',
                'emoji 👩‍👩‍👧‍👦🏳️‍🌈',
                'zalgo z̷̢̛a̶͇͝l̵̰̈g̸̱̈́o',
                '<script>alert(1)</script>',
                "'; DROP TABLE posts; --",
                '',
              ]),
            }),
          ),
        ),
    ],
    [1, () => line('text at the size limit', 'accept', commit('app.bsky.feed.post', post({ text: 'w'.repeat(10_000) })))],
    [
      2,
      () =>
        line(
          'createdAt far in the future',
          'accept',
          commit('app.bsky.feed.post', post({ createdAt: r.pick(['2999-01-01T00:00:00.000Z', '9999-12-31T23:59:59Z']) })),
        ),
    ],
    [
      2,
      () =>
        line(
          'unknown fields, deep and huge',
          'accept',
          JSON.stringify(commit('app.bsky.feed.post', post({ extra: deep(1000), big: 1e308, neg: -1e308 }))).replace(
            '"extra":',
            '"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"extra":',
          ),
        ),
    ],
    [2, () => line('unknown embed type', 'accept', commit('app.bsky.feed.post', post({ embed: { $type: 'com.example.embed.weird', payload: deep(100) } })))],
    [
      2,
      () =>
        line(
          'quote of a bad uri',
          'accept',
          commit('app.bsky.feed.post', post({ embed: { $type: 'app.bsky.embed.record', record: { uri: 'not-a-uri', cid: 'x' } } })),
        ),
    ],
    [
      2,
      () => line('delete of an unknown record', 'accept', commit('app.bsky.feed.post', undefined, { operation: 'delete', record: undefined, cid: undefined })),
    ],
    [
      2,
      () =>
        line(
          'like of an unknown post',
          'accept',
          commit('app.bsky.feed.like', { $type: 'app.bsky.feed.like', createdAt: iso(), subject: strongRef(postUri()) }),
        ),
    ],
  ]
  const total = kinds.reduce((s, [w]) => s + w, 0)
  return {
    next(): FuzzLine {
      let x = r.next() * total
      for (const [w, g] of kinds) {
        x -= w
        if (x < 0) return g()
      }
      return kinds[0][1]()
    },
    /** a few of each kind first, so even a short run covers them all */
    all(): FuzzLine[] {
      return kinds.map(([, g]) => g())
    },
  }
}

export interface FuzzFile {
  lines: number
  fuzz: number
  valid: number
  byKind: Record<string, number>
  expected: { reject: number; ignore: number; accept: number }
  /** payloads of the last 12,000 rejected lines, as the ingest decodes them (for the kept-rejects check) */
  lastRejects: string[]
  /** lines that must reach the store (valid synthetic ones and accepted fuzz), for the model */
  storedLines: { line: string; n: number }[]
}

/**
 * Writes `fuzz` hostile lines interleaved with `valid` synthetic events and
 * returns what the ingest must make of them.
 */
export async function writeFuzzFile(file: string, opts: { fuzz: number; valid: number; seed: number }): Promise<FuzzFile> {
  // the valid events end about now (800 events/s, as syntheticEvents spaces them); fuzz lines share their clock
  const startUs = Date.now() * 1000 - Math.round((opts.valid / 800) * 1e6)
  let lastUs = startUs
  const f = fuzzer(opts.seed, () => lastUs)
  const r = rng(opts.seed + 1)
  const out = fs.createWriteStream(file)
  const valid = syntheticEvents({ count: opts.valid, seed: opts.seed, startTimeUs: startUs })
  const res: FuzzFile = { lines: 0, fuzz: 0, valid: 0, byKind: {}, expected: { reject: 0, ignore: 0, accept: 0 }, lastRejects: [], storedLines: [] }
  const first = f.all()
  let fuzzLeft = opts.fuzz
  let validLeft = opts.valid
  const write = async (b: Buffer) => {
    if (!out.write(b)) await new Promise<void>((ok) => out.once('drain', () => ok()))
    out.write('\n')
    res.lines++
  }
  while (fuzzLeft > 0 || validLeft > 0) {
    const takeFuzz = fuzzLeft > 0 && (validLeft === 0 || r.next() < fuzzLeft / (fuzzLeft + validLeft))
    if (takeFuzz) {
      fuzzLeft--
      const l = first.shift() ?? f.next()
      await write(l.bytes)
      res.fuzz++
      res.byKind[l.kind] = (res.byKind[l.kind] ?? 0) + 1
      res.expected[l.verdict]++
      if (l.verdict === 'reject') {
        res.lastRejects.push(l.bytes.toString('utf8').slice(0, 4096))
        if (res.lastRejects.length > 12_000) res.lastRejects.splice(0, 1000)
      } else if (l.verdict === 'accept') res.storedLines.push({ line: l.bytes.toString('utf8'), n: res.lines })
    } else {
      validLeft--
      const ev = valid.next().value as { time_us: number }
      lastUs = ev.time_us
      const s = JSON.stringify(ev)
      await write(Buffer.from(s))
      res.valid++
      res.storedLines.push({ line: s, n: res.lines })
    }
  }
  await new Promise<void>((ok, fail) => out.end((err?: Error | null) => (err ? fail(err) : ok())))
  return res
}
