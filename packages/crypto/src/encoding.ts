/**
 * Canonical encoding: one value, one byte string, on every replica.
 *
 * Everything that is signed or hashed is encoded with this. A value is `null`, a boolean, a safe
 * integer, a byte string, a UTF-8 string, an array, or a map with string keys (a plain object).
 * Each value is a tag byte followed by its body; lengths and integers are minimal unsigned LEB128
 * varints; map keys are sorted by their UTF-8 bytes and unique. `undefined` object fields are
 * omitted, so optional fields do not change the bytes. Floats are refused: nothing in the
 * protocol needs them and their text forms are a classic source of divergence. Strings (and map
 * keys) with lone surrogates are refused too: they have no UTF-8 form.
 *
 * The decoder accepts exactly the encoder's output: any other byte string (non-minimal varint,
 * unsorted or duplicate keys, trailing bytes, bad UTF-8, lengths past the end) is a DecodeError.
 * It never allocates more than the input's size, and nesting is limited.
 */
import { DecodeError, EncodeError } from './errors.js'

export type Value = null | boolean | number | string | Uint8Array | readonly Value[] | ValueMap
export interface ValueMap {
  readonly [key: string]: Value | undefined
}

const TAG_NULL = 0
const TAG_FALSE = 1
const TAG_TRUE = 2
const TAG_UINT = 3
const TAG_NEGINT = 4
const TAG_BYTES = 5
const TAG_STRING = 6
const TAG_ARRAY = 7
const TAG_MAP = 8

export const MAX_DEPTH = 64
export const DEFAULT_MAX_ENCODED_BYTES = 64 * 1024 * 1024

const textEncoder = new TextEncoder()
const textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

// In a `u` regex a surrogate pair is one code point, so this matches only lone surrogates.
const LONE_SURROGATE = /\p{Cs}/u

/**
 * A string with a lone surrogate has no UTF-8 form: TextEncoder would substitute U+FFFD, so two
 * different strings would get the same bytes (and two such map keys would collide).
 */
function checkWellFormed(s: string, what: string): void {
  if (LONE_SURROGATE.test(s)) throw new EncodeError(`${what} contains a lone surrogate (not valid Unicode)`)
}

class Writer {
  buf = new Uint8Array(256)
  pos = 0

  ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.pos + extra) size *= 2
    const next = new Uint8Array(size)
    next.set(this.buf.subarray(0, this.pos))
    this.buf = next
  }

  byte(b: number): void {
    this.ensure(1)
    this.buf[this.pos++] = b
  }

  varint(n: number): void {
    this.ensure(8)
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80
      n = Math.floor(n / 0x80)
    }
    this.buf[this.pos++] = n
  }

  bytes(b: Uint8Array): void {
    this.varint(b.length)
    this.ensure(b.length)
    this.buf.set(b, this.pos)
    this.pos += b.length
  }

  string(s: string): void {
    // Worst case 3 bytes per UTF-16 unit; encode in place after a length we patch if short.
    const max = s.length * 3
    if (max < 0x80) {
      this.ensure(1 + max)
      const start = this.pos + 1
      const { written } = textEncoder.encodeInto(s, this.buf.subarray(start, start + max))
      this.buf[this.pos] = written
      this.pos = start + written
      return
    }
    this.bytes(textEncoder.encode(s))
  }
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number)
    if (d !== 0) return d
  }
  return a.length - b.length
}

function writeValue(w: Writer, v: Value | undefined, depth: number): void {
  if (depth > MAX_DEPTH) throw new EncodeError(`nesting deeper than ${MAX_DEPTH}`)
  if (v === null) {
    w.byte(TAG_NULL)
    return
  }
  switch (typeof v) {
    case 'boolean':
      w.byte(v ? TAG_TRUE : TAG_FALSE)
      return
    case 'number':
      if (!Number.isSafeInteger(v)) throw new EncodeError(`not a safe integer: ${v}`)
      if (v >= 0) {
        w.byte(TAG_UINT)
        w.varint(v)
      } else {
        w.byte(TAG_NEGINT)
        w.varint(-v)
      }
      return
    case 'string':
      checkWellFormed(v, 'string')
      w.byte(TAG_STRING)
      w.string(v)
      return
    case 'object':
      break
    default:
      throw new EncodeError(`cannot encode a ${typeof v}`)
  }
  if (v instanceof Uint8Array) {
    w.byte(TAG_BYTES)
    w.bytes(v)
    return
  }
  if (Array.isArray(v)) {
    w.byte(TAG_ARRAY)
    w.varint(v.length)
    for (const item of v as readonly Value[]) {
      if (item === undefined) throw new EncodeError('undefined array element')
      writeValue(w, item, depth + 1)
    }
    return
  }
  const proto = Object.getPrototypeOf(v)
  if (proto !== Object.prototype && proto !== null) throw new EncodeError('only plain objects encode as maps')
  const entries: Array<[Uint8Array, Value]> = []
  for (const key of Object.keys(v)) {
    const item = (v as ValueMap)[key]
    if (item === undefined) continue
    checkWellFormed(key, 'map key')
    entries.push([textEncoder.encode(key), item])
  }
  entries.sort((a, b) => compareBytes(a[0], b[0]))
  w.byte(TAG_MAP)
  w.varint(entries.length)
  for (const [key, item] of entries) {
    w.bytes(key)
    writeValue(w, item, depth + 1)
  }
}

