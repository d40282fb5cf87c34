/**
 * Service-auth tokens for the benchmark's signed-in readers, signed with
 * node:crypto (secp256k1, low-S like every atproto signer): @atproto/crypto's
 * pure-JS signing takes ~2 ms a token, too slow for thousands of readers.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

function base58(bytes: Uint8Array): string {
  let n = BigInt(`0x${Buffer.from(bytes).toString('hex') || '0'}`)
  let s = ''
  while (n > 0n) {
    s = B58[Number(n % 58n)] + s
    n /= 58n
  }
  for (const b of bytes) {
    if (b !== 0) break
    s = `1${s}`
  }
  return s
}

export interface BenchKey {
  privateKey: KeyObject
  /** did:key:z… of the public key (compressed secp256k1 multikey) */
  did: string
}

export function benchKey(): BenchKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'secp256k1' })
  const jwk = publicKey.export({ format: 'jwk' }) as { x: string; y: string }
  const x = Buffer.from(jwk.x, 'base64url')
  const y = Buffer.from(jwk.y, 'base64url')
  const compressed = Buffer.concat([Buffer.from([y[y.length - 1] & 1 ? 0x03 : 0x02]), x])
  return { privateKey, did: `did:key:z${base58(Buffer.concat([Buffer.from([0xe7, 0x01]), compressed]))}` }
}

const b64url = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')

/** A service-auth JWT, shaped as @atproto/xrpc-server's createServiceJwt makes them. */
export function serviceJwt(key: BenchKey, p: { iss: string; aud: string; lxm: string; exp: number }): string {
  const head = `${b64url({ typ: 'JWT', alg: 'ES256K' })}.${b64url({ iat: Math.floor(Date.now() / 1000), iss: p.iss, aud: p.aud, exp: p.exp, lxm: p.lxm, jti: randomBytes(16).toString('hex') })}`
  const sig = sign('sha256', Buffer.from(head), { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
  const s = BigInt(`0x${sig.subarray(32).toString('hex')}`)
  if (s > N / 2n) Buffer.from((N - s).toString(16).padStart(64, '0'), 'hex').copy(sig, 32)
  return `${head}.${sig.toString('base64url')}`
}

/** sha256, for tests of the above */
export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest()
