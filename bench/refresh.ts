/**
 * refresh_ms alone: one FeedCache.build of the science feed's benchmark mix
 * (4 agents of the reader's + the feed's topic filter = 5) over
 * `--candidates` candidates, on a store of `--posts` posts generated
 * straight through the writer (bench/store-gen.ts).
 *
 *   node bench/refresh.ts [--posts 300000] [--candidates 50000] [--runs 7] [--db FILE]
 *
 * With --db an existing file is reused when it already holds posts.
 * Prints one JSON line.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { EXAMPLE_FEEDS_FILE, readConfig } from '../src/config.ts'
import { AppContext } from '../src/context.ts'
import type { Feed } from '../src/feeds.ts'
import { FeedCache } from '../src/rank/feed-cache.ts'
import { BatchWriter } from '../src/store/writer.ts'
import { generateStore } from './store-gen.ts'
import { median, round } from './util.ts'
import { benchInstances } from './writer.ts'
import { refreshMix } from './workload.ts'

export interface RefreshBenchResult {
  refresh_ms: number
  refresh_first_ms: number
  refresh_candidates: number
  refresh_agents: number
  refresh_store_posts: number
}

/** Times builds of a feed like `science` with maxCandidates = candidates, on the context's store. */
export function timeRefresh(ctx: AppContext, candidates: number, runs = 7): RefreshBenchResult {
  const science = ctx.feeds.find((f) => f.rkey === 'science')
  if (!science) throw new Error('the example feeds file no longer has the "science" feed')
  const feed: Feed = { ...science, maxCandidates: candidates, windowHours: 48 }
  const mix = refreshMix(ctx.host, feed)
  const cache = new FeedCache(ctx.db.sqlite, ctx.host, ctx.log, ctx.config)
  const times: number[] = []
  for (let i = 0; i < runs; i++) {
    const t = performance.now()
    cache.build(feed, mix)
    times.push(performance.now() - t)
  }
  const have = Number(ctx.db.sqlite.prepare('SELECT count(*) FROM posts WHERE created_at >= ?').pluck().get(Date.now() - 48 * 3_600_000))
  return {
    refresh_ms: round(median(times.slice(1)), 1),
    refresh_first_ms: round(times[0], 1),
    refresh_candidates: Math.min(candidates, have),
    refresh_agents: mix.entries.length,
    refresh_store_posts: Number(ctx.db.sqlite.prepare('SELECT count(*) FROM posts').pluck().get()),
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { posts: { type: 'string' }, candidates: { type: 'string' }, runs: { type: 'string' }, db: { type: 'string' } },
  })
  const dir = values.db ? null : fs.mkdtempSync(path.join(os.tmpdir(), 'skysift-refresh-'))
  const file = values.db ?? path.join(dir!, 'r.db')
  const ctx = new AppContext(readConfig({}, { dbPath: file, feedsFile: EXAMPLE_FEEDS_FILE }), pino({ level: 'warn' }, pino.destination(2)))
  try {
    const have = Number(ctx.db.sqlite.prepare('SELECT count(*) FROM posts').pluck().get())
    if (!have) {
      const t = performance.now()
      const g = await generateStore(new BatchWriter(ctx.db.sqlite), ctx.host, benchInstances(ctx), {
        posts: Number(values.posts ?? 300_000),
        hours: 48,
        onProgress: (n) => process.stderr.write(`  ${n} posts\n`),
      })
      process.stderr.write(`generated ${g.posts} posts, ${g.likes} likes in ${round((performance.now() - t) / 1000, 1)} s\n`)
    }
    console.log(JSON.stringify(timeRefresh(ctx, Number(values.candidates ?? 50_000), Number(values.runs ?? 7))))
  } finally {
    await ctx.close()
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  }
}
