import { FieldError } from '../util/field-error.ts'
import { z } from 'zod'
import type { Logger } from '../logger.ts'
import type { LabelerLabels } from './labelers.ts'
import { canonicalJson, MAX_OPTIONS_DEPTH, nestedDeeperThan, shortHash } from '../util/canonical.ts'
import { mediaOf } from './agents/media.ts'
import { checkColumn, checkScores, encodeChecked } from './scores.ts'
import {
  isDynamic,
  scoresColumns,
  SDK_API_VERSION,
  type AgentDefinition,
  type AgentKind,
  type AgentPost,
  type AgentPrefilter,
  type AsyncAgentDefinition,
  type PostColumns,
  type Score,
  type SubscriberContext,
} from './sdk.ts'
import { AGENT_ID } from './agent-meta.ts'

/** Any agent the host can run. */
export type AnyAgent = AgentDefinition | AsyncAgentDefinition

/** An agent with one set of validated options. Static instances are scored once per post. */
export interface AgentInstance {
  key: string
  def: AnyAgent
  /** options after validation and defaults */
  options: unknown
  /** options as the subscriber wrote them (canonical form goes into the key) */
  rawOptions: Record<string, unknown>
  dynamic: boolean
}

/** A problem with one field of a request, named by its path. */
/** Strikes within the strike window (10 minutes) that disable an agent, unless a host is told otherwise. */
export const STRIKE_LIMIT = 5

export interface AgentStats {
  calls: number
  posts: number
  totalMs: number
  strikes: number
  lastError: string | null
  /** recent call durations (ms), newest last, for percentiles */
  recentMs: number[]
}

export interface AgentStatus {
  id: string
  kind: AgentKind
  version: string
  title: string
  description: string
  author: string | null
  /** JSON Schema of the options */
  options: unknown
  needs: string[]
  prefilter: AgentPrefilter | null
  status: 'active' | 'disabled'
  reason: string | null
  stats: { calls: number; posts: number; strikes: number; p50Ms: number | null; p99Ms: number | null; lastError: string | null }
}

export interface HostOptions {
  /** strikes within the window that disable an agent */
  strikeLimit?: number
  strikeWindowMs?: number
  /** deadline for an asynchronous (remote) agent's whole call */
  asyncDeadlineMs?: number
  /** called once when an agent is disabled */
  onDisable?: (id: string, reason: string) => void
  /** labels from labelers, for agents that ask for them */
  labels?: LabelerLabels
  /** distinct labelers one mix may name (each costs requests to a host its owner chose) */
  maxLabelersPerMix?: number
  /** instances (agent + options) remembered at most; the least recently used are forgotten first */
  maxInstances?: number
}

/** Instances a host remembers unless told otherwise (SKYSIFT_AGENT_INSTANCES). */
export const DEFAULT_MAX_INSTANCES = 1000

const RECENT = 256
const isAsync = (d: AnyAgent): d is AsyncAgentDefinition => typeof (d as AsyncAgentDefinition).scoreBatchAsync === 'function'

/** Validates an agent's metadata; throws a message naming what is wrong. */
export function checkAgentMeta(def: AnyAgent): void {
  if (!def || typeof def !== 'object') throw new Error('agent is not an object')
  if (typeof def.id !== 'string' || !AGENT_ID.test(def.id))
    throw new Error(`agent id ${JSON.stringify(def.id)} must be 2-41 lower-case letters, digits or dashes`)
  if (def.api !== SDK_API_VERSION) throw new Error(`agent ${def.id} targets SDK API ${def.api}; this host speaks ${SDK_API_VERSION}`)
  if (typeof def.options?.safeParse !== 'function') throw new Error(`agent ${def.id} has no options schema`)
  if (!Array.isArray(def.needs)) throw new Error(`agent ${def.id} does not declare its needs`)
  if (typeof (def as AgentDefinition).scoreBatch !== 'function' && !isAsync(def)) throw new Error(`agent ${def.id} has no scoreBatch function`)
}

