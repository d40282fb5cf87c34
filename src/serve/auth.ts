import { IdResolver, MemoryCache } from '@atproto/identity'
import { verifyJwt } from '@atproto/xrpc-server'
import type { Logger } from '../logger.ts'

export interface Requester {
  /** the verified `iss` DID, or null for an anonymous reader */
  did: string | null
  /** why the request counts as anonymous */
  reason?: string
}

/** An identity resolver; with allowInsecureHttp it may fetch over plain http (local networks). */
export function createIdResolver(plcUrl: string, allowInsecureHttp: boolean): IdResolver {
  return new IdResolver({
    plcUrl,
    timeout: 3000,
    // @NOTE without a cache every signed-in request would fetch a DID document; keys are refreshed on a bad signature
    didCache: new MemoryCache(),
    ...(allowInsecureHttp ? { fetch: globalThis.fetch } : {}),
  })
}

/**
 * Verifies service-auth JWTs (signature, audience = our DID, lxm, expiry)
 * with keys from the issuer's DID document.
 */
export class Authenticator {
  private readonly serviceDid: string
  private readonly idResolver: IdResolver
  private readonly log: Logger

  constructor(serviceDid: string, idResolver: IdResolver, log: Logger) {
    this.serviceDid = serviceDid
    this.idResolver = idResolver
    this.log = log
  }

  /** The requester of a call to `lxm`. Never throws: a bad or missing token is anonymous with a reason. */
  async optional(authorization: string | undefined, lxm: string): Promise<Requester> {
    if (!authorization) return { did: null, reason: 'no token' }
    try {
      return { did: await this.verify(authorization, lxm) }
    } catch (err) {
      const reason = (err as { error?: string }).error ?? (err as Error).message ?? 'invalid token'
      this.log.info({ lxm, reason }, 'token rejected; serving as anonymous')
      return { did: null, reason }
    }
  }

  /** The verified issuer DID; throws (with `.error` naming why) on any problem. */
  async verify(authorization: string, lxm: string): Promise<string> {
    const m = /^Bearer\s+(\S+)$/i.exec(authorization.trim())
    if (!m) throw Object.assign(new Error('authorization is not a Bearer token'), { error: 'BadAuthorization' })
    const payload = await verifyJwt(m[1], this.serviceDid, lxm, async (iss, forceRefresh) => {
      const did = iss.split('#')[0]
      return this.idResolver.did.resolveAtprotoKey(did, forceRefresh)
    })
    return payload.iss.split('#')[0]
  }
}
