/**
 * Publishing: writes each hosted feed's `app.bsky.feed.generator` record to
 * the publisher's repo (create, update or leave alone), and deletes one.
 *
 * The functions take an AtpAgent that is already logged in as the publisher;
 * `publishCommand` is the CLI around them (login, prompts, output).
 */
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { AtpAgent, BlobRef, XRPCError, jsonToLex, lexToJson } from '@atproto/api'

export const GENERATOR_COLLECTION = 'app.bsky.feed.generator'
export const DEFAULT_PUBLISHER_SERVICE = 'https://bsky.social'
/** limits of the app.bsky.feed.generator lexicon */
export const MAX_DISPLAY_NAME_GRAPHEMES = 24
export const MAX_DISPLAY_NAME_LENGTH = 240
export const MAX_DESCRIPTION_GRAPHEMES = 300
export const MAX_DESCRIPTION_LENGTH = 3000
export const MAX_AVATAR_BYTES = 1_000_000

const DID_RE = /^did:[a-z]+:[A-Za-z0-9._:%-]*[A-Za-z0-9._-]$/

/** What publishing needs of a feed (a loaded `Feed` has all of it). */
export interface PublishableFeed {
  rkey: string
  displayName: string
  description?: string
  contentMode?: string
  /** path of a PNG or JPEG file; relative paths are resolved against `baseDir` */
  avatar?: string
}

/** The record as written (avatar as a blob ref). */
export interface GeneratorRecord {
  $type: typeof GENERATOR_COLLECTION
  did: string
  displayName: string
  description?: string
  avatar?: BlobRef
  acceptsInteractions: true
  contentMode?: string
  createdAt: string
  [k: string]: unknown
}

export type PublishAction = 'created' | 'updated' | 'unchanged'

export interface PublishResult {
  rkey: string
  uri: string
  /** on a dry run: what would happen */
  action: PublishAction
  /** the record written (or that would be written), in JSON form (blob refs as `{ $type: 'blob', ref: { $link }, … }`) */
  record: Record<string, unknown>
  /** CID of the record now in the repo (undefined on a dry run that would create or update) */
  cid: string | undefined
  dryRun: boolean
}

export interface PublishOptions {
  /** read and compare only: upload nothing, write nothing */
  dryRun?: boolean
  /** directory relative avatar paths are resolved against (default: the working directory) */
  baseDir?: string
  /** fail before doing anything unless the agent is logged in as this DID */
  publisherDid?: string
  /** clock for createdAt of new records */
  now?: () => Date
  /** called as each feed is done (the CLI prints as it goes) */
  onResult?: (r: PublishResult) => void
}

/** A problem that stops publishing before anything is written. */
export class PublishError extends Error {
  readonly problems: string[]
  constructor(problems: string[]) {
    super(problems.length === 1 ? problems[0] : `cannot publish:\n  ${problems.join('\n  ')}`)
    this.name = 'PublishError'
    this.problems = problems
  }
}

interface Avatar {
  file: string
  bytes: Buffer
  mimeType: 'image/png' | 'image/jpeg'
  cid: string
}

interface PreparedFeed {
  feed: PublishableFeed
  avatar: Avatar | undefined
}

const graphemes = (s: string): number => [...new Intl.Segmenter().segment(s)].length

/** The image type from the file's first bytes: PNG or JPEG, else null. */
export function sniffImageType(bytes: Uint8Array): 'image/png' | 'image/jpeg' | null {
  const png = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]
  if (bytes.length >= png.length && png.every((b, i) => bytes[i] === b)) return 'image/png'
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'image/jpeg'
  return null
}

/** The CID a PDS gives a blob with these bytes: CIDv1, raw codec, sha2-256, base32. */
export function blobCid(bytes: Uint8Array): string {
  const digest = createHash('sha256').update(bytes).digest()
  const cid = Buffer.concat([Buffer.from([0x01, 0x55, 0x12, 0x20]), digest])
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567'
  let out = 'b'
  let bits = 0
  let value = 0
  for (const byte of cid) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
    value &= (1 << bits) - 1
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31]
  return out
}

