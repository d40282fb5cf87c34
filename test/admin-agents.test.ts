import fs from 'node:fs'
import path from 'node:path'
import type { Hono } from 'hono'
import { z } from 'zod'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Config } from '../src/config.ts'
import { AppContext } from '../src/context.ts'
import { silentLogger } from '../src/logger.ts'
import { agentSync, createServeApp } from '../src/runtime.ts'
import { defineAgent, SDK_API_VERSION, type AgentPost } from '../src/score/sdk.ts'
import { queuePrefix, tempDir, testConfig, waitFor } from './support/resources.ts'

const ADMIN = 'admin-token-0123456789abcdef'
const FIXTURES = path.join(import.meta.dirname, 'fixtures', 'agents')

/** An installed agent that fails on every call: each call is a strike. */
const flaky = defineAgent({
  id: 'flaky',
  version: '1.0.0',
  title: 'Flaky',
  description: 'fails every time',
  api: SDK_API_VERSION,
  options: z.object({}),
  needs: ['text'],
  scoreBatch() {
    throw new Error('boom')
  },
})

const post: AgentPost = {
  uri: 'at://did:plc:x/app.bsky.feed.post/1',
  author: 'did:plc:x',
  createdAt: 0,
  text: 'hi',
  langs: [],
  tags: [],
  labels: [],
  embed: null,
  quote: null,
  replyRoot: null,
  replyParent: null,
  likeCount: 0,
  repostCount: 0,
}

