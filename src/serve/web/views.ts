/**
 * Server-rendered pages for subscribers (hono/html; every interpolation is
 * escaped). They work without JavaScript; /static/skysift.js only enhances.
 */
import { html, raw } from 'hono/html'
import type { HtmlEscapedString } from 'hono/utils/html'
import type { Feed } from '../../feeds.ts'
import type { Explanation } from '../../rank/explain.ts'
import { eventLabel } from '../../rank/feedback.ts'
import type { MixView } from '../../feed/mixes.ts'
import type { MixEntry } from '../../rank/mix.ts'
import type { AgentUsage } from '../../feed/usage.ts'
import type { AgentStatus } from '../../score/host.ts'
import { booleanValue, checkedValues, displayValue, fieldForProblem, type FieldProblem, type FormRow, type OptionField, type OptionsForm } from './forms.ts'

type Html = HtmlEscapedString | Promise<HtmlEscapedString>

export interface PageChrome {
  title: string
  nav: 'home' | 'feeds' | 'agents' | 'settings' | 'signin' | 'other'
  session: { did: string; handle: string | null } | null
  csrf: string
  version: string
  serviceDid: string
}

export interface CatalogAgent {
  status: AgentStatus
  usage: AgentUsage
  form: OptionsForm
}

const idOf = (field: string) => `f-${field.replace(/[^A-Za-z0-9_-]+/g, '-')}`
const errIdOf = (field: string) => `err-${field.replace(/[^A-Za-z0-9_-]+/g, '-')}`
const signed = (n: number) => (n > 0 ? `+${n}` : n < 0 ? `−${Math.abs(n)}` : '0')
const shortDid = (did: string) => (did.length > 28 ? `${did.slice(0, 24)}…` : did)
const when = (ms: number) => html`<time datetime="${new Date(ms).toISOString()}">${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC</time>`

export const csrfField = (token: string) => html`<input type="hidden" name="_csrf" value="${token}" />`

function layout(p: PageChrome, body: Html): Html {
  const who = p.session ? (p.session.handle ? `@${p.session.handle}` : shortDid(p.session.did)) : null
  const current = (n: PageChrome['nav']) => (p.nav === n ? raw(' aria-current="page"') : '')
  return html`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>${p.title} · Skysift</title>
    <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
    <link rel="stylesheet" href="/static/skysift.css" />
    <script src="/static/skysift.js" defer></script>
  </head>
  <body>
    <a class="skip" href="#main">Skip to content</a>
    <header class="top">
      <a class="brand" href="/"${current('home')}>Skysift</a>
      <nav aria-label="Main">
        <ul>
          <li><a href="/feeds"${current('feeds')}>Feeds</a></li>
          <li><a href="/agents"${current('agents')}>Agents</a></li>
        </ul>
      </nav>
      <div class="account">
        ${
          who
            ? html`<span>Signed in as <strong>${who}</strong></span>
              <form method="post" action="/signout" class="inline">${csrfField(p.csrf)}<button type="submit" class="link">Sign out</button></form>`
            : html`<a href="/signin"${current('signin')}>Sign in</a>`
        }
      </div>
    </header>
    <main id="main" tabindex="-1">${body}</main>
    <footer class="foot">Skysift v${p.version} · feed generator <code>${p.serviceDid}</code></footer>
  </body>
</html>`
}

function optionsSummary(options: Record<string, unknown> | undefined): Html {
  const entries = Object.entries(options ?? {})
  if (!entries.length) return html`<span class="muted">defaults</span>`
  return html`${entries.map(([k, v], i) => html`${i ? '; ' : ''}<span class="opt"><span class="opt-k">${k}</span>: ${Array.isArray(v) ? v.join(', ') : typeof v === 'object' ? JSON.stringify(v) : String(v)}</span>`)}`
}

