/**
 * Ed25519 keys. One 32-byte seed per replica gives both its protocol signing key and its libp2p
 * identity (the libp2p peer id is derived from the same public key), so the transport's
 * authenticated `from` and the signatures inside messages name the same member.
 */
import { type KeyObject, createPrivateKey, createPublicKey, randomBytes, sign, verify } from 'node:crypto'
import { toString as bytesToString, fromString as bytesFromString } from 'uint8arrays'
import { KeyError } from './errors.js'

export const PUBLIC_KEY_BYTES = 32
export const SEED_BYTES = 32
export const SIGNATURE_BYTES = 64

// DER prefixes of PKCS#8 and SPKI wrappers around raw Ed25519 keys (RFC 8410).
const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20])
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00])

export interface KeyPair {
  readonly seed: Uint8Array
  readonly publicKey: Uint8Array
  readonly privateKeyObject: KeyObject
  readonly publicKeyObject: KeyObject
}

function concat(a: Uint8Array, b: Uint8Array): Buffer {
  return Buffer.concat([a, b])
}

export function keyPairFromSeed(seed: Uint8Array): KeyPair {
  if (!(seed instanceof Uint8Array) || seed.length !== SEED_BYTES) {
    throw new KeyError('malformed-key', `an Ed25519 seed is ${SEED_BYTES} bytes`)
  }
  const privateKeyObject = createPrivateKey({ key: concat(PKCS8_PREFIX, seed), format: 'der', type: 'pkcs8' })
  const publicKeyObject = createPublicKey(privateKeyObject)
  const jwk = publicKeyObject.export({ format: 'jwk' })
  const publicKey = bytesFromString(jwk.x as string, 'base64url')
  return { seed: Uint8Array.from(seed), publicKey, privateKeyObject, publicKeyObject }
}

/** A fresh key pair from the OS's randomness (key generation is a host action, never in the core). */
export function generateKeyPair(): KeyPair {
  return keyPairFromSeed(new Uint8Array(randomBytes(SEED_BYTES)))
}

// Field prime of Curve25519 and the y coordinates of the eight points of order dividing 8: 1 (the
// identity), p-1 (order 2), 0 (order 4) and the two of order 8 (libsodium's blocklist, in
// little-endian hex). Anyone can forge signatures that verify under such a "public key", and
// node:crypto (OpenSSL) accepts them: under the identity key, the signature R = identity, S = 0
// verifies for every message. A non-canonical encoding (y >= p) is refused too (RFC 8032 5.1.3).
const FIELD_P = 2n ** 255n - 19n
const ORDER_8_Y = littleEndian(bytesFromString('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', 'base16'))
const SMALL_ORDER_Y = new Set([0n, 1n, FIELD_P - 1n, ORDER_8_Y, FIELD_P - ORDER_8_Y])

function littleEndian(bytes: Uint8Array): bigint {
  let n = 0n
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i] as number)
  return n
}

/** Why a 32-byte string is unusable as an Ed25519 public key, or undefined if it is usable. */
export function weakPublicKeyReason(publicKey: Uint8Array): string | undefined {
  const y = littleEndian(publicKey) & ((1n << 255n) - 1n) // the top bit is the sign of x
  if (y >= FIELD_P) return 'non-canonical encoding (y >= 2^255-19)'
  if (SMALL_ORDER_Y.has(y)) return 'a point of small order (signatures under it can be forged)'
  return undefined
}

const publicKeyCache = new Map<string, KeyObject>()
const PUBLIC_KEY_CACHE_LIMIT = 4096

/** The node:crypto key object for a raw public key; cached because creating one costs ~10 µs. */
export function publicKeyObject(publicKey: Uint8Array): KeyObject {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== PUBLIC_KEY_BYTES) {
    throw new KeyError('malformed-key', `an Ed25519 public key is ${PUBLIC_KEY_BYTES} bytes`)
  }
  const id = bytesToString(publicKey, 'base16')
  let key = publicKeyCache.get(id)
  if (key === undefined) {
    const weak = weakPublicKeyReason(publicKey)
    if (weak !== undefined) throw new KeyError('malformed-key', `not a usable Ed25519 public key: ${weak}`)
    try {
      key = createPublicKey({ key: concat(SPKI_PREFIX, publicKey), format: 'der', type: 'spki' })
    } catch (err) {
      throw new KeyError('malformed-key', `not an Ed25519 public key: ${(err as Error).message}`)
    }
    if (publicKeyCache.size >= PUBLIC_KEY_CACHE_LIMIT) publicKeyCache.clear()
    publicKeyCache.set(id, key)
  }
  return key
}

/**
 * Signature checks asked for, and signatures made, since the process started: a measure of the
 * work an input costs (the simulator bounds it per input), counted whether or not a cache
 * answered, so it does not depend on what ran before.
 */
export const signatureWork = { verifications: 0, signatures: 0 }

export function signBytes(keyPair: KeyPair, data: Uint8Array): Uint8Array {
  signatureWork.signatures++
  return new Uint8Array(sign(null, data, keyPair.privateKeyObject))
}

let verifyCache: Map<string, boolean> | undefined
let verifyCacheCapacity = 0

/**
 * Remembers verification outcomes (bounded; 0 turns it off). Verification is a pure function of
 * (key, data, signature), so a cache never changes an answer; it saves work where one process
 * checks the same signature many times: the simulator, which runs a whole group in one process,
 * and retransmissions.
 */
