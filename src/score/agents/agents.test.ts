import { describe, expect, it } from 'vitest'
import { HOUR, post } from '../../../test/support/builders.ts'
import { silentLogger } from '../../logger.ts'
import { AgentHost } from '../host.ts'
import { FieldError } from '../../util/field-error.ts'
import { DROP } from '../sdk.ts'
import { BUILTIN_AGENTS } from './index.ts'

const host = new AgentHost(BUILTIN_AGENTS, silentLogger)
const now = Date.parse('2026-11-22T12:00:00Z')
const run = (agent: string, options: Record<string, unknown>, posts: ReturnType<typeof post>[]) => host.run(host.instance(agent, options), posts, now)

describe('recency', () => {
  it('ranks newer posts higher and halves the score every half-life', () => {
    const [fresh, hourOld, dayOld] = run('recency', { halfLifeHours: 2 }, [
      post({ createdAt: now }),
      post({ createdAt: now - 2 * HOUR }),
      post({ createdAt: now - 24 * HOUR }),
    ]) as number[]
    expect(fresh).toBeCloseTo(1, 5)
    expect(hourOld).toBeCloseTo(0.5, 5)
    expect(dayOld).toBeLessThan(0.001)
  })

  it('does not reward a post dated in the future', () => {
    const [future, present] = run('recency', {}, [post({ createdAt: now + HOUR }), post({ createdAt: now })]) as number[]
    expect(future).toBe(present)
  })
})

describe('keyword', () => {
  const texts = [
    'The new telescope images are stunning',
    'TELESCOPE!!! finally',
    'Telescopes are expensive', // different word
    'my cat sat on the keyboard',
    'check out this airdrop giveaway',
    'Le télescope de Nice', // accents around the word
  ]
  const posts = texts.map((text) => post({ text }))

  it('scores 1 for a whole-word, case-insensitive include match and 0 otherwise', () => {
    expect(run('keyword', { include: ['telescope'] }, posts)).toEqual([1, 1, 0, 0, 0, 0])
  })

  it('matches phrases and letters outside ASCII as whole words', () => {
    expect(run('keyword', { include: ['sat on the', 'télescope'] }, posts)).toEqual([0, 0, 0, 1, 0, 1])
  })

  it('drops posts with an exclude match, whatever the include says', () => {
    expect(run('keyword', { include: ['giveaway', 'cat'], exclude: ['airdrop'] }, posts)).toEqual([0, 0, 0, 1, DROP, 0])
  })

  it('treats regex characters in words literally', () => {
    expect(run('keyword', { include: ['c++', '.*'] }, [post({ text: 'I write c++ daily' }), post({ text: 'anything at all' })])).toEqual([1, 0])
  })

  it('with requireMatch, drops posts that match no include word', () => {
    expect(run('keyword', { include: ['telescope'], requireMatch: true }, posts.slice(0, 4))).toEqual([1, 1, DROP, DROP])
  })

  it('rejects bad options with the field named', () => {
    expect(() => host.instance('keyword', { include: 'telescope' })).toThrow(FieldError)
    expect(() => host.instance('keyword', { include: [''] }, 'agents.0')).toThrow(/agents\.0\.options\.include\.0/)
  })
})

describe('language', () => {
  it('drops posts in none of the chosen languages and keeps the rest', () => {
    const out = run('language', { langs: ['en', 'pt-BR'] }, [
      post({ langs: ['en'] }),
      post({ langs: ['ja'] }),
      post({ langs: ['ja', 'pt'] }),
      post({ langs: [] }),
    ])
    expect(out).toEqual([1, DROP, 1, DROP])
  })

  it('can keep posts that declare no language', () => {
    expect(run('language', { langs: ['en'], keepUndeclared: true }, [post({ langs: [] })])).toEqual([0])
  })

  it('needs at least one language', () => {
    expect(() => host.instance('language', { langs: [] })).toThrow(/langs/)
    expect(() => host.instance('language', {})).toThrow(/langs/)
  })
})

