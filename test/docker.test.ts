/**
 * What can be checked of the Docker image without a Docker engine: the
 * Dockerfile's stages and instructions, that everything the app reads at
 * run time is copied into the image, that every package the app imports is
 * a production dependency (the image installs with --omit=dev), and that the
 * image's HEALTHCHECK command works against a real server. The full build
 * steps run as plain shell in scripts/docker-check.sh (on demand).
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import { builtinModules } from 'node:module'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { serve } from '@hono/node-server'
import { describe, expect, it } from 'vitest'
import { AppContext } from '../src/context.ts'
import { silentLogger } from '../src/logger.ts'
import { createServeApp } from '../src/runtime.ts'
import { queuePrefix, tempDir, testConfig } from './support/resources.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const read = (f: string) => fs.readFileSync(path.join(ROOT, f), 'utf8')

interface Instruction {
  op: string
  args: string
}
interface Stage {
  from: string
  name: string | null
  ins: Instruction[]
}

/** Dockerfile instructions by stage (line continuations joined, comments dropped). */
function parseDockerfile(text: string): Stage[] {
  const logical = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
  const stages: Stage[] = []
  for (const line of logical) {
    const m = /^([A-Z]+)\s+(.*)$/.exec(line)
    if (!m) throw new Error(`cannot parse Dockerfile line: ${line}`)
    const [, op, args] = m
    if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)!
      stages.push({ from: f[1], name: f[2] ?? null, ins: [] })
    } else {
      if (!stages.length) throw new Error(`${op} before FROM`)
      stages[stages.length - 1].ins.push({ op, args: args.replace(/\s+/g, ' ') })
    }
  }
  return stages
}

const stages = parseDockerfile(read('Dockerfile'))
const [build, runtime] = stages
const all = (s: Stage, op: string) => s.ins.filter((i) => i.op === op).map((i) => i.args)

/** Top-level entries of the repo that the build stage copies into /app. */
function copiedTopLevel(): Set<string> {
  const out = new Set<string>()
  for (const args of all(build, 'COPY')) {
    const parts = args.split(' ').filter((p) => !p.startsWith('--'))
    for (const src of parts.slice(0, -1)) out.add(src.replace(/^\.\//, '').split('/')[0])
  }
  return out
}

/** Non-test TypeScript sources that run in the image. */
function runtimeSources(): string[] {
  const out: string[] = []
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = path.join(dir, e.name)
      if (e.isDirectory()) walk(rel)
      else if (/\.(ts|js)$/.test(e.name) && !/\.test\.ts$/.test(e.name) && !/\.d\.ts$/.test(e.name)) out.push(rel)
    }
  }
  for (const d of ['src', 'workers', 'bin']) walk(d)
  return out
}

