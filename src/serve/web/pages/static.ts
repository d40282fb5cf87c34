import fs from 'node:fs'
import type { Hono } from 'hono'

const STATIC = {
  css: fs.readFileSync(new URL('../static/skysift.css', import.meta.url), 'utf8'),
  js: fs.readFileSync(new URL('../static/skysift.js', import.meta.url), 'utf8'),
  favicon: fs.readFileSync(new URL('../static/favicon.svg', import.meta.url), 'utf8'),
}

/** The stylesheet, the script that enhances the forms, and the icon. */
export function staticPages(app: Hono): void {
  app.get('/static/skysift.css', (c) => {
    c.header('cache-control', 'public, max-age=300')
    c.header('content-type', 'text/css; charset=utf-8')
    return c.body(STATIC.css)
  })
  app.get('/static/skysift.js', (c) => {
    c.header('cache-control', 'public, max-age=300')
    c.header('content-type', 'text/javascript; charset=utf-8')
    return c.body(STATIC.js)
  })

  // @NOTE browsers ask for /favicon.ico whatever the page links: both names serve the SVG
  for (const icon of ['/favicon.svg', '/favicon.ico']) {
    app.get(icon, (c) => {
      c.header('cache-control', 'public, max-age=86400')
      c.header('content-type', 'image/svg+xml')
      return c.body(STATIC.favicon)
    })
  }
}
