/**
 * sfc32, a small fast pseudo-random generator: for deterministic draws from agreed seeds (the
 * replicated application's randomness) and for seeded simulations. Not for keys.
 */
export class Sfc32 {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor(a: number, b: number, c: number, d: number) {
    this.a = a >>> 0
    this.b = b >>> 0
    this.c = c >>> 0
    this.d = d >>> 0
  }

  /** A generator from the first 16 bytes of a (digest-sized) seed. */
  static fromBytes(seed: Uint8Array): Sfc32 {
    if (seed.length < 16) throw new RangeError('an sfc32 seed needs 16 bytes')
    const v = new DataView(seed.buffer, seed.byteOffset, seed.byteLength)
    return new Sfc32(v.getUint32(0), v.getUint32(4), v.getUint32(8), v.getUint32(12))
  }

  uint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0
    this.d = (this.d + 1) >>> 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) >>> 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.c = (this.c + t) >>> 0
    return t
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.uint32() / 4294967296
  }
}
