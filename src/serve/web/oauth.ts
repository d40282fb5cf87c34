import {
  buildAtprotoLoopbackClientMetadata,
  NodeOAuthClient,
  requestLocalLock,
  type NodeSavedSession,
  type NodeSavedState,
  type OAuthClientMetadataInput,
} from '@atproto/oauth-client-node'
import { createGuardedFetch } from '../../score/guarded-fetch.ts'
import type { WebSessions } from './ports.ts'

export const OAUTH_SCOPE = 'atproto transition:generic'

export interface OAuthSetup {
  /** where this server is reachable (SKYSIFT_PUBLIC_URL) */
  publicUrl: string
  /** the port the server listens on, for the loopback redirect when publicUrl names none */
  port: number
  plcUrl: string
  /** allow plain-http PDSs, authorization servers and did:web, and hosts on loopback or private addresses (local networks only) */
  allowHttp: boolean
  /** an XRPC service answering com.atproto.identity.resolveHandle (a PDS or AppView); default: DNS and https well-known */
  handleResolver?: string
}

export interface OAuthMode {
  kind: 'loopback' | 'web'
  /** the redirect URI registered with the authorization server */
  redirectUri: string
  /** the origin sign-in must start from, so the session cookie lands where the callback arrives */
  origin: string
  metadata: OAuthClientMetadataInput
}

/**
 * Which OAuth client this server is: with an https public URL a web client
 * whose metadata document is served at /oauth/client-metadata.json; else a
 * public loopback client (development), redirecting to 127.0.0.1.
 */
export function oauthMode(s: Pick<OAuthSetup, 'publicUrl' | 'port'>): OAuthMode {
  const pub = new URL(s.publicUrl)
  if (pub.protocol === 'https:') {
    const base = pub.origin
    const redirectUri = `${base}/oauth/callback`
    return {
      kind: 'web',
      redirectUri,
      origin: base,
      metadata: {
        client_id: `${base}/oauth/client-metadata.json`,
        client_name: 'Skysift',
        client_uri: base,
        redirect_uris: [redirectUri],
        scope: OAUTH_SCOPE,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        application_type: 'web',
        token_endpoint_auth_method: 'none',
        dpop_bound_access_tokens: true,
      },
    }
  }
  // @NOTE loopback clients must redirect to an IP literal, not "localhost"
  const port = pub.port || String(s.port)
  const origin = `http://127.0.0.1:${port}`
  const redirectUri = `${origin}/oauth/callback`
  return {
    kind: 'loopback',
    redirectUri,
    origin,
    metadata: buildAtprotoLoopbackClientMetadata({ scope: OAUTH_SCOPE, redirect_uris: [redirectUri] }),
  }
}

/**
 * The OAuth client. Sign-in fetches from hosts a stranger names (a handle, a
 * DID document, a server address typed into the form), so unless
 * `allowHttp` (local networks) every request goes through the SSRF guard
 * remote agents use: nothing on loopback or private addresses, no redirects.
 */
export function createOAuthClient(
  stores: Pick<WebSessions, 'oauthStates' | 'oauthSessions'>,
  s: OAuthSetup,
): { client: NodeOAuthClient; mode: OAuthMode; close: () => void } {
  const mode = oauthMode(s)
  const guard = s.allowHttp ? null : createGuardedFetch({ allowPrivateNetwork: false })
  const client = new NodeOAuthClient({
    clientMetadata: mode.metadata,
    stateStore: stores.oauthStates<NodeSavedState>(),
    sessionStore: stores.oauthSessions<NodeSavedSession>(),
    requestLock: requestLocalLock,
    plcDirectoryUrl: s.plcUrl,
    allowHttp: s.allowHttp,
    ...(s.handleResolver ? { handleResolver: s.handleResolver } : {}),
    ...(guard ? { fetch: guard.fetch } : {}),
  })
  return { client, mode, close: () => guard?.close() }
}
