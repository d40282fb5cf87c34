import { createHash, createPublicKey, verify as ecdsaVerify, type KeyObject } from 'node:crypto'
import { createRequire } from 'node:module'
import { IdResolver, MemoryCache } from '@atproto/identity'
import type { Logger } from '../logger.ts'
import { VerifyThread } from './verify-thread.ts'

export interface Requester {
  /** the verified `iss` DID, or null for an anonymous reader */
  did: string | null
  /** why the request counts as anonymous */
  reason?: string
}

/** An identity resolver; with allowInsecureHttp it may fetch over plain http (local networks). */
export function createIdResolver(plcUrl: string, allowInsecureHttp: boolean): IdResolver {
  return new IdResolver({
    plcUrl,
    timeout: 3000,
    // @NOTE without a cache every signed-in request would fetch a DID document; keys are refreshed on a bad signature
    didCache: new MemoryCache(),
    ...(allowInsecureHttp ? { fetch: globalThis.fetch } : {}),
  })
}

/** DER prefixes of a SubjectPublicKeyInfo holding a compressed (33-byte) EC point, per curve. */
const SPKI_PREFIX = {
  ES256K: Buffer.from('3036301006072a8648ce3d020106052b8104000a032200', 'hex'), // id-ecPublicKey, secp256k1
  ES256: Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex'), // id-ecPublicKey, prime256v1
} as const
/** multicodec prefixes of did:key public keys (as in @atproto/crypto) */
const MULTICODEC = { ES256K: [0xe7, 0x01], ES256: [0x80, 0x24] } as const
/** curve orders, for the low-S rule */
const ORDER = {
  ES256K: 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n,
  ES256: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
} as const
type Alg = keyof typeof ORDER

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
const B58_INDEX = new Map([...B58].map((c, i) => [c, i]))

function base58Decode(s: string): Uint8Array | null {
  let n = 0n
  for (const c of s) {
    const v = B58_INDEX.get(c)
    if (v === undefined) return null
    n = n * 58n + BigInt(v)
  }
  const hex = n === 0n ? '' : n.toString(16)
  const body = Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex')
  let zeros = 0
  while (zeros < s.length && s[zeros] === '1') zeros++
  return Buffer.concat([Buffer.alloc(zeros), body])
}

/** A parsed did:key: its algorithm, the key for node:crypto, and the compressed point (33 bytes). */
export interface NativeKey {
  alg: Alg
  key: KeyObject
  point: Buffer
  /** secp256k1 keys libsecp256k1 takes: the point uncompressed (65 bytes), which it reads without a square root */
  full?: Uint8Array
}

/** A did:key as a node:crypto public key, or null for anything but a compressed secp256k1 or P-256 key. */
export function nativeKey(didKey: string): NativeKey | null {
  if (!didKey.startsWith('did:key:z')) return null
  const bytes = base58Decode(didKey.slice('did:key:z'.length))
  if (bytes?.length !== 35) return null
  for (const alg of ['ES256K', 'ES256'] as const) {
    if (bytes[0] !== MULTICODEC[alg][0] || bytes[1] !== MULTICODEC[alg][1]) continue
    const point = Buffer.from(bytes.subarray(2))
    try {
      return { alg, key: createPublicKey({ key: Buffer.concat([SPKI_PREFIX[alg], point]), format: 'der', type: 'spki' }), point }
    } catch {
      return null
    }
  }
  return null
}

/** The calls of libsecp256k1's Node addon (the `secp256k1` package's native binding) used here. */
interface Secp256k1Addon {
  /** true when valid; false for a signature that does not verify or has a high S (libsecp256k1 wants it normalized) */
  ecdsaVerify(sig: Uint8Array, msg32: Uint8Array, pubkey: Uint8Array): boolean
  /** the signature with a low S, in place */
  signatureNormalize(sig: Uint8Array): Uint8Array
  publicKeyVerify(pubkey: Uint8Array): boolean
  /** the point compressed (33 bytes) or not (65) */
  publicKeyConvert(pubkey: Uint8Array, compressed: boolean): Uint8Array
}

/**
 * libsecp256k1, when its native addon loads (the package ships prebuilt binaries); null otherwise, and then
 * secp256k1 signatures are verified with OpenSSL (node:crypto), ~5x slower.
 * @NOTE the binding itself, not the package's entry point, which would fall back to a pure-JS implementation silently
 */
export const secp256k1Addon: Secp256k1Addon | null = (() => {
  try {
    return createRequire(import.meta.url)('secp256k1/bindings') as Secp256k1Addon
  } catch {
    return null
  }
})()

/** @atproto/xrpc-server is loaded on first use: every process builds a resolver (createIdResolver), only servers verify tokens */
let xrpc: Promise<typeof import('@atproto/xrpc-server')> | null = null
const xrpcServer = () => (xrpc ??= import('@atproto/xrpc-server'))
let atprotoCrypto: Promise<typeof import('@atproto/crypto')> | null = null
const cryptoLib = () => (atprotoCrypto ??= import('@atproto/crypto'))

