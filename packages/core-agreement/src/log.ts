/**
 * One sequence number's slot in the log: the accepted pre-prepare and the prepare and commit
 * votes seen for it. Votes are kept one per replica (the highest view wins), so a Byzantine
 * replica can occupy at most its own slot however much it sends.
 */
import type { SignatureShare } from '@bftrc/crypto'
import type { PrePrepare, Prepare, PreparedProof, StatementScope } from './messages.js'
import { digestOfBatch, equalBytes } from './proofs.js'

export interface Vote {
  readonly view: number
  readonly digest: Uint8Array
  readonly signature?: Uint8Array
}

export class LogEntry {
  /** View of the accepted pre-prepare; -1 while none is accepted. */
  view = -1
  prePrepare: PrePrepare | undefined
  digest: Uint8Array | undefined
  readonly prepares = new Map<number, Vote>()
  readonly commits = new Map<number, Vote>()
  prepared = false
  committed = false
  /** When we accepted the pre-prepare from the primary (to measure the prepare round); not for re-issued slots. */
  acceptedAt: number | undefined
  /** Our own prepare for (view, seq), kept to resend it to a peer that missed it. */
  ownPrepare: Prepare | undefined
  sentCommit = false
  /** The prepared certificate from the highest view in which this slot prepared (for view changes). */
  preparedProof: PreparedProof | undefined
  /** Signed pre-prepares of views this replica no longer votes in, kept to learn decisions (bounded). */
  readonly learned = new Map<number, PrePrepare>()
  /** Our own signed "executed" attestation for this slot, once made. */
  executedSignature: Uint8Array | undefined
  /** Verified "executed" attestations (batch digest per replica, one each). */
  readonly attestations = new Map<number, Uint8Array>()

  constructor(readonly seq: number) {}

  /** Forgets the view-specific progress when a new view re-issues (or drops) this slot. */
  resetForView(): void {
    this.view = -1
    this.prePrepare = undefined
    this.digest = undefined
    this.acceptedAt = undefined
    this.prepared = false
    this.ownPrepare = undefined
    this.sentCommit = false
  }

  learn(pp: PrePrepare): void {
    this.learned.set(pp.view, pp)
    if (this.learned.size > LogEntry.MAX_LEARNED) {
      this.learned.delete(Math.min(...this.learned.keys()))
    }
  }

  /** A batch with 2f+1 matching commits in its view, if we hold its signed pre-prepare. */
  committedBatch(scope: StatementScope, quorum: number): PrePrepare | undefined {
    const tally = new Map<string, { view: number; digest: Uint8Array; n: number }>()
    for (const vote of this.commits.values()) {
      const k = `${vote.view}:${Buffer.from(vote.digest).toString('hex')}`
      const t = tally.get(k) ?? { view: vote.view, digest: vote.digest, n: 0 }
      t.n++
      tally.set(k, t)
    }
    for (const t of tally.values()) {
      if (t.n < quorum) continue
      const candidates = [this.prePrepare, this.learned.get(t.view)]
      for (const pp of candidates) {
        if (pp !== undefined && pp.view === t.view && equalBytes(digestOfBatch(scope, pp.batch), t.digest)) return pp
      }
    }
    return undefined
  }

  /** A batch f+1 replicas attest they executed (so a correct one did), if we hold its pre-prepare. */
  attestedBatch(scope: StatementScope, weakQuorum: number): PrePrepare | undefined {
    const tally = new Map<string, { digest: Uint8Array; n: number }>()
    for (const digest of this.attestations.values()) {
      const k = Buffer.from(digest).toString('hex')
      const t = tally.get(k) ?? { digest, n: 0 }
      t.n++
      tally.set(k, t)
    }
    for (const t of tally.values()) {
      if (t.n < weakQuorum) continue
      for (const pp of [this.prePrepare, ...this.learned.values()]) {
        if (pp !== undefined && equalBytes(digestOfBatch(scope, pp.batch), t.digest)) return pp
      }
    }
    return undefined
  }

  static readonly MAX_LEARNED = 4

  /** Records a vote; returns false when it is stale or a duplicate (nothing changed). */
  static addVote(votes: Map<number, Vote>, replica: number, vote: Vote): boolean {
    const existing = votes.get(replica)
    if (existing !== undefined && existing.view >= vote.view) return false
    votes.set(replica, vote)
    return true
  }

  /** Prepares that match the accepted pre-prepare, excluding the primary's. */
  matchingPrepares(primary: number): SignatureShare[] {
    const out: SignatureShare[] = []
    if (this.digest === undefined) return out
    for (const [replica, vote] of this.prepares) {
      if (replica !== primary && vote.view === this.view && vote.signature !== undefined && equalBytes(vote.digest, this.digest)) {
        out.push({ signer: replica, signature: vote.signature })
      }
    }
    return out.sort((a, b) => a.signer - b.signer)
  }

  matchingCommits(): number {
    let n = 0
    if (this.digest === undefined) return n
    for (const vote of this.commits.values()) if (vote.view === this.view && equalBytes(vote.digest, this.digest)) n++
    return n
  }
}
