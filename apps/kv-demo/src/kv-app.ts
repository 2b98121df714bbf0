/**
 * The KV server group's application: a sorted map of string keys to string values with get, put,
 * delete, compare-and-set and prefix scan. Deterministic: its state is the map and a revision
 * counter, its snapshot is the canonical encoding of both (keys in order), and every operation
 * and result is a canonical-encoded map. Durable on disk through the replica's storage
 * (checkpoints and the committed log, see core-agreement's LevelStorage).
 *
 * Operations (from plain clients as ordered requests or read-only queries, and from other groups
 * as calls):
 *   { op: 'get',  key }                               → { ok, found, value?, rev? }
 *   { op: 'put',  key, value }                        → { ok, rev }
 *   { op: 'del',  key }                               → { ok, found, rev }
 *   { op: 'cas',  key, expect: string|null, value: string|null }
 *                                                     → { ok, swapped, current: string|null, rev }
 *     (expect null: the key must be absent; value null: delete on success)
 *   { op: 'scan', prefix, after?, limit? }            → { ok, entries: [[key, value, rev]…], more, next? }
 *     (keys starting with `prefix`, after the key `after`, at most `limit` and ~48 KiB of result)
 * A malformed or refused operation answers { ok: false, error } and changes nothing.
 */
import type { AppContext, CallContext, GroupApp } from '@bftrc/client-agreement'
import { DecodeError, EncodeError, type Value, type ValueMap, asArray, asMap, asString, asUint, decode, encode, sha256, toHex } from '@bftrc/crypto'

export const MAX_KEY_BYTES = 512
export const MAX_VALUE_BYTES = 16 * 1024
export const MAX_KEYS = 100_000
export const DEFAULT_SCAN_LIMIT = 100
export const MAX_SCAN_LIMIT = 1000
/** A scan stops adding entries once its result would pass this (results are capped at 64 KiB). */
export const MAX_SCAN_RESULT_BYTES = 48 * 1024
/** Largest encoded operation accepted. */
export const MAX_OP_BYTES = MAX_KEY_BYTES * 2 + MAX_VALUE_BYTES * 2 + 256

export type KvOp =
  | { readonly op: 'get'; readonly key: string }
  | { readonly op: 'put'; readonly key: string; readonly value: string }
  | { readonly op: 'del'; readonly key: string }
  | { readonly op: 'cas'; readonly key: string; readonly expect: string | null; readonly value: string | null }
  | { readonly op: 'scan'; readonly prefix: string; readonly after?: string; readonly limit?: number }

export type KvEntry = readonly [key: string, value: string, rev: number]

export type KvResult =
  | { readonly ok: false; readonly error: string }
  | { readonly ok: true; readonly op: 'get'; readonly found: boolean; readonly value?: string; readonly rev?: number }
  | { readonly ok: true; readonly op: 'put'; readonly rev: number }
  | { readonly ok: true; readonly op: 'del'; readonly found: boolean; readonly rev: number }
  | { readonly ok: true; readonly op: 'cas'; readonly swapped: boolean; readonly current: string | null; readonly rev: number }
  | { readonly ok: true; readonly op: 'scan'; readonly entries: readonly KvEntry[]; readonly more: boolean; readonly next?: string }

export class KvError extends Error {
  override readonly name = 'KvError'
}

const utf8 = new TextEncoder()

function byteLength(s: string): number {
  return utf8.encode(s).length
}

function checkKey(key: string, field = 'key'): string {
  if (key.length === 0) throw new KvError(`${field} is empty`)
  if (byteLength(key) > MAX_KEY_BYTES) throw new KvError(`${field} exceeds ${MAX_KEY_BYTES} bytes`)
  return key
}

function checkValue(value: string): string {
  if (byteLength(value) > MAX_VALUE_BYTES) throw new KvError(`value exceeds ${MAX_VALUE_BYTES} bytes`)
  return value
}

/** Encodes an operation, checking it the way a replica will (a KvError or EncodeError otherwise). */
export function encodeKvOp(op: KvOp): Uint8Array {
  // Round-trip through the validating decoder, so a client never sends what replicas refuse.
  const bytes = encode(op as unknown as ValueMap)
  decodeKvOp(bytes)
  return bytes
}