const MAX_KEYS = 100_000
const keyCache = new Map<string, NativeKey | null>()

const ORDER_BYTES = { ES256K: Buffer.from(ORDER.ES256K.toString(16), 'hex'), ES256: Buffer.from(ORDER.ES256.toString(16), 'hex') } as const
const HALF_ORDER_BYTES = {
  ES256K: Buffer.from((ORDER.ES256K / 2n).toString(16).padStart(64, '0'), 'hex'),
  ES256: Buffer.from((ORDER.ES256 / 2n).toString(16).padStart(64, '0'), 'hex'),
} as const
const ZERO32 = Buffer.alloc(32)

/** 1 ≤ x < n, for a 32-byte big-endian x */
const inRange = (x: Buffer, alg: Alg) => !x.equals(ZERO32) && Buffer.compare(x, ORDER_BYTES[alg]) < 0

/**
 * verifyJwt's signature check, natively for compact 64-byte ECDSA signatures
 * by secp256k1 (libsecp256k1, else OpenSSL) and P-256 (OpenSSL) did:keys,
 * which is all service auth uses; anything else goes to @atproto/crypto.
 * Same answers as @atproto/crypto's verifySignature: the key must be of the
 * token's alg (else it throws), r and s must be in range, and unless
 * `allowMalleableSig` s must be in the lower half of the order (a high S is
 * accepted otherwise). verifyJwt verifies with allowMalleableSig: true, the
 * default here too. With a `thread`, the libsecp256k1 check itself runs
 * there (everything before it, and every other path, stays here).
 */
export async function verifySignatureNative(
  didKey: string,
  msg: Uint8Array,
  sig: Uint8Array,
  alg: string,
  opts: { allowMalleableSig?: boolean } = { allowMalleableSig: true },
  thread?: VerifyThread | null,
): Promise<boolean> {
  let k = keyCache.get(didKey)
  if (k === undefined) {
    k = nativeKey(didKey)
    // @NOTE libsecp256k1 refuses some points OpenSSL takes (and @atproto/crypto decides): those go the slow way
    if (k && k.alg === 'ES256K' && secp256k1Addon)
      k = secp256k1Addon.publicKeyVerify(k.point) ? { ...k, full: secp256k1Addon.publicKeyConvert(k.point, false) } : null
    if (keyCache.size >= MAX_KEYS) keyCache.clear()
    keyCache.set(didKey, k)
  }
  const malleable = opts.allowMalleableSig === true
  // @NOTE with allowMalleableSig, @atproto/crypto reads a signature as DER first: 64 bytes that parse as DER
  // (a SEQUENCE of exactly 62 bytes) are left to it, so they mean what they mean there
  if (!k || sig.length !== 64 || (malleable && sig[0] === 0x30 && sig[1] === 0x3e))
    return (await cryptoLib()).verifySignature(didKey, msg, sig, { jwtAlg: alg, allowMalleableSig: malleable })
  if (alg !== k.alg) throw new Error(`Expected key alg ${alg}, got ${k.alg}`)
  const bytes = Buffer.from(sig.buffer, sig.byteOffset, 64)
  const r = bytes.subarray(0, 32)
  const s = bytes.subarray(32)
  if (!inRange(r, k.alg) || !inRange(s, k.alg)) {
    // @NOTE @atproto/crypto: a compact signature out of range throws when read strictly, and does not verify otherwise
    if (!malleable) throw new Error('invalid signature: r or s out of range')
    return false
  }
  const highS = Buffer.compare(s, HALF_ORDER_BYTES[k.alg]) > 0
  if (highS && !malleable) return false
  if (k.full && secp256k1Addon) {
    const hash = createHash('sha256').update(msg).digest()
    // @NOTE libsecp256k1 verifies low-S signatures only; (r, n - s) verifies exactly when (r, s) does
    const low = highS ? secp256k1Addon.signatureNormalize(Buffer.from(bytes)) : bytes
    return thread ? thread.verify(low, hash, k.full) : secp256k1Addon.ecdsaVerify(low, hash, k.full)
  }
  return ecdsaVerify('sha256', msg, { key: k.key, dsaEncoding: 'ieee-p1363' }, sig)
}

/** The longest a service-auth token may live unless configured (a PDS mints them for at most an hour). */
export const DEFAULT_MAX_TOKEN_LIFETIME_S = 3600
/** How far ahead of this server's clock a token's `iat` may be. */
export const TOKEN_CLOCK_SKEW_S = 60

/**
 * Refuses a token issued in the future (beyond TOKEN_CLOCK_SKEW_S) or
 * living longer than `maxLifetimeS`: `exp − iat`, or `exp − now` when it
 * has no `iat`. Reads the payload without verifying it (the signature check
 * follows), so a token refused here costs no DID resolution. A payload it
 * cannot read is left to the signature check. Throws with `.error` naming why.
 */
