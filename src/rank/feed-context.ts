/**
 * feedContext: a compact attribution per feed item, passed through the
 * AppView and back to us in sendInteractions. It says which feed and mix
 * the item came from and which agents moved it by how much, so "why am I
 * seeing this" and feedback can name them.
 * Format: `v1|<mix fingerprint>|recency:+21,keyword:+62,calm:-5|<feed rkey>`.
 */
export interface Attribution {
  fingerprint: string
  contributions: { label: string; value: number }[]
  /** record key of the feed the item was served in */
  feed?: string
}

export const MAX_FEED_CONTEXT = 2000
const MAX_PARTS = 8
const PART_RE = /^([a-z0-9-]{1,64}(?:#\d{1,2})?):([+-]\d{1,4})$/
const RKEY_RE = /^[a-zA-Z0-9._~-]{1,15}$/

export function encodeFeedContext(a: Attribution): string {
  const parts = a.contributions
    .filter((c) => Math.round(c.value) !== 0)
    .sort((x, y) => Math.abs(y.value) - Math.abs(x.value))
    .slice(0, MAX_PARTS)
    .map((c) => {
      const v = Math.round(c.value)
      return `${c.label}:${v > 0 ? '+' : ''}${v}`
    })
  return `v1|${a.fingerprint}|${parts.join(',')}${a.feed ? `|${a.feed}` : ''}`.slice(0, MAX_FEED_CONTEXT)
}

/** Parses a feedContext; null when it is not one of ours. */
export function decodeFeedContext(s: string): Attribution | null {
  if (typeof s !== 'string' || s.length > MAX_FEED_CONTEXT) return null
  const [v, fingerprint, body, feed, extra] = s.split('|')
  if (v !== 'v1' || body === undefined || extra !== undefined || !/^[0-9a-f]{1,64}$/.test(fingerprint)) return null
  if (feed !== undefined && !RKEY_RE.test(feed)) return null
  const contributions: Attribution['contributions'] = []
  if (body) {
    for (const part of body.split(',')) {
      const m = PART_RE.exec(part)
      if (!m) return null
      contributions.push({ label: m[1], value: Number(m[2]) })
    }
  }
  return feed === undefined ? { fingerprint, contributions } : { fingerprint, contributions, feed }
}
