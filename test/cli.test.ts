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
import { formatReport, histogram } from '../src/commands/agent.ts'
import { queuePrefix, REDIS_URL, tempDir } from './support/resources.ts'

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
      env: { PATH: process.env.PATH, HOME: process.env.HOME, REDIS_URL, SKYSIFT_LOG_LEVEL: 'warn', ...o.env },
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
    expect(r.stderr.trim().split('\n')).toEqual([
      'skysift: Node.js 22.18 or newer is needed (this is 20.20.2). Run ". scripts/use-node.sh" in this shell (it puts Node 24 on PATH), then run the command again.',
    ])
    expect(r.stderr).not.toContain('ERR_UNKNOWN_FILE_EXTENSION')
  })

  it('is told apart from new enough versions', () => {
    expect(nodeTooOld('20.20.2')).toContain('scripts/use-node.sh')
    expect(nodeTooOld('22.17.1')).toContain('this is 22.17.1')
    expect(nodeTooOld('22.18.0')).toBeNull()
    expect(nodeTooOld('24.2.0')).toBeNull()
  })

  it('npm start and npm run demo go through the launcher', () => {
    expect(pkg.scripts.start).toBe('node --max-semi-space-size=16 bin/skysift.js start')
    expect(pkg.scripts.demo).toBe('node --max-semi-space-size=16 bin/skysift.js demo')
  })
})

describe('a port already in use', { timeout: 120_000 }, () => {
  it('names the port and the variable to change, without a stack trace, and exits 1', async () => {
    const blocker = net.createServer()
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r))
    cleanups.push(() => new Promise((r) => blocker.close(r)))
    const port = (blocker.address() as net.AddressInfo).port
    const t = tempDir()
    const q = queuePrefix()
    cleanups.push(t.cleanup, q.cleanup)
    const r = await skysift(['serve'], {
      cwd: t.dir,
      env: {
        SKYSIFT_PORT: String(port),
        SKYSIFT_HOST: '127.0.0.1',
        SKYSIFT_DB_PATH: path.join(t.dir, 'x.db'),
        SKYSIFT_QUEUE_PREFIX: q.prefix,
        SKYSIFT_START_REDIS: 'never',
        SKYSIFT_FEEDS_FILE: path.join(ROOT, 'feeds.example.json'),
      },
    })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`skysift: port ${port} is already in use on 127.0.0.1: stop what is using it, or set SKYSIFT_PORT to a free port`)
    expect(r.stderr).not.toMatch(/EADDRINUSE|\n\s+at /)
  })
})

