import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DecodeError, EncodeError, type Value, decode, encode } from '../src/index.js'

const value: fc.Arbitrary<Value> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.maxSafeInteger(),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.uint8Array({ maxLength: 64 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('value'), { maxKeys: 5 }),
  ),
})).value as fc.Arbitrary<Value>

function decodeError(bytes: Uint8Array): string {
  try {
    decode(bytes)
  } catch (err) {
    expect(err).toBeInstanceOf(DecodeError)
    return (err as DecodeError).code
  }
  throw new Error('decoded without error')
}

describe('canonical encoding', () => {
  it('round-trips every value, and re-encoding gives the same bytes', () => {
    fc.assert(
      fc.property(value, (v) => {
        const bytes = encode(v)
        const back = decode(bytes)
        expect(encode(back)).toEqual(bytes)
      }),
      { numRuns: 2000 },
    )
  })

  it('gives the same bytes whatever the key insertion order', () => {
    expect(encode({ a: 1, b: [true, null] })).toEqual(encode({ b: [true, null], a: 1 }))
  })

  it('omits undefined fields', () => {
    expect(encode({ a: 1, b: undefined })).toEqual(encode({ a: 1 }))
  })

  it('refuses values outside the model', () => {
    expect(() => encode(1.5)).toThrow(EncodeError)
    expect(() => encode(Number.NaN)).toThrow(EncodeError)
    expect(() => encode(2 ** 53)).toThrow(EncodeError)
    expect(() => encode(new Date() as unknown as Value)).toThrow(EncodeError)
    expect(() => encode([undefined] as unknown as Value)).toThrow(EncodeError)
  })

  it('rejects each kind of non-canonical or malformed input with its code', () => {
    expect(decodeError(new Uint8Array([]))).toBe('truncated')
    expect(decodeError(new Uint8Array([0, 0]))).toBe('trailing-bytes')
    expect(decodeError(new Uint8Array([99]))).toBe('unknown-tag')
    expect(decodeError(new Uint8Array([3, 0x81, 0x00]))).toBe('non-minimal-varint')
    expect(decodeError(new Uint8Array([3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]))).toBe('varint-overflow')
    expect(decodeError(new Uint8Array([3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]))).toBe('varint-overflow')
    expect(decodeError(new Uint8Array([4, 0]))).toBe('non-minimal-varint')
    expect(decodeError(new Uint8Array([5, 10, 1]))).toBe('length-overflow')
    expect(decodeError(new Uint8Array([7, 0xff, 0xff, 0xff, 0x7f]))).toBe('length-overflow')
    expect(decodeError(new Uint8Array([6, 1, 0xff]))).toBe('invalid-utf8')
    expect(decodeError(new Uint8Array([8, 2, 1, 98, 0, 1, 97, 0]))).toBe('unsorted-keys')
    expect(decodeError(new Uint8Array([8, 2, 1, 97, 0, 1, 97, 0]))).toBe('duplicate-key')
    expect(decodeError(new Uint8Array(200).map((_, i) => (i % 2 === 0 ? 7 : 1)))).toBe('too-deep')
    expect(() => decode(new Uint8Array(10), 5)).toThrow(DecodeError)
  })

  it('never throws anything but DecodeError on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          const v = decode(bytes)
          expect(encode(v)).toEqual(bytes)
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError)
        }
      }),
      { numRuns: 5000 },
    )
  })
})
