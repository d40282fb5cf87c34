/**
 * refresh_ms alone: one ListBuilder.build of the science feed's benchmark mix
 * (4 agents of the reader's + the feed's topic filter = 5) over
 * `--candidates` candidates, on a store of `--posts` posts generated
 * straight through the writer (bench/store-gen.ts). Between two builds the
 * network moves on as it would between two refreshes of a list (the 30 s
 * cache TTL): `--churn-posts` new posts (2,700: 30 s at the live network's
 * busier post rate of 90/s) with their likes are written (not timed), so
 * each build has new candidates, changed counts and a list to merge.
 * `--churn-posts 0` times builds over an unchanged store.
 *
 *   node bench/refresh.ts [--posts 300000] [--candidates 50000] [--runs 7] [--churn-posts 2700] [--db FILE]
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
import type { ListBuilder } from '../src/feed/lists.ts'
import { openLists } from '../src/feed/open-lists.ts'
import type { ResolvedMix } from '../src/rank/mix.ts'
import { BatchWriter } from '../src/store/writer.ts'
import { generateStore } from './store-gen.ts'
import { median, round } from './util.ts'
import { benchInstances } from './writer.ts'
import { refreshMix } from './workload.ts'

export interface RefreshBenchResult {
  refresh_ms: number
  /** the same builds in CPU time */
  refresh_cpu_ms: number
  refresh_first_ms: number
  refresh_candidates: number
  refresh_agents: number
  refresh_store_posts: number
  /** new posts written between two timed builds (with their likes) */
  refresh_churn_posts: number
  refresh_churn_likes: number
}

/** 30 s of the live network's posts at its busier rate (~90/s): what changes between two refreshes of a list. */
export const LIVE_CHURN_POSTS = 2700

/**
 * Times `runs` builds of a list; before every build but the first,
 * `churnPosts` new posts (and likes of them) are written through the writer,
 * untimed. The median leaves out the first build (which reads every
 * candidate and its stored scores once).
 */
export async function timeBuilds(
  ctx: AppContext,
  lists: ListBuilder,
  feed: Feed,
  mix: ResolvedMix,
  runs: number,
  churnPosts: number,
): Promise<{ first_ms: number; median_ms: number; median_cpu_ms: number; churn_likes: number }> {
  const writer = new BatchWriter(ctx.db.sqlite)
  const instances = benchInstances(ctx)
  const times: number[] = []
  const cpu: number[] = []
  let likes = 0
  for (let i = 0; i < runs; i++) {
    if (i > 0 && churnPosts > 0) {
      // the newest posts: created over the last few seconds, as a live network adds them
      const g = await generateStore(writer, ctx.host, instances, { posts: churnPosts, hours: 10 / 3600, likesPerPost: 1, seed: (Date.now() + i) % 2 ** 31 })
      likes += g.likes
    }
    const t = performance.now()
    const c = process.cpuUsage()
    lists.build(feed, mix)
    times.push(performance.now() - t)
    const used = process.cpuUsage(c)
    cpu.push((used.user + used.system) / 1000)
  }
  return {
    first_ms: round(times[0], 1),
    median_ms: round(median(times.slice(1)), 1),
    // @NOTE CPU time of the build (this process): unlike wall time, it does not grow when the machine is busy elsewhere
    median_cpu_ms: round(median(cpu.slice(1)), 1),
    churn_likes: Math.round(likes / Math.max(1, runs - 1)),
  }
}

/** Times builds of a feed like `science` with maxCandidates = candidates, on the context's store. */
export async function timeRefresh(ctx: AppContext, candidates: number, runs = 7, churnPosts = LIVE_CHURN_POSTS): Promise<RefreshBenchResult> {
  const science = ctx.feeds.find((f) => f.rkey === 'science')
  if (!science) throw new Error('the example feeds file no longer has the "science" feed')
  const feed: Feed = { ...science, maxCandidates: candidates, windowHours: 48 }
  const mix = refreshMix(ctx.host, feed)
  const { lists } = openLists(ctx.db.sqlite, ctx.host, ctx.log, ctx.config)
  const t = await timeBuilds(ctx, lists, feed, mix, runs, churnPosts)
  const have = Number(
    ctx.db.sqlite
      .prepare('SELECT count(*) FROM posts WHERE created_at >= ?')
      .pluck()
      .get(Date.now() - 48 * 3_600_000),
  )
  return {
    refresh_ms: t.median_ms,
    refresh_cpu_ms: t.median_cpu_ms,
    refresh_first_ms: t.first_ms,
    refresh_candidates: Math.min(candidates, have),
    refresh_agents: mix.entries.length,
    refresh_store_posts: Number(ctx.db.sqlite.prepare('SELECT count(*) FROM posts').pluck().get()),
    refresh_churn_posts: churnPosts,
    refresh_churn_likes: t.churn_likes,
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: { posts: { type: 'string' }, candidates: { type: 'string' }, runs: { type: 'string' }, 'churn-posts': { type: 'string' }, db: { type: 'string' } },
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
    console.log(
      JSON.stringify(await timeRefresh(ctx, Number(values.candidates ?? 50_000), Number(values.runs ?? 7), Number(values['churn-posts'] ?? LIVE_CHURN_POSTS))),
    )
  } finally {
    await ctx.close()
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  }
}
