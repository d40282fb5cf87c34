/**
 * What the source is doing reaches the operator: the health check, `skysift
 * status` and /admin say whether the live source is connected or retrying
 * (attempt, next try, last error), and a finished replay is shown as the
 * running source and stops adding to the ingest lag.
 */
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import type { Hono } from 'hono'
import { afterEach, describe, expect, it } from 'vitest'
import type { Config } from '../src/config.ts'
import { AppContext } from '../src/context.ts'
import { silentLogger } from '../src/logger.ts'
import { ingestOf, startProcessReport } from '../src/status/report.ts'
import { statusCommand } from '../src/commands/status.ts'
import { DbStatusReader } from '../src/status/status.ts'
import { createServeApp, startIngest } from '../src/runtime.ts'
import { queuePrefix, tempDir, testConfig, waitFor } from './support/resources.ts'

const TOKEN = 'test-admin-token-0123456789'

/** A TCP port nothing listens on (taken, then freed). */
async function closedPort(): Promise<number> {
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const port = (s.address() as net.AddressInfo).port
  await new Promise((r) => s.close(r))
  return port
}

describe('the source state in health, status and /admin', () => {
  const cleanups: (() => unknown)[] = []
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c()
    cleanups.length = 0
  })

  async function setup(overrides: Partial<Config>) {
    const t = tempDir()
    const q = queuePrefix()
    cleanups.push(t.cleanup, q.cleanup)
    const config = testConfig({ dbPath: path.join(t.dir, 'skysift.db'), queuePrefix: q.prefix, adminToken: TOKEN, metricsToken: undefined, ...overrides })
    const ctx = new AppContext(config, silentLogger)
    cleanups.push(() => ctx.close())
    const served = createServeApp(ctx)
    cleanups.push(() => served.close())
    const ingest = startIngest(ctx)
    cleanups.push(() => ingest.stop())
    const report = startProcessReport(ctx, ['serve', 'ingest'], () => ingestOf(ctx), 200)
    cleanups.push(() => report.stop())
    return { ctx, config, app: served.app as Hono, ingest }
  }

  it('offline: health stays 200 but says not ingesting, and all three name the retrying source and its error', async () => {
    const port = await closedPort()
    const { app, config } = await setup({ source: { kind: 'jetstream', url: `ws://127.0.0.1:${port}/subscribe` } })
    const health = await waitFor(
      async () => {
        const body = (await (await app.request('/xrpc/_health')).json()) as { ingest?: { state: string; attempt: number } }
        return body.ingest?.state === 'retrying' && body.ingest.attempt >= 1 ? body : null
      },
      'the source to be retrying',
      20_000,
      100,
    )
    const res = await app.request('/xrpc/_health')
    expect(res.status).toBe(200)
    const body = (await res.json()) as Record<string, unknown> & {
      ingest: { source: string; attempt: number; nextTryInS: number | null; lastError: string | null }
    }
    expect(body).toMatchObject({ ok: true, serving: true, ingesting: false })
    expect(body.ingest.source).toBe(`jetstream:127.0.0.1:${port}`)
    expect(body.ingest.lastError).toMatch(/ECONNREFUSED/)
    expect(body.ingest.nextTryInS).toBeGreaterThanOrEqual(0)
    expect(health).toBeTruthy()

    // `skysift status` (reads SQLite and the process reports in Redis)
    const { text, status } = (await waitFor(
      async () => {
        const s = await statusCommand(config)
        return s.status.sourceState.state === 'retrying' ? s : null
      },
      'status to see the retrying source',
      10_000,
      200,
    ))!
    expect(text).toMatch(
      new RegExp(`Ingest  source jetstream:127\\.0\\.0\\.1:${port}: not connected, retrying \\(attempt \\d+, next try in [^)]+\\); last error: .*ECONNREFUSED`),
    )
    expect(status.sourceState.ingesting).toBe(false)

    const page = await (await app.request('/admin', { headers: { authorization: `Bearer ${TOKEN}` } })).text()
    expect(page).toMatch(/id="source-state">not connected, retrying \(attempt \d+/)
    expect(page).toContain('ECONNREFUSED')

    const metrics = await (await app.request('/metrics')).text()
    expect(metrics).toMatch(/^skysift_ingest_connected 0$/m)

    // a serving process without an ingest of its own reads the ingest's report from Redis
    const elsewhere = new AppContext(config, silentLogger)
    cleanups.push(() => elsewhere.close())
    const served = createServeApp(elsewhere)
    cleanups.push(() => served.close())
    const remote = (await (await served.app.request('/xrpc/_health')).json()) as { ingesting: boolean; ingest: { state: string; lastError: string } }
    expect(remote.ingesting).toBe(false)
    expect(remote.ingest.state).toBe('retrying')
    expect(remote.ingest.lastError).toMatch(/ECONNREFUSED/)
  })

  it('a replay: status shows the replay (not the configured source), finished, and its lag stops growing', async () => {
    const t = tempDir()
    cleanups.push(t.cleanup)
    const file = path.join(t.dir, 'events.jsonl')
    const t0 = (Date.now() - 60_000) * 1000
    const lines = Array.from({ length: 50 }, (_, i) =>
      JSON.stringify({
        did: 'did:plc:replayreplayreplayreplay',
        time_us: t0 + i * 1000,
        kind: 'commit',
        commit: {
          rev: `3k${i}`,
          operation: 'create',
          collection: 'app.bsky.feed.post',
          rkey: `3kreplay${String(i).padStart(5, '0')}`,
          cid: 'bafyreiaaaaaaaaaaaaaaaaaaaa',
          record: { $type: 'app.bsky.feed.post', text: `post ${i}`, createdAt: new Date(t0 / 1000 + i).toISOString() },
        },
      }),
    )
    fs.writeFileSync(file, `${lines.join('\n')}\n`)
    const { ctx, app, ingest } = await setup({ source: { kind: 'replay', path: file, pace: 'full' } })
    await ingest.done
    const health = (await (await app.request('/xrpc/_health')).json()) as { ingesting: boolean; ingest: { state: string; source: string } }
    expect(health.ingesting).toBe(false)
    expect(health.ingest).toMatchObject({ state: 'finished', source: `replay:${file}` })

    // `skysift status` from another shell, whose environment names the default Jetstream source
    const fromShell = testConfig({ dbPath: ctx.config.dbPath, queuePrefix: ctx.config.queuePrefix })
    expect(fromShell.source.kind).toBe('jetstream')
    const { text } = (await waitFor(
      async () => {
        const s = await statusCommand(fromShell)
        return s.status.sourceState.state === 'finished' ? s : null
      },
      'status to see the finished replay',
      10_000,
      200,
    ))!
    expect(text).toContain(`Ingest  source replay:${file}: replay finished`)

    const reader = new DbStatusReader(ctx.db.sqlite, ctx.feeds)
    const lag = reader.cursors()[0].lagS!
    expect(lag).toBeGreaterThan(50)
    // an hour later, the finished replay's lag is what it was, not an hour more
    expect(reader.cursors(Date.now() + 3_600_000)[0].lagS).toBeCloseTo(lag, 0)
    expect(reader.sample(Date.now() + 3_600_000).lagS).toBeCloseTo(lag, 0)
  })
})
