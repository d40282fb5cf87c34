import type { PostEvent } from '../contracts/events.ts'
import type { EventsJob } from '../contracts/jobs.ts'
import type { PostScores, StoreBatch } from '../contracts/jobs.ts'
import type { AgentHost, AgentInstance } from './host.ts'
import type { AgentPost } from './sdk.ts'

/** The view of a freshly seen post that static agents get (no engagement yet). */
export function agentPostFromEvent(e: PostEvent): AgentPost {
  return {
    uri: e.uri,
    author: e.author,
    createdAt: e.createdAt,
    text: e.text,
    langs: e.langs,
    tags: e.tags,
    labels: e.labels,
    embed: e.embed,
    quote: e.quote,
    replyRoot: e.replyRoot,
    replyParent: e.replyParent,
    likeCount: 0,
    repostCount: 0,
  }
}

/**
 * Scores one batch of events with every static agent instance and returns
 * the batch for the writer. Stateless apart from the host's counters, so any
 * number of workers can run it. Asynchronous (remote) agents are called in
 * parallel with each other, within the host's deadline.
 */
export async function scoreBatch(host: AgentHost, instances: AgentInstance[], job: EventsJob, now = Date.now()): Promise<StoreBatch> {
  const posts: AgentPost[] = []
  const at: number[] = []
  job.events.forEach((e, i) => {
    if (e.t !== 'post') return
    posts.push(agentPostFromEvent(e))
    at.push(i)
  })
  const postScores: PostScores = { keys: instances.map((i) => i.key), rows: [] }
  if (posts.length) {
    const outs = await Promise.all(instances.map((inst) => (host.isAsync(inst) ? host.runAsync(inst, posts, now) : host.run(inst, posts, now))))
    for (let i = 0; i < posts.length; i++) postScores.rows.push([at[i], ...outs.map((out) => out[i])])
  }
  return { id: job.id, events: job.events, scores: [], postScores, eventTime: job.eventTime }
}
