/**
 * A stage started alone (`node workers/<stage>.ts`) reads `.env` from its
 * working directory as the CLI does, and a variable set in the environment
 * wins over the file. A bad value in the file is how the test sees that it
 * was read: start-up stops before touching Redis or SQLite, naming it.
 */
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { tempDir } from './support/resources.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
// @NOTE each start loads the whole program (some 10 s on a busy machine), hence the long timeouts
const WORKERS = ['ingest', 'score', 'store', 'refresh', 'serve']

const t = tempDir('skysift-worker-env')
afterAll(() => t.cleanup())

async function runWorker(stage: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await promisify(execFile)(process.execPath, [path.join(ROOT, 'workers', `${stage}.ts`)], {
      cwd: t.dir,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      timeout: 80_000,
    })
    return { code: 0, stderr }
  } catch (err) {
    const e = err as { code: number; stderr: string }
    return { code: e.code, stderr: e.stderr }
  }
}

describe('a worker entry', () => {
  it.each(WORKERS)(
    'workers/%s.ts honours .env, and the environment over it',
    async (stage) => {
      fs.writeFileSync(path.join(t.dir, '.env'), 'SKYSIFT_BATCH_SIZE=lots\nSKYSIFT_PORT=not-a-port\n')
      const r = await runWorker(stage, { SKYSIFT_PORT: '3000' })
      expect(r.code).toBe(1)
      expect(r.stderr).toContain(`skysift ${stage}: invalid configuration`)
      expect(r.stderr).toContain('SKYSIFT_BATCH_SIZE')
      expect(r.stderr).toContain('"lots"')
      expect(r.stderr).not.toContain('SKYSIFT_PORT')
    },
    90_000,
  )
})
