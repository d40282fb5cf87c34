import type { AddressInfo } from 'node:net'
import { Secp256k1Keypair } from '@atproto/crypto'
import { createServiceJwt } from '@atproto/xrpc-server'
import { serve, type ServerType } from '@hono/node-server'
import { Hono } from 'hono'

export interface TestUser {
  did: string
  keypair: Secp256k1Keypair
  /** a service-auth JWT from this user for `aud`, `lxm` */
  token(aud: string, lxm: string, opts?: { exp?: number; keypair?: Secp256k1Keypair }): Promise<string>
}

/**
 * Real identities for tests that need no PDS: a local HTTP server publishes
 * did:web documents (`did:web:localhost%3A<port>:u:<name>`) with each user's
 * signing key, so tokens are verified exactly as in production.
 */
export async function startIdentities(names: string[]): Promise<{ users: Record<string, TestUser>; close: () => Promise<void> }> {
  const docs = new Map<string, unknown>()
  const app = new Hono()
  app.get('/u/:name/did.json', (c) => {
    const doc = docs.get(c.req.param('name'))
    return doc ? c.json(doc) : c.notFound()
  })
  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s))
  })
  const port = (server.address() as AddressInfo).port
  const users: Record<string, TestUser> = {}
  for (const name of names) {
    const keypair = await Secp256k1Keypair.create()
    const did = `did:web:localhost%3A${port}:u:${name}`
    docs.set(name, {
      '@context': ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/multikey/v1'],
      id: did,
      verificationMethod: [{ id: `${did}#atproto`, type: 'Multikey', controller: did, publicKeyMultibase: keypair.did().slice('did:key:'.length) }],
    })
    users[name] = {
      did,
      keypair,
      token: (aud, lxm, opts = {}) => createServiceJwt({ iss: did, aud, lxm, keypair: opts.keypair ?? keypair, exp: opts.exp }),
    }
  }
  return { users, close: () => new Promise<void>((r) => server.close(() => r())) }
}