export function checkTokenLifetime(jwt: string, maxLifetimeS: number, now = Date.now()): void {
  let payload: { exp?: unknown; iat?: unknown }
  try {
    payload = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8'))
  } catch {
    return
  }
  if (!payload || typeof payload !== 'object') return
  const nowS = now / 1000
  const { exp, iat } = payload
  if (typeof iat === 'number' && iat > nowS + TOKEN_CLOCK_SKEW_S) {
    throw Object.assign(new Error(`token issued ${Math.round(iat - nowS)} s in the future`), { error: 'BadJwtIat' })
  }
  if (typeof exp !== 'number') return
  const lifetime = exp - (typeof iat === 'number' ? iat : nowS)
  if (lifetime > maxLifetimeS) {
    throw Object.assign(new Error(`token lifetime of ${Math.round(lifetime)} s exceeds the maximum of ${maxLifetimeS} s`), { error: 'BadJwtLifetime' })
  }
}

/** How long a signing key read from a DID document is used without asking the resolver again (a bad signature asks at once). */
const KEY_TTL_MS = 10 * 60_000

/**
 * Verifies service-auth JWTs (lifetime, signature, audience = our DID, lxm,
 * expiry) with keys from the issuer's DID document.
 */
export class Authenticator {
  private readonly serviceDid: string
  private readonly idResolver: IdResolver
  private readonly log: Logger
  /** did → its signing key (did:key) as last resolved */
  private readonly keys = new Map<string, { key: string; at: number }>()

  private readonly maxLifetimeS: number
  /** where secp256k1 signatures are checked, when not on the serving thread (SKYSIFT_VERIFY_THREAD) */
  private readonly thread: VerifyThread | null
  private readonly verifySignature: (key: string, msg: Uint8Array, sig: Uint8Array, alg: string) => Promise<boolean>

  constructor(serviceDid: string, idResolver: IdResolver, log: Logger, maxLifetimeS = DEFAULT_MAX_TOKEN_LIFETIME_S, opts: { verifyThread?: boolean } = {}) {
    this.serviceDid = serviceDid
    this.idResolver = idResolver
    this.log = log
    this.maxLifetimeS = maxLifetimeS
    if (!secp256k1Addon) log.warn('the secp256k1 native addon did not load: secp256k1 tokens are verified with OpenSSL, ~5x slower')
    // @NOTE the check verifyJwt runs with (allowMalleableSig), the libsecp256k1 part of it on a thread when asked
    const thread = (this.thread = opts.verifyThread && secp256k1Addon ? new VerifyThread(secp256k1Addon) : null)
    this.verifySignature = (key, msg, sig, alg) => verifySignatureNative(key, msg, sig, alg, { allowMalleableSig: true }, thread)
  }

  /** Ends the signature thread, if any (checks then run on the calling thread). */
  async close(): Promise<void> {
    await this.thread?.stop()
  }

  /** The requester of a call to `lxm`. Never throws: a bad or missing token is anonymous with a reason. */
  async optional(authorization: string | undefined, lxm: string): Promise<Requester> {
    if (!authorization) return { did: null, reason: 'no token' }
    try {
      return { did: await this.verify(authorization, lxm) }
    } catch (err) {
      const reason = (err as { error?: string }).error ?? (err as Error).message ?? 'invalid token'
      this.log.info({ lxm, reason }, 'token rejected; serving as anonymous')
      return { did: null, reason }
    }
  }

  /** The verified issuer DID; throws (with `.error` naming why) on any problem. */
  async verify(authorization: string, lxm: string): Promise<string> {
    const m = /^Bearer\s+(\S+)$/i.exec(authorization.trim())
    if (!m) throw Object.assign(new Error('authorization is not a Bearer token'), { error: 'BadAuthorization' })
    checkTokenLifetime(m[1], this.maxLifetimeS)
    const { verifyJwt } = await xrpcServer()
    const payload = await verifyJwt(m[1], this.serviceDid, lxm, (iss, forceRefresh) => this.signingKey(iss.split('#')[0], forceRefresh), this.verifySignature)
    return payload.iss.split('#')[0]
  }

  /** The issuer's signing key; verifyJwt asks again with forceRefresh after a bad signature (the key may have been rotated). */
  private async signingKey(did: string, forceRefresh: boolean): Promise<string> {
    const now = Date.now()
    const hit = this.keys.get(did)
    if (hit && !forceRefresh && now - hit.at < KEY_TTL_MS) return hit.key
    const key = await this.idResolver.did.resolveAtprotoKey(did, forceRefresh)
    if (this.keys.size >= MAX_KEYS) this.keys.clear()
    this.keys.set(did, { key, at: now })
    return key
  }
}
