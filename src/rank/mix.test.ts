import { describe, expect, it } from 'vitest'
import { silentLogger } from '../logger.ts'
import { BUILTIN_AGENTS } from '../score/agents/index.ts'
import { AgentHost } from '../score/host.ts'
import { resolveMix } from './mix.ts'

const host = new AgentHost(BUILTIN_AGENTS, silentLogger)

describe('resolveMix', () => {
  it('gives the same fingerprint to the same mix in any order and with any key order', () => {
    const a = resolveMix(host, [
      { agent: 'recency', weight: 40 },
      { agent: 'keyword', weight: 60, options: { include: ['cats'], exclude: [] } },
    ])
    const b = resolveMix(host, [
      { weight: 60, options: { exclude: [], include: ['cats'] }, agent: 'keyword' },
      { agent: 'recency', weight: 40 },
    ])
    expect(a.fingerprint).toBe(b.fingerprint)
    const c = resolveMix(host, [
      { agent: 'recency', weight: 41 },
      { agent: 'keyword', weight: 60, options: { include: ['cats'] } },
    ])
    expect(c.fingerprint).not.toBe(a.fingerprint)
  })

  it('names the bad field', () => {
    expect(() =>
      resolveMix(host, [
        { agent: 'recency', weight: 40 },
        { agent: 'nope', weight: 1 },
      ]),
    ).toThrow(/agents\.1: unknown agent "nope"/)
    expect(() => resolveMix(host, [{ agent: 'recency', weight: 500 }])).toThrow(/agents\.0\.weight/)
    expect(() => resolveMix(host, [{ agent: 'recency', weight: 1.5 }])).toThrow(/agents\.0\.weight/)
    expect(() => resolveMix(host, [{ agent: 'recency', weight: 1, options: { halfLifeHours: 'soon' } }])).toThrow(/agents\.0\.options\.halfLifeHours/)
    expect(() => resolveMix(host, 'recency')).toThrow(/agents: expected a list/)
    expect(() =>
      resolveMix(
        host,
        Array.from({ length: 17 }, () => ({ agent: 'recency', weight: 1 })),
      ),
    ).toThrow(/at most 16/)
  })

  it('refuses options nested too deeply instead of overflowing the stack', () => {
    const nest = (levels: number) => {
      let v: Record<string, unknown> = { leaf: true }
      for (let i = 0; i < levels; i++) v = { x: v }
      return v
    }
    for (const levels of [40, 100_000]) {
      expect(() =>
        resolveMix(host, [
          { agent: 'recency', weight: 1 },
          { agent: 'keyword', weight: 5, options: nest(levels) },
        ]),
      ).toThrow(/agents\.1\.options: nested more than 32 levels deep/)
    }
    // 30 levels of unknown keys are within the limit: the schema decides (keyword ignores unknown keys)
    expect(resolveMix(host, [{ agent: 'keyword', weight: 5, options: { include: ['x'], extra: nest(30) } }]).entries).toHaveLength(1)
  })

  it('adds the feed base entries and labels repeated agents', () => {
    const m = resolveMix(
      host,
      [{ agent: 'keyword', weight: 50, options: { include: ['x'] } }],
      [{ agent: 'keyword', weight: 0, options: { exclude: ['spam'] } }],
    )
    expect(m.entries.map((e) => e.label)).toEqual(['keyword', 'keyword#2'])
    expect(m.entries[0].inst.rawOptions).toEqual({ include: ['x'] })
    expect(m.agents).toEqual([{ agent: 'keyword', weight: 50, options: { include: ['x'] } }])
  })

  it('labels repeated agents the same way whatever the order of entries', () => {
    const x = { agent: 'keyword', weight: 50, options: { include: ['x'] } }
    const y = { agent: 'keyword', weight: 20, options: { include: ['y'] } }
    const a = resolveMix(host, [x, y])
    const b = resolveMix(host, [y, x])
    expect(a.fingerprint).toBe(b.fingerprint)
    const labelOf = (m: typeof a, word: string) => m.entries.find((e) => (e.inst.rawOptions.include as string[])[0] === word)!.label
    expect(labelOf(a, 'x')).toBe(labelOf(b, 'x'))
    expect(labelOf(a, 'y')).toBe(labelOf(b, 'y'))
    expect(new Set([labelOf(a, 'x'), labelOf(a, 'y')])).toEqual(new Set(['keyword', 'keyword#2']))
  })
})
