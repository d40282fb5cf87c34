/**
 * Jetstream's compressed stream (`compress=true`: each message one zstd frame
 * made with a shared dictionary), decompressed with a dictionary file the
 * operator names (SKYSIFT_JETSTREAM_DICTIONARY). The dictionary here is made
 * by the test from sample events, and the frames are compressed with it.
 */
import fs from 'node:fs'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { zstdCompressSync } from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocketServer } from 'ws'
import { ConfigError, readConfig } from '../src/config.ts'
import { JetstreamSource } from '../src/ingest/jetstream-source.ts'
import type { SourceItem } from '../src/ingest/source.ts'
import { syntheticEvents } from '../src/ingest/synthetic.ts'
import { silentLogger } from '../src/logger.ts'
import { tempDir, waitFor } from './support/resources.ts'

/** A raw-content dictionary: sample messages end to end (zstd takes any bytes as a dictionary). */
const makeDictionary = (seed: number) => Buffer.from([...syntheticEvents({ count: 300, seed })].map((e) => JSON.stringify(e)).join('\n'))

describe('Jetstream with zstd compression and a dictionary', () => {
  const cleanups: (() => unknown)[] = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c()
  })

  it('asks for compressed messages, decompresses each with the dictionary, and rejects a frame it cannot read', async () => {
    const dictionary = makeDictionary(11)
    const lines = [...syntheticEvents({ count: 500, seed: 4 })].map((e) => JSON.stringify(e))
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
    await new Promise((r) => wss.once('listening', r))
    cleanups.push(() => new Promise((r) => wss.close(r)))
    const urls: URL[] = []
    let raw = 0
    let sent = 0
    wss.on('connection', (ws, req) => {
      urls.push(new URL(req.url ?? '/', 'ws://x'))
      lines.forEach((l, i) => {
        // one frame in the middle is not zstd at all
        const frame = i === 250 ? Buffer.from('not a zstd frame') : zstdCompressSync(Buffer.from(l), { dictionary })
        raw += Buffer.byteLength(l)
        sent += frame.length
        ws.send(frame)
      })
    })
    const src = new JetstreamSource(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/subscribe`, silentLogger, { dictionary })
    const got: SourceItem[] = []
    const run = src.run((item) => void got.push(item), undefined)
    cleanups.push(() => src.stop().then(() => run))
    await waitFor(() => got.length === lines.length, 'every message', 20_000)
    expect(urls[0].searchParams.get('compress')).toBe('true')
    const rejected = got.filter((g) => 'rejected' in g)
    expect(rejected).toHaveLength(1)
    expect((rejected[0] as { rejected: string }).rejected).toMatch(/^zstd: /)
    // every other message decoded as if it had come uncompressed
    const cursors = got.filter((g) => !('rejected' in g)).map((g) => g.cursor)
    expect(cursors).toEqual(lines.filter((_, i) => i !== 250).map((l) => (JSON.parse(l) as { time_us: number }).time_us))
    expect(got.filter((g) => 'event' in g && g.event).length).toBeGreaterThan(400)
    // the point of it: far fewer bytes on the wire
    expect(sent).toBeLessThan(raw / 2)
  })

  it('without a dictionary, asks for plain JSON', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
    await new Promise((r) => wss.once('listening', r))
    cleanups.push(() => new Promise((r) => wss.close(r)))
    const urls: URL[] = []
    wss.on('connection', (ws, req) => {
      urls.push(new URL(req.url ?? '/', 'ws://x'))
      ws.send(JSON.stringify([...syntheticEvents({ count: 1, seed: 1 })][0]))
    })
    const src = new JetstreamSource(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/subscribe`, silentLogger)
    const got: SourceItem[] = []
    const run = src.run((item) => void got.push(item), undefined)
    cleanups.push(() => src.stop().then(() => run))
    await waitFor(() => got.length === 1, 'the message', 10_000)
    expect(urls[0].searchParams.has('compress')).toBe(false)
  })

  it('SKYSIFT_JETSTREAM_DICTIONARY names a file that must exist', () => {
    const t = tempDir()
    cleanups.push(t.cleanup)
    const file = path.join(t.dir, 'zstd_dictionary')
    fs.writeFileSync(file, makeDictionary(1))
    expect(readConfig({ SKYSIFT_JETSTREAM_DICTIONARY: file }).jetstreamDictionary).toBe(file)
    expect(readConfig({}).jetstreamDictionary).toBeUndefined()
    expect(() => readConfig({ SKYSIFT_JETSTREAM_DICTIONARY: path.join(t.dir, 'missing') })).toThrow(ConfigError)
    expect(() => readConfig({ SKYSIFT_JETSTREAM_DICTIONARY: path.join(t.dir, 'missing') })).toThrow(/SKYSIFT_JETSTREAM_DICTIONARY: no such file/)
  })
})
