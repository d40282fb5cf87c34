import type { AddressInfo } from 'node:net'
import { serve, type ServerType } from '@hono/node-server'
import { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { silentLogger } from '../src/logger.ts'
import { BUILTIN_AGENTS } from '../src/score/agents/index.ts'
import { AgentHost } from '../src/score/host.ts'
import { effective, LabelerLabels } from '../src/score/labelers.ts'
import { DROP } from '../src/score/sdk.ts'
import { createIdResolver } from '../src/serve/auth.ts'
import { post } from './support/builders.ts'

describe('labels from labelers a reader names (a labeler service on a real port)', () => {
  let server: ServerType
  let labeler: string
  let queries = 0
  const spam = post({ text: 'buy now' })
  const clean = post({ text: 'hello' })
  const retracted = post({ text: 'was labelled by mistake' })
  const expired = post({ text: 'old label' })

  beforeAll(async () => {
    const app = new Hono()
    app.get('/.well-known/did.json', (c) =>
      c.json({
        id: labeler,
        service: [{ id: '#atproto_labeler', type: 'AtprotoLabeler', serviceEndpoint: `http://localhost:${(server.address() as AddressInfo).port}` }],
      }),
    )
    app.get('/xrpc/com.atproto.label.queryLabels', (c) => {
      queries++
      const uris = c.req.queries('uriPatterns') ?? []
      const all = [
        { src: labeler, uri: spam.uri, val: 'spam', cts: '2026-01-01T00:00:00Z' },
        { src: labeler, uri: retracted.uri, val: 'spam', cts: '2026-01-01T00:00:00Z' },
        { src: labeler, uri: retracted.uri, val: 'spam', neg: true, cts: '2026-01-02T00:00:00Z' },
        { src: labeler, uri: expired.uri, val: 'spam', cts: '2026-01-01T00:00:00Z', exp: '2026-01-03T00:00:00Z' },
        { src: 'did:web:someone-else', uri: clean.uri, val: 'spam', cts: '2026-01-01T00:00:00Z' },
      ]
      return c.json({ labels: all.filter((l) => uris.includes(l.uri)) })
    })
    server = await new Promise((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s))
    })
    labeler = `did:web:localhost%3A${(server.address() as AddressInfo).port}`
  })
  afterAll(() => new Promise<void>((r) => server.close(() => r())))

  it('drops posts a named labeler labelled, once its labels are fetched; negated, expired and foreign labels do not count', async () => {
    const labels = new LabelerLabels(createIdResolver('http://127.0.0.1:1', true), silentLogger, { allowPrivateNetwork: true })
    const host = new AgentHost(BUILTIN_AGENTS, silentLogger)
    host.attachLabels(labels)
    const inst = host.instance('labels', { drop: ['spam'], labelers: [labeler] })
    expect(inst.dynamic).toBe(true) // labels arrive after a post is seen: scored at rank time
    expect(host.instance('labels', { drop: ['spam'] }).dynamic).toBe(false)
    const posts = [spam, clean, retracted, expired]
    // the first ranking cannot wait on the network: it asks in the background
    expect(host.run(inst, posts, Date.parse('2026-06-01T00:00:00Z'))).toEqual([0, 0, 0, 0])
    await labels.idle()
    expect(queries).toBe(1)
    expect(host.run(inst, posts, Date.parse('2026-06-01T00:00:00Z'))).toEqual([DROP, 0, 0, 0])
    expect(queries).toBe(1) // cached
    labels.close()
  })

  it('fetches from at most maxLabelers labelers at once; the one past the cap is not contacted', async () => {
    const labels = new LabelerLabels(createIdResolver('http://127.0.0.1:1', true), silentLogger, { allowPrivateNetwork: true, maxLabelers: 1 })
    const before = queries
    labels.lookup([labeler], [spam.uri, clean.uri])
    labels.lookup(['did:web:second-labeler.invalid'], [spam.uri])
    await labels.idle()
    expect(queries - before).toBe(1)
    expect(labels.stats()).toMatchObject({
      active: 1,
      labelers: { [labeler]: { requests: 1, failures: 0 }, 'did:web:second-labeler.invalid': { requests: 0, refused: 1 } },
    })
    expect(labels.lookup([labeler], [spam.uri]).get(spam.uri)).toEqual(['spam'])
    labels.close()
  })

  it('refuses a labeler option that is not a DID', () => {
    const host = new AgentHost(BUILTIN_AGENTS, silentLogger)
    expect(() => host.instance('labels', { labelers: ['https://evil.example'] })).toThrow(/options\.labelers\.0/)
  })

  it('takes the latest label per value', () => {
    const l = (val: string, cts: string, extra: object = {}) => ({ src: 's', uri: 'u', val, cts, ...extra })
    expect(effective([l('a', '2026-01-01T00:00:00Z'), l('a', '2026-01-02T00:00:00Z', { neg: true }), l('b', '2026-01-01T00:00:00Z')], 0)).toEqual(['b'])
    expect(effective([l('a', '2026-01-02T00:00:00Z', { neg: true }), l('a', '2026-01-03T00:00:00Z')], 0)).toEqual(['a'])
  })
})
