import { hash64 } from '../util/uri-hash.ts'

/**
 * The key a like or repost is stored under in `engagements`: a 64-bit hash
 * of its URI (hash64). An integer key makes the table one
 * small b-tree instead of two large URI-keyed ones. Two URIs share a key with
 * a chance of about n²/2⁶⁵ in n engagements (one in 10⁵ for 20 million); the
 * cost of a collision is one like not counted (or counted down on another
 * post), never a failed batch.
 */
export function engagementKey(uri: string): bigint {
  const h = hash64(uri)
  return BigInt.asIntN(64, (BigInt(h[1]) << 32n) | BigInt(h[0]))
}
