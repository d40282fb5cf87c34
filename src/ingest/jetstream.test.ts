import { describe, expect, it } from 'vitest'
import { loadSkysiftLexicons } from '../serve/lexicons.ts'
import { eventRev, tidTimeMs } from '../util/at-ids.ts'
import { decodeJetstream } from './jetstream.ts'

const did = 'did:plc:ewvi7nxzyoun6zhxrhs64oiz'
const cid = 'bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a'
const line = (o: unknown) => JSON.stringify(o)
const commit = (c: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  line({ did, time_us: 1732270000000000, kind: 'commit', commit: { rev: '3lbhtbblzvk2y', rkey: '3lbhtbbkhgc2y', cid, ...c }, ...extra })

describe('decodeJetstream', () => {
  it('normalizes a post with reply, quote, tags, langs and self-labels', () => {
    const text = 'Look at this nebula 🌌 #Astronomy #space'
    const d = decodeJetstream(
      commit({
        operation: 'create',
        collection: 'app.bsky.feed.post',
        record: {
          $type: 'app.bsky.feed.post',
          text,
          langs: ['en-US', 'EN'],
          createdAt: '2024-11-22T10:06:40.000Z',
          reply: { root: { uri: `at://${did}/app.bsky.feed.post/3root`, cid }, parent: { uri: `at://${did}/app.bsky.feed.post/3parent`, cid } },
          embed: {
            $type: 'app.bsky.embed.recordWithMedia',
            record: { record: { uri: `at://${did}/app.bsky.feed.post/3quoted`, cid } },
            media: { $type: 'app.bsky.embed.images', images: [] },
          },
          facets: [{ index: { byteStart: 25, byteEnd: 35 }, features: [{ $type: 'app.bsky.richtext.facet#tag', tag: 'Astronomy' }] }],
          labels: { $type: 'com.atproto.label.defs#selfLabels', values: [{ val: 'graphic-media' }] },
        },
      }),
    )
    expect(d).toMatchObject({ ok: true, cursor: 1732270000000000 })
    if (!d.ok || d.event?.t !== 'post') throw new Error('expected a post')
    expect(d.event).toEqual({
      t: 'post',
      uri: `at://${did}/app.bsky.feed.post/3lbhtbbkhgc2y`,
      cid,
      author: did,
      createdAt: Date.parse('2024-11-22T10:06:40.000Z'),
      text,
      langs: ['en'],
      replyRoot: `at://${did}/app.bsky.feed.post/3root`,
      replyParent: `at://${did}/app.bsky.feed.post/3parent`,
      embed: 'recordWithMedia',
      quote: `at://${did}/app.bsky.feed.post/3quoted`,
      tags: ['astronomy', 'space'],
      labels: ['graphic-media'],
      rev: '3lbhtbblzvk2y',
    })
  })

  it('never lets a post sort later than the network saw it', () => {
    const d = decodeJetstream(
      commit({ operation: 'create', collection: 'app.bsky.feed.post', record: { text: 'from the future', createdAt: '2099-01-01T00:00:00Z' } }),
    )
    expect(d.ok && d.event?.t === 'post' && d.event.createdAt).toBe(1732270000000)
  })

  it('decodes likes, reposts, follows, deletes and account changes', () => {
    const subject = { uri: `at://${did}/app.bsky.feed.post/3abc`, cid }
    expect(decodeJetstream(commit({ operation: 'create', collection: 'app.bsky.feed.like', record: { subject, createdAt: 'x' } }))).toMatchObject({
      ok: true,
      event: { t: 'like', subject: subject.uri },
    })
    expect(decodeJetstream(commit({ operation: 'create', collection: 'app.bsky.feed.repost', record: { subject, createdAt: 'x' } }))).toMatchObject({
      ok: true,
      event: { t: 'repost' },
    })
    expect(
      decodeJetstream(commit({ operation: 'create', collection: 'app.bsky.graph.follow', record: { subject: 'did:plc:abc', createdAt: 'x' } })),
    ).toMatchObject({ ok: true, event: { t: 'follow', subject: 'did:plc:abc' } })
    expect(decodeJetstream(commit({ operation: 'delete', collection: 'app.bsky.feed.post', cid: undefined }))).toMatchObject({
      ok: true,
      event: { t: 'delete', collection: 'app.bsky.feed.post' },
    })
    expect(decodeJetstream(line({ did, time_us: 5, kind: 'account', account: { active: false, did, seq: 1, status: 'takendown', time: 'x' } }))).toEqual({
      ok: true,
      cursor: 5,
      event: { t: 'account', did, active: false, status: 'takendown', rev: eventRev(5) },
    })
    expect(decodeJetstream(line({ did, time_us: 6, kind: 'identity', identity: { did, handle: 'a.b', seq: 2, time: 'x' } }))).toEqual({
      ok: true,
      cursor: 6,
      event: null,
    })
  })

  it('ignores collections it does not use', () => {
    expect(decodeJetstream(commit({ operation: 'create', collection: 'app.bsky.actor.profile', record: {} }))).toMatchObject({ ok: true, event: null })
  })

  it('rejects malformed input with a reason and never throws', () => {
    const cases: [string, RegExp][] = [
      ['{not json', /not JSON/],
      ['null', /not an object/],
      [line({ did, kind: 'commit', commit: {} }), /time_us/],
      [line({ did, time_us: 1, kind: 'party' }), /unknown kind/],
      [commit({ operation: 'create', collection: 'app.bsky.feed.post', record: { text: 42, createdAt: '2024-01-01T00:00:00Z' } }), /text/],
      [commit({ operation: 'create', collection: 'app.bsky.feed.post', record: { text: 'x'.repeat(20_000), createdAt: '2024-01-01T00:00:00Z' } }), /longer/],
      [
        commit({ operation: 'create', collection: 'app.bsky.feed.post', record: { text: 'bad \ud800 surrogate', createdAt: '2024-01-01T00:00:00Z' } }),
        /unicode/,
      ],
      [commit({ operation: 'create', collection: 'app.bsky.feed.post', record: { text: 'hi', createdAt: 'yesterday' } }), /createdAt/],
      [commit({ operation: 'create', collection: 'app.bsky.feed.post', record: { text: 'hi', createdAt: '2024-01-01T00:00:00Z', langs: 'en' } }), /langs/],
      [
        commit({ operation: 'create', collection: 'app.bsky.feed.post', record: { text: 'hi', createdAt: '2024-01-01T00:00:00Z', reply: { root: {} } } }),
        /reply/,
      ],
      [commit({ operation: 'create', collection: 'app.bsky.feed.like', record: { subject: { uri: 'https://evil' } } }), /subject/],
      [commit({ operation: 'create', collection: 'app.bsky.feed.like', cid: 'not a cid!', record: {} }), /cid/],
      [commit({ operation: 'create', collection: 'app.bsky.graph.follow', record: { subject: 'bob' } }), /follow subject/],
      [commit({ operation: 'explode', collection: 'app.bsky.feed.post' }), /operation/],
      [commit({ operation: 'create', collection: 'app.bsky.feed.post', rkey: '../../etc', record: {} }), /rkey/],
      [line({ did: 'not-a-did', time_us: 1, kind: 'commit', commit: { operation: 'delete', collection: 'app.bsky.feed.post', rkey: 'x' } }), /did/],
    ]
    for (const [input, reason] of cases) {
      const d = decodeJetstream(input)
      expect(d.ok, input.slice(0, 80)).toBe(false)
      if (!d.ok) expect(d.reason).toMatch(reason)
    }
  })

  describe('app.skysift.feed.mix records', () => {
    const feed = 'at://did:plc:publisherpublisherpublis/app.bsky.feed.generator/science'
    const mixRecord = (r: Record<string, unknown> = {}) => ({
      $type: 'app.skysift.feed.mix',
      feed,
      agents: [
        { agent: 'keyword', weight: 100, options: { include: ['telescope'] } },
        { agent: 'recency', weight: -100 },
      ],
      createdAt: '2024-11-22T10:00:00.000Z',
      ...r,
    })
    const mixCommit = (record: unknown, operation = 'create') => commit({ operation, collection: 'app.skysift.feed.mix', record })

    it('is a valid record of our lexicon, and decodes creates and updates into mix events', () => {
      const lex = loadSkysiftLexicons()
      expect(() => lex.assertValidRecord('app.skysift.feed.mix', mixRecord())).not.toThrow()
      expect(() => lex.assertValidRecord('app.skysift.feed.mix', mixRecord({ agents: [{ agent: 'recency', weight: 101 }] }))).toThrow()
      for (const operation of ['create', 'update']) {
        const d = decodeJetstream(mixCommit(mixRecord(), operation))
        expect(d).toEqual({
          ok: true,
          cursor: 1732270000000000,
          event: {
            t: 'mix',
            uri: `at://${did}/app.skysift.feed.mix/3lbhtbbkhgc2y`,
            author: did,
            feed,
            agents: [
              { agent: 'keyword', weight: 100, options: { include: ['telescope'] } },
              { agent: 'recency', weight: -100 },
            ],
            createdAt: Date.parse('2024-11-22T10:00:00.000Z'),
            rev: '3lbhtbblzvk2y',
          },
        })
      }
    })

    it('keeps only the entry fields, drops empty options, accepts an empty list, and clamps a future createdAt', () => {
      const d = decodeJetstream(
        mixCommit(mixRecord({ agents: [{ $type: 'app.skysift.feed.defs#mixEntry', agent: 'recency', weight: 0, options: {}, extra: 1 }] })),
      )
      expect(d.ok && d.event?.t === 'mix' && d.event.agents).toEqual([{ agent: 'recency', weight: 0 }])
      expect(decodeJetstream(mixCommit(mixRecord({ agents: [] })))).toMatchObject({ ok: true, event: { t: 'mix', agents: [] } })
      const future = decodeJetstream(mixCommit(mixRecord({ createdAt: '2099-01-01T00:00:00Z' })))
      expect(future.ok && future.event?.t === 'mix' && future.event.createdAt).toBe(1732270000000)
      const sixteen = Array.from({ length: 16 }, (_, i) => ({ agent: `a${i}`, weight: i }))
      expect(decodeJetstream(mixCommit(mixRecord({ agents: sixteen })))).toMatchObject({ ok: true, event: { t: 'mix' } })
    })

    it("carries the commit's revision when it is a TID, else the event's time as one", () => {
      const rev = (r: unknown) => {
        const d = decodeJetstream(
          line({
            did,
            time_us: 1732270000000000,
            kind: 'commit',
            commit: { rev: r, operation: 'create', collection: 'app.skysift.feed.mix', rkey: '3lbhtbbkhgc2y', cid, record: mixRecord() },
          }),
        )
        return d.ok && d.event?.t === 'mix' ? d.event.rev : 'not a mix'
      }
      expect(rev('3lbhtbblzvk2y')).toBe('3lbhtbblzvk2y')
      const byTime = eventRev(1732270000000000)
      expect(tidTimeMs(byTime)).toBe(1732270000000)
      expect(rev(undefined)).toBe(byTime)
      expect(rev('zzzz')).toBe(byTime)
      expect(rev(42)).toBe(byTime)
      // later events sort later, and with the revisions of commits made at the same time
      expect(eventRev(1732270000000001) > byTime).toBe(true)
      expect(eventRev(1) < eventRev(2)).toBe(true)
    })

    it('passes deletes on as delete events of the mix collection', () => {
      expect(decodeJetstream(commit({ operation: 'delete', collection: 'app.skysift.feed.mix', cid: undefined }))).toEqual({
        ok: true,
        cursor: 1732270000000000,
        event: { t: 'delete', uri: `at://${did}/app.skysift.feed.mix/3lbhtbbkhgc2y`, collection: 'app.skysift.feed.mix', rev: '3lbhtbblzvk2y' },
      })
    })

    it('rejects malformed mix records with a reason', () => {
      const bigOptions = { words: Array.from({ length: 1000 }, (_, i) => `word${i}`) }
      let deep: unknown = 1
      for (let i = 0; i < 100; i++) deep = { d: deep }
      const cases: [unknown, RegExp][] = [
        ['a string', /record is not an object/],
        [mixRecord({ feed: undefined }), /feed/],
        [mixRecord({ feed: 'https://bsky.app/profile/x/feed/science' }), /feed/],
        [mixRecord({ feed: 'at://did:plc:abc/app.bsky.feed.post/3abc' }), /feed generator/],
        [mixRecord({ createdAt: undefined }), /createdAt missing/],
        [mixRecord({ createdAt: 'last tuesday' }), /createdAt is not a date/],
        [mixRecord({ agents: undefined }), /agents is not a list/],
        [mixRecord({ agents: { agent: 'recency', weight: 1 } }), /agents is not a list/],
        [mixRecord({ agents: Array.from({ length: 17 }, () => ({ agent: 'recency', weight: 1 })) }), /more than 16/],
        [mixRecord({ agents: [null] }), /agents\.0 is not an object/],
        [mixRecord({ agents: [['recency', 1]] }), /agents\.0 is not an object/],
        [mixRecord({ agents: [{ weight: 1 }] }), /agents\.0\.agent/],
        [mixRecord({ agents: [{ agent: '', weight: 1 }] }), /agents\.0\.agent/],
        [mixRecord({ agents: [{ agent: 'x'.repeat(65), weight: 1 }] }), /agents\.0\.agent/],
        [mixRecord({ agents: [{ agent: 7, weight: 1 }] }), /agents\.0\.agent/],
        [
          mixRecord({
            agents: [
              { agent: 'recency', weight: 1 },
              { agent: 'recency', weight: 101 },
            ],
          }),
          /agents\.1\.weight/,
        ],
        [mixRecord({ agents: [{ agent: 'recency', weight: -101 }] }), /agents\.0\.weight/],
        [mixRecord({ agents: [{ agent: 'recency', weight: 0.5 }] }), /agents\.0\.weight/],
        [mixRecord({ agents: [{ agent: 'recency', weight: '10' }] }), /agents\.0\.weight/],
        [mixRecord({ agents: [{ agent: 'recency' }] }), /agents\.0\.weight/],
        [mixRecord({ agents: [{ agent: 'keyword', weight: 1, options: ['telescope'] }] }), /agents\.0\.options is not a plain object/],
        [mixRecord({ agents: [{ agent: 'keyword', weight: 1, options: null }] }), /agents\.0\.options is not a plain object/],
        [mixRecord({ agents: [{ agent: 'keyword', weight: 1, options: 'include=telescope' }] }), /agents\.0\.options is not a plain object/],
        [mixRecord({ agents: [{ agent: 'keyword', weight: 1, options: deep }] }), /agents\.0\.options is not a plain object/],
        [mixRecord({ agents: [{ agent: 'keyword', weight: 1, options: bigOptions }] }), /agents\.0\.options larger than 8192 bytes/],
      ]
      for (const [record, reason] of cases) {
        const d = decodeJetstream(mixCommit(record))
        expect(d.ok, JSON.stringify(record).slice(0, 120)).toBe(false)
        if (!d.ok) expect(d.reason, JSON.stringify(record).slice(0, 120)).toMatch(reason)
      }
    })
  })
})
