/**
 * The simulated network: every frame is dropped, duplicated or delayed by seeded draws, and
 * partitions cut links. Delays are drawn per frame, so frames between one pair reorder.
 */
import type { EventQueue } from './event-queue.js'
import type { Prng } from '@bftrc/adversary'

export interface NetworkFaults {
  /** Probability a frame is lost. */
  readonly dropRate: number
  /** Probability a frame is delivered twice. */
  readonly duplicateRate: number
  /** Delay range per frame, in virtual milliseconds (inclusive). */
  readonly minDelay: number
  readonly maxDelay: number
}

export const PERFECT: NetworkFaults = { dropRate: 0, duplicateRate: 0, minDelay: 1, maxDelay: 1 }

/** `side` names the sending instance of a twinned replica ('A' or 'B'); undefined otherwise. */
export type Deliver = (from: string, to: string, bytes: Uint8Array, side: 'A' | 'B' | undefined) => void

export class SimNetwork {
  faults: NetworkFaults = PERFECT
  /** Frames sent, by message type (counted at the sender, before any loss). */
  readonly sentByType = new Map<string, number>()
  sent = 0
  bytes = 0
  dropped = 0
  private readonly cut = new Set<string>()

  constructor(
    private readonly queue: EventQueue,
    private readonly prng: Prng,
    private readonly now: () => number,
    private readonly deliver: Deliver,
  ) {}

  send(from: string, to: string, bytes: Uint8Array, type: string, side?: 'A' | 'B'): void {
    this.sent++
    this.bytes += bytes.length
    this.sentByType.set(type, (this.sentByType.get(type) ?? 0) + 1)
    if (this.isCut(from, to) || this.prng.chance(this.faults.dropRate)) {
      this.dropped++
      return
    }
    const copies = this.prng.chance(this.faults.duplicateRate) ? 2 : 1
    for (let i = 0; i < copies; i++) {
      const at = this.now() + this.prng.int(this.faults.minDelay, this.faults.maxDelay)
      this.queue.push(at, () => {
        // A partition that starts while a frame is in flight also stops it.
        if (!this.isCut(from, to)) this.deliver(from, to, bytes, side)
      })
    }
  }

  /** Cuts every link between the two sides (both directions). */
  partition(sideA: readonly string[], sideB: readonly string[]): void {
    for (const a of sideA) for (const b of sideB) {
      this.cut.add(`${a}>${b}`)
      this.cut.add(`${b}>${a}`)
    }
  }

  /** Cuts one direction only (asymmetric faults). */
  cutOneWay(from: string, to: string): void {
    this.cut.add(`${from}>${to}`)
  }

  heal(): void {
    this.cut.clear()
  }

  isCut(from: string, to: string): boolean {
    return this.cut.size > 0 && this.cut.has(`${from}>${to}`)
  }
}
