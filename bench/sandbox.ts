import { readFileSync } from 'node:fs'
import { loadSandboxedAgent, quickjsAgentRunner, quickjsRawRunner, sandboxFields, sandboxPayload } from '../src/score/sandbox.ts'
import type { AgentPost, Score } from '../src/score/sdk.ts'

/**
 * Sandboxed agent throughput: the well-behaved fixture agent (word count)
 * through the whole sandbox path (payload encoding, worker round trip,
 * QuickJS, output checks) in batches of 100, against the bare QuickJS call
 * rate in the same VM setup (same limits, interrupt handler and string
 * transfer, in this thread, no worker): a trivial function that parses the
 * same payload and returns a zero per post. A trivial agent through the
 * whole path shows what the sandbox itself costs; the rest of the gap is the
 * agent's own work in QuickJS. Short rounds alternate and medians are
 * reported (the ratios are medians of per-round ratios), so bursts of load
 * from elsewhere skew them less.
 *
 * Run alone: node bench/sandbox.ts
 */

export interface SandboxBenchResult {
  sandbox_posts_per_s: number
  quickjs_raw_posts_per_s: number
  /** sandbox / raw */
  sandbox_vs_raw: number
  /** a trivial agent (a zero per post) through the whole sandbox path / raw: what the sandbox itself costs */
  trivial_agent_vs_raw: number
  /** the same two ratios per CPU second instead of per wall second: steadier when other processes compete for the cores */
  sandbox_vs_raw_cpu: number
  trivial_agent_vs_raw_cpu: number
  /** the same agent code run as plain JavaScript in Node, for scale */
  plain_js_posts_per_s: number
  /**
   * calls of 1,000 posts (10 chunks of batchSize, one round trip between threads for all of them, as a score job's
   * posts or a refresh's candidates arrive) against the same raw per-post rate
   */
  sandbox_1000_posts_per_s: number
  sandbox_vs_raw_1000: number
  trivial_agent_vs_raw_1000: number
  /** the same agent in the same VM setup, called in this thread (no worker, no host-side checks) */
  quickjs_same_agent_posts_per_s: number
  /** sandbox / the same agent called raw, at 100 and at 1,000 posts a call: the sandbox's own cost for a real agent */
  sandbox_vs_same_agent: number
  sandbox_vs_same_agent_1000: number
}

const WORDS = ['sky', 'sunset', 'coffee', 'train', 'rain', 'music', 'game', 'cat', 'city', 'book', 'the', 'a', 'and', 'tonight', 'finally', 'new']