/** Reads and checks an avatar file: PNG or JPEG by its magic number, at most 1,000,000 bytes. */
export function readAvatar(file: string): Avatar {
  let bytes: Buffer
  try {
    bytes = fs.readFileSync(file)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new Error(`avatar ${file}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`)
  }
  const mimeType = sniffImageType(bytes)
  if (!mimeType) throw new Error(`avatar ${file}: not a PNG or JPEG image (Bluesky accepts only those)`)
  if (bytes.length > MAX_AVATAR_BYTES) {
    throw new Error(`avatar ${file}: ${bytes.length.toLocaleString('en-US')} bytes; the limit is ${MAX_AVATAR_BYTES.toLocaleString('en-US')}`)
  }
  return { file, bytes, mimeType, cid: blobCid(bytes) }
}

/** Checks every feed against the record's limits and reads the avatars; throws one PublishError naming every problem. */
function prepare(feeds: readonly PublishableFeed[], serviceDid: string, baseDir: string): PreparedFeed[] {
  const problems: string[] = []
  if (!DID_RE.test(serviceDid)) problems.push(`service DID ${JSON.stringify(serviceDid)} is not a DID`)
  if (!feeds.length) problems.push('no feeds to publish')
  const seen = new Set<string>()
  const prepared = feeds.map((feed): PreparedFeed => {
    const p = (msg: string): void => void problems.push(`feed ${feed.rkey}: ${msg}`)
    if (!/^[a-zA-Z0-9._~-]{1,512}$/.test(feed.rkey) || feed.rkey === '.' || feed.rkey === '..') p('not a valid record key')
    if (seen.has(feed.rkey)) p('record key used twice')
    seen.add(feed.rkey)
    const name = feed.displayName ?? ''
    if (!name.trim()) p('displayName is empty')
    else if (graphemes(name) > MAX_DISPLAY_NAME_GRAPHEMES)
      p(`displayName ${JSON.stringify(name)} has ${graphemes(name)} graphemes; the limit is ${MAX_DISPLAY_NAME_GRAPHEMES}`)
    else if (name.length > MAX_DISPLAY_NAME_LENGTH) p(`displayName is ${name.length} characters long; the limit is ${MAX_DISPLAY_NAME_LENGTH}`)
    const desc = feed.description ?? ''
    if (graphemes(desc) > MAX_DESCRIPTION_GRAPHEMES) p(`description has ${graphemes(desc)} graphemes; the limit is ${MAX_DESCRIPTION_GRAPHEMES}`)
    else if (desc.length > MAX_DESCRIPTION_LENGTH) p(`description is ${desc.length} characters long; the limit is ${MAX_DESCRIPTION_LENGTH}`)
    let avatar: Avatar | undefined
    if (feed.avatar !== undefined) {
      try {
        avatar = readAvatar(path.resolve(baseDir, feed.avatar))
      } catch (err) {
        p((err as Error).message)
      }
    }
    return { feed, avatar }
  })
  if (problems.length) throw new PublishError(problems)
  return prepared
}

/** The DID the agent is logged in as. */
export function sessionDid(agent: AtpAgent): string {
  const did = agent.session?.did
  if (!did) throw new Error('not logged in')
  return did
}

/** Throws unless the agent is logged in as `expected` (when given). */
export function assertPublisher(agent: AtpAgent, expected: string | undefined): string {
  const did = sessionDid(agent)
  if (expected && did !== expected) {
    const who = agent.session?.handle ? `${agent.session.handle} (${did})` : did
    throw new PublishError([
      `logged in as ${who}, but SKYSIFT_PUBLISHER_DID is ${expected}: log in as the publisher account, or change SKYSIFT_PUBLISHER_DID (the server only answers for feeds under that DID)`,
    ])
  }
  return did
}

export const feedUri = (publisherDid: string, rkey: string): string => `at://${publisherDid}/${GENERATOR_COLLECTION}/${rkey}`