function mixTable(caption: string, entries: MixEntry[], titles: Map<string, string>, nudges?: number[]): Html {
  return html`<table class="mix">
    <caption>${caption}</caption>
    <thead><tr><th scope="col">Agent</th><th scope="col">Weight</th>${nudges ? html`<th scope="col">From your feedback</th>` : ''}<th scope="col">Options</th></tr></thead>
    <tbody>
      ${entries.map(
        (e, i) => html`<tr>
          <td><a href="/agents#agent-${e.agent}">${titles.get(e.agent) ?? e.agent}</a></td>
          <td class="num">${signed(e.weight)}</td>
          ${nudges ? html`<td class="num">${nudges[i] ? html`<span class="${nudges[i] > 0 ? 'up' : 'down'}">${signed(nudges[i])}</span> → ${signed(e.weight + nudges[i])}` : html`<span class="muted">none</span>`}</td>` : ''}
          <td>${optionsSummary(e.options)}</td>
        </tr>`,
      )}
    </tbody>
  </table>`
}

/** The hosted feeds as cards, with their default mixes; `detailed` adds the base mix and the window. */
function feedCards(feeds: Feed[], titles: Map<string, string>, detailed: boolean): Html {
  return html`<ul class="cards">
    ${feeds.map(
      (f) => html`<li class="card">
        <section aria-labelledby="feed-${f.rkey}">
          <h2 id="feed-${f.rkey}">${f.displayName}</h2>
          <p>${f.description ?? ''}</p>
          ${mixTable(detailed ? 'Default mix (what new readers get)' : 'Default mix', f.defaults.agents, titles)}
          ${detailed && f.base.length ? mixTable('Always applied (defines the feed)', f.base, titles) : ''}
          <p class="small">${detailed ? `Posts from the last ${f.windowHours} hours · feed URI ` : 'Feed URI '}<code>${f.uri}</code></p>
          <p><a class="button" href="/feeds/${f.rkey}/settings">Choose your mix<span class="visually-hidden"> for ${f.displayName}</span></a></p>
        </section>
      </li>`,
    )}
  </ul>`
}

/** The hosted feeds, with their default mixes. */
export function feedsPage(p: PageChrome & { feeds: Feed[]; agents: CatalogAgent[] }): Html {
  const titles = new Map(p.agents.map((a) => [a.status.id, a.status.title]))
  return layout(
    p,
    html`<h1>Feeds you can shape</h1>
      <p class="lead">Each feed here is ranked by <a href="/agents">agents</a>: small filters and rankers. Subscribe in any Bluesky app, then choose which agents rank <em>your</em> copy of the feed and how much each one counts.</p>
      <p>Every post a feed serves carries its reasons: on your settings page, the “Why this post?” links of a preview and of your feedback open a plain-language explanation of how each agent in your mix moved it.</p>
      ${feedCards(p.feeds, titles, true)}`,
  )
}

function schemaSummary(f: OptionField): string {
  const bits: string[] = []
  switch (f.kind) {
    case 'text':
      bits.push('text')
      break
    case 'number':
      bits.push(f.integer ? 'whole number' : 'number')
      if (f.min !== undefined) bits.push(`${f.exclusiveMin ? 'above' : 'from'} ${f.min}`)
      if (f.max !== undefined) bits.push(`${f.exclusiveMax ? 'below' : 'up to'} ${f.max}`)
      break
    case 'boolean':
      bits.push('yes / no')
      break
    case 'enum':
      bits.push(`one of ${f.values.join(', ')}`)
      break
    case 'list':
      bits.push('list of words')
      break
    case 'multi':
      bits.push(`any of ${f.values.join(', ')}`)
      break
  }
  if (f.required) bits.push('required')
  const d = f.default
  if (d !== undefined && !(Array.isArray(d) && d.length === 0)) bits.push(`default ${Array.isArray(d) ? d.join(', ') : String(d)}`)
  return bits.join(' · ')
}

