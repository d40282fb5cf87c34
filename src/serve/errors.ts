import type { Context } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { Logger } from '../logger.ts'
import { BadCursorError } from '../feed/skeleton.ts'
import { FieldError } from '../util/field-error.ts'
import { QueueFullError } from '../util/work-queue.ts'

/** An XRPC error: rendered as `{ error, message }` with its status. */
export class XrpcError extends Error {
  readonly status: ContentfulStatusCode
  readonly error: string
  constructor(status: ContentfulStatusCode, error: string, message: string) {
    super(message)
    this.name = 'XrpcError'
    this.status = status
    this.error = error
  }
}

export const invalidRequest = (message: string) => new XrpcError(400, 'InvalidRequest', message)
export const authRequired = (message: string) => new XrpcError(401, 'AuthRequired', message)

/**
 * The XRPC error an error thrown by a method stands for, or null for an
 * unexpected one: a bad mix (FieldError), a cursor this server did not make
 * (BadCursorError), a full work queue (QueueFullError, in the words the method
 * set as `busy`, see middleware.ts).
 */
export function xrpcErrorOf(err: Error, c: Context): XrpcError | null {
  if (err instanceof XrpcError) return err
  if (err instanceof FieldError) return new XrpcError(400, 'InvalidMix', err.message)
  if (err instanceof BadCursorError) return invalidRequest(`Error: ${err.message}`)
  if (err instanceof QueueFullError)
    return new XrpcError(429, 'RateLimitExceeded', (c.get('busy') as string | undefined) ?? 'too many requests are waiting; try again in a moment')
  if ((err as { status?: number }).status === 400 || err instanceof SyntaxError) return invalidRequest(err.message || 'bad request')
  return null
}

/** The one place errors become responses: known ones as XRPC errors, the rest logged and a 500. */
export function errorHandler(log: Logger) {
  return (err: Error, c: Context) => {
    const known = xrpcErrorOf(err, c)
    if (known) return c.json({ error: known.error, message: known.message }, known.status)
    log.error({ err, path: c.req.path }, 'unhandled error')
    return c.json({ error: 'InternalServerError', message: 'Internal Server Error' }, 500)
  }
}
