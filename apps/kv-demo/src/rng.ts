/**
 * Seeded draws for the harness's delivery order and the chaos schedule: crypto's sfc32, seeded
 * from one 32-bit number (warmed up by 12 draws), so a seed replays the same choices.
 */
import { Sfc32 } from '@bftrc/crypto'

export class Rng {
  private readonly gen: Sfc32
  constructor(seed: number) {
    this.gen = new Sfc32(0x9e3779b9, 0x243f6a88, 0xb7e15162, seed)
    for (let i = 0; i < 12; i++) this.gen.uint32()
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.gen.float()
  }
  /** Uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1))
  }
  /** Uniform in [lo, hi). */
  between(lo: number, hi: number): number {
    return lo + this.next() * (hi - lo)
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list')
    return items[this.int(0, items.length - 1)] as T
  }
}
