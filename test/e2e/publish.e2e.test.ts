/**
 * `skysift publish` / `unpublish` against a real PDS and AppView
 * (@atproto/dev-env): the feed generator records are written with
 * putRecord, read back with getRecord, and shown by the AppView.
 *
 * No Skysift server runs here; a stub serves the service's did:web document
 * (the AppView's getFeedGenerator resolves it and wants a BskyFeedGenerator
 * service entry).
 *
 * Run: npx vitest run test/e2e/publish.e2e.test.ts
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { BlobRef, XRPCError, lexToJson } from '@atproto/api'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { EXAMPLE_FEEDS_FILE } from '../../src/config.ts'
import { loadFeeds, type Feed } from '../../src/feeds.ts'
import { silentLogger } from '../../src/logger.ts'
import { blobCid, GENERATOR_COLLECTION, publishFeeds, unpublishFeed, type PublishResult } from '../../src/commands/publish.ts'
import { BUILTIN_AGENTS } from '../../src/score/agents/index.ts'
import { AgentHost } from '../../src/score/host.ts'
import { type LocalHttpServer, type LocalNetwork, type LocalUser, feedGenDidDoc, listenLocal, startLocalNetwork } from './support/network.ts'

const STEP = 60_000
const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url))
/** a valid 1×1 RGBA PNG (signature, IHDR, IDAT, IEND) */
const PNG_1X1 = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64')

let net: LocalNetwork
let pub: LocalUser
let other: LocalUser
let stub: LocalHttpServer
let serviceDid: string
let feeds: Feed[]
let tmp: string
const firstCreatedAt = new Map<string, string>()

const byRkey = (rs: PublishResult[]): Record<string, PublishResult> => Object.fromEntries(rs.map((r) => [r.rkey, r]))

async function getRecord(rkey: string): Promise<{ cid: string; value: Record<string, unknown> }> {
  const res = await pub.agent.com.atproto.repo.getRecord({ repo: pub.did, collection: GENERATOR_COLLECTION, rkey })
  return { cid: res.data.cid!, value: res.data.value as Record<string, unknown> }
}

async function repoRev(): Promise<string> {
  return (await pub.agent.com.atproto.sync.getLatestCommit({ did: pub.did })).data.rev
}

async function generatorView(rkey: string) {
  const res = await net.appviewAgentFor(pub).app.bsky.feed.getFeedGenerator({ feed: `at://${pub.did}/${GENERATOR_COLLECTION}/${rkey}` })
  return res.data
}

/** runs `node src/cli.ts …` in an empty folder (no .env) with only the env given plus PATH/HOME */
function runCli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { cwd: tmp, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', SKYSIFT_FEEDS_FILE: EXAMPLE_FEEDS_FILE, ...env }, timeout: STEP },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    )
  })
}

beforeAll(async () => {
  net = await startLocalNetwork()
  pub = await net.createUser('publisher')
  other = await net.createUser('someone')
  stub = await listenLocal(async (req) => {
    if (new URL(req.url).pathname === '/.well-known/did.json') return Response.json(feedGenDidDoc(stub.did, stub.url))
    return new Response('not found', { status: 404 })
  })
  serviceDid = stub.did
  feeds = loadFeeds(EXAMPLE_FEEDS_FILE, pub.did, new AgentHost(BUILTIN_AGENTS, silentLogger))
  tmp = await mkdtemp(path.join(os.tmpdir(), 'skysift-publish-'))
})

afterAll(async () => {
  await stub?.close()
  await net?.close()
  if (tmp) await rm(tmp, { recursive: true, force: true })
})

