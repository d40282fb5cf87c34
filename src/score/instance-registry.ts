import type { Redis } from 'ioredis'
import type { Logger } from '../logger.ts'
import type { AgentHost, AgentInstance } from './host.ts'

/**
 * The set of static agent instances (agent + options) that score workers
 * pre-compute for every new post. It lives in Redis so stateless workers on
 * any machine see the same set; whoever saves a mix registers its instances.
 */
export class InstanceRegistry {
  private readonly redis: Redis
  private readonly key: string
  private readonly host: AgentHost
  private readonly log: Logger
  private cached: AgentInstance[] = []
  private loadedAt = 0
  private readonly ttlMs: number

  constructor(redis: Redis, prefix: string, host: AgentHost, log: Logger, ttlMs = 5000) {
    this.redis = redis
    this.key = `${prefix}:agent-instances`
    this.host = host
    this.log = log
    this.ttlMs = ttlMs
  }

  /** Adds instances (only static ones are kept). */
  async register(instances: AgentInstance[]): Promise<void> {
    const fields: string[] = []
    for (const i of instances) {
      if (!i.dynamic) fields.push(i.key, JSON.stringify({ agent: i.def.id, options: i.rawOptions }))
    }
    if (fields.length) await this.redis.hset(this.key, ...fields)
    this.loadedAt = 0
  }

  /** The current static instances, re-read from Redis at most every ttlMs. */
  async active(): Promise<AgentInstance[]> {
    if (Date.now() - this.loadedAt < this.ttlMs) return this.cached
    const all = await this.redis.hgetall(this.key)
    const out: AgentInstance[] = []
    for (const [key, json] of Object.entries(all)) {
      try {
        const { agent, options } = JSON.parse(json)
        const inst = this.host.instance(agent, options)
        if (!inst.dynamic) out.push(inst)
      } catch (err) {
        // an agent another node knows but this one does not (or a newer version): skip it here
        this.log.debug({ key, err: (err as Error).message }, 'skipping agent instance')
      }
    }
    this.cached = out
    this.loadedAt = Date.now()
    return out
  }
}
