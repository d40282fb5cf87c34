/** The oldest Node.js that runs Skysift's TypeScript sources directly. */
export declare const MIN_NODE: [number, number]
/** Null when `version` (like "24.2.0") is new enough, else the one line to print: which Node is running and what to run instead. */
export declare function nodeTooOld(version: string): string | null
