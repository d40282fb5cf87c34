import type { Attribution } from './feed-context.ts'

export interface Reason {
  label: string
  agent: string
  title: string
  /** points this agent added (negative: took away) */
  value: number
  /** what the agent looked for, from its options (e.g. the keywords) */
  detail: string | null
}

export interface Explanation {
  reasons: Reason[]
  /** one plain-language line */
  text: string
}

const quoteList = (xs: unknown, max = 3): string | null => {
  if (!Array.isArray(xs) || xs.length === 0) return null
  const shown = xs.slice(0, max).map((x) => `“${String(x)}”`)
  return shown.join(', ') + (xs.length > max ? ` and ${xs.length - max} more` : '')
}

/** A short description of what an agent instance looks for, from its options. */
export function detailFor(agent: string, options: Record<string, unknown> | undefined): string | null {
  const o = options ?? {}
  switch (agent) {
    case 'keyword':
      return quoteList(o.include)
    case 'hashtags':
      return quoteList(Array.isArray(o.include) ? o.include.map((t) => `#${String(t).replace(/^#/, '')}`) : undefined)
    case 'language':
      return Array.isArray(o.langs) ? o.langs.join(', ') : null
    case 'media':
      return Array.isArray(o.kinds) ? o.kinds.join(', ') : 'images, video'
    case 'follows':
      return typeof o.mode === 'string' && o.mode !== 'followed' ? String(o.mode) : 'people you follow'
    case 'topics':
      return Array.isArray(o.topics) && o.topics.length ? `about ${o.topics.join(', ')}` : 'your app’s interests'
    case 'recency':
      return typeof o.halfLifeHours === 'number' ? `half-life ${o.halfLifeHours} h` : null
    default:
      return null
  }
}

const signed = (v: number) => (v > 0 ? `+${v}` : v < 0 ? `−${Math.abs(v)}` : '0')
const phrase = (r: Reason) => `${r.title}${r.detail ? ` ${r.detail}` : ''} (${signed(r.value)})`

/**
 * Turns an item's attribution into reasons and a sentence such as
 * "Shown because: Keywords “cats” (+62), Recency (+21); held back by: Calm (−5)".
 */
export function explain(a: Attribution, describe: (label: string) => { agent: string; title: string; options?: Record<string, unknown> } | null): Explanation {
  const reasons: Reason[] = a.contributions.map((c) => {
    const d = describe(c.label)
    const agent = d?.agent ?? c.label.replace(/#\d+$/, '')
    return { label: c.label, agent, title: d?.title ?? agent, value: c.value, detail: d ? detailFor(d.agent, d.options) : null }
  })
  const up = reasons.filter((r) => r.value > 0).sort((x, y) => y.value - x.value)
  const down = reasons.filter((r) => r.value < 0).sort((x, y) => x.value - y.value)
  let text: string
  if (!up.length && !down.length) text = 'Shown because it is recent and passed every filter in your mix; no agent moved it up or down.'
  else {
    text = up.length ? `Shown because: ${up.map(phrase).join(', ')}` : 'Shown although no agent lifted it'
    if (down.length) text += `; held back by: ${down.map(phrase).join(', ')}`
    text += '.'
  }
  return { reasons, text }
}
