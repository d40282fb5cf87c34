import { isMainThread, Worker, workerData } from 'node:worker_threads'
import type { QuickJSContext, QuickJSHandle, QuickJSRuntime, QuickJSWASMModule } from 'quickjs-emscripten'
import type { z } from 'zod'
import type { DeclaredAgentMeta } from './agent-meta.ts'
import { SDK_API_VERSION, type AgentContext, type AgentDefinition, type AgentPost, type Need, type Score } from './sdk.ts'

/**
 * Sandboxed agents: untrusted JavaScript uploaded by an agent author, run in
 * QuickJS compiled to WebAssembly (quickjs-emscripten, synchronous release
 * build). The agent file is one self-contained script or module, no imports,
 * whose default export (or `globalThis.agent`) is the object `defineAgent`
 * takes, with a JSON Schema for `options`.
 *
 * Containment, from the inside out:
 *  - QuickJS has no host functions at all: no console, timers, I/O or
 *    modules; `Date` is frozen at the host's `now`. Data crosses the
 *    boundary only as JSON text (posts in) and float64s (scores out), so
 *    nothing the agent does to its own prototypes or globals can reach the
 *    host's objects. Posts carry only uri, createdAt and the fields the
 *    agent's needs ask for.
 *  - Per batch: a deadline (QuickJS interrupt handler), a memory cap (the
 *    WebAssembly memory itself cannot grow past it; see newCappedModule)
 *    and a stack limit, each turned into an Error naming what happened.
 *  - The VM lives in a worker thread per agent, called synchronously through
 *    a SharedArrayBuffer and Atomics.wait, so `scoreBatch` stays synchronous.
 *    Some QuickJS built-ins loop in C without checking the interrupt handler
 *    (`Array.prototype.indexOf.call({ length: 2 ** 40 }, 1)` never returns)
 *    and some allocate for seconds between checks; deep recursion through
 *    native frames could overflow the thread's real stack and leave the
 *    WebAssembly instance unusable. So when the worker does not answer
 *    within the deadline plus a grace period, or crashes, it is terminated
 *    and a fresh one starts in the background (with a growing pause if that
 *    keeps happening); calls meanwhile fail at once. The calling thread
 *    never waits more than deadline + grace for one chunk.
 *
 * State: one QuickJS context per agent is reused across batches (building a
 * fresh one and loading the agent costs more than scoring a 100-post batch,
 * and reuse lets an agent cache, e.g., compiled patterns); after any batch
 * that failed (deadline, memory, stack, exception) it is thrown away and
 * rebuilt from the source, so a batch that died half way cannot poison the
 * next one.
 *
 * Cost: about 25 MB of memory per loaded agent (a worker plus a 16 MB
 * WebAssembly memory) and a few hundred ms to load; a scoreBatch call is
 * one round trip between threads (two thread wake-ups, ~0.1–0.2 ms on a
 * virtual machine) for all its chunks, up to about 12 MiB of payload; the
 * worker starts on the first chunk while the host encodes the next.
 */

// ---------------------------------------------------------------------------
// limits

export interface SandboxLimits {
  /** wall-clock budget for one batch, ms (default 200) */
  deadlineMs: number
  /** QuickJS heap limit, bytes (default 32 MiB) */
  memoryBytes: number
  /** QuickJS stack limit, bytes (default 256 KiB, at most 1 MiB) */
  stackBytes?: number
  /** posts per call into the VM (default 100); agents that need `candidates` get them all at once */
  batchSize: number
  /** largest accepted source file, bytes (default 256 KiB) */
  maxSourceBytes: number
  /** largest accepted output of one batch, bytes (default 1 MiB) */
  maxOutputBytes?: number
  /** budget for evaluating the source and reading the agent's metadata, ms (default 1000) */
  loadDeadlineMs?: number
}

const KiB = 1024
const MiB = 1024 * 1024

export const DEFAULT_SANDBOX_LIMITS: Readonly<Required<SandboxLimits>> = Object.freeze({
  deadlineMs: 200,
  memoryBytes: 32 * MiB,
  stackBytes: 256 * KiB,
  batchSize: 100,
  maxSourceBytes: 256 * KiB,
  maxOutputBytes: MiB,
  loadDeadlineMs: 1000,
})

/** How long a worker may take to start and load the source before it is given up on. */
const BOOT_TIMEOUT_MS = 15_000
/** Longest pause before restarting a sandbox that keeps getting killed. */
const MAX_RESPAWN_DELAY_MS = 30_000

function checkLimits(l: Partial<SandboxLimits>): Required<SandboxLimits> {
  const out = { ...DEFAULT_SANDBOX_LIMITS }
  const set = (k: keyof SandboxLimits, min: number, max: number, int: boolean) => {
    const v = l[k]
    if (v === undefined) return
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (int && !Number.isInteger(v))) {
      throw new Error(`sandbox limits: ${k} must be ${int ? 'an integer' : 'a number'} from ${min} to ${max}`)
    }
    out[k] = v
  }
  set('deadlineMs', 1, 60_000, false)
  set('memoryBytes', MiB, 1024 * MiB, true)
  set('stackBytes', 32 * KiB, MiB, true)
  set('batchSize', 1, 10_000, true)
  set('maxSourceBytes', 1, 16 * MiB, true)
  set('maxOutputBytes', KiB, 64 * MiB, true)
  set('loadDeadlineMs', 1, 60_000, false)
  return out
}

/**
 * QuickJS frames use much more of the thread's native stack than of their
 * own stack budget (more than 8x when recursing through JSON.stringify), so
 * the worker gets a native stack 32x the QuickJS limit.
 */
const nativeStackMb = (stackBytes: number) => Math.max(8, Math.ceil((32 * stackBytes) / MiB))

/**
 * Time allowed past the deadline before the worker is presumed stuck and
 * killed. Generous, because on a starved machine the worker may simply not
 * have been scheduled, and a needless kill costs a restart.
 */
const graceMs = (deadlineMs: number) => Math.max(200, deadlineMs)

// ---------------------------------------------------------------------------
// errors

export type SandboxFailureKind = 'deadline' | 'memory' | 'stack' | 'threw' | 'output' | 'input' | 'crashed' | 'restarting' | 'closed'

/** Why a sandboxed call failed. AgentHost turns any throw into a strike. */
export class SandboxError extends Error {
  readonly kind: SandboxFailureKind
  constructor(kind: SandboxFailureKind, message: string) {
    super(message)
    this.name = 'SandboxError'
    this.kind = kind
  }
}

const errText = (err: unknown) => String((err as Error)?.message ?? err).slice(0, 500)

// ---------------------------------------------------------------------------
// the VM (runs in the worker; the bench also builds one in-process)

