/** A small seeded PRNG (mulberry32), so a failing run can be repeated with FAULTS_SEED. */
export function rng(seed: number): { next(): number; int(n: number): number; pick<T>(xs: readonly T[]): T; shuffle<T>(xs: T[]): T[] } {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number) => Math.floor(next() * n)
  return {
    next,
    int,
    pick: (xs) => xs[int(xs.length)],
    shuffle: (xs) => {
      for (let i = xs.length - 1; i > 0; i--) {
        const j = int(i + 1)
        ;[xs[i], xs[j]] = [xs[j], xs[i]]
      }
      return xs
    },
  }
}

/** FAULTS_SEED, or a fresh one (printed in the scenario's figures). */
export const SEED = Number(process.env.FAULTS_SEED ?? Math.floor(Math.random() * 1e9))
