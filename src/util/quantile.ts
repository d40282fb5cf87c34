/** The newest `size` values, for percentiles without unbounded memory. */
export class Reservoir {
  private readonly buf: Float64Array
  private n = 0
  private next = 0

  constructor(size = 2048) {
    this.buf = new Float64Array(size)
  }

  add(v: number): void {
    this.buf[this.next] = v
    this.next = (this.next + 1) % this.buf.length
    if (this.n < this.buf.length) this.n++
  }

  values(): number[] {
    return Array.from(this.buf.subarray(0, this.n))
  }
}

/** The q-quantile (0…1) of unsorted values, nearest rank; null when empty. */
export function quantile(values: number[], q: number): number | null {
  if (!values.length) return null
  const s = [...values].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]
}
