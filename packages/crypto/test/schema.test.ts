import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DecodeError, type Value, asArray, asBool, asBytes, asMap, asString, asUint, decode, encode, optional } from '../src/index.js'

function decodeError(run: () => unknown): DecodeError {
  try {
    run()
  } catch (err) {
    expect(err).toBeInstanceOf(DecodeError)
    return err as DecodeError
  }
  throw new Error('no DecodeError thrown')
}

const wrongType = (run: () => unknown, field: string): void => {
  const err = decodeError(run)
  expect(err.code).toBe('wrong-type')
  expect(err.message.startsWith(`${field}: expected`)).toBe(true)
}

/** Minimal LEB128 of a non-negative safe integer. */
function varint(n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80)
    n = Math.floor(n / 0x80)
  }
  out.push(n)
  return out
}

const TAG = { uint: 3, negint: 4, bytes: 5, string: 6, array: 7, map: 8 }

describe('typed readers', () => {
  const others: Value[] = [null, true, false, 0, 7, -3, 'text', new Uint8Array(2), [], [1], { a: 1 }]

  it('accept the right shape and return it', () => {
    const m = decode(encode({ n: 5, b: true, s: 'hi', x: new Uint8Array([1, 2]), a: [1, 2] }))
    const map = asMap(m)
    expect(asUint(map.n, 'n')).toBe(5)
    expect(asUint(map.n, 'n', 5)).toBe(5)
    expect(asBool(map.b, 'b')).toBe(true)
    expect(asString(map.s, 's', 2)).toBe('hi')
    expect(asBytes(map.x, 'x', 2)).toEqual(new Uint8Array([1, 2]))
    expect(asBytes(map.x, 'x', undefined, 2)).toEqual(new Uint8Array([1, 2]))
    expect(asArray(map.a, 'a', 2)).toEqual([1, 2])
    expect(asUint(0, 'zero')).toBe(0)
    expect(asUint(Number.MAX_SAFE_INTEGER, 'max')).toBe(Number.MAX_SAFE_INTEGER)
    expect(asString('', 'empty')).toBe('')
    expect(asString('x'.repeat(1024), 'default max')).toHaveLength(1024)
  })

  it('asMap refuses everything that is not a map', () => {
    for (const v of [undefined, null, true, 0, 'map', new Uint8Array(0), [], [['a', 1]]]) wrongType(() => asMap(v as Value), 'value')
    wrongType(() => asMap(null, 'msg'), 'msg')
  })

  it('asArray refuses non-arrays and too many items', () => {
    for (const v of [undefined, ...others.filter((o) => !Array.isArray(o))]) wrongType(() => asArray(v, 'batch'), 'batch')
    wrongType(() => asArray([1, 2, 3], 'batch', 2), 'batch')
    expect(decodeError(() => asArray([1, 2, 3], 'batch', 2)).message).toMatch(/at most 2 items/)
  })

  it('asUint refuses negatives, non-integers, values above max and other types', () => {
    for (const v of [undefined, -1, -0.5, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '1', true, null, new Uint8Array(1), [1], { n: 1 }]) {
      wrongType(() => asUint(v as Value, 'seq'), 'seq')
    }
    wrongType(() => asUint(256, 'signer', 255), 'signer')
    expect(decodeError(() => asUint(256, 'signer', 255)).message).toMatch(/0\.\.255/)
  })

  it('asBool refuses everything but booleans', () => {
    for (const v of [undefined, null, 0, 1, 'true', [], {}]) wrongType(() => asBool(v as Value, 'flag'), 'flag')
  })

  it('asString refuses non-strings and strings past the limit', () => {
    for (const v of [undefined, null, 0, new Uint8Array(1), ['a'], { s: 'a' }]) wrongType(() => asString(v as Value, 'name'), 'name')
    wrongType(() => asString('x'.repeat(1025), 'name'), 'name')
    wrongType(() => asString('abc', 'name', 2), 'name')
  })

  it('asBytes refuses non-bytes, the wrong exact length and bytes past the limit', () => {
    for (const v of [undefined, null, 0, 'ab', [1, 2], { 0: 1 }, new Uint16Array(2)]) wrongType(() => asBytes(v as Value, 'digest'), 'digest')
    wrongType(() => asBytes(new Uint8Array(31), 'digest', 32), 'digest')
    wrongType(() => asBytes(new Uint8Array(33), 'digest', 32), 'digest')
    wrongType(() => asBytes(new Uint8Array(5), 'payload', undefined, 4), 'payload')
    expect(decodeError(() => asBytes(new Uint8Array(31), 'digest', 32)).message).toMatch(/32 bytes/)
  })

  it('optional reads only what is present, and passes the reader’s error on', () => {
    expect(optional(undefined, (v) => asUint(v, 'n'))).toBeUndefined()
    expect(optional(3, (v) => asUint(v, 'n'))).toBe(3)
    wrongType(() => optional(null, (v) => asUint(v, 'n')), 'n')
  })

  it('reading a decoded value with the wrong reader is always DecodeError wrong-type (property)', () => {
    const readers = [
      (v: Value) => asMap(v, 'f'),
      (v: Value) => asArray(v, 'f'),
      (v: Value) => asUint(v, 'f'),
      (v: Value) => asBool(v, 'f'),
      (v: Value) => asString(v, 'f'),
      (v: Value) => asBytes(v, 'f', 32),
    ]
    const value = fc.oneof(fc.constant(null), fc.boolean(), fc.maxSafeInteger(), fc.string({ maxLength: 5 }), fc.uint8Array({ maxLength: 40 }), fc.array(fc.nat(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 3 }), fc.nat(), { maxKeys: 3 }))
    fc.assert(
      fc.property(value, fc.nat({ max: readers.length - 1 }), (v, r) => {
        const decoded = decode(encode(v as Value))
        try {
          ;(readers[r] as (v: Value) => unknown)(decoded)
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError)
          expect((err as DecodeError).code).toBe('wrong-type')
        }
      }),
      { numRuns: 500 },
    )
  })
})

