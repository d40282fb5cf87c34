import { describe, expect, it } from 'vitest'
import { ConfigError, DEFAULT_SOURCE, didWebFor, readConfig } from './config.ts'

describe('readConfig', () => {
  it('runs locally with no settings at all', () => {
    const c = readConfig({})
    expect(c.port).toBe(3000)
    expect(c.dbPath).toMatch(/data\/skysift\.db$/)
    expect(c.redisUrl).toBe('redis://127.0.0.1:6379')
    expect(c.queuePrefix).toBe('skysift')
    expect(c.source).toEqual({ kind: 'jetstream', url: DEFAULT_SOURCE.slice('jetstream:'.length) })
    expect(c.publicUrl).toBe('http://localhost:3000')
    expect(c.serviceDid).toBe('did:web:localhost%3A3000')
    expect(c.allowInsecureHttp).toBe(false)
    expect(Object.isFrozen(c)).toBe(true)
  })

  it('derives the service DID from the public URL', () => {
    expect(readConfig({ SKYSIFT_PUBLIC_URL: 'https://feeds.example.org/' }).serviceDid).toBe('did:web:feeds.example.org')
    expect(didWebFor('http://localhost:4123')).toBe('did:web:localhost%3A4123')
    expect(readConfig({ SKYSIFT_SERVICE_DID: 'did:plc:abcdefghijklmnopqrstuvwx' }).serviceDid).toBe('did:plc:abcdefghijklmnopqrstuvwx')
  })

  it('reads the publisher account for skysift publish', () => {
    const c = readConfig({
      SKYSIFT_PUBLISHER_HANDLE: ' alice.example.com ',
      SKYSIFT_PUBLISHER_PASSWORD: 'xxxx-xxxx',
      SKYSIFT_PUBLISHER_SERVICE: 'https://pds.example.org',
    })
    expect([c.publisherHandle, c.publisherPassword, c.publisherService]).toEqual(['alice.example.com', 'xxxx-xxxx', 'https://pds.example.org'])
    const unset = readConfig({})
    expect([unset.publisherHandle, unset.publisherPassword, unset.publisherService]).toEqual([undefined, undefined, undefined])
  })

  it('publishes for edge nodes only when asked', () => {
    expect(readConfig({}).edgePublish).toBe(false)
    expect(readConfig({ SKYSIFT_EDGE_PUBLISH: '1' }).edgePublish).toBe(true)
    expect(() => readConfig({ SKYSIFT_EDGE_PUBLISH: 'sure' })).toThrow(/SKYSIFT_EDGE_PUBLISH/)
  })

  it('parses each kind of source', () => {
    expect(readConfig({ SKYSIFT_SOURCE: 'firehose:ws://localhost:2583' }).source).toEqual({ kind: 'firehose', url: 'ws://localhost:2583' })
    expect(readConfig({ SKYSIFT_SOURCE: 'replay:/tmp/x.jsonl#recorded' }).source).toEqual({ kind: 'replay', path: '/tmp/x.jsonl', pace: 'recorded' })
  })

  it('names every bad variable in one error', () => {
    let err: unknown
    try {
      readConfig({
        SKYSIFT_PORT: 'eighty',
        REDIS_URL: 'localhost:6379',
        SKYSIFT_SOURCE: 'kafka:x',
        SKYSIFT_ALLOW_INSECURE_HTTP: 'maybe',
        SKYSIFT_QUEUE_PREFIX: 'a:b',
      })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ConfigError)
    const msg = (err as Error).message
    for (const name of ['SKYSIFT_PORT', 'REDIS_URL', 'SKYSIFT_SOURCE', 'SKYSIFT_ALLOW_INSECURE_HTTP', 'SKYSIFT_QUEUE_PREFIX']) expect(msg).toContain(name)
    expect((err as ConfigError).problems).toHaveLength(5)
    expect(msg).toContain('"eighty"')
  })

  it('takes a queue prefix with one Redis Cluster hash tag, and refuses anything else with braces', () => {
    for (const ok of ['{skysift}', 'sky-{a_1}', '{x}-events', 'plain']) expect(readConfig({ SKYSIFT_QUEUE_PREFIX: ok }).queuePrefix).toBe(ok)
    for (const bad of ['{a}{b}', 'a{b', 'a}b', '{}', '{a:b}', 'a b']) {
      expect(() => readConfig({ SKYSIFT_QUEUE_PREFIX: bad }), bad).toThrow(/SKYSIFT_QUEUE_PREFIX/)
    }
  })

  it('treats empty variables as unset', () => {
    expect(readConfig({ SKYSIFT_PORT: '' }).port).toBe(3000)
  })
})
