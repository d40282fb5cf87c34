import type { Lexicons } from '@atproto/lexicon'
import type { Context, MiddlewareHandler } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import type { Logger } from '../logger.ts'
import type { Authenticator, Requester } from './auth.ts'
import { authRequired, invalidRequest, XrpcError } from './errors.ts'

/** What the XRPC middleware leaves for a method's handler. */
export type XrpcEnv = {
  Variables: {
    /** the verified subscriber (methods with `auth: 'required'`) */
    viewer: string
    /** the requester, maybe anonymous (methods with `auth: 'optional'`) */
    requester: Requester
    /** the JSON body, checked against the method's lexicon (methods with `input`) */
    input: unknown
    /** the message of a 429 when the method's work queue is full */
    busy: string
  }
}

/** The body limit every XRPC input has: past it, a 413 `PayloadTooLarge` naming the limit. */
export function xrpcBodyLimit(maxKiB: number): MiddlewareHandler {
  return bodyLimit({ maxSize: maxKiB * 1024, onError: (c) => c.json({ error: 'PayloadTooLarge', message: `request body over ${maxKiB} KiB` }, 413) })
}

/** How a method takes its JSON body. */
export interface InputSpec {
  /** the largest body taken, in KiB */
  maxKiB: number
  /** the lexicons the body is checked against; none: the method checks the parsed body itself */
  lexicons?: Lexicons
  /** a body that is not JSON: refused (default), or checked as `null` (the lexicon then names the problem) */
  notJson?: 'refuse' | 'check'
  /** the error for a body the lexicon refuses (default: InvalidRequest with the lexicon's message) */
  invalid?: (message: string) => XrpcError
}

export interface MethodSpec {
  nsid: string
  /** `required`: a verified service-auth token (a 401 otherwise); `optional`: anyone, the token only says who asks */
  auth?: 'required' | 'optional'
  input?: InputSpec
  /** the message of the 429 when the method's work queue is full */
  busy?: string
}

export interface MiddlewareDeps {
  auth: Authenticator
  log: Logger
}

/** The subscriber calling a private method: a verified token is required. */
export async function verifiedViewer(d: MiddlewareDeps, c: Context, lxm: string): Promise<string> {
  const header = c.req.header('authorization')
  if (!header) throw authRequired('Authentication Required')
  try {
    return await d.auth.verify(header, lxm)
  } catch (err) {
    const name = (err as { error?: string }).error
    if (name) throw new XrpcError(401, name, (err as Error).message)
    // @NOTE a token that does not parse makes the JWT library throw its parser's error: say what is wrong instead
    d.log.debug({ lxm, err: (err as Error).message }, 'unreadable bearer token')
    throw new XrpcError(401, 'BadJwt', 'the bearer token is not a well-formed service-auth JWT')
  }
}

/** The requester of a method open to anyone (anonymous when the token is missing or bad). */
export const requesterOf = (d: MiddlewareDeps, c: Context, lxm: string): Promise<Requester> => d.auth.optional(c.req.header('authorization'), lxm)

/** The JSON body of a request, checked against the method's lexicon; a 400 naming the problem otherwise. */
async function readInput(c: Context, nsid: string, spec: InputSpec): Promise<unknown> {
  let input: unknown
  try {
    input = await c.req.json()
  } catch {
    if (spec.notJson !== 'check') throw invalidRequest('Error: body is not JSON')
    input = null
  }
  if (!spec.lexicons) return input
  try {
    spec.lexicons.assertValidXrpcInput(nsid, input)
  } catch (err) {
    const message = (err as Error).message
    throw spec.invalid ? spec.invalid(message) : invalidRequest(message)
  }
  return input
}

/**
 * The one middleware in front of an XRPC method, in this order: the body
 * limit, the caller's token, then the JSON body and its lexicon check. (A
 * caller without a token learns that before anything about its body.)
 */
export function xrpcMethod(d: MiddlewareDeps, spec: MethodSpec): MiddlewareHandler<XrpcEnv> {
  const limit = spec.input ? xrpcBodyLimit(spec.input.maxKiB) : null
  const rest = async (c: Context<XrpcEnv>, next: () => Promise<void>) => {
    if (spec.busy) c.set('busy', spec.busy)
    if (spec.auth === 'required') c.set('viewer', await verifiedViewer(d, c, spec.nsid))
    else if (spec.auth === 'optional') c.set('requester', await requesterOf(d, c, spec.nsid))
    if (spec.input) c.set('input', await readInput(c, spec.nsid, spec.input))
    await next()
  }
  return limit ? (c, next) => limit(c, () => rest(c, next)) as Promise<Response | undefined> : rest
}
