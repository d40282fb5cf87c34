import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { Redis } from 'ioredis'
import type { Logger } from './logger.ts'
import { redisOptions } from './contracts/queues.ts'

/** True when a Redis server answers PING at `url` within `timeoutMs`. */
export async function redisAnswers(url: string, timeoutMs = 1500): Promise<boolean> {
  const r = new Redis({
    ...redisOptions(url),
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  })
  r.on('error', () => {})
  try {
    await r.connect()
    return (await r.ping()) === 'PONG'
  } catch {
    return false
  } finally {
    r.disconnect()
  }
}

const LOCAL = new Set(['127.0.0.1', 'localhost', '::1', '[::1]'])

/**
 * Makes sure Redis answers. When it does not, the URL points at this
 * machine and `redis-server` is installed, starts one as a child process
 * (nothing kept on disk) and returns it; otherwise throws a message that
 * says how to get one.
 */
export async function ensureRedis(url: string, log: Logger, allowStart: boolean): Promise<ChildProcess | null> {
  if (await redisAnswers(url)) return null
  const { host, port } = redisOptions(url)
  const installed = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
  if (!allowStart || !LOCAL.has(host) || !installed) {
    throw new Error(
      `Redis is not reachable at ${url}. ` +
        (installed ? 'Start it, or ' : 'Install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) and start it, or ') +
        'point REDIS_URL at a running server.',
    )
  }
  log.info({ port }, 'Redis not running; starting a local redis-server (in memory only)')
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  for (let i = 0; i < 50; i++) {
    if (await redisAnswers(url, 500)) return child
    if (child.exitCode !== null) break
    await new Promise((r) => setTimeout(r, 100))
  }
  child.kill()
  throw new Error(`started redis-server on port ${port} but it does not answer`)
}
