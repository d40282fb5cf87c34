/**
 * Benchmark helper (child process): a stand-in PLC directory that serves
 * the DID documents of the benchmark's synthetic subscribers, so signed
 * service-auth tokens verify without the network. Answers with its port,
 * then serves until killed.
 */
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { serveHelper } from './util.ts'

export interface PlcInput {
  /** JSON file: { [did]: didDocument } */
  docsFile: string
}

async function start(input: PlcInput): Promise<{ port: number }> {
  const docs = new Map<string, string>(
    Object.entries(JSON.parse(fs.readFileSync(input.docsFile, 'utf8')) as Record<string, unknown>).map(([did, doc]) => [did, JSON.stringify(doc)]),
  )
  let served = 0
  const server = http.createServer((req, res) => {
    const did = decodeURIComponent((req.url ?? '/').slice(1).split('?')[0])
    const doc = docs.get(did)
    served++
    if (!doc) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"DID not registered"}')
      return
    }
    res.writeHead(200, { 'content-type': 'application/did+ld+json' }).end(doc)
  })
  server.keepAliveTimeout = 30_000
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  process.once('SIGTERM', () => {
    process.stderr.write(`[plc] served ${served} DID documents\n`)
    server.close()
    server.closeAllConnections()
    process.exit(0)
  })
  return { port: (server.address() as AddressInfo).port }
}

serveHelper(start, { exit: false })
