import type { Logger } from '../logger.ts'
import { canonicalJson, shortHash } from '../util/canonical.ts'
import { DROP, isDynamic, SDK_API_VERSION, type AgentDefinition, type AgentPost, type Score } from './sdk.ts'

/** An agent with one set of validated options. Static instances are scored once per post. */
export interface AgentInstance {
  key: string
  def: AgentDefinition
  /** options after validation and defaults */
  options: unknown
  /** options as the subscriber wrote them (canonical form goes into the key) */
  rawOptions: Record<string, unknown>
  dynamic: boolean
}

/** A problem with one field of a request, named by its path. */
export class FieldError extends Error {
  readonly field: string
  constructor(field: string, message: string) {
    super(`${field}: ${message}`)
    this.name = 'FieldError'
    this.field = field
  }
}

export interface AgentStats {
  calls: number
  posts: number
  totalMs: number
  strikes: number
  lastError: string | null
}

/**
 * Runs agents on behalf of everyone else: validates options, calls the pure
 * batch function, checks every result, and turns a crash or bad output into
 * a strike against that agent instead of a failure for the whole batch.
 */
export class AgentHost {
  readonly agents: ReadonlyMap<string, AgentDefinition>
  readonly stats = new Map<string, AgentStats>()
  private readonly log: Logger
  private readonly instances = new Map<string, AgentInstance>()

  constructor(agents: ReadonlyMap<string, AgentDefinition>, log: Logger) {
    for (const def of agents.values()) {
      if (def.api !== SDK_API_VERSION) {
        throw new Error(`agent ${def.id} targets SDK API ${def.api}; this host speaks ${SDK_API_VERSION}`)
      }
    }
    this.agents = agents
    this.log = log
  }

  /**
   * Validates options for an agent and returns the (memoized) instance.
   * Throws FieldError naming the bad field, under `path`.
   */
  instance(agentId: string, rawOptions: Record<string, unknown> = {}, path = 'agent'): AgentInstance {
    const def = this.agents.get(agentId)
    if (!def) throw new FieldError(path, `unknown agent ${JSON.stringify(agentId)}`)
    const canon = canonicalJson(rawOptions)
    const key = `${def.id}:${shortHash(`${def.version}\n${canon}`, 12)}`
    const hit = this.instances.get(key)
    if (hit) return hit
    const parsed = def.options.safeParse(rawOptions)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      const sub = issue.path.length ? `.${issue.path.join('.')}` : ''
      throw new FieldError(`${path}.options${sub}`, issue.message)
    }
    const inst: AgentInstance = { key, def, options: parsed.data, rawOptions: JSON.parse(canon), dynamic: isDynamic(def) }
    this.instances.set(key, inst)
    return inst
  }

  /** Scores a batch; never throws. A bad run counts a strike and yields no opinion for the batch. */
  run(inst: AgentInstance, posts: AgentPost[], now: number): Score[] {
    const st = this.statsFor(inst.def.id)
    const t0 = performance.now()
    let out: unknown
    try {
      out = inst.def.scoreBatch(posts, { options: inst.options, now })
    } catch (err) {
      return this.strike(inst, st, posts.length, `threw: ${(err as Error)?.message ?? String(err)}`)
    } finally {
      st.calls++
      st.posts += posts.length
      st.totalMs += performance.now() - t0
    }
    const problem = checkScores(out, posts.length)
    if (problem) return this.strike(inst, st, posts.length, problem)
    return out as Score[]
  }

  private statsFor(id: string): AgentStats {
    let st = this.stats.get(id)
    if (!st) {
      st = { calls: 0, posts: 0, totalMs: 0, strikes: 0, lastError: null }
      this.stats.set(id, st)
    }
    return st
  }

  private strike(inst: AgentInstance, st: AgentStats, n: number, why: string): Score[] {
    st.strikes++
    st.lastError = why.slice(0, 500)
    this.log.warn({ agent: inst.def.id, instance: inst.key, why: st.lastError }, 'agent strike')
    return new Array<Score>(n).fill(null)
  }
}

/** Why an agent's output is unacceptable, or null when it is fine. */
export function checkScores(out: unknown, expected: number): string | null {
  if (!Array.isArray(out)) return 'output is not an array'
  if (out.length !== expected) return `output has ${out.length} entries for ${expected} posts`
  for (let i = 0; i < out.length; i++) {
    const v = out[i]
    if (v === null || v === DROP) continue
    if (typeof v !== 'number' || !Number.isFinite(v)) return `entry ${i} is not a finite number, "drop" or null`
  }
  return null
}
