import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'

/** One check: a 64-byte compact signature (low S), the 32-byte message hash, the 65-byte uncompressed public key. */
const SIG = 64
const HASH = 32
const KEY = 65
const RECORD = SIG + HASH + KEY

/** What the thread answers per check. */
const OK = 1
const FAILED = 0
const THREW = 2
/** not answered by the thread: check here */
const AGAIN = -1
/**
 * Checks sent at once as soon as this many are asked for in one turn (the rest after the turn): the thread verifies
 * the first ones while this thread still reads the next requests, instead of both waiting for each other in turn.
 */
export const FLUSH_AT = 8

interface Addon {
  ecdsaVerify(sig: Uint8Array, msg32: Uint8Array, pubkey: Uint8Array): boolean
}

interface Batch {
  id: number
  records: Uint8Array
}

/**
 * What the thread runs: each batch's checks, answered in one message.
 * @NOTE plain JavaScript, evaluated: a thread started from a .ts file loads Node's TypeScript stripper too (~17 MB
 * more RSS per serving process, measured)
 */
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const addon = require(workerData.binding)
parentPort.on('message', (b) => {
  const n = b.records.length / ${RECORD}
  const results = new Uint8Array(n)
  for (let i = 0; i < n; i++) {
    const at = i * ${RECORD}
    try {
      results[i] = addon.ecdsaVerify(b.records.subarray(at, at + ${SIG}), b.records.subarray(at + ${SIG}, at + ${SIG + HASH}), b.records.subarray(at + ${SIG + HASH}, at + ${RECORD})) ? ${OK} : ${FAILED}
    } catch {
      results[i] = ${THREW}
    }
  }
  parentPort.postMessage({ id: b.id, results }, [results.buffer])
})
`

/**
 * libsecp256k1 signature checks on a thread of their own, in batches: the
 * checks asked for during one turn of the event loop go over FLUSH_AT at a
 * time as they come (the last ones after the turn), and the answers to each
 * batch come back in one message. The serving thread then spends a message
 * per batch instead of a check per signed-in request, and the thread starts
 * on a turn's first checks while the rest of its requests are still read.
 * Should the thread fail, checks run on the calling thread again.
 */
export class VerifyThread {
  private readonly addon: Addon
  /** undefined: not started yet; null: gone (checks run on the calling thread) */
  private worker: Worker | null | undefined
  private queue: { records: Uint8Array[]; done: ((r: number) => void)[] } | null = null
  private readonly waiting = new Map<number, ((r: number) => void)[]>()
  private nextId = 1
  private sent = 0

  constructor(addon: Addon) {
    this.addon = addon
  }

  /** The thread, started on the first check (a process that never sees a signed-in request never starts it). */
  private thread(): Worker | null {
    if (this.worker !== undefined) return this.worker
    const w = new Worker(THREAD_SOURCE, { eval: true, workerData: { binding: createRequire(import.meta.url).resolve('secp256k1/bindings') } })
    w.unref()
    w.on('message', (m: { id: number; results: Uint8Array }) => {
      const done = this.waiting.get(m.id)
      this.waiting.delete(m.id)
      if (done) for (let i = 0; i < done.length; i++) done[i](m.results[i])
      if (!this.waiting.size) w.unref()
    })
    const gone = () => {
      if (this.worker === w) this.worker = null
      // @NOTE checks in flight are made on the calling thread instead: nobody waits for an answer that will not come
      for (const done of this.waiting.values()) for (const d of done) d(AGAIN)
      this.waiting.clear()
    }
    w.on('error', gone)
    w.on('exit', gone)
    this.worker = w
    return w
  }

  /** Whether libsecp256k1 verifies `sig` (64 bytes, low S) over `hash` (32) for `key` (65, uncompressed); throws as the addon does. */
  verify(sig: Uint8Array, hash: Uint8Array, key: Uint8Array): Promise<boolean> | boolean {
    if (!this.thread()) return this.addon.ecdsaVerify(sig, hash, key)
    const rec = new Uint8Array(RECORD)
    rec.set(sig, 0)
    rec.set(hash, SIG)
    rec.set(key, SIG + HASH)
    return new Promise<boolean>((resolve, reject) => {
      if (!this.queue) {
        this.queue = { records: [], done: [] }
        setImmediate(() => this.flush())
      }
      const q = this.queue
      q.records.push(rec)
      q.done.push((r) => {
        if (r === OK || r === FAILED) return resolve(r === OK)
        if (r === THREW) return reject(new Error('signature or key did not parse'))
        try {
          resolve(this.addon.ecdsaVerify(sig, hash, key))
        } catch (err) {
          reject(err)
        }
      })
      if (q.records.length >= FLUSH_AT) this.flush()
    })
  }

  private flush(): void {
    const q = this.queue
    this.queue = null
    if (!q) return
    if (!this.worker) {
      for (const d of q.done) d(AGAIN)
      return
    }
    const records = new Uint8Array(q.records.length * RECORD)
    q.records.forEach((r, i) => records.set(r, i * RECORD))
    const id = this.nextId++
    this.waiting.set(id, q.done)
    this.worker.ref()
    this.worker.postMessage({ id, records } satisfies Batch, [records.buffer])
    this.sent++
  }

  /** Batches sent to the thread so far. */
  get batches(): number {
    return this.sent
  }

  /** Ends the thread; checks from then on (and any in flight) run on the calling thread. */
  async stop(): Promise<void> {
    const w = this.worker
    this.worker = null
    if (w) await w.terminate()
  }
}