/**
 * Evaluated first in every context: captures the intrinsics the host relies
 * on before agent code can replace them, freezes the clock, and returns the
 * three entry points. `run` checks the agent's answer and returns it as an
 * ArrayBuffer of float64s (a score, NaN for null, Infinity for "drop"), or a
 * string that says what was wrong with it. The buffer is filled by index
 * (typed arrays do not consult prototypes for that), so polluted
 * prototypes change nothing.
 */
const PRELUDE = `(() => {
  'use strict'
  const O = Object, R = Reflect, A = Array
  const parse = JSON.parse, stringify = JSON.stringify, isArray = A.isArray
  const apply = R.apply, construct = R.construct, create = O.create, defineProperty = O.defineProperty
  const slice = String.prototype.slice, toStr = String, AB = ArrayBuffer, F64 = Float64Array
  const TE = TypeError, PromiseCtor = Promise, RealDate = Date, dateToString = RealDate.prototype.toString
  const META_KEYS = ['id', 'version', 'title', 'description', 'author', 'api', 'options', 'needs', 'prefilter']
  let now = __NOW__
  let agent = null, score = null

  // a clock that reads the host's "now" and nothing else
  const FrozenDate = function Date(...args) {
    if (new.target === undefined) return apply(dateToString, construct(RealDate, [now]), [])
    return construct(RealDate, args.length === 0 ? [now] : args, new.target)
  }
  FrozenDate.prototype = RealDate.prototype
  FrozenDate.now = function now_() { return now }
  FrozenDate.parse = RealDate.parse
  FrozenDate.UTC = RealDate.UTC
  defineProperty(RealDate.prototype, 'constructor', { value: FrozenDate, writable: true, configurable: true })
  defineProperty(globalThis, 'Date', { value: FrozenDate, writable: true, configurable: true })

  const cut = (s, n) => apply(slice, s, [0, n])
  const describe = (e) => {
    try {
      if (e !== null && typeof e === 'object') {
        const name = e.name, message = e.message
        return (typeof name === 'string' ? cut(name, 60) : 'Error') + ': ' + cut(typeof message === 'string' ? message : toStr(message), 300)
      }
      return 'a non-Error value: ' + cut(typeof e === 'string' ? e : toStr(e), 300)
    } catch (_) {
      return 'an exception that could not be described'
    }
  }

  const install = (a) => {
    if (a === null || (typeof a !== 'object' && typeof a !== 'function')) {
      throw new TE('no agent found: the file must "export default { ... }" or set "globalThis.agent = { ... }"')
    }
    const fn = a.scoreBatch
    if (typeof fn !== 'function') throw new TE('the agent has no scoreBatch function')
    const meta = create(null)
    for (let i = 0; i < META_KEYS.length; i++) {
      const v = a[META_KEYS[i]]
      if (v !== undefined) meta[META_KEYS[i]] = v
    }
    agent = a
    score = fn
    return stringify(meta)
  }

  const run = (payload) => {
    const req = parse(payload)
    now = req.now
    const posts = req.posts
    const n = posts.length
    const out = apply(score, agent, [posts, { options: req.options, now: req.now }])
    if (!isArray(out)) {
      if (out instanceof PromiseCtor) return '!a Promise: scoreBatch must be synchronous'
      return '!' + (out === null ? 'null' : typeof out)
    }
    const len = out.length
    if (len !== n) return '#' + len
    const buf = new AB(8 * n)
    const f = new F64(buf)
    for (let i = 0; i < n; i++) {
      const v = out[i]
      if (typeof v === 'number') {
        if (v !== v || v === Infinity || v === -Infinity) return '@' + i + ' ' + v
        f[i] = v
      } else if (v === null) f[i] = NaN
      else if (v === 'drop') f[i] = Infinity
      else return '@' + i + ' ' + typeof v
    }
    return buf
  }

  return { install, run, describe }
})()`

type FailKind = 'deadline' | 'memory' | 'stack' | 'threw' | 'output'
/** A batch's answer: its scores as float64 bytes (see PRELUDE), or a classified failure. */
type CallResult = { ok: true; out: Uint8Array } | { ok: false; kind: FailKind; error: string }

/** Says what was wrong with an answer, from what PRELUDE's run returned instead of scores. */
function outputError(why: string, n: number): string {
  if (why.startsWith('!')) return `output is not an array (got ${why.slice(1)})`
  if (why.startsWith('#')) return `output has ${why.slice(1)} entries for ${n} posts`
  const m = /^@(\d+) (.*)$/s.exec(why)
  if (!m) return 'the sandbox returned no output'
  const what = /^(-?Infinity|NaN|undefined)$/.test(m[2]) ? m[2] : `a${/^[aeiou]/.test(m[2]) ? 'n' : ''} ${m[2]}`
  return `entry ${m[1]} is ${what}, not a finite number, "drop" or null`
}

/** The private parts of quickjs-emscripten used to copy strings in fast (no per-character JS loop). */
interface QuickJSInternals {
  module: { _malloc(n: number): number; _free(p: number): void; HEAPU8: Uint8Array }
  ffi: { QTS_NewString(ctx: unknown, p: number): unknown }
  ctx: { value: unknown }
  memory: { heapValueHandle(p: unknown): QuickJSHandle }
}

/** Makes QuickJS strings from JS strings or UTF-8 bytes. */
interface StringMaker {
  fromString(s: string): QuickJSHandle
  fromBytes(b: Uint8Array): QuickJSHandle
}

/**
 * Like `ctx.newString`, but several times faster for long strings: the UTF-8
 * bytes are written straight into the WebAssembly heap. Falls back to the
 * public API if the internals are not as expected. (Strings with NUL
 * characters would be cut short; only JSON text, where NUL is escaped,
 * goes through here.)
 */
function stringMaker(ctx: QuickJSContext): StringMaker {
  const dec = new TextDecoder()
  const slow: StringMaker = { fromString: (s) => ctx.newString(s), fromBytes: (b) => ctx.newString(dec.decode(b)) }
  const i = ctx as unknown as Partial<QuickJSInternals>
  const mod = i.module
  if (
    typeof mod?._malloc !== 'function' ||
    typeof mod._free !== 'function' ||
    typeof i.ffi?.QTS_NewString !== 'function' ||
    typeof i.memory?.heapValueHandle !== 'function' ||
    !i.ctx
  )
    return slow
  const { ffi, memory } = i as QuickJSInternals
  const ctxPtr = i.ctx
  const enc = new TextEncoder()
  const viaHeap = (cap: number, write: (heap: Uint8Array, ptr: number) => number): QuickJSHandle => {
    const ptr = mod._malloc(cap + 1)
    if (!ptr) throw new RangeError('out of WebAssembly memory')
    try {
      const heap = mod.HEAPU8 // read after malloc: growing the memory replaces the view
      if (!(heap instanceof Uint8Array)) throw new Error('no heap view')
      heap[ptr + write(heap, ptr)] = 0
      return memory.heapValueHandle(ffi.QTS_NewString(ctxPtr.value, ptr))
    } finally {
      mod._free(ptr)
    }
  }
  const fast: StringMaker = {
    fromString: (s) => viaHeap(s.length * 3, (heap, ptr) => enc.encodeInto(s, heap.subarray(ptr, ptr + s.length * 3)).written),
    fromBytes: (b) =>
      viaHeap(b.length, (heap, ptr) => {
        heap.set(b, ptr)
        return b.length
      }),
  }
  // self-test once; anything surprising means the slow, public path
  try {
    const probe = '{"a":"é€😀\\u0000"}'
    for (const h of [fast.fromString(probe), fast.fromBytes(enc.encode(probe))]) {
      const back = ctx.getString(h)
      h.dispose()
      if (back !== probe) return slow
    }
    return fast
  } catch {
    return slow
  }
}

