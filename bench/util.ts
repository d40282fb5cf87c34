/** Small helpers shared by the benchmark's parent and child processes. */
import { fork, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'

/** Progress goes to stderr; stdout is kept for the final JSON line. */
export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`)
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export const round = (n: number, digits = 0) => {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

export const mb = (bytes: number) => round(bytes / (1 << 20), 1)

export function median(xs: number[]): number {
  if (!xs.length) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

export function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]
}

/** Rejects when `p` has not settled within `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, rej) => {
      t = setTimeout(() => rej(new Error(`${what} did not finish within ${Math.round(ms / 1000)} s`)), ms)
      t.unref()
    }),
  ])
}

/** Polls `cond` every `everyMs` until it is true; throws after `timeoutMs`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string, everyMs = 50): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`)
    await sleep(everyMs)
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc; null where /proc is missing. */
export function procCpuSeconds(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    // fields after the ")" that ends the command name; utime and stime are fields 14 and 15
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) / 100
  } catch {
    return null
  }
}

/** Peak resident set of a live process in MB (VmHWM), from /proc. */
export function procPeakRssMb(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? round(Number(m[1]) / 1024, 1) : null
  } catch {
    return null
  }
}

/** Current resident set of a live process in MB (VmRSS), from /proc. */
export function procRssMb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? round(Number(m[1]) / 1024, 1) : null
  } catch {
    return null
  }
}

export function fileSize(path: string): number {
  try {
    return fs.statSync(path).size
  } catch {
    return 0
  }
}

/**
 * Forks a helper with an IPC channel, stdout sent to our stderr, and
 * resolves with the first message it sends: `{ ok: true, result }` or
 * `{ ok: false, error }`. The child is killed on timeout.
 */
export function runHelper<T>(
  entry: string,
  input: unknown,
  timeoutMs: number,
  opts: { env?: NodeJS.ProcessEnv; keepAlive?: (child: ChildProcess) => void } = {},
): Promise<T> {
  const child = fork(entry, [], { stdio: ['ignore', 2, 2, 'ipc'], env: opts.env ?? process.env })
  opts.keepAlive?.(child)
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`${entry} did not answer within ${Math.round(timeoutMs / 1000)} s`))
    }, timeoutMs)
    child.once('message', (m: { ok: boolean; result?: T; error?: string }) => {
      clearTimeout(timer)
      if (m.ok) resolve(m.result as T)
      else reject(new Error(`${entry}: ${m.error}`))
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`${entry} exited (${signal ?? code}) without an answer`))
    })
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.send(input as object)
  })
}

/** Child side of runHelper: answers the parent's one message with `fn(input)`, then exits. */
export function serveHelper<I, O>(fn: (input: I) => Promise<O>, opts: { exit?: boolean } = {}): void {
  process.once('message', (input: I) => {
    fn(input).then(
      (result) =>
        process.send!({ ok: true, result }, () => {
          if (opts.exit !== false) process.exit(0)
        }),
      (err) => process.send!({ ok: false, error: (err as Error)?.stack ?? String(err) }, () => process.exit(1)),
    )
  })
}

/** Sends SIGTERM, then SIGKILL after `graceMs`, and waits for the exit. */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  child.kill('SIGTERM')
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited
  clearTimeout(t)
}