describe('hostile sizes', () => {
  it('huge declared lengths (bytes, string, array, map, map key) fail at once with length-overflow', () => {
    const heapBefore = process.memoryUsage().arrayBuffers
    const started = performance.now()
    for (const length of [2 ** 50, 2 ** 53 - 1, 2 ** 32, 2 ** 31, 2 ** 30, 1_000_000, 11]) {
      for (const tag of [TAG.bytes, TAG.string, TAG.array, TAG.map]) {
        const bytes = Uint8Array.from([tag, ...varint(length), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        const err = decodeError(() => decode(bytes))
        expect({ tag, length, code: err.code }).toEqual({ tag, length, code: 'length-overflow' })
        expect(err.offset).toBe(bytes.length - 10)
      }
      // A map whose one key claims to be huge.
      const key = Uint8Array.from([TAG.map, 1, ...varint(length), 97, 0])
      expect(decodeError(() => decode(key)).code).toBe('length-overflow')
      // The same inside a deep structure.
      const nested = Uint8Array.from([TAG.array, 1, TAG.map, 1, 1, 97, TAG.bytes, ...varint(length), 0])
      expect(decodeError(() => decode(nested)).code).toBe('length-overflow')
    }
    expect(performance.now() - started).toBeLessThan(200)
    expect(process.memoryUsage().arrayBuffers - heapBefore).toBeLessThan(1024 * 1024)
  })

  it('accepts a length of exactly the bytes left, refuses one more', () => {
    for (const n of [0, 1, 127, 128, 300]) {
      const body = new Uint8Array(n).fill(0) // n nulls, n bytes of zeros, or n NUL characters
      for (const tag of [TAG.bytes, TAG.string, TAG.array]) {
        const ok = Uint8Array.from([tag, ...varint(n), ...body])
        expect(encode(decode(ok))).toEqual(ok)
        const over = Uint8Array.from([tag, ...varint(n + 1), ...body])
        expect(decodeError(() => decode(over)).code).toBe('length-overflow')
      }
    }
  })

  it('huge integers fail with varint-overflow, and 2^53-1 is the largest', () => {
    expect(decode(Uint8Array.from([TAG.uint, ...varint(2 ** 53 - 1)]))).toBe(2 ** 53 - 1)
    expect(decode(Uint8Array.from([TAG.negint, ...varint(2 ** 53 - 1)]))).toBe(-(2 ** 53 - 1))
    for (const tag of [TAG.uint, TAG.negint]) {
      expect(decodeError(() => decode(Uint8Array.from([tag, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]))).code).toBe('varint-overflow') // 2^53
      expect(decodeError(() => decode(Uint8Array.from([tag, ...Array(20).fill(0xff), 0x01]))).code).toBe('varint-overflow')
    }
    expect(decodeError(() => decode(Uint8Array.from([TAG.bytes, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]))).code).toBe('varint-overflow')
  })

  it('an input over the size limit is refused before it is read', () => {
    const big = new Uint8Array(1000)
    const err = decodeError(() => decode(big, 999))
    expect(err.code).toBe('too-large')
    expect(decode(Uint8Array.from([TAG.bytes, 3, 1, 2, 3]), 5)).toEqual(new Uint8Array([1, 2, 3]))
    expect(decodeError(() => decode('bytes' as unknown as Uint8Array)).code).toBe('wrong-type')
    expect(decodeError(() => decode([0] as unknown as Uint8Array)).code).toBe('wrong-type')
  })

  it('many tiny elements cost no more than the input: a 1 MB array of nulls decodes', () => {
    const n = 1_000_000
    const bytes = new Uint8Array(1 + varint(n).length + n)
    bytes.set([TAG.array, ...varint(n)])
    const v = decode(bytes) as Value[]
    expect(v.length).toBe(n)
    expect(v[n - 1]).toBe(null)
  })

  it('nesting at the limit decodes; one deeper is too-deep, never a stack overflow', () => {
    const nest = (depth: number) => Uint8Array.from([...Array(depth).fill([TAG.array, 1]).flat(), 0])
    expect(() => decode(nest(64))).not.toThrow()
    expect(decodeError(() => decode(nest(65))).code).toBe('too-deep')
    expect(decodeError(() => decode(nest(100_000))).code).toBe('too-deep')
  })
})
