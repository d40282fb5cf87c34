import { html, raw } from 'hono/html'
import type { HtmlEscapedString } from 'hono/utils/html'
import { QUEUE } from '../../contracts/jobs.ts'
import { series, type Rates, type Sample } from '../../status/sampler.ts'
import { fmtBytes, fmtDuration, sourceStateText, type OpsStatus } from '../../status/status.ts'

type Html = HtmlEscapedString | Promise<HtmlEscapedString>

/** What the admin pages add to the shared stylesheet (/static/skysift.css): a wide grid of panels. */
const STYLE = `
  main.admin { max-width: none; display: grid; grid-template-columns: repeat(auto-fit, minmax(26rem, 1fr)); gap: 1rem; }
  main.admin.narrow { display: block; max-width: 26rem; margin: 3rem auto; }
  main.admin section { background: var(--bg); border: 1px solid var(--line); border-radius: 12px; padding: .4rem 1rem 1rem; overflow-x: auto; }
  main.admin section.wide { grid-column: 1 / -1; }
  main.admin > h1 { grid-column: 1 / -1; margin-bottom: 0; }
  main.admin h2 { font-size: 1.05rem; margin: .5rem 0; }
  main.admin table { font-variant-numeric: tabular-nums; }
  td.n, th.n { text-align: right; }
  .bad { color: var(--down); font-weight: 600; } .ok { color: var(--up); }
  svg text { font: 11px system-ui, sans-serif; fill: #5b6478; }
  .legend span { display: inline-block; margin-right: 1rem; } .sw { display: inline-block; width: .8rem; height: .25rem; vertical-align: middle; margin-right: .3rem; }
`

const num = (n: number | null | undefined, digits = 0) =>
  n === null || n === undefined || !Number.isFinite(n) ? '–' : n.toLocaleString('en-US', { maximumFractionDigits: digits })
const ms = (n: number | null) => (n === null ? '–' : `${num(n, n < 10 ? 2 : 1)} ms`)

/** An admin page: the subscriber pages' stylesheet and top bar, with the admin links. */
function page(title: string, body: Html, opts: { refreshS?: number; links?: Html } = {}) {
  return html`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="robots" content="noindex" />
    ${opts.refreshS ? html`<meta http-equiv="refresh" content="${opts.refreshS}" />` : ''}
    <title>${title}</title>
    <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
    <link rel="stylesheet" href="/static/skysift.css" />
    <style>${raw(STYLE)}</style>
  </head>
  <body>
    <header class="top">
      <a class="brand" href="/">Skysift</a>
      <nav aria-label="Main">
        <ul>
          <li><a href="/feeds">Feeds</a></li>
          <li><a href="/agents">Agents</a></li>
          <li><a href="/admin" aria-current="page">Admin</a></li>
        </ul>
      </nav>
      ${opts.links ? html`<div class="account">${opts.links}</div>` : ''}
    </header>
    ${body}
  </body>
</html>`
}

/** The sign-in form for the admin pages. */
export function signInPage(p: { next: string; error?: string }) {
  return page(
    'Skysift admin — sign in',
    html`<main class="admin narrow">
      <section>
        <h2>Skysift admin</h2>
        <form method="post" action="/admin/login">
          <input type="hidden" name="next" value="${p.next}" />
          <p><label for="token">Admin token (<code>SKYSIFT_ADMIN_TOKEN</code>)</label><br />
          <input id="token" name="token" type="password" autocomplete="current-password" required style="width:100%;font:inherit;padding:.3rem" autofocus /></p>
          ${p.error ? html`<p class="bad" role="alert">${p.error}</p>` : ''}
          <p><button type="submit">Sign in</button></p>
        </form>
      </section>
    </main>`,
  )
}

/**
 * Events/s (left axis) and ingest lag (right axis) over the samples, as
 * inline SVG: no script, no external chart library.
 */
