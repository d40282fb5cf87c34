import type { IdResolver } from '@atproto/identity'
import { parseAccount, parseCommitAuthenticated, type Event } from '@atproto/sync'
import { Subscription } from '@atproto/xrpc-server'
import type { Logger } from '../logger.ts'
import { normalizeAccount, normalizeCommit } from './events.ts'
import { WANTED_COLLECTIONS } from '../contracts/events.ts'
import { backoffMs, sleep, sourceState, type Sink, type Source } from './source.ts'
import type { SourceState } from '../contracts/ingest.ts'

const METHOD = 'com.atproto.sync.subscribeRepos'
const WANTED = new Set(WANTED_COLLECTIONS)

/** The fields of a subscribeRepos frame this source reads (the commit and account parsers read the rest). */
interface Frame {
  $type?: string
  seq?: number
  time?: string
  repo?: string
  did?: string
}

/**
 * A relay's or PDS's `com.atproto.sync.subscribeRepos`, with commits
 * verified against the repo's signing key. Every frame is awaited in order,
 * so a slow sink slows the reading: backpressure is real. Every frame also
 * reaches the sink, those it skips (identity, sync, collections not wanted)
 * as an empty item, so the saved cursor moves past everything decided, and a
 * commit that fails verification is a rejection naming the DID, seq and cause.
 */
export class FirehoseSource implements Source {
  readonly name: string
  private readonly url: string
  private readonly idResolver: IdResolver
  private readonly log: Logger
  private abort = new AbortController()
  status: SourceState = sourceState('connecting')

  constructor(url: string, idResolver: IdResolver, log: Logger) {
    this.url = url
    this.name = `firehose:${new URL(url).host}`
    this.idResolver = idResolver
    this.log = log
  }

  async run(sink: Sink, cursor: number | undefined): Promise<void> {
    if (this.abort.signal.aborted) this.abort = new AbortController()
    const signal = this.abort.signal
    this.status = sourceState('connecting')
    let last = cursor
    let attempt = 0
    while (!signal.aborted) {
      const sub = new Subscription<Frame>({
        service: this.url,
        method: METHOD,
        signal,
        getParams: () => (last === undefined ? undefined : { cursor: last }),
        validate: (v) => (v && typeof v === 'object' ? (v as Frame) : undefined),
        onReconnectError: (err, n) => {
          this.status = {
            ...this.status,
            state: 'retrying',
            attempt: n + 1,
            nextTryAt: null,
            lastError: errText(err),
            since: this.status.state === 'retrying' ? this.status.since : Date.now(),
          }
          this.log.warn({ url: this.url, attempt: n + 1, err: errText(err) }, 'firehose disconnected; reconnecting')
        },
      })
      try {
        for await (const frame of sub) {
          if (this.status.state !== 'connected') {
            this.status = sourceState('connected')
            this.log.info({ url: this.url }, 'firehose connected')
          }
          attempt = 0
          await this.handle(frame, sink)
          if (typeof frame.seq === 'number') last = frame.seq
        }
      } catch (err) {
        if (signal.aborted) break
        attempt++
        const wait = backoffMs(attempt)
        this.status = { ...this.status, state: 'retrying', attempt, nextTryAt: Date.now() + wait, lastError: errText(err) }
        this.log.warn({ url: this.url, attempt, waitMs: wait, err: errText(err) }, 'firehose subscription ended; reconnecting')
        await sleep(wait, signal)
      }
    }
    this.status = { ...this.status, state: 'stopped', nextTryAt: null, since: Date.now() }
  }

  private async handle(frame: Frame, sink: Sink): Promise<void> {
    const seq = frame.seq
    // #info frames carry no seq and nothing to store
    if (typeof seq !== 'number') return
    const timeMs = (frame.time && Date.parse(frame.time)) || Date.now()
    if (frame.$type === `${METHOD}#commit`) {
      let writes: Event[]
      try {
        writes = await parseCommitAuthenticated(this.idResolver, frame as Parameters<typeof parseCommitAuthenticated>[1], (c) => WANTED.has(c))
      } catch (err) {
        const cause = errText(err)
        this.log.warn({ did: frame.repo, seq, cause }, 'commit failed verification; rejected')
        return sink({ cursor: seq, timeMs, rejected: `commit not verified: ${cause}`, payload: JSON.stringify({ did: frame.repo, seq }) })
      }
      for (const w of writes) await this.handleWrite(w, seq, timeMs, sink)
    } else if (frame.$type === `${METHOD}#account`) {
      const evt = parseAccount(frame as Parameters<typeof parseAccount>[0])
      if (evt) {
        const a = normalizeAccount(evt.did, evt.active, evt.status, timeMs * 1000)
        if ('reason' in a) return sink({ cursor: seq, timeMs, rejected: a.reason, payload: JSON.stringify({ did: evt.did, seq }) })
        return sink({ cursor: seq, timeMs, event: a })
      }
    }
    // identity and sync frames, and commits of collections not wanted: seen and decided
    return sink({ cursor: seq, timeMs, event: null })
  }

  private async handleWrite(evt: Event, seq: number, timeMs: number, sink: Sink): Promise<void> {
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
    if (r && 'reason' in r) return sink({ cursor: seq, timeMs, rejected: r.reason, payload: JSON.stringify({ uri: evt.uri.toString(), seq }) })
    return sink({ cursor: seq, timeMs, event: r })
  }

  async stop(): Promise<void> {
    this.abort.abort()
  }
}

function errText(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : ''
  return `${err.message}${cause}`
}
