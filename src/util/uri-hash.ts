/**
 * A 64-bit hash of a string as two unsigned 32-bit halves: two 32-bit
 * multiply-xorshift lanes over the UTF-16 code units, each mixed with the
 * other at the end. Fast (no allocation) and well spread, not cryptographic.
 * The pair is returned in a shared array, valid until the next call.
 */
export function hash64(s: string): Uint32Array {
  let h1 = 0xdeadbeef
  let h2 = 0x41c6ce57
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    h1 = Math.imul(h1 ^ c, 2654435761)
    h2 = Math.imul(h2 ^ c, 1597334677)
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  out[0] = h1
  out[1] = h2
  return out
}

const out = new Uint32Array(2)

/**
 * The key the like graph knows a post by: the low 53 bits of hash64 of its
 * URI, a plain number so that a lookup needs no BigInt. Two posts share a
 * key with a chance of about n²/2⁵⁴; the cost of one is a post lifted by
 * another's likes.
 */
export function postKey(uri: string): number {
  const h = hash64(uri)
  return (h[1] & 0x1fffff) * 0x100000000 + h[0]
}

/** The key the like graph knows an account by: the low 53 bits of hash64 of its DID (as postKey). */
export const actorKey: (did: string) => number = postKey