/** Decodes and validates an operation; throws KvError, naming the problem, for anything malformed. */
export function decodeKvOp(bytes: Uint8Array): KvOp {
  try {
    return decodeKvOpUnchecked(bytes)
  } catch (err) {
    if (err instanceof DecodeError) throw new KvError(err.message)
    throw err
  }
}

function decodeKvOpUnchecked(bytes: Uint8Array): KvOp {
  if (bytes.length > MAX_OP_BYTES) throw new KvError(`operation exceeds ${MAX_OP_BYTES} bytes`)
  const m = asMap(decode(bytes, MAX_OP_BYTES), 'operation')
  const op = asString(m.op, 'op', 16)
  const only = (...fields: string[]) => {
    for (const k of Object.keys(m)) if (k !== 'op' && !fields.includes(k)) throw new KvError(`${op}: unknown field ${k}`)
  }
  const str = (v: Value | undefined, field: string) => {
    // A string has at least as many UTF-8 bytes as UTF-16 units: longer is too long.
    if (typeof v === 'string' && v.length > MAX_VALUE_BYTES) throw new KvError(`${field} exceeds ${field === 'value' || field === 'expect' ? MAX_VALUE_BYTES : MAX_KEY_BYTES} bytes`)
    return asString(v, field, MAX_VALUE_BYTES)
  }
  const strOrNull = (v: Value | undefined, field: string) => (v === null ? null : checkValue(str(v, field)))
  switch (op) {
    case 'get':
      only('key')
      return { op, key: checkKey(str(m.key, 'key')) }
    case 'put':
      only('key', 'value')
      return { op, key: checkKey(str(m.key, 'key')), value: checkValue(str(m.value, 'value')) }
    case 'del':
      only('key')
      return { op, key: checkKey(str(m.key, 'key')) }
    case 'cas':
      only('key', 'expect', 'value')
      if (!('expect' in m) || !('value' in m)) throw new KvError('cas needs expect and value (null for absent)')
      return { op, key: checkKey(str(m.key, 'key')), expect: strOrNull(m.expect, 'expect'), value: strOrNull(m.value, 'value') }
    case 'scan': {
      only('prefix', 'after', 'limit')
      const prefix = str(m.prefix, 'prefix')
      if (byteLength(prefix) > MAX_KEY_BYTES) throw new KvError(`prefix exceeds ${MAX_KEY_BYTES} bytes`)
      const limit = m.limit === undefined ? undefined : asUint(m.limit, 'limit', MAX_SCAN_LIMIT)
      if (limit === 0) throw new KvError('limit must be at least 1')
      const after = m.after === undefined ? undefined : checkKey(str(m.after, 'after'), 'after')
      return { op, prefix, ...(after !== undefined ? { after } : {}), ...(limit !== undefined ? { limit } : {}) }
    }
    default:
      throw new KvError(`unknown operation ${JSON.stringify(op)} (get, put, del, cas, scan)`)
  }
}

export function encodeKvResult(r: KvResult): Uint8Array {
  return encode(r as unknown as ValueMap)
}