/** Encodes a value canonically. Throws EncodeError for values outside the model. */
export function encode(value: Value): Uint8Array {
  const w = new Writer()
  writeValue(w, value, 0)
  return w.buf.slice(0, w.pos)
}

class Reader {
  pos = 0
  constructor(readonly buf: Uint8Array) {}

  fail(code: ConstructorParameters<typeof DecodeError>[0], message: string): never {
    throw new DecodeError(code, `${message} at byte ${this.pos}`, this.pos)
  }

  byte(): number {
    if (this.pos >= this.buf.length) this.fail('truncated', 'unexpected end of input')
    return this.buf[this.pos++] as number
  }

  varint(): number {
    let result = 0
    let scale = 1
    for (let i = 0; ; i++) {
      if (i >= 8) this.fail('varint-overflow', 'varint longer than 8 bytes')
      const b = this.byte()
      result += (b & 0x7f) * scale
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) this.fail('non-minimal-varint', 'varint with a trailing zero byte')
        break
      }
      scale *= 0x80
    }
    if (result > Number.MAX_SAFE_INTEGER) this.fail('varint-overflow', 'integer beyond 2^53-1')
    return result
  }

  length(): number {
    const n = this.varint()
    if (n > this.buf.length - this.pos) this.fail('length-overflow', `length ${n} past the end of input`)
    return n
  }

  slice(n: number): Uint8Array {
    const out = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }

  utf8(n: number): string {
    const bytes = this.slice(n)
    try {
      return textDecoder.decode(bytes)
    } catch {
      this.pos -= n
      return this.fail('invalid-utf8', 'string is not valid UTF-8')
    }
  }
}

function readValue(r: Reader, depth: number): Value {
  if (depth > MAX_DEPTH) r.fail('too-deep', `nesting deeper than ${MAX_DEPTH}`)
  const tag = r.byte()
  switch (tag) {
    case TAG_NULL:
      return null
    case TAG_FALSE:
      return false
    case TAG_TRUE:
      return true
    case TAG_UINT:
      return r.varint()
    case TAG_NEGINT: {
      const m = r.varint()
      if (m === 0) r.fail('non-minimal-varint', 'negative zero')
      return -m
    }
    case TAG_BYTES:
      // Copy so a decoded value never aliases (and pins) a large network buffer. Through the
      // Uint8Array prototype: Buffer.prototype.slice would return a view, not a copy.
      return Uint8Array.prototype.slice.call(r.slice(r.length()))
    case TAG_STRING:
      return r.utf8(r.length())
    case TAG_ARRAY: {
      const n = r.length() // every element takes at least one byte
      const out: Value[] = new Array(n)
      for (let i = 0; i < n; i++) out[i] = readValue(r, depth + 1)
      return out
    }
    case TAG_MAP: {
      const n = r.length()
      const out: Record<string, Value> = Object.create(null)
      let previous: Uint8Array | undefined
      for (let i = 0; i < n; i++) {
        const keyBytes = r.slice(r.length())
        if (previous !== undefined) {
          const c = compareBytes(previous, keyBytes)
          if (c === 0) r.fail('duplicate-key', 'duplicate map key')
          if (c > 0) r.fail('unsorted-keys', 'map keys out of order')
        }
        previous = keyBytes
        r.pos -= keyBytes.length
        const key = r.utf8(keyBytes.length)
        out[key] = readValue(r, depth + 1)
      }
      return out
    }
    default:
      return r.fail('unknown-tag', `unknown tag ${tag}`)
  }
}

/**
 * Decodes exactly one canonical value. Throws DecodeError on anything else; never returns a value
 * whose re-encoding differs from the input.
 */
export function decode(bytes: Uint8Array, maxBytes = DEFAULT_MAX_ENCODED_BYTES): Value {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError('wrong-type', 'input is not a Uint8Array')
  if (bytes.length > maxBytes) throw new DecodeError('too-large', `input of ${bytes.length} bytes exceeds ${maxBytes}`)
  const r = new Reader(bytes)
  const value = readValue(r, 0)
  if (r.pos !== bytes.length) r.fail('trailing-bytes', `${bytes.length - r.pos} trailing bytes`)
  return value
}
