/**
 * The replica's control endpoint and its partition switch: the switch drops frames to and from
 * replicas (not clients) and counts them; the endpoint answers hostile requests (wrong method,
 * unknown path, malformed, oversize or endless bodies) with a 4xx and keeps serving; a mutating
 * request needs the replica's control secret, no Origin header and a JSON content type; the
 * secret file is owner-only, and the supervisor reads it and sends it.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { type OutgoingHttpHeaders, type Server, createServer, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Membership, type Transport, generateCluster } from '@bftrc/crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_CONTROL_BODY_BYTES, controlHandler, parsePartitionBody } from '../src/control.js'
import { ControlSecretError, newControlSecret, readControlSecret, writeControlSecret } from '../src/control-secret.js'
import { controlSecretFile, layout } from '../src/files.js'
import { PartitionableTransport } from '../src/partition.js'
import { Supervisor } from '../src/supervisor.js'

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

const SECRET = newControlSecret()
/** What the supervisor sends with a mutating request. */
const AUTH = { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' }

describe('the control endpoint', () => {
  let server: Server
  let port = 0
  let partitioned = false
  let statusThrows = false
  beforeAll(async () => {
    server = createServer(
      controlHandler({
        secret: SECRET,
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

  /** One request; the status, body and headers, or the error if the connection was cut. */
  function call(method: string, path: string, body?: string | Buffer, headers: OutgoingHttpHeaders = {}): Promise<{ status: number; text: string; headers: Record<string, unknown> } | { error: string }> {
    return new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port, method, path, headers: { ...headers, ...(body === undefined ? {} : { 'content-length': Buffer.byteLength(body) }) } }, (res) => {
        let text = ''
        res.on('data', (d) => (text += d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }))
        res.on('error', (err) => resolve({ error: err.message }))
      })
      req.on('error', (err) => resolve({ error: err.message }))
      req.end(body)
    })
  }

  it('switches the partition on and off with a valid POST, and shows it in the status', async () => {
    expect(await call('POST', '/partition', '{"partitioned":true}', AUTH)).toMatchObject({ status: 200, text: expect.stringContaining('"partitioned":true') })
    expect(await call('GET', '/status')).toMatchObject({ status: 200, text: JSON.stringify({ id: 'kv/0', partitioned: true }) })
    expect(await call('POST', '/partition', '{"partitioned":false}', AUTH)).toMatchObject({ status: 200 })
    expect(partitioned).toBe(false)
  })

  it('refuses wrong methods, unknown paths and malformed bodies with a 4xx, changing nothing (secret or not)', async () => {
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
      const r = await call(method, path, body, method === 'GET' ? {} : AUTH)
      expect(r, `${method} ${path}`).toMatchObject({ status: expected })
      // Without the secret, a mutating request is refused before anything else is looked at.
      if (method !== 'GET') expect(await call(method, path, body), `${method} ${path} without the secret`).toMatchObject({ status: 401 })
    }
    expect(partitioned).toBe(false)
    // A body of a megabyte is not read: the connection is closed (or refused with 413, or 401 without the secret).
    const huge = await call('POST', '/partition', Buffer.alloc(1 << 20, 0x7b), AUTH)
    if ('status' in huge) expect(huge.status).toBe(413)
    const hugeNoSecret = await call('POST', '/partition', Buffer.alloc(1 << 20, 0x7b))
    if ('status' in hugeNoSecret) expect(hugeNoSecret.status).toBe(401)
    expect(partitioned).toBe(false)
    // A status that cannot be produced is a 500, not a crash.
    statusThrows = true
    expect(await call('GET', '/status')).toMatchObject({ status: 500, text: expect.stringContaining('boom') })
    statusThrows = false
    // And the endpoint still serves.
    expect(await call('GET', '/status')).toMatchObject({ status: 200 })
  })

  it("refuses POST /partition without the data folder's secret (was: any local process could partition a replica)", async () => {
    const r = await call('POST', '/partition', '{"partitioned":true}', { 'content-type': 'application/json' })
    expect(r).toMatchObject({ status: 401, text: expect.stringContaining('control secret') })
    expect(partitioned).toBe(false)
    expect(await call('GET', '/status')).toMatchObject({ status: 200, text: JSON.stringify({ id: 'kv/0', partitioned: false }) })
  })

  it('refuses a wrong secret with 403 (or 401 when it is no Bearer token), changing nothing', async () => {
    const body = '{"partitioned":true}'
    const other = newControlSecret()
    for (const authorization of [`Bearer ${other}`, `Bearer ${SECRET.slice(0, 63)}`, `Bearer ${SECRET}0`, `Bearer ${SECRET.toUpperCase()}`, 'Bearer x']) {
      expect(await call('POST', '/partition', body, { 'content-type': 'application/json', authorization }), authorization).toMatchObject({ status: 403, text: 'POST refused: wrong control secret\n' })
    }
    for (const authorization of [SECRET, `Basic ${Buffer.from(`u:${SECRET}`).toString('base64')}`, 'Bearer', '']) {
      expect(await call('POST', '/partition', body, { 'content-type': 'application/json', authorization }), authorization).toMatchObject({ status: 401 })
    }
    expect(partitioned).toBe(false)
  })

  it('refuses a mutating request that carries an Origin header, even with the secret, and sends no CORS headers', async () => {
    for (const origin of ['http://evil.example', 'null', `http://127.0.0.1:${port}`]) {
      const r = await call('POST', '/partition', '{"partitioned":true}', { ...AUTH, origin })
      expect(r, origin).toMatchObject({ status: 403, text: expect.stringContaining('Origin') })
    }
    // A CORS preflight is refused too, and nothing in any answer lets a page read it.
    const preflight = await call('OPTIONS', '/partition', undefined, { origin: 'http://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' })
    expect(preflight).toMatchObject({ status: 403 })
    const status = await call('GET', '/status', undefined, { origin: 'http://evil.example' })
    expect(status).toMatchObject({ status: 200 })
    for (const r of [preflight, status]) {
      expect(Object.keys((r as { headers: Record<string, unknown> }).headers).filter((h) => h.startsWith('access-control-'))).toEqual([])
    }
    expect(partitioned).toBe(false)
  })

  it('refuses POST /partition without content-type: application/json, even with the secret', async () => {
    const authorization = AUTH.authorization
    for (const type of [undefined, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', 'text/json']) {
      const headers = type === undefined ? { authorization } : { authorization, 'content-type': type }
      expect(await call('POST', '/partition', '{"partitioned":true}', headers), String(type)).toMatchObject({ status: 415 })
    }
    expect(partitioned).toBe(false)
  })

  it('accepts the correct secret with a JSON content type (a charset parameter is fine)', async () => {
    expect(await call('POST', '/partition', '{"partitioned":true}', { authorization: `bearer  ${SECRET}`, 'content-type': 'Application/JSON; charset=utf-8' })).toMatchObject({ status: 200 })
    expect(partitioned).toBe(true)
    expect(await call('POST', '/partition', '{"partitioned":false}', AUTH)).toMatchObject({ status: 200 })
    expect(partitioned).toBe(false)
  })

  it('keeps GET /status open to local processes, but not to a page whose domain is rebound to 127.0.0.1', async () => {
    expect(await call('GET', '/status')).toMatchObject({ status: 200 })
    expect(await call('GET', '/status', undefined, { host: `localhost:${port}` })).toMatchObject({ status: 200 })
    expect(await call('GET', '/status', undefined, { host: `evil.example:${port}` })).toMatchObject({ status: 403, text: expect.stringContaining('Host') })
    expect(await call('POST', '/partition', '{"partitioned":true}', { ...AUTH, host: `evil.example:${port}` })).toMatchObject({ status: 403 })
    expect(partitioned).toBe(false)
  })
})

describe('the control secret file', () => {
  let dir: string
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kv-demo-secret-'))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('is 32 random bytes as hex, written with mode 0600, and read back', () => {
    const path = join(dir, 'kv-0.control-secret')
    const secret = newControlSecret()
    expect(secret).toMatch(/^[0-9a-f]{64}$/)
    expect(newControlSecret()).not.toBe(secret)
    writeControlSecret(path, secret)
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(readControlSecret(path)).toBe(secret)
    // A world-readable file left at the path is replaced by an owner-only one.
    writeFileSync(path, `${newControlSecret()}\n`, { mode: 0o644 })
    chmodSync(path, 0o644)
    writeControlSecret(path, secret)
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(readFileSync(path, 'utf8')).toBe(`${secret}\n`)
  })

  it('refuses a secret file readable by group or others (0644) with a ControlSecretError', () => {
    const path = join(dir, 'open.control-secret')
    writeFileSync(path, `${newControlSecret()}\n`, { mode: 0o600 })
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      chmodSync(path, mode)
      expect(() => readControlSecret(path), mode.toString(8)).toThrow(ControlSecretError)
      expect(() => readControlSecret(path)).toThrow(`mode 0${mode.toString(8)}`)
    }
    chmodSync(path, 0o400)
    expect(readControlSecret(path)).toMatch(/^[0-9a-f]{64}$/)
  })

  it('refuses a missing, malformed or non-file secret with a ControlSecretError saying which', () => {
    const problem = (path: string) => {
      try {
        readControlSecret(path)
      } catch (err) {
        return err instanceof ControlSecretError ? err.problem : `not a ControlSecretError: ${err}`
      }
      return 'read'
    }
    expect(problem(join(dir, 'absent'))).toBe('missing')
    const bad = join(dir, 'bad.control-secret')
    writeFileSync(bad, 'not hex\n', { mode: 0o600 })
    expect(problem(bad)).toBe('malformed')
    mkdirSync(join(dir, 'folder'), { mode: 0o700 })
    expect(problem(join(dir, 'folder'))).toBe('not-a-file')
    expect(() => writeControlSecret(join(dir, 'x'), 'short')).toThrow(ControlSecretError)
  })
})