/** Decodes a result (from replicas: f+1 of them vouched for it). Throws KvError if malformed. */
export function decodeKvResult(bytes: Uint8Array): KvResult {
  try {
    const m = asMap(decode(bytes), 'result')
    if (m.ok === false) return { ok: false, error: asString(m.error, 'error', 4096) }
    if (m.ok !== true) throw new KvError('result without ok')
    const op = asString(m.op, 'op', 16)
    const optStr = (v: Value | undefined) => (v === undefined ? undefined : asString(v, 'value', MAX_VALUE_BYTES))
    switch (op) {
      case 'get': {
        const value = optStr(m.value)
        return { ok: true, op, found: m.found === true, ...(value !== undefined ? { value, rev: asUint(m.rev, 'rev') } : {}) }
      }
      case 'put':
        return { ok: true, op, rev: asUint(m.rev, 'rev') }
      case 'del':
        return { ok: true, op, found: m.found === true, rev: asUint(m.rev, 'rev') }
      case 'cas':
        return { ok: true, op, swapped: m.swapped === true, current: m.current === null ? null : asString(m.current, 'current', MAX_VALUE_BYTES), rev: asUint(m.rev, 'rev') }
      case 'scan': {
        const entries = asArray(m.entries, 'entries', MAX_SCAN_LIMIT).map((e) => {
          const row = asArray(e, 'entry', 3)
          return [asString(row[0], 'key', MAX_KEY_BYTES), asString(row[1], 'value', MAX_VALUE_BYTES), asUint(row[2], 'rev')] as const
        })
        const next = optStr(m.next)
        return { ok: true, op, entries, more: m.more === true, ...(next !== undefined ? { next } : {}) }
      }
      default:
        throw new KvError(`unknown result op ${op}`)
    }
  } catch (err) {
    if (err instanceof DecodeError) throw new KvError(`malformed result: ${err.message}`)
    throw err
  }
}

interface Slot {
  value: string
  rev: number
}

/** First index in the sorted `keys` whose key is >= `key`. */
function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0
  let hi = keys.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((keys[mid] as string) < key) lo = mid + 1
    else hi = mid
  }
  return lo
}

export class KvApp implements GroupApp {
  /** Sorted keys (JavaScript string order) and their slots. */
  private keys: string[] = []
  private readonly slots = new Map<string, Slot>()
  /** Revision: number of writes executed; each write stamps its key with it. */
  private rev = 0
  /** Ordered operations executed (reads included), for status displays. */
  private ops = 0

  onRequest(_ctx: AppContext, _client: string, op: Uint8Array): Uint8Array {
    return this.execute(op, false)
  }

  onQuery(_client: string, op: Uint8Array): Uint8Array {
    return this.execute(op, true)
  }

  onCall(_ctx: CallContext, _caller: string, op: Uint8Array): Uint8Array {
    return this.execute(op, false)
  }

  /** Executes one operation; `readOnly` refuses writes (the read-only optimisation). */
  execute(bytes: Uint8Array, readOnly: boolean): Uint8Array {
    let op: KvOp
    try {
      op = decodeKvOp(bytes)
    } catch (err) {
      if (err instanceof KvError || err instanceof DecodeError) return encodeKvResult({ ok: false, error: err.message })
      throw err
    }
    if (readOnly && op.op !== 'get' && op.op !== 'scan') return encodeKvResult({ ok: false, error: `${op.op} is not read-only` })
    if (!readOnly) this.ops++
    return encodeKvResult(this.apply(op))
  }

  private apply(op: KvOp): KvResult {
    switch (op.op) {
      case 'get': {
        const s = this.slots.get(op.key)
        return s === undefined ? { ok: true, op: 'get', found: false } : { ok: true, op: 'get', found: true, value: s.value, rev: s.rev }
      }
      case 'put':
        if (!this.slots.has(op.key) && this.slots.size >= MAX_KEYS) return { ok: false, error: `store full (${MAX_KEYS} keys)` }
        this.write(op.key, op.value)
        return { ok: true, op: 'put', rev: this.rev }
      case 'del': {
        const found = this.slots.has(op.key)
        if (found) this.write(op.key, null)
        return { ok: true, op: 'del', found, rev: this.rev }
      }
      case 'cas': {
        const current = this.slots.get(op.key)?.value ?? null
        if (current !== op.expect) return { ok: true, op: 'cas', swapped: false, current, rev: this.rev }
        if (current === null && op.value !== null && this.slots.size >= MAX_KEYS) return { ok: false, error: `store full (${MAX_KEYS} keys)` }
        if (op.value !== null || current !== null) this.write(op.key, op.value)
        return { ok: true, op: 'cas', swapped: true, current: op.value, rev: this.rev }
      }
      case 'scan':
        return this.scan(op.prefix, op.after, op.limit ?? DEFAULT_SCAN_LIMIT)
    }
  }

