/**
 * Run-time agents as they are kept (the `agents` table) and as they are
 * handed to every process (through Redis): what the score and the store
 * side both speak of.
 */

/** How Skysift talks to a remote agent. */
export interface RemoteSettings {
  salt?: string
  rawDids?: boolean
  allowPrivateNetwork?: boolean
  deadlineMs?: number
}

/** An agent's metadata as the admin sees it (options as JSON Schema). */
export interface AgentMeta {
  id: string
  version: string
  title: string
  description: string
  author: string | null
  needs: string[]
  options: unknown
}

/** A run-time agent as the admin sees it. */
export interface AgentRecord {
  id: string
  kind: 'sandboxed' | 'remote'
  status: 'pending' | 'approved' | 'rejected'
  source: string | null
  url: string | null
  config: RemoteSettings
  meta: AgentMeta
  submittedBy: string
  submittedAt: number
  decidedAt: number | null
  note: string | null
  revision: number
}

/** A submitted agent before it is kept (it is kept pending, under a new revision). */
export type AgentSubmission = Omit<AgentRecord, 'status' | 'submittedAt' | 'decidedAt' | 'note' | 'revision'>

/** What every process needs to load an approved agent (distributed through Redis). */
export interface AgentSpec {
  id: string
  kind: 'sandboxed' | 'remote'
  revision: number
  source?: string
  url?: string
  config: RemoteSettings
}
