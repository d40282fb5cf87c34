import { createHash, randomBytes } from 'node:crypto'
import { Secp256k1Keypair, verifySignature } from '@atproto/crypto'
import { describe, expect, it } from 'vitest'
import { secp256k1Addon, verifySignatureNative } from '../src/serve/auth.ts'
import { FLUSH_AT, VerifyThread } from '../src/serve/verify-thread.ts'

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
const hex32 = (n: bigint) => n.toString(16).padStart(64, '0')

/** What @atproto/crypto answers: true, false, or 'throws'. */
const reference = (did: string, msg: Uint8Array, sig: Uint8Array, allowMalleableSig: boolean) =>
  verifySignature(did, msg, sig, { jwtAlg: 'ES256K', allowMalleableSig }).catch(() => 'throws' as const)

/** Signatures of several keys: good, high-S, tampered, zero, r out of range, another message; each strict and malleable. */
async function cases() {
  const out: { did: string; msg: Uint8Array; sig: Uint8Array; allow: boolean }[] = []
  for (let i = 0; i < 8; i++) {
    const kp = await Secp256k1Keypair.create()
    const msg = randomBytes(64)
    const sig = Buffer.from(await kp.sign(msg))
    const s = BigInt(`0x${sig.subarray(32).toString('hex')}`)
    const tampered = Buffer.from(sig)
    tampered[40] ^= 4
    const r = sig.subarray(0, 32).toString('hex')
    for (const c of [sig, Buffer.from(r + hex32(N - s), 'hex'), tampered, Buffer.alloc(64), Buffer.from(hex32(N) + hex32(s), 'hex')])
      for (const allow of [true, false]) out.push({ did: kp.did(), msg, sig: c, allow })
    out.push({ did: kp.did(), msg: randomBytes(64), sig, allow: true })
  }
  return out
}

describe.skipIf(!secp256k1Addon)('secp256k1 checks on a thread of their own', () => {
  it('answers as @atproto/crypto does, for checks asked together and one at a time', async () => {
    const thread = new VerifyThread(secp256k1Addon!)
    try {
      const all = await cases()
      const want = await Promise.all(all.map((c) => reference(c.did, c.msg, c.sig, c.allow)))
      const ask = (c: (typeof all)[number]) =>
        verifySignatureNative(c.did, c.msg, c.sig, 'ES256K', { allowMalleableSig: c.allow }, thread).catch(() => 'throws' as const)
      // together: in batches for the thread
      expect(await Promise.all(all.map(ask))).toEqual(want)
      // one at a time
      for (let i = 0; i < all.length; i += 7) expect(await ask(all[i])).toBe(want[i])
      expect(want.filter((w) => w === true).length).toBeGreaterThanOrEqual(16)
    } finally {
      await thread.stop()
    }
  })

  it('sends checks asked for in one turn FLUSH_AT at a time as they come, the rest after the turn', async () => {
    const thread = new VerifyThread(secp256k1Addon!)
    try {
      const addon = secp256k1Addon!
      const checks = await Promise.all(
        Array.from({ length: 2 * FLUSH_AT + 3 }, async (_, i) => {
          const kp = await Secp256k1Keypair.create()
          const msg = randomBytes(32)
          const sig = Buffer.from(await kp.sign(msg))
          if (i % 3 === 0) sig[40] ^= 1
          const hash = createHash('sha256').update(msg).digest()
          const key = addon.publicKeyConvert(Buffer.from(kp.publicKeyBytes()), false)
          return { sig: addon.signatureNormalize(sig), hash, key }
        }),
      )
      const want = checks.map((c) => addon.ecdsaVerify(c.sig, c.hash, c.key))
      const before = thread.batches
      const answers = checks.map((c) => thread.verify(c.sig, c.hash, c.key))
      // the first two batches are with the thread before this turn ends: it verifies them while requests are still read
      expect(thread.batches - before).toBe(2)
      expect(await Promise.all(answers)).toEqual(want)
      expect(thread.batches - before).toBe(3)
      expect(want.filter(Boolean).length).toBe(checks.length - Math.ceil(checks.length / 3))
    } finally {
      await thread.stop()
    }
  })

  it('answers on the calling thread once its thread is gone, checks in flight included', async () => {
    const thread = new VerifyThread(secp256k1Addon!)
    const all = await cases()
    const want = await Promise.all(all.map((c) => reference(c.did, c.msg, c.sig, c.allow)))
    const ask = (c: (typeof all)[number]) =>
      verifySignatureNative(c.did, c.msg, c.sig, 'ES256K', { allowMalleableSig: c.allow }, thread).catch(() => 'throws' as const)
    const inFlight = Promise.all(all.map(ask))
    await thread.stop()
    expect(await inFlight).toEqual(want)
    expect(await Promise.all(all.map(ask))).toEqual(want)
  })
})