/** The agents this server can run. */
export function agentsPage(p: PageChrome & { agents: CatalogAgent[] }): Html {
  return layout(
    p,
    html`<h1>Agents</h1>
      <p class="lead">Agents score posts; your mix says how much each one counts. A positive weight lifts what an agent likes, a negative one pushes it down, and an agent that filters can drop posts outright.</p>
      <ul class="cards">
        ${p.agents.map(({ status: a, usage: u, form }) => {
          return html`<li class="card">
            <section aria-labelledby="agent-${a.id}-title" id="agent-${a.id}">
              <h2 id="agent-${a.id}-title">${a.title} <small class="muted">(${a.id})</small></h2>
              <p>${a.description}</p>
              <dl class="facts">
                <div><dt>Kind</dt><dd>${a.kind}</dd></div>
                <div><dt>Author</dt><dd>${a.author ?? 'Skysift'}</dd></div>
                <div><dt>Version</dt><dd>${a.version}</dd></div>
                <div><dt>Status</dt><dd>${a.status === 'active' ? 'active' : html`<strong class="down">disabled</strong>${a.reason ? html` — ${a.reason}` : ''}`}</dd></div>
                <div><dt>Used in</dt><dd>${u.mixes} reader mix${u.mixes === 1 ? '' : 'es'}, ${u.feedDefaults} feed default${u.feedDefaults === 1 ? '' : 's'}</dd></div>
                <div><dt>Items shaped</dt><dd>${u.itemsShaped}</dd></div>
              </dl>
              ${
                form.kind === 'json'
                  ? html`<p>Options: <code>${JSON.stringify(a.options)}</code></p>`
                  : form.fields.length
                    ? html`<table>
                      <caption>Options</caption>
                      <thead><tr><th scope="col">Option</th><th scope="col">Accepts</th></tr></thead>
                      <tbody>${form.fields.map((f) => html`<tr><td><code>${f.name}</code>${f.description ? html`<div class="small">${f.description}</div>` : ''}</td><td>${schemaSummary(f)}</td></tr>`)}</tbody>
                    </table>`
                    : html`<p class="muted">No options.</p>`
              }
            </section>
          </li>`
        })}
      </ul>`,
  )
}

export function signinPage(p: PageChrome & { next: string; error?: string; handle?: string }): Html {
  return layout(
    p,
    html`<h1>Sign in</h1>
      <p class="lead">Sign in with your Bluesky (AT Protocol) account to choose your own mixes. You will confirm on your account's server; Skysift never sees your password.</p>
      ${p.error ? html`<div class="errors" role="alert" id="signin-error"><p>${p.error}</p></div>` : ''}
      <form method="post" action="/signin" class="stack">
        ${csrfField(p.csrf)}
        <input type="hidden" name="next" value="${p.next}" />
        <label for="handle">Your handle or DID</label>
        <input id="handle" name="handle" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required placeholder="alice.bsky.social" value="${p.handle ?? ''}"${p.error ? raw(' aria-invalid="true" aria-describedby="signin-error"') : ''} />
        <p class="small">You may also enter the address of your account's server (for example https://bsky.social).</p>
        <button type="submit">Sign in</button>
      </form>`,
  )
}

/** The landing page: what this server is, and the feeds it hosts with their default mixes. */
export function homePage(p: PageChrome & { feeds: Feed[]; agents: CatalogAgent[] }): Html {
  const titles = new Map(p.agents.map((a) => [a.status.id, a.status.title]))
  return layout(
    p,
    html`<h1>Feeds where you choose the algorithm</h1>
      <p class="lead">Each feed on this server is ranked by <a href="/agents">agents</a>: small filters and rankers you pick and weigh yourself. Subscribe in any Bluesky app; your mix follows you.</p>
      ${feedCards(p.feeds, titles, false)}`,
  )
}

/** The post's page on the Bluesky web app, for an at-uri of a post (null for anything else). */
export function postWebUrl(uri: string): string | null {
  const m = /^at:\/\/(did:[a-z]+:[A-Za-z0-9._:%-]+)\/app\.bsky\.feed\.post\/([A-Za-z0-9._:~-]{1,512})$/.exec(uri)
  return m ? `https://bsky.app/profile/${m[1]}/post/${m[2]}` : null
}

/** An author as readers know them: @handle when it checks out, else the DID, shortened. */
const authorName = (did: string, handle: string | null) => (handle ? html`<span title="${did}">@${handle}</span>` : shortDid(did))

const postLink = (uri: string) => {
  const link = postWebUrl(uri)
  return link ? html` · <a href="${link}" rel="noopener">Open on Bluesky</a>` : ''
}

