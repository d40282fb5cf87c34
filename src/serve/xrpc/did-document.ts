import type { Hono } from 'hono'
import type { AppDeps } from './deps.ts'

/** /.well-known/did.json: the DID document of a did:web service (a did:plc service has none here). */
export function didDocument(app: Hono, d: Pick<AppDeps, 'config'>): void {
  app.get('/.well-known/did.json', (c) => {
    if (!d.config.serviceDid.startsWith('did:web:')) return c.json({ error: 'NotFound', message: 'this service uses a did:plc' }, 404)
    return c.json({
      '@context': ['https://www.w3.org/ns/did/v1'],
      id: d.config.serviceDid,
      service: [{ id: '#bsky_fg', type: 'BskyFeedGenerator', serviceEndpoint: d.config.publicUrl }],
    })
  })
}
