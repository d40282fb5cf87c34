import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { blobCid, formatPublishResult, publishCommand, readAvatar, sniffImageType, type PublishCommandIo } from './publish.ts'

const PNG_1X1 = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64')
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'skysift-publish-unit-'))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

describe('images', () => {
  it('tells PNG and JPEG by their magic number', () => {
    expect(sniffImageType(PNG_1X1)).toBe('image/png')
    expect(sniffImageType(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10]))).toBe('image/jpeg')
    expect(sniffImageType(Buffer.from('GIF89a'))).toBeNull()
    expect(sniffImageType(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))).toBeNull()
    expect(sniffImageType(Buffer.alloc(0))).toBeNull()
  })

  it('computes blob CIDs the way a PDS does (CIDv1, raw, sha2-256, base32)', () => {
    // the well-known CID of the empty raw block
    expect(blobCid(new Uint8Array())).toBe('bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku')
    expect(blobCid(PNG_1X1)).toMatch(/^bafkrei[a-z2-7]{52}$/)
  })

  it('reads an avatar or says why not', () => {
    const png = path.join(tmp, 'a.png')
    fs.writeFileSync(png, PNG_1X1)
    expect(readAvatar(png)).toMatchObject({ mimeType: 'image/png', cid: blobCid(PNG_1X1) })
    const gif = path.join(tmp, 'a.gif')
    fs.writeFileSync(gif, 'GIF89a......')
    expect(() => readAvatar(gif)).toThrow(`avatar ${gif}: not a PNG or JPEG image`)
    const big = path.join(tmp, 'big.jpg')
    fs.writeFileSync(big, Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(1_000_000)]))
    expect(() => readAvatar(big)).toThrow('1,000,003 bytes; the limit is 1,000,000')
    expect(() => readAvatar(path.join(tmp, 'missing.png'))).toThrow('no such file')
  })
})

describe('output', () => {
  it('prints one line per feed, and the record on a dry run', () => {
    const base = { rkey: 'fresh', uri: 'at://did:plc:abc/app.bsky.feed.generator/fresh', record: { displayName: 'Fresh' }, cid: 'bafy', dryRun: false }
    expect(formatPublishResult({ ...base, action: 'created' })).toBe('created   at://did:plc:abc/app.bsky.feed.generator/fresh')
    expect(formatPublishResult({ ...base, action: 'unchanged', dryRun: true })).toBe('unchanged at://did:plc:abc/app.bsky.feed.generator/fresh')
    expect(formatPublishResult({ ...base, action: 'updated', dryRun: true })).toBe(
      'would update at://did:plc:abc/app.bsky.feed.generator/fresh\n  {\n    "displayName": "Fresh"\n  }',
    )
  })
})

describe('publishCommand (before logging in)', () => {
  const feeds = [{ rkey: 'fresh', displayName: 'Fresh', description: 'new posts' }]
  const input = { serviceDid: 'did:web:feeds.example.org', publisherDid: undefined, feeds, baseDir: tmp }
  const io = (env: Record<string, string>, prompt?: PublishCommandIo['prompt']): PublishCommandIo & { lines: string[] } => {
    const lines: string[] = []
    return { env, out: (s) => void lines.push(s), err: (s) => void lines.push(s), prompt, lines }
  }
  const env = { SKYSIFT_SERVICE_DID: 'did:web:feeds.example.org' }

  it('checks its arguments', async () => {
    await expect(publishCommand('unpublish', [], input, io(env))).rejects.toThrow('usage: skysift unpublish <rkey>')
    await expect(publishCommand('publish', ['x'], input, io(env))).rejects.toThrow('usage: skysift publish')
  })

  it('wants an explicit service DID', async () => {
    await expect(publishCommand('publish', [], { ...input, serviceDid: 'did:web:localhost%3A3000' }, io({}))).rejects.toThrow(
      'set SKYSIFT_PUBLIC_URL (or SKYSIFT_SERVICE_DID)',
    )
  })

  it('rejects bad feeds before asking for credentials', async () => {
    let asked = 0
    const p = io(env, async () => {
      asked++
      return 'x'
    })
    await expect(publishCommand('publish', [], { ...input, feeds: [{ ...feeds[0]!, displayName: 'a'.repeat(25) }] }, p)).rejects.toThrow(
      'has 25 graphemes; the limit is 24',
    )
    await expect(publishCommand('unpublish', ['other'], input, p)).rejects.toThrow('feed other is not in the feeds file (configured: fresh); use --force')
    expect(asked).toBe(0)
  })

  it('needs credentials from the environment or a terminal', async () => {
    await expect(publishCommand('publish', [], input, io(env))).rejects.toThrow('set SKYSIFT_PUBLISHER_HANDLE and SKYSIFT_PUBLISHER_PASSWORD')
  })

  it('asks for what is missing, the password hidden, then logs in', async () => {
    const asked: [string, boolean][] = []
    const p = io(env, async (q, hidden) => {
      asked.push([q, hidden])
      return hidden ? 'secret' : '@alice.example.com'
    })
    await expect(publishCommand('publish', [], { ...input, service: 'http://127.0.0.1:1' }, p)).rejects.toThrow(
      /^login as alice\.example\.com at http:\/\/127\.0\.0\.1:1 failed/,
    )
    expect(asked).toEqual([
      ['Publisher handle: ', false],
      ['App password for alice.example.com: ', true],
    ])
  })

  it('rejects a service that is not a URL', async () => {
    await expect(publishCommand('publish', [], { ...input, service: 'bsky.social', publisherHandle: 'a', publisherPassword: 'b' }, io(env))).rejects.toThrow(
      'publisher service "bsky.social" is not an http(s) URL',
    )
  })
})