/** "Why am I seeing this": an item's attribution, in plain language, with a link back to the post. */
export function whyPage(p: PageChrome & { explanation: Explanation | null; post: string | null; handle?: string | null }): Html {
  const e = p.explanation
  const link = p.post ? postWebUrl(p.post) : null
  const author = p.post ? /^at:\/\/([^/]+)\//.exec(p.post)?.[1] : undefined
  return layout(
    p,
    html`<h1>Why am I seeing this?</h1>
      ${link ? html`<p><a href="${link}" rel="noopener">Open the post on Bluesky</a>${author ? html` by ${authorName(author, p.handle ?? null)}` : ''}</p>` : ''}
      ${
        e
          ? html`<p class="lead">${e.text}</p>
            ${
              e.reasons.length
                ? html`<table class="mix">
                  <caption>How each agent in your mix moved it (out of its weight)</caption>
                  <thead><tr><th scope="col">Agent</th><th scope="col">Looks for</th><th scope="col">Points</th></tr></thead>
                  <tbody>
                    ${e.reasons.map(
                      (r) =>
                        html`<tr><td><a href="/agents#agent-${r.agent}">${r.title}</a></td><td>${r.detail ?? '—'}</td><td class="num ${r.value > 0 ? 'up' : r.value < 0 ? 'down' : ''}">${signed(r.value)}</td></tr>`,
                    )}
                  </tbody>
                </table>`
                : ''
            }
            <p>Change how your feed is ranked on its <a href="/feeds">settings page</a>, or with “show more” / “show less” in your app.</p>`
          : html`<p>This link does not carry an explanation this server made.</p><p><a href="/feeds">Back to the feeds</a></p>`
      }`,
  )
}

export function messagePage(p: PageChrome & { heading: string; message: string }): Html {
  return layout(p, html`<h1>${p.heading}</h1><p>${p.message}</p><p><a href="/feeds">Back to the feeds</a></p>`)
}

export interface PreviewItem {
  post: string
  feedContext: string
  text: string | null
  author: string | null
  /** the author's handle, when it checks out */
  handle: string | null
  createdAt: number | null
  why: Explanation | null
}

export interface FeedbackItem {
  id: number
  event: string
  post: string
  at: number
  undone: boolean
  text: string | null
  nudges: { label: string; delta: number }[]
  feedContext: string | null
}

export interface SettingsModel {
  feed: Feed
  agents: CatalogAgent[]
  current: MixView
  rows: FormRow[]
  /** the form shows unsaved changes */
  draft: boolean
  problems: FieldProblem[]
  flash: string | null
  preview: PreviewItem[] | null
  feedback: FeedbackItem[]
}

const whyHref = (ctx: string, post: string) => `/why?${new URLSearchParams({ ctx, post })}`

/** The preview list (also sent alone to the enhancing script). */
export function previewList(items: PreviewItem[] | null): Html {
  if (items === null) return html`<p class="muted">Press “Preview” to see the first page this mix would give you.</p>`
  if (!items.length) return html`<p>No posts match this mix right now.</p>`
  return html`<p>${items.length} post${items.length === 1 ? '' : 's'} on the first page:</p>
    <ol class="posts">
      ${items.map(
        (it) => html`<li>
          <article>
            <p class="post-text">${it.text === null ? html`<span class="muted">(post not stored here)</span>` : it.text || html`<span class="muted">(no text)</span>`}</p>
            <p class="small muted">${it.author ? authorName(it.author, it.handle) : ''}${it.createdAt ? html` · ${when(it.createdAt)}` : ''}</p>
            ${it.why ? html`<p class="why small">${it.why.text}</p>` : ''}
            <p class="small"><a href="${whyHref(it.feedContext, it.post)}">Why this post?<span class="visually-hidden"> ${(it.text ?? '').slice(0, 60)}</span></a>${postLink(it.post)}</p>
          </article>
        </li>`,
      )}
    </ol>`
}

function errorText(problems: FieldProblem[], field: string): Html {
  const mine = problems.filter((p) => p.field === field)
  if (!mine.length) return html``
  return html`<p class="field-error" id="${errIdOf(field)}" data-error-for="${field}">${mine.map((p) => p.message).join('; ')}</p>`
}
const invalid = (problems: FieldProblem[], field: string) =>
  problems.some((p) => p.field === field) ? raw(` aria-invalid="true" aria-describedby="${errIdOf(field)}"`) : ''