describe('Dockerfile', () => {
  it('builds in two stages on Node 24 with the tools for the native SQLite addon', () => {
    expect(stages.length).toBe(2)
    expect(build.from).toMatch(/^node:24(-|$)/)
    expect(build.name).toBe('build')
    expect(runtime.from).toMatch(/^node:24(-|$)/)
    const runs = all(build, 'RUN').join(' && ')
    for (const pkg of ['python3', 'make', 'g++']) expect(runs).toContain(pkg)
    expect(all(build, 'ENV').join(' ')).toMatch(/npm_config_nodedir=\/usr\/local/)
    expect(runs).toMatch(/npm ci --omit=dev/)
    expect(runs).toMatch(/better-sqlite3 && npx --yes node-gyp rebuild/)
    // the native build happens after the install and before the sources: source edits do not rebuild SQLite
    const order = build.ins.map((i) => `${i.op} ${i.args}`)
    const install = order.findIndex((l) => l.includes('npm ci'))
    expect(order.findIndex((l) => l.startsWith('COPY package.json'))).toBeLessThan(install)
    expect(order.findIndex((l) => l.startsWith('COPY src'))).toBeGreaterThan(install)
  })

  it('copies everything the app reads at run time', () => {
    const copied = copiedTopLevel()
    for (const f of ['package.json', 'package-lock.json', 'src', 'workers', 'bin', 'drizzle', 'lexicons', 'feeds.example.json']) expect(copied, f).toContain(f)
    const missing: string[] = []
    for (const file of runtimeSources()) {
      const text = fs.readFileSync(path.join(ROOT, file), 'utf8')
      const refs = [
        ...[...text.matchAll(/new URL\(\s*'(\.{1,2}\/[^']*)'\s*,\s*import\.meta\.url/g)].map((m) => m[1]),
        ...[...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]),
      ]
      for (const ref of refs) {
        if (ref.includes('${')) continue // a path inside a template (scaffolded code), not an import
        const abs = path.resolve(ROOT, path.dirname(file), ref)
        const top = path.relative(ROOT, abs).split(path.sep)[0]
        if (!copied.has(top)) missing.push(`${file} → ${ref}`)
        else if (!fs.existsSync(abs)) missing.push(`${file} → ${ref} (does not exist)`)
      }
    }
    expect(missing).toEqual([])
    // what .dockerignore keeps out must not be what the app needs
    const ignore = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
    for (const must of ['node_modules', 'data', '.git']) expect(ignore).toContain(must)
    for (const need of copied) expect(ignore, need).not.toContain(need)
  })

  it('imports at run time only production dependencies (the image installs with --omit=dev)', () => {
    const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> }
    const builtins = new Set(builtinModules)
    const wrong: string[] = []
    for (const file of runtimeSources()) {
      const text = fs.readFileSync(path.join(ROOT, file), 'utf8')
      // value imports only: `import type` is erased before Node runs the file
      const specs = [
        ...[...text.matchAll(/^import\s+(?!type\s)[^;]*?from\s+'([^'.][^']*)'/gms)].map((m) => m[1]),
        ...[...text.matchAll(/^import\s+'([^'.][^']*)'/gm)].map((m) => m[1]),
        ...[...text.matchAll(/await import\(\s*'([^'.][^']*)'\s*\)/g)].map((m) => m[1]),
      ]
      for (const spec of specs) {
        if (spec.startsWith('node:') || builtins.has(spec)) continue
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]
        if (!pkg.dependencies[name]) wrong.push(`${file}: ${spec}${pkg.devDependencies[name] ? ' (a devDependency)' : ' (not a dependency)'}`)
      }
    }
    expect(wrong).toEqual([])
  })

  it('runs as a non-root user with the database on a volume, stops on SIGTERM and checks its health', () => {
    const copyFrom = all(runtime, 'COPY')
    expect(copyFrom.some((c) => c.startsWith('--from=build /app'))).toBe(true)
    const user = all(runtime, 'USER')
    expect(user.length).toBe(1)
    expect(user[0]).not.toMatch(/^(root|0)(:|$)/)
    expect(all(runtime, 'VOLUME').join(' ')).toContain('/data')
    const env = all(runtime, 'ENV').join(' ')
    expect(env).toMatch(/SKYSIFT_DB_PATH=\/data\//)
    expect(env).toMatch(/NODE_ENV=production/)
    const port = /SKYSIFT_PORT=(\d+)/.exec(env)?.[1]
    expect(all(runtime, 'EXPOSE')).toEqual([port])
    expect(all(runtime, 'STOPSIGNAL')).toEqual(['SIGTERM'])
    expect(all(runtime, 'HEALTHCHECK')[0]).toContain('/xrpc/_health')
    expect(all(runtime, 'CMD')).toEqual(['["node", "--max-semi-space-size=16", "src/cli.ts", "start"]'])
    expect(all(runtime, 'WORKDIR')).toEqual(['/app'])
  })

  it('has a compose file that runs it with Redis, an init process and the data volume', () => {
    const compose = read('compose.yaml')
    expect(compose).toMatch(/^\s+redis:\s*$/m)
    expect(compose).toMatch(/image: redis:\d/)
    expect(compose).toMatch(/REDIS_URL: redis:\/\/redis:6379/)
    expect(compose).toMatch(/SKYSIFT_START_REDIS: never/)
    expect(compose).toMatch(/depends_on:/)
    expect(compose).toMatch(/init: true/)
    expect(compose).toMatch(/:\/data"?\]?\s*$/m)
  })

  it("the image's HEALTHCHECK command passes against a real server and fails when nothing answers", async () => {
    const cmd = all(runtime, 'HEALTHCHECK')[0]
    const script = /CMD node -e "(.*)"$/.exec(cmd)?.[1]
    expect(script).toBeTruthy()
    const t = tempDir()
    const q = queuePrefix()
    const ctx = new AppContext(testConfig({ dbPath: path.join(t.dir, 'h.db'), queuePrefix: q.prefix }), silentLogger)
    const { app, close } = createServeApp(ctx)
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' })
    await new Promise((r) => server.once('listening', r))
    const port = (server.address() as AddressInfo).port
    const run = promisify(execFile)
    try {
      await expect(run(process.execPath, ['-e', script!], { env: { ...process.env, SKYSIFT_PORT: String(port) } })).resolves.toBeDefined()
      await new Promise<void>((r) => server.close(() => r()))
      await expect(run(process.execPath, ['-e', script!], { env: { ...process.env, SKYSIFT_PORT: String(port) } })).rejects.toMatchObject({ code: 1 })
    } finally {
      if (server.listening) server.close()
      await close()
      await ctx.close()
      await q.cleanup()
      t.cleanup()
    }
  })

  it('has the on-demand shell check that replays these steps without Docker', () => {
    const script = read('scripts/docker-check.sh')
    expect(fs.statSync(path.join(ROOT, 'scripts/docker-check.sh')).mode & 0o111).not.toBe(0)
    for (const step of ['npm ci --omit=dev', 'node-gyp rebuild', 'src/cli.ts help', 'HEALTHCHECK', 'kill -TERM']) expect(script).toContain(step)
  })
})
