/**
 * Edge values for every number a peer controls: the ends of the receiver's window and one past
 * them, the small and the huge, the powers of two where integer arithmetic changes behaviour,
 * and (rarely) values no decoder should accept. Drawn with the adversary's seeded Prng.
 */
import type { Prng } from './prng.js'

/** Fixed edges of any unsigned field: 0, 1, 2^31 ± 1, 2^32 ± 1, 2^48 ± 1, 2^53 - 1. */
export const FIXED_EDGES: readonly number[] = [0, 1, 2, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 48 - 1, 2 ** 48, 2 ** 48 + 1, 2 ** 53 - 2, 2 ** 53 - 1]

/**
 * An edge number: one of `anchors` (the receiver's window as the adversary sees it: view,
 * last executed, stable checkpoint, its top) or one off it, a fixed edge, a random value near
 * the anchors, or a random huge one. Negative values (which no decoder takes) come up rarely.
 */
export function edgeNumber(r: Prng, anchors: readonly number[]): number {
  const roll = r.int(0, 99)
  if (roll < 45 && anchors.length > 0) {
    const a = r.pick(anchors)
    return clamp(a + r.pick([-1, 0, 0, 1, 2]))
  }
  if (roll < 75) return r.pick(FIXED_EDGES)
  if (roll < 90 && anchors.length > 0) return clamp(r.pick(anchors) + r.int(-64, 64))
  if (roll < 98) return r.int(0, 2 ** 53 - 1)
  return -r.int(1, 2 ** 31)
}

function clamp(n: number): number {
  return Math.min(Math.max(n, 0), 2 ** 53 - 1)
}

/** A length for an array or a byte string: empty, one, the limit, one past it, or in between. */
export function edgeLength(r: Prng, limit: number): number {
  switch (r.int(0, 5)) {
    case 0:
      return 0
    case 1:
      return 1
    case 2:
      return limit
    case 3:
      return limit + 1
    default:
      return r.int(0, Math.max(0, limit))
  }
}

/** Random bytes of length `n` (capped at `cap` so a draw never costs more than the cap). */
export function randomBytes(r: Prng, n: number, cap = 1 << 20): Uint8Array {
  const out = new Uint8Array(Math.min(Math.max(0, n), cap))
  for (let i = 0; i < out.length; i += 4) {
    const v = r.uint32()
    out[i] = v & 0xff
    if (i + 1 < out.length) out[i + 1] = (v >>> 8) & 0xff
    if (i + 2 < out.length) out[i + 2] = (v >>> 16) & 0xff
    if (i + 3 < out.length) out[i + 3] = (v >>> 24) & 0xff
  }
  return out
}
