/**
 * One sequence number's slot in the log: the accepted pre-prepare and the prepare and commit
 * votes seen for it. Votes are kept one per replica (the highest view wins), so a Byzantine
 * replica can occupy at most its own slot however much it sends.
 */
import type { SignatureShare } from '@bftrc/crypto'
import type { PrePrepare, Prepare, PreparedProof } from './messages.js'
import { equalBytes } from './proofs.js'

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
  /** Our own prepare for (view, seq), kept to resend it to a peer that missed it. */
  ownPrepare: Prepare | undefined
  sentCommit = false
  /** The prepared certificate from the highest view in which this slot prepared (for view changes). */
  preparedProof: PreparedProof | undefined

  constructor(readonly seq: number) {}

  /** Forgets the view-specific progress when a new view re-issues (or drops) this slot. */
  resetForView(): void {
    this.view = -1
    this.prePrepare = undefined
    this.digest = undefined
    this.prepared = false
    this.ownPrepare = undefined
    this.sentCommit = false
  }

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
