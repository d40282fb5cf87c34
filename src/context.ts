import fs from 'node:fs'
import { Redis } from 'ioredis'
import type { Config } from './config.ts'
import { loadFeeds, type Feed } from './feeds.ts'
import type { Logger } from './logger.ts'
import { redisOptions } from './contracts/queues.ts'
import { BUILTIN_AGENTS } from './score/agents/index.ts'
import { loadInstalledAgents } from './score/agent-registry.ts'
import { AgentHost, type AnyAgent } from './score/host.ts'
import { LabelerLabels } from './score/labelers.ts'
import { createIdResolver } from './serve/auth.ts'
import type { IdResolver } from '@atproto/identity'
import { openDb, type Db } from './store/db.ts'

export const VERSION: string = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version

/**
 * Everything a process needs, built once at start and passed explicitly.
 * The SQLite file and Redis connections are opened on first use, so a score
 * worker on another machine never touches SQLite.
 */
export class AppContext {
  readonly config: Readonly<Config>
  readonly log: Logger
  readonly host: AgentHost
  readonly feeds: Feed[]
  readonly version = VERSION
  private _db: Db | null = null
  private readonly redisClients: Redis[] = []

  /** `installed`: the admin's installed agents, already loaded (see AppContext.create). */
  constructor(config: Readonly<Config>, log: Logger, installed: AnyAgent[] = []) {
    this.config = config
    this.log = log
    this.host = new AgentHost(BUILTIN_AGENTS, log.child({ sub: 'agents' }), { maxLabelersPerMix: config.labelersPerMix, maxInstances: config.agentInstances })
    for (const def of installed) {
      if (this.host.kindOf(def.id)) throw new Error(`installed agent ${def.id} has the id of a built-in agent`)
      this.host.add(def, 'installed')
    }
    // @NOTE feeds may use built-in and installed agents; run-time agents load later and may be withdrawn
    this.feeds = loadFeeds(config.feedsFile, config.publisherDid ?? config.serviceDid, this.host)
  }

  /** Builds a context after loading the installed agents the config lists. */
  static async create(config: Readonly<Config>, log: Logger): Promise<AppContext> {
    return new AppContext(config, log, await loadInstalledAgents(config.installedAgents))
  }

  private _idResolver: IdResolver | null = null
  private _labels: LabelerLabels | null = null

  /** Resolves DIDs and handles (with a cache); plain http only when SKYSIFT_ALLOW_INSECURE_HTTP. */
  get idResolver(): IdResolver {
    this._idResolver ??= createIdResolver(this.config.plcUrl, this.config.allowInsecureHttp)
    return this._idResolver
  }

  /** Labels from labelers readers name, attached to the host on first use. */
  get labels(): LabelerLabels {
    if (!this._labels) {
      const c = this.config
      this._labels = new LabelerLabels(this.idResolver, this.log.child({ sub: 'labelers' }), {
        allowPrivateNetwork: c.allowInsecureHttp,
        maxLabelers: c.labelersMax,
        concurrency: c.labelerConcurrency,
        perHostPerMinute: c.labelerRequestsPerMin,
      })
      this.host.attachLabels(this._labels)
    }
    return this._labels
  }

  /** The shared SQLite connection (opened and migrated on first use). */
  get db(): Db {
    this._db ??= openDb(this.config.dbPath)
    return this._db
  }

  /** A new Redis connection, closed with the context. Commands wait for the connection, then fail after one retry while Redis is down. */
  redis(): Redis {
    const r = new Redis({ ...redisOptions(this.config.redisUrl), maxRetriesPerRequest: 1 })
    r.on('error', (err) => this.log.debug({ err: err.message }, 'redis connection error'))
    this.redisClients.push(r)
    return r
  }

  async close(): Promise<void> {
    for (const r of this.redisClients.splice(0)) r.disconnect()
    this._labels?.close()
    this._db?.close()
    this._db = null
  }
}