describe('admin API and catalog: one view of agents across processes, validated inputs (real SQLite, Redis)', () => {
  let config: Readonly<Config>
  let serving: AppContext
  let app: Hono
  const cleanups: (() => unknown)[] = []

  beforeAll(async () => {
    const t = tempDir()
    const q = queuePrefix()
    cleanups.push(t.cleanup, q.cleanup)
    config = testConfig({ dbPath: path.join(t.dir, 'skysift.db'), queuePrefix: q.prefix, serviceDid: 'did:web:feeds.test', adminToken: ADMIN })
    serving = new AppContext(config, silentLogger, [flaky])
    const served = createServeApp(serving)
    app = served.app
    cleanups.push(() => serving.close(), served.close)
  })
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c()
  })

  const call = async (method: 'GET' | 'POST', url: string, body?: string) => {
    const res = await app.request(url, { method, headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body })
    return { status: res.status, body: (await res.json()) as any }
  }
  const catalogStatus = async (id: string) => {
    const r = await call('GET', '/xrpc/app.skysift.agent.listAgents')
    return r.body.agents.find((a: { id: string }) => a.id === id) as { status: string; statusReason?: string }
  }
  const adminStatus = async (id: string) =>
    (await call('GET', '/admin/api/agents')).body.running.find((a: { id: string }) => a.id === id) as { status: string; reason: string | null }

  it('says "disabled" in the catalog and the admin API when another process (a worker) disabled the agent, and enabling reaches that process', async () => {
    // another process with the same agents, SQLite file and Redis: a refresh worker's view
    const worker = new AppContext(config, silentLogger, [flaky])
    const workerSync = agentSync(worker, 'store')
    cleanups.push(
      () => worker.close(),
      () => workerSync.stop(),
    )
    await workerSync.ready
    expect(await catalogStatus('flaky')).toMatchObject({ status: 'active' })

    const inst = worker.host.instance('flaky')
    for (let i = 0; i < 5; i++) worker.host.run(inst, [post], Date.now())
    expect(worker.host.isDisabled('flaky')).toBeTruthy()
    expect(serving.host.isDisabled('flaky')).toBeFalsy()

    const seen = await waitFor(
      async () => {
        const s = await catalogStatus('flaky')
        return s.status === 'disabled' ? s : null
      },
      'the catalog to say the agent is disabled',
      20_000,
      100,
    )
    expect(seen?.statusReason).toMatch(/5 strikes in 10 min; last: failed: boom/)
    expect(await adminStatus('flaky')).toMatchObject({ status: 'disabled', reason: expect.stringMatching(/strikes/) })
    // disabled here too: the serving process no longer runs it either
    expect(serving.host.run(serving.host.instance('flaky'), [post], Date.now())).toEqual([null])
    expect(serving.host.stats.get('flaky')?.calls ?? 0).toBe(0)

    const en = await call('POST', '/admin/api/agents/flaky/enable')
    expect(en.status).toBe(200)
    expect(await catalogStatus('flaky')).toMatchObject({ status: 'active' })
    await waitFor(() => !worker.host.isDisabled('flaky'), 'the worker to hear the agent is enabled again', 20_000, 100)

    // a process started later learns the agent's state too
    for (let i = 0; i < 5; i++) worker.host.run(inst, [post], Date.now())
    await waitFor(async () => (await catalogStatus('flaky')).status === 'disabled', 'the second disable to reach the catalog', 20_000, 100)
    const late = new AppContext(config, silentLogger, [flaky])
    const lateSync = agentSync(late, 'store')
    cleanups.push(
      () => late.close(),
      () => lateSync.stop(),
    )
    await lateSync.ready
    expect(late.host.isDisabled('flaky')?.reason).toMatch(/strikes/)
  })

  it('answers every admin route with a body 400 and a message naming the field for bad input, and takes good input', async () => {
    const source = fs.readFileSync(path.join(FIXTURES, 'good-agent.js'), 'utf8')
    const rec = await agentSync(serving, 'store').store!.submitSandboxed(source, 'did:plc:erinerinerinerinerinerin')
    const bad: [string, string, RegExp][] = [
      [`/admin/api/agents/${rec.id}/approve`, '{"note":{}}', /^note: /],
      [`/admin/api/agents/${rec.id}/approve`, '{"note":1}', /^note: /],
      [`/admin/api/agents/${rec.id}/approve`, `{"note":"${'x'.repeat(2001)}"}`, /^note: /],
      [`/admin/api/agents/${rec.id}/approve`, '{"notes":"typo"}', /notes/],
      [`/admin/api/agents/${rec.id}/approve`, '[]', /^body: /],
      [`/admin/api/agents/${rec.id}/approve`, 'null', /^body: /],
      [`/admin/api/agents/${rec.id}/approve`, '{"note":', /not JSON/],
      [`/admin/api/agents/${rec.id}/reject`, '{"note":{}}', /^note: /],
      [`/admin/api/agents/${rec.id}/reject`, '"no"', /^body: /],
      ['/admin/api/agents/remote', '{}', /^url: /],
      ['/admin/api/agents/remote', '{"url":{}}', /^url: /],
      ['/admin/api/agents/remote', '{"url":"ftp://agents.example/x"}', /^url: /],
      ['/admin/api/agents/remote', '{"url":"https://agents.example","deadlineMs":"soon"}', /^deadlineMs: /],
      ['/admin/api/agents/remote', '{"url":"https://agents.example","deadlineMs":-1}', /^deadlineMs: /],
      ['/admin/api/agents/remote', '{"url":"https://agents.example","rawDids":"yes"}', /^rawDids: /],
      ['/admin/api/agents/remote', 'url=https://agents.example', /not JSON/],
    ]
    for (const [url, body, message] of bad) {
      const r = await call('POST', url, body)
      expect(r.status, `${url} ${body.slice(0, 40)}`).toBe(400)
      expect(r.body.error, `${url} ${body.slice(0, 40)}`).toBe('InvalidRequest')
      expect(r.body.message, `${url} ${body.slice(0, 40)}`).toMatch(message)
    }
    const big = await call('POST', `/admin/api/agents/${rec.id}/approve`, JSON.stringify({ note: 'x'.repeat(70_000) }))
    expect(big.status).toBe(413)
    // nothing bad was kept: the agent still waits for review
    expect((await call('GET', '/admin/api/agents')).body.agents.find((a: { id: string }) => a.id === rec.id)).toMatchObject({ status: 'pending', note: null })

    // good input, with and without a body
    const ok = await call('POST', `/admin/api/agents/${rec.id}/approve`, '{"note":"reviewed"}')
    expect(ok.status, JSON.stringify(ok.body)).toBe(200)
    expect(ok.body).toMatchObject({ status: 'approved', note: 'reviewed' })
    expect((await call('POST', `/admin/api/agents/${rec.id}/reject`)).body).toMatchObject({ status: 'rejected', note: null })
    expect((await call('POST', '/admin/api/agents/keyword/enable', '{"anything":{}}')).status).toBe(200)
    expect((await call('POST', '/admin/api/agents/nope/approve', '{}')).status).toBe(404)
  })
})
