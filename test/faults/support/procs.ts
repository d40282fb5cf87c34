/**
 * Real stage processes for the fault scenarios: `node workers/<stage>.ts`,
 * each in its own process group (so a kill reaches everything it started),
 * logging to a file in the scenario's temp dir. Every process started here
 * is registered and killed by `killAll()` (afterAll) and, as a last resort,
 * when the test process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url))

export type StageName = 'ingest' | 'score' | 'store' | 'refresh' | 'serve'

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  /** true when the harness asked for it (kill -9, SIGTERM) */
  expected: boolean
  at: number
}

const live = new Set<Proc>()

/** A child process in its own group, restartable, with its exits recorded. */
export class Proc {
  readonly name: string
  readonly args: string[]
  readonly logFile: string
  /** the program; `node` unless given */
  readonly cmd: string
  env: NodeJS.ProcessEnv
  child: ChildProcess | null = null
  starts = 0
  kills = 0
  readonly exits: Exit[] = []
  private expectExit = false
  private exited: Promise<Exit> | null = null

  constructor(name: string, args: string[], env: NodeJS.ProcessEnv, logFile: string, cmd: string = process.execPath) {
    this.name = name
    this.cmd = cmd
    this.args = args
    this.env = env
    this.logFile = logFile
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null
  }

  start(): this {
    if (this.running) throw new Error(`${this.name} is already running`)
    const fd = fs.openSync(this.logFile, 'a')
    fs.writeSync(fd, `\n=== ${new Date().toISOString()} start #${this.starts + 1}: ${this.args.join(' ')}\n`)
    const child = spawn(this.cmd, this.args, { cwd: ROOT, env: this.env, detached: true, stdio: ['ignore', fd, fd] })
    fs.closeSync(fd)
    this.child = child
    this.starts++
    this.expectExit = false
    live.add(this)
    this.exited = new Promise<Exit>((resolve) => {
      child.once('exit', (code, signal) => {
        const e: Exit = { code, signal, expected: this.expectExit, at: Date.now() }
        this.exits.push(e)
        if (this.child === child) live.delete(this)
        resolve(e)
      })
    })
    return this
  }

  /** kill -9 of the whole process group; resolves when the leader is gone. */
  async kill9(): Promise<void> {
    if (!this.running) return
    this.expectExit = true
    this.kills++
    killGroup(this.child!.pid!, 'SIGKILL')
    await this.exited
  }

  /** SIGTERM (graceful stop), then SIGKILL after `graceMs`. */
  async stop(graceMs = 20_000): Promise<Exit | null> {
    if (!this.running) return null
    this.expectExit = true
    killGroup(this.child!.pid!, 'SIGTERM')
    const t = setTimeout(() => this.child?.pid && killGroup(this.child.pid, 'SIGKILL'), graceMs)
    const e = await this.exited!
    clearTimeout(t)
    return e
  }

  /** Exits the harness did not cause (crashes). */
  unexpectedExits(): Exit[] {
    return this.exits.filter((e) => !e.expected)
  }

  /** Resident set size now, MB (from /proc); null when not running. */
  rssMb(): number | null {
    if (!this.running) return null
    try {
      const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${this.child!.pid}/status`, 'utf8'))
      return m ? Number(m[1]) / 1024 : null
    } catch {
      return null
    }
  }

  /** The last `n` lines of the log, for failure messages. */
  tail(n = 30): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-n).join('\n')
    } catch {
      return ''
    }
  }

  /** Parsed JSON log lines matching `msg` (pino output). */
  logLines(msg?: string | RegExp): Record<string, unknown>[] {
    let text = ''
    try {
      text = fs.readFileSync(this.logFile, 'utf8')
    } catch {
      return []
    }
    const out: Record<string, unknown>[] = []
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) continue
      try {
        const o = JSON.parse(line) as Record<string, unknown>
        if (msg === undefined || (typeof msg === 'string' ? o.msg === msg : msg.test(String(o.msg)))) out.push(o)
      } catch {
        // not a log line
      }
    }
    return out
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal)
  } catch {
    try {
      process.kill(pid, signal)
    } catch {
      // already gone
    }
  }
}

/** A stage process: `node workers/<stage>.ts`. */
export function stage(name: StageName, env: NodeJS.ProcessEnv, logDir: string, label: string = name): Proc {
  return new Proc(label, [path.join(ROOT, 'workers', `${name}.ts`)], env, path.join(logDir, `${label}.log`))
}

/** Any script as a child process (e.g. `src/cli.ts agent …`), run to completion. */
export async function runScript(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)))
  clearTimeout(t)
  return { code, stdout, stderr }
}

/** Kills every process this harness started that still runs (whole groups), and waits for them. */
export async function killAll(): Promise<void> {
  const procs = [...live]
  await Promise.all(procs.map((p) => p.kill9().catch(() => {})))
}

process.once('exit', () => {
  for (const p of live) if (p.pid) killGroup(p.pid, 'SIGKILL')
})

/** A TCP port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })
}

/** RSS of a process by pid, MB. */
export function pidRssMb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : null
  } catch {
    return null
  }
}
