/**
 * Typed reads of decoded canonical values. Message decoders in the upper layers are written with
 * these, so every shape mistake in hostile input becomes a DecodeError('wrong-type') naming the field.
 */
import { DecodeError } from './errors.js'
import type { Value, ValueMap } from './encoding.js'

function wrong(field: string, expected: string): never {
  throw new DecodeError('wrong-type', `${field}: expected ${expected}`)
}

export function asMap(v: Value | undefined, field = 'value'): ValueMap {
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array || Array.isArray(v)) wrong(field, 'a map')
  return v as ValueMap
}

export function asArray(v: Value | undefined, field: string, maxItems = Number.MAX_SAFE_INTEGER): readonly Value[] {
  if (!Array.isArray(v)) wrong(field, 'an array')
  const arr = v as readonly Value[]
  if (arr.length > maxItems) wrong(field, `at most ${maxItems} items`)
  return arr
}

export function asUint(v: Value | undefined, field: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) wrong(field, `an integer in 0..${max}`)
  return v
}

export function asBool(v: Value | undefined, field: string): boolean {
  if (typeof v !== 'boolean') wrong(field, 'a boolean')
  return v
}

export function asString(v: Value | undefined, field: string, maxLength = 1024): string {
  if (typeof v !== 'string' || v.length > maxLength) wrong(field, `a string of at most ${maxLength} characters`)
  return v
}

export function asBytes(v: Value | undefined, field: string, length?: number, maxLength = Number.MAX_SAFE_INTEGER): Uint8Array {
  if (!(v instanceof Uint8Array)) wrong(field, 'bytes')
  if (length !== undefined && v.length !== length) wrong(field, `${length} bytes`)
  if (v.length > maxLength) wrong(field, `at most ${maxLength} bytes`)
  return v
}

export function optional<T>(v: Value | undefined, read: (v: Value) => T): T | undefined {
  return v === undefined ? undefined : read(v)
}
