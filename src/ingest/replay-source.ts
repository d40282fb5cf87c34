import fs from 'node:fs'
import { decodeJetstream } from './jetstream.ts'
import { sleep, sourceState, type Sink, type Source } from './source.ts'
import type { SourceState } from '../contracts/ingest.ts'

/**
 * Replays a JSONL file of Jetstream events, at full speed or at the pace
 * they were recorded. The cursor is the line number, so a restart resumes
 * after the last line that reached the queue.
 */
export class ReplaySource implements Source {
  readonly name: string
  private readonly path: string
  private readonly pace: 'full' | 'recorded'
  /** a new one per run: a source stopped to be read again from another cursor runs again */
  private abort = new AbortController()
  status: SourceState = sourceState('reading')

  constructor(path: string, pace: 'full' | 'recorded' = 'full') {
    this.path = path
    this.pace = pace
    this.name = `replay:${path}`
  }

  async run(sink: Sink, cursor: number | undefined): Promise<void> {
    if (this.abort.signal.aborted) this.abort = new AbortController()
    const stream = fs.createReadStream(this.path, { highWaterMark: 1 << 20 })
    let n = 0
    let firstUs: number | null = null
    const started = Date.now()
    this.status = sourceState('reading')
    let ended = false
    try {
      for await (const chunk of lineChunks(stream)) {
        for (const line of chunk) {
          n++
          if (this.abort.signal.aborted) return
          if (cursor !== undefined && n <= cursor) continue
          if (!line.trim()) continue
          const d = decodeJetstream(line)
          if (this.pace === 'recorded' && d.cursor) {
            firstUs ??= d.cursor
            const due = started + (d.cursor - firstUs) / 1000 - Date.now()
            if (due > 5) await sleep(due, this.abort.signal)
          }
          const timeMs = d.cursor ? Math.floor(d.cursor / 1000) : Date.now()
          if (d.ok) await sink({ cursor: n, timeMs, event: d.event })
          else await sink({ cursor: n, timeMs, rejected: d.reason, payload: line })
        }
      }
      ended = true
    } catch (err) {
      this.status = { ...sourceState('stopped'), lastError: (err as Error).message }
      throw err
    } finally {
      stream.destroy()
      if (ended) this.status = sourceState('finished')
      else if (this.status.state === 'reading') this.status = sourceState('stopped')
    }
  }

  async stop(): Promise<void> {
    this.abort.abort()
  }
}

const LF = 10
const CR = 13

/**
 * The lines of a stream of bytes, a chunk's worth at a time. Lines end at
 * \n, \r\n or a lone \r, as readline splits them (line numbers are the
 * replay's cursors, so they must not change). Each line is decoded from
 * UTF-8 on its own: one with only Latin-1 characters stays a one-byte string,
 * cheaper to parse than a slice of a chunk decoded whole (which is two-byte
 * as soon as one emoji is in it), and bytes that are not UTF-8 become U+FFFD
 * within their line.
 */
export async function* lineChunks(stream: AsyncIterable<Buffer>): AsyncGenerator<string[]> {
  let rest: Buffer | null = null
  for await (const chunk of stream) {
    const buf: Buffer = rest ? Buffer.concat([rest, chunk]) : chunk
    const lines: string[] = []
    const end = split(buf, lines, false)
    rest = end < buf.length ? buf.subarray(end) : null
    if (lines.length) yield lines
  }
  if (rest) {
    const lines: string[] = []
    const end = split(rest, lines, true)
    if (end < rest.length) lines.push(rest.toString('utf8', end))
    if (lines.length) yield lines
  }
}

/** Appends the complete lines of `buf` to `lines`; returns where the unfinished rest starts. */
function split(buf: Buffer, lines: string[], last: boolean): number {
  let pos = 0
  let lf = buf.indexOf(LF)
  let cr = buf.indexOf(CR)
  for (;;) {
    if (lf !== -1 && lf < pos) lf = buf.indexOf(LF, pos)
    if (cr !== -1 && cr < pos) cr = buf.indexOf(CR, pos)
    const at = lf === -1 ? cr : cr === -1 ? lf : Math.min(lf, cr)
    if (at === -1) return pos
    let next = at + 1
    if (at === cr) {
      // @NOTE a \r at the end of what has been read may be the first half of a \r\n: wait for the next byte
      if (next === buf.length && !last) return pos
      if (buf[next] === LF) next++
    }
    lines.push(buf.toString('utf8', pos, at))
    pos = next
  }
}
