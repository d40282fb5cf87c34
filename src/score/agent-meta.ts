/**
 * The metadata a run-time agent declares (a sandboxed agent's definition, a
 * remote agent's /meta): one schema and one id pattern for both, and the
 * check that its options JSON Schema asks the host to run nothing unsafe.
 */
import { z } from 'zod'
import type { Need } from './sdk.ts'

/** An agent id: 2-41 lower-case letters, digits or dashes, not starting with a dash. */
export const AGENT_ID = /^[a-z0-9][a-z0-9-]{1,40}$/

/** Largest options JSON Schema accepted, bytes of JSON. */
export const MAX_OPTIONS_SCHEMA_BYTES = 32 * 1024

/** The needs a run-time agent may declare: every Need but `subscriber` (a reader's follow graph is not handed to uploaded or remote code). */
export const RUNTIME_NEEDS = [
  'text',
  'langs',
  'tags',
  'embed',
  'reply',
  'labels',
  'author',
  'engagement',
  'time',
  'candidates',
] as const satisfies readonly Need[]
// compile-time check that RUNTIME_NEEDS lists every Need but `subscriber`
const _allNeeds: Exclude<Need, (typeof RUNTIME_NEEDS)[number] | 'subscriber'> extends never ? true : false = true
void _allNeeds

/** The metadata document of a run-time agent. */
export const agentMetaSchema = z.object({
  id: z.string().regex(AGENT_ID, 'must be 2-41 lower-case letters, digits or dashes, not starting with a dash'),
  version: z.string().min(1).max(40),
  title: z.string().min(1).max(100),
  description: z.string().max(2000),
  author: z.string().max(200).optional(),
  api: z.number().int(),
  options: z.record(z.string(), z.unknown()).optional(),
  needs: z.array(z.enum(RUNTIME_NEEDS)).max(RUNTIME_NEEDS.length * 2),
  prefilter: z
    .object({
      langs: z.array(z.string().min(1).max(20)).max(50).optional(),
      media: z
        .array(z.enum(['images', 'video', 'link', 'none']))
        .max(4)
        .optional(),
      replies: z.enum(['exclude', 'only']).optional(),
      hasTags: z.boolean().optional(),
    })
    .strict()
    .optional(),
})

export type DeclaredAgentMeta = z.infer<typeof agentMetaSchema>

/** Keys whose value maps names to subschemas: the names are not keywords. */
const SCHEMA_MAPS = new Set(['properties', '$defs', 'definitions', 'dependentSchemas'])
/** Keys whose value is instance data, not schema. */
const SCHEMA_DATA = new Set(['default', 'const', 'enum', 'examples'])

/**
 * Refuses regex keywords in an options JSON Schema (the host would run an
 * author's possibly catastrophic regex on subscribers' input), and nesting
 * deeper than `maxDepth`. `kind` names the agents in the message.
 */
export function checkOptionsSchema(s: unknown, path: string, kind: 'remote' | 'sandboxed', maxDepth = Infinity, depth = 0): void {
  if (depth > maxDepth) throw new Error(`${path}: nested more than ${maxDepth} levels`)
  if (Array.isArray(s)) {
    s.forEach((x, i) => checkOptionsSchema(x, `${path}[${i}]`, kind, maxDepth, depth + 1))
    return
  }
  if (!s || typeof s !== 'object') return
  for (const [k, v] of Object.entries(s)) {
    if (SCHEMA_DATA.has(k)) continue
    if (k === 'pattern' || k === 'patternProperties') throw new Error(`${path}.${k}: regular expressions are not allowed in ${kind} agent option schemas`)
    if (SCHEMA_MAPS.has(k) && v && typeof v === 'object') {
      for (const [name, sub] of Object.entries(v)) checkOptionsSchema(sub, `${path}.${k}.${name}`, kind, maxDepth, depth + 1)
    } else {
      checkOptionsSchema(v, `${path}.${k}`, kind, maxDepth, depth + 1)
    }
  }
}
