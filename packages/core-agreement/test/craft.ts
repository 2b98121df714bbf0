/**
 * Hand-made protocol messages, signed with whichever key a test chooses (the cluster holds every
 * key), for rejection and Byzantine scenarios.
 */
import { type KeyPair, type QuorumCertificate, signBytes } from '@bftrc/crypto'
import {
  type Batch,
  type Checkpoint,
  type CheckpointProof,
  type NewView,
  type PrePrepare,
  type Prepare,
  type PreparedProof,
  type Request,
  type StatementScope,
  type ViewChange,
  checkpointStatement,
  digestOfBatch,
  prePrepareStatement,
  prepareStatement,
  requestDigest,
  viewChangeStatement,
  newViewStatement,
} from '../src/index.js'
import { GROUP, type Harness, op } from './harness.js'

export class Craft {
  constructor(private readonly h: Harness) {}

  private key(signer: string): KeyPair {
    return this.h.key(signer)
  }

  /** A request of `client`, signed by `signer` (the client itself unless told otherwise). */
  request(client: string, timestamp: number, operation = `op-${client}-${timestamp}`, options: { readOnly?: boolean; signer?: string; scope?: StatementScope } = {}): Request {
    const body = { client, timestamp, op: op(operation), readOnly: options.readOnly === true }
    return { ...body, signature: signBytes(this.key(options.signer ?? client), requestDigest(options.scope ?? this.h.scope, body)) }
  }

  batch(stamp: number, ...requests: Request[]): Batch {
    return { stamp, requests }
  }

  /** A pre-prepare signed by `signer` (the view's primary unless told otherwise). */
  prePrepare(view: number, seq: number, batch: Batch, signer = this.h.id(view % this.h.group.n)): PrePrepare {
    return { t: 'pre-prepare', view, seq, batch, signature: signBytes(this.key(signer), prePrepareStatement(this.h.scope, view, seq, digestOfBatch(this.h.scope, batch))) }
  }

  prepare(view: number, seq: number, digest: Uint8Array, signer: string): Prepare {
    return { t: 'prepare', view, seq, digest, signature: signBytes(this.key(signer), prepareStatement(this.h.scope, view, seq, digest)) }
  }

  checkpoint(seq: number, digest: Uint8Array, signer: string): Checkpoint {
    return { t: 'checkpoint', seq, digest, signature: signBytes(this.key(signer), checkpointStatement(this.h.scope, seq, digest)) }
  }

  /** A certificate over `statement` by `signers` (replica indices). */
  certificate(statement: Uint8Array, signers: readonly number[]): QuorumCertificate {
    return { group: GROUP, digest: statement, shares: signers.map((i) => ({ signer: i, signature: signBytes(this.key(this.h.id(i)), statement) })) }
  }

  checkpointProof(seq: number, digest: Uint8Array, signers: readonly number[]): CheckpointProof {
    if (seq === 0) return { seq, digest }
    return { seq, digest, certificate: this.certificate(checkpointStatement(this.h.scope, seq, digest), signers) }
  }

  genesis(): CheckpointProof {
    return { seq: 0, digest: this.h.genesisDigest }
  }

  /** A prepared certificate for `pp` with prepares from the given backups. */
  preparedProof(pp: PrePrepare, backups: readonly number[]): PreparedProof {
    return { prePrepare: pp, prepares: this.certificate(prepareStatement(this.h.scope, pp.view, pp.seq, digestOfBatch(this.h.scope, pp.batch)), backups) }
  }

  viewChange(view: number, signer: string, options: { stable?: CheckpointProof; prepared?: readonly PreparedProof[] } = {}): ViewChange {
    const body = { view, stable: options.stable ?? this.genesis(), prepared: options.prepared ?? [] }
    return { t: 'view-change', ...body, signature: signBytes(this.key(signer), viewChangeStatement(this.h.scope, body)) }
  }

  /** A NEW-VIEW signed by `signer` (the view's primary unless told otherwise). */
  newView(view: number, viewChanges: ReadonlyArray<readonly [number, ViewChange]>, prePrepares: readonly PrePrepare[], signer = this.h.id(view % this.h.group.n)): NewView {
    const body = { view, viewChanges: viewChanges.map(([replica, viewChange]) => ({ replica, viewChange })), prePrepares }
    return { t: 'new-view', ...body, signature: signBytes(this.key(signer), newViewStatement(this.h.scope, body)) }
  }
}
