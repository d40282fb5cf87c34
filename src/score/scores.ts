/** The checks an agent's output must pass before ranking reads it. */
import { DROP, DROP_CODE } from './sdk.ts'

/**
 * Checks an agent's output and encodes it in one pass: writes each score into `into` (at
 * idx[j], or j) as ranking reads it (NaN for null, DROP_CODE for DROP).
 * Returns why the output is unacceptable, or null.
 */
export function encodeChecked(out: unknown, expected: number, into: Float64Array, idx: number[] | null): string | null {
  if (!Array.isArray(out)) return 'output is not an array'
  if (out.length !== expected) return `output has ${out.length} entries for ${expected} posts`
  for (let j = 0; j < out.length; j++) {
    const v = out[j]
    const at = idx ? idx[j] : j
    if (typeof v === 'number') {
      // @NOTE v - v is 0 for every finite number and NaN for NaN and ±Infinity
      if (v - v !== 0) return `entry ${j} is not a finite number, "drop" or null`
      into[at] = v
    } else if (v === null) into[at] = NaN
    else if (v === DROP) into[at] = DROP_CODE
    else return `entry ${j} is not a finite number, "drop" or null`
  }
  return null
}

/** Why a scoreColumns output is unacceptable (see AgentDefinition.scoreColumns), or null when it is fine. */
export function checkColumn(out: unknown, expected: number): string | null {
  if (!(out instanceof Float64Array)) return 'scoreColumns output is not a Float64Array'
  if (out.length !== expected) return `output has ${out.length} entries for ${expected} posts`
  for (let j = 0; j < out.length; j++) {
    const v = out[j]
    // @NOTE finite numbers, NaN (no opinion) and DROP_CODE pass; +Infinity does not
    if (v - v !== 0 && v === v && v !== DROP_CODE) return `entry ${j} is not a finite number, NaN or -Infinity`
  }
  return null
}

/** Why an agent's output is unacceptable, or null when it is fine (the checks ranking's encoding makes). */
export function checkScores(out: unknown, expected: number): string | null {
  return encodeChecked(out, expected, new Float64Array(expected), null)
}
