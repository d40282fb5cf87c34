/**
 * A real Chromium for end-to-end tests, driven by playwright-core (no
 * browser download: the system's /usr/bin/chromium, e.g. from Debian's
 * `chromium` package). Each launch gets a fresh profile folder, removed on
 * close. Set SKYSIFT_CHROMIUM to use another binary.
 */
import fs from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'

export const CHROMIUM_PATH = process.env.SKYSIFT_CHROMIUM ?? '/usr/bin/chromium'

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

export interface TestBrowser {
  context: BrowserContext
  page: Page
  /** the profile folder (removed by close) */
  profileDir: string
  close(): Promise<void>
}

/** True when a Chromium binary is installed where launchBrowser looks. */
export const haveChromium = (): boolean => fs.existsSync(CHROMIUM_PATH)

/**
 * Launches headless Chromium with a fresh profile. `hostRules` become
 * --host-resolver-rules (e.g. "MAP *.test 127.0.0.1"), to keep every name on
 * this machine.
 */
export async function launchBrowser(
  opts: { hostRules?: string; viewport?: { width: number; height: number }; javaScriptEnabled?: boolean } = {},
): Promise<TestBrowser> {
  const profileDir = await mkdtemp(path.join(os.tmpdir(), 'skysift-chromium-'))
  // @NOTE the profile folder is passed as launchPersistentContext's userDataDir (Playwright refuses --user-data-dir in args)
  const args = [...CHROMIUM_ARGS]
  if (opts.hostRules) args.push(`--host-resolver-rules=${opts.hostRules}`)
  let context: BrowserContext
  try {
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args,
      viewport: opts.viewport ?? { width: 1200, height: 900 },
      locale: 'en-US',
      javaScriptEnabled: opts.javaScriptEnabled ?? true,
      timeout: 60_000,
    })
  } catch (err) {
    await rm(profileDir, { recursive: true, force: true })
    throw err
  }
  const page = context.pages()[0] ?? (await context.newPage())
  let closing: Promise<void> | undefined
  return {
    context,
    page,
    profileDir,
    close: () =>
      (closing ??= (async () => {
        try {
          await context.close()
        } finally {
          await rm(profileDir, { recursive: true, force: true })
        }
      })()),
  }
}

/** Width and height from a PNG's IHDR chunk. */
export function pngSize(png: Buffer): { width: number; height: number } {
  if (png.length < 24 || png.readUInt32BE(0) !== 0x89504e47 || png.toString('ascii', 12, 16) !== 'IHDR') throw new Error('not a PNG')
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) }
}
