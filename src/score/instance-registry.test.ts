import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import { queuePrefix, REDIS_URL } from '../../test/support/resources.ts'
import { silentLogger } from '../logger.ts'
import { redisOptions } from '../contracts/queues.ts'
import { BUILTIN_AGENTS } from './agents/index.ts'
import { AgentHost } from './host.ts'
import { InstanceRegistry } from './instance-registry.ts'

describe('InstanceRegistry (real Redis)', () => {
  const q = queuePrefix()
  const redis = new Redis({ ...redisOptions(REDIS_URL), maxRetriesPerRequest: 1 })
  afterAll(async () => {
    redis.disconnect()
    await q.cleanup()
  })

  it('keeps the most recently registered instances, at most max, for score workers to pre-compute', async () => {
    const host = new AgentHost(BUILTIN_AGENTS, silentLogger)
    const registry = new InstanceRegistry(redis, q.prefix, host, silentLogger, 0, 64)
    const kw = (i: number) => host.instance('keyword', { include: [`word${i}`] })
    const first = kw(0)
    for (let i = 0; i < 150; i++) {
      await registry.register([kw(i)])
      // one mix still read registers its instance again now and then: it stays
      if (i % 20 === 0) await registry.register([first])
    }
    const keys = new Set((await registry.active()).map((i) => i.key))
    expect(keys.size).toBe(64)
    expect(keys.has(first.key)).toBe(true)
    expect(keys.has(kw(149).key)).toBe(true)
    expect(keys.has(kw(1).key)).toBe(false)
    expect(await redis.hlen(`${q.prefix}:agent-instances`)).toBe(64)
    // another worker reading the same registry sees the same bounded set
    const other = new InstanceRegistry(redis, q.prefix, new AgentHost(BUILTIN_AGENTS, silentLogger), silentLogger, 0, 64)
    expect(new Set((await other.active()).map((i) => i.key))).toEqual(keys)
  })
})
