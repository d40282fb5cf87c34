/**
 * Benchmark helper (child process, so generating does not count against the
 * server's memory): fills the benchmark's SQLite file with a realistic store
 * through BatchWriter (bench/store-gen.ts), while the server process keeps
 * the file open.
 */
import { pino } from 'pino'
import { readConfig } from '../src/config.ts'
import { AppContext } from '../src/context.ts'
import { BatchWriter } from '../src/store/writer.ts'
import { generateStore } from './store-gen.ts'
import { log, serveHelper } from './util.ts'

export interface StoreGenInput {
  posts: number
  hours: number
  seed: number
  /** static agent instances to score every post with */
  instances: { agent: string; options: Record<string, unknown> }[]
}

async function run(input: StoreGenInput): Promise<{ posts: number; likes: number; ms: number }> {
  const ctx = new AppContext(readConfig(process.env), pino({ level: 'warn' }, pino.destination(2)))
  try {
    const instances = input.instances.map((i) => ctx.host.instance(i.agent, i.options))
    return await generateStore(new BatchWriter(ctx.db.sqlite), ctx.host, instances, {
      posts: input.posts,
      hours: input.hours,
      seed: input.seed,
      onProgress: (n) => log(`  store: ${n} posts written`),
    })
  } finally {
    await ctx.close()
  }
}

serveHelper(run)