describe("the supervisor's partition switch", () => {
  it('sends the secret from the run folder, and refuses to use a secret file readable by others', async () => {
    const root = mkdtempSync(join(tmpdir(), 'kv-demo-sup-'))
    const l = layout(root)
    mkdirSync(l.run, { recursive: true })
    const secret = newControlSecret()
    let switched: boolean | undefined
    const server = createServer(
      controlHandler({
        secret,
        status: () => ({}),
        partition: (on) => {
          switched = on
          return { partitioned: on, episodes: 1, droppedIn: 0, droppedOut: 0, since: on ? 1 : null }
        },
      }),
    )
    try {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      const membership = Membership.fromConfig(generateCluster({ groups: [{ name: 'kv', f: 1 }], basePort: 45_000 }).config)
      const events: string[] = []
      const sup = new Supervisor(l, membership, new Map(), (e) => events.push(e.text))
      const slot = sup.slot('kv/0')
      slot.state = 'up'
      slot.controlPort = (server.address() as { port: number }).port
      // A world-readable secret is not used: nothing is sent, and the event says why.
      writeFileSync(controlSecretFile(l, 'kv/0'), `${secret}\n`, { mode: 0o644 })
      chmodSync(controlSecretFile(l, 'kv/0'), 0o644)
      expect(await sup.partition('kv/0', true)).toBeUndefined()
      expect(switched).toBeUndefined()
      expect(events.join('\n')).toContain('mode 0644')
      // A wrong secret is refused by the replica.
      writeControlSecret(controlSecretFile(l, 'kv/0'), newControlSecret())
      expect(await sup.partition('kv/0', true)).toBeUndefined()
      expect(switched).toBeUndefined()
      expect(events.join('\n')).toContain('refused with 403')
      // The replica's own secret works.
      slot.controlSecret = undefined
      writeControlSecret(controlSecretFile(l, 'kv/0'), secret)
      expect(await sup.partition('kv/0', true)).toMatchObject({ partitioned: true })
      expect(switched).toBe(true)
      expect(slot.partitioned).toBe(true)
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()))
      rmSync(root, { recursive: true, force: true })
    }
  })
})
