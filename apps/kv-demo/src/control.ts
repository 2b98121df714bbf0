/**
 * A replica's control endpoint on 127.0.0.1 (the supervisor's window into the process):
 *
 *   GET  /status      the replica's status as JSON (status.ts: ReplicaStatusJson)
 *   POST /partition   body {"partitioned": true|false}: cut the replica off from every other
 *                     replica, or reconnect it (partition.ts); answers the partition's status
 *
 * GET is open to any local process (read-only; no CORS headers, so a web page cannot read the
 * answer). Every other request is refused, and changes nothing, unless it
 *
 *   - carries no `Origin` header (browsers send one; the supervisor does not): else 403,
 *   - carries `authorization: Bearer <the replica's control secret>` (control-secret.ts),
 *     compared in constant time: missing 401, wrong 403,
 *   - and, for a POST, has `content-type: application/json` (a cross-site form cannot send it
 *     without a CORS preflight, which is itself refused): else 415.
 *
 * A request whose Host header names anything but 127.0.0.1, localhost or [::1] is refused (403),
 * so a page whose domain is rebound to 127.0.0.1 cannot read the status as a same-origin page.
 * Anything else is refused with a 4xx status and a one-line reason (wrong method 405, unknown
 * path 404, malformed body 400, body over 1 KiB 413); a body over 64 KiB closes the connection.
 * Hostile requests never throw out of the handler.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http'
import type { PartitionStatus } from './partition.js'

export interface ControlHandlers {
  /** The control secret (hex) that mutating requests must carry as `authorization: Bearer <secret>`. */
  readonly secret: string
  readonly status: () => unknown
  readonly partition: (partitioned: boolean) => PartitionStatus
}

export const MAX_CONTROL_BODY_BYTES = 1024
/** Past this, the request is not read further: the connection is closed. */
const DISCARD_LIMIT_BYTES = 64 * 1024

/** The body of `POST /partition`: `{"partitioned": true}` or `{"partitioned": false}`, nothing else. */
export function parsePartitionBody(text: string): { readonly ok: true; readonly partitioned: boolean } | { readonly ok: false; readonly error: string } {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { ok: false, error: 'the body is not JSON: expected {"partitioned": true|false}' }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, error: 'expected a JSON object {"partitioned": true|false}' }
  const keys = Object.keys(value)
  if (keys.length !== 1 || keys[0] !== 'partitioned') return { ok: false, error: `expected exactly the field "partitioned", got ${JSON.stringify(keys.slice(0, 5))}` }
  const partitioned = (value as { partitioned: unknown }).partitioned
  if (typeof partitioned !== 'boolean') return { ok: false, error: '"partitioned" must be true or false' }
  return { ok: true, partitioned }
}

function reply(res: ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return
  const json = typeof body !== 'string'
  res.writeHead(code, { 'content-type': json ? 'application/json' : 'text/plain', ...headers }).end(json ? JSON.stringify(body) : `${body}\n`)
}

/** Reads a body of at most MAX_CONTROL_BODY_BYTES; undefined when it is larger. */
function readBody(req: IncomingMessage, onBody: (text: string | undefined) => void, onAbandon: () => void): void {
  const chunks: Buffer[] = []
  let size = 0
  req.on('data', (chunk: Buffer) => {
    size += chunk.length
    if (size > DISCARD_LIMIT_BYTES) {
      req.removeAllListeners('data')
      onAbandon()
      return
    }
    if (size <= MAX_CONTROL_BODY_BYTES) chunks.push(chunk)
  })
  req.on('end', () => {
    if (size <= DISCARD_LIMIT_BYTES) onBody(size > MAX_CONTROL_BODY_BYTES ? undefined : Buffer.concat(chunks).toString('utf8'))
  })
  req.on('error', () => undefined)
}

const LOCAL_HOST = /^(127\.0\.0\.1|localhost|\[::1\])(:[0-9]{1,5})?$/i

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest()
}

/** The `authorization: Bearer <secret>` header, compared in constant time (of equal-length digests). */
function authorized(header: string | undefined, expected: Buffer): 'ok' | 'missing' | 'wrong' {
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '')
  if (m === null) return 'missing'
  return timingSafeEqual(digest(m[1] as string), expected) ? 'ok' : 'wrong'
}

/** Why a mutating request is refused before its body is read, or undefined when it may go on. */
function refuseMutation(req: IncomingMessage, expected: Buffer): { code: number; reason: string; headers?: Record<string, string> } | undefined {
  if (req.headers.origin !== undefined) return { code: 403, reason: `${req.method} refused: it carries an Origin header (a request from a web page)` }
  const auth = authorized(req.headers.authorization, expected)
  if (auth === 'missing') return { code: 401, reason: `${req.method} needs the replica's control secret: authorization: Bearer <hex of <run folder>/<id>.control-secret>`, headers: { 'www-authenticate': 'Bearer' } }
  if (auth === 'wrong') return { code: 403, reason: `${req.method} refused: wrong control secret` }
  return undefined
}

function isJson(contentType: string | undefined): boolean {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() === 'application/json'
}

export function controlHandler(h: ControlHandlers): RequestListener {
  const expected = digest(h.secret)
  return (req, res) => {
    res.on('error', () => undefined)
    const host = req.headers.host
    if (host !== undefined && !LOCAL_HOST.test(host)) return reply(res, 403, 'the Host header must be 127.0.0.1 or localhost', { connection: 'close' })
    if (req.method !== 'GET') {
      const refused = refuseMutation(req, expected)
      // The body is not read: the connection is closed after the answer.
      if (refused !== undefined) return reply(res, refused.code, refused.reason, { ...refused.headers, connection: 'close' })
    }
    const path = (req.url ?? '').split('?')[0]
    if (path === '/status' || path === '/') {
      if (req.method !== 'GET') return reply(res, 405, `${path} answers GET only`, { allow: 'GET' })
      let body: string
      try {
        body = JSON.stringify(h.status())
      } catch (err) {
        return reply(res, 500, `status: ${(err as Error).message}`)
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(body)
      return
    }
    if (path === '/partition') {
      if (req.method !== 'POST') return reply(res, 405, '/partition answers POST only, body {"partitioned": true|false}', { allow: 'POST' })
      if (!isJson(req.headers['content-type'])) return reply(res, 415, 'POST /partition needs content-type: application/json', { connection: 'close' })
      readBody(
        req,
        (text) => {
          if (text === undefined) return reply(res, 413, `the body exceeds ${MAX_CONTROL_BODY_BYTES} bytes`)
          const parsed = parsePartitionBody(text)
          if (!parsed.ok) return reply(res, 400, parsed.error)
          try {
            reply(res, 200, h.partition(parsed.partitioned))
          } catch (err) {
            reply(res, 500, `partition: ${(err as Error).message}`)
          }
        },
        () => {
          reply(res, 413, `the body exceeds ${MAX_CONTROL_BODY_BYTES} bytes`, { connection: 'close' })
          req.destroy()
        },
      )
      return
    }
    reply(res, 404, 'not found: GET /status, POST /partition')
  }
}
