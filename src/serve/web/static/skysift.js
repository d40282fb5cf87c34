// Skysift settings page enhancements. The page works without this file:
// every button is a plain form submit handled on the server. With it:
// weights show as you slide, agents are added and removed in place, and the
// preview follows your changes without reloading the page.
;(() => {
  'use strict'
  const form = document.getElementById('mix-form')
  if (!form) return
  const rows = document.getElementById('agent-rows')
  const preview = document.getElementById('preview')
  const status = document.getElementById('status')
  const addSelect = document.getElementById('add-agent')
  let timer = 0
  let inflight = null

  const say = (msg) => {
    if (status) status.textContent = msg
  }
  const signed = (v) => {
    const n = Number(v)
    return n > 0 ? '+' + n : n < 0 ? '−' + Math.abs(n) : '0'
  }
  const fieldId = (field) => 'f-' + field.replace(/[^A-Za-z0-9_-]+/g, '-')
  const errId = (field) => 'err-' + field.replace(/[^A-Za-z0-9_-]+/g, '-')

  // weights: show the value next to the slider
  const syncOutput = (input) => {
    const out = input.parentElement?.querySelector('output.weight-out')
    if (out) out.textContent = signed(input.value)
  }
  form.addEventListener('input', (e) => {
    const t = e.target
    if (t instanceof HTMLInputElement && t.type === 'range') syncOutput(t)
    schedulePreview()
  })
  form.addEventListener('change', () => schedulePreview())

  // errors next to the fields they name
  const clearErrors = () => {
    for (const el of form.querySelectorAll('[data-live-error]')) el.remove()
    for (const el of form.querySelectorAll('[aria-invalid="true"]')) {
      el.removeAttribute('aria-invalid')
      const by = (el.getAttribute('aria-describedby') || '').split(' ').filter((x) => !x.startsWith('err-'))
      if (by.length) el.setAttribute('aria-describedby', by.join(' '))
      else el.removeAttribute('aria-describedby')
    }
  }
  const showErrors = (problems) => {
    clearErrors()
    for (const p of problems) {
      const target = document.getElementById(fieldId(p.field)) || form
      const msg = document.createElement('p')
      msg.className = 'field-error'
      msg.id = errId(p.field)
      msg.dataset.liveError = '1'
      msg.dataset.errorFor = p.field
      msg.textContent = p.message
      if (target === form) form.prepend(msg)
      else if (target.tagName === 'FIELDSET') target.append(msg)
      else (target.closest('.field') || target.closest('fieldset') || form).append(msg)
      if (target !== form && target.tagName !== 'FIELDSET') {
        target.setAttribute('aria-invalid', 'true')
        const by = (target.getAttribute('aria-describedby') || '').split(' ').filter(Boolean)
        by.push(msg.id)
        target.setAttribute('aria-describedby', by.join(' '))
      }
    }
    say(
      problems.length === 1
        ? 'This mix needs a fix: ' + problems[0].message
        : 'This mix needs ' + problems.length + ' fixes; see the messages next to the fields.',
    )
  }

  // live preview
  const schedulePreview = () => {
    clearTimeout(timer)
    timer = setTimeout(runPreview, 700)
  }
  const runPreview = async () => {
    if (!preview) return
    if (inflight) inflight.abort()
    const ctrl = new AbortController()
    inflight = ctrl
    const data = new FormData(form)
    data.set('op', 'preview')
    preview.setAttribute('aria-busy', 'true')
    try {
      const res = await fetch(form.action, {
        method: 'POST',
        body: new URLSearchParams(data),
        headers: { 'x-skysift-partial': '1', accept: 'application/json' },
        credentials: 'same-origin',
        signal: ctrl.signal,
      })
      if (res.redirected || !(res.headers.get('content-type') || '').includes('json')) {
        say('Your session ended; reload the page to sign in again.')
        return
      }
      const body = await res.json()
      if (body.ok) {
        clearErrors()
        preview.innerHTML = body.html
        say('Preview updated: ' + body.count + ' post' + (body.count === 1 ? '' : 's') + '. Nothing is saved yet.')
      } else {
        showErrors(body.problems || [])
      }
    } catch (err) {
      if (err && err.name === 'AbortError') return
      say('Could not update the preview. Press Preview to try again.')
    } finally {
      if (inflight === ctrl) {
        inflight = null
        preview.setAttribute('aria-busy', 'false')
      }
    }
  }

  // adding and removing agents in place
  const addRow = (agent) => {
    const tpl = document.getElementById('tpl-agent-' + agent)
    if (!tpl || !rows) return false
    // a fresh index after every row on the page (the server reads rows in index order; gaps are fine)
    let next = 0
    for (const r of form.querySelectorAll('fieldset.agent-row[data-row]')) next = Math.max(next, Number(r.dataset.row) + 1)
    if (next > 9999) return false
    const i = String(next)
    const frag = tpl.content.cloneNode(true)
    for (const el of frag.querySelectorAll('*')) {
      for (const a of Array.from(el.attributes)) if (a.value.includes('__i__')) el.setAttribute(a.name, a.value.split('__i__').join(i))
    }
    const empty = document.getElementById('no-agents')
    if (empty) empty.remove()
    rows.append(frag)
    const row = rows.lastElementChild
    const slider = row?.querySelector('input[type="range"]')
    if (slider) slider.focus()
    say('Added ' + (tpl.dataset.title || agent) + '. Set its weight; the preview follows.')
    schedulePreview()
    return true
  }

  form.addEventListener('submit', (e) => {
    const btn = e.submitter
    const op = btn && btn.name === 'op' ? btn.value : 'preview'
    if (op === 'add' && addSelect) {
      if (addRow(addSelect.value)) e.preventDefault()
      return
    }
    if (op.startsWith('remove:')) {
      const row = btn.closest('fieldset.agent-row')
      if (row) {
        e.preventDefault()
        const title = row.querySelector('legend') ? row.querySelector('legend').textContent.trim() : 'Agent'
        row.remove()
        if (addSelect) addSelect.focus()
        say('Removed ' + title + '. Save to keep the change.')
        schedulePreview()
      }
      return
    }
    if (op === 'preview') {
      e.preventDefault()
      clearTimeout(timer)
      runPreview()
      return
    }
    // save / publish: a normal submit (the server redirects back); stop double submits
    if (btn) setTimeout(() => (btn.disabled = true), 0)
  })

  for (const r of form.querySelectorAll('input[type="range"]')) syncOutput(r)
  const summary = document.getElementById('error-summary')
  if (summary) summary.focus()
})()
