import type { Redis } from 'ioredis'
import type { Logger } from '../logger.ts'
import { AgentDistribution, AgentStates, AgentSync, type AgentStore } from '../score/agent-registry.ts'
import type { AgentHost } from '../score/host.ts'
import { withTimeout } from '../util/timeout.ts'

export interface AgentSyncDeps {
  host: AgentHost
  redis: Redis
  queuePrefix: string
  /** the agents table (next to the SQLite file); null where the agents are read from Redis */
  store: AgentStore | null
  /** whether remote agents may keep their private network access (else it is taken away when loaded) */
  allowPrivateAgents: boolean
  log: Logger
  intervalMs?: number
}

/** A running agent sync. */
export interface AgentSyncPart {
  name: string
  /** syncs at once (after any sync in progress) */
  syncNow(): Promise<void>
  store: AgentStore | null
  states: AgentStates
  /** the first sync settled: loaded, or failed and logged */
  ready: Promise<void>
  stop(): Promise<void>
}

/**
 * Keeps a host's run-time agents (approved sandboxed and remote ones)
 * loaded. With the agents table they are read from it and published to
 * Redis; without it (score workers) they are read from Redis. Which agents
 * are disabled is shared through Redis both ways.
 */
export function startAgentSync(d: AgentSyncDeps): AgentSyncPart {
  const { host, store, log } = d
  const sync = new AgentSync(host, log)
  const dist = new AgentDistribution(d.redis, d.queuePrefix)
  const states = new AgentStates(d.redis, d.queuePrefix)
  let seen = ''
  let running: Promise<void> = Promise.resolve()
  const once = async () => {
    let specs
    if (store) {
      specs = store.approvedSpecs()
      if (!d.allowPrivateAgents) specs = specs.map((s) => ({ ...s, config: { ...s.config, allowPrivateNetwork: false } }))
    } else {
      const got = await withTimeout(dist.fetch(), 2000)
      // @NOTE an emptied Redis (restarted without persistence) has no list: keep what is loaded until one is published again
      if (!got) return
      specs = got
    }
    const sig = JSON.stringify(specs.map((s) => [s.id, s.revision]))
    if (sig === seen) {
      if (store && !(await withTimeout(dist.published(), 2000))) {
        await withTimeout(dist.publish(specs), 2000)
        log.info({ agents: specs.length }, 'agents republished to an emptied Redis')
      }
      return
    }
    if (store) await withTimeout(dist.publish(specs), 2000).catch((err) => log.warn({ err: err.message }, 'cannot publish agents to Redis yet'))
    await sync.apply(specs)
    seen = sig
  }
  let stopped = false
  const failed = (err: unknown) => log.debug({ err: (err as Error).message }, 'agent sync failed; will retry')
  // @NOTE disabled agents are one view for all processes: this host's disables go out, everyone else's come in
  const shared = () => (stopped ? undefined : withTimeout(states.sync(host), 2000).catch(failed))
  const syncNow = () => (running = running.then(once).catch(failed).then(shared))
  host.watchDisable(() => void syncNow())
  // the first sync settles (loaded, or failed and logged) before jobs that may name run-time agents are taken
  const ready = syncNow()
  const timer = setInterval(() => void syncNow(), d.intervalMs ?? 5000)
  timer.unref()
  return {
    name: 'agents',
    store,
    states,
    syncNow,
    ready,
    async stop() {
      stopped = true
      clearInterval(timer)
      await running
      sync.close()
    },
  }
}