/**
 * A QuickJS WebAssembly instance whose linear memory cannot grow past the
 * memory limit (plus room for QuickJS's own data and stack). This is the
 * limit that holds: this build has no malloc_usable_size, so QuickJS's own
 * memory limit only refuses single allocations larger than the limit and
 * otherwise counts allocations, not bytes. When the cap is reached, malloc
 * fails and QuickJS throws "out of memory" like any other OOM.
 */
type CappedModule = { mod: QuickJSWASMModule; memory: WebAssembly.Memory; capBytes: number }

async function newCappedModule(limits: Required<SandboxLimits>): Promise<CappedModule> {
  const { newQuickJSWASMModule, newVariant, RELEASE_SYNC } = await import('quickjs-emscripten')
  const page = 64 * KiB
  const capBytes = Math.max(16 * MiB, Math.ceil((limits.memoryBytes + 8 * MiB) / page) * page)
  const memory = new WebAssembly.Memory({ initial: (16 * MiB) / page, maximum: capBytes / page })
  const mod = await newQuickJSWASMModule(newVariant(RELEASE_SYNC, { wasmMemory: memory }))
  return { mod, memory, capBytes }
}

/** A runtime with the sandbox's limits and a deadline-driven interrupt handler. */
class LimitedRuntime {
  readonly rt: QuickJSRuntime
  readonly ctx: QuickJSContext
  readonly strings: StringMaker
  deadline = Number.POSITIVE_INFINITY
  interrupted = false
  private readonly memory: WebAssembly.Memory
  private readonly capBytes: number

  constructor(m: CappedModule, limits: Required<SandboxLimits>) {
    this.memory = m.memory
    this.capBytes = m.capBytes
    this.rt = m.mod.newRuntime()
    this.rt.setMemoryLimit(limits.memoryBytes)
    this.rt.setMaxStackSize(limits.stackBytes)
    this.rt.setInterruptHandler(() => {
      if (performance.now() <= this.deadline) return false
      this.interrupted = true
      return true
    })
    this.ctx = this.rt.newContext()
    this.strings = stringMaker(this.ctx)
  }

  /** The instance's memory has grown most of the way to its cap. */
  nearCap(): boolean {
    return this.memory.buffer.byteLength > this.capBytes / 2
  }

  /** the budget most recently armed, ms */
  armedMs = 0

  arm(ms: number): void {
    this.interrupted = false
    this.armedMs = ms
    this.deadline = performance.now() + ms
  }

  disarm(): void {
    this.deadline = Number.POSITIVE_INFINITY
  }

  dispose(): void {
    this.ctx.dispose()
    this.rt.dispose()
  }
}

