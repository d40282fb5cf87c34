import type { AgentRecord, AgentSpec, AgentSubmission } from '../contracts/agents.ts'
import type { Sqlite } from './db.ts'

interface Row {
  id: string
  kind: 'sandboxed' | 'remote'
  status: 'pending' | 'approved' | 'rejected'
  source: string | null
  url: string | null
  config: string
  meta: string
  submitted_by: string
  submitted_at: number
  decided_at: number | null
  note: string | null
  revision: number
}

const fromRow = (r: Row): AgentRecord => ({
  id: r.id,
  kind: r.kind,
  status: r.status,
  source: r.source,
  url: r.url,
  config: JSON.parse(r.config),
  meta: JSON.parse(r.meta),
  submittedBy: r.submitted_by,
  submittedAt: r.submitted_at,
  decidedAt: r.decided_at,
  note: r.note,
  revision: r.revision,
})

/**
 * Run-time agents in the `agents` table. Every change takes a revision one
 * above the highest, so the highest says whether anything changed.
 */
export class AgentRecords {
  private readonly st

  constructor(db: Sqlite) {
    const p = (sql: string) => db.prepare(sql)
    this.st = {
      get: p('SELECT * FROM agents WHERE id = ?'),
      list: p('SELECT * FROM agents ORDER BY submitted_at DESC'),
      approved: p("SELECT * FROM agents WHERE status = 'approved' ORDER BY id"),
      nextRevision: p('SELECT coalesce(max(revision), 0) + 1 FROM agents').pluck(),
      maxRevision: p('SELECT coalesce(max(revision), 0) FROM agents').pluck(),
      upsert: p(`INSERT INTO agents (id, kind, status, source, url, config, meta, submitted_by, submitted_at, decided_at, note, revision)
        VALUES (@id, @kind, @status, @source, @url, @config, @meta, @submittedBy, @submittedAt, @decidedAt, @note, @revision)
        ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, status = excluded.status, source = excluded.source, url = excluded.url,
          config = excluded.config, meta = excluded.meta, submitted_by = excluded.submitted_by, submitted_at = excluded.submitted_at,
          decided_at = excluded.decided_at, note = excluded.note, revision = excluded.revision`),
      decide: p('UPDATE agents SET status = ?, decided_at = ?, note = ?, revision = ? WHERE id = ?'),
      remove: p('DELETE FROM agents WHERE id = ?'),
    }
  }

  get(id: string): AgentRecord | undefined {
    const r = this.st.get.get(id) as Row | undefined
    return r && fromRow(r)
  }

  /** Every agent, the newest submission first. */
  list(): AgentRecord[] {
    return (this.st.list.all() as Row[]).map(fromRow)
  }

  /** A number that changes whenever any agent changes. */
  revision(): number {
    return this.st.maxRevision.get() as number
  }

  /** Specs of every approved agent. */
  approvedSpecs(): AgentSpec[] {
    return (this.st.approved.all() as Row[]).map((r) => {
      const a = fromRow(r)
      return { id: a.id, kind: a.kind, revision: a.revision, config: a.config, ...(a.source ? { source: a.source } : {}), ...(a.url ? { url: a.url } : {}) }
    })
  }

  /** Keeps a submission as pending (replacing an earlier one of the same id); returns it as kept. */
  savePending(a: AgentSubmission, at = Date.now()): AgentRecord {
    const rec: AgentRecord = { ...a, status: 'pending', submittedAt: at, decidedAt: null, note: null, revision: this.st.nextRevision.get() as number }
    this.st.upsert.run({ ...rec, config: JSON.stringify(rec.config), meta: JSON.stringify(rec.meta) })
    return rec
  }

  /** Records the admin's decision on an agent. */
  decide(id: string, status: 'approved' | 'rejected', note: string | null, at = Date.now()): void {
    this.st.decide.run(status, at, note, this.st.nextRevision.get(), id)
  }

  /** Removes an agent; false when there was none. */
  remove(id: string): boolean {
    return this.st.remove.run(id).changes > 0
  }
}
