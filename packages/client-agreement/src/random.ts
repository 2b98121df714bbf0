/**
 * Agreed randomness: a generator seeded from the position in the order (sequence number, agreed
 * time, event index, and a stream label), so every correct replica draws the same numbers and
 * nobody (not even the primary) can choose them after seeing the batch.
 */
import { encode, sha256 } from '@bftrc/crypto'

export class OrderRandom {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor(seq: number, stamp: number, index: number, stream = 0) {
    const seed = sha256(encode({ seq, stamp, index, stream }))
    const view = new DataView(seed.buffer, seed.byteOffset, seed.byteLength)
    this.a = view.getUint32(0)
    this.b = view.getUint32(4)
    this.c = view.getUint32(8)
    this.d = view.getUint32(12)
  }

  /** Uniform in [0, 1) (sfc32). */
  next(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0
    this.d = (this.d + 1) >>> 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) >>> 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.c = (this.c + t) >>> 0
    return t / 4294967296
  }
}
