import { pino, type Logger } from 'pino'

export type { Logger }

/**
 * The root logger: JSON lines, `authorization` headers redacted, pretty
 * output when stdout is a terminal. Subsystems take a child:
 * `logger.child({ sub: 'ingest' })`.
 */
export function createLogger(level = 'info', name = 'skysift'): Logger {
  const pretty = process.stdout.isTTY && process.env.NODE_ENV !== 'production'
  return pino({
    name,
    level,
    redact: {
      paths: ['authorization', 'headers.authorization', 'req.headers.authorization', '*.authorization', 'password', '*.password'],
      censor: '[redacted]',
    },
    transport: pretty ? { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } : undefined,
  })
}

/** A logger that writes nothing (tests, benchmarks). */
export const silentLogger: Logger = pino({ level: 'silent' })
