import { sign as nodeSign, verify as nodeVerify } from 'node:crypto'
import fc from 'fast-check'
import { fromString, toString as bytesToString } from 'uint8arrays'
import { describe, expect, it } from 'vitest'
import {
  KeyError,
  PUBLIC_KEY_BYTES,
  SEED_BYTES,
  SIGNATURE_BYTES,
  fromHex,
  generateKeyPair,
  keyFileOf,
  keyPairFromSeed,
  parseKeyFile,
  peerIdOf,
  publicKeyObject,
  serializeKeyFile,
  signBytes,
  toHex,
  verifyBytes,
  weakPublicKeyReason,
} from '../src/index.js'

const seedOf = (byte: number): Uint8Array => new Uint8Array(SEED_BYTES).fill(byte)
const alice = keyPairFromSeed(seedOf(1))
const bob = keyPairFromSeed(seedOf(2))
const message = new TextEncoder().encode('pre-prepare v=0 n=1')

function keyError(run: () => unknown): KeyError {
  try {
    run()
  } catch (err) {
    expect(err).toBeInstanceOf(KeyError)
    return err as KeyError
  }
  throw new Error('no KeyError thrown')
}

// ---- A little Edwards25519 arithmetic (BigInt), only to check the small-order blocklist. ----
const P = 2n ** 255n - 19n
const mod = (a: bigint): bigint => ((a % P) + P) % P
function pow(b: bigint, e: bigint): bigint {
  let r = 1n
  b = mod(b)
  while (e > 0n) {
    if (e & 1n) r = mod(r * b)
    b = mod(b * b)
    e >>= 1n
  }
  return r
}
const inv = (a: bigint): bigint => pow(a, P - 2n)
const D = mod(-121665n * inv(121666n))
const SQRT_M1 = pow(2n, (P - 1n) / 4n)
type Point = [bigint, bigint]
/** x for a y on the curve -x^2 + y^2 = 1 + d x^2 y^2, or undefined when there is none. */
function xOf(y: bigint): bigint | undefined {
  const u = mod(y * y - 1n)
  const v = mod(D * y * y + 1n)
  const x2 = mod(u * inv(v))
  let x = pow(x2, (P + 3n) / 8n)
  if (mod(x * x) !== x2) x = mod(x * SQRT_M1)
  return mod(x * x) === x2 ? x : undefined
}
function add([x1, y1]: Point, [x2, y2]: Point): Point {
  const t = mod(D * x1 * x2 * y1 * y2)
  return [mod((x1 * y2 + y1 * x2) * inv(1n + t)), mod((y1 * y2 + x1 * x2) * inv(1n - t))]
}
function times(n: number, p: Point): Point {
  let r: Point = [0n, 1n]
  for (let i = 0; i < n; i++) r = add(r, p)
  return r
}
const isIdentity = ([x, y]: Point): boolean => x === 0n && y === 1n
function encodeY(y: bigint, signBit = false): Uint8Array {
  const out = new Uint8Array(32)
  for (let i = 0; i < 32; i++) out[i] = Number((y >> BigInt(8 * i)) & 0xffn)
  if (signBit) out[31] = (out[31] as number) | 0x80
  return out
}
function decodeY(bytes: Uint8Array): bigint {
  let y = 0n
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(bytes[i] as number)
  return y & ((1n << 255n) - 1n)
}
const ORDER_8_Y = decodeY(fromHex('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05'))