/** Whether a post passes an agent's prefilter. */
export function passesPrefilter(p: AgentPost, f: AgentPrefilter): boolean {
  if (f.langs && !p.langs.some((l) => f.langs!.includes(l))) return false
  if (f.media && !f.media.includes(mediaOf(p))) return false
  if (f.replies === 'exclude' && p.replyParent !== null) return false
  if (f.replies === 'only' && p.replyParent === null) return false
  if (f.hasTags && p.tags.length === 0) return false
  return true
}

function percentile(sorted: number[], q: number): number | null {
  if (!sorted.length) return null
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

/**
 * Runs agents on behalf of everyone else: validates options, applies
 * prefilters, calls the pure batch function, checks every result, and turns
 * a crash, a timeout or bad output into a strike against that agent instead
 * of a failure for the whole batch. Too many strikes in a window disable the
 * agent: mixes that use it keep working without it.
 */
export class AgentHost {
  readonly stats = new Map<string, AgentStats>()
  private readonly agentMap = new Map<string, { def: AnyAgent; kind: AgentKind }>()
  private readonly log: Logger
  private readonly instances = new Map<string, AgentInstance>()
  private readonly strikeTimes = new Map<string, number[]>()
  private readonly disabled = new Map<string, { at: number; reason: string }>()
  private readonly opts: Required<Omit<HostOptions, 'onDisable' | 'labels'>> & Pick<HostOptions, 'onDisable' | 'labels'>

  constructor(agents: ReadonlyMap<string, AnyAgent>, log: Logger, opts: HostOptions = {}) {
    this.log = log
    this.opts = {
      strikeLimit: STRIKE_LIMIT,
      strikeWindowMs: 10 * 60_000,
      asyncDeadlineMs: 2000,
      maxLabelersPerMix: 10,
      maxInstances: DEFAULT_MAX_INSTANCES,
      ...opts,
    }
    for (const def of agents.values()) this.add(def, 'builtin')
  }

  /** Lets agents that name labelers see those labelers' labels (in the processes that rank lists). */
  attachLabels(labels: LabelerLabels): void {
    this.opts.labels = labels
  }

  /** The agents this host knows, by id. */
  get agents(): ReadonlyMap<string, AnyAgent> {
    return new Map([...this.agentMap].map(([id, a]) => [id, a.def]))
  }

  kindOf(id: string): AgentKind | undefined {
    return this.agentMap.get(id)?.kind
  }

  /** Adds or replaces an agent (after checking its metadata). */
  add(def: AnyAgent, kind: AgentKind): void {
    checkAgentMeta(def)
    this.agentMap.set(def.id, { def, kind })
    for (const [k, inst] of this.instances) if (inst.def.id === def.id) this.instances.delete(k)
  }

  remove(id: string): boolean {
    for (const [k, inst] of this.instances) if (inst.def.id === id) this.instances.delete(k)
    return this.agentMap.delete(id)
  }

  /** How many instances are remembered now (at most `maxInstances`). */
  get instanceCount(): number {
    return this.instances.size
  }

  /**
   * Validates options for an agent and returns the (memoized) instance.
   * Throws FieldError naming the bad field, under `path`. With `keep: false`
   * a new instance is not remembered (a preview leaves nothing behind); one
   * already remembered is returned either way.
   */
  instance(agentId: string, rawOptions: Record<string, unknown> = {}, path = 'agent', opts: { keep?: boolean } = {}): AgentInstance {
    const a = this.agentMap.get(agentId)
    if (!a) throw new FieldError(path, `unknown agent ${JSON.stringify(agentId)}`)
    const def = a.def
    // @NOTE checked before anything walks the options recursively (canonical form, the schema)
    if (nestedDeeperThan(rawOptions, MAX_OPTIONS_DEPTH)) throw new FieldError(`${path}.options`, `nested more than ${MAX_OPTIONS_DEPTH} levels deep`)
    const canon = canonicalJson(rawOptions)
    const key = `${def.id}:${shortHash(`${def.version}\n${canon}`, 12)}`
    const hit = this.instances.get(key)
    if (hit) {
      // @NOTE a Map iterates in insertion order: moving a hit to the end keeps the least recently used first
      this.instances.delete(key)
      this.instances.set(key, hit)
      return hit
    }
    const parsed = def.options.safeParse(rawOptions)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      const sub = issue.path.length ? `.${issue.path.join('.')}` : ''
      throw new FieldError(`${path}.options${sub}`, issue.message)
    }
    // @NOTE an asynchronous agent cannot be called while a list is ranked: it is scored when a post arrives
    const sync = isAsync(def) ? null : (def as AgentDefinition)
    const dynamic = !!sync && (isDynamic(sync) || sync.dynamicWith?.(parsed.data) === true)
    const inst: AgentInstance = { key, def, options: parsed.data, rawOptions: JSON.parse(canon), dynamic }
    if (opts.keep === false) return inst
    this.instances.set(key, inst)
    for (const k of this.instances.keys()) {
      if (this.instances.size <= this.opts.maxInstances) break
      this.instances.delete(k)
    }
    return inst
  }

  /** True when the agent ranks for one reader (needs `subscriber`): such lists are built per reader. */
  isPersonal(inst: AgentInstance): boolean {
    return inst.def.needs.includes('subscriber')
  }

  /** The labelers (DIDs) whose labels an instance reads. */
  labelersOf(inst: AgentInstance): string[] {
    return isAsync(inst.def) ? [] : ((inst.def as AgentDefinition).labelersWith?.(inst.options) ?? [])
  }

  /** Distinct labelers one mix may name. */
  get maxLabelersPerMix(): number {
    return this.opts.maxLabelersPerMix
  }

  isAsync(inst: AgentInstance): boolean {
    return isAsync(inst.def)
  }

  isDisabled(id: string): { at: number; reason: string } | undefined {
    return this.disabled.get(id)
  }

  /** Re-enables a disabled agent and forgets its strikes. */
  enable(id: string): void {
    this.disabled.delete(id)
    this.strikeTimes.delete(id)
  }

  /** Disables an agent because another process did (see AgentStates); no onDisable call. */
  disable(id: string, reason: string, at: number): void {
    if (!this.agentMap.has(id) || this.disabled.has(id)) return
    this.disabled.set(id, { at, reason })
    this.log.warn({ agent: id, reason }, 'agent disabled elsewhere')
  }

  /** Every agent disabled in this process, with when and why. */
  disabledAgents(): [string, { at: number; reason: string }][] {
    return [...this.disabled].map(([id, d]) => [id, { ...d }])
  }

  /** Also tells `fn` when an agent is disabled here (after onDisable). */
  watchDisable(fn: (id: string, reason: string) => void): void {
    const prev = this.opts.onDisable
    this.opts.onDisable = (id, reason) => {
      prev?.(id, reason)
      fn(id, reason)
    }
  }

  /** Scores a batch synchronously; never throws. An asynchronous agent gives no opinion here. */
  run(inst: AgentInstance, posts: AgentPost[], now: number, subscriber?: SubscriberContext): Score[] {
    const sel = this.select(inst, posts)
    if (!sel || isAsync(inst.def)) return new Array<Score>(posts.length).fill(null)
    const { st, t0, out } = this.call(inst, sel.posts, now, subscriber)
    return this.finish(inst, st, t0, sel, posts.length, out)
  }

  /**
   * run(), with the scores as one typed array as ranking reads them (a
   * number, NaN for no opinion, −Infinity for drop), checked and encoded in
   * one pass; never throws.
   */
  runColumn(inst: AgentInstance, posts: AgentPost[], now: number, subscriber?: SubscriberContext): Float64Array {
    const col = new Float64Array(posts.length).fill(NaN)
    const sel = this.select(inst, posts)
    if (!sel || isAsync(inst.def)) return col
    const { st, t0, out } = this.call(inst, sel.posts, now, subscriber)
    this.account(st, t0, sel.posts.length)
    const problem = out instanceof Error ? `failed: ${out.message}` : encodeChecked(out, sel.posts.length, col, sel.idx)
    if (problem) {
      this.strike(inst, st, problem)
      col.fill(NaN)
    }
    return col
  }

  /**
   * runColumn() from the posts' time and engagement columns, through the
   * agent's scoreColumns, its output checked; never throws. Null when the
   * agent does not score columns (see scoresColumns): then call runColumn.
   */
  runColumns(inst: AgentInstance, columns: PostColumns, now: number): Float64Array | null {
    const def = inst.def
    if (!scoresColumns(def)) return null
    if (this.disabled.has(inst.def.id) || columns.length === 0) return new Float64Array(columns.length).fill(NaN)
    const st = this.statsFor(inst.def.id)
    const t0 = performance.now()
    let out: unknown
    try {
      out = def.scoreColumns(columns, { options: inst.options, now })
    } catch (err) {
      out = err instanceof Error ? err : new Error(String(err))
    }
    this.account(st, t0, columns.length)
    const problem = out instanceof Error ? `failed: ${out.message}` : checkColumn(out, columns.length)
    if (problem) {
      this.strike(inst, st, problem)
      return new Float64Array(columns.length).fill(NaN)
    }
    return out as Float64Array
  }

  /** Calls a synchronous agent (the labels it needs added); an exception becomes the Error returned. */
  private call(inst: AgentInstance, posts: AgentPost[], now: number, subscriber?: SubscriberContext): { st: AgentStats; t0: number; out: unknown } {
    const st = this.statsFor(inst.def.id)
    const t0 = performance.now()
    const def = inst.def as AgentDefinition
    const labelers = this.opts.labels ? (def.labelersWith?.(inst.options) ?? []) : []
    const input = labelers.length ? this.withLabelerLabels(posts, labelers) : posts
    let out: unknown
    try {
      out = def.scoreBatch(input, { options: inst.options, now, ...(subscriber ? { subscriber } : {}) })
    } catch (err) {
      out = err instanceof Error ? err : new Error(String(err))
    }
    return { st, t0, out }
  }

  /** Scores a batch, awaiting asynchronous agents within the host's deadline; never throws. */
  async runAsync(inst: AgentInstance, posts: AgentPost[], now: number): Promise<Score[]> {
    if (!isAsync(inst.def)) return this.run(inst, posts, now)
    const sel = this.select(inst, posts)
    if (!sel) return new Array<Score>(posts.length).fill(null)
    const st = this.statsFor(inst.def.id)
    const t0 = performance.now()
    const ac = new AbortController()
    const timer = setTimeout(() => ac.abort(new Error(`deadline of ${this.opts.asyncDeadlineMs} ms exceeded`)), this.opts.asyncDeadlineMs)
    let out: unknown
    try {
      out = await Promise.race([
        inst.def.scoreBatchAsync(sel.posts, { options: inst.options, now, signal: ac.signal }),
        new Promise((_, reject) => ac.signal.addEventListener('abort', () => reject(ac.signal.reason), { once: true })),
      ])
    } catch (err) {
      out = err instanceof Error ? err : new Error(String(err))
    } finally {
      clearTimeout(timer)
    }
    return this.finish(inst, st, t0, sel, posts.length, out)
  }

  /** Posts with the labels the named labelers put on them added (from the labeler cache). */
  private withLabelerLabels(posts: AgentPost[], labelers: string[]): AgentPost[] {
    const extra = this.opts.labels!.lookup(
      labelers,
      posts.map((p) => p.uri),
    )
    if (!extra.size) return posts
    return posts.map((p) => {
      const more = extra.get(p.uri)
      return more ? { ...p, labels: [...p.labels, ...more] } : p
    })
  }

  /** The posts that pass the agent's prefilter (with their positions), or null when it is disabled or none pass. */
  private select(inst: AgentInstance, posts: AgentPost[]): { posts: AgentPost[]; idx: number[] | null } | null {
    if (this.disabled.has(inst.def.id) || posts.length === 0) return null
    const f = inst.def.prefilter
    if (!f) return { posts, idx: null }
    const idx: number[] = []
    posts.forEach((p, i) => {
      if (passesPrefilter(p, f)) idx.push(i)
    })
    if (!idx.length) return null
    return { posts: idx.map((i) => posts[i]), idx }
  }

  private finish(inst: AgentInstance, st: AgentStats, t0: number, sel: { posts: AgentPost[]; idx: number[] | null }, n: number, out: unknown): Score[] {
    this.account(st, t0, sel.posts.length)
    const problem = out instanceof Error ? `failed: ${out.message}` : checkScores(out, sel.posts.length)
    if (problem) {
      this.strike(inst, st, problem)
      return new Array<Score>(n).fill(null)
    }
    const scores = out as Score[]
    if (!sel.idx) return scores
    const full = new Array<Score>(n).fill(null)
    sel.idx.forEach((i, j) => (full[i] = scores[j]))
    return full
  }

  /** Counts a call of `posts` posts that started at t0. */
  private account(st: AgentStats, t0: number, posts: number): void {
    const ms = performance.now() - t0
    st.calls++
    st.posts += posts
    st.totalMs += ms
    st.recentMs.push(ms)
    if (st.recentMs.length > RECENT) st.recentMs.shift()
  }

  private statsFor(id: string): AgentStats {
    let st = this.stats.get(id)
    if (!st) {
      st = { calls: 0, posts: 0, totalMs: 0, strikes: 0, lastError: null, recentMs: [] }
      this.stats.set(id, st)
    }
    return st
  }

  private strike(inst: AgentInstance, st: AgentStats, why: string): void {
    const id = inst.def.id
    st.strikes++
    st.lastError = why.slice(0, 500)
    this.log.warn({ agent: id, instance: inst.key, why: st.lastError }, 'agent strike')
    const now = Date.now()
    const times = (this.strikeTimes.get(id) ?? []).filter((t) => now - t < this.opts.strikeWindowMs)
    times.push(now)
    this.strikeTimes.set(id, times)
    if (times.length >= this.opts.strikeLimit && !this.disabled.has(id)) {
      const reason = `${times.length} strikes in ${Math.round(this.opts.strikeWindowMs / 60_000)} min; last: ${st.lastError}`
      this.disabled.set(id, { at: now, reason })
      this.log.error({ agent: id, reason }, 'agent disabled')
      this.opts.onDisable?.(id, reason)
    }
  }

  /** What the catalog and the admin see of every agent. */
  describe(): AgentStatus[] {
    return [...this.agentMap.values()].map(({ def, kind }) => {
      const st = this.stats.get(def.id)
      const sorted = st ? [...st.recentMs].sort((a, b) => a - b) : []
      const dis = this.disabled.get(def.id)
      return {
        id: def.id,
        kind,
        version: def.version,
        title: def.title,
        description: def.description,
        author: def.author ?? null,
        options: optionsJsonSchema(def),
        needs: [...def.needs],
        prefilter: def.prefilter ?? null,
        status: dis ? 'disabled' : 'active',
        reason: dis?.reason ?? null,
        stats: {
          calls: st?.calls ?? 0,
          posts: st?.posts ?? 0,
          strikes: st?.strikes ?? 0,
          p50Ms: percentile(sorted, 0.5),
          p99Ms: percentile(sorted, 0.99),
          lastError: st?.lastError ?? null,
        },
      }
    })
  }
}

const schemaCache = new WeakMap<object, unknown>()

/** The JSON Schema of an agent's options, as clients see it. */
export function optionsJsonSchema(def: AnyAgent): unknown {
  const hit = schemaCache.get(def.options)
  if (hit) return hit
  let out: unknown
  try {
    const { $schema: _ignored, ...rest } = z.toJSONSchema(def.options as z.ZodType, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>
    out = rest
  } catch {
    out = { type: 'object' }
  }
  schemaCache.set(def.options, out)
  return out
}
