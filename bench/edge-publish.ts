/**
 * `node bench/edge-publish.ts`: what publishing for edge nodes (SKYSIFT_EDGE_PUBLISH) costs a primary.
 *
 *   - the size of a published snapshot (`snap:<id>`, a full list of SKYSIFT_CACHE_SIZE items) in Redis;
 *   - placing readers an edge touched (readers without feedback share the anonymous list: a pointer each);
 *   - interactions an edge accepted (each stores feedback, makes the reader's overlay and publishes it);
 *   - an idle primary: CPU per second with publishing on (heartbeat, anonymous pointers, `changes`) and off.
 *
 * A temp SQLite file and a unique Redis prefix, removed at the end. Flags: --posts N (5000) --readers N (500)
 * --writes N (200) --idle S (10). The last line on stdout is one JSON object with the figures.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { readConfig } from '../src/config.ts'
import { AppContext } from '../src/context.ts'
import { edgeKeys, readerFeedField } from '../src/contracts/edge.ts'
import { deleteQueueKeys } from '../src/contracts/queues.ts'
import { silentLogger } from '../src/logger.ts'
import { createServeApp } from '../src/runtime.ts'
import { BatchWriter } from '../src/store/writer.ts'

const { values: a } = parseArgs({
  options: {
    posts: { type: 'string', default: '5000' },
    readers: { type: 'string', default: '500' },
    writes: { type: 'string', default: '200' },
    idle: { type: 'string', default: '10' },
  },
})
const POSTS = Number(a.posts)
const READERS = Number(a.readers)
const WRITES = Math.min(Number(a.writes), READERS)
const IDLE_S = Number(a.idle)
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skysift-edge-bench-'))
const prefix = `bench-edge-${process.pid}`
const did = (i: number) => `did:plc:${`bench${i}`.padEnd(24, 'x')}`
const cpuMs = (since: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since)
  return (u.user + u.system) / 1000
}
const until = async (what: string, check: () => Promise<unknown>, ms = 120_000) => {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

const redis = new Redis(REDIS_URL)
const out: Record<string, number> = {}
try {
  const config = (edgePublish: boolean) =>
    readConfig({ REDIS_URL }, { dbPath: path.join(dir, 'skysift.db'), queuePrefix: prefix, edgePublish, backfillConcurrency: 0, logLevel: 'silent' })
  const ctx = new AppContext(config(true), silentLogger)
  const now = Date.now()
  const events = Array.from({ length: POSTS }, (_, i) => {
    const author = `did:plc:${`author${i % 500}`.padEnd(24, 'x')}`
    return {
      t: 'post' as const,
      uri: `at://${author}/app.bsky.feed.post/3kt${String(i).padStart(10, 'a')}`,
      cid: 'bafyreiaaaaaaaaaaaaaaaaaaaa',
      author,
      createdAt: now - i * 10_000,
      text: `post ${i} about science and space`,
      langs: ['en'],
      replyRoot: null,
      replyParent: null,
      embed: null,
      quote: null,
      tags: [],
      labels: [],
    }
  })
  new BatchWriter(ctx.db.sqlite).write({ id: 'seed', events, scores: [], eventTime: now })
  const served = createServeApp(ctx)
  const keys = edgeKeys(prefix)
  const feed = ctx.feeds[0]
  await until('the anonymous pointer', async () => redis.hget(keys.anon, feed.uri))
  const anon = Number(await redis.hget(keys.anon, feed.uri))
  out.snapshot_items = (JSON.parse((await redis.get(keys.snapshot(anon)))!) as { items: unknown[] }).items.length
  out.snapshot_bytes = await redis.strlen(keys.snapshot(anon))
  out.snapshot_redis_bytes = Number(await redis.call('MEMORY', 'USAGE', keys.snapshot(anon)))

  // touches: one per reader, as edges send them for readers served a first page
  let t0 = performance.now()
  let c0 = process.cpuUsage()
  for (let i = 0; i < READERS; i++) await redis.xadd(keys.touch, '*', 'feed', feed.uri, 'did', did(i), 'int', '')
  await until('every reader placed', async () => (await redis.exists(keys.reader(did(READERS - 1)))) === 1)
  out.touch_wall_ms_per_reader = (performance.now() - t0) / READERS
  out.touch_cpu_ms_per_reader = cpuMs(c0) / READERS

  // writes: a "show less" each, for readers already placed (each makes and publishes an overlay)
  const first = (JSON.parse((await redis.get(keys.snapshot(anon)))!) as { items: [string, string][] }).items[0]
  const body = JSON.stringify({ interactions: [{ item: first[0], event: 'app.bsky.feed.defs#requestLess', feedContext: first[1] }] })
  const before = await redis.info('memory')
  t0 = performance.now()
  c0 = process.cpuUsage()
  for (let i = 0; i < WRITES; i++) await redis.xadd(keys.writes, '*', 'kind', 'interactions', 'did', did(i), 'body', body)
  await until('every writer placed on an overlay', async () => (await redis.hget(keys.reader(did(WRITES - 1)), readerFeedField(feed.uri))) !== String(anon))
  out.write_wall_ms_per_reader = (performance.now() - t0) / WRITES
  out.write_cpu_ms_per_reader = cpuMs(c0) / WRITES
  const used = (info: string) => Number(/used_memory:(\d+)/.exec(info)?.[1])
  out.write_redis_bytes_per_overlay = Math.round((used(await redis.info('memory')) - used(before)) / WRITES)

  // idle: heartbeat, anonymous pointers and `changes` with nothing happening, then the same without publishing
  await new Promise((r) => setTimeout(r, 1000))
  c0 = process.cpuUsage()
  await new Promise((r) => setTimeout(r, IDLE_S * 1000))
  out.idle_cpu_ms_per_s_publishing = cpuMs(c0) / IDLE_S
  await served.close()
  await ctx.close()
  const plain = new AppContext(config(false), silentLogger)
  const plainServed = createServeApp(plain)
  await new Promise((r) => setTimeout(r, 1000))
  c0 = process.cpuUsage()
  await new Promise((r) => setTimeout(r, IDLE_S * 1000))
  out.idle_cpu_ms_per_s_not_publishing = cpuMs(c0) / IDLE_S
  await plainServed.close()
  await plain.close()
} finally {
  redis.disconnect()
  await deleteQueueKeys(REDIS_URL, prefix)
  fs.rmSync(dir, { recursive: true, force: true })
}
for (const [k, v] of Object.entries(out)) process.stderr.write(`${k.padEnd(36)} ${Number.isInteger(v) ? v : v.toFixed(3)}\n`)
console.log(JSON.stringify(out))
process.exit(0)
