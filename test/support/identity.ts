import type { AddressInfo } from 'node:net'
import { Secp256k1Keypair } from '@atproto/crypto'
import { createServiceJwt } from '@atproto/xrpc-server'
import { serve, type ServerType } from '@hono/node-server'
import { Hono } from 'hono'

export interface TestUser {
  did: string
  /** the handle the DID document claims (`<name>.test`) */
  handle: string
  keypair: Secp256k1Keypair
  /** a service-auth JWT from this user for `aud`, `lxm` */
  token(aud: string, lxm: string, opts?: { exp?: number; keypair?: Secp256k1Keypair }): Promise<string>
}

/**
 * Real identities for tests that need no PDS: each user gets a small local
 * HTTP server publishing a did:web document (`did:web:localhost%3A<port>`,
 * atproto supports no did:web paths) with the user's signing key, so tokens
 * are verified exactly as in production.
 */
export async function startIdentities(names: string[]): Promise<{ users: Record<string, TestUser>; close: () => Promise<void> }> {
  const servers: ServerType[] = []
  const users: Record<string, TestUser> = {}
  for (const name of names) {
    const keypair = await Secp256k1Keypair.create()
    let did = ''
    const app = new Hono()
    app.get('/.well-known/did.json', (c) =>
      c.json({
        '@context': ['https://www.w3.org/ns/did/v1', 'https://w3id.org/security/multikey/v1'],
        id: did,
        alsoKnownAs: [`at://${name}.test`],
        verificationMethod: [{ id: `${did}#atproto`, type: 'Multikey', controller: did, publicKeyMultibase: keypair.did().slice('did:key:'.length) }],
      }),
    )
    const server: ServerType = await new Promise((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s))
    })
    servers.push(server)
    did = `did:web:localhost%3A${(server.address() as AddressInfo).port}`
    users[name] = {
      did,
      handle: `${name}.test`,
      keypair,
      token: (aud, lxm, opts = {}) => createServiceJwt({ iss: did, aud, lxm, keypair: opts.keypair ?? keypair, exp: opts.exp }),
    }
  }
  return { users, close: async () => void (await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))))) }
}