const isRecordNotFound = (err: unknown): boolean => err instanceof XRPCError && (err.error === 'RecordNotFound' || /could not locate record/i.test(err.message))

interface Existing {
  cid: string
  value: Record<string, unknown>
}

async function getExisting(agent: AtpAgent, repo: string, rkey: string): Promise<Existing | null> {
  try {
    const res = await agent.com.atproto.repo.getRecord({ repo, collection: GENERATOR_COLLECTION, rkey })
    if (!res.data.cid) throw new Error(`${feedUri(repo, rkey)}: the PDS returned the record without a CID`)
    return { cid: res.data.cid, value: res.data.value as Record<string, unknown> }
  } catch (err) {
    if (isRecordNotFound(err)) return null
    throw err
  }
}

/** A record in JSON form, keys sorted, for comparisons. */
function canonical(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort)
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, sort((v as Record<string, unknown>)[k])]),
      )
    }
    return v
  }
  return JSON.stringify(sort(lexToJson(value as never)))
}

const withoutCreatedAt = (r: Record<string, unknown>): Record<string, unknown> => {
  const { createdAt: _, ...rest } = r
  return rest
}

/** The CID string of a record's avatar blob ref, if any. */
function avatarCid(value: Record<string, unknown>): string | undefined {
  const a = value.avatar
  if (a instanceof BlobRef) return a.ref.toString()
  const json = a ? (lexToJson(a as never) as { ref?: { $link?: string } }) : undefined
  return json?.ref?.$link
}

function buildRecord(feed: PublishableFeed, serviceDid: string, avatar: BlobRef | undefined, createdAt: string): GeneratorRecord {
  return {
    $type: GENERATOR_COLLECTION,
    did: serviceDid,
    displayName: feed.displayName,
    ...(feed.description ? { description: feed.description } : {}),
    ...(avatar ? { avatar } : {}),
    acceptsInteractions: true,
    ...(feed.contentMode ? { contentMode: feed.contentMode } : {}),
    createdAt,
  }
}

const validCreatedAt = (v: unknown): v is string => typeof v === 'string' && !Number.isNaN(Date.parse(v))

/**
 * Writes each feed's generator record to the agent's repo with putRecord
 * (rkey = the feed's rkey; swapRecord = the CID read just before, or null
 * for a new record, so a concurrent edit fails the write instead of being
 * overwritten). Every feed is checked (display name ≤ 24 graphemes,
 * description ≤ 300 graphemes, avatar PNG/JPEG ≤ 1,000,000 bytes) before
 * anything is uploaded or written. An existing record identical apart from
 * createdAt is left alone ("unchanged"); an updated one keeps its createdAt.
 */
