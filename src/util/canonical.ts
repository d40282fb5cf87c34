import { createHash } from 'node:crypto'

/** JSON with object keys sorted, so equal values always give equal strings. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value))
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys)
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {}
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k]
      if (x !== undefined) out[k] = sortKeys(x)
    }
    return out
  }
  return v
}

/** A short, stable hex digest. */
export function shortHash(s: string, len = 16): string {
  return createHash('sha256').update(s).digest('hex').slice(0, len)
}

/** How deeply agent options may nest (arrays and objects), in mixes and mix records alike. */
export const MAX_OPTIONS_DEPTH = 32

/**
 * True when a JSON-like value nests arrays or objects deeper than `limit`
 * levels. Iterative, so a hostile 100,000-deep value cannot overflow the
 * stack the way a recursive walk (or `JSON.stringify`) would.
 */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]]
  while (stack.length) {
    const [v, depth] = stack.pop()!
    if (!v || typeof v !== 'object') continue
    if (depth >= limit) return true
    for (const x of Array.isArray(v) ? v : Object.values(v)) if (x && typeof x === 'object') stack.push([x, depth + 1])
  }
  return false
}
