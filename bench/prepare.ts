/**
 * Benchmark helper (child process, so its memory does not count against the
 * server's RSS): writes the synthetic Jetstream file, then measures the
 * parsing baselines over exactly the same lines.
 */
import fs from 'node:fs'
import { decodeJetstream } from '../src/ingest/jetstream.ts'
import { ReplaySource } from '../src/ingest/replay-source.ts'
import { writeSyntheticJsonl } from '../src/ingest/synthetic.ts'
import { serveHelper } from './util.ts'

export interface PrepareInput {
  file: string
  events: number
  seed: number
}

export interface PrepareResult {
  generateMs: number
  bytes: number
  lines: number
  /** bare JSON.parse over the lines (best of 2 passes) */
  jsonParseEventsPerS: number
  /** decodeJetstream (JSON.parse + validation + normalisation), best of 2 */
  decodeEventsPerS: number
  /** ReplaySource (file → readline → decode) into a no-op sink */
  replaySourceEventsPerS: number
}

function bestOf<T>(passes: number, fn: () => T): { ms: number; out: T } {
  let best = Infinity
  let out!: T
  for (let i = 0; i < passes; i++) {
    const t0 = performance.now()
    out = fn()
    best = Math.min(best, performance.now() - t0)
  }
  return { ms: best, out }
}

async function prepare(input: PrepareInput): Promise<PrepareResult> {
  const t0 = performance.now()
  await writeSyntheticJsonl(input.file, { count: input.events, seed: input.seed })
  const generateMs = performance.now() - t0
  const text = fs.readFileSync(input.file, 'utf8')
  const lines = text.split('\n').filter((l) => l.length > 0)

  const parse = bestOf(2, () => {
    let n = 0
    for (const l of lines) n += (JSON.parse(l) as { time_us: number }).time_us > 0 ? 1 : 0
    return n
  })
  if (parse.out !== lines.length) throw new Error('JSON.parse baseline saw unexpected lines')
  const decode = bestOf(2, () => {
    let ok = 0
    for (const l of lines) if (decodeJetstream(l).ok) ok++
    return ok
  })

  const src = new ReplaySource(input.file, 'full')
  let seen = 0
  const t1 = performance.now()
  await src.run(() => {
    seen++
  }, undefined)
  const replayMs = performance.now() - t1

  return {
    generateMs,
    bytes: Buffer.byteLength(text),
    lines: lines.length,
    jsonParseEventsPerS: lines.length / (parse.ms / 1000),
    decodeEventsPerS: lines.length / (decode.ms / 1000),
    replaySourceEventsPerS: seen / (replayMs / 1000),
  }
}

serveHelper(prepare)