describe('key derivation', () => {
  it('derives the same key pair from the same seed, different ones from different seeds', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (a, b) => {
        const k1 = keyPairFromSeed(a)
        const k2 = keyPairFromSeed(Uint8Array.from(a))
        expect(k1.publicKey).toEqual(k2.publicKey)
        expect(k1.publicKey.length).toBe(PUBLIC_KEY_BYTES)
        expect(k1.seed).toEqual(a)
        expect(signBytes(k1, message)).toEqual(signBytes(k2, message)) // Ed25519 is deterministic
        if (toHex(a) !== toHex(b)) expect(keyPairFromSeed(b).publicKey).not.toEqual(k1.publicKey)
      }),
      { numRuns: 50 },
    )
  })

  it('copies the seed, so the caller changing its buffer does not change the key pair', () => {
    const seed = seedOf(9)
    const kp = keyPairFromSeed(seed)
    seed.fill(0)
    expect(kp.seed).toEqual(seedOf(9))
  })

  it("derives the public key of the libp2p spec's Ed25519 test vector (peer-ids.md)", () => {
    // PrivateKey protobuf 0801 1240 <seed 32> <public key 32> from the spec's test vectors.
    const kp = keyPairFromSeed(fromHex('7e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d'))
    expect(toHex(kp.publicKey)).toBe('1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e')
  })

  it('refuses seeds that are not 32 bytes', () => {
    for (const seed of [new Uint8Array(0), new Uint8Array(31), new Uint8Array(33), new Uint8Array(64)]) {
      expect(keyError(() => keyPairFromSeed(seed)).code).toBe('malformed-key')
    }
    expect(keyError(() => keyPairFromSeed('00'.repeat(32) as unknown as Uint8Array)).code).toBe('malformed-key')
    expect(keyError(() => keyPairFromSeed(Array(32).fill(0) as unknown as Uint8Array)).code).toBe('malformed-key')
  })

  it('generates fresh random keys', () => {
    const a = generateKeyPair()
    const b = generateKeyPair()
    expect(a.seed.length).toBe(SEED_BYTES)
    expect(a.publicKey).not.toEqual(b.publicKey)
    expect(verifyBytes(a.publicKey, message, signBytes(a, message))).toBe(true)
  })
})

describe('sign and verify', () => {
  it('verifies a signature by the right key over the right bytes, and nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat({ max: 10_000 }), (data, flip) => {
        const sig = signBytes(alice, data)
        expect(sig.length).toBe(SIGNATURE_BYTES)
        expect(verifyBytes(alice.publicKey, data, sig)).toBe(true)
        expect(verifyBytes(bob.publicKey, data, sig)).toBe(false)
        const other = Uint8Array.from([...data, 0])
        expect(verifyBytes(alice.publicKey, other, sig)).toBe(false)
        const bad = Uint8Array.from(sig)
        const bit = flip % (SIGNATURE_BYTES * 8)
        bad[bit >> 3] = (bad[bit >> 3] as number) ^ (1 << (bit & 7))
        expect(verifyBytes(alice.publicKey, data, bad)).toBe(false)
      }),
      { numRuns: 60 },
    )
  })

  it('refuses a malleated signature (S + L)', () => {
    const L = 2n ** 252n + 27742317777372353535851937790883648493n
    const sig = signBytes(alice, message)
    let s = 0n
    for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i] as number)
    const bigger = s + L
    const malleated = Uint8Array.from(sig)
    for (let i = 0; i < 32; i++) malleated[32 + i] = Number((bigger >> BigInt(8 * i)) & 0xffn)
    expect(verifyBytes(alice.publicKey, message, malleated)).toBe(false)
  })

  it('returns false, never throws, for wrong-length signatures and keys and for garbage', () => {
    const sig = signBytes(alice, message)
    const garbage: unknown[] = [
      undefined,
      null,
      42,
      'signature',
      {},
      [],
      new Uint8Array(0),
      new Uint8Array(63),
      new Uint8Array(65),
      Uint8Array.from([...sig, 0]),
      sig.subarray(0, 63),
      new Uint8Array(64),
      new Uint8Array(64).fill(0xff),
    ]
    for (const g of garbage) {
      expect(verifyBytes(alice.publicKey, message, g as Uint8Array)).toBe(false)
      expect(verifyBytes(g as Uint8Array, message, sig)).toBe(false)
    }
    expect(verifyBytes(alice.publicKey.subarray(0, 31), message, sig)).toBe(false)
    expect(verifyBytes(Uint8Array.from([...alice.publicKey, 0]), message, sig)).toBe(false)
    expect(verifyBytes(alice.publicKey, 'text' as unknown as Uint8Array, sig)).toBe(false)
    expect(verifyBytes(alice.publicKey, undefined as unknown as Uint8Array, sig)).toBe(false)
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 80 }), (key, s) => {
        expect(verifyBytes(key, message, s)).toBe(false)
      }),
      { numRuns: 300 },
    )
  })

  it('checks a public key once and caches it', () => {
    expect(publicKeyObject(alice.publicKey)).toBe(publicKeyObject(Uint8Array.from(alice.publicKey)))
    expect(keyError(() => publicKeyObject(new Uint8Array(31))).code).toBe('malformed-key')
  })
})