function optionInput(prefix: string, f: OptionField, options: Record<string, unknown> | undefined, problems: FieldProblem[]): Html {
  const field = `${prefix}.options.${f.name}`
  const id = idOf(field)
  const hint = f.description ? html`<span class="small muted" id="${id}-hint">${f.description}</span>` : ''
  const describedBy = f.description ? raw(` aria-describedby="${id}-hint"`) : ''
  const label = html`<label for="${id}">${f.label}${f.required ? html` <span class="muted">(required)</span>` : ''}</label>`
  switch (f.kind) {
    case 'text':
      return html`<div class="field">${label}${hint}<input type="text" id="${id}" name="${field}" value="${displayValue(f, options)}" placeholder="${f.default ?? ''}"${f.pattern ? raw(` data-pattern="${escapeAttr(f.pattern)}"`) : ''}${describedBy}${invalid(problems, field)} />${errorText(problems, field)}</div>`
    case 'number':
      return html`<div class="field">${label}${hint}<input type="number" inputmode="decimal" id="${id}" name="${field}" value="${displayValue(f, options)}" step="${f.integer ? '1' : 'any'}"${f.min !== undefined ? raw(` min="${f.min}"`) : ''}${f.max !== undefined ? raw(` max="${f.max}"`) : ''} placeholder="${f.default !== undefined ? `default ${f.default}` : ''}"${describedBy}${invalid(problems, field)} />${errorText(problems, field)}</div>`
    case 'boolean':
      return html`<div class="field check">
        <input type="hidden" name="${field}.set" value="1" />
        <input type="checkbox" id="${id}" name="${field}" value="true"${booleanValue(f, options) ? raw(' checked') : ''}${describedBy}${invalid(problems, field)} />
        ${label}${hint}${errorText(problems, field)}
      </div>`
    case 'enum': {
      const v = displayValue(f, options)
      return html`<div class="field">${label}${hint}<select id="${id}" name="${field}"${describedBy}${invalid(problems, field)}>
          <option value=""${v === '' ? raw(' selected') : ''}>${f.default !== undefined ? `Default (${f.default})` : '—'}</option>
          ${f.values.map((x) => html`<option value="${x}"${v === x ? raw(' selected') : ''}>${x}</option>`)}
        </select>${errorText(problems, field)}</div>`
    }
    case 'list':
      return html`<div class="field">${label}<span class="small muted" id="${id}-fmt">Separate entries with commas.${f.description ? ` ${f.description}` : ''}</span><input type="text" id="${id}" name="${field}" value="${displayValue(f, options)}" placeholder="${(f.default ?? []).join(', ')}" aria-describedby="${id}-fmt${problems.some((p) => p.field === field) ? ` ${errIdOf(field)}` : ''}"${problems.some((p) => p.field === field) ? raw(' aria-invalid="true"') : ''} />${errorText(problems, field)}</div>`
    case 'multi': {
      const on = new Set(checkedValues(f, options))
      return html`<fieldset class="field multi" id="${id}"${problems.some((p) => p.field === field) ? raw(` aria-describedby="${errIdOf(field)}"`) : ''}>
        <legend>${f.label}</legend>
        <input type="hidden" name="${field}.set" value="1" />
        ${f.values.map((x) => html`<label class="check"><input type="checkbox" name="${field}" value="${x}"${on.has(x) ? raw(' checked') : ''} /> ${x}</label>`)}
        ${errorText(problems, field)}
      </fieldset>`
    }
  }
}

