/**
 * The replica's control endpoint and its partition switch: the switch drops frames to and from
 * replicas (not clients) and counts them; the endpoint answers hostile requests (wrong method,
 * unknown path, malformed, oversize or endless bodies) with a 4xx and keeps serving.
 */
import { type Server, createServer, request } from 'node:http'
import type { Transport } from '@bftrc/crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_CONTROL_BODY_BYTES, controlHandler, parsePartitionBody } from '../src/control.js'
import { PartitionableTransport } from '../src/partition.js'

/** An in-memory transport: records what is sent, lets the test deliver frames. */
class FakeTransport implements Transport {
  readonly sent: Array<[string, number]> = []
  private handler: (from: string, bytes: Uint8Array) => void = () => undefined
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  send(to: string, bytes: Uint8Array): boolean {
    this.sent.push([to, bytes[0] as number])
    return true
  }
  onMessage(handler: (from: string, bytes: Uint8Array) => void): void {
    this.handler = handler
  }
  deliver(from: string, byte: number): void {
    this.handler(from, new Uint8Array([byte]))
  }
  metrics(): unknown {
    return { fake: true }
  }
}

const replicas = new Set(['kv/0', 'kv/1', 'bank/0'])

describe('the partition switch', () => {
  it('drops frames to and from replicas while on, lets clients through, counts the drops', () => {
    const inner = new FakeTransport()
    const net = new PartitionableTransport(inner, (id) => replicas.has(id) && id !== 'kv/0')
    const received: Array<[string, number]> = []
    net.onMessage((from, bytes) => received.push([from, bytes[0] as number]))
    net.send('kv/1', new Uint8Array([1]))
    inner.deliver('bank/0', 2)
    expect(net.set(true, 1000)).toEqual({ partitioned: true, episodes: 1, droppedIn: 0, droppedOut: 0, since: 1000 })
    expect(net.send('kv/1', new Uint8Array([3]))).toBe(true)
    expect(net.send('bank/0', new Uint8Array([4]))).toBe(true)
    net.send('supervisor', new Uint8Array([5]))
    inner.deliver('kv/1', 6)
    inner.deliver('supervisor', 7)
    // Switching on twice is one episode.
    expect(net.set(true, 2000)).toMatchObject({ episodes: 1, since: 1000 })
    expect(net.set(false)).toEqual({ partitioned: false, episodes: 1, droppedIn: 1, droppedOut: 2, since: null })
    net.send('kv/1', new Uint8Array([8]))
    inner.deliver('kv/1', 9)
    expect(inner.sent).toEqual([
      ['kv/1', 1],
      ['supervisor', 5],
      ['kv/1', 8],
    ])
    expect(received).toEqual([
      ['bank/0', 2],
      ['supervisor', 7],
      ['kv/1', 9],
    ])
    expect(net.set(true).episodes).toBe(2)
    expect(net.metrics()).toEqual({ fake: true })
  })
})

describe('the partition request body', () => {
  it('accepts exactly {"partitioned": true|false}', () => {
    expect(parsePartitionBody('{"partitioned":true}')).toEqual({ ok: true, partitioned: true })
    expect(parsePartitionBody(' { "partitioned" : false } ')).toEqual({ ok: true, partitioned: false })
    for (const bad of ['', 'on', 'true', 'null', '[]', '[true]', '{}', '{"partitioned":"true"}', '{"partitioned":1}', '{"partitioned":null}', '{"partitioned":true,"x":1}', '{"Partitioned":true}', '{"partitioned":true', '{"__proto__":{"partitioned":true}}']) {
      const r = parsePartitionBody(bad)
      expect(r.ok, bad).toBe(false)
      expect((r as { error: string }).error.length, bad).toBeGreaterThan(0)
    }
  })
})

describe('the control endpoint', () => {
  let server: Server
  let port = 0
  let partitioned = false
  let statusThrows = false
  beforeAll(async () => {
    server = createServer(
      controlHandler({
        status: () => {
          if (statusThrows) throw new Error('boom')
          return { id: 'kv/0', partitioned }
        },
        partition: (on) => {
          partitioned = on
          return { partitioned: on, episodes: 1, droppedIn: 0, droppedOut: 0, since: on ? 1 : null }
        },
      }),
    )
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as { port: number }).port
  })
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

  /** One request; the status and body, or the error if the connection was cut. */
  function call(method: string, path: string, body?: string | Buffer): Promise<{ status: number; text: string } | { error: string }> {
    return new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port, method, path, headers: body === undefined ? {} : { 'content-length': Buffer.byteLength(body) } }, (res) => {
        let text = ''
        res.on('data', (d) => (text += d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
        res.on('error', (err) => resolve({ error: err.message }))
      })
      req.on('error', (err) => resolve({ error: err.message }))
      req.end(body)
    })
  }

  it('switches the partition on and off with a valid POST, and shows it in the status', async () => {
    expect(await call('POST', '/partition', '{"partitioned":true}')).toMatchObject({ status: 200, text: expect.stringContaining('"partitioned":true') })
    expect(await call('GET', '/status')).toEqual({ status: 200, text: JSON.stringify({ id: 'kv/0', partitioned: true }) })
    expect(await call('POST', '/partition', '{"partitioned":false}')).toMatchObject({ status: 200 })
    expect(partitioned).toBe(false)
  })

  it('refuses wrong methods, unknown paths and malformed bodies with a 4xx, changing nothing', async () => {
    const cases: Array<[string, string, string | undefined, number]> = [
      ['GET', '/partition', undefined, 405],
      ['PUT', '/partition', '{"partitioned":true}', 405],
      ['DELETE', '/partition', undefined, 405],
      ['POST', '/status', '{}', 405],
      ['POST', '/partition', '', 400],
      ['POST', '/partition', 'on', 400],
      ['POST', '/partition', '{"partitioned":"yes"}', 400],
      ['POST', '/partition', '{"partitioned":true,"and":"more"}', 400],
      ['POST', '/partition', '\u0000\u00ff garbage', 400],
      ['POST', '/partition', 'x'.repeat(MAX_CONTROL_BODY_BYTES + 1), 413],
      ['GET', '/nothing-here', undefined, 404],
      ['POST', '/../partition', '{"partitioned":true}', 404],
    ]
    for (const [method, path, body, expected] of cases) {
      const r = await call(method, path, body)
      expect(r, `${method} ${path}`).toMatchObject({ status: expected })
    }
    expect(partitioned).toBe(false)
    // A body of a megabyte is not read: the connection is closed (or refused with 413).
    const huge = await call('POST', '/partition', Buffer.alloc(1 << 20, 0x7b))
    if ('status' in huge) expect(huge.status).toBe(413)
    expect(partitioned).toBe(false)
    // A status that cannot be produced is a 500, not a crash.
    statusThrows = true
    expect(await call('GET', '/status')).toMatchObject({ status: 500, text: expect.stringContaining('boom') })
    statusThrows = false
    // And the endpoint still serves.
    expect(await call('GET', '/status')).toMatchObject({ status: 200 })
  })
})