describe('weak public keys (bug fixed: node:crypto accepts them)', () => {
  const smallOrderY = [0n, 1n, P - 1n, ORDER_8_Y, P - ORDER_8_Y]

  it('the blocklist is exactly the y coordinates of the points of order 1, 2, 4 and 8', () => {
    const orders = smallOrderY.map((y) => {
      const x = xOf(y)
      expect(x).toBeDefined()
      const point: Point = [x as bigint, y]
      expect(isIdentity(times(8, point))).toBe(true)
      return [1, 2, 4, 8].find((n) => isIdentity(times(n, point)))
    })
    expect(orders).toEqual([4, 1, 2, 8, 8])
    // A real public key is a point of large order.
    const y = decodeY(alice.publicKey)
    const x = xOf(y) as bigint
    expect(isIdentity(times(8, [x, y]))).toBe(false)
  })

  it('node:crypto alone accepts a forged signature under the identity key; verifyBytes does not', () => {
    const identity = encodeY(1n)
    const forged = new Uint8Array(64)
    forged[0] = 1 // R = identity, S = 0
    const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), identity])
    expect(nodeVerify(null, message, { key: spki, format: 'der', type: 'spki' }, forged)).toBe(true)
    expect(verifyBytes(identity, message, forged)).toBe(false)
  })

  it('refuses every small-order encoding, with either sign bit, and non-canonical y', () => {
    for (const y of smallOrderY) {
      for (const signBit of [false, true]) {
        const key = encodeY(y, signBit)
        expect(weakPublicKeyReason(key)).toMatch(/small order/)
        expect(keyError(() => publicKeyObject(key)).code).toBe('malformed-key')
        expect(verifyBytes(key, message, new Uint8Array(64))).toBe(false)
      }
    }
    for (let k = 0n; k < 19n; k++) {
      expect(weakPublicKeyReason(encodeY(P + k))).toMatch(/non-canonical/)
      expect(verifyBytes(encodeY(P + k, true), message, new Uint8Array(64))).toBe(false)
    }
    expect(weakPublicKeyReason(alice.publicKey)).toBeUndefined()
    expect(weakPublicKeyReason(encodeY(P - 2n))).toBeUndefined()
  })

  it('still signs and verifies with a node:crypto signature over the same key', () => {
    const sig = new Uint8Array(nodeSign(null, message, alice.privateKeyObject))
    expect(verifyBytes(alice.publicKey, message, sig)).toBe(true)
  })
})

describe('hex', () => {
  it('round-trips and accepts either case', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        expect(fromHex(toHex(b))).toEqual(b)
        expect(fromHex(toHex(b).toUpperCase(), b.length)).toEqual(b)
      }),
    )
  })

  it('refuses odd length, non-hex characters, wrong byte counts and non-strings', () => {
    for (const bad of ['0', 'abc', 'zz', '0x00', ' 00', '00 ', 'é0', '+1']) expect(keyError(() => fromHex(bad)).code).toBe('malformed-key')
    expect(keyError(() => fromHex('00', 2)).message).toMatch(/expected 2 bytes/)
    expect(keyError(() => fromHex(42 as unknown as string)).code).toBe('malformed-key')
  })
})

