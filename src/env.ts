import fs from 'node:fs'

/**
 * Loads `.env` from the working directory into process.env, if there is one.
 * Every process entry calls it before reading its configuration (the CLI and
 * each `node workers/*.ts`). Variables already set in the environment win.
 */
export function loadDotEnv(file = '.env'): void {
  if (fs.existsSync(file)) process.loadEnvFile(file)
}
