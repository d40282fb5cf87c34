/**
 * The key a like or repost is stored under in `engagements`: a 64-bit hash
 * of its URI (two 32-bit multiply-xorshift lanes over the UTF-16 code units,
 * each mixed with the other at the end). An integer key makes the table one
 * small b-tree instead of two large URI-keyed ones. Two URIs share a key with
 * a chance of about n²/2⁶⁵ in n engagements (one in 10⁵ for 20 million); the
 * cost of a collision is one like not counted (or counted down on another
 * post), never a failed batch.
 */
export function engagementKey(uri: string): bigint {
  let h1 = 0xdeadbeef
  let h2 = 0x41c6ce57
  for (let i = 0; i < uri.length; i++) {
    const c = uri.charCodeAt(i)
    h1 = Math.imul(h1 ^ c, 2654435761)
    h2 = Math.imul(h2 ^ c, 1597334677)
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  return BigInt.asIntN(64, (BigInt(h2 >>> 0) << 32n) | BigInt(h1 >>> 0))
}
