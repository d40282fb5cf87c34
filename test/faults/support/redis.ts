/**
 * A redis-server of the scenario's own (never the shared one at REDIS_URL), so it
 * can be stopped and started again. `persistent` keeps an append-only file
 * in the scenario's dir (fsync on every write) so a restart brings the
 * queues back; without it a restart comes back empty, as the shipped
 * compose.yaml and the Redis `npm start` launches do.
 */
import fs from 'node:fs'
import path from 'node:path'
import { redisAnswers } from '../../../src/redis-server.ts'
import { Proc } from './procs.ts'
import { until } from './scenario.ts'

export interface OwnRedis {
  url: string
  port: number
  proc: Proc
  start(): Promise<void>
  /** graceful stop (SIGTERM: a persistent server flushes its file) */
  stop(): Promise<void>
}

export async function ownRedis(dir: string, port: number, opts: { persistent: boolean }): Promise<OwnRedis> {
  const data = path.join(dir, `redis-${port}`)
  fs.mkdirSync(data, { recursive: true })
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', data, '--logfile', path.join(data, 'redis.log')]
  if (opts.persistent) args.push('--appendonly', 'yes', '--appendfsync', 'always')
  else args.push('--appendonly', 'no')
  const url = `redis://127.0.0.1:${port}`
  const proc = new Proc(`redis-${port}`, args, process.env, path.join(data, 'stdout.log'), 'redis-server')
  const r: OwnRedis = {
    url,
    port,
    proc,
    async start() {
      proc.start()
      await until(`redis-server on ${port}`, () => redisAnswers(url, 500), 15_000, 100)
    },
    async stop() {
      await proc.stop(10_000)
      await until(`redis-server on ${port} to stop`, async () => !(await redisAnswers(url, 300)), 15_000, 100)
    },
  }
  return r
}
