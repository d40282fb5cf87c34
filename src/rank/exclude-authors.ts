/**
 * Positions (of `n`, or of `keep` when given) whose author `excluded` does
 * not name; `keep` itself (null: every position) when no author is excluded
 * or there is no excluder.
 */
export function withoutAuthors(
  keep: Int32Array | null,
  n: number,
  authorAt: (i: number) => string,
  excluded: ((author: string) => boolean) | null,
): Int32Array | null {
  if (!excluded) return keep
  const m = keep ? keep.length : n
  const out = new Int32Array(m)
  let w = 0
  for (let k = 0; k < m; k++) {
    const i = keep ? keep[k] : k
    if (!excluded(authorAt(i))) out[w++] = i
  }
  return w === m ? keep : out.subarray(0, w)
}