describe('engagement', () => {
  it('measures likes and reposts per hour since posting', () => {
    const [steady, burst, old, none] = run('engagement', {}, [
      post({ createdAt: now - 2 * HOUR, likeCount: 10, repostCount: 2 }),
      post({ createdAt: now - 30 * 60_000, likeCount: 10, repostCount: 0 }),
      post({ createdAt: now - 48 * HOUR, likeCount: 100, repostCount: 20 }),
      post({ createdAt: now - HOUR }),
    ]) as number[]
    expect(steady).toBeCloseTo(6, 5)
    expect(burst).toBeCloseTo(20, 5)
    expect(old).toBeCloseTo(2.5, 5)
    expect(none).toBe(0)
  })

  it('does not let one like on a brand-new post dominate', () => {
    const [newborn] = run('engagement', { minAgeMinutes: 15 }, [post({ createdAt: now - 1000, likeCount: 1 })]) as number[]
    expect(newborn).toBeCloseTo(4, 5)
  })
})

describe('hashtags', () => {
  const posts = [post({ tags: ['astronomy', 'space'] }), post({ tags: ['cats'] }), post({ tags: ['space', 'nsfw'] }), post({ tags: [] })]

  it('counts include tags, drops exclude tags, and normalizes #/case in options', () => {
    expect(run('hashtags', { include: ['#Space', 'astronomy'], exclude: ['NSFW'] }, posts)).toEqual([2, 0, DROP, 0])
  })

  it('with requireMatch, keeps only tagged topics', () => {
    expect(run('hashtags', { include: ['cats'], requireMatch: true }, posts)).toEqual([DROP, 1, DROP, DROP])
  })
})

describe('media', () => {
  const posts = [post({ embed: 'images' }), post({ embed: 'video' }), post({ embed: 'external' }), post({ embed: null }), post({ embed: 'record' })]

  it('lifts the chosen kinds in boost mode', () => {
    expect(run('media', { kinds: ['video'] }, posts)).toEqual([0, 1, 0, 0, 0])
  })

  it('drops other kinds in filter mode; a bare quote counts as text only', () => {
    expect(run('media', { kinds: ['none', 'link'], mode: 'filter' }, posts)).toEqual([DROP, DROP, 1, 1, 1])
  })
})

describe('post-type', () => {
  const me = 'did:plc:meeeeeeeeeeeeeeeeeeeeeee'
  const other = 'did:plc:otherrrrrrrrrrrrrrrrrrrr'
  const top = post({ author: me })
  const reply = post({ author: me, replyRoot: `at://${other}/app.bsky.feed.post/1`, replyParent: `at://${other}/app.bsky.feed.post/1` })
  const thread = post({ author: me, replyRoot: `at://${me}/app.bsky.feed.post/1`, replyParent: `at://${me}/app.bsky.feed.post/2` })
  const quote = post({ author: me, quote: `at://${other}/app.bsky.feed.post/9`, embed: 'record' })
  const all = [top, reply, thread, quote]

  it('drops replies to others by default but keeps self-threads', () => {
    expect(run('post-type', {}, all)).toEqual([0, DROP, 0, 0])
    expect(run('post-type', { keepThreads: false }, all)).toEqual([0, DROP, DROP, 0])
  })

  it('can show only replies, or drop quotes', () => {
    expect(run('post-type', { replies: 'only' }, all)).toEqual([DROP, 0, 0, DROP])
    expect(run('post-type', { replies: 'keep', quotes: 'drop' }, all)).toEqual([0, 0, 0, DROP])
  })
})

describe('author-diversity', () => {
  const a = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'
  const b = 'did:plc:bbbbbbbbbbbbbbbbbbbbbbbb'
  const posts = [0, 1, 2, 3].map((i) => post({ author: a, createdAt: now - i * HOUR })).concat([post({ author: b, createdAt: now - 5 * HOUR })])

  it("keeps each author's newest posts up to the cap and lifts rare posters", () => {
    expect(run('author-diversity', { maxPerAuthor: 2 }, posts)).toEqual([0.25, 0.25, DROP, DROP, 1])
  })

  it('is scored over the whole candidate list at rank time', () => {
    expect(host.instance('author-diversity').dynamic).toBe(true)
  })
})