function benchPosts(n: number): AgentPost[] {
  let seed = 42
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff
  const now = Date.parse('2026-11-22T12:00:00Z')
  return Array.from({ length: n }, (_, i) => {
    const words = Array.from({ length: 6 + Math.floor(rnd() * 30) }, () => WORDS[Math.floor(rnd() * WORDS.length)])
    const did = `did:plc:${(100000 + i).toString(36).padStart(24, 'q')}`
    return {
      uri: `at://${did}/app.bsky.feed.post/3k${(1e9 + i * 7919).toString(36)}`,
      author: did,
      createdAt: now - Math.floor(rnd() * 86_400_000),
      text: words.join(' ') + (rnd() < 0.2 ? ' ☀️ café' : ''),
      langs: ['en'],
      tags: rnd() < 0.3 ? ['sky'] : [],
      labels: [],
      embed: rnd() < 0.3 ? 'images' : null,
      quote: null,
      replyRoot: null,
      replyParent: null,
      likeCount: Math.floor(rnd() * 50),
      repostCount: Math.floor(rnd() * 5),
    }
  })
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/** Posts per second of wall time, and per second of this process's CPU time (all threads: the sandbox's worker too). */
interface Rate {
  wall: number
  cpu: number
}

function measure(fn: () => void, posts: number, ms: number, warmup = 10): Rate {
  for (let i = 0; i < warmup; i++) fn()
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  let n = 0
  while (performance.now() - t0 < ms) {
    fn()
    n++
  }
  const wall = performance.now() - t0
  const cpu = process.cpuUsage(c0)
  return { wall: (n * posts * 1000) / wall, cpu: (n * posts * 1e6) / Math.max(1, cpu.user + cpu.system) }
}

export async function sandboxBench(opts: { roundMs?: number; rounds?: number } = {}): Promise<SandboxBenchResult> {
  const roundMs = opts.roundMs ?? 300
  const rounds = opts.rounds ?? 7
  const source = readFileSync(new URL('../test/fixtures/agents/good-agent.js', import.meta.url), 'utf8')
  const plainAgent = (await import(new URL('../test/fixtures/agents/good-agent.js', import.meta.url).href)).default as {
    scoreBatch(p: AgentPost[], c: unknown): Score[]
  }
  const agent = await loadSandboxedAgent(source)
  const trivial = await loadSandboxedAgent(
    "export default { id: 'zero', version: '1', title: 'Zero', description: 'A zero per post', api: 1, needs: ['text'], scoreBatch(posts) { return posts.map(() => 0) } }",
  )
  try {
    const posts = benchPosts(100)
    const posts1000 = benchPosts(1000)
    const ctx = { options: agent.options.parse({}), now: Date.parse('2026-11-22T12:00:00Z') }
    const payload = sandboxPayload(sandboxFields(agent.needs), posts, JSON.stringify(ctx.options), ctx.now)
    if (JSON.stringify(agent.scoreBatch(posts, ctx)) !== JSON.stringify(plainAgent.scoreBatch(posts, ctx)))
      throw new Error('sandboxed and plain results differ')

    const raw = await quickjsRawRunner(payload, posts.length)
    const same = await quickjsAgentRunner(source, payload, posts.length)
    try {
      const sameRate = () => measure(() => same.call(), posts.length, roundMs, 1)
      const rawRate = () => measure(() => raw.call(), posts.length, roundMs, 1)
      const sandboxRate = () => measure(() => agent.scoreBatch(posts, ctx), posts.length, roundMs)
      const zeroRate = () => measure(() => trivial.scoreBatch(posts, ctx), posts.length, roundMs)
      const sandbox1000Rate = () => measure(() => agent.scoreBatch(posts1000, ctx), posts1000.length, roundMs, 3)
      const zero1000Rate = () => measure(() => trivial.scoreBatch(posts1000, ctx), posts1000.length, roundMs, 3)
      // warm up (V8 tiers WebAssembly code up after a while), then short alternating rounds;
      // medians, and medians of each round's ratios, shrug off bursts of load
      rawRate()
      sameRate()
      sandboxRate()
      zeroRate()
      const raws: Rate[] = []
      const sandboxes: Rate[] = []
      const zeros: Rate[] = []
      const sandboxes1000: Rate[] = []
      const zeros1000: Rate[] = []
      const sames: Rate[] = []
      for (let r = 0; r < rounds; r++) {
        raws.push(rawRate())
        sames.push(sameRate())
        sandboxes.push(sandboxRate())
        zeros.push(zeroRate())
        sandboxes1000.push(sandbox1000Rate())
        zeros1000.push(zero1000Rate())
      }
      const plain = measure(() => plainAgent.scoreBatch(posts, ctx), posts.length, roundMs)
      const r3 = (x: number) => Math.round(x * 1000) / 1000
      const ratio = (xs: Rate[], k: keyof Rate, base = raws) => r3(median(xs.map((x, i) => x[k] / base[i][k])))
      return {
        sandbox_posts_per_s: Math.round(median(sandboxes.map((x) => x.wall))),
        quickjs_raw_posts_per_s: Math.round(median(raws.map((x) => x.wall))),
        sandbox_vs_raw: ratio(sandboxes, 'wall'),
        trivial_agent_vs_raw: ratio(zeros, 'wall'),
        sandbox_vs_raw_cpu: ratio(sandboxes, 'cpu'),
        trivial_agent_vs_raw_cpu: ratio(zeros, 'cpu'),
        plain_js_posts_per_s: Math.round(plain.wall),
        sandbox_1000_posts_per_s: Math.round(median(sandboxes1000.map((x) => x.wall))),
        sandbox_vs_raw_1000: ratio(sandboxes1000, 'wall'),
        trivial_agent_vs_raw_1000: ratio(zeros1000, 'wall'),
        quickjs_same_agent_posts_per_s: Math.round(median(sames.map((x) => x.wall))),
        sandbox_vs_same_agent: ratio(sandboxes, 'wall', sames),
        sandbox_vs_same_agent_1000: ratio(sandboxes1000, 'wall', sames),
      }
    } finally {
      raw.dispose()
      same.dispose()
    }
  } finally {
    await Promise.all([agent.close(), trivial.close()])
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await sandboxBench(), null, 2))
}