export async function publishFeeds(
  agent: AtpAgent,
  feeds: readonly PublishableFeed[],
  serviceDid: string,
  opts: PublishOptions = {},
): Promise<PublishResult[]> {
  const repo = assertPublisher(agent, opts.publisherDid)
  const prepared = prepare(feeds, serviceDid, opts.baseDir ?? process.cwd())
  const now = opts.now ?? (() => new Date())
  const dryRun = opts.dryRun === true
  const results: PublishResult[] = []
  const done = (r: PublishResult): void => {
    results.push(r)
    opts.onResult?.(r)
  }
  for (const { feed, avatar } of prepared) {
    const uri = feedUri(repo, feed.rkey)
    const existing = await getExisting(agent, repo, feed.rkey)
    const createdAt = existing && validCreatedAt(existing.value.createdAt) ? existing.value.createdAt : now().toISOString()
    // the blob ref to put in the record: reuse the existing one when the bytes are the same
    let blob: BlobRef | undefined
    if (avatar) {
      const old = existing?.value.avatar
      const json =
        existing && old && avatarCid(existing.value) === avatar.cid
          ? lexToJson(old as never)
          : { $type: 'blob', ref: { $link: avatar.cid }, mimeType: avatar.mimeType, size: avatar.bytes.length }
      const ref = jsonToLex(json as never)
      if (!(ref instanceof BlobRef)) throw new Error(`avatar ${avatar.file}: could not make a blob ref`)
      blob = ref
    }
    const record = buildRecord(feed, serviceDid, blob, createdAt)
    const unchanged = existing !== null && canonical(withoutCreatedAt(existing.value)) === canonical(withoutCreatedAt(record))
    const action: PublishAction = existing === null ? 'created' : 'updated'
    if (unchanged) {
      done({ rkey: feed.rkey, uri, action: 'unchanged', record: lexToJson(existing.value as never) as Record<string, unknown>, cid: existing.cid, dryRun })
      continue
    }
    if (dryRun) {
      done({ rkey: feed.rkey, uri, action, record: lexToJson(record as never) as Record<string, unknown>, cid: undefined, dryRun })
      continue
    }
    if (avatar && avatarCid(existing?.value ?? {}) !== avatar.cid) {
      const up = await agent.com.atproto.repo.uploadBlob(avatar.bytes, { encoding: avatar.mimeType })
      const ref = up.data.blob
      if (ref.ref.toString() !== avatar.cid) {
        throw new Error(`avatar ${avatar.file}: the PDS stored it as ${ref.ref.toString()}, expected ${avatar.cid}`)
      }
      record.avatar = ref
    }
    let res
    try {
      res = await agent.com.atproto.repo.putRecord({
        repo,
        collection: GENERATOR_COLLECTION,
        rkey: feed.rkey,
        record,
        swapRecord: existing?.cid ?? null,
      })
    } catch (err) {
      if (err instanceof XRPCError && err.error === 'InvalidSwap') {
        throw new Error(`${uri}: the record changed while publishing (someone else edited it); run publish again`)
      }
      throw new Error(`${uri}: ${(err as Error).message}`)
    }
    done({ rkey: feed.rkey, uri, action, record: lexToJson(record as never) as Record<string, unknown>, cid: res.data.cid, dryRun })
  }
  return results
}

export interface UnpublishOptions {
  /** the configured feeds: deleting an rkey not among them needs `force` */
  feeds?: readonly { rkey: string }[]
  force?: boolean
  dryRun?: boolean
  publisherDid?: string
}

export interface UnpublishResult {
  rkey: string
  uri: string
  /** 'absent': there was no record; on a dry run 'deleted' means "would delete" */
  action: 'deleted' | 'absent'
  dryRun: boolean
}

/** Deletes one feed's generator record (swapRecord = the CID read just before). */
export async function unpublishFeed(agent: AtpAgent, rkey: string, opts: UnpublishOptions = {}): Promise<UnpublishResult> {
  const repo = assertPublisher(agent, opts.publisherDid)
  if (opts.feeds && !opts.force && !opts.feeds.some((f) => f.rkey === rkey)) {
    const known = opts.feeds.map((f) => f.rkey).join(', ')
    throw new PublishError([`feed ${rkey} is not in the feeds file (configured: ${known || 'none'}); use --force to delete its record anyway`])
  }
  const uri = feedUri(repo, rkey)
  const dryRun = opts.dryRun === true
  const existing = await getExisting(agent, repo, rkey)
  if (!existing) return { rkey, uri, action: 'absent', dryRun }
  if (!dryRun) {
    try {
      await agent.com.atproto.repo.deleteRecord({ repo, collection: GENERATOR_COLLECTION, rkey, swapRecord: existing.cid })
    } catch (err) {
      if (err instanceof XRPCError && err.error === 'InvalidSwap') {
        throw new Error(`${uri}: the record changed while unpublishing; run unpublish again`)
      }
      throw new Error(`${uri}: ${(err as Error).message}`)
    }
  }
  return { rkey, uri, action: 'deleted', dryRun }
}