function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/** One agent of the mix form. `index` may be the placeholder `__i__` in a template. */
function agentRow(
  row: { index: number | string; agent: string; weight: number | string; options: Record<string, unknown>; optionsJson?: string },
  agent: CatalogAgent | undefined,
  problems: FieldProblem[],
): Html {
  const prefix = `agents.${row.index}`
  const title = agent?.status.title ?? row.agent
  const weightField = `${prefix}.weight`
  const weightId = idOf(weightField)
  const form = agent?.form ?? { kind: 'json' as const }
  const jsonField = `${prefix}.options`
  const jsonText = row.optionsJson ?? (Object.keys(row.options).length ? JSON.stringify(row.options, null, 2) : '')
  return html`<fieldset class="agent-row" data-row="${row.index}" data-agent="${row.agent}" id="${idOf(prefix)}">
    <legend>${title} <small class="muted">(${row.agent})</small></legend>
    <input type="hidden" name="${prefix}.agent" value="${row.agent}" />
    ${errorText(problems, prefix)}
    ${agent ? html`<p class="small muted">${agent.status.description}</p>` : html`<p class="field-error">This agent is not available on this server.</p>`}
    <div class="field weight">
      <label for="${weightId}">Weight for ${title}</label>
      <div class="slider">
        <span aria-hidden="true">−100</span>
        <input type="range" id="${weightId}" name="${weightField}" min="-100" max="100" step="1" value="${String(row.weight)}"${invalid(problems, weightField)} />
        <span aria-hidden="true">+100</span>
        <output for="${weightId}" class="weight-out" aria-hidden="true">${typeof row.weight === 'number' ? signed(row.weight) : row.weight}</output>
      </div>
      ${errorText(problems, weightField)}
    </div>
    ${
      form.kind === 'json'
        ? html`<div class="field"><label for="${idOf(jsonField)}">Options (JSON)</label>
          <textarea id="${idOf(jsonField)}" name="${prefix}.optionsJson" rows="3" spellcheck="false"${invalid(problems, jsonField)}>${jsonText}</textarea>${errorText(problems, jsonField)}</div>`
        : form.fields.length
          ? html`<div class="options">${form.fields.map((f) => optionInput(prefix, f, row.options, problems))}</div>${errorText(problems, jsonField)}`
          : ''
    }
    <button type="submit" name="op" value="remove:${row.index}" class="secondary remove">Remove<span class="visually-hidden"> ${title}</span></button>
  </fieldset>`
}

/** The form fields a rendered form has, for placing errors. */
export function renderedFields(rows: FormRow[], agents: Map<string, CatalogAgent>): Set<string> {
  const out = new Set<string>(['form', 'agents'])
  for (const r of rows) {
    const p = `agents.${r.index}`
    out.add(p)
    out.add(`${p}.weight`)
    out.add(`${p}.options`)
    const a = agents.get(r.agent)
    if (a?.form.kind === 'fields') for (const f of a.form.fields) out.add(`${p}.options.${f.name}`)
  }
  return out
}