export function chartSvg(samples: Sample[], opts: { width?: number; height?: number } = {}): string {
  const W = opts.width ?? 760
  const H = opts.height ?? 180
  const pad = { l: 52, r: 56, t: 10, b: 22 }
  const pts = series(samples)
  if (pts.length < 2) {
    return `<svg viewBox="0 0 ${W} ${H / 3}" width="100%" role="img" aria-label="Events per second and ingest lag: no samples yet">
  <rect x="0.5" y="0.5" width="${W - 1}" height="${H / 3 - 1}" fill="none" stroke="#eef0f5"/>
  <text x="${W / 2}" y="${H / 6}" text-anchor="middle" dominant-baseline="middle">The chart fills in as samples are taken (every 10 s).</text>
</svg>`
  }
  const t0 = pts[0].t
  const t1 = pts[pts.length - 1].t
  const maxE = niceMax(Math.max(...pts.map((p) => p.eps)))
  const lags = pts.map((p) => p.lagS).filter((v): v is number => v !== null)
  const maxL = niceMax(lags.length ? Math.max(...lags) : 1)
  const x = (t: number) => pad.l + ((t - t0) / Math.max(1, t1 - t0)) * (W - pad.l - pad.r)
  const yE = (v: number) => H - pad.b - (v / maxE) * (H - pad.t - pad.b)
  const yL = (v: number) => H - pad.b - (Math.min(v, maxL) / maxL) * (H - pad.t - pad.b)
  const eLine = pts.map((p) => `${x(p.t).toFixed(1)},${yE(p.eps).toFixed(1)}`).join(' ')
  const lLine = pts
    .filter((p) => p.lagS !== null)
    .map((p) => `${x(p.t).toFixed(1)},${yL(p.lagS!).toFixed(1)}`)
    .join(' ')
  const minutes = Math.round((t1 - t0) / 60_000)
  const grid = [0, 0.5, 1]
    .map((f) => {
      const y = (H - pad.b - f * (H - pad.t - pad.b)).toFixed(1)
      return (
        `<line x1="${pad.l}" x2="${W - pad.r}" y1="${y}" y2="${y}" stroke="#eef0f5"/>` +
        `<text x="${pad.l - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${shortNum(f * maxE)}</text>` +
        `<text x="${W - pad.r + 6}" y="${y}" dominant-baseline="middle">${fmtDuration(f * maxL)}</text>`
      )
    })
    .join('')
  return `<svg viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="Events per second and ingest lag over the last ${minutes} minutes">
  ${grid}
  <text x="${pad.l}" y="${H - 4}">${minutes} min ago</text><text x="${W - pad.r}" y="${H - 4}" text-anchor="end">now</text>
  <polyline fill="none" stroke="#2f6fde" stroke-width="2" points="${eLine}"/>
  ${lLine ? `<polyline fill="none" stroke="#d9822b" stroke-width="1.5" stroke-dasharray="4 3" points="${lLine}"/>` : ''}
</svg>`
}

function niceMax(v: number): number {
  if (!(v > 0)) return 1
  const p = 10 ** Math.floor(Math.log10(v))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p
  return 10 * p
}

const shortNum = (v: number) => (v >= 1e6 ? `${+(v / 1e6).toFixed(1)}M` : v >= 1e3 ? `${+(v / 1e3).toFixed(1)}k` : `${+v.toFixed(v < 10 ? 1 : 0)}`)

function ratesCell(r: Rates | null, kind?: string) {
  if (!r) return '–'
  const v = kind ? (r.kinds[kind] ?? 0) : r.total
  return num(v, v < 10 ? 2 : 0)
}

