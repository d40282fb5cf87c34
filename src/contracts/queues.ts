/**
 * The BullMQ and ioredis side of the queues: connection options from a
 * redis:// URL, the job defaults, and a producer-side queue. The one place
 * both the producers and the consumers of a queue connect through.
 */
import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq'
import { Redis } from 'ioredis'
import type { QueueName } from './jobs.ts'

/** Connection options for BullMQ from a redis:// URL. */
export function redisOptions(url: string): ConnectionOptions & { host: string; port: number } {
  const u = new URL(url)
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
  }
}

/** Job retention: completed jobs go quickly, failed ones stay for inspection. */
const JOB_DEFAULTS: JobsOptions = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 500 },
  removeOnComplete: { age: 600, count: 2000 },
  removeOnFail: { age: 7 * 86_400, count: 10_000 },
}

/**
 * A producer-side queue. It fails fast while Redis is down (no offline
 * buffering), so callers see the error and keep their cursor where it was.
 */
export function producerQueue<T = unknown>(name: QueueName, redisUrl: string, prefix: string): Queue<T> {
  return new Queue<T>(name, {
    connection: { ...redisOptions(redisUrl), enableOfflineQueue: false, maxRetriesPerRequest: 1 },
    prefix,
    defaultJobOptions: JOB_DEFAULTS,
  })
}

/**
 * Deletes every Redis key under `prefix:` (all queues of a prefix: a
 * benchmark's or a test's own); returns how many. Fails fast when Redis
 * cannot be reached.
 */
export async function deleteQueueKeys(redisUrl: string, prefix: string): Promise<number> {
  const r = new Redis({ ...redisOptions(redisUrl), lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null, connectTimeout: 2000 })
  r.on('error', () => {})
  try {
    await r.connect()
    let n = 0
    let cursor = '0'
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
      cursor = next
      if (keys.length) n += await r.unlink(...keys)
    } while (cursor !== '0')
    return n
  } finally {
    r.disconnect()
  }
}
