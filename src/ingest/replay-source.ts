import fs from 'node:fs'
import readline from 'node:readline'
import { decodeJetstream } from './jetstream.ts'
import { sleep, type Sink, type Source } from './source.ts'

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

  constructor(path: string, pace: 'full' | 'recorded' = 'full') {
    this.path = path
    this.pace = pace
    this.name = `replay:${path}`
  }

  async run(sink: Sink, cursor: number | undefined): Promise<void> {
    if (this.abort.signal.aborted) this.abort = new AbortController()
    const stream = fs.createReadStream(this.path, { encoding: 'utf8', highWaterMark: 1 << 20 })
    const lines = readline.createInterface({ input: stream, crlfDelay: Infinity })
    let n = 0
    let firstUs: number | null = null
    const started = Date.now()
    try {
      for await (const line of lines) {
        n++
        if (this.abort.signal.aborted) break
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
    } finally {
      lines.close()
      stream.destroy()
    }
  }

  async stop(): Promise<void> {
    this.abort.abort()
  }
}
