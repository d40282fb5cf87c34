/**
 * More account status churn and post edits than live traffic has, woven into
 * a Jetstream JSONL file (the synthetic stream has about 0.2 % of each): an
 * account of someone who posted recently goes inactive (deactivated, taken
 * down, suspended, deleted) or comes back, and a recent post is edited, at
 * the given rates per line. Each new line gets a time between its
 * neighbours' (time_us stays strictly increasing), and an edit a revision
 * after its post's, as on the network.
 */
import fs from 'node:fs'
import readline from 'node:readline'
import { rng } from './rng.ts'

const B32 = '234567abcdefghijklmnopqrstuvwxyz'
const STATUSES = ['deactivated', 'deactivated', 'takendown', 'suspended', 'deleted']

/** A TID (repo revision) for a time in µs and a clock id. */
function tidAt(us: number, clock: number): string {
  let v = us
  let out = ''
  for (let i = 0; i < 11; i++) {
    out = B32[v % 32] + out
    v = Math.floor(v / 32)
  }
  return out + B32[(clock >> 5) & 31] + B32[clock & 31]
}

/** What addChurn wrote: lines in all, and the account events and edits it added. */
export interface ChurnFigures {
  lines: number
  accountEvents: number
  edits: number
}

/** Copies `src` to `dst` with churn added: `rate` account events and `rate` edits per line, on average. */
export async function addChurn(src: string, dst: string, opts: { seed: number; rate: number }): Promise<ChurnFigures> {
  const r = rng(opts.seed)
  const out = fs.createWriteStream(dst)
  const recent: { did: string; rkey: string; record: Record<string, unknown> }[] = []
  const inactive = new Set<string>()
  const fig: ChurnFigures = { lines: 0, accountEvents: 0, edits: 0 }
  let prevUs = 0
  let pending: { line: string; kind: 'accountEvents' | 'edits' } | null = null
  const write = (line: string) => {
    fig.lines++
    if (!out.write(`${line}\n`)) return new Promise<void>((res) => out.once('drain', () => res()))
  }
  const rl = readline.createInterface({ input: fs.createReadStream(src, { encoding: 'utf8', highWaterMark: 1 << 20 }), crlfDelay: Infinity })
  for await (const line of rl) {
    if (!line.trim()) continue
    const e = JSON.parse(line) as {
      did: string
      time_us: number
      kind: string
      commit?: { operation: string; collection: string; rkey: string; record?: Record<string, unknown> }
    }
    // a line of our own goes between the previous line and this one, at a time of its own
    if (pending && e.time_us - prevUs > 2) {
      fig[pending.kind]++
      await write(pending.line.replace('"time_us":0', `"time_us":${prevUs + 1}`))
    }
    pending = null
    await write(line)
    prevUs = e.time_us
    if (e.kind === 'commit' && e.commit?.collection === 'app.bsky.feed.post' && e.commit.operation === 'create' && e.commit.record) {
      recent.push({ did: e.did, rkey: e.commit.rkey, record: e.commit.record })
      if (recent.length > 2000) recent.splice(0, 1000)
    }
    if (!recent.length) continue
    const roll = r.next()
    if (roll < opts.rate) {
      const did = r.pick(recent).did
      // @NOTE the churn's own idea of who is inactive: the stream's own account events are not followed
      const back = inactive.has(did) && r.next() < 0.8
      if (back) inactive.delete(did)
      else inactive.add(did)
      const account = back ? { active: true, did, seq: 0, time: '' } : { active: false, did, seq: 0, status: r.pick(STATUSES), time: '' }
      pending = { line: JSON.stringify({ did, time_us: 0, kind: 'account', account }), kind: 'accountEvents' }
    } else if (roll < 2 * opts.rate) {
      const p = r.pick(recent.slice(-500))
      // @NOTE cut at a code point, not a UTF-16 unit: half an emoji's surrogate pair is not well-formed text, which the
      // store rightly rejects, and the model would count the edit as stored
      const record = { ...p.record, text: `${Array.from(String(p.record.text)).slice(0, 280).join('')} (edit ${r.int(1000)})` }
      const cid = `bafyreie${Array.from({ length: 51 }, () => B32[r.int(32)]).join('')}`
      const rev = tidAt(prevUs + 1, r.int(1024))
      pending = {
        line: JSON.stringify({
          did: p.did,
          time_us: 0,
          kind: 'commit',
          commit: { rev, operation: 'update', collection: 'app.bsky.feed.post', rkey: p.rkey, record, cid },
        }),
        kind: 'edits',
      }
    }
  }
  if (pending) {
    fig[pending.kind]++
    await write(pending.line.replace('"time_us":0', `"time_us":${prevUs + 1}`))
  }
  await new Promise<void>((res, rej) => out.end((err?: Error | null) => (err ? rej(err) : res())))
  return fig
}
