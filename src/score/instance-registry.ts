import type { Redis } from 'ioredis'
import type { Logger } from '../logger.ts'
import { DEFAULT_MAX_INSTANCES, type AgentHost, type AgentInstance } from './host.ts'

/**
 * The set of static agent instances (agent + options) that score workers
 * pre-compute for every new post. It lives in Redis so stateless workers on
 * any machine see the same set; whoever saves a mix registers its instances
 * (and registers them again while their lists are read). At most `max` are
 * kept: the ones registered least recently go first, so the work every new
 * post costs stays bounded however many mixes are saved.
 */
export class InstanceRegistry {
  private readonly redis: Redis
  private readonly key: string
  /** the same members by when they were last registered */
  private readonly usedKey: string
  private readonly max: number
  private readonly host: AgentHost
  private readonly log: Logger
  private cached: AgentInstance[] = []
  private loadedAt = 0
  private readonly ttlMs: number

  constructor(redis: Redis, prefix: string, host: AgentHost, log: Logger, ttlMs = 5000, max = DEFAULT_MAX_INSTANCES) {
    this.redis = redis
    this.key = `${prefix}:agent-instances`
    this.usedKey = `${prefix}:agent-instances:used`
    this.max = max
    this.host = host
    this.log = log
    this.ttlMs = ttlMs
  }

  /** Adds instances (only static ones are kept), or marks them used again; the least recently registered beyond `max` go. */
  async register(instances: AgentInstance[]): Promise<void> {
    const fields: string[] = []
    const used: (string | number)[] = []
    const now = Date.now()
    for (const i of instances) {
      if (i.dynamic) continue
      fields.push(i.key, JSON.stringify({ agent: i.def.id, options: i.rawOptions }))
      used.push(now, i.key)
    }
    if (!fields.length) return
    const [, , [, count]] = (await this.redis
      .multi()
      .hset(this.key, ...fields)
      .zadd(this.usedKey, ...used)
      .zcard(this.usedKey)
      .exec()) as [unknown, unknown, [unknown, number]]
    if (count > this.max) {
      const old = await this.redis.zrange(this.usedKey, '0', String(count - this.max - 1))
      if (old.length)
        await this.redis
          .multi()
          .zrem(this.usedKey, ...old)
          .hdel(this.key, ...old)
          .exec()
    }
    this.loadedAt = 0
  }

  /** The current static instances, re-read from Redis at most every ttlMs. */
  async active(): Promise<AgentInstance[]> {
    if (Date.now() - this.loadedAt < this.ttlMs) return this.cached
    const all = await this.redis.hgetall(this.key)
    const keys = Object.keys(all)
    if (keys.length > this.max) {
      // @NOTE instances registered without a time (before the bound existed) are dropped, once
      const timed = new Set(await this.redis.zrange(this.usedKey, '0', '-1'))
      const untimed = keys.filter((k) => !timed.has(k))
      if (untimed.length) await this.redis.hdel(this.key, ...untimed)
      for (const k of untimed) delete all[k]
    }
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
