import { DROP, DROP_CODE, type Score } from '../score/sdk.ts'

/** One agent's scores for every candidate, with the subscriber's weight. */
export interface ScoreColumn {
  label: string
  weight: number
  /** as agents answer, or encoded (see encodeScores) */
  scores: Score[] | Float64Array
}

/** In an encoded column: the agent drops the post. (Agents' scores are finite, so the infinities are free.) */
export { DROP_CODE }

/**
 * Scores as one typed array, the form ranking reads fastest: a number as
 * itself, DROP as DROP_CODE, null (no opinion) as NaN.
 */
export function encodeScores(scores: Score[], out = new Float64Array(scores.length)): Float64Array {
  for (let i = 0; i < scores.length; i++) {
    const v = scores[i]
    out[i] = typeof v === 'number' ? v : v === DROP ? DROP_CODE : NaN
  }
  return out
}

export interface Candidate {
  uri: string
  createdAt: number
}

/** Candidates by position: an array, or a view that fetches the few that ranking reads (ties and the top) when asked. */
export interface Candidates {
  readonly length: number
  at(i: number): Candidate | undefined
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
 *
 * (ListBuilder passes only the candidates no static agent dropped, so the
 * normalization is over the posts that can be shown.)
 */
export function rankCandidates(candidates: Candidates, columns: ScoreColumn[], limit: number): RankedItem[] {
  const n = candidates.length
  const dropped = new Uint8Array(n)
  const total = new Float64Array(n)
  // what a column adds to a post: weight · (score − min) / span (0 for no opinion), also for the attributions below
  const cols = columns.map((col) => ({
    scores: col.scores instanceof Float64Array ? col.scores : encodeScores(col.scores),
    min: 0,
    span: 0,
    weight: col.weight,
  }))
  for (const col of cols) {
    const scores = col.scores
    let min = Infinity
    let max = -Infinity
    for (let i = 0; i < n; i++) {
      const v = scores[i]
      if (v === DROP_CODE) dropped[i] = 1
      else if (v === v) {
        if (v < min) min = v
        if (v > max) max = v
      }
    }
    col.min = min
    col.span = max - min
    const w = col.weight
    if (col.span > 0) {
      const scale = w / col.span
      for (let i = 0; i < n; i++) {
        const v = scores[i]
        // @NOTE NaN (no opinion) and dropped posts add nothing
        if (v === v && v !== DROP_CODE) total[i] += (v - min) * scale
      }
    } else {
      for (let i = 0; i < n; i++) {
        const v = scores[i]
        if (v === v && v !== DROP_CODE) total[i] += w * Math.min(1, Math.max(0, v))
      }
    }
  }
  const kept = new Int32Array(n)
  let m = 0
  for (let i = 0; i < n; i++) if (!dropped[i]) kept[m++] = i
  const order: number[] = []
  // @NOTE only the best `limit` are kept: those with a total at least the limit-th largest (found by selection, far
  // cheaper than sorting every candidate with the comparator) are sorted; the result is the same
  if (m > 2 * limit && limit > 0) {
    const totals = new Float64Array(m)
    for (let k = 0; k < m; k++) totals[k] = total[kept[k]]
    const threshold = kthLargest(totals, limit)
    for (let k = 0; k < m; k++) if (total[kept[k]] >= threshold) order.push(kept[k])
  } else {
    for (let k = 0; k < m; k++) order.push(kept[k])
  }
  const at = (i: number) => candidates.at(i)!
  order.sort((a, b) => total[b] - total[a] || at(b).createdAt - at(a).createdAt || (at(a).uri < at(b).uri ? 1 : -1))
  const top = order.slice(0, limit)
  return top.map((i) => ({
    uri: at(i).uri,
    score: total[i],
    contributions: columns.map((c, j) => ({ label: c.label, value: contribution(cols[j], i) })),
  }))
}

/** What one column added to post i's total (the same arithmetic as the total's). */
function contribution(col: { scores: Float64Array; min: number; span: number; weight: number }, i: number): number {
  const v = col.scores[i]
  if (v !== v || v === DROP_CODE) return 0
  return col.span > 0 ? (v - col.min) * (col.weight / col.span) : col.weight * Math.min(1, Math.max(0, v))
}

/** The k-th largest value of `a` (1 ≤ k ≤ a.length), in linear expected time; reorders `a`. */
export function kthLargest(a: Float64Array, k: number): number {
  // the (length − k)-th smallest, by quickselect with a median-of-three pivot
  const target = a.length - k
  let lo = 0
  let hi = a.length - 1
  while (hi > lo) {
    const mid = (lo + hi) >>> 1
    // median of a[lo], a[mid], a[hi] into a[mid]
    if (a[mid] < a[lo]) swap(a, mid, lo)
    if (a[hi] < a[lo]) swap(a, hi, lo)
    if (a[hi] < a[mid]) swap(a, hi, mid)
    const pivot = a[mid]
    let i = lo
    let j = hi
    while (i <= j) {
      while (a[i] < pivot) i++
      while (a[j] > pivot) j--
      if (i <= j) swap(a, i++, j--)
    }
    if (target <= j) hi = j
    else if (target >= i) lo = i
    else break
  }
  return a[target]
}

function swap(a: Float64Array, i: number, j: number): void {
  const t = a[i]
  a[i] = a[j]
  a[j] = t
}