/** Heuristic: module syntax means module evaluation; otherwise a classic script (which may set globalThis.agent). */
const looksLikeModule = (src: string) => /(^|[;}\s])(export\s+(default\b|\{|const\b|let\b|var\b|function\b|class\b)|import\s*[\s{*'"])/.test(src)

/** One agent's VM: the prelude, the agent's code, and its entry points. */
class AgentVM {
  readonly meta: string
  private readonly vm: LimitedRuntime
  private readonly limits: Required<SandboxLimits>
  private runFn: QuickJSHandle | null = null
  private describeFn: QuickJSHandle | null = null

  constructor(m: CappedModule, source: string, limits: Required<SandboxLimits>, now: number) {
    this.limits = limits
    this.vm = new LimitedRuntime(m, limits)
    try {
      this.meta = this.load(source, now)
    } catch (err) {
      this.dispose()
      throw err
    } finally {
      this.vm.disarm()
    }
  }

  private load(source: string, now: number): string {
    const { ctx } = this.vm
    this.vm.arm(this.limits.loadDeadlineMs)
    const pre = ctx.evalCode(PRELUDE.replace('__NOW__', String(Math.trunc(now))), 'skysift-prelude.js', { type: 'global', strict: true })
    if (pre.error) {
      const d = ctx.dump(pre.error)
      pre.error.dispose()
      throw new Error(`sandbox prelude failed: ${JSON.stringify(d)}`)
    }
    let install: QuickJSHandle | null = null
    try {
      install = ctx.getProp(pre.value, 'install')
      this.runFn = ctx.getProp(pre.value, 'run')
      this.describeFn = ctx.getProp(pre.value, 'describe')
    } finally {
      pre.value.dispose()
    }
    try {
      const isModule = looksLikeModule(source)
      const r = ctx.evalCode(source, 'agent.js', { type: isModule ? 'module' : 'global' })
      if (r.error) throw new Error(`the agent's code failed to load: ${this.loadFailure(r.error, true)}`)
      let target: QuickJSHandle
      if (isModule) {
        const ns = this.settle(r.value)
        const d = ctx.getProp(ns, 'default')
        ns.dispose()
        if (ctx.typeof(d) === 'undefined') {
          d.dispose()
          target = ctx.getProp(ctx.global, 'agent')
        } else {
          target = d
        }
      } else {
        r.value.dispose()
        target = ctx.getProp(ctx.global, 'agent')
      }
      const m = ctx.callFunction(install, ctx.undefined, target)
      target.dispose()
      if (m.error) throw new Error(`the agent could not be read: ${this.loadFailure(m.error)}`)
      try {
        if (ctx.typeof(m.value) !== 'string') throw new Error('the agent could not be read: its metadata is not JSON')
        return ctx.getString(m.value)
      } finally {
        m.value.dispose()
      }
    } finally {
      install.dispose()
    }
  }

  /** A module namespace, waiting for a promise of one if this build returns that. */
  private settle(h: QuickJSHandle): QuickJSHandle {
    const { ctx, rt } = this.vm
    const first = ctx.getPromiseState(h)
    if (first.type === 'fulfilled' && first.notAPromise) return h
    if (first.type === 'fulfilled') first.value.dispose()
    if (first.type === 'rejected') first.error.dispose()
    rt.executePendingJobs(1000).dispose()
    const st = ctx.getPromiseState(h)
    h.dispose()
    if (st.type === 'fulfilled') return st.value
    if (st.type === 'rejected') throw new Error(`the agent's code failed to load: ${this.loadFailure(st.error)}`)
    throw new Error("the agent's code did not finish loading (top-level await is not supported)")
  }

  /** Runs one batch (the payload is `{"now":…,"options":…,"posts":[…]}`, as text or UTF-8). Returns its scores' bytes or a classified failure. */
  call(payload: string | Uint8Array, n: number): CallResult {
    const { ctx } = this.vm
    this.vm.arm(this.limits.deadlineMs)
    let arg: QuickJSHandle | null = null
    try {
      arg = typeof payload === 'string' ? this.vm.strings.fromString(payload) : this.vm.strings.fromBytes(payload)
      const r = ctx.callFunction(this.runFn!, ctx.undefined, arg)
      if (r.error) {
        const f = this.fail(r.error)
        if (f.kind === 'deadline') f.error = `deadline exceeded: scoring ${n} posts took longer than ${this.limits.deadlineMs} ms`
        return f
      }
      try {
        if (ctx.typeof(r.value) === 'string') return { ok: false, kind: 'output', error: outputError(ctx.getString(r.value), n) }
        const view = ctx.getArrayBuffer(r.value)
        try {
          const out = view.value.slice()
          if (out.length !== 8 * n) return { ok: false, kind: 'output', error: 'the sandbox returned no output' }
          if (out.length > this.limits.maxOutputBytes) return { ok: false, kind: 'output', error: `output is larger than ${this.limits.maxOutputBytes} bytes` }
          return { ok: true, out }
        } finally {
          view.dispose()
        }
      } finally {
        r.value.dispose()
      }
    } finally {
      arg?.dispose()
      this.vm.disarm()
    }
  }

  private loadFailure(err: QuickJSHandle, located = false): string {
    const at = located ? this.sourceLocation(err) : ''
    const f = this.fail(err)
    return `${f.kind === 'threw' ? f.error.replace(/^threw /, '') : f.error}${at}`
  }

  /** " at line L, column C" of the agent's source where an error (a syntax error, say) arose, or "". */
  private sourceLocation(err: QuickJSHandle): string {
    try {
      const stack = (this.vm.ctx.dump(err) as { stack?: unknown } | null)?.stack
      const m = typeof stack === 'string' ? /agent\.js:(\d+):(\d+)/.exec(stack) : null
      return m ? ` at line ${m[1]}, column ${m[2]}` : ''
    } catch {
      return ''
    }
  }

  /** Describes and classifies an exception handle (and disposes it). */
  private fail(err: QuickJSHandle): { ok: false; kind: FailKind; error: string } {
    const { ctx, rt } = this.vm
    const interrupted = this.vm.interrupted
    const budget = this.vm.armedMs
    let text = ''
    // some room (memory and time) to describe it; the VM is discarded after a failure anyway
    rt.setMemoryLimit(this.limits.memoryBytes + 8 * MiB)
    this.vm.arm(50)
    try {
      const d = ctx.callFunction(this.describeFn!, ctx.undefined, err)
      if (d.error) d.error.dispose()
      else {
        if (ctx.typeof(d.value) === 'string') text = ctx.getString(d.value)
        d.value.dispose()
      }
    } finally {
      err.dispose()
      rt.setMemoryLimit(this.limits.memoryBytes)
    }
    if (interrupted) return { ok: false, kind: 'deadline', error: `deadline exceeded (${budget} ms)` }
    if (/^InternalError: out of memory/.test(text) || (!text && this.vm.nearCap()))
      return { ok: false, kind: 'memory', error: `memory limit exceeded (${Math.round(this.limits.memoryBytes / MiB)} MiB)` }
    if (/^(InternalError|RangeError): (stack overflow|Maximum call stack)/.test(text)) {
      return { ok: false, kind: 'stack', error: `stack overflow (${Math.round(this.limits.stackBytes / KiB)} KiB stack)` }
    }
    return { ok: false, kind: 'threw', error: `threw ${text || 'an exception that could not be described'}` }
  }

  dispose(): void {
    this.runFn?.dispose()
    this.describeFn?.dispose()
    this.runFn = this.describeFn = null
    this.vm.dispose()
  }
}

// ---------------------------------------------------------------------------
// the worker, and how the host talks to it
//
// One growable SharedArrayBuffer per worker: a few Int32 control words, then
// a data area that holds the request and then the response. A request is
// the chunks of one scoreBatch call, streamed: each chunk's payload (UTF-8
// JSON) after two Int32s (its length, its posts). The host bumps REQ and PUB
// once the first chunk is written, PUB again after each further chunk, and
// marks PUB closed after the last. The worker, blocked in Atomics.wait, runs
// each chunk as soon as it is there (each with its own deadline), bumps DONE
// after each, and once the request is closed writes the outputs (or the
// first failure) after it and bumps RESP; the host, blocked in Atomics.wait
// with a timeout, reads them. So the worker's QuickJS work on one chunk
// overlaps the host's encoding of the next; still one round trip per call,
// however many chunks, and no event loop on either side is involved.

const WORKER_TAG = 'skysift-sandbox/4'
const C_REQ = 0 // seq of the latest request
const C_RESP = 1 // seq of the latest response
const C_STATUS = 2 // BOOTING | READY | FAILED
const C_LEN = 3 // request bytes, set before PUB is closed
const C_KIND = 4 // response kind, an index into KINDS
const C_PUB = 5 // chunks of the current request written so far, | CLOSED after the last
const C_DONE = 6 // chunks of the current request the worker has finished (the host watches it for progress)
const C_RESP_AT = 7 // where the response starts, bytes from the start of the buffer
const DATA = 64 // data area offset, bytes
const CLOSED = 1 << 29 // in PUB: the host has written all of the request
const COUNT = CLOSED - 1
const BOOTING = 0
const READY = 1
const FAILED = 2
const KINDS = ['ok', 'deadline', 'memory', 'stack', 'threw', 'output', 'crashed'] as const
type Kind = (typeof KINDS)[number]
const MAX_CHANNEL_BYTES = 64 * MiB
/** a round trip starts no further chunk once its request is this large (more chunks go in further round trips), well inside MAX_CHANNEL_BYTES */
const ROUND_TRIP_BYTES = 12 * MiB

interface WorkerInit {
  tag: typeof WORKER_TAG
  source: string
  limits: Required<SandboxLimits>
  channel: SharedArrayBuffer
  /** on a restart: the metadata the first load produced, which must not change */
  expectMeta: string | null
  now: number
}

type LoadMessage = { type: 'loaded'; meta: string } | { type: 'load-error'; error: string }

const utf8 = new TextEncoder()
const fromUtf8 = new TextDecoder()

/** Grows the buffer to hold `end` bytes; false when it may not grow that far. */
function room(buf: SharedArrayBuffer, end: number): boolean {
  if (end <= buf.byteLength) return true
  if (end > buf.maxByteLength) return false
  buf.grow(Math.min(buf.maxByteLength, Math.max(end, buf.byteLength * 2)))
  return true
}

/**
 * Writes one chunk of a request at byte offset `at` (a multiple of 4): its
 * UTF-8 length and `posts` as Int32s, then the text. Returns where the next
 * chunk goes, or -1 when it cannot fit.
 */
function writeItem(buf: SharedArrayBuffer, at: number, text: string, posts: number): number {
  const start = at + 8
  // UTF-8 takes at most 3 bytes per UTF-16 unit: with that much room one encodeInto always finishes
  if (!room(buf, start + text.length * 3) && !room(buf, start + text.length)) return -1
  const { read, written } = utf8.encodeInto(text, new Uint8Array(buf, start, buf.byteLength - start))
  if (read !== text.length) return -1
  const head = new Int32Array(buf, at, 2)
  head[0] = written
  head[1] = posts
  return (start + written + 3) & ~3
}

/** One chunk of a request, as writeItem wrote it at `at`. */
function readItem(buf: SharedArrayBuffer, at: number): { bytes: Uint8Array; posts: number; next: number } {
  const head = new Int32Array(buf, at, 2)
  const len = head[0]
  return { bytes: new Uint8Array(buf, at + 8, len), posts: head[1], next: (at + 8 + len + 3) & ~3 }
}

/**
 * Writes texts (as UTF-8) or bytes at byte offset `at` (a multiple of 4): a
 * table of their lengths in bytes as Int32s, then the items back to back.
 * Grows the buffer as needed; returns the end offset, or -1 when it cannot
 * fit.
 */
function writeFrame(buf: SharedArrayBuffer, at: number, texts: readonly (string | Uint8Array)[]): number {
  let pos = at + 4 * texts.length
  if (!room(buf, pos)) return -1
  const lens: number[] = []
  for (const text of texts) {
    if (typeof text !== 'string') {
      if (!room(buf, pos + text.length)) return -1
      new Uint8Array(buf, pos, text.length).set(text)
      lens.push(text.length)
      pos += text.length
      continue
    }
    // UTF-8 takes at most 3 bytes per UTF-16 unit: with that much room one encodeInto always finishes
    if (!room(buf, pos + text.length * 3) && !room(buf, pos + text.length)) return -1
    const { read, written } = utf8.encodeInto(text, new Uint8Array(buf, pos, buf.byteLength - pos))
    if (read !== text.length) return -1
    lens.push(written)
    pos += written
  }
  new Int32Array(buf, at, texts.length).set(lens)
  return pos
}

/** Reads what writeFrame wrote: each item's bytes (views into the buffer). */
function readFrame(buf: SharedArrayBuffer, at: number, n: number): Uint8Array[] {
  const table = new Int32Array(buf, at, n)
  let pos = at + 4 * n
  const bytes: Uint8Array[] = []
  for (let i = 0; i < n; i++) {
    bytes.push(new Uint8Array(buf, pos, table[i]))
    pos += table[i]
  }
  return bytes
}

async function workerMain(init: WorkerInit): Promise<void> {
  const { parentPort } = await import('node:worker_threads')
  const buf = init.channel
  const ctl = new Int32Array(buf, 0, DATA / 4)
  const loadFailed = (error: string) => {
    Atomics.store(ctl, C_STATUS, FAILED)
    parentPort!.postMessage({ type: 'load-error', error } satisfies LoadMessage)
  }
  let mod: CappedModule
  let vm: AgentVM | null
  try {
    mod = await newCappedModule(init.limits)
    vm = new AgentVM(mod, init.source, init.limits, init.now)
  } catch (err) {
    loadFailed(errText(err))
    return
  }
  if (init.expectMeta !== null && vm.meta !== init.expectMeta) {
    loadFailed('the agent described itself differently when it was restarted')
    return
  }
  Atomics.store(ctl, C_STATUS, READY)
  parentPort!.postMessage({ type: 'loaded', meta: vm.meta } satisfies LoadMessage)

  // from here on this thread only serves calls; the host terminates it when it is no longer wanted
  let broken: string | null = null
  let last = 0 // not a fresh read: the first request may already be waiting
  for (;;) {
    Atomics.wait(ctl, C_REQ, last)
    const seq = Atomics.load(ctl, C_REQ)
    if (seq === last) continue
    last = seq
    let failure: { kind: Exclude<Kind, 'ok'>; error: string } | null = null
    let fatal = false
    const outs: Uint8Array[] = []
    let seen = 0 // chunks of the request read so far
    /** waits until chunk `seen` is written (true) or the request is over (false) */
    const next = (): boolean => {
      for (;;) {
        const pub = Atomics.load(ctl, C_PUB)
        if ((pub & COUNT) > seen) return true
        if (pub & CLOSED) return false
        Atomics.wait(ctl, C_PUB, pub)
      }
    }
    try {
      if (!vm) failure = { kind: 'crashed', error: broken ?? 'the sandbox is unavailable' }
      else {
        for (let at = DATA; !failure && next(); seen++) {
          const chunk = readItem(buf, at)
          at = chunk.next
          const res = vm.call(chunk.bytes, chunk.posts)
          if (!res.ok) failure = res
          else {
            outs.push(res.out)
            Atomics.store(ctl, C_DONE, outs.length)
          }
        }
        if (!failure && seen === 0) failure = { kind: 'crashed', error: 'empty request' }
      }
    } catch (err) {
      // an exception from the WebAssembly side itself (a trap, the native stack): the instance cannot be trusted any more
      fatal = true
      failure = { kind: 'crashed', error: `the sandbox crashed: ${errText(err)}` }
    }
    // the response goes after the request, so the host must have finished writing it
    for (let pub = Atomics.load(ctl, C_PUB); !(pub & CLOSED); pub = Atomics.load(ctl, C_PUB)) Atomics.wait(ctl, C_PUB, pub)
    const respAt = (DATA + Atomics.load(ctl, C_LEN) + 7) & ~7
    let kind: Kind = failure?.kind ?? 'ok'
    if (writeFrame(buf, respAt, failure ? [failure.error] : outs) < 0) {
      kind = 'output'
      writeFrame(buf, respAt, ['output is too large'])
    }
    Atomics.store(ctl, C_RESP_AT, respAt)
    Atomics.store(ctl, C_KIND, KINDS.indexOf(kind))
    Atomics.store(ctl, C_RESP, seq)
    Atomics.notify(ctl, C_RESP)
    if (fatal) process.exit(1)
    // a batch that failed half way may have left the agent's state inconsistent: start again from the source
    if (failure && failure.kind !== 'output' && vm) {
      try {
        vm.dispose()
      } catch {
        process.exit(1)
      }
      vm = null
      try {
        vm = new AgentVM(mod, init.source, init.limits, Date.now())
      } catch (err) {
        broken = `the sandbox could not be reset: ${errText(err)}`
      }
    }
  }
}

if (!isMainThread && (workerData as WorkerInit | null)?.tag === WORKER_TAG) void workerMain(workerData as WorkerInit)

// ---------------------------------------------------------------------------
// the host side of one agent's worker

interface WorkerHandle {
  worker: Worker
  buf: SharedArrayBuffer
  ctl: Int32Array
  seq: number
  failure: string | null
  bootTimer: NodeJS.Timeout | null
}

export interface SandboxStats {
  /** scoreBatch calls */
  calls: number
  /** calls into the VM (a call is split into chunks of batchSize posts) */
  chunks: number
  failures: Record<SandboxFailureKind, number>
  /** workers started after the first (after a kill or crash) */
  restarts: number
  state: 'ready' | 'restarting' | 'failed' | 'closed'
  lastError: string | null
}

class Sandbox {
  readonly limits: Required<SandboxLimits>
  private readonly source: string
  private h: WorkerHandle | null = null
  private meta: string | null = null
  private closed = false
  private broken: string | null = null
  private lastFault = ''
  private consecutiveFaults = 0
  private respawnTimer: NodeJS.Timeout | null = null
  readonly stats: Omit<SandboxStats, 'state'> = {
    calls: 0,
    chunks: 0,
    failures: { deadline: 0, memory: 0, stack: 0, threw: 0, output: 0, input: 0, crashed: 0, restarting: 0, closed: 0 },
    restarts: 0,
    lastError: null,
  }

  constructor(source: string, limits: Required<SandboxLimits>) {
    this.source = source
    this.limits = limits
  }

  state(): SandboxStats['state'] {
    if (this.closed) return 'closed'
    if (this.broken) return 'failed'
    return this.h && Atomics.load(this.h.ctl, C_STATUS) === READY ? 'ready' : 'restarting'
  }

  private spawn(): WorkerHandle {
    const buf = new SharedArrayBuffer(256 * KiB, { maxByteLength: MAX_CHANNEL_BYTES })
    const init: WorkerInit = { tag: WORKER_TAG, source: this.source, limits: this.limits, channel: buf, expectMeta: this.meta, now: Date.now() }
    const worker = new Worker(new URL(import.meta.url), {
      workerData: init,
      execArgv: [],
      env: {},
      resourceLimits: { stackSizeMb: nativeStackMb(this.limits.stackBytes), maxOldGenerationSizeMb: 128 },
    })
    const h: WorkerHandle = { worker, buf, ctl: new Int32Array(buf, 0, DATA / 4), seq: 0, failure: null, bootTimer: null }
    worker.on('message', (m: LoadMessage) => {
      if (m?.type === 'load-error') h.failure = m.error
    })
    worker.on('error', (err) => {
      h.failure ??= `the sandbox worker failed: ${errText(err)}`
    })
    worker.on('exit', () => {
      if (h.bootTimer) clearTimeout(h.bootTimer)
      if (this.h !== h || this.closed) return
      this.h = null
      if (Atomics.load(h.ctl, C_STATUS) !== READY) {
        // a restart that failed to load: do not try again
        this.broken = `the sandbox failed to restart: ${h.failure ?? 'the worker exited'}`
        return
      }
      this.fault(null, h.failure ?? 'the sandbox worker exited')
    })
    return h
  }

  /** Starts the first worker and returns the agent's metadata (JSON text). */
  async start(): Promise<string> {
    const h = this.spawn()
    this.h = h
    const limit = BOOT_TIMEOUT_MS + this.limits.loadDeadlineMs
    try {
      const meta = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the sandboxed agent did not load within ${limit} ms`)), limit)
        const done = () => clearTimeout(timer)
        h.worker.on('message', (m: LoadMessage) => {
          done()
          if (m?.type === 'loaded') resolve(m.meta)
          else reject(new Error(m?.error ?? 'the sandboxed agent did not load'))
        })
        h.worker.once('error', (err) => {
          done()
          reject(new Error(`the sandbox worker failed: ${errText(err)}`))
        })
        h.worker.once('exit', () => {
          done()
          reject(new Error(h.failure ?? 'the sandbox worker exited while loading'))
        })
      })
      this.meta = meta
      h.worker.unref()
      return meta
    } catch (err) {
      this.closed = true
      this.h = null
      await h.worker.terminate().catch(() => {})
      throw err
    }
  }

  /** Gives up on a worker (if any), and starts another after a pause that grows while faults repeat. */
  private fault(h: WorkerHandle | null, why: string): void {
    if (h) {
      if (this.h === h) this.h = null
      if (h.bootTimer) clearTimeout(h.bootTimer)
      void h.worker.terminate().catch(() => {})
    }
    this.lastFault = why
    this.consecutiveFaults++
    if (this.closed || this.broken || this.respawnTimer) return
    const delay = this.consecutiveFaults <= 1 ? 0 : Math.min(MAX_RESPAWN_DELAY_MS, 250 * 2 ** (this.consecutiveFaults - 2))
    this.respawnTimer = setTimeout(() => {
      this.respawnTimer = null
      if (this.closed || this.broken || this.h) return
      const nh = this.spawn()
      nh.worker.unref()
      nh.bootTimer = setTimeout(() => {
        if (Atomics.load(nh.ctl, C_STATUS) === BOOTING && this.h === nh) this.fault(nh, 'the restarted sandbox did not load in time')
      }, BOOT_TIMEOUT_MS + this.limits.loadDeadlineMs)
      nh.bootTimer.unref()
      this.h = nh
      this.stats.restarts++
    }, delay)
    this.respawnTimer.unref()
  }

  /** Resolves when a worker is ready to take calls (or rejects when the sandbox cannot recover). */
  async whenReady(timeoutMs = BOOT_TIMEOUT_MS + MAX_RESPAWN_DELAY_MS): Promise<void> {
    const t0 = performance.now()
    for (;;) {
      const s = this.state()
      if (s === 'ready') return
      if (s !== 'restarting') throw new Error(`the sandbox is ${s}${this.broken ? `: ${this.broken}` : ''}`)
      if (performance.now() - t0 > timeoutMs) throw new Error(`the sandbox did not become ready within ${timeoutMs} ms`)
      await new Promise((r) => setTimeout(r, 10))
    }
  }

  /**
   * One synchronous round trip into the worker for the first chunks of a
   * call (all of them unless they fill ROUND_TRIP_BYTES); `payload` gives a
   * chunk's payload text, built only when it is its turn to be written.
   * Returns each chunk's scores, or throws a SandboxError for the first
   * chunk that failed. Waits at most deadline + grace for the worker to
   * finish a chunk once the request is written.
   */
  call(chunks: readonly (readonly AgentPost[])[], payload: (posts: readonly AgentPost[]) => string): Score[][] {
    const h = this.h
    if (this.closed) throw new SandboxError('closed', 'the sandbox is closed')
    if (this.broken) throw new SandboxError('crashed', this.broken)
    if (!h || Atomics.load(h.ctl, C_STATUS) !== READY) throw new SandboxError('restarting', `the sandbox is restarting after: ${this.lastFault || 'a fault'}`)
    const { ctl, buf } = h
    const seq = h.seq + 1
    Atomics.store(ctl, C_DONE, 0)
    Atomics.store(ctl, C_PUB, 0)
    // each chunk is the worker's as soon as PUB counts it; one that does not fit any more goes in the next round trip
    let at = DATA
    let sent = 0
    for (const chunk of chunks) {
      if (sent > 0 && at - DATA > ROUND_TRIP_BYTES) break
      const next = writeItem(buf, at, payload(chunk), chunk.length)
      if (next < 0) {
        if (sent === 0) throw new SandboxError('input', `the batch is larger than ${MAX_CHANNEL_BYTES} bytes`)
        break
      }
      at = next
      Atomics.store(ctl, C_PUB, ++sent)
      if (sent === 1) {
        h.seq = seq
        Atomics.store(ctl, C_REQ, seq)
        Atomics.notify(ctl, C_REQ)
      } else Atomics.notify(ctl, C_PUB)
    }
    Atomics.store(ctl, C_LEN, at - DATA)
    Atomics.store(ctl, C_PUB, sent | CLOSED)
    Atomics.notify(ctl, C_PUB)
    const hard = this.limits.deadlineMs + graceMs(this.limits.deadlineMs)
    let since = performance.now()
    let done = 0
    for (;;) {
      const resp = Atomics.load(ctl, C_RESP)
      if (resp === seq) break
      const now = performance.now()
      const d = Atomics.load(ctl, C_DONE)
      if (d !== done) {
        // a chunk finished: the next one gets its own time
        done = d
        since = now
      }
      const left = hard - (now - since)
      if (left <= 0) {
        const why = `deadline exceeded: no answer within ${Math.round(hard)} ms (stuck where it cannot be interrupted); the sandbox was killed and restarts`
        this.fault(h, why)
        throw new SandboxError('deadline', why)
      }
      Atomics.wait(ctl, C_RESP, resp, left)
    }
    const kind = KINDS[Atomics.load(ctl, C_KIND)] ?? 'crashed'
    if (kind === 'ok' && Atomics.load(ctl, C_DONE) !== sent) {
      const why = 'the sandbox answered for the wrong number of chunks'
      this.fault(h, why)
      throw new SandboxError('crashed', why)
    }
    const bytes = readFrame(buf, Atomics.load(ctl, C_RESP_AT), kind === 'ok' ? sent : 1)
    if (kind === 'ok') {
      this.consecutiveFaults = 0
      return bytes.map((b, k) => scores(b, chunks[k].length))
    }
    const why = fromUtf8.decode(bytes[0])
    if (kind === 'crashed') this.fault(h, why)
    throw new SandboxError(kind, why)
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.respawnTimer) clearTimeout(this.respawnTimer)
    this.respawnTimer = null
    const h = this.h
    this.h = null
    if (h) {
      if (h.bootTimer) clearTimeout(h.bootTimer)
      await h.worker.terminate().catch(() => {})
    }
  }
}

// ---------------------------------------------------------------------------
// metadata

/** Which post fields each need brings; uri and createdAt always go. */
const FIELDS_BY_NEED: Record<Need, (keyof AgentPost)[]> = {
  // personal agents run only built in: a reader's follow graph is not handed to uploaded code
  subscriber: [],
  text: ['text'],
  langs: ['langs'],
  tags: ['tags'],
  embed: ['embed', 'quote'],
  reply: ['replyRoot', 'replyParent'],
  labels: ['labels'],
  author: ['author'],
  engagement: ['likeCount', 'repostCount'],
  time: [],
  candidates: [],
}

/** deepest nesting accepted in an options JSON Schema */
const MAX_SCHEMA_DEPTH = 32

async function validateMeta(json: string): Promise<{ meta: DeclaredAgentMeta; options: z.ZodType }> {
  // @NOTE zod and the schema load when an agent is first loaded, not in every sandbox worker thread
  const [{ z }, { agentMetaSchema, checkOptionsSchema, MAX_OPTIONS_SCHEMA_BYTES }] = await Promise.all([import('zod'), import('./agent-meta.ts')])
  let raw: unknown
  try {
    raw = JSON.parse(json)
  } catch {
    throw new Error('sandboxed agent: its metadata is not JSON')
  }
  const r = raw as Record<string, unknown>
  if (r.api !== SDK_API_VERSION) {
    const id = typeof r.id === 'string' ? `${r.id.slice(0, 41)} ` : ''
    throw new Error(
      `sandboxed agent ${id}targets SDK API ${typeof r.api === 'number' ? r.api : JSON.stringify(r.api ?? null)}; this host speaks ${SDK_API_VERSION}`,
    )
  }
  const parsed = agentMetaSchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new Error(`sandboxed agent: invalid ${issue.path.length ? issue.path.join('.') : 'definition'}: ${issue.message}`)
  }
  const meta = parsed.data
  const schema = meta.options ?? { type: 'object', properties: {} }
  let options: z.ZodType
  try {
    if (JSON.stringify(schema).length > MAX_OPTIONS_SCHEMA_BYTES) throw new Error(`larger than ${MAX_OPTIONS_SCHEMA_BYTES} bytes`)
    if (schema.type !== 'object') throw new Error('must have "type": "object"')
    checkOptionsSchema(schema, 'options', 'sandboxed', MAX_SCHEMA_DEPTH)
    options = z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0])
  } catch (err) {
    throw new Error(`sandboxed agent ${meta.id}: invalid options schema: ${errText(err)}`)
  }
  return { meta: { ...meta, needs: [...new Set(meta.needs)] }, options }
}

// ---------------------------------------------------------------------------
// the agent definition

// biome-ignore lint/suspicious/noExplicitAny: an agent's options are its own shape; hosts hold agents of every option type side by side
export interface SandboxedAgent<O = any> extends AgentDefinition<O> {
  readonly kind: 'sandboxed'
  readonly limits: Readonly<Required<SandboxLimits>>
  sandboxStats(): SandboxStats
  /** resolves when the sandbox can take calls again after a restart */
  whenReady(timeoutMs?: number): Promise<void>
  /** stops the worker; later calls throw */
  close(): Promise<void>
}

/** The post fields sent to an agent with these needs: uri, createdAt, and what the needs ask for. */
export function sandboxFields(needs: readonly Need[]): string[] {
  return ['uri', 'createdAt', ...new Set(needs.flatMap((n) => FIELDS_BY_NEED[n] ?? []))]
}

/** One batch as the VM receives it: a single JSON text. */
export function sandboxPayload(fields: string[], posts: readonly AgentPost[], optionsJson: string, now: number): string {
  return `{"now":${now},"options":${optionsJson},"posts":${JSON.stringify(posts, fields)}}`
}

/** One chunk's scores from the float64s the VM wrote (NaN for null, Infinity for "drop"); checked again here, since the bytes crossed from the worker. */
function scores(bytes: Uint8Array, n: number): Score[] {
  if (bytes.length !== 8 * n) throw new SandboxError('output', `output has ${Math.floor(bytes.length / 8)} entries for ${n} posts`)
  const f = new Float64Array(n)
  new Uint8Array(f.buffer).set(bytes)
  const out = new Array<Score>(n)
  for (let i = 0; i < n; i++) {
    const v = f[i]
    if (v !== v) out[i] = null
    else if (v === Infinity) out[i] = 'drop'
    else if (v === -Infinity) throw new SandboxError('output', `entry ${i} is -Infinity, not a finite number, "drop" or null`)
    else out[i] = v
  }
  return out
}

/**
 * Loads an uploaded agent into a sandbox and returns its definition. Throws
 * when the source is too large, does not load within its budget, or
 * describes an invalid agent (bad id, wrong SDK API, unknown needs, options
 * that are not a JSON Schema object zod can convert).
 *
 * `scoreBatch` is synchronous: it blocks the calling thread for at most
 * about `deadlineMs` (+ a grace period when the VM has to be killed) per
 * chunk of `batchSize` posts, and throws a SandboxError on any failure.
 * Posts carry only uri, createdAt and the fields the agent's needs ask for.
 */
export async function loadSandboxedAgent(source: string, limits: Partial<SandboxLimits> = {}): Promise<SandboxedAgent> {
  const lim = checkLimits(limits)
  if (typeof source !== 'string') throw new Error('sandboxed agent: the source must be a string')
  const bytes = Buffer.byteLength(source, 'utf8')
  if (bytes > lim.maxSourceBytes) throw new Error(`sandboxed agent: the source is ${bytes} bytes; the limit is ${lim.maxSourceBytes}`)
  const sandbox = new Sandbox(source, lim)
  let meta: DeclaredAgentMeta
  let options: z.ZodType
  try {
    ;({ meta, options } = await validateMeta(await sandbox.start()))
  } catch (err) {
    await sandbox.close()
    throw err
  }

  const fields = sandboxFields(meta.needs)
  const whole = meta.needs.includes('candidates')
  const optionsJson = new WeakMap<object, string>()
  const encodeOptions = (o: unknown): string => {
    if (o === null || typeof o !== 'object') return JSON.stringify(o ?? {})
    let s = optionsJson.get(o)
    if (s === undefined) {
      s = JSON.stringify(o)
      optionsJson.set(o, s)
    }
    return s
  }

  const def: SandboxedAgent = {
    kind: 'sandboxed',
    id: meta.id,
    version: meta.version,
    title: meta.title,
    description: meta.description,
    ...(meta.author !== undefined ? { author: meta.author } : {}),
    api: meta.api,
    options,
    needs: meta.needs,
    ...(meta.prefilter ? { prefilter: meta.prefilter } : {}),
    limits: lim,
    scoreBatch(posts: AgentPost[], ctx: AgentContext<unknown>): Score[] {
      sandbox.stats.calls++
      if (posts.length === 0) return []
      const now = Number.isFinite(ctx.now) ? ctx.now : Date.now()
      const opts = encodeOptions(ctx.options)
      const size = whole ? posts.length : lim.batchSize
      try {
        const chunks: AgentPost[][] = []
        for (let i = 0; i < posts.length; i += size) chunks.push(size >= posts.length ? posts : posts.slice(i, i + size))
        const payload = (chunk: readonly AgentPost[]) => sandboxPayload(fields, chunk, opts, now)
        // as few round trips as the shared buffer (bounded) allows
        const out: Score[] = []
        for (let done = 0; done < chunks.length; ) {
          const got = sandbox.call(done ? chunks.slice(done) : chunks, payload)
          sandbox.stats.chunks += got.length
          done += got.length
          for (const chunk of got) for (const v of chunk) out.push(v)
        }
        return out
      } catch (err) {
        const kind = err instanceof SandboxError ? err.kind : 'crashed'
        sandbox.stats.failures[kind]++
        sandbox.stats.lastError = errText(err)
        throw err
      }
    },
    sandboxStats: () => ({ ...sandbox.stats, failures: { ...sandbox.stats.failures }, state: sandbox.state() }),
    whenReady: (timeoutMs?: number) => sandbox.whenReady(timeoutMs),
    close: () => sandbox.close(),
  }
  return def
}

// ---------------------------------------------------------------------------
// for the benchmark

/**
 * For the benchmark: the same agent in the sandbox's VM setup (same limits,
 * prelude and output checks), called in this thread with a payload built
 * once, no worker and no host-side decoding: what the agent costs in
 * QuickJS by itself, so that the sandbox's own cost (the thread hop, the
 * payload, the checks on the host) can be told apart from it.
 */
export async function quickjsAgentRunner(
  source: string,
  payload: string,
  posts: number,
  limits: Partial<SandboxLimits> = {},
): Promise<{ call(): void; dispose(): void }> {
  const lim = checkLimits(limits)
  const vm = new AgentVM(await newCappedModule(lim), source, lim, Date.now())
  return {
    call(): void {
      const r = vm.call(payload, posts)
      if (!r.ok) throw new Error(`the agent failed in the raw runner: ${r.error}`)
    },
    dispose(): void {
      vm.dispose()
    },
  }
}

/**
 * For the benchmark: a bare QuickJS call in the sandbox's VM setup (same
 * limits, memory cap, interrupt handler and string transfer), in this
 * thread, no worker: a trivial function that parses the same payload and
 * returns a zero per post. Keep one runner across rounds: a fresh
 * WebAssembly instance runs slower until V8 has tiered its code up.
 */
export async function quickjsRawRunner(payload: string, posts: number, limits: Partial<SandboxLimits> = {}): Promise<{ call(): void; dispose(): void }> {
  const lim = checkLimits(limits)
  const vm = new LimitedRuntime(await newCappedModule(lim), lim)
  const { ctx } = vm
  const fn = ctx.unwrapResult(ctx.evalCode('(p) => { const r = JSON.parse(p); return JSON.stringify(r.posts.map(() => 0)) }', 'raw.js', { type: 'global' }))
  return {
    call(): void {
      vm.arm(lim.deadlineMs)
      const arg = vm.strings.fromString(payload)
      const res = ctx.callFunction(fn, ctx.undefined, arg)
      arg.dispose()
      vm.disarm()
      const v = ctx.unwrapResult(res)
      const out = JSON.parse(ctx.getString(v)) as unknown[]
      v.dispose()
      if (out.length !== posts) throw new Error('raw call returned the wrong length')
    },
    dispose(): void {
      fn.dispose()
      vm.dispose()
    },
  }
}
