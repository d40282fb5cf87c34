import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { post } from '../../test/support/builders.ts'
import { silentLogger } from '../logger.ts'
import { AgentHost, checkScores } from './host.ts'
import { defineAgent, DROP, type AgentDefinition } from './sdk.ts'

const agent = (id: string, scoreBatch: AgentDefinition['scoreBatch'], api = 1) =>
  defineAgent({ id, version: '1.0.0', title: id, description: id, api, options: z.object({}), needs: ['text'], scoreBatch })

describe('AgentHost', () => {
  const bad = new Map<string, AgentDefinition>([
    ['thrower', agent('thrower', () => { throw new Error('boom') })],
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

  it('refuses an agent built for another SDK API version', () => {
    expect(() => new AgentHost(new Map([['old', agent('old', () => [], 0)]]), silentLogger)).toThrow(/SDK API 0/)
  })

  it('gives equal options the same instance key and different options different keys', () => {
    const h = new AgentHost(new Map([['k', defineAgent({ ...agent('k', () => []), options: z.object({ a: z.number().optional(), b: z.number().optional() }) })]]), silentLogger)
    expect(h.instance('k', { a: 1, b: 2 }).key).toBe(h.instance('k', { b: 2, a: 1 }).key)
    expect(h.instance('k', { a: 1 }).key).not.toBe(h.instance('k', { a: 2 }).key)
  })
})

describe('checkScores', () => {
  it('accepts numbers, drop and null; rejects everything else', () => {
    expect(checkScores([1, -2.5, DROP, null], 4)).toBeNull()
    expect(checkScores([Infinity], 1)).toMatch(/entry 0/)
    expect(checkScores({ length: 1 }, 1)).toMatch(/not an array/)
  })
})
