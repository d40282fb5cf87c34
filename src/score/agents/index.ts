import type { AgentDefinition } from '../sdk.ts'
import engagement from './engagement.ts'
import keyword from './keyword.ts'
import language from './language.ts'
import recency from './recency.ts'

/** The built-in agents, keyed by id. */
export const BUILTIN_AGENTS: ReadonlyMap<string, AgentDefinition> = new Map(
  [recency, keyword, language, engagement].map((a) => [a.id, a as AgentDefinition]),
)