describe('calm', () => {
  it('scores warm posts above hostile ones, with negation and emoji understood', () => {
    const [warm, hostile, negated, neutral, emoji] = run('calm', {}, [
      post({ text: 'What a wonderful, kind community. Thank you all!' }),
      post({ text: 'You are pathetic and I hate this stupid site' }),
      post({ text: 'this is not bad at all' }),
      post({ text: 'The train leaves at 9' }),
      post({ text: '😡😡😡' }),
    ]) as number[]
    expect(warm).toBeGreaterThan(2)
    expect(hostile).toBeLessThan(-2)
    expect(negated).toBeGreaterThan(0)
    expect(neutral).toBe(0)
    expect(emoji).toBeLessThan(0)
  })

  it('can drop hostile posts and has no opinion on other languages', () => {
    expect(run('calm', { dropBelow: -2 }, [post({ text: 'I hate you, idiot' }), post({ text: 'Ich hasse das', langs: ['de'] })])).toEqual([DROP, null])
  })
})

describe('labels', () => {
  it('drops adult self-labels by default and down-ranks chosen ones', () => {
    const out = run('labels', { downrank: ['spoiler'] }, [post({ labels: ['porn'] }), post({ labels: ['spoiler'] }), post({ labels: [] })])
    expect(out).toEqual([DROP, -1, 0])
  })

  it('lets a reader allow what the defaults drop', () => {
    expect(run('labels', { drop: [] }, [post({ labels: ['nudity'] })])).toEqual([0])
  })
})

describe('follows', () => {
  const me = 'did:plc:meeeeeeeeeeeeeeeeeeeeeee'
  const friend = 'did:plc:friendddddddddddddddddddd'
  const fan = 'did:plc:fannnnnnnnnnnnnnnnnnnnnnn'
  const stranger = 'did:plc:strangerrrrrrrrrrrrrrrrrr'
  const posts = [post({ author: friend }), post({ author: fan }), post({ author: stranger }), post({ author: me })]
  const subscriber = { did: me, follows: new Set([friend, fan]), followers: new Set([fan]) }
  const runFor = (options: Record<string, unknown>, sub?: typeof subscriber) => host.run(host.instance('follows', options), posts, now, sub)

  it('lifts people the reader follows, mutuals, or newcomers', () => {
    expect(runFor({}, subscriber)).toEqual([1, 1, 0, 1])
    expect(runFor({ mode: 'mutual' }, subscriber)).toEqual([0, 1, 0, 1])
    expect(runFor({ mode: 'discover', only: true }, subscriber)).toEqual([DROP, DROP, 1, DROP])
  })

  it('has no opinion for anonymous readers and makes a mix personal', () => {
    expect(runFor({}, undefined)).toEqual([null, null, null, null])
    expect(host.isPersonal(host.instance('follows'))).toBe(true)
  })
})

describe('agents that score columns', () => {
  it('give from typed columns exactly what they give from posts, for every built-in that offers it', () => {
    let seed = 7
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    const posts = Array.from({ length: 500 }, () =>
      post({
        createdAt: now - rnd() * 72 * HOUR + (rnd() < 0.05 ? HOUR : 0),
        likeCount: Math.floor(rnd() ** 3 * 5000),
        repostCount: Math.floor(rnd() ** 4 * 800),
      }),
    )
    const cols = {
      length: posts.length,
      createdAt: Float64Array.from(posts, (p) => p.createdAt),
      likeCount: Float64Array.from(posts, (p) => p.likeCount),
      repostCount: Float64Array.from(posts, (p) => p.repostCount),
    }
    const columnar = [...BUILTIN_AGENTS.values()].filter((a) => 'scoreColumns' in a && a.scoreColumns)
    expect(columnar.map((a) => a.id).sort()).toEqual(['engagement', 'recency'])
    for (const [id, options] of [
      ['recency', {}],
      ['recency', { halfLifeHours: 0.5 }],
      ['engagement', {}],
      ['engagement', { repostWeight: 3, minAgeMinutes: 90 }],
    ] as const) {
      const inst = host.instance(id, options)
      const fromColumns = host.runColumns(inst, cols, now)
      expect(fromColumns, id).not.toBeNull()
      expect([...fromColumns!]).toEqual([...host.runColumn(inst, posts, now)])
    }
    // agents without the column form are scored from posts
    expect(host.runColumns(host.instance('language', { langs: ['en'] }), cols, now)).toBeNull()
  })
})
