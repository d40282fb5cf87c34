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
