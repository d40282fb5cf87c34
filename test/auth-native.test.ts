import { randomBytes } from 'node:crypto'
import { P256Keypair, Secp256k1Keypair, verifySignature } from '@atproto/crypto'
import { describe, expect, it } from 'vitest'
import { nativeKey, verifySignatureNative } from '../src/serve/auth.ts'

const ORDER = {
  ES256K: 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n,
  ES256: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
}
const hex32 = (n: bigint) => n.toString(16).padStart(64, '0')

/** What @atproto/crypto answers: true, false, or 'throws'. */
const reference = async (did: string, msg: Uint8Array, sig: Uint8Array, alg: string, allowMalleableSig: boolean) => {
  try {
    return await verifySignature(did, msg, sig, { jwtAlg: alg, allowMalleableSig })
  } catch {
    return 'throws'
  }
}
const native = (did: string, msg: Uint8Array, sig: Uint8Array, alg: string, allowMalleableSig: boolean) =>
  verifySignatureNative(did, msg, sig, alg, { allowMalleableSig }).catch(() => 'throws' as const)

describe('native service-auth signature checks', () => {
  for (const [alg, create] of [
    ['ES256K', () => Secp256k1Keypair.create()],
    ['ES256', () => P256Keypair.create()],
  ] as const) {
    it(`answers as @atproto/crypto does for ${alg}: good, high-S, tampered, out-of-range and wrong-alg signatures`, async () => {
      for (let i = 0; i < 20; i++) {
        const kp = await create()
        expect(nativeKey(kp.did())?.alg).toBe(alg)
        const msg = randomBytes(64)
        const sig = Buffer.from(await kp.sign(msg))
        const r = BigInt(`0x${sig.subarray(0, 32).toString('hex')}`)
        const s = BigInt(`0x${sig.subarray(32).toString('hex')}`)
        const tampered = Buffer.from(sig)
        tampered[7] ^= 1
        const cases = [sig, Buffer.from(hex32(r) + hex32(ORDER[alg] - s), 'hex'), tampered, Buffer.alloc(64), Buffer.from(hex32(ORDER[alg]) + hex32(s), 'hex')]
        for (const c of cases) {
          for (const allow of [true, false]) expect(await native(kp.did(), msg, c, alg, allow)).toBe(await reference(kp.did(), msg, c, alg, allow))
        }
        const other = alg === 'ES256K' ? 'ES256' : 'ES256K'
        expect(await native(kp.did(), msg, sig, other, true)).toBe('throws')
        expect(await native(kp.did(), randomBytes(64), sig, alg, true)).toBe(false)
      }
    })
  }

  it('hands keys it does not parse to @atproto/crypto', async () => {
    expect(nativeKey('did:key:zQ3notakey')).toBeNull()
    expect(nativeKey('did:plc:abc')).toBeNull()
    expect(await native('did:key:zQ3notakey', randomBytes(8), Buffer.alloc(64), 'ES256K', true)).toBe('throws')
  })
})