export function settingsPage(p: PageChrome & SettingsModel): Html {
  const byId = new Map(p.agents.map((a) => [a.status.id, a]))
  const titles = new Map(p.agents.map((a) => [a.status.id, a.status.title]))
  const rendered = renderedFields(p.rows, byId)
  const problems = p.problems.map((x) => ({ ...x, field: fieldForProblem(x.field, rendered) }))
  const labelOf = (field: string) => {
    const m = /^agents\.(\d+)/.exec(field)
    const row = m ? p.rows.find((r) => r.index === Number(m[1])) : undefined
    return row ? `${titles.get(row.agent) ?? row.agent}: ` : ''
  }
  const sourceText = {
    private: 'your private mix, saved on this server',
    record: 'your public mix record, read from your repository',
    default: 'the feed’s default (you have not chosen a mix yet)',
  }[p.current.source]
  const active = p.agents.filter((a) => a.status.status === 'active')
  const action = `/feeds/${p.feed.rkey}/settings`
  return layout(
    p,
    html`<h1>Your mix for “${p.feed.displayName}”</h1>
      <div id="status" role="status" aria-live="polite" class="${p.flash ? 'flash' : ''}">${p.flash ?? ''}</div>
      ${
        problems.length
          ? html`<div class="errors" role="alert" id="error-summary" tabindex="-1">
            <h2>This mix needs a fix</h2>
            <ul>${problems.map((x) => html`<li><a href="#${x.field === 'form' || x.field === 'agents' ? 'add-agent' : idOf(x.field)}">${labelOf(x.field)}${x.message}</a></li>`)}</ul>
          </div>`
          : ''
      }
      <section aria-labelledby="current-h">
        <h2 id="current-h">What ranks your feed now</h2>
        <p>Source: <strong class="source source-${p.current.source}" data-source="${p.current.source}">${p.current.source}</strong> — ${sourceText}${p.current.updatedAt ? html`, updated ${when(p.current.updatedAt)}` : ''}.</p>
        ${mixTable('Current mix', p.current.agents, titles, p.current.nudges)}
        ${p.current.nudges.some((n) => n !== 0) ? html`<p class="small">Your “show more” and “show less” nudge these weights a little; nudges fade over a few days, and undoing feedback below removes them.</p>` : ''}
        ${p.feed.base.length ? mixTable('Always applied by this feed', p.feed.base, titles) : ''}
      </section>

      <section aria-labelledby="edit-h">
        <h2 id="edit-h">Choose agents and weights${p.draft ? html` <small class="muted">(unsaved changes)</small>` : ''}</h2>
        <form method="post" action="${action}" id="mix-form" class="stack" novalidate data-feed="${p.feed.rkey}">
          ${csrfField(p.csrf)}
          <button type="submit" name="op" value="preview" class="visually-hidden" tabindex="-1" aria-hidden="true">Preview</button>
          ${errorText(problems, 'agents')}
          ${errorText(problems, 'form')}
          <div id="agent-rows">
            ${p.rows.length ? p.rows.map((r) => agentRow(r, byId.get(r.agent), problems)) : html`<p class="muted" id="no-agents">No agents yet: every post would rank the same. Add one below.</p>`}
          </div>
          <div class="add-agent field">
            <label for="add-agent">Add an agent</label>
            <div class="row">
              <select id="add-agent" name="add">
                ${active.map((a) => html`<option value="${a.status.id}">${a.status.title} (${a.status.id})</option>`)}
              </select>
              <button type="submit" name="op" value="add" class="secondary" id="add-agent-button">Add</button>
            </div>
          </div>
          <div class="actions">
            <button type="submit" name="op" value="preview" id="preview-button">Preview</button>
            <button type="submit" name="op" value="save" id="save-button">Save privately</button>
            <button type="submit" name="op" value="publish" id="publish-button">Save as public record</button>
          </div>
          <p class="small muted">“Save privately” keeps the mix on this server only. “Save as public record” writes an <code>app.skysift.feed.mix</code> record to your own repository, so any Skysift server hosting this feed can use it; a private mix here wins over it.</p>
        </form>
        ${
          p.current.source === 'private'
            ? html`<form method="post" action="${action}" class="inline-block">
              ${csrfField(p.csrf)}
              <button type="submit" name="op" value="reset" class="secondary" id="reset-button">Forget my private mix</button>
              <span class="small muted">Then your public record (if any) or the feed’s default applies.</span>
            </form>`
            : ''
        }
        ${active.map((a) => html`<template id="tpl-agent-${a.status.id}" data-title="${a.status.title}">${agentRow({ index: '__i__', agent: a.status.id, weight: 50, options: {} }, a, [])}</template>`)}
      </section>

      <section aria-labelledby="preview-h">
        <h2 id="preview-h">Preview</h2>
        <div id="preview" aria-busy="false">${previewList(p.preview)}</div>
      </section>

      <section aria-labelledby="feedback-h">
        <h2 id="feedback-h">Your recent feedback</h2>
        ${
          p.feedback.length
            ? html`<ul class="feedback">
              ${p.feedback.map(
                (f) => html`<li class="${f.undone ? 'undone' : ''}" id="feedback-${f.id}">
                  <span class="event">${eventLabel(f.event)}</span>
                  on “${f.text === null ? 'a post not stored here' : f.text.slice(0, 140) || '(no text)'}” · ${when(f.at)}
                  ${f.nudges.length ? html`<span class="small"> — nudged ${f.nudges.map((n, i) => html`${i ? ', ' : ''}${titles.get(n.label.replace(/#\d+$/, '')) ?? n.label} ${signed(n.delta)}`)}</span>` : ''}
                  ${f.feedContext ? html` <a class="small" href="${whyHref(f.feedContext, f.post)}">Why was it shown?</a>` : ''}
                  ${
                    f.undone
                      ? html`<span class="small muted"> (undone)</span>`
                      : html`<form method="post" action="/feeds/${p.feed.rkey}/feedback/${String(f.id)}/undo" class="inline">${csrfField(p.csrf)}<button type="submit" class="secondary">Undo<span class="visually-hidden"> ${eventLabel(f.event).toLowerCase()} from ${new Date(f.at).toISOString().slice(0, 16)}</span></button></form>`
                  }
                </li>`,
              )}
            </ul>`
            : html`<p class="muted">No “show more” or “show less” yet. Use them in your Bluesky app on posts from this feed.</p>`
        }
      </section>`,
  )
}