// each step runs the CLI as a process: slow on a busy machine
describe('the agent author loop', { timeout: 120_000 }, () => {
  let dir: string
  const FIXTURES = path.join(ROOT, 'test/fixtures/agents')

  it('agent new, then generate, say what they wrote', async () => {
    const t = tempDir('skysift-author')
    cleanups.push(t.cleanup)
    dir = t.dir
    const made = await skysift(['agent', 'new', 'my-agent'], { cwd: dir })
    expect(made.code).toBe(0)
    expect(made.stdout).toContain('my-agent.agent.js')
    const gen = await skysift(['generate', 'events.jsonl', '--events', '3000'], { cwd: dir })
    expect(gen.code).toBe(0)
    expect(gen.stdout.trim()).toBe('wrote 3,000 synthetic Jetstream events to events.jsonl')
    expect(fs.readFileSync(path.join(dir, 'events.jsonl'), 'utf8').trim().split('\n')).toHaveLength(3000)
  })

  it('--version prints the version', async () => {
    const r = await skysift(['--version'])
    expect(r).toMatchObject({ code: 0, stdout: `skysift ${pkg.version}\n` })
  })

  it('a path that exists is a file, sandboxed or not', async () => {
    for (const args of [['--sandbox'], []]) {
      const r = await skysift(['agent', 'test', 'my-agent.agent.js', '--replay', 'events.jsonl', '--json', ...args], { cwd: dir })
      expect(r.code, r.stderr).toBe(0)
      const report = JSON.parse(r.stdout) as { agent: { id: string; kind: string }; posts: number; strikes: number; histogram: { from: number; to: number }[] }
      expect(report.agent).toMatchObject({ id: 'my-agent', kind: args.length ? 'sandboxed' : 'installed' })
      expect(report.posts).toBeGreaterThan(0)
      expect(report.strikes).toBe(0)
    }
  })

  it('exits 1 when the agent struck, saying so; --allow-strikes exits 0', async () => {
    const agent = path.join(FIXTURES, 'throws.js')
    const r = await skysift(['agent', 'test', agent, '--sandbox', '--replay', 'events.jsonl'], { cwd: dir })
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/strikes\s+[1-9]/)
    expect(r.stderr).toMatch(
      /skysift: the agent struck \d+ times? \(a server disables an agent after 5 in 10 minutes\); last: .*--allow-strikes exits 0 anyway/,
    )
    const allowed = await skysift(['agent', 'test', agent, '--sandbox', '--replay', 'events.jsonl', '--allow-strikes'], { cwd: dir })
    expect(allowed.code).toBe(0)
    expect(allowed.stdout).toMatch(/strikes\s+[1-9]/)
  })

  it('a syntax error names the file, line and column', async () => {
    fs.writeFileSync(
      path.join(dir, 'broken.agent.js'),
      "export default {\n  id: 'broken',\n  scoreBatch(posts) {\n    return posts.map((p) => (p.text.endsWith('?') ? 1 : 0)\n  },\n}\n",
    )
    const sandboxed = await skysift(['agent', 'test', 'broken.agent.js', '--sandbox', '--replay', 'events.jsonl'], { cwd: dir })
    expect(sandboxed.code).toBe(1)
    expect(sandboxed.stderr).toMatch(/^skysift: broken\.agent\.js:5:3: .*SyntaxError: expecting ','\n$/)
    const installed = await skysift(['agent', 'test', 'broken.agent.js', '--replay', 'events.jsonl'], { cwd: dir })
    expect(installed.code).toBe(1)
    expect(installed.stderr).toMatch(/^skysift: broken\.agent\.js:4:\d+: SyntaxError: missing \) after argument list\n$/)
  })

  it('bad --options name the option once; the usage names --json', async () => {
    const r = await skysift(['agent', 'test', 'my-agent.agent.js', '--sandbox', '--replay', 'events.jsonl', '--options', '{"bonus":20}'], { cwd: dir })
    expect(r.code).toBe(1)
    expect(r.stderr).toBe('skysift: bad --options: bonus: Too big: expected number to be <=10\n')
    const usage = await skysift(['agent', 'test', 'my-agent.agent.js'], { cwd: dir })
    expect(usage.stderr).toContain('[--json]')
    expect((await skysift(['help'])).stdout).toMatch(/agent test .*\[--json\] \[--allow-strikes\]/)
  })

  it('histogram bounds are printed without floating-point noise', () => {
    const h = histogram([0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1], 10)
    expect(h.map((b) => b.from)).toEqual([0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    expect(h.map((b) => b.to)).toEqual([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1])
    expect(
      formatReport({
        agent: { id: 'a', version: '1', title: 'A', kind: 'builtin' },
        events: 1,
        posts: 11,
        kept: 11,
        dropped: 0,
        noOpinion: 0,
        histogram: h,
        top: [],
        costUsPerPost: 1,
        totalMs: 1,
        strikes: 0,
        lastError: null,
      }),
    ).not.toMatch(/\d{6,}/)
  })

  it('the files an author makes in a checkout are git-ignored', () => {
    const ignore = fs.readFileSync(path.join(ROOT, '.gitignore'), 'utf8').split('\n')
    for (const p of ['/*.agent.js', '/*.agent.test.mjs', '/events.jsonl']) expect(ignore).toContain(p)
  })
})
