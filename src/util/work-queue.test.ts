import { describe, expect, it } from 'vitest'
import { QueueFullError, WorkQueue } from './work-queue.ts'

describe('WorkQueue', () => {
  it('runs one task at a time in order, refuses tasks past maxWaiting, and goes on after a failure', async () => {
    const q = new WorkQueue(2)
    const order: string[] = []
    let running = 0
    const task =
      (name: string, fail = false) =>
      async () => {
        running++
        expect(running).toBe(1)
        order.push(`start ${name}`)
        await new Promise((r) => setTimeout(r, 5))
        order.push(`end ${name}`)
        running--
        if (fail) throw new Error(name)
        return name
      }
    const a = q.run(task('a', true))
    const b = q.run(task('b'))
    const c = q.run(task('c'))
    await expect(q.run(task('d'))).rejects.toBeInstanceOf(QueueFullError)
    expect(q.size).toBe(3)
    await expect(a).rejects.toThrow('a')
    expect(await b).toBe('b')
    expect(await c).toBe('c')
    expect(order).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c'])
    expect(q.size).toBe(0)
    expect(await q.run(task('e'))).toBe('e')
  })
})
