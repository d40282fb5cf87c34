/** A task was refused because the queue already holds as many as it may. */
export class QueueFullError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'QueueFullError'
  }
}

/**
 * Runs tasks one at a time, in arrival order, with at most `maxWaiting`
 * waiting behind the running one; more are refused with QueueFullError at
 * once. A budget for work a stranger can ask for: however many ask, the
 * process does one such task at a time and remembers a bounded number.
 */
export class WorkQueue {
  private readonly maxWaiting: number
  private tail: Promise<void> = Promise.resolve()
  private queued = 0

  constructor(maxWaiting: number) {
    this.maxWaiting = maxWaiting
  }

  /** Tasks running or waiting now. */
  get size(): number {
    return this.queued
  }

  /** Runs `task` after the ones before it; rejects with QueueFullError when too many wait. */
  run<T>(task: () => Promise<T>): Promise<T> {
    if (this.queued > this.maxWaiting) return Promise.reject(new QueueFullError(`more than ${this.maxWaiting} tasks waiting`))
    this.queued++
    const out = this.tail.then(task)
    this.tail = out.then(
      () => {},
      () => {},
    )
    return out.finally(() => this.queued--)
  }
}

/** Lets the event loop serve what else is waiting (I/O included) before going on. */
export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))