  private write(key: string, value: string | null): void {
    this.rev++
    if (value === null) {
      if (!this.slots.delete(key)) return
      const i = lowerBound(this.keys, key)
      this.keys.splice(i, 1)
      return
    }
    const slot = this.slots.get(key)
    if (slot !== undefined) {
      slot.value = value
      slot.rev = this.rev
      return
    }
    this.slots.set(key, { value, rev: this.rev })
    this.keys.splice(lowerBound(this.keys, key), 0, key)
  }

  private scan(prefix: string, after: string | undefined, limit: number): KvResult {
    let i = lowerBound(this.keys, prefix)
    if (after !== undefined && after >= prefix) {
      i = lowerBound(this.keys, after)
      if (this.keys[i] === after) i++
    }
    const entries: KvEntry[] = []
    let bytes = 64
    for (; i < this.keys.length; i++) {
      const key = this.keys[i] as string
      if (!key.startsWith(prefix)) break
      const slot = this.slots.get(key) as Slot
      const size = byteLength(key) + byteLength(slot.value) + 16
      if (entries.length >= limit || bytes + size > MAX_SCAN_RESULT_BYTES) {
        return { ok: true, op: 'scan', entries, more: true, next: (entries[entries.length - 1] as KvEntry)[0] }
      }
      bytes += size
      entries.push([key, slot.value, slot.rev])
    }
    return { ok: true, op: 'scan', entries, more: false }
  }

  // ---------------------------------------------------------------- state

  get size(): number {
    return this.slots.size
  }

  get revision(): number {
    return this.rev
  }

  /** Every entry in key order (tests, final dumps). */
  entries(): KvEntry[] {
    return this.keys.map((k) => {
      const s = this.slots.get(k) as Slot
      return [k, s.value, s.rev] as const
    })
  }

  /** Digest of the map alone (keys, values, revisions): equal stores give equal digests. */
  contentDigest(): string {
    return toHex(sha256(encode(this.entries() as unknown as Value)))
  }

  /** Small summary for status displays. */
  summary(): Record<string, number | string> {
    return { keys: this.slots.size, rev: this.rev, ops: this.ops }
  }

  snapshot(): Uint8Array {
    return encode({ v: 1, rev: this.rev, ops: this.ops, entries: this.entries() as unknown as Value })
  }

  restore(state: Uint8Array): void {
    try {
      const m = asMap(decode(state), 'kv state')
      if (m.v !== 1) throw new KvError('kv state: unknown version')
      const rev = asUint(m.rev, 'rev')
      const ops = asUint(m.ops, 'ops')
      const keys: string[] = []
      const slots = new Map<string, Slot>()
      let previous: string | undefined
      for (const e of asArray(m.entries, 'entries', MAX_KEYS)) {
        const row = asArray(e, 'entry', 3)
        const key = checkKey(asString(row[0], 'key', MAX_KEY_BYTES))
        const value = checkValue(asString(row[1], 'value', MAX_VALUE_BYTES))
        const r = asUint(row[2], 'rev', rev)
        if (previous !== undefined && !(previous < key)) throw new KvError('kv state: keys out of order')
        previous = key
        keys.push(key)
        slots.set(key, { value, rev: r })
      }
      this.keys = keys
      this.slots.clear()
      for (const [k, s] of slots) this.slots.set(k, s)
      this.rev = rev
      this.ops = ops
    } catch (err) {
      if (err instanceof DecodeError || err instanceof EncodeError) throw new KvError(`kv state: ${err.message}`)
      throw err
    }
  }
}

// ---------------------------------------------------------------- op builders

export const kv = {
  get: (key: string): Uint8Array => encodeKvOp({ op: 'get', key }),
  put: (key: string, value: string): Uint8Array => encodeKvOp({ op: 'put', key, value }),
  del: (key: string): Uint8Array => encodeKvOp({ op: 'del', key }),
  cas: (key: string, expect: string | null, value: string | null): Uint8Array => encodeKvOp({ op: 'cas', key, expect, value }),
  scan: (prefix: string, after?: string, limit?: number): Uint8Array =>
    encodeKvOp({ op: 'scan', prefix, ...(after !== undefined ? { after } : {}), ...(limit !== undefined ? { limit } : {}) }),
}
