/**
 * Checks of everything a replica accepts as proof from others, and the deterministic choice of
 * the pre-prepares a NEW-VIEW must carry. Pure functions: the new primary and every backup run
 * the same `selectNewView` over the same view changes and must get the same answer.
 */
import { type Group, type Membership, verifyBytes, verifyCertificate } from '@bftrc/crypto'
import {
  type Batch,
  type CheckpointProof,
  type PrePrepare,
  type PreparedProof,
  type StatementScope,
  type ViewChange,
  batchDigest,
  proposalDigest,
  checkpointStatement,
  prePrepareStatement,
  prepareStatement,
  requestDigest,
  viewChangeStatement,
} from './messages.js'

const batchDigests = new WeakMap<Batch, { readonly scope: StatementScope; readonly digest: Uint8Array }>()

/**
 * Digest of a batch (its stamp, its requests' digests in `scope`, its proposals' digests),
 * cached per batch object.
 */
export function digestOfBatch(scope: StatementScope, batch: Batch): Uint8Array {
  const cached = batchDigests.get(batch)
  if (cached !== undefined && cached.scope === scope) return cached.digest
  const digest = batchDigest(
    batch.stamp,
    batch.requests.map((r) => requestDigest(scope, r)),
    (batch.proposals ?? []).map(proposalDigest),
  )
  batchDigests.set(batch, { scope, digest })
  return digest
}

export interface GroupContext {
  readonly membership: Membership
  readonly group: Group
  /** The deployment and group every statement of this group names. */
  readonly scope: StatementScope
  /** Digest of the state every replica starts from: the checkpoint at seq 0 needs no signatures. */
  readonly genesisDigest: Uint8Array
  readonly logWindow: number
}

export function primaryOf(group: Group, view: number): number {
  return view % group.n
}

/** The scope of a group's statements: its name and the membership's deployment id. */
export function scopeOf(membership: Membership, group: string): StatementScope {
  return { deployment: membership.deployment, group }
}

export function verifyPrePrepareSignature(ctx: GroupContext, pp: PrePrepare): boolean {
  const primary = ctx.group.members[primaryOf(ctx.group, pp.view)]
  if (primary === undefined) return false
  return verifyBytes(primary.publicKey, prePrepareStatement(ctx.scope, pp.view, pp.seq, digestOfBatch(ctx.scope, pp.batch)), pp.signature)
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

export function verifyCheckpointProof(ctx: GroupContext, proof: CheckpointProof): boolean {
  if (proof.seq === 0) return proof.certificate === undefined && equalBytes(proof.digest, ctx.genesisDigest)
  if (proof.certificate === undefined) return false
  try {
    verifyCertificate(ctx.membership, proof.certificate, {
      group: ctx.group.name,
      digest: checkpointStatement(ctx.scope, proof.seq, proof.digest),
      threshold: ctx.group.quorum,
    })
    return true
  } catch {
    return false
  }
}

/** A prepared certificate: a signed pre-prepare and quorum - 1 prepares from distinct backups of its view. */
export function verifyPreparedProof(ctx: GroupContext, proof: PreparedProof): boolean {
  const pp = proof.prePrepare
  if (!verifyPrePrepareSignature(ctx, pp)) return false
  const primary = primaryOf(ctx.group, pp.view)
  if (proof.prepares.shares.some((s) => s.signer === primary)) return false
  try {
    verifyCertificate(ctx.membership, proof.prepares, {
      group: ctx.group.name,
      digest: prepareStatement(ctx.scope, pp.view, pp.seq, digestOfBatch(ctx.scope, pp.batch)),
      threshold: ctx.group.quorum - 1,
    })
    return true
  } catch {
    return false
  }
}

/**
 * Checks a VIEW-CHANGE from replica `sender`: its signature, its checkpoint proof, and each
 * prepared certificate (one per sequence number, inside the window above the checkpoint, from
 * views below the new one). `alreadyVerified` lets a replica skip proofs it checked before.
 */
export function verifyViewChange(ctx: GroupContext, vc: ViewChange, sender: number, alreadyVerified?: (p: PreparedProof) => boolean): boolean {
  const member = ctx.group.members[sender]
  if (member === undefined) return false
  if (!verifyBytes(member.publicKey, viewChangeStatement(ctx.scope, vc), vc.signature)) return false
  if (!verifyCheckpointProof(ctx, vc.stable)) return false
  const seen = new Set<number>()
  for (const p of vc.prepared) {
    const seq = p.prePrepare.seq
    if (seq <= vc.stable.seq || seq > vc.stable.seq + ctx.logWindow || seen.has(seq)) return false
    if (p.prePrepare.view >= vc.view) return false
    seen.add(seq)
    if (alreadyVerified?.(p) !== true && !verifyPreparedProof(ctx, p)) return false
  }
  return true
}

export interface NewViewPlan {
  /** The checkpoint the new view starts from: the highest among the view changes. */
  readonly stable: CheckpointProof
  /** One batch per sequence number in (stable.seq, maxSeq]; empty (null) batches fill the gaps. */
  readonly batches: ReadonlyArray<{ readonly seq: number; readonly batch: Batch }>
}

/**
 * PBFT's new-view rule with signed certificates: start from the highest stable checkpoint; for
 * every sequence number above it that some view change reports prepared, re-issue the batch
 * prepared in the highest view; fill gaps up to the highest such number with null batches.
 * Anything that committed in an earlier view was prepared at 2f+1 replicas, f+1 of them correct,
 * so at least one of any 2f+1 view changes reports it, and no other batch can carry a higher view.
 */
export function selectNewView(viewChanges: readonly ViewChange[]): NewViewPlan {
  let stable = viewChanges[0]?.stable as CheckpointProof
  for (const vc of viewChanges) if (vc.stable.seq > stable.seq) stable = vc.stable
  const chosen = new Map<number, PrePrepare>()
  let maxSeq = stable.seq
  for (const vc of viewChanges) {
    for (const p of vc.prepared) {
      const pp = p.prePrepare
      if (pp.seq <= stable.seq) continue
      const current = chosen.get(pp.seq)
      if (current === undefined || pp.view > current.view) chosen.set(pp.seq, pp)
      if (pp.seq > maxSeq) maxSeq = pp.seq
    }
  }
  const batches: Array<{ seq: number; batch: Batch }> = []
  for (let seq = stable.seq + 1; seq <= maxSeq; seq++) {
    batches.push({ seq, batch: chosen.get(seq)?.batch ?? { stamp: 0, requests: [] } })
  }
  return { stable, batches }
}

export { equalBytes }
