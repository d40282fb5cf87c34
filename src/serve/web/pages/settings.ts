import { Agent } from '@atproto/api'
import type { Context, Hono } from 'hono'
import type { Feed } from '../../../feeds.ts'
import { explain } from '../../../rank/explain.ts'
import { decodeFeedContext } from '../../../rank/feed-context.ts'
import { resolveMix, type MixEntry } from '../../../rank/mix.ts'
import { FieldError } from '../../../util/field-error.ts'
import { QueueFullError } from '../../../util/work-queue.ts'
import { entriesOf, fieldForProblem, problemOf, readMixForm, type FieldProblem, type FormRow } from '../forms.ts'
import type { WebSession } from '../ports.ts'
import { messagePage, previewList, renderedFields, settingsPage, type FeedbackItem, type PreviewItem } from '../views.ts'
import type { PageKit } from './kit.ts'

/** The collection of a mix record written to the reader's repository. */
export const MIX_COLLECTION = 'app.skysift.feed.mix'
const PREVIEW_LIMIT = 20
const FEEDBACK_LIMIT = 30

const FLASH: Record<string, string> = {
  private: 'Saved privately. Your feed now uses this mix.',
  reset: 'Your private mix is forgotten. Your public record (if any) or the feed’s default applies.',
  undone: 'Feedback undone.',
}

const rowsOf = (agents: MixEntry[]): FormRow[] => agents.map((e, i) => ({ index: i, agent: e.agent, weight: e.weight, options: e.options ?? {} }))

