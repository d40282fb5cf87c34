import type { IngestEvent } from '../contracts/events.ts'
import type { Sqlite } from './db.ts'
import type { BatchWriter } from './writer.ts'
import type { StoreBatch } from '../contracts/jobs.ts'

/** Counters the store keeps per event kind: `events:<kind>` in the `counters` table. */
export const KIND_COUNTER_PREFIX = 'events:'

/** How many events of each kind a batch holds. */
export function countKinds(events: IngestEvent[]): Map<string, number> {
  const n = new Map<string, number>()
  for (const e of events) n.set(e.t, (n.get(e.t) ?? 0) + 1)
  return n
}

/**
 * Makes a writer also count stored events by kind (`events:<kind>` in the
 * `counters` table), in the same transaction as the batch: a batch is
 * counted exactly when it is stored. Wraps `write`, which `writeGroup` also
 * goes through for each batch. Returns the same writer.
 */
export function countEventKinds<W extends Pick<BatchWriter, 'write'>>(db: Sqlite, writer: W): W {
  const write = writer.write.bind(writer)
  const bump = db.prepare('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value')
  const tx = db.transaction((batch: StoreBatch) => {
    const result = write(batch)
    for (const [kind, n] of countKinds(batch.events)) bump.run(KIND_COUNTER_PREFIX + kind, n)
    return result
  })
  // @NOTE IMMEDIATE like the writer's own transaction (a deferred one could meet SQLITE_BUSY when it starts writing);
  // inside a group transaction (writeGroup calls write per batch) this is a savepoint, rolled back with a failed batch
  writer.write = (batch: StoreBatch) => tx.immediate(batch)
  return writer
}
