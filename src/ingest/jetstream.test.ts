import { describe, expect, it } from 'vitest'
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
          embed: { $type: 'app.bsky.embed.recordWithMedia', record: { record: { uri: `at://${did}/app.bsky.feed.post/3quoted`, cid } }, media: { $type: 'app.bsky.embed.images', images: [] } },
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
    })
  })

  it('never lets a post sort later than the network saw it', () => {
    const d = decodeJetstream(commit({ operation: 'create', collection: 'app.bsky.feed.post', record: { text: 'from the future', createdAt: '2099-01-01T00:00:00Z' } }))
    expect(d.ok && d.event?.t === 'post' && d.event.createdAt).toBe(1732270000000)
  })

  it('decodes likes, reposts, follows, deletes and account changes', () => {
    const subject = { uri: `at://${did}/app.bsky.feed.post/3abc`, cid }
    expect(decodeJetstream(commit({ operation: 'create', collection: 'app.bsky.feed.like', record: { subject, createdAt: 'x' } }))).toMatchObject({ ok: true, event: { t: 'like', subject: subject.uri } })
    expect(decodeJetstream(commit({ operation: 'create', collection: 'app.bsky.feed.repost', record: { subject, createdAt: 'x' } }))).toMatchObject({ ok: true, event: { t: 'repost' } })
    expect(decodeJetstream(commit({ operation: 'create', collection: 'app.bsky.graph.follow', record: { subject: 'did:plc:abc', createdAt: 'x' } }))).toMatchObject({ ok: true, event: { t: 'follow', subject: 'did:plc:abc' } })
    expect(decodeJetstream(commit({ operation: 'delete', collection: 'app.bsky.feed.post', cid: undefined }))).toMatchObject({ ok: true, event: { t: 'delete', collection: 'app.bsky.feed.post' } })
    expect(decodeJetstream(line({ did, time_us: 5, kind: 'account', account: { active: false, did, seq: 1, status: 'takendown', time: 'x' } }))).toEqual({ ok: true, cursor: 5, event: { t: 'account', did, active: false, status: 'takendown' } })
    expect(decodeJetstream(line({ did, time_us: 6, kind: 'identity', identity: { did, handle: 'a.b', seq: 2, time: 'x' } }))).toEqual({ ok: true, cursor: 6, event: null })
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
      [commit({ operation: 'create', collection: 'app.bsky.feed.post', record: { text: 'bad \ud800 surrogate', createdAt: '2024-01-01T00:00:00Z' } }), /unicode/],
      [commit({ operation: 'create', collection: 'app.bsky.feed.post', record: { text: 'hi', createdAt: 'yesterday' } }), /createdAt/],
      [commit({ operation: 'create', collection: 'app.bsky.feed.post', record: { text: 'hi', createdAt: '2024-01-01T00:00:00Z', langs: 'en' } }), /langs/],
      [commit({ operation: 'create', collection: 'app.bsky.feed.post', record: { text: 'hi', createdAt: '2024-01-01T00:00:00Z', reply: { root: {} } } }), /reply/],
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
})
