/**
 * Agreed randomness: a generator seeded from the position in the order (sequence number, agreed
 * time, event index, and a stream label), so every correct replica draws the same numbers and
 * nobody (not even the primary) can choose them after seeing the batch.
 */
import { Sfc32, encode, sha256 } from '@bftrc/crypto'

export class OrderRandom {
  private readonly gen: Sfc32

  constructor(seq: number, stamp: number, index: number, stream = 0) {
    this.gen = Sfc32.fromBytes(sha256(encode({ seq, stamp, index, stream })))
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.gen.float()
  }
}
