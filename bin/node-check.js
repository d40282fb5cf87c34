// Plain JavaScript that any Node.js can load: it runs before the TypeScript sources, which need Node >= 22.18.

/** The oldest Node.js that runs Skysift's TypeScript sources directly. */
export const MIN_NODE = [22, 18]

/**
 * Null when `version` (like "24.2.0") is new enough, else the one line to
 * print: which Node is running and what to run instead.
 * @param {string} version
 * @returns {string | null}
 */
export function nodeTooOld(version) {
  const [major, minor] = version.split('.').map(Number)
  if (major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1])) return null
  return `skysift: Node.js ${MIN_NODE.join('.')} or newer is needed (this is ${version}). Run ". scripts/use-node.sh" in this shell (it puts Node 24 on PATH), then run the command again.`
}
