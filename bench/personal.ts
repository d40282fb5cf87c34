/**
 * The personal agents' cost: on a store generated straight through the
 * writer (bench/store-gen.ts: posts over the last 48 hours, liked by 5,000
 * accounts, so the like graph is the writer's own), new readers arrive with
 * a graph as a backfill brings it (--follows follows, --likes likes of
 * posts in the window, written through the writer like any batch), and
 *
 *   personal_first_list_ms  — a new reader's first page with a personal mix
 *                             (like-minded, friends-liked, follows, recency)
 *                             over --candidates candidates: the graph read,
 *                             the list ranked, the page cut (median of
 *                             --readers readers, each new);
 *   like_minded_build_ms    — ListBuilder.build of like-minded + recency for
 *                             one reader over --candidates candidates,
 *                             with the reader's context read anew each time
 *                             (median of --runs, after one untimed build).
 *
 *   node bench/personal.ts [--posts 300000] [--candidates 50000] [--follows 1000] [--likes 1000] [--readers 5] [--runs 7]
 *
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
import type { IngestEvent } from '../src/contracts/events.ts'
import { openLists } from '../src/feed/open-lists.ts'
import { FeedService } from '../src/feed/service.ts'
import { resolveMix } from '../src/rank/mix.ts'
import { FollowGraph } from '../src/store/follow-graph.ts'
import { LikeGraph } from '../src/store/like-graph.ts'
import { MixStore } from '../src/store/mixes.ts'
import { BatchWriter } from '../src/store/writer.ts'
import { generateStore } from './store-gen.ts'
import { median, round } from './util.ts'
import { benchInstances } from './writer.ts'

export interface PersonalBenchResult {
  personal_first_list_ms: number
  like_minded_build_ms: number
  like_minded_build_cpu_ms: number
  personal_candidates: number
  personal_reader_follows: number
  personal_reader_likes: number
  like_graph_rows: number
}

const PERSONAL_MIX = [
  { agent: 'like-minded', weight: 50 },
  { agent: 'friends-liked', weight: 30 },
  { agent: 'follows', weight: 20 },
  { agent: 'recency', weight: 20 },
]

/** Times personal lists on the context's store (which must already hold posts and likes). */
export async function timePersonal(
  ctx: AppContext,
  o: { candidates: number; follows: number; likes: number; readers: number; runs: number },
): Promise<PersonalBenchResult> {
  const fresh = ctx.feeds.find((f) => f.rkey === 'fresh')
  if (!fresh) throw new Error('the example feeds file no longer has the "fresh" feed')
  const feed: Feed = { ...fresh, maxCandidates: o.candidates, windowHours: 48 }
  const sql = ctx.db.sqlite
  const writer = new BatchWriter(sql)
  const mixes = new MixStore(sql)
  const graph = new FollowGraph(sql)
  const { pages, lists } = openLists(sql, ctx.host, ctx.log, ctx.config)
  const service = new FeedService({ feeds: [feed], host: ctx.host, mixes, pages, lists, graph, log: ctx.log, cacheTtlMs: 60_000 })
  const authors = sql.prepare('SELECT DISTINCT author FROM posts ORDER BY random() LIMIT ?').pluck().all(o.follows) as string[]
  const inWindow = sql.prepare('SELECT uri FROM posts WHERE created_at >= ? ORDER BY random() LIMIT ?').pluck()
  let n = 0
  /** A new reader with a backfilled graph: subscribed, then their follows and likes written as one batch. */
  const newReader = async (i: number): Promise<string> => {
    const did = `did:plc:benchreader${String(i).padStart(13, '0')}`
    await service.putMix(feed, did, PERSONAL_MIX)
    const events: IngestEvent[] = [
      ...authors.map((a) => ({ t: 'follow' as const, uri: `at://${did}/app.bsky.graph.follow/3lf${String(++n).padStart(10, '2')}`, author: did, subject: a })),
      ...(inWindow.all(Date.now() - 48 * 3_600_000, o.likes) as string[]).map((subject) => ({
        t: 'like' as const,
        uri: `at://${did}/app.bsky.feed.like/3ll${String(++n).padStart(10, '2')}`,
        author: did,
        subject,
      })),
    ]
    writer.write({ id: `reader-${i}`, events, scores: [], eventTime: Date.now() })
    return did
  }

  const first: number[] = []
  for (let i = 0; i < o.readers; i++) {
    const did = await newReader(i)
    const t = performance.now()
    service.skeleton(feed, did, 30)
    first.push(performance.now() - t)
  }

  const reader = await newReader(o.readers)
  const mix = resolveMix(ctx.host, [
    { agent: 'like-minded', weight: 80 },
    { agent: 'recency', weight: 20 },
  ])
  const build = () => lists.build(feed, mix, Date.now(), { key: `bench-like-minded-${reader}`, subscriber: graph.context(reader) })
  build()
  const times: number[] = []
  const cpu: number[] = []
  for (let i = 0; i < o.runs; i++) {
    const t = performance.now()
    const c = process.cpuUsage()
    build()
    times.push(performance.now() - t)
    const used = process.cpuUsage(c)
    cpu.push((used.user + used.system) / 1000)
  }
  const have = Number(
    sql
      .prepare('SELECT count(*) FROM posts WHERE created_at >= ?')
      .pluck()
      .get(Date.now() - 48 * 3_600_000),
  )
  return {
    personal_first_list_ms: round(median(first), 1),
    like_minded_build_ms: round(median(times), 1),
    like_minded_build_cpu_ms: round(median(cpu), 1),
    personal_candidates: Math.min(o.candidates, have),
    personal_reader_follows: authors.length,
    personal_reader_likes: o.likes,
    like_graph_rows: new LikeGraph(sql).size(),
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      posts: { type: 'string' },
      candidates: { type: 'string' },
      follows: { type: 'string' },
      likes: { type: 'string' },
      readers: { type: 'string' },
      runs: { type: 'string' },
    },
  })
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skysift-personal-'))
  const ctx = new AppContext(readConfig({}, { dbPath: path.join(dir, 'p.db'), feedsFile: EXAMPLE_FEEDS_FILE }), pino({ level: 'warn' }, pino.destination(2)))
  try {
    const t = performance.now()
    const g = await generateStore(new BatchWriter(ctx.db.sqlite), ctx.host, benchInstances(ctx), {
      posts: Number(values.posts ?? 300_000),
      hours: 48,
      likesPerPost: 2,
    })
    process.stderr.write(`generated ${g.posts} posts, ${g.likes} likes in ${round((performance.now() - t) / 1000, 1)} s\n`)
    const r = await timePersonal(ctx, {
      candidates: Number(values.candidates ?? 50_000),
      follows: Number(values.follows ?? 1_000),
      likes: Number(values.likes ?? 1_000),
      readers: Number(values.readers ?? 5),
      runs: Number(values.runs ?? 7),
    })
    console.log(JSON.stringify(r))
  } finally {
    await ctx.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
