/**
 * Benchmark helper (child process): bench/sandbox.ts's sandboxBench(), away
 * from the server process so its worker threads and QuickJS memory do not
 * count against the server's.
 */
import { sandboxBench } from './sandbox.ts'
import { serveHelper } from './util.ts'

serveHelper(() => sandboxBench())
