import { Sfc32 } from '@bftrc/crypto'

/**
 * Seeded pseudo-random numbers (sfc32, seeded through splitmix32). Every random choice of a
 * simulation comes from one of these, so a seed replays a run exactly.
 */
export class Prng {
  private readonly gen: Sfc32

  constructor(seed: number) {
    let s = seed >>> 0
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0
      let z = s
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
      return (z ^ (z >>> 16)) >>> 0
    }
    this.gen = new Sfc32(next(), next(), next(), next())
    for (let i = 0; i < 12; i++) this.gen.uint32()
  }

  uint32(): number {
    return this.gen.uint32()
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.uint32() / 4294967296
  }

  /** Uniform integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.float() * (max - min + 1))
  }

  chance(p: number): boolean {
    return p > 0 && this.float() < p
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list')
    return items[this.int(0, items.length - 1)] as T
  }

  /** A child generator, so one component's draws do not shift another's. */
  fork(): Prng {
    return new Prng(this.uint32())
  }
}
