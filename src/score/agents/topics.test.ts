import { describe, expect, it } from 'vitest'
import { post } from '../../../test/support/builders.ts'
import { silentLogger } from '../../logger.ts'
import { AgentHost } from '../host.ts'
import { FieldError } from '../../util/field-error.ts'
import { DROP } from '../sdk.ts'
import { BUILTIN_AGENTS } from './index.ts'
import { knownTopics, TOPICS, topicStrength } from './topics.ts'

const host = new AgentHost(BUILTIN_AGENTS, silentLogger)
const now = Date.parse('2026-11-22T12:00:00Z')
const run = (options: Record<string, unknown>, posts: ReturnType<typeof post>[]) => host.run(host.instance('topics', options), posts, now)

describe('topics', () => {
  const posts = [
    post({ text: 'New preprint: the telescope caught a galaxy merging, peer review next', tags: [] }),
    post({ text: 'Look at this', tags: ['scisky'] }),
    post({ text: 'The quantum of solace was a fine title', tags: [] }),
    post({ text: 'My kitten knocked the plant over again', tags: [] }),
    post({ text: 'Lunch was fine, nothing to report', tags: [] }),
  ]

  it('scores a post fully about a topic from two of its words or one of its hashtags, half from one word', () => {
    expect(run({ topics: ['science'] }, posts)).toEqual([1, 1, 0.5, 0, 0])
  })

  it('adds up over the chosen topics, and drops posts about none with requireMatch', () => {
    expect(run({ topics: ['science', 'pets'] }, posts)).toEqual([1, 1, 0.5, 0.5, 0])
    expect(run({ topics: ['pets'], requireMatch: true }, posts)).toEqual([DROP, DROP, DROP, 0.5, DROP])
  })

  it('has no opinion when no topic is chosen (the server fills in the app’s topics first)', () => {
    expect(run({}, posts)).toEqual([null, null, null, null, null])
  })

  it('accepts the names apps forward in any case or with #, in one order, and refuses unknown topics with the list of known ones', () => {
    expect(host.instance('topics', { topics: ['Pets', '#science', 'pets'] }).options).toEqual({ topics: ['pets', 'science'], requireMatch: false })
    expect(() => host.instance('topics', { topics: ['astrology'] })).toThrow(FieldError)
    expect(() => host.instance('topics', { topics: ['astrology'] })).toThrow(/known topics: .*science/)
  })

  it('matches whole words only, and not a word that is part of a hashtag in the text', () => {
    expect(topicStrength('a scientific breakthrough in astronomy', [], 'science')).toBe(0.5)
    expect(topicStrength('I love #astronomy', [], 'science')).toBe(0)
    expect(topicStrength('ASTRONOMY and PHYSICS!', [], 'science')).toBe(1)
  })

  it('ships a vocabulary for every interest a Bluesky app offers, each with words and tags in lower case', () => {
    for (const t of ['news', 'science', 'art', 'gaming', 'pets', 'sports', 'tech', 'dev', 'books', 'music', 'politics', 'food'])
      expect(TOPICS.has(t), t).toBe(true)
    for (const [id, v] of TOPICS) {
      expect(v.words.length, id).toBeGreaterThan(5)
      expect(v.tags.length, id).toBeGreaterThan(3)
      for (const w of [...v.words, ...v.tags]) expect(w, id).toBe(w.toLowerCase())
    }
    expect(knownTopics(['Tech', 'nonsense', 'news'])).toEqual(['news', 'tech'])
  })
})
