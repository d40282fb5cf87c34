import { z } from 'zod'
import type { AgentHost, AgentInstance } from '../score/host.ts'
import { FieldError } from '../util/field-error.ts'
import { canonicalJson, shortHash } from '../util/canonical.ts'

export const MAX_MIX_ENTRIES = 16
export const WEIGHT_MIN = -100
export const WEIGHT_MAX = 100

/** One agent in a mix, as subscribers write it (integers only: records cannot hold floats). */
export interface MixEntry {
  agent: string
  weight: number
  options?: Record<string, unknown>
}

export const mixEntrySchema = z.object({
  agent: z.string().min(1).max(64),
  weight: z.number().int().min(WEIGHT_MIN).max(WEIGHT_MAX),
  options: z.record(z.string(), z.unknown()).optional(),
})

export interface ResolvedEntry {
  inst: AgentInstance
  weight: number
  /** a short label for attribution: the agent id, with #n for a repeated agent */
  label: string
}

export interface ResolvedMix {
  entries: ResolvedEntry[]
  /** the subscriber's entries in canonical form */
  agents: MixEntry[]
  /** identifies the ranking: equal mixes share one cached list */
  fingerprint: string
  /** a personal agent is in the mix: the list is ranked for each reader */
  personal: boolean
}

/**
 * Validates a mix against the lexicon limits and each agent's option
 * schema, then merges the feed's base entries (filters every reader of the
 * feed gets). Throws FieldError naming the bad field (`agents.2.weight`).
 * `keep: false` resolves without the host remembering new instances (previews).
 */
export function resolveMix(host: AgentHost, agents: unknown, base: MixEntry[] = [], opts: { keep?: boolean } = {}): ResolvedMix {
  if (!Array.isArray(agents)) throw new FieldError('agents', 'expected a list')
  if (agents.length > MAX_MIX_ENTRIES) throw new FieldError('agents', `at most ${MAX_MIX_ENTRIES} agents`)
  const own: MixEntry[] = agents.map((a, i) => {
    const r = mixEntrySchema.safeParse(a)
    if (!r.success) {
      const issue = r.error.issues[0]
      throw new FieldError(`agents.${i}${issue.path.length ? `.${issue.path.join('.')}` : ''}`, issue.message)
    }
    return r.data.options && Object.keys(r.data.options).length ? r.data : { agent: r.data.agent, weight: r.data.weight }
  })
  const all = [...own.map((e, i) => ({ e, path: `agents.${i}`, base: 0 })), ...base.map((e) => ({ e, path: 'feed.baseMix', base: 1 }))]
  const resolved = all.map(({ e, path, base }) => ({ inst: host.instance(e.agent, e.options ?? {}, path, opts), weight: e.weight, base }))
  const labelers = new Set(resolved.flatMap((r) => host.labelersOf(r.inst)))
  if (labelers.size > host.maxLabelersPerMix)
    throw new FieldError('agents', `names ${labelers.size} distinct labelers; at most ${host.maxLabelersPerMix} in one mix`)
  // @NOTE labels must not depend on entry order (equal mixes in any order share one list): a repeated
  // agent is numbered by (own before base, instance key, weight), so the reader's own entry keeps the plain label
  const order = resolved
    .map((r, i) => ({ r, i }))
    .sort((a, b) => a.r.base - b.r.base || (a.r.inst.key < b.r.inst.key ? -1 : a.r.inst.key > b.r.inst.key ? 1 : a.r.weight - b.r.weight))
  const labels: string[] = new Array(resolved.length)
  const seen = new Map<string, number>()
  for (const { r, i } of order) {
    const id = r.inst.def.id
    const n = (seen.get(id) ?? 0) + 1
    seen.set(id, n)
    labels[i] = n === 1 ? id : `${id}#${n}`
  }
  const entries = resolved.map((r, i) => ({ inst: r.inst, weight: r.weight, label: labels[i] }))
  const canon = own.map((e) => ({ agent: e.agent, weight: e.weight, options: e.options ?? {} }))
  const fingerprint = shortHash(canonicalJson(entries.map((e) => [e.inst.key, e.weight]).sort()), 16)
  return {
    entries,
    agents: canon.map((c) => (Object.keys(c.options).length ? c : { agent: c.agent, weight: c.weight })),
    fingerprint,
    personal: entries.some((e) => host.isPersonal(e.inst)),
  }
}
