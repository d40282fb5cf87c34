import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import type { Redis } from 'ioredis'
import type { z } from 'zod'
import type { Logger } from '../logger.ts'
import type { AgentMeta, AgentRecord, AgentSpec, AgentSubmission, RemoteSettings } from '../contracts/agents.ts'
import { checkAgentMeta, optionsJsonSchema, type AgentHost, type AnyAgent } from './host.ts'
import { loadRemoteAgent, optionsFromJsonSchema } from './remote.ts'
import { loadSandboxedAgent } from './sandbox.ts'

/**
 * Where run-time agents are kept (src/store/agents.ts keeps them in SQLite).
 * Every change takes a new revision.
 */
export interface AgentRecordStore {
  get(id: string): AgentRecord | undefined
  list(): AgentRecord[]
  /** a number that changes whenever any agent changes */
  revision(): number
  approvedSpecs(): AgentSpec[]
  /** keeps a submission as pending, replacing an earlier one of the same id */
  savePending(a: AgentSubmission): AgentRecord
  decide(id: string, status: 'approved' | 'rejected', note: string | null): void
  remove(id: string): boolean
}

const metaOf = (def: AnyAgent, submitter?: string): AgentMeta => ({
  id: def.id,
  version: def.version,
  title: def.title,
  description: def.description,
  author: def.author ?? submitter ?? null,
  needs: [...def.needs],
  options: optionsJsonSchema(def),
})

/** Loads one approved agent from its spec. */
export async function loadSpec(spec: AgentSpec): Promise<AnyAgent> {
  if (spec.kind === 'sandboxed') return loadSandboxedAgent(spec.source ?? '')
  return loadRemoteAgent({
    url: spec.url ?? '',
    salt: spec.config.salt ?? '',
    rawDids: spec.config.rawDids,
    allowPrivateNetwork: spec.config.allowPrivateNetwork,
    deadlineMs: spec.config.deadlineMs,
  })
}

/**
 * Installed agents: npm packages or local files the admin lists. Each
 * module's default export (or `agent`) is an agent definition; options may
 * be a zod schema or a JSON Schema object.
 */
export async function loadInstalledAgents(specifiers: string[]): Promise<AnyAgent[]> {
  const out: AnyAgent[] = []
  for (const spec of specifiers) {
    const target = spec.startsWith('.') || spec.startsWith('/') ? pathToFileURL(path.resolve(spec)).href : spec
    let mod: Record<string, unknown>
    try {
      mod = await import(target)
    } catch (err) {
      throw new Error(`installed agent ${spec}: cannot load: ${(err as Error).message}`)
    }
    const raw = (mod.default ?? mod.agent) as Record<string, unknown> | undefined
    if (!raw || typeof raw !== 'object') throw new Error(`installed agent ${spec}: no default export`)
    const options =
      raw.options && typeof (raw.options as z.ZodType).safeParse === 'function'
        ? raw.options
        : optionsFromJsonSchema(raw.options as Record<string, unknown> | undefined)
    const def = { ...raw, options } as unknown as AnyAgent
    try {
      checkAgentMeta(def)
    } catch (err) {
      throw new Error(`installed agent ${spec}: ${(err as Error).message}`)
    }
    out.push(def)
  }
  return out
}

/**
 * Run-time agents: authors submit, the admin approves or rejects (kept by an AgentRecordStore).
 * Submitting loads the agent once (in the sandbox, or by asking the remote
 * endpoint for its metadata), so a broken agent is refused with the reason.
 */
export class AgentStore {
  private readonly records: AgentRecordStore
  private readonly reserved: (id: string) => boolean

  /** `reserved` says which ids belong to built-in or installed agents. */
  constructor(records: AgentRecordStore, reserved: (id: string) => boolean) {
    this.records = records
    this.reserved = reserved
  }

  get(id: string): AgentRecord | undefined {
    return this.records.get(id)
  }

  list(): AgentRecord[] {
    return this.records.list()
  }

  /** A number that changes whenever any agent changes. */
  revision(): number {
    return this.records.revision()
  }

  /** Specs of every approved agent. */
  approvedSpecs(): AgentSpec[] {
    return this.records.approvedSpecs()
  }

  /** Stores uploaded JavaScript as a pending agent after loading it once in the sandbox (closed again whatever happens). */
  async submitSandboxed(source: string, submittedBy: string): Promise<AgentRecord> {
    const def = await loadSandboxedAgent(source)
    try {
      return this.save({ id: def.id, kind: 'sandboxed', source, url: null, config: {}, meta: metaOf(def, submittedBy), submittedBy })
    } finally {
      // @NOTE its worker thread was only needed to read the metadata: approved agents load again where they run
      await def.close()
    }
  }

  /** Registers a remote agent after fetching its metadata; a fresh salt hashes DIDs for it. */
  async addRemote(url: string, settings: Omit<RemoteSettings, 'salt'>, submittedBy: string): Promise<AgentRecord> {
    const config: RemoteSettings = { ...settings, salt: randomBytes(24).toString('base64url') }
    const def = await loadRemoteAgent({
      url,
      salt: config.salt!,
      rawDids: config.rawDids,
      allowPrivateNetwork: config.allowPrivateNetwork,
      deadlineMs: config.deadlineMs,
    })
    try {
      return this.save({ id: def.id, kind: 'remote', source: null, url, config, meta: metaOf(def, submittedBy), submittedBy })
    } finally {
      ;(def as { close?: () => void }).close?.()
    }
  }

  private save(a: AgentSubmission): AgentRecord {
    if (this.reserved(a.id)) throw new Error(`agent id ${a.id} belongs to a built-in or installed agent`)
    const prev = this.get(a.id)
    if (prev && prev.submittedBy !== a.submittedBy && a.submittedBy !== 'admin') throw new Error(`agent id ${a.id} is taken by another author`)
    return this.records.savePending(a)
  }

