import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { encode, type Value } from './encoding.js'

export const DIGEST_BYTES = 32

/** SHA-256 of raw bytes. */
export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest())
}

/** SHA-256 of the concatenation of `parts`, without building it (a Merkle leaf: a tag, then a chunk). */
export function sha256Parts(parts: readonly Uint8Array[]): Uint8Array {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}

/** SHA-256 of a value's canonical encoding: the digest every replica computes alike. */
export function digestOf(value: Value): Uint8Array {
  return sha256(encode(value))
}

/** HMAC-SHA256, for pairwise MAC authenticators. */
export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac('sha256', key).update(data).digest())
}

/** Constant-time equality of byte strings (false for different lengths). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}
