import readline from 'node:readline'
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { lineChunks } from './replay-source.ts'

const viaReadline = async (bytes: Buffer) => {
  const out: string[] = []
  for await (const l of readline.createInterface({ input: Readable.from([bytes]), crlfDelay: Infinity })) out.push(l)
  return out
}
const viaLineChunks = async (bytes: Buffer, chunkSize: number) => {
  const parts: Buffer[] = []
  for (let i = 0; i < bytes.length; i += chunkSize) parts.push(bytes.subarray(i, i + chunkSize))
  const out: string[] = []
  for await (const lines of lineChunks(Readable.from(parts))) out.push(...lines)
  return out
}

describe('lineChunks', () => {
  it('splits lines as readline does (\\n, \\r\\n, a lone \\r), wherever the chunks end, with bad UTF-8 replaced within its line', async () => {
    let seed = 7
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    for (let t = 0; t < 500; t++) {
      // line breaks, pieces of a 4-byte UTF-8 sequence (whole or cut), and ASCII
      const body = Array.from({ length: Math.floor(rand() * 60) }, () => {
        const r = rand()
        return r < 0.15 ? [10] : r < 0.3 ? [13] : r < 0.4 ? [0xf0, 0x9f, 0x98, 0x80] : r < 0.45 ? [0xf0, 0x9f] : [97 + Math.floor(rand() * 3)]
      }).flat()
      const bytes = Buffer.from([...body, 10])
      const expected = await viaReadline(bytes)
      for (const size of [1, 2, 3, 7, 1 << 20]) expect(await viaLineChunks(bytes, size)).toEqual(expected)
    }
  })

  it('keeps a last line without a line break, and counts blank lines', async () => {
    expect(await viaLineChunks(Buffer.from('a\n\n\r\nb\rc'), 2)).toEqual(['a', '', '', 'b', 'c'])
    expect(await viaLineChunks(Buffer.from('a\r'), 1)).toEqual(['a'])
    expect(await viaLineChunks(Buffer.from(''), 1)).toEqual([])
  })
})
