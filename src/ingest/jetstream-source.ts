import { zstdDecompressSync } from 'node:zlib'
import WebSocket from 'ws'
import type { Logger } from '../logger.ts'
import { WANTED_COLLECTIONS } from '../contracts/events.ts'
import { decodeJetstream } from './jetstream.ts'
import { backoffMs, sleep, sourceState, type Sink, type Source } from './source.ts'
import type { SourceState } from '../contracts/ingest.ts'

/** How far before the saved cursor to resume (µs); the writer is idempotent. */
const REWIND_US = 3_000_000
const PAUSE_AT = 2000
const RESUME_AT = 200
/** The largest message accepted, compressed or not. */
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024

/**
 * Jetstream v1 over WebSocket. Messages are handled strictly in order; when
 * the sink is slower than the network the socket is paused, and a dropped
 * connection is resumed from the last cursor with backoff.
 */
export class JetstreamSource implements Source {
  readonly name: string
  private readonly url: string
  private readonly log: Logger
  /** a new one per run: a source stopped to be read again from another cursor runs again */
  private abort = new AbortController()
  private ws: WebSocket | null = null
  status: SourceState = sourceState('connecting')
  /** the zstd dictionary Jetstream compresses with (`compress=true`); null: uncompressed JSON */
  private readonly dictionary: Buffer | null

  /** With a `dictionary`, asks Jetstream for zstd-compressed messages and decompresses them with it. */
  constructor(url: string, log: Logger, opts: { dictionary?: Buffer | null } = {}) {
    this.url = url
    this.name = `jetstream:${new URL(url).host}`
    this.log = log
    this.dictionary = opts.dictionary ?? null
  }

  async run(sink: Sink, cursor: number | undefined): Promise<void> {
    if (this.abort.signal.aborted) this.abort = new AbortController()
    this.status = sourceState('connecting')
    let last = cursor
    let attempt = 0
    while (!this.abort.signal.aborted) {
      const u = new URL(this.url)
      for (const c of WANTED_COLLECTIONS) u.searchParams.append('wantedCollections', c)
      if (last !== undefined) u.searchParams.set('cursor', String(Math.max(0, last - REWIND_US)))
      if (this.dictionary) u.searchParams.set('compress', 'true')
      const got = await this.connectOnce(u.toString(), sink, (c) => (last = c))
      if (this.abort.signal.aborted) break
      attempt = got > 0 ? 0 : attempt + 1
      const wait = backoffMs(attempt)
      this.status = {
        ...this.status,
        state: 'retrying',
        attempt: Math.max(1, attempt),
        nextTryAt: Date.now() + wait,
        since: this.status.state === 'retrying' ? this.status.since : Date.now(),
      }
      this.log.warn({ url: this.url, attempt, waitMs: wait, err: this.status.lastError }, 'jetstream disconnected; reconnecting')
      await sleep(wait, this.abort.signal)
    }
    this.status = { ...this.status, state: 'stopped', nextTryAt: null, since: Date.now() }
  }

  /** One connection; resolves when it closes, with the number of messages handled. */
  private connectOnce(url: string, sink: Sink, onCursor: (c: number) => void): Promise<number> {
    return new Promise((resolve) => {
      const ws = new WebSocket(url, { handshakeTimeout: 15_000, maxPayload: MAX_MESSAGE_BYTES })
      this.ws = ws
      const pending: (string | Buffer)[] = []
      let head = 0
      let running = false
      let handled = 0
      let closed = false
      const drain = async () => {
        if (running) return
        running = true
        try {
          while (head < pending.length) {
            const raw = pending[head++]
            let line: string
            try {
              line = typeof raw === 'string' ? raw : this.inflate(raw)
            } catch (err) {
              await sink({ cursor: null, timeMs: Date.now(), rejected: `zstd: ${(err as Error).message}`, payload: raw.toString('base64') })
              handled++
              continue
            }
            const d = decodeJetstream(line)
            const timeMs = d.cursor ? Math.floor(d.cursor / 1000) : Date.now()
            if (d.ok) {
              await sink({ cursor: d.cursor, timeMs, event: d.event })
              onCursor(d.cursor)
            } else {
              await sink({ cursor: d.cursor, timeMs, rejected: d.reason, payload: line })
            }
            handled++
            if (head > 4096) {
              pending.splice(0, head)
              head = 0
            }
            if (ws.isPaused && pending.length - head < RESUME_AT) ws.resume()
          }
        } catch (err) {
          this.log.error({ err }, 'jetstream sink failed; reconnecting')
          ws.terminate()
        } finally {
          running = false
          if (closed && head >= pending.length) resolve(handled)
        }
      }
      ws.on('open', () => {
        this.status = sourceState('connected')
        this.log.info({ url: this.url }, 'jetstream connected')
      })
      ws.on('message', (data, isBinary) => {
        // @NOTE binary messages are zstd frames when compression was asked for: decompressed in order, in drain()
        pending.push(isBinary && this.dictionary ? (data as Buffer) : data.toString())
        if (pending.length - head > PAUSE_AT && !ws.isPaused) ws.pause()
        void drain()
      })
      ws.on('error', (err) => {
        this.status = { ...this.status, lastError: err.message || String(err) }
        this.log.warn({ err: err.message }, 'jetstream socket error')
      })
      ws.on('close', () => {
        closed = true
        this.ws = null
        if (!running) resolve(handled)
      })
    })
  }

  /** One compressed message as its JSON text. */
  private inflate(frame: Buffer): string {
    return zstdDecompressSync(frame, { dictionary: this.dictionary!, maxOutputLength: MAX_MESSAGE_BYTES }).toString('utf8')
  }

  async stop(): Promise<void> {
    this.abort.abort()
    this.ws?.close()
  }
}