/** One line per feed: `created   at://…`, or `would create at://…` on a dry run. */
export function formatPublishResult(r: PublishResult): string {
  if (!r.dryRun || r.action === 'unchanged') return `${r.action.padEnd(9)} ${r.uri}`
  const verb = r.action === 'created' ? 'would create' : 'would update'
  return `${verb} ${r.uri}\n${JSON.stringify(r.record, null, 2).replace(/^/gm, '  ')}`
}

// ---------------------------------------------------------------- CLI

export interface PublishCommandIo {
  env: Record<string, string | undefined>
  out: (line: string) => void
  err: (line: string) => void
  /** asks on the terminal; absent when stdin is not a TTY */
  prompt?: (question: string, hidden: boolean) => Promise<string>
}

export interface LoginOptions {
  service: string
  identifier: string
  password: string
}

/** Logs in with a handle (or DID, or email) and an app password. */
export async function loginPublisher(o: LoginOptions): Promise<AtpAgent> {
  let service: URL
  try {
    service = new URL(o.service)
    if (service.protocol !== 'https:' && service.protocol !== 'http:') throw new Error()
  } catch {
    throw new Error(`publisher service ${JSON.stringify(o.service)} is not an http(s) URL`)
  }
  const agent = new AtpAgent({ service })
  try {
    await agent.login({ identifier: o.identifier, password: o.password })
  } catch (err) {
    const where = `login as ${o.identifier} at ${service.origin} failed`
    if (!(err instanceof XRPCError) || err.status === 1) {
      throw new Error(`${where}: cannot reach the service (${(err as Error).message})`)
    }
    throw new Error(
      `${where}: ${err.error}: ${err.message} (use the account's handle and an app password: Settings → Privacy and security → App passwords; an account on another PDS needs --service <its URL>)`,
    )
  }
  return agent
}

/** Reads one line from the terminal; with `hidden`, nothing is echoed. */
export function promptTerminal(question: string, hidden: boolean): Promise<string> {
  const stdin = process.stdin
  const out = process.stderr
  out.write(question)
  return new Promise((resolve, reject) => {
    let answer = ''
    const wasRaw = stdin.isRaw
    stdin.setRawMode(true)
    stdin.resume()
    stdin.setEncoding('utf8')
    const done = (err: Error | null, rest = ''): void => {
      stdin.setRawMode(wasRaw)
      stdin.off('data', onData)
      stdin.pause()
      // typed ahead (e.g. the password after the handle): keep it for the next prompt
      if (rest) stdin.unshift(rest, 'utf8')
      out.write('\n')
      if (err) reject(err)
      else resolve(answer)
    }
    const onData = (chunk: string): void => {
      const chars = [...chunk]
      for (const [i, ch] of chars.entries()) {
        if (ch === '\r' || ch === '\n')
          return done(
            null,
            chars
              .slice(i + 1)
              .join('')
              .replace(/^\n/, ''),
          )
        if (ch === '\u0003' || ch === '\u0004') return done(new Error('cancelled'))
        if (ch === '\u007f' || ch === '\b') {
          if (answer) {
            answer = [...answer].slice(0, -1).join('')
            if (!hidden) out.write('\b \b')
          }
          continue
        }
        if (ch < ' ') continue
        answer += ch
        if (!hidden) out.write(ch)
      }
    }
    stdin.on('data', onData)
  })
}

/** The process's terminal I/O for publishCommand. */
export function processIo(): PublishCommandIo {
  return {
    env: process.env,
    out: (s) => void process.stdout.write(`${s}\n`),
    err: (s) => void process.stderr.write(`${s}\n`),
    prompt: process.stdin.isTTY && process.stderr.isTTY ? promptTerminal : undefined,
  }
}

async function credentials(input: PublishCommandInput, io: PublishCommandIo): Promise<{ identifier: string; password: string }> {
  let identifier = input.publisherHandle?.trim() ?? ''
  let password = input.publisherPassword ?? ''
  if ((!identifier || !password) && !io.prompt) {
    throw new Error('set SKYSIFT_PUBLISHER_HANDLE and SKYSIFT_PUBLISHER_PASSWORD (an app password), or run on a terminal to be asked for them')
  }
  if (!identifier) identifier = (await io.prompt!('Publisher handle: ', false)).trim().replace(/^@/, '')
  if (!password) password = await io.prompt!(`App password for ${identifier}: `, true)
  if (!identifier || !password) throw new Error('a handle and an app password are needed to publish')
  return { identifier, password }
}