describe('publish', () => {
  it('creates a record for each feed, with every field', { timeout: STEP }, async () => {
    expect(feeds.map((f) => f.rkey)).toEqual(['fresh', 'science'])
    const before = Date.now()
    const results = byRkey(await publishFeeds(pub.agent, feeds, serviceDid, { publisherDid: pub.did }))
    for (const feed of feeds) {
      const r = results[feed.rkey]!
      expect(r.action).toBe('created')
      expect(r.uri).toBe(`at://${pub.did}/app.bsky.feed.generator/${feed.rkey}`)
      expect(r.uri).toBe(feed.uri)
      const got = await getRecord(feed.rkey)
      expect(r.cid).toBe(got.cid)
      const { createdAt, ...rest } = got.value
      expect(rest).toEqual({
        $type: 'app.bsky.feed.generator',
        did: serviceDid,
        displayName: feed.displayName,
        description: feed.description,
        acceptsInteractions: true,
      })
      expect(typeof createdAt).toBe('string')
      expect(Date.parse(createdAt as string)).toBeGreaterThanOrEqual(before - 1000)
      expect(Date.parse(createdAt as string)).toBeLessThanOrEqual(Date.now() + 1000)
      firstCreatedAt.set(feed.rkey, createdAt as string)
    }
  })

  it('shows up in the AppView', { timeout: STEP }, async () => {
    await net.processAll()
    for (const feed of feeds) {
      const { view } = await generatorView(feed.rkey)
      expect(view.uri).toBe(feed.uri)
      expect(view.did).toBe(serviceDid)
      expect(view.creator.did).toBe(pub.did)
      expect(view.displayName).toBe(feed.displayName)
      expect(view.description).toBe(feed.description)
      expect(view.acceptsInteractions).toBe(true)
      expect(view.avatar).toBeUndefined()
    }
    const { data } = await net.appviewAgentFor(pub).app.bsky.feed.getActorFeeds({ actor: pub.did })
    expect(data.feeds.map((f) => f.displayName).sort()).toEqual(feeds.map((f) => f.displayName).sort())
  })

  it('leaves identical records alone', { timeout: STEP }, async () => {
    const rev = await repoRev()
    const cids = [(await getRecord('fresh')).cid, (await getRecord('science')).cid]
    const results = await publishFeeds(pub.agent, feeds, serviceDid)
    expect(results.map((r) => r.action)).toEqual(['unchanged', 'unchanged'])
    expect(results.map((r) => r.cid)).toEqual(cids)
    expect(await repoRev()).toBe(rev)
  })

  it('updates a changed record and keeps its createdAt', { timeout: STEP }, async () => {
    const changed = feeds.map((f) => (f.rkey === 'science' ? { ...f, description: 'Science, space and research, ranked your way.' } : f))
    const oldCid = (await getRecord('science')).cid
    const results = byRkey(await publishFeeds(pub.agent, changed, serviceDid))
    expect(results.fresh!.action).toBe('unchanged')
    expect(results.science!.action).toBe('updated')
    const got = await getRecord('science')
    expect(got.cid).not.toBe(oldCid)
    expect(got.cid).toBe(results.science!.cid)
    expect(got.value.description).toBe('Science, space and research, ranked your way.')
    expect(got.value.createdAt).toBe(firstCreatedAt.get('science'))
    await net.processAll()
    expect((await generatorView('science')).view.description).toBe('Science, space and research, ranked your way.')
    // and back
    expect((await publishFeeds(pub.agent, feeds, serviceDid)).map((r) => r.action)).toEqual(['unchanged', 'updated'])
    expect((await getRecord('science')).value.createdAt).toBe(firstCreatedAt.get('science'))
  })

  it('writes contentMode when set', { timeout: STEP }, async () => {
    const video = feeds.map((f) => (f.rkey === 'fresh' ? { ...f, contentMode: 'app.bsky.feed.defs#contentModeVideo' as const } : f))
    expect((await publishFeeds(pub.agent, video, serviceDid)).map((r) => r.action)).toEqual(['updated', 'unchanged'])
    const got = await getRecord('fresh')
    expect(got.value.contentMode).toBe('app.bsky.feed.defs#contentModeVideo')
    expect(got.value.createdAt).toBe(firstCreatedAt.get('fresh'))
    await net.processAll()
    expect((await generatorView('fresh')).view.contentMode).toBe('app.bsky.feed.defs#contentModeVideo')
    expect((await publishFeeds(pub.agent, video, serviceDid)).map((r) => r.action)).toEqual(['unchanged', 'unchanged'])
  })

  it('uploads the avatar as a blob', { timeout: STEP }, async () => {
    await writeFile(path.join(tmp, 'avatar.png'), PNG_1X1)
    const withAvatar = feeds.map((f) => (f.rkey === 'fresh' ? { ...f, avatar: 'avatar.png' } : f))
    const results = byRkey(await publishFeeds(pub.agent, withAvatar, serviceDid, { baseDir: tmp }))
    expect(results.fresh!.action).toBe('updated')
    const cid = blobCid(PNG_1X1)
    const expected = { $type: 'blob', ref: { $link: cid }, mimeType: 'image/png', size: PNG_1X1.length }
    expect(results.fresh!.record.avatar).toEqual(expected)
    const got = await getRecord('fresh')
    expect(got.value.avatar).toBeInstanceOf(BlobRef)
    expect(lexToJson(got.value.avatar as never)).toEqual(expected)
    expect(got.value.createdAt).toBe(firstCreatedAt.get('fresh'))
    // the PDS has the bytes
    const blob = await pub.agent.com.atproto.sync.getBlob({ did: pub.did, cid })
    expect(Buffer.from(blob.data)).toEqual(PNG_1X1)
    await net.processAll()
    const { view } = await generatorView('fresh')
    expect(view.avatar).toMatch(new RegExp(`^https?://.+${cid}`))
    // same bytes again: nothing to do
    expect((await publishFeeds(pub.agent, withAvatar, serviceDid, { baseDir: tmp })).map((r) => r.action)).toEqual(['unchanged', 'unchanged'])
    // an absolute path works the same
    expect(
      (
        await publishFeeds(
          pub.agent,
          feeds.map((f) => (f.rkey === 'fresh' ? { ...f, avatar: path.join(tmp, 'avatar.png') } : f)),
          serviceDid,
        )
      ).map((r) => r.action),
    ).toEqual(['unchanged', 'unchanged'])
  })

  it('dry run: reports, writes nothing', { timeout: STEP }, async () => {
    const rev = await repoRev()
    const renamed = feeds.map((f) => (f.rkey === 'fresh' ? { ...f, displayName: 'Fresh, renamed' } : f))
    const results = byRkey(await publishFeeds(pub.agent, renamed, serviceDid, { dryRun: true }))
    expect(results.fresh!.action).toBe('updated')
    expect(results.fresh!.dryRun).toBe(true)
    expect(results.fresh!.cid).toBeUndefined()
    expect(results.fresh!.record).toMatchObject({ displayName: 'Fresh, renamed', createdAt: firstCreatedAt.get('fresh') })
    expect(results.fresh!.record.avatar).toBeUndefined()
    expect(results.science!.action).toBe('unchanged')
    expect(await repoRev()).toBe(rev)
  })

  it('refuses bad feeds before writing anything', { timeout: STEP }, async () => {
    const rev = await repoRev()
    await writeFile(path.join(tmp, 'notes.txt'), 'hello, not an image\n')
    await writeFile(path.join(tmp, 'huge.png'), Buffer.concat([PNG_1X1, Buffer.alloc(1_000_001 - PNG_1X1.length)]))
    // a valid change to "fresh" plus a bad "science": neither is written
    const tooLong = feeds.map((f) => (f.rkey === 'fresh' ? { ...f, description: 'changed' } : { ...f, displayName: 'Science, space and research!' }))
    await expect(publishFeeds(pub.agent, tooLong, serviceDid)).rejects.toThrow(
      'feed science: displayName "Science, space and research!" has 28 graphemes; the limit is 24',
    )
    const notImage = feeds.map((f) => (f.rkey === 'fresh' ? { ...f, description: 'changed' } : { ...f, avatar: 'notes.txt' }))
    await expect(publishFeeds(pub.agent, notImage, serviceDid, { baseDir: tmp })).rejects.toThrow(
      `feed science: avatar ${path.join(tmp, 'notes.txt')}: not a PNG or JPEG image`,
    )
    const huge = feeds.map((f) => ({ ...f, avatar: 'huge.png' }))
    await expect(publishFeeds(pub.agent, huge, serviceDid, { baseDir: tmp })).rejects.toThrow(/avatar .*huge\.png: 1,000,001 bytes; the limit is 1,000,000/)
    const missing = feeds.map((f) => ({ ...f, avatar: 'nope.png' }))
    await expect(publishFeeds(pub.agent, missing, serviceDid, { baseDir: tmp })).rejects.toThrow(/avatar .*nope\.png: no such file/)
    // every problem at once
    const both = feeds.map((f) => (f.rkey === 'fresh' ? { ...f, displayName: 'x'.repeat(25) } : { ...f, avatar: 'notes.txt' }))
    const err = await publishFeeds(pub.agent, both, serviceDid, { baseDir: tmp }).catch((e: Error) => e)
    expect((err as Error).message).toMatch(/^cannot publish:\n {2}feed fresh: displayName .* 25 graphemes.*\n {2}feed science: avatar .*not a PNG or JPEG/)
    await expect(publishFeeds(pub.agent, feeds, 'not-a-did')).rejects.toThrow('service DID "not-a-did" is not a DID')
    expect(await repoRev()).toBe(rev)
  })

  it('refuses to publish as the wrong account', { timeout: STEP }, async () => {
    const rev = await repoRev()
    await expect(publishFeeds(pub.agent, feeds, serviceDid, { publisherDid: other.did })).rejects.toThrow(
      `logged in as publisher.test (${pub.did}), but SKYSIFT_PUBLISHER_DID is ${other.did}`,
    )
    await expect(unpublishFeed(pub.agent, 'science', { feeds, publisherDid: other.did })).rejects.toThrow(/SKYSIFT_PUBLISHER_DID is/)
    expect(await repoRev()).toBe(rev)
  })
})

