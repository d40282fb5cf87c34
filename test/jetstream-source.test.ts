import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocketServer, type WebSocket } from 'ws'
import { WANTED_COLLECTIONS } from '../src/contracts/events.ts'
import { JetstreamSource } from '../src/ingest/jetstream-source.ts'
import type { SourceItem } from '../src/ingest/source.ts'
import { syntheticEvents } from '../src/ingest/synthetic.ts'
import { silentLogger } from '../src/logger.ts'
import { waitFor } from './support/resources.ts'

/** A local Jetstream look-alike: serves synthetic events after the requested cursor. */
async function fakeJetstream(lines: { timeUs: number; line: string }[], onConnect?: (ws: WebSocket, url: URL) => void) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise((r) => wss.once('listening', r))
  const urls: URL[] = []
  wss.on('connection', (ws, req) => {
    const url = new URL(req.url ?? '/', 'ws://x')
    urls.push(url)
    if (onConnect) return onConnect(ws, url)
    const cursor = Number(url.searchParams.get('cursor') ?? 0)
    for (const l of lines) if (l.timeUs >= cursor) ws.send(l.line)
  })
  const port = (wss.address() as AddressInfo).port
  return { url: `ws://127.0.0.1:${port}/subscribe`, urls, wss, close: () => new Promise((r) => wss.close(r)) }
}

const events = (n: number) => [...syntheticEvents({ count: n, seed: 3 })].map((e) => ({ timeUs: e.time_us, line: JSON.stringify(e) }))

describe('JetstreamSource over a real WebSocket', () => {
  const cleanups: (() => unknown)[] = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })

  it('asks for the collections it uses, resumes from a rewound cursor after a disconnect, and keeps order', async () => {
    const lines = events(400)
    let connections = 0
    const server = await fakeJetstream(lines, (ws, url) => {
      connections++
      const cursor = Number(url.searchParams.get('cursor') ?? 0)
      const todo = lines.filter((l) => l.timeUs >= cursor)
      // the first connection drops after 150 messages
      const n = connections === 1 ? 150 : todo.length
      for (const l of todo.slice(0, n)) ws.send(l.line)
      if (connections === 1) setTimeout(() => ws.terminate(), 50)
    })
    cleanups.push(server.close)
    const src = new JetstreamSource(server.url, silentLogger)
    const got: SourceItem[] = []
    const run = src.run((item) => void got.push(item), undefined)
    cleanups.push(() => src.stop().then(() => run))
    await waitFor(() => got.length > 0 && got[got.length - 1].cursor === lines[lines.length - 1].timeUs, 'all events after reconnect', 20_000)
    expect(server.urls[0].searchParams.getAll('wantedCollections')).toEqual(WANTED_COLLECTIONS)
    expect(WANTED_COLLECTIONS).toEqual(expect.arrayContaining(['app.bsky.feed.post', 'app.bsky.feed.like', 'app.bsky.feed.repost', 'app.bsky.graph.follow']))
    expect(server.urls[0].searchParams.has('cursor')).toBe(false)
    const cursors = got.map((g) => g.cursor as number)
    // resumed from the last cursor seen, rewound 3 s so nothing in flight is lost (the writer is idempotent)
    const lastBeforeDrop = cursors[cursors.findIndex((c, i) => i > 0 && c < cursors[i - 1]) - 1]
    expect(lastBeforeDrop).toBe(lines[149].timeUs)
    expect(Number(server.urls[1].searchParams.get('cursor'))).toBe(lastBeforeDrop - 3_000_000)
    expect(new Set(cursors)).toEqual(new Set(lines.map((l) => l.timeUs)))
    expect(got.filter((g) => 'rejected' in g)).toEqual([])
  })

  it('reports malformed messages as rejected and goes on', async () => {
    const good = events(5)
    const server = await fakeJetstream([], (ws) => {
      ws.send('{oops')
      for (const l of good) ws.send(l.line)
    })
    cleanups.push(server.close)
    const src = new JetstreamSource(server.url, silentLogger)
    const got: SourceItem[] = []
    const run = src.run((item) => void got.push(item), undefined)
    cleanups.push(() => src.stop().then(() => run))
    await waitFor(() => got.length === 6, 'six items')
    expect(got[0]).toMatchObject({ rejected: 'not JSON', payload: '{oops' })
    expect(got.slice(1).map((g) => g.cursor)).toEqual(good.map((l) => l.timeUs))
  })

  it('stops reading while the sink is slow (the socket is paused) and loses nothing', async () => {
    const lines = events(3000)
    const server = await fakeJetstream(lines)
    cleanups.push(server.close)
    const src = new JetstreamSource(server.url, silentLogger)
    let handled = 0
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const run = src.run(async () => {
      if (handled === 10) await gate
      handled++
    }, undefined)
    cleanups.push(() => src.stop().then(() => run))
    await new Promise((r) => setTimeout(r, 300))
    expect(handled).toBe(10)
    release()
    await waitFor(() => handled === lines.length, 'all events after release', 20_000)
  })
})
