import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Lexicons, type LexiconDoc } from '@atproto/lexicon'

export const LEXICONS_DIR = fileURLToPath(new URL('../../lexicons', import.meta.url))

function* walk(dir: string): Generator<string> {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) yield* walk(p)
    else if (e.name.endsWith('.json')) yield p
  }
}

/** The project's own lexicons (app.skysift.*), loaded from lexicons/. */
export function loadSkysiftLexicons(dir = LEXICONS_DIR): Lexicons {
  const docs = [...walk(dir)].map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as LexiconDoc)
  return new Lexicons(docs)
}