describe('unpublish', () => {
  it('deletes one feed record', { timeout: STEP }, async () => {
    await expect(unpublishFeed(pub.agent, 'nope', { feeds })).rejects.toThrow('feed nope is not in the feeds file (configured: fresh, science); use --force')
    expect(await unpublishFeed(pub.agent, 'nope', { feeds, force: true })).toMatchObject({ action: 'absent' })
    expect(await unpublishFeed(pub.agent, 'science', { feeds, dryRun: true })).toMatchObject({ action: 'deleted', dryRun: true })
    await getRecord('science') // still there
    const r = await unpublishFeed(pub.agent, 'science', { feeds, publisherDid: pub.did })
    expect(r).toEqual({ rkey: 'science', uri: `at://${pub.did}/app.bsky.feed.generator/science`, action: 'deleted', dryRun: false })
    const err = await getRecord('science').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(XRPCError)
    expect((err as XRPCError).error).toBe('RecordNotFound')
    expect(await unpublishFeed(pub.agent, 'science', { feeds })).toMatchObject({ action: 'absent' })
    await getRecord('fresh') // untouched
    await net.processAll()
    await expect(generatorView('science')).rejects.toThrow(/could not find feed/)
  })
})

describe('CLI', () => {
  it('publishes and unpublishes with node src/cli.ts', { timeout: 4 * STEP }, async () => {
    const env = {
      SKYSIFT_PUBLISHER_SERVICE: net.pdsUrl,
      SKYSIFT_PUBLISHER_HANDLE: pub.handle,
      SKYSIFT_PUBLISHER_PASSWORD: pub.password,
      SKYSIFT_SERVICE_DID: serviceDid,
      SKYSIFT_PUBLISHER_DID: pub.did,
    }
    // fresh has an avatar and contentMode from above, science was deleted
    const dry = await runCli(['publish', '--dry-run'], env)
    expect(dry.stderr).toContain('dry run: nothing is uploaded or written')
    expect(dry.stdout).toContain(`would update at://${pub.did}/app.bsky.feed.generator/fresh`)
    expect(dry.stdout).toContain(`would create at://${pub.did}/app.bsky.feed.generator/science`)
    expect(dry.code).toBe(0)
    await expect(getRecord('science')).rejects.toThrow()

    const first = await runCli(['publish'], env)
    expect(first.stderr).toBe('')
    expect(first.stdout).toBe(`updated   at://${pub.did}/app.bsky.feed.generator/fresh\ncreated   at://${pub.did}/app.bsky.feed.generator/science\n`)
    expect(first.code).toBe(0)
    const fresh = await getRecord('fresh')
    expect(fresh.value.avatar).toBeUndefined()
    expect(fresh.value.contentMode).toBeUndefined()
    expect(fresh.value.createdAt).toBe(firstCreatedAt.get('fresh'))
    expect((await getRecord('science')).value).toMatchObject({ did: serviceDid, displayName: 'Science & space', acceptsInteractions: true })

    const again = await runCli(['publish', '--service', net.pdsUrl], { ...env, SKYSIFT_PUBLISHER_SERVICE: 'http://localhost:1' })
    expect(again.stdout).toBe(`unchanged at://${pub.did}/app.bsky.feed.generator/fresh\nunchanged at://${pub.did}/app.bsky.feed.generator/science\n`)
    expect(again.code).toBe(0)

    const wrong = await runCli(['publish'], { ...env, SKYSIFT_PUBLISHER_DID: other.did })
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toContain(`but SKYSIFT_PUBLISHER_DID is ${other.did}`)

    const badLogin = await runCli(['publish'], { ...env, SKYSIFT_PUBLISHER_PASSWORD: 'wrong-password' })
    expect(badLogin.code).toBe(1)
    expect(badLogin.stderr).toMatch(
      /^skysift: login as publisher\.test at http:\/\/localhost:\d+ failed: AuthenticationRequired: Invalid identifier or password/,
    )

    const noCreds = await runCli(['publish'], { ...env, SKYSIFT_PUBLISHER_PASSWORD: '' })
    expect(noCreds.code).toBe(1)
    expect(noCreds.stderr).toContain('set SKYSIFT_PUBLISHER_HANDLE and SKYSIFT_PUBLISHER_PASSWORD')

    const unknown = await runCli(['unpublish', 'nope'], env)
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('feed nope is not in the feeds file')

    const del = await runCli(['unpublish', 'science'], env)
    expect(del.stdout).toBe(`deleted   at://${pub.did}/app.bsky.feed.generator/science\n`)
    expect(del.code).toBe(0)
    await expect(getRecord('science')).rejects.toThrow(/Could not locate record/i)
  })
})