/** The admin status page. */
export function statusPage(s: OpsStatus, opts: { metricsPath?: string | null } = {}) {
  const kinds = [...new Set([...Object.keys(s.ingest.totals.kinds), ...Object.keys(s.ingest.rates.hour?.kinds ?? {})])].sort(
    (a, b) => (s.ingest.totals.kinds[b] ?? 0) - (s.ingest.totals.kinds[a] ?? 0),
  )
  const lookups = s.cache.fresh + s.cache.stale + s.cache.misses
  const disabled = s.agents.filter((a) => a.status === 'disabled')
  const shownAgents = s.agents.filter((a) => a.calls || a.strikes || a.status === 'disabled')
  return page(
    'Skysift admin',
    html`<main class="admin">
      <h1>Skysift ${s.version} <small class="muted">${new Date(s.at).toISOString().replace('T', ' ').slice(0, 19)} UTC</small></h1>
      <section class="wide" aria-labelledby="h-ingest">
        <h2 id="h-ingest">Ingest</h2>
        <p>Source <code>${s.source}</code>: <span class="${s.sourceState.ingesting || s.sourceState.state === 'finished' ? 'ok' : 'bad'}" id="source-state">${sourceStateText(s.sourceState)}</span> · Redis ${s.redis.ok ? html`<span class="ok">ok</span>` : html`<span class="bad">down: ${s.redis.error}</span>`} · store lag ${fmtDuration(s.store.lagS)}</p>
        <table>
          <tr><th scope="col">cursor of</th><th scope="col">cursor</th><th scope="col" class="n">lag</th><th scope="col" class="n">saved</th></tr>
          ${
            s.ingest.cursors.length
              ? s.ingest.cursors.map(
                  (c) =>
                    html`<tr><td><code>${c.source}</code></td><td><code>${c.cursor}</code></td><td class="n">${fmtDuration(c.lagS)}</td><td class="n">${fmtDuration(c.savedAgoS)} ago</td></tr>`,
                )
              : html`<tr><td colspan="4" class="muted">no cursor saved yet</td></tr>`
          }
        </table>
        <h2>Events stored per second</h2>
        <table>
          <tr><th scope="col">kind</th><th scope="col" class="n">last minute</th><th scope="col" class="n">last hour</th><th scope="col" class="n">total</th></tr>
          <tr><th scope="row">all</th><td class="n">${ratesCell(s.ingest.rates.minute)}</td><td class="n">${ratesCell(s.ingest.rates.hour)}</td><td class="n">${num(s.ingest.totals.stored)}</td></tr>
          ${kinds.map((k) => html`<tr><td>${k}</td><td class="n">${ratesCell(s.ingest.rates.minute, k)}</td><td class="n">${ratesCell(s.ingest.rates.hour, k)}</td><td class="n">${num(s.ingest.totals.kinds[k])}</td></tr>`)}
        </table>
        ${s.ingest.rates.hour ? html`<p class="muted">Rates over the last ${fmtDuration(s.ingest.rates.hour.seconds)} of samples.</p>` : ''}
        <div class="legend"><span><i class="sw" style="background:#2f6fde"></i>events/s (left)</span><span><i class="sw" style="background:#d9822b"></i>ingest lag (right)</span></div>
        ${raw(chartSvg(s.samples))}
        ${
          s.ingest.process
            ? html`<p class="muted">Ingest process ${s.ingest.process.id}: read ${num(s.ingest.process.received)}, queued ${num(s.ingest.process.queued)}, rejected ${num(s.ingest.process.rejected)},
              waited on a full queue ${fmtDuration(s.ingest.process.pausedForBackpressureMs / 1000)}, Redis errors ${num(s.ingest.process.redisErrors)}.</p>`
            : ''
        }
      </section>

      <section aria-labelledby="h-queues">
        <h2 id="h-queues">Queues <a href="/admin/queues" style="font-weight:normal">(board)</a></h2>
        <table>
          <tr><th scope="col">queue</th><th scope="col" class="n">waiting</th><th scope="col" class="n">active</th><th scope="col" class="n">delayed</th><th scope="col" class="n">failed</th><th scope="col" class="n">workers</th></tr>
          ${Object.values(QUEUE).map((q) => {
            const c = s.queues.counts[q]
            const w = s.queues.workers[q]
            return html`<tr><td>${q}</td>${
              c
                ? html`<td class="n">${num(c.waiting + c.prioritized)}</td><td class="n">${num(c.active)}</td><td class="n">${num(c.delayed)}</td><td class="n ${c.failed ? 'bad' : ''}">${num(c.failed)}</td>`
                : html`<td colspan="4" class="muted">unknown</td>`
            }<td class="n">${w === undefined || w < 0 ? '–' : w}</td></tr>`
          })}
        </table>
        ${s.queues.ok ? '' : html`<p class="bad">Queues unreadable: ${s.queues.error}</p>`}
      </section>

      <section aria-labelledby="h-serve">
        <h2 id="h-serve">Serving</h2>
        <table>
          <tr><th scope="row">getFeedSkeleton</th><td>${num(s.skeleton.count)} requests · p50 ${ms(s.skeleton.p50Ms)} · p99 ${ms(s.skeleton.p99Ms)}</td></tr>
          <tr><th scope="row">cache hit rate</th><td>${s.cache.hitRate === null ? '–' : `${num(s.cache.hitRate * 100, 1)}%`} of ${num(lookups)} (fresh ${num(s.cache.fresh)}, stale ${num(s.cache.stale)}, built on request ${num(s.cache.misses)})</td></tr>
          <tr><th scope="row">subscribers</th><td>${num(s.subscribers)}</td></tr>
          <tr><th scope="row">mixes</th><td>${num(s.mixes.private)} private, ${num(s.mixes.record)} from records; ${num(s.mixes.lists)} distinct</td></tr>
        </table>
        <h2>Feeds</h2>
        <table>
          <tr><th scope="col">feed</th><th scope="col" class="n">default list age</th><th scope="col" class="n">build</th><th scope="col" class="n">lists</th><th scope="col" class="n">snapshots</th></tr>
          ${s.cache.feeds.map(
            (f) =>
              html`<tr><td>${f.rkey}</td><td class="n">${f.defaultList ? fmtDuration(f.defaultList.ageS) : '–'}</td><td class="n">${f.defaultList ? ms(f.defaultList.buildMs) : '–'}</td><td class="n">${num(f.lists)}</td><td class="n">${num(f.snapshots)}</td></tr>`,
          )}
        </table>
      </section>

      <section class="wide" aria-labelledby="h-agents">
        <h2 id="h-agents">Agents ${disabled.length ? html`<span class="bad">(${disabled.length} disabled)</span>` : ''}</h2>
        <table>
          <tr><th scope="col">agent</th><th scope="col">kind</th><th scope="col" class="n">calls</th><th scope="col" class="n">posts</th><th scope="col" class="n">p50</th><th scope="col" class="n">p99</th><th scope="col" class="n">strikes</th><th scope="col">status</th></tr>
          ${
            shownAgents.length
              ? shownAgents.map(
                  (
                    a,
                  ) => html`<tr><td title="${a.title}">${a.id}</td><td>${a.kind}</td><td class="n">${num(a.calls)}</td><td class="n">${num(a.posts)}</td><td class="n">${ms(a.p50Ms)}</td><td class="n">${ms(a.p99Ms)}</td>
                  <td class="n ${a.strikes ? 'bad' : ''}">${num(a.strikes)}</td>
                  <td>${a.status === 'disabled' ? html`<span class="bad">disabled</span>: ${a.reason}` : a.lastError ? html`active <span class="muted">(last error: ${a.lastError})</span>` : 'active'}</td></tr>`,
                )
              : html`<tr><td colspan="8" class="muted">no agent has been called yet</td></tr>`
          }
        </table>
      </section>

      <section aria-labelledby="h-store">
        <h2 id="h-store">Storage</h2>
        <table>
          <tr><th scope="row">SQLite</th><td><code>${s.sqlite.file}</code> ${fmtBytes(s.sqlite.bytes)} + WAL ${fmtBytes(s.sqlite.walBytes)}</td></tr>
          <tr><th scope="row">posts</th><td>${num(s.posts.count)}, oldest ${s.posts.oldest ? fmtDuration((s.at - s.posts.oldest) / 1000) : '–'} old</td></tr>
          <tr><th scope="row">retention</th><td>${s.retention.lastRunAt ? `last pass ${fmtDuration((s.at - s.retention.lastRunAt) / 1000)} ago (${num(s.retention.runs)} passes)` : 'no pass yet'}<br />
            <span class="muted">${
              Object.entries(s.retention.deleted)
                .filter(([, v]) => v)
                .map(([k, v]) => `${k} ${num(v)}`)
                .join(', ') || 'nothing removed yet'
            }</span></td></tr>
        </table>
      </section>

      <section aria-labelledby="h-procs">
        <h2 id="h-procs">Processes</h2>
        <table>
          <tr><th scope="col">process</th><th scope="col">roles</th><th scope="col" class="n">up</th><th scope="col" class="n">RSS</th><th scope="col" class="n">report</th></tr>
          ${
            s.processes.length
              ? s.processes.map(
                  (p) =>
                    html`<tr><td><code>${p.id}</code></td><td>${p.roles.join(', ')}</td><td class="n">${fmtDuration(p.uptimeS)}</td><td class="n">${num(p.rssMb, 1)} MB</td><td class="n">${fmtDuration(p.ageS)} old</td></tr>`,
                )
              : html`<tr><td colspan="5" class="muted">no process report in Redis</td></tr>`
          }
        </table>
      </section>
    </main>`,
    {
      refreshS: 10,
      links: html`<a href="/admin/queues">Queues</a>
        ${opts.metricsPath ? html`<a href="${opts.metricsPath}">Metrics</a>` : ''}
        <a href="/admin/api/status">JSON</a>
        <form method="post" action="/admin/logout" class="inline"><button type="submit" class="link">Sign out</button></form>`,
    },
  )
}
