/**
 * What the adversary has seen: the frames it received (and its own replica's honest ones), and
 * the signed pieces inside them (requests, pre-prepares, prepared and checkpoint proofs, view
 * changes, certified events, shares), a bounded ring per kind. Replays and splices draw from here:
 * other members' signatures the adversary cannot make, in places they were not meant for.
 */
import { type InterGroupMessage, decodeInterGroup, isInterGroupFrame } from '@bftrc/client-agreement'
import { type CheckpointProof, DEFAULT_LIMITS, type Message, type PrePrepare, type PreparedProof, type Request, type ViewChange, tryDecodeMessage } from '@bftrc/core-agreement'
import type { Prng } from './prng.js'

/** Items kept per kind (oldest replaced first). */
const PER_KIND = 32

class Ring<T> {
  private readonly items: T[] = []
  private next = 0
  push(item: T): void {
    if (this.items.length < PER_KIND) this.items.push(item)
    else this.items[this.next] = item
    this.next = (this.next + 1) % PER_KIND
  }
  pick(r: Prng): T | undefined {
    return this.items.length === 0 ? undefined : r.pick(this.items)
  }
  get size(): number {
    return this.items.length
  }
}

export class Corpus {
  readonly frames = new Ring<{ from: string; bytes: Uint8Array }>()
  readonly messages = new Map<string, Ring<Message>>()
  readonly shares = new Ring<InterGroupMessage>()
  readonly requests = new Ring<Request>()
  readonly prePrepares = new Ring<PrePrepare>()
  readonly preparedProofs = new Ring<PreparedProof>()
  readonly checkpointProofs = new Ring<CheckpointProof>()
  readonly viewChanges = new Ring<{ replica: number; viewChange: ViewChange }>()
  readonly proposals = new Ring<Uint8Array>()
  readonly digests = new Ring<Uint8Array>()

  /** Takes in one frame (from anyone, to us, or our own honest one). */
  observe(from: string, bytes: Uint8Array, senderIndex: number | undefined): void {
    this.frames.push({ from, bytes })
    if (isInterGroupFrame(bytes)) {
      try {
        this.shares.push(decodeInterGroup(bytes, DEFAULT_LIMITS.maxOpBytes))
      } catch {
        // junk from another adversary: nothing to learn
      }
      return
    }
    const m = tryDecodeMessage(bytes, DEFAULT_LIMITS)
    if (m === undefined) return
    let ring = this.messages.get(m.t)
    if (ring === undefined) {
      ring = new Ring()
      this.messages.set(m.t, ring)
    }
    ring.push(m)
    switch (m.t) {
      case 'request':
        this.requests.push(m.request)
        break
      case 'pre-prepare':
        this.prePrepare(m)
        break
      case 'prepare':
      case 'commit':
      case 'checkpoint':
      case 'executed':
        this.digests.push(m.digest)
        break
      case 'stable':
        this.checkpointProofs.push(m.proof)
        break
      case 'view-change':
        this.viewChange(m, senderIndex)
        break
      case 'new-view':
        for (const v of m.viewChanges) this.viewChange(v.viewChange, v.replica)
        for (const pp of m.prePrepares) this.prePrepare(pp)
        break
      case 'proposal':
        this.proposals.push(m.payload)
        break
    }
  }

  private prePrepare(pp: PrePrepare): void {
    this.prePrepares.push(pp)
    for (const r of pp.batch.requests) this.requests.push(r)
    for (const p of pp.batch.proposals ?? []) this.proposals.push(p)
  }

  private viewChange(vc: ViewChange, replica: number | undefined): void {
    if (replica !== undefined) this.viewChanges.push({ replica, viewChange: vc })
    this.checkpointProofs.push(vc.stable)
    for (const p of vc.prepared) {
      this.preparedProofs.push(p)
      this.prePrepare(p.prePrepare)
    }
  }

  pickMessage<T extends Message['t']>(r: Prng, t: T): Extract<Message, { t: T }> | undefined {
    return this.messages.get(t)?.pick(r) as Extract<Message, { t: T }> | undefined
  }
}
