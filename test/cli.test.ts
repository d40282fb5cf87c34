/**
 * The command line as a newcomer meets it, run as real processes: the Node
 * version check, a port already in use, `--version`, `generate`, and
 * `agent test` (exit codes on strikes, syntax errors, file paths, messages).
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { nodeTooOld } from '../bin/node-check.js'
import { queuePrefix, tempDir } from './support/resources.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BIN = path.join(ROOT, 'bin/skysift.js')
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string; scripts: Record<string, string> }

interface Run {
  code: number
  stdout: string
  stderr: string
}

/** Runs `node [execArgv] bin/skysift.js …args` in `cwd` to completion. */
async function skysift(args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv; execArgv?: string[] } = {}): Promise<Run> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [...(o.execArgv ?? []), BIN, ...args], {
      cwd: o.cwd ?? ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, SKYSIFT_LOG_LEVEL: 'warn', ...o.env },
      timeout: 60_000,
    })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

const cleanups: (() => unknown)[] = []
afterAll(async () => {
  for (const c of cleanups.reverse()) await c()
})

describe('a Node older than 22.18', () => {
  it('gets one line saying what to run, from a launcher any Node can load', async () => {
    // the launcher run by this Node, told it is Node 20 before it starts
    const r = await skysift(['start'], { execArgv: ['--import', 'data:text/javascript,Object.defineProperty(process.versions,"node",{value:"20.20.2"})'] })
    expect(r.code).toBe(1)
    expect(r.stderr.trim().split('\n')).toEqual(['skysift: Node.js 22.18 or newer is needed (this is 20.20.2). Run ". scripts/use-node.sh" in this shell (it puts Node 24 on PATH), then run the command again.'])
    expect(r.stderr).not.toContain('ERR_UNKNOWN_FILE_EXTENSION')
  })

  it('is told apart from new enough versions', () => {
    expect(nodeTooOld('20.20.2')).toContain('scripts/use-node.sh')
    expect(nodeTooOld('22.17.1')).toContain('this is 22.17.1')
    expect(nodeTooOld('22.18.0')).toBeNull()
    expect(nodeTooOld('24.2.0')).toBeNull()
  })

  it('npm start and npm run demo go through the launcher', () => {
    expect(pkg.scripts.start).toBe('node bin/skysift.js start')
    expect(pkg.scripts.demo).toBe('node bin/skysift.js demo')
  })
})

describe('a port already in use', () => {
  it('names the port and the variable to change, without a stack trace, and exits 1', async () => {
    const blocker = net.createServer()
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r))
    cleanups.push(() => new Promise((r) => blocker.close(r)))
    const port = (blocker.address() as net.AddressInfo).port
    const t = tempDir()
    const q = queuePrefix()
    cleanups.push(t.cleanup, q.cleanup)
    const r = await skysift(['serve'], { cwd: t.dir, env: { SKYSIFT_PORT: String(port), SKYSIFT_HOST: '127.0.0.1', SKYSIFT_DB_PATH: path.join(t.dir, 'x.db'), SKYSIFT_QUEUE_PREFIX: q.prefix, SKYSIFT_START_REDIS: 'never', SKYSIFT_FEEDS_FILE: path.join(ROOT, 'feeds.example.json') } })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`skysift: port ${port} is already in use on 127.0.0.1: stop what is using it, or set SKYSIFT_PORT to a free port`)
    expect(r.stderr).not.toMatch(/EADDRINUSE|\n\s+at /)
  })
})
