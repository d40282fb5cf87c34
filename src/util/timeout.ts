/** Rejects when `p` has not settled after `ms` (BullMQ waits forever for a Redis connection). */
export function withTimeout<T>(p: Promise<T>, ms: number, what = 'redis'): Promise<T> {
  let t: NodeJS.Timeout
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what} did not answer in ${ms} ms`)), ms)
    }),
  ])
}