export function setVerificationCache(capacity: number): void {
  verifyCacheCapacity = Math.max(0, Math.floor(capacity))
  verifyCache = verifyCacheCapacity > 0 ? new Map() : undefined
}

function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1')
}

/** True only for a valid signature; malformed keys or signatures are simply invalid, never thrown. */
export function verifyBytes(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  signatureWork.verifications++
  if (!(signature instanceof Uint8Array) || signature.length !== SIGNATURE_BYTES) return false
  if (verifyCache === undefined || !(publicKey instanceof Uint8Array) || !(data instanceof Uint8Array)) return verifyUncached(publicKey, data, signature)
  const k = `${latin1(publicKey)}|${latin1(signature)}|${latin1(data)}`
  let ok = verifyCache.get(k)
  if (ok === undefined) {
    ok = verifyUncached(publicKey, data, signature)
    if (verifyCache.size >= verifyCacheCapacity) verifyCache.clear()
    verifyCache.set(k, ok)
  }
  return ok
}

function verifyUncached(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  let key: KeyObject
  try {
    key = publicKeyObject(publicKey)
  } catch {
    return false
  }
  try {
    return verify(null, data, key, signature)
  } catch {
    return false
  }
}

/**
 * The libp2p peer id of an Ed25519 public key, as libp2p prints it ("12D3KooW…"): the identity
 * multihash of the protobuf-encoded public key, in base58btc.
 */
export function peerIdOf(publicKey: Uint8Array): string {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== PUBLIC_KEY_BYTES) {
    throw new KeyError('malformed-key', 'an Ed25519 public key is 32 bytes')
  }
  const protobuf = new Uint8Array(4 + PUBLIC_KEY_BYTES)
  protobuf.set([0x08, 0x01, 0x12, PUBLIC_KEY_BYTES])
  protobuf.set(publicKey, 4)
  const multihash = new Uint8Array(2 + protobuf.length)
  multihash.set([0x00, protobuf.length])
  multihash.set(protobuf, 2)
  return bytesToString(multihash, 'base58btc')
}

/** Lower-case hex: how keys appear in config and key files. */
export function toHex(bytes: Uint8Array): string {
  return bytesToString(bytes, 'base16')
}

/** Strict hex parse: lower- or upper-case, even length, exactly `length` bytes when given. */
export function fromHex(text: string, length?: number): Uint8Array {
  if (typeof text !== 'string' || !/^(?:[0-9a-fA-F]{2})*$/.test(text)) {
    throw new KeyError('malformed-key', 'not a hex string')
  }
  const bytes = bytesFromString(text.toLowerCase(), 'base16')
  if (length !== undefined && bytes.length !== length) {
    throw new KeyError('malformed-key', `expected ${length} bytes of hex, got ${bytes.length}`)
  }
  return bytes
}

/** The on-disk form of a replica's key. */
export interface KeyFile {
  readonly type: 'ed25519'
  readonly id: string
  readonly seed: string
  readonly publicKey: string
}

export function keyFileOf(id: string, keyPair: KeyPair): KeyFile {
  return { type: 'ed25519', id, seed: toHex(keyPair.seed), publicKey: toHex(keyPair.publicKey) }
}

export function serializeKeyFile(id: string, keyPair: KeyPair): string {
  return `${JSON.stringify(keyFileOf(id, keyPair), null, 2)}\n`
}

const KEY_FILE_FIELDS = ['type', 'id', 'seed', 'publicKey']

function keyFileHex(value: unknown, field: string, length: number): Uint8Array {
  if (typeof value !== 'string') throw new KeyError('malformed-key-file', `${field}: expected ${length * 2} hex characters`)
  try {
    return fromHex(value, length)
  } catch (err) {
    throw new KeyError('malformed-key-file', `${field}: ${(err as Error).message}`)
  }
}

/**
 * Parses and checks a key file: exactly the fields `type`, `id`, `seed` and `publicKey`, and the
 * seed must derive the public key it claims. Throws KeyError: `malformed-key-file` for a shape
 * mistake (the message names the field), `key-mismatch` when the seed and public key disagree.
 */
export function parseKeyFile(text: string): { id: string; keyPair: KeyPair } {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new KeyError('malformed-key-file', `key file is not JSON: ${(err as Error).message}`)
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new KeyError('malformed-key-file', 'key file is not an object')
  const obj = raw as Record<string, unknown>
  for (const key of Object.keys(obj)) {
    if (!KEY_FILE_FIELDS.includes(key)) throw new KeyError('malformed-key-file', `${key}: unknown field (allowed: ${KEY_FILE_FIELDS.join(', ')})`)
  }
  if (obj.type !== 'ed25519') throw new KeyError('malformed-key-file', 'type: expected "ed25519"')
  if (typeof obj.id !== 'string' || obj.id.length === 0) throw new KeyError('malformed-key-file', 'id: expected a non-empty string')
  const seed = keyFileHex(obj.seed, 'seed', SEED_BYTES)
  const publicKey = keyFileHex(obj.publicKey, 'publicKey', PUBLIC_KEY_BYTES)
  const keyPair = keyPairFromSeed(seed)
  if (toHex(keyPair.publicKey) !== toHex(publicKey)) throw new KeyError('key-mismatch', 'publicKey does not match the seed')
  return { id: obj.id, keyPair }
}
