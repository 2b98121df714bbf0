/**
 * The on-disk layout of `LevelStorage`: keys and the explicit (de)serialisers of its records.
 *
 * Keys are short binary strings, ordered by their first byte:
 *
 * | key                      | value                                                             |
 * |--------------------------|-------------------------------------------------------------------|
 * | `00`                     | format marker `{ format, version }`                               |
 * | `01`                     | `{ view }`                                                        |
 * | `02`                     | checkpoint header `{ seq, digest, certificate?, stateLength }`    |
 * | `03`                     | checkpoint state, raw bytes (chunk-tree root = header digest)     |
 * | `04`                     | `{ reason }`: LevelDB dropped data once; the store stays refused  |
 * | `10` + seq (8 bytes, BE) | entry `{ seq, view, prePrepare, prepared, committed, prepares?, preparedPrePrepare? }` |
 *
 * Big-endian sequence numbers make LevelDB's byte order the sequence order, so entries are read
 * back in order. Values are canonical encodings (`encode` of @bftrc/crypto); the pre-prepare inside
 * an entry is the wire encoding (`encodeMessage`), read back through the validating `decodeMessage`.
 * The state is stored raw under its own key rather than inside the header: it may be far larger
 * than anything the canonical decoder should be asked to take in one piece.
 *
 * Every reader here throws a `StorageCorruptError` naming the key; none returns a half-read record.
 */
import {
  DIGEST_BYTES,
  DecodeError,
  type Value,
  type ValueMap,
  asBool,
  asBytes,
  asMap,
  asString,
  asUint,
  certificateFromValue,
  certificateToValue,
  decode,
  encode,
} from '@bftrc/crypto'
import type { MessageLimits } from '../limits.js'
import { type PrePrepare, decodeMessage, encodeMessage } from '../messages.js'
import type { PersistedCheckpoint, PersistedEntry } from '../storage.js'
import { StorageCorruptError } from './errors.js'

export const FORMAT = 'bftrc/core-agreement/level-storage'
/** 2: checkpoint digests are chunk-tree roots (merkle.ts); version 1 stored sha256 of the state. */
export const FORMAT_VERSION = 2

export const META_KEY = Uint8Array.of(0x00)
export const VIEW_KEY = Uint8Array.of(0x01)
export const CHECKPOINT_KEY = Uint8Array.of(0x02)
export const CHECKPOINT_STATE_KEY = Uint8Array.of(0x03)
export const POISON_KEY = Uint8Array.of(0x04)
export const ENTRY_PREFIX = 0x10
/** Every entry key lies in [ENTRY_FIRST, ENTRY_END). */
export const ENTRY_FIRST = Uint8Array.of(ENTRY_PREFIX)
export const ENTRY_END = Uint8Array.of(ENTRY_PREFIX + 1)
const ENTRY_KEY_BYTES = 9

/** Largest encoded header / view / meta record accepted (they are tens of bytes, a certificate a few KiB). */
const SMALL_RECORD_BYTES = 1024 * 1024

export function entryKey(seq: number): Uint8Array {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`entry seq ${seq} is not a safe unsigned integer`)
  const key = new Uint8Array(ENTRY_KEY_BYTES)
  key[0] = ENTRY_PREFIX
  const view = new DataView(key.buffer)
  view.setUint32(1, Math.floor(seq / 2 ** 32))
  view.setUint32(5, seq % 2 ** 32)
  return key
}

/** The seq of an entry key; undefined if `key` is not a well-formed entry key. */
export function entrySeqOf(key: Uint8Array): number | undefined {
  if (key.length !== ENTRY_KEY_BYTES || key[0] !== ENTRY_PREFIX) return undefined
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength)
  const seq = view.getUint32(1) * 2 ** 32 + view.getUint32(5)
  return Number.isSafeInteger(seq) ? seq : undefined
}

/** A readable name of a key for error messages: `meta`, `view`, `checkpoint`, `entry/42`, or hex. */
export function keyName(key: Uint8Array): string {
  if (key.length === 1) {
    switch (key[0]) {
      case 0x00:
        return 'meta'
      case 0x01:
        return 'view'
      case 0x02:
        return 'checkpoint'
      case 0x03:
        return 'checkpoint-state'
      case 0x04:
        return 'leveldb-log'
    }
  }
  const seq = entrySeqOf(key)
  if (seq !== undefined) return `entry/${seq}`
  return `0x${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex')}`
}

