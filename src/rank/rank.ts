import { DROP, type Score } from '../score/sdk.ts'

/** One agent's scores for every candidate, with the subscriber's weight. */
export interface ScoreColumn {
  label: string
  weight: number
  scores: Score[]
}

export interface Candidate {
  uri: string
  createdAt: number
}

export interface RankedItem {
  uri: string
  score: number
  contributions: { label: string; value: number }[]
}

/**
 * Blends agents' scores into one ranked list. Each agent's numbers are
 * min-max normalized over the candidates, so a weight means the same for
 * every agent: an agent at weight w moves a post by at most w points. Any
 * DROP removes the post; null counts as zero. Ties go to the newer post.
 * Pure: the same input always gives the same list.
 */
export function rankCandidates(candidates: Candidate[], columns: ScoreColumn[], limit: number): RankedItem[] {
  const n = candidates.length
  const dropped = new Uint8Array(n)
  const total = new Float64Array(n)
  const norm: Float64Array[] = []
  for (const col of columns) {
    let min = Infinity
    let max = -Infinity
    for (let i = 0; i < n; i++) {
      const v = col.scores[i]
      if (v === DROP) dropped[i] = 1
      else if (typeof v === 'number') {
        if (v < min) min = v
        if (v > max) max = v
      }
    }
    const span = max - min
    const out = new Float64Array(n)
    for (let i = 0; i < n; i++) {
      const v = col.scores[i]
      if (typeof v !== 'number') continue
      const x = span > 0 ? (v - min) / span : Math.min(1, Math.max(0, v))
      out[i] = col.weight * x
      total[i] += out[i]
    }
    norm.push(out)
  }
  let order: number[] = []
  for (let i = 0; i < n; i++) if (!dropped[i]) order.push(i)
  // @NOTE only the best `limit` are kept: those with a total at least the limit-th largest (a numeric typed-array
  // sort, far cheaper than sorting every candidate with the comparator) are sorted; the result is the same
  if (order.length > 2 * limit && limit > 0) {
    const totals = new Float64Array(order.length)
    for (let k = 0; k < order.length; k++) totals[k] = total[order[k]]
    totals.sort()
    const threshold = totals[totals.length - limit]
    order = order.filter((i) => total[i] >= threshold)
  }
  order.sort((a, b) => total[b] - total[a] || candidates[b].createdAt - candidates[a].createdAt || (candidates[a].uri < candidates[b].uri ? 1 : -1))
  const top = order.slice(0, limit)
  return top.map((i) => ({
    uri: candidates[i].uri,
    score: total[i],
    contributions: columns.map((c, j) => ({ label: c.label, value: norm[j][i] })),
  }))
}