/** The settings page of each feed (choose, preview, save or publish a mix), with the reader's feedback and its undo. */
export function settingsPages(app: Hono, k: PageKit): void {
  const { log, page, chrome } = k

  const feedOf = (rkey: string): Feed | undefined => k.feeds.feeds.find((f) => f.rkey === rkey)
  const signinFirst = (c: Context, path: string) => c.redirect(`/signin?${new URLSearchParams({ next: path })}`, c.req.method === 'GET' ? 302 : 303)
  const unknownFeed = (c: Context, s: WebSession | null) =>
    page(c, messagePage({ ...chrome(c, 'Unknown feed', 'other', s), heading: 'Unknown feed', message: 'This server hosts no feed by that name.' }), 404)

  const feedbackOf = (feed: Feed, did: string): FeedbackItem[] => {
    const list = k.feeds.feedback(feed, did, FEEDBACK_LIMIT)
    const posts = k.posts.byUri(list.map((f) => f.postUri))
    return list.map((f) => ({
      id: f.id,
      event: f.event,
      post: f.postUri,
      at: f.at,
      undone: f.undone,
      text: posts.get(f.postUri)?.text ?? null,
      nudges: f.nudges,
      feedContext: f.feedContext,
    }))
  }

  /** Checks each row alone (so every bad row is named at once), then the mix as a whole. */
  const check = (feed: Feed, rows: FormRow[], problems: FieldProblem[]): { entries: MixEntry[]; problems: FieldProblem[] } => {
    const entries = entriesOf(rows)
    const out = [...problems]
    entries.forEach((e, j) => {
      if (typeof rows[j].weight !== 'number') return
      try {
        resolveMix(k.host, [e], [], { keep: false })
      } catch (err) {
        if (!(err instanceof FieldError)) throw err
        out.push(problemOf(err, [rows[j]]))
      }
    })
    if (!out.length) {
      try {
        resolveMix(k.host, entries, feed.base, { keep: false })
      } catch (err) {
        if (!(err instanceof FieldError)) throw err
        out.push(problemOf(err, rows))
      }
    }
    return { entries, problems: out }
  }

  const preview = async (feed: Feed, did: string, entries: MixEntry[]): Promise<PreviewItem[]> => {
    const page = await k.feeds.previewMix(feed, did, entries, PREVIEW_LIMIT)
    const posts = k.posts.byUri(page.feed.map((i) => i.post))
    // an unsaved mix is unknown to FeedService.explain: explain with the entries at hand (so reasons name the keywords etc.)
    const mix = resolveMix(k.host, entries, feed.base, { keep: false })
    const describe = (label: string) => {
      const e = mix.entries.find((x) => x.label === label)
      const id = e?.inst.def.id ?? label.replace(/#\d+$/, '')
      const def = k.host.agents.get(id)
      return def ? { agent: id, title: def.title, options: e?.inst.rawOptions } : null
    }
    const handles = (await k.handles?.handles(page.feed.flatMap((i) => posts.get(i.post)?.author ?? []))) ?? new Map<string, string>()
    return page.feed.map((i) => {
      const p = posts.get(i.post)
      const a = decodeFeedContext(i.feedContext)
      const author = p?.author ?? null
      return {
        post: i.post,
        feedContext: i.feedContext,
        text: p?.text ?? null,
        author,
        handle: (author && handles.get(author)) ?? null,
        createdAt: p?.createdAt ?? null,
        why: a ? explain(a, describe) : null,
      }
    })
  }

  const flashOf = (c: Context, did: string): string | null => {
    const saved = c.req.query('saved') ?? c.req.query('done')
    if (saved === 'record') {
      const uri = c.req.query('uri')
      const ok = uri?.startsWith(`at://${did}/${MIX_COLLECTION}/`) && /^[A-Za-z0-9:/._~-]+$/.test(uri)
      return `Saved as a public record${ok ? ` (${uri})` : ''}. Skysift applies it once it reads it from the network — unless you keep a private mix here, which wins.`
    }
    return saved ? (FLASH[saved] ?? null) : null
  }

  const renderSettings = (
    c: Context,
    feed: Feed,
    s: WebSession,
    m: { rows?: FormRow[]; draft?: boolean; problems?: FieldProblem[]; preview?: PreviewItem[] | null; flash?: string | null },
    status: 200 | 400 | 429 | 502 = 200,
  ) => {
    const current = k.feeds.viewMix(feed, s.did)
    return page(
      c,
      settingsPage({
        ...chrome(c, `Your mix for ${feed.displayName}`, 'settings', s),
        feed,
        agents: k.catalog(),
        current,
        rows: m.rows ?? rowsOf(current.agents),
        draft: m.draft ?? false,
        problems: m.problems ?? [],
        flash: m.flash === undefined ? flashOf(c, s.did) : m.flash,
        preview: m.preview ?? null,
        feedback: feedbackOf(feed, s.did),
      }),
      status,
    )
  }

  app.get('/feeds/:rkey/settings', (c) => {
    const feed = feedOf(c.req.param('rkey'))
    const s = k.cookies.sessionOf(c)
    if (!feed) return unknownFeed(c, s)
    if (!s) return signinFirst(c, c.req.path)
    return renderSettings(c, feed, s, {})
  })

  app.post('/feeds/:rkey/settings', k.formLimit, async (c) => {
    const feed = feedOf(c.req.param('rkey'))
    const s = k.cookies.sessionOf(c)
    const body = await k.formBody(c)
    if (!feed) return unknownFeed(c, s)
    if (!k.cookies.csrfOk(c, body)) return k.refuse(c, s)
    if (!s) return signinFirst(c, `/feeds/${feed.rkey}/settings`)
    const back = `/feeds/${feed.rkey}/settings`
    const partial = c.req.header('x-skysift-partial') === '1'
    const op = typeof body.op === 'string' ? body.op : 'preview'
    const forms = new Map(k.catalog().map((a) => [a.status.id, a.form]))
    const { rows, problems: formProblems } = readMixForm(body, (id) => forms.get(id) ?? null)

    if (op === 'reset') {
      await k.feeds.deleteMix(feed, s.did)
      return c.redirect(`${back}?saved=reset`, 303)
    }
    if (op === 'add') {
      const agent = typeof body.add === 'string' ? body.add : ''
      if (forms.has(agent)) rows.push({ index: rows.reduce((m, r) => Math.max(m, r.index + 1), 0), agent, weight: 50, options: {} })
      return renderSettings(c, feed, s, { rows, draft: true, flash: forms.has(agent) ? `Added ${agent}. Set its weight, then preview or save.` : null })
    }
    if (op.startsWith('remove:')) {
      const i = Number(op.slice('remove:'.length))
      const kept = rows.filter((r) => r.index !== i)
      return renderSettings(c, feed, s, {
        rows: kept,
        draft: true,
        flash: kept.length < rows.length ? 'Agent removed. Preview or save to keep the change.' : null,
      })
    }

    const checked = check(feed, rows, formProblems)
    const failed = (problems: FieldProblem[], status: 400 | 429 | 502 = 400) => {
      if (partial) {
        const rendered = renderedFields(rows, new Map(k.catalog().map((a) => [a.status.id, a])))
        return c.json({ ok: false, problems: problems.map((p) => ({ field: fieldForProblem(p.field, rendered), message: p.message })) }, status)
      }
      return renderSettings(c, feed, s, { rows, draft: true, problems }, status)
    }
    if (checked.problems.length) return failed(checked.problems)
    const entries = checked.entries

    try {
      if (op === 'preview') {
        const items = await preview(feed, s.did, entries)
        if (partial) return c.json({ ok: true, count: items.length, html: String(await previewList(items)) })
        return renderSettings(c, feed, s, {
          rows,
          draft: true,
          preview: items,
          flash: `Preview ready: ${items.length} post${items.length === 1 ? '' : 's'}. Nothing is saved yet.`,
        })
      }
      if (op === 'save') {
        await k.feeds.putMix(feed, s.did, entries)
        log.info({ did: s.did, feed: feed.rkey }, 'mix saved from the web')
        return c.redirect(`${back}?saved=private`, 303)
      }
      if (op === 'publish') {
        const mix = resolveMix(k.host, entries, feed.base)
        let uri: string
        try {
          const session = await k.oauth.client.restore(s.did)
          const agent = new Agent(session)
          const res = await agent.com.atproto.repo.createRecord({
            repo: s.did,
            collection: MIX_COLLECTION,
            // the reader's server does not know our lexicon
            validate: false,
            record: { $type: MIX_COLLECTION, feed: feed.uri, agents: mix.agents, createdAt: new Date().toISOString() },
          })
          uri = res.data.uri
        } catch (err) {
          log.info({ did: s.did, err: (err as Error).message }, 'could not write a mix record')
          return failed(
            [{ field: 'form', message: `Could not write the record to your repository (${(err as Error).message}). Sign out and in again, then retry.` }],
            502,
          )
        }
        log.info({ did: s.did, feed: feed.rkey, uri }, 'mix record written from the web')
        return c.redirect(`${back}?${new URLSearchParams({ saved: 'record', uri })}`, 303)
      }
    } catch (err) {
      if (err instanceof FieldError) return failed([problemOf(err, rows)])
      if (err instanceof QueueFullError) return failed([{ field: 'form', message: 'Too many previews are being made right now. Try again in a moment.' }], 429)
      throw err
    }
    return failed([{ field: 'form', message: `Unknown action ${op}` }])
  })

  app.post('/feeds/:rkey/feedback/:id/undo', k.formLimit, async (c) => {
    const feed = feedOf(c.req.param('rkey'))
    const s = k.cookies.sessionOf(c)
    const body = await k.formBody(c)
    if (!feed) return unknownFeed(c, s)
    if (!k.cookies.csrfOk(c, body)) return k.refuse(c, s)
    if (!s) return signinFirst(c, `/feeds/${feed.rkey}/settings`)
    const id = Number(c.req.param('id'))
    const undone = Number.isSafeInteger(id) ? k.feeds.undoFeedback(s.did, id) : null
    return c.redirect(`/feeds/${feed.rkey}/settings${undone ? '?done=undone' : ''}#feedback-h`, 303)
  })
}
