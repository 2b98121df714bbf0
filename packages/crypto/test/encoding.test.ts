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

  it('refuses strings and map keys with lone surrogates, which have no UTF-8 form (bug fixed)', () => {
    // Before the fix both keys became EF BF BD: encode produced a map decode rejects as duplicate-key,
    // and distinct strings ("\uD800", "\uD801", "\uFFFD") had one encoding, hence one digest.
    for (const bad of ['\uD800', '\uDFFF', 'a\uD83D', '\uDE00b', '\uDE00\uD83D', 'x'.repeat(50) + '\uD800']) {
      expect(() => encode(bad)).toThrow(EncodeError)
      expect(() => encode({ [bad]: 1 })).toThrow(EncodeError)
      expect(() => encode([1, { k: bad }])).toThrow(EncodeError)
    }
    expect(() => encode({ '\uD800': 1, '\uD801': 2 })).toThrow(EncodeError)
    // Pairs are fine, as are U+FFFD itself and a byte-order mark (kept, not stripped).
    for (const good of ['\uD83D\uDE00', '\uFFFD', '\uFEFFa', 'é', '']) {
      expect(decode(encode(good))).toBe(good)
      expect(decode(encode({ [good]: good }))).toEqual({ [good]: good })
    }
    // Surrogate code points encoded as UTF-8 (CESU-8 style) are invalid UTF-8 on the way in.
    expect(decodeError(new Uint8Array([6, 3, 0xed, 0xa0, 0x80]))).toBe('invalid-utf8')
    expect(decodeError(new Uint8Array([8, 1, 3, 0xed, 0xa0, 0x80, 0]))).toBe('invalid-utf8')
  })

  it('round-trips strings of any UTF-16 units that are well-formed, refuses the rest (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), fc.string({ unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)), maxLength: 3 }), (s, noise) => {
        const text = s + noise
        let wellFormed = true
        try {
          encodeURIComponent(text) // throws URIError exactly for lone surrogates
        } catch {
          wellFormed = false
        }
        if (wellFormed) expect(decode(encode({ [text]: text }))).toEqual({ [text]: text })
        else expect(() => encode(text)).toThrow(EncodeError)
      }),
      { numRuns: 400 },
    )
  })

  it('rejects every truncation of a valid encoding (property)', () => {
    fc.assert(
      fc.property(value, fc.nat(), (v, cut) => {
        const bytes = encode(v)
        const prefix = bytes.subarray(0, cut % bytes.length)
        expect(['truncated', 'length-overflow']).toContain(decodeError(prefix))
      }),
      { numRuns: 1000 },
    )
  })

  it('limits nesting to the same depth on both sides', () => {
    const nest = (depth: number): Value => (depth === 0 ? null : [nest(depth - 1)])
    expect(decode(encode(nest(64)))).toEqual(nest(64))
    expect(() => encode(nest(65))).toThrow(EncodeError)
  })

  it('decodes maps without a prototype, so "__proto__" is an ordinary key', () => {
    const bytes = encode(JSON.parse('{"__proto__": 1, "constructor": 2}'))
    const m = decode(bytes) as Record<string, Value>
    expect(Object.getPrototypeOf(m)).toBe(null)
    expect(Object.keys(m).sort()).toEqual(['__proto__', 'constructor'])
    expect(encode(m)).toEqual(bytes)
  })

  it('encodes Buffers and subarrays as their bytes only', () => {
    const backing = new Uint8Array([9, 1, 2, 3, 9])
    expect(encode(backing.subarray(1, 4))).toEqual(encode(new Uint8Array([1, 2, 3])))
    expect(encode(Buffer.from([1, 2, 3]))).toEqual(encode(new Uint8Array([1, 2, 3])))
    // Decoded bytes are a copy, never a view of the input.
    const input = encode(new Uint8Array([1, 2, 3]))
    const out = decode(input) as Uint8Array
    input[2] = 99
    expect(out).toEqual(new Uint8Array([1, 2, 3]))
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
