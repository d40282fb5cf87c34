import type { ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { readConfig, type Config } from '../../src/config.ts'
import { deleteQueueKeys } from '../../src/contracts/queues.ts'

/**
 * The Redis every test uses: $REDIS_URL, or the local default. Tests reach Redis through this
 * (directly or through testConfig) so that a run pointed at another server touches nothing else.
 */
export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379'

/**
 * The configuration a test runs with: the defaults, `overrides`, and REDIS_URL; nothing else is read
 * from the environment, so a developer's SKYSIFT_* variables do not leak into a test.
 */
export function testConfig(overrides: Partial<Config> = {}): Readonly<Config> {
  return readConfig({ REDIS_URL }, overrides)
}

/** A fresh folder under the OS temp dir, removed by the returned cleanup. */
export function tempDir(label = 'skysift-test'): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${label}-`))
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

/** A unique BullMQ prefix for one test, and a cleanup that deletes its keys. */
export function queuePrefix(): { prefix: string; cleanup: () => Promise<void> } {
  const prefix = `{test-${randomUUID().slice(0, 8)}}`
  return {
    prefix,
    async cleanup() {
      await deleteQueueKeys(REDIS_URL, prefix)
    },
  }
}

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(check: () => T | Promise<T>, what: string, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await check()
      if (v) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/**
 * Polls `fn` until it returns something other than undefined or false, or
 * fails saying what it last saw.
 */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 90_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v !== undefined && v !== false) return v
      last = v
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`)
    }
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** Collects a child process's JSON log lines (stdout and stderr) into `lines` as they arrive; other output is skipped. */
export function collectJsonLines<T>(child: ChildProcess, lines: T[]): void {
  let buf = ''
  const take = (chunk: Buffer) => {
    buf += chunk.toString('utf8')
    let i: number
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      try {
        lines.push(JSON.parse(line) as T)
      } catch {
        // not a log line
      }
    }
  }
  child.stdout?.on('data', take)
  child.stderr?.on('data', take)
}
