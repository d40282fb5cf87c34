import type { IdResolver } from '@atproto/identity'
import { Firehose, type Event } from '@atproto/sync'
import type { Logger } from '../logger.ts'
import { normalizeAccount, normalizeCommit, WANTED_COLLECTIONS } from './events.ts'
import type { Sink, Source } from './source.ts'

/**
 * A relay's or PDS's `com.atproto.sync.subscribeRepos`, with commits
 * verified against the repo's signing key. The handler is awaited (no
 * runner), so a slow sink slows the reading: backpressure is real.
 */
export class FirehoseSource implements Source {
  readonly name: string
  private readonly url: string
  private readonly idResolver: IdResolver
  private readonly log: Logger
  private firehose: Firehose | null = null

  constructor(url: string, idResolver: IdResolver, log: Logger) {
    this.url = url
    this.name = `firehose:${new URL(url).host}`
    this.idResolver = idResolver
    this.log = log
  }

  async run(sink: Sink, cursor: number | undefined): Promise<void> {
    let last = cursor
    this.firehose = new Firehose({
      service: this.url,
      idResolver: this.idResolver,
      filterCollections: WANTED_COLLECTIONS,
      excludeIdentity: true,
      excludeSync: true,
      getCursor: () => last,
      onError: (err) => this.log.warn({ err: err.message, kind: err.name }, 'firehose error'),
      handleEvent: async (evt: Event) => {
        await this.handle(evt, sink)
        last = evt.seq
      },
    })
    await this.firehose.start()
  }

  private async handle(evt: Event, sink: Sink): Promise<void> {
    const timeMs = Date.parse(evt.time) || Date.now()
    if (evt.event === 'account') {
      const a = normalizeAccount(evt.did, evt.active, evt.status, timeMs * 1000)
      if ('reason' in a) return sink({ cursor: evt.seq, timeMs, rejected: a.reason, payload: JSON.stringify({ did: evt.did, seq: evt.seq }) })
      return sink({ cursor: evt.seq, timeMs, event: a })
    }
    if (evt.event !== 'create' && evt.event !== 'update' && evt.event !== 'delete') return
    const r = normalizeCommit({
      did: evt.did,
      collection: evt.collection,
      rkey: evt.rkey,
      operation: evt.event,
      record: evt.event === 'delete' ? undefined : evt.record,
      cid: evt.event === 'delete' ? undefined : evt.cid.toString(),
      timeMs,
      rev: evt.rev,
    })
    if (r && 'reason' in r) {
      return sink({ cursor: evt.seq, timeMs, rejected: r.reason, payload: JSON.stringify({ uri: evt.uri.toString(), seq: evt.seq }) })
    }
    return sink({ cursor: evt.seq, timeMs, event: r })
  }

  async stop(): Promise<void> {
    await this.firehose?.destroy()
  }
}