  /** The admin's decision; returns the updated record. */
  decide(id: string, status: 'approved' | 'rejected', note: string | null = null): AgentRecord {
    if (!this.get(id)) throw new Error(`no agent ${id}`)
    this.records.decide(id, status, note)
    return this.get(id)!
  }

  remove(id: string): boolean {
    return this.records.remove(id)
  }
}

// @NOTE not a valid agent id, so it cannot collide with one
const PUBLISHED_FIELD = ':published'

/** Approved agents in Redis, so score workers on any machine load the same ones. */
export class AgentDistribution {
  private readonly redis: Redis
  private readonly key: string

  constructor(redis: Redis, prefix: string) {
    this.redis = redis
    this.key = `${prefix}:agents`
  }

  async publish(specs: AgentSpec[]): Promise<void> {
    const m = this.redis.multi().del(this.key).hset(this.key, PUBLISHED_FIELD, String(Date.now()))
    for (const s of specs) m.hset(this.key, s.id, JSON.stringify(s))
    await m.exec()
  }

  /** Whether a list is in Redis at all (a restarted Redis without persistence has none). */
  async published(): Promise<boolean> {
    return (await this.redis.hexists(this.key, PUBLISHED_FIELD)) === 1
  }

  /** The published list, or null when none is (then a worker keeps the agents it has). */
  async fetch(): Promise<AgentSpec[] | null> {
    const all = await this.redis.hgetall(this.key)
    if (!(PUBLISHED_FIELD in all)) return null
    return Object.entries(all)
      .filter(([k]) => k !== PUBLISHED_FIELD)
      .map(([, j]) => JSON.parse(j) as AgentSpec)
  }
}

/** An agent's shared state: disabled (by whichever process counted the strikes) or enabled again by the admin, and when. */
interface SharedState {
  state: 'disabled' | 'enabled'
  at: number
  reason?: string
}

/**
 * Which agents are disabled, as one view for every process: a process that
 * disables an agent (too many strikes) writes it to a Redis hash, the admin's
 * "enable" writes the agent back as enabled, and every process applies the
 * hash to its own host (the newest word on an agent wins). So the catalog
 * and the admin API, which read the serving process's host, say what the
 * refresh and score workers decided, and an agent disabled anywhere stops
 * running everywhere.
 */
export class AgentStates {
  private readonly redis: Redis
  private readonly key: string

  constructor(redis: Redis, prefix: string) {
    this.redis = redis
    this.key = `${prefix}:agents:state`
  }

  /** Marks an agent enabled from now on, in every process. */
  async enable(id: string, at = Date.now()): Promise<void> {
    await this.redis.hset(this.key, id, JSON.stringify({ state: 'enabled', at } satisfies SharedState))
  }

  /** Publishes what this host disabled since the hash last heard of it, and applies the hash to the host. */
  async sync(host: AgentHost): Promise<void> {
    const all = await this.redis.hgetall(this.key)
    const shared = new Map<string, SharedState>()
    for (const [id, json] of Object.entries(all)) {
      try {
        const v = JSON.parse(json) as SharedState
        if ((v.state === 'disabled' || v.state === 'enabled') && typeof v.at === 'number') shared.set(id, v)
      } catch {
        // not ours: ignored
      }
    }
    const local = new Map(host.disabledAgents())
    const publish: string[] = []
    for (const [id, d] of local) {
      const s = shared.get(id)
      if (!s || s.at < d.at) publish.push(id, JSON.stringify({ state: 'disabled', at: d.at, reason: d.reason } satisfies SharedState))
    }
    if (publish.length) await this.redis.hset(this.key, ...publish)
    for (const [id, s] of shared) {
      const d = local.get(id)
      if (s.state === 'disabled' && !d) host.disable(id, s.reason ?? 'disabled', s.at)
      else if (s.state === 'enabled' && d && d.at <= s.at) host.enable(id)
    }
  }
}

/**
 * Keeps a host's run-time agents in line with a list of approved specs:
 * loads new or changed ones, removes withdrawn ones. A spec that fails to
 * load is logged and skipped; the rest still load.
 */
export class AgentSync {
  private readonly host: AgentHost
  private readonly log: Logger
  private readonly loaded = new Map<string, { revision: number; def: AnyAgent }>()

  constructor(host: AgentHost, log: Logger) {
    this.host = host
    this.log = log
  }

  async apply(specs: AgentSpec[]): Promise<void> {
    const want = new Map(specs.map((s) => [s.id, s]))
    for (const [id, l] of this.loaded) {
      if (want.get(id)?.revision === l.revision) continue
      if (!want.has(id)) {
        this.host.remove(id)
        ;(l.def as { close?: () => void }).close?.()
        this.loaded.delete(id)
        this.log.info({ agent: id }, 'agent withdrawn')
      }
    }
    for (const spec of specs) {
      if (this.loaded.get(spec.id)?.revision === spec.revision) continue
      const kind = this.host.kindOf(spec.id)
      if (kind === 'builtin' || kind === 'installed') continue
      try {
        const def = await loadSpec(spec)
        this.host.add(def, spec.kind)
        const old = this.loaded.get(spec.id)
        ;(old?.def as { close?: () => void } | undefined)?.close?.()
        this.loaded.set(spec.id, { revision: spec.revision, def })
        this.log.info({ agent: spec.id, kind: spec.kind }, 'agent loaded')
      } catch (err) {
        this.log.warn({ agent: spec.id, err: (err as Error).message }, 'agent failed to load')
      }
    }
  }

  close(): void {
    for (const l of this.loaded.values()) (l.def as { close?: () => void }).close?.()
  }
}
