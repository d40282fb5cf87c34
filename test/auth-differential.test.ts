import { randomBytes, randomInt } from 'node:crypto'
import { P256Keypair, Secp256k1Keypair, verifySignature } from '@atproto/crypto'
import { describe, expect, it } from 'vitest'
import { secp256k1Addon, verifySignatureNative } from '../src/serve/auth.ts'

const ORDER = {
  ES256K: 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n,
  ES256: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
}
type Alg = keyof typeof ORDER
const hex32 = (n: bigint) => n.toString(16).padStart(64, '0')
const big = (b: Uint8Array) => BigInt(`0x${Buffer.from(b).toString('hex') || '0'}`)
const compact = (r: bigint, s: bigint) => Buffer.from(hex32(r) + hex32(s), 'hex')

/** A DER INTEGER of a positive number (minimal, with a 0x00 when the top bit is set). */
function derInt(n: bigint): Buffer {
  let h = n.toString(16)
  if (h.length % 2) h = `0${h}`
  let b = Buffer.from(h, 'hex')
  if (b[0] & 0x80) b = Buffer.concat([Buffer.from([0]), b])
  return Buffer.concat([Buffer.from([0x02, b.length]), b])
}
const der = (r: bigint, s: bigint) => {
  const body = Buffer.concat([derInt(r), derInt(s)])
  return Buffer.concat([Buffer.from([0x30, body.length]), body])
}

const answer = async (f: () => Promise<boolean>) => {
  try {
    return await f()
  } catch {
    return 'throws'
  }
}

/** Signatures to try for one key and message: the good one and every way of spoiling it. */
function variants(sig: Buffer, alg: Alg): [string, Buffer][] {
  const n = ORDER[alg]
  const r = big(sig.subarray(0, 32))
  const s = big(sig.subarray(32))
  const flipped = (i: number) => {
    const b = Buffer.from(sig)
    b[i >> 3] ^= 1 << (i & 7)
    return b
  }
  // @NOTE 64 bytes that also parse as DER: a SEQUENCE of two 29-byte INTEGERs
  const r29 = big(randomBytes(29)) | (1n << 224n)
  const s29 = big(randomBytes(29)) | (1n << 224n)
  const derLike = der(r29 & ((1n << 231n) - 1n), s29 & ((1n << 231n) - 1n))
  if (derLike.length !== 64) throw new Error('the DER-like case must be 64 bytes')
  // and one whose DER s (57 bytes) is out of range, which @atproto/crypto answers differently from a compact reading
  const s57 = randomBytes(57)
  s57[0] = 1 + randomInt(0x7f)
  const derBadS = Buffer.concat([Buffer.from([0x30, 0x3e, 0x02, 0x01, 0x01, 0x02, 0x39]), s57])
  return [
    ['good', sig],
    ['high-S', compact(r, n - s)],
    ['flipped bit', flipped(randomInt(512))],
    ['flipped bit in r', flipped(randomInt(256))],
    ['flipped bit in s', flipped(256 + randomInt(256))],
    ['DER', der(r, s)],
    ['DER, high-S', der(r, n - s)],
    ['64 bytes of DER', derLike],
    ['64 bytes of DER, s out of range', derBadS],
    ['63 bytes', sig.subarray(0, 63)],
    ['65 bytes', Buffer.concat([sig, Buffer.from([0])])],
    ['empty', Buffer.alloc(0)],
    ['random 64 bytes', randomBytes(64)],
    ['random 72 bytes', randomBytes(72)],
    ['zero', Buffer.alloc(64)],
    ['r = 0', compact(0n, s)],
    ['s = 0', compact(r, 0n)],
    ['r = n', compact(n, s)],
    ['s = n', compact(r, n)],
    ['r = 2^256 - 1', compact((1n << 256n) - 1n, s)],
    ['s = n - 1', compact(r, n - 1n)],
    ['s = n/2', compact(r, n / 2n)],
    ['s = n/2 + 1', compact(r, n / 2n + 1n)],
    ['r and s swapped', compact(s, r)],
  ]
}

describe('native signature checks against @atproto/crypto', () => {
  it('the libsecp256k1 addon is loaded (the fast path is the one tested)', () => {
    expect(secp256k1Addon).not.toBeNull()
  })

  for (const [alg, create, keys] of [
    ['ES256K', () => Secp256k1Keypair.create(), 24],
    ['ES256', () => P256Keypair.create(), 8],
  ] as const) {
    it(`gives @atproto/crypto's answer for ${alg} on good, malformed and forged signatures, strict or not`, async () => {
      const other = await create()
      let compared = 0
      for (let k = 0; k < keys; k++) {
        const kp = await create()
        const msg = randomBytes(1 + randomInt(300))
        const sig = Buffer.from(await kp.sign(msg))
        const cases: [string, string, Uint8Array, Buffer][] = variants(sig, alg).map(([what, s]) => [what, kp.did(), msg, s])
        cases.push(
          ['wrong key', other.did(), msg, sig],
          ['other message', kp.did(), randomBytes(msg.length), sig],
          ['message one bit off', kp.did(), Buffer.from(msg).fill(msg[0] ^ 1, 0, 1), sig],
        )
        for (const [what, did, m, s] of cases) {
          for (const allowMalleableSig of [true, false]) {
            for (const jwtAlg of [alg, alg === 'ES256K' ? 'ES256' : 'ES256K']) {
              const want = await answer(() => verifySignature(did, m, s, { jwtAlg, allowMalleableSig }))
              const got = await answer(() => verifySignatureNative(did, m, s, jwtAlg, { allowMalleableSig }))
              expect({ what, allowMalleableSig, jwtAlg, got }).toEqual({ what, allowMalleableSig, jwtAlg, got: want })
              compared++
            }
          }
        }
        // the good signature verifies (else the comparisons above could all be "false = false")
        expect(await verifySignatureNative(kp.did(), msg, sig, alg)).toBe(true)
      }
      expect(compared).toBeGreaterThan(keys * 100)
    })
  }
})
