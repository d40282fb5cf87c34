import type { Context } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { Logger } from '../logger.ts'

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

/** The one place errors become responses: known ones as XRPC errors, the rest logged and a 500. */
export function errorHandler(log: Logger) {
  return (err: Error, c: Context) => {
    if (err instanceof XrpcError) return c.json({ error: err.error, message: err.message }, err.status)
    if ((err as { status?: number }).status === 400 || err instanceof SyntaxError) {
      return c.json({ error: 'InvalidRequest', message: err.message || 'bad request' }, 400)
    }
    log.error({ err, path: c.req.path }, 'unhandled error')
    return c.json({ error: 'InternalServerError', message: 'Internal Server Error' }, 500)
  }
}
