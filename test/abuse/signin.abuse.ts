/**
 * Abuse — web sign-in as a door to internal hosts. A stranger types
 * loopback addresses in their many spellings into the sign-in form (with a
 * valid CSRF token); a TCP listener on loopback counts every connection that
 * reaches it. With default settings (a real server process) no form may
 * open one. The baseline of the same run is a second server that allows
 * local networks (SKYSIFT_ALLOW_INSECURE_HTTP, as for a local PDS): the
 * same form does reach the listener there, so the count is known to work.
 */
import net from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startServer, type AbuseServer } from './support/server.ts'

describe('abuse: web sign-in connecting to internal hosts (real server processes, a counting listener on loopback)', () => {
  let guarded: AbuseServer
  let open: AbuseServer
  let listener: net.Server
  let port = 0
  let connections = 0

  beforeAll(async () => {
    listener = net.createServer((sock) => {
      connections++
      sock.destroy()
    })
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', () => r()))
    port = (listener.address() as net.AddressInfo).port
    ;[guarded, open] = await Promise.all([startServer(), startServer({ env: { SKYSIFT_ALLOW_INSECURE_HTTP: 'true' } })])
  })
  afterAll(async () => {
    await Promise.all([guarded?.close(), open?.close()])
    await new Promise<void>((r) => listener.close(() => r()))
  })

  /** GET /signin for the CSRF cookie and token, then POST the form with `handle`. */
  const signIn = async (server: AbuseServer, handle: string) => {
    const form = await fetch(`${server.base}/signin`)
    expect(form.status).toBe(200)
    const cookie = form.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ')
    const csrf = /name="_csrf" value="([^"]+)"/.exec(await form.text())?.[1]
    expect(csrf).toBeTruthy()
    const res = await fetch(`${server.base}/signin`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: csrf!, next: '/feeds', handle }),
    })
    return { status: res.status, text: await res.text() }
  }

  it('opens no connection to loopback whatever the spelling, and says why', async () => {
    const forms = [
      `https://127.0.0.1:${port}`,
      `http://127.0.0.1:${port}`,
      `https://localhost:${port}`,
      `https://2130706433:${port}`,
      `https://0x7f.0.0.1:${port}`,
      `https://[::ffff:127.0.0.1]:${port}`,
      `did:web:127.0.0.1%3A${port}`,
      `did:web:localhost%3A${port}`,
    ]
    for (const handle of forms) {
      const r = await signIn(guarded, handle)
      expect(r.status, handle).toBe(400)
      expect(r.text, handle).toContain('Could not sign in')
    }
    expect(connections).toBe(0)

    // baseline: a server that allows local networks does reach the listener with the first form
    const r = await signIn(open, forms[0])
    expect(r.status).toBe(400)
    expect(connections).toBeGreaterThan(0)
  })
})