/** A plain Uint8Array view of what LevelDB hands back (a Buffer), so decoded bytes are copies. */
export function plain(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

/** Runs a reader; a DecodeError (or any shape error) becomes a StorageCorruptError for `key`. */
function reading<T>(key: Uint8Array, read: () => T): T {
  try {
    return read()
  } catch (err) {
    if (err instanceof StorageCorruptError) throw err
    if (err instanceof DecodeError) throw new StorageCorruptError(keyName(key), err.message, { cause: err })
    throw err
  }
}

function onlyFields(m: ValueMap, allowed: readonly string[], field: string): void {
  for (const k of Object.keys(m)) if (!allowed.includes(k)) throw new DecodeError('wrong-type', `${field}: unexpected field ${k}`)
}

// ---- meta ----

export function encodeMeta(): Uint8Array {
  return encode({ format: FORMAT, version: FORMAT_VERSION })
}

export function checkMeta(value: Uint8Array): void {
  reading(META_KEY, () => {
    const m = asMap(decode(plain(value), SMALL_RECORD_BYTES), 'meta')
    const format = asString(m.format, 'meta.format', 128)
    const version = asUint(m.version, 'meta.version')
    if (format !== FORMAT) throw new DecodeError('wrong-type', `meta.format: ${format} is not ${FORMAT}`)
    if (version !== FORMAT_VERSION) throw new DecodeError('wrong-type', `meta.version: ${version} is not the supported ${FORMAT_VERSION}`)
  })
}

// ---- poison ----

export function encodePoison(reason: string): Uint8Array {
  return encode({ reason: reason.slice(0, 4096) })
}

export function decodePoison(value: Uint8Array): string {
  try {
    return asString(asMap(decode(plain(value), SMALL_RECORD_BYTES), 'poison').reason, 'poison.reason', 4096)
  } catch (err) {
    if (err instanceof DecodeError) return 'unreadable reason'
    throw err
  }
}

// ---- view ----

export function encodeView(view: number): Uint8Array {
  return encode({ view })
}

export function decodeView(value: Uint8Array): number {
  return reading(VIEW_KEY, () => {
    const m = asMap(decode(plain(value), SMALL_RECORD_BYTES), 'view')
    onlyFields(m, ['view'], 'view')
    return asUint(m.view, 'view.view')
  })
}

// ---- checkpoint ----

export interface CheckpointHeader {
  readonly seq: number
  readonly digest: Uint8Array
  readonly certificate?: PersistedCheckpoint['certificate']
  readonly stateLength: number
}

export function encodeCheckpointHeader(cp: PersistedCheckpoint): Uint8Array {
  return encode({
    seq: cp.seq,
    digest: cp.digest,
    certificate: cp.certificate === undefined ? undefined : certificateToValue(cp.certificate),
    stateLength: cp.state.length,
  })
}

export function decodeCheckpointHeader(value: Uint8Array): CheckpointHeader {
  return reading(CHECKPOINT_KEY, () => {
    const m = asMap(decode(plain(value), SMALL_RECORD_BYTES), 'checkpoint')
    onlyFields(m, ['seq', 'digest', 'certificate', 'stateLength'], 'checkpoint')
    const certificate = m.certificate === undefined ? undefined : certificateFromValue(m.certificate, 'checkpoint.certificate')
    return {
      seq: asUint(m.seq, 'checkpoint.seq'),
      digest: asBytes(m.digest, 'checkpoint.digest', DIGEST_BYTES),
      ...(certificate !== undefined ? { certificate } : {}),
      stateLength: asUint(m.stateLength, 'checkpoint.stateLength'),
    }
  })
}

// ---- entries ----

/** `prePrepare` is `encodeMessage(e.prePrepare)`, when the caller already has it. */
export function encodeEntry(e: PersistedEntry, prePrepare = encodeMessage(e.prePrepare)): Uint8Array {
  return encode({
    seq: e.seq,
    view: e.view,
    prePrepare,
    prepared: e.prepared,
    committed: e.committed,
    prepares: e.prepares === undefined ? undefined : certificateToValue(e.prepares),
    preparedPrePrepare: e.preparedPrePrepare === undefined ? undefined : encodeMessage(e.preparedPrePrepare),
  })
}

function decodeStoredPrePrepare(value: Value | undefined, field: string, seq: number, limits: MessageLimits): PrePrepare {
  const pp = decodeMessage(asBytes(value, field, undefined, limits.maxMessageBytes), limits)
  if (pp.t !== 'pre-prepare') throw new DecodeError('wrong-type', `${field}: a ${pp.t} message, not a pre-prepare`)
  if (pp.seq !== seq) throw new DecodeError('wrong-type', `${field}.seq ${pp.seq} differs from the entry's ${seq}`)
  return pp
}

export function decodeEntry(key: Uint8Array, value: Uint8Array, limits: MessageLimits): PersistedEntry {
  return reading(key, () => {
    const keySeq = entrySeqOf(key)
    if (keySeq === undefined) throw new StorageCorruptError(keyName(key), 'not a well-formed entry key')
    // The pre-prepare is bounded by maxMessageBytes; the rest of the record by a small margin.
    const m = asMap(decode(plain(value), 2 * limits.maxMessageBytes + SMALL_RECORD_BYTES), 'entry')
    onlyFields(m, ['seq', 'view', 'prePrepare', 'prepared', 'committed', 'prepares', 'preparedPrePrepare'], 'entry')
    const seq = asUint(m.seq, 'entry.seq')
    if (seq !== keySeq) throw new DecodeError('wrong-type', `entry.seq ${seq} differs from the key's ${keySeq}`)
    const pp = decodeStoredPrePrepare(m.prePrepare, 'entry.prePrepare', seq, limits)
    const prepares = m.prepares === undefined ? undefined : certificateFromValue(m.prepares, 'entry.prepares')
    const preparedPp = m.preparedPrePrepare === undefined ? undefined : decodeStoredPrePrepare(m.preparedPrePrepare, 'entry.preparedPrePrepare', seq, limits)
    if (preparedPp !== undefined && prepares === undefined) throw new DecodeError('wrong-type', 'entry.preparedPrePrepare without entry.prepares')
    return {
      seq,
      view: asUint(m.view, 'entry.view'),
      prePrepare: pp,
      prepared: asBool(m.prepared, 'entry.prepared'),
      committed: asBool(m.committed, 'entry.committed'),
      ...(prepares !== undefined ? { prepares } : {}),
      ...(preparedPp !== undefined ? { preparedPrePrepare: preparedPp } : {}),
    }
  })
}
