import { html } from 'hono/html'
import type { Feed } from '../feeds.ts'
import type { Explanation } from '../rank/explain.ts'

/** The public landing page: what this server is and which feeds it hosts. */
export function landingPage(p: { feeds: Feed[]; serviceDid: string; version: string }) {
  return html`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Skysift</title>
    <style>
      body { font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #1d2330; }
      h1 { margin-bottom: 0; } .sub { color: #5b6478; margin-top: .2rem; }
      section { border: 1px solid #d8dce6; border-radius: 10px; padding: .5rem 1rem 1rem; margin: 1rem 0; }
      code { background: #f1f3f8; padding: .1rem .3rem; border-radius: 4px; font-size: .9em; word-break: break-all; }
      table { border-collapse: collapse; } td, th { text-align: left; padding: .15rem .8rem .15rem 0; }
    </style>
  </head>
  <body>
    <main>
      <h1>Skysift</h1>
      <p class="sub">Feeds where you choose the algorithm. Service <code>${p.serviceDid}</code> · v${p.version}</p>
      <p>Each feed below is ranked by agents: small filters and rankers you pick and weigh yourself. Subscribe in any Bluesky client; your mix follows you.</p>
      <nav aria-label="Pages"><a href="/feeds">Choose your mix</a> · <a href="/agents">Agent catalog</a> · <a href="/signin">Sign in</a></nav>
      ${p.feeds.map(
        (f) => html`<section aria-labelledby="feed-${f.rkey}">
          <h2 id="feed-${f.rkey}">${f.displayName}</h2>
          <p>${f.description}</p>
          <p>Feed URI: <code>${f.uri}</code></p>
          <table>
            <caption style="text-align:left">Default mix</caption>
            <tr><th scope="col">Agent</th><th scope="col">Weight</th><th scope="col">Options</th></tr>
            ${f.defaults.agents.map((a) => html`<tr><td>${a.agent}</td><td>${a.weight}</td><td><code>${JSON.stringify(a.options ?? {})}</code></td></tr>`)}
          </table>
        </section>`,
      )}
    </main>
  </body>
</html>`
}

/** "Why am I seeing this": an item's attribution, in plain language. */
export function whyPage(p: { explanation: Explanation | null; post: string | null }) {
  const e = p.explanation
  return html`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Why am I seeing this? · Skysift</title>
    <style>
      body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; color: #1d2330; }
      .up { color: #176b2c; } .down { color: #9b1c1c; } code { word-break: break-all; }
      table { border-collapse: collapse; } td, th { text-align: left; padding: .2rem .8rem .2rem 0; }
    </style>
  </head>
  <body>
    <main>
      <h1>Why am I seeing this?</h1>
      ${p.post ? html`<p>Post: <code>${p.post}</code></p>` : ''}
      ${e
        ? html`<p>${e.text}</p>
            ${e.reasons.length
              ? html`<table>
                  <caption style="text-align:left">How each agent in your mix moved it (out of its weight)</caption>
                  <tr><th scope="col">Agent</th><th scope="col">Looks for</th><th scope="col">Points</th></tr>
                  ${e.reasons.map(
                    (r) => html`<tr><td>${r.title}</td><td>${r.detail ?? '—'}</td><td class="${r.value > 0 ? 'up' : r.value < 0 ? 'down' : ''}">${r.value > 0 ? `+${r.value}` : String(r.value)}</td></tr>`,
                  )}
                </table>`
              : ''}
            <p>Change how your feed is ranked on its <a href="/feeds">settings page</a>, or with "show more" / "show less" in your app.</p>`
        : html`<p>This link does not carry an explanation this server made.</p>`}
    </main>
  </body>
</html>`
}