export interface PublishCommandInput {
  /** the service DID the records point at */
  serviceDid: string
  /** SKYSIFT_PUBLISHER_DID, checked against the logged-in account */
  publisherDid: string | undefined
  feeds: readonly PublishableFeed[]
  /** avatar paths are relative to this (the feeds file's directory) */
  baseDir: string
  /** --service */
  service?: string
  /** SKYSIFT_PUBLISHER_SERVICE: where to log in without --service (default DEFAULT_PUBLISHER_SERVICE) */
  publisherService?: string
  /** SKYSIFT_PUBLISHER_HANDLE; asked on a terminal when unset */
  publisherHandle?: string
  /** SKYSIFT_PUBLISHER_PASSWORD (an app password); asked on a terminal when unset */
  publisherPassword?: string
  dryRun?: boolean
  force?: boolean
}

/** `skysift publish` / `skysift unpublish <rkey>`: logs in and runs publishFeeds / unpublishFeed. */
export async function publishCommand(
  cmd: 'publish' | 'unpublish',
  args: string[],
  input: PublishCommandInput,
  io: PublishCommandIo = processIo(),
): Promise<void> {
  const rkey = args[0]
  if (cmd === 'unpublish' && (!rkey || args.length > 1)) throw new Error('usage: skysift unpublish <rkey> [--force] [--dry-run] [--service <url>]')
  if (cmd === 'publish' && args.length) throw new Error('usage: skysift publish [--dry-run] [--service <url>]')
  if (cmd === 'publish' && !io.env.SKYSIFT_SERVICE_DID && !io.env.SKYSIFT_PUBLIC_URL) {
    throw new Error(
      `set SKYSIFT_PUBLIC_URL (or SKYSIFT_SERVICE_DID): the records must name the DID of the public server that answers for the feeds, not ${input.serviceDid}`,
    )
  }
  if (cmd === 'publish') prepare(input.feeds, input.serviceDid, input.baseDir) // fail on bad feeds before asking for a password
  if (cmd === 'unpublish' && !input.force && !input.feeds.some((f) => f.rkey === rkey)) {
    throw new PublishError([
      `feed ${rkey} is not in the feeds file (configured: ${input.feeds.map((f) => f.rkey).join(', ') || 'none'}); use --force to delete its record anyway`,
    ])
  }
  const service = input.service || input.publisherService || DEFAULT_PUBLISHER_SERVICE
  const agent = await loginPublisher({ service, ...(await credentials(input, io)) })
  try {
    const did = assertPublisher(agent, input.publisherDid)
    if (cmd === 'unpublish') {
      const r = await unpublishFeed(agent, rkey!, { feeds: input.feeds, force: input.force, dryRun: input.dryRun, publisherDid: input.publisherDid })
      if (r.action === 'absent') io.out(`absent    ${r.uri} (nothing to delete)`)
      else io.out(`${r.dryRun ? 'would delete' : 'deleted  '} ${r.uri}`)
      return
    }
    if (input.dryRun) io.err(`dry run: nothing is uploaded or written (logged in as ${agent.session?.handle ?? did})`)
    await publishFeeds(agent, input.feeds, input.serviceDid, {
      dryRun: input.dryRun,
      baseDir: input.baseDir,
      publisherDid: input.publisherDid,
      onResult: (r) => io.out(formatPublishResult(r)),
    })
    if (!input.publisherDid) {
      io.err(`note: SKYSIFT_PUBLISHER_DID is not set; set it to ${did} so the server answers for these feeds`)
    }
  } finally {
    await agent.logout().catch(() => undefined)
  }
}