describe('key files', () => {
  const good = keyFileOf('kv/0', alice)
  const text = (obj: unknown): string => JSON.stringify(obj)
  const rejection = (t: string): KeyError => keyError(() => parseKeyFile(t))

  it('round-trips', () => {
    const parsed = parseKeyFile(serializeKeyFile('kv/0', alice))
    expect(parsed.id).toBe('kv/0')
    expect(parsed.keyPair.publicKey).toEqual(alice.publicKey)
    expect(parsed.keyPair.seed).toEqual(alice.seed)
    expect(serializeKeyFile('kv/0', alice).endsWith('}\n')).toBe(true)
    // Upper-case hex is the same key.
    expect(parseKeyFile(text({ ...good, seed: good.seed.toUpperCase(), publicKey: good.publicKey.toUpperCase() })).id).toBe('kv/0')
  })

  it('rejects each malformed file with its code, naming the field', () => {
    const cases: Array<[string, string, RegExp]> = [
      ['', 'malformed-key-file', /not JSON/],
      ['{', 'malformed-key-file', /not JSON/],
      ['null', 'malformed-key-file', /not an object/],
      ['[]', 'malformed-key-file', /not an object/],
      ['"ed25519"', 'malformed-key-file', /not an object/],
      ['7', 'malformed-key-file', /not an object/],
      [text({ ...good, type: 'rsa' }), 'malformed-key-file', /^type:/],
      [text({ ...good, type: undefined }), 'malformed-key-file', /^type:/],
      [text({ ...good, id: undefined }), 'malformed-key-file', /^id:/],
      [text({ ...good, id: '' }), 'malformed-key-file', /^id:/],
      [text({ ...good, id: 7 }), 'malformed-key-file', /^id:/],
      [text({ ...good, seed: undefined }), 'malformed-key-file', /^seed:/],
      [text({ ...good, seed: 12 }), 'malformed-key-file', /^seed:/],
      [text({ ...good, seed: 'zz'.repeat(32) }), 'malformed-key-file', /^seed: not a hex string/],
      [text({ ...good, seed: good.seed.slice(2) }), 'malformed-key-file', /^seed: expected 32 bytes/],
      [text({ ...good, seed: `${good.seed}00` }), 'malformed-key-file', /^seed: expected 32 bytes/],
      [text({ ...good, seed: good.seed.slice(1) }), 'malformed-key-file', /^seed: not a hex string/],
      [text({ ...good, publicKey: undefined }), 'malformed-key-file', /^publicKey:/],
      [text({ ...good, publicKey: ['ab'] }), 'malformed-key-file', /^publicKey:/],
      [text({ ...good, publicKey: `g${good.publicKey.slice(1)}` }), 'malformed-key-file', /^publicKey: not a hex string/],
      [text({ ...good, publicKey: good.publicKey.slice(0, 62) }), 'malformed-key-file', /^publicKey: expected 32 bytes/],
      [text({ ...good, extra: 1 }), 'malformed-key-file', /^extra: unknown field/],
      [text({ ...good, publicKey: toHex(bob.publicKey) }), 'key-mismatch', /does not match/],
      [text({ ...good, seed: toHex(bob.seed) }), 'key-mismatch', /does not match/],
    ]
    for (const [t, code, message] of cases) {
      const err = rejection(t)
      expect({ t, code: err.code }).toEqual({ t, code })
      expect(err.message).toMatch(message)
    }
  })

  it('never throws anything but KeyError on mutated files', () => {
    const fields = ['type', 'id', 'seed', 'publicKey', 'other']
    const json = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.string({ maxLength: 70 }), fc.constant(good.seed), fc.array(fc.nat(), { maxLength: 2 }))
    fc.assert(
      fc.property(fc.constantFrom(...fields), json, (field, value) => {
        const t = text({ ...good, [field]: value })
        try {
          expect(parseKeyFile(t).id).toBe(field === 'id' ? value : 'kv/0')
        } catch (err) {
          expect(err).toBeInstanceOf(KeyError)
        }
      }),
      { numRuns: 300 },
    )
  })
})

describe('peerIdOf', () => {
  it('is the base58btc identity multihash of the libp2p protobuf public key', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (seed) => {
        const { publicKey } = keyPairFromSeed(seed)
        const id = peerIdOf(publicKey)
        expect(id.startsWith('12D3KooW')).toBe(true)
        // uint8arrays adds and strips the multibase prefix ('z') itself.
        const bytes = fromString(id, 'base58btc')
        expect(bytes.length).toBe(38)
        expect([...bytes.subarray(0, 6)]).toEqual([0x00, 0x24, 0x08, 0x01, 0x12, 0x20])
        expect(bytes.subarray(6)).toEqual(publicKey)
        expect(bytesToString(bytes, 'base58btc')).toBe(id)
      }),
      { numRuns: 50 },
    )
  })

  it('gives the peer id of the libp2p spec test-vector key', () => {
    // Public key from libp2p's peer-ids.md test vectors; the id string was computed independently
    // (base58btc of 0x0024 08011220 || key), not by libp2p itself.
    expect(peerIdOf(fromHex('1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e'))).toBe('12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq')
  })

  it('gives different ids to different keys', () => {
    expect(peerIdOf(alice.publicKey)).not.toBe(peerIdOf(bob.publicKey))
  })

  it('refuses keys that are not 32 bytes', () => {
    for (const bad of [new Uint8Array(31), new Uint8Array(33), 'x'.repeat(32) as unknown as Uint8Array]) {
      expect(keyError(() => peerIdOf(bad)).code).toBe('malformed-key')
    }
  })
})
