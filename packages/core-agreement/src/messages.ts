/**
 * The messages of CLBFT inside one group, their canonical encoding and their validating decoder.
 *
 * Signed statements are digests of small canonical maps that name their kind (`t`) and group,
 * so a signature for one purpose can never be replayed for another. The sender of a message is
 * the transport's authenticated `from`; signatures are carried only by what is forwarded as proof
 * (requests, pre-prepares, prepares, checkpoints, view changes).
 */
import {
  DecodeError,
  DIGEST_BYTES,
  SIGNATURE_BYTES,
  type Value,
  type ValueMap,
  asArray,
  asBool,
  asBytes,
  asMap,
  asString,
  asUint,
  decode,
  digestOf,
  encode,
  sha256,
  certificateFromValue,
  certificateToValue,
  type QuorumCertificate,
} from '@bftrc/crypto'
import type { MessageLimits } from './limits.js'
import { MAX_PROOF_HASHES, MAX_STATE_BYTES, MAX_STATE_CHUNKS } from './merkle.js'

export interface Request {
  readonly client: string
  /** Strictly increasing per client: the exactly-once key. */
  readonly timestamp: number
  readonly op: Uint8Array
  readonly readOnly: boolean
  /** Only for open clients not listed in the membership: the key the client id is derived from. */
  readonly publicKey?: Uint8Array
  readonly signature: Uint8Array
}

/**
 * A batch ordered at one sequence number: the primary's agreed time stamp, client requests, and
 * proposals: opaque events of the upper layer (a certified call from another group, a certified
 * reply, a timer tick), each checked by the layer's ProposalValidator before anyone votes.
 */
export interface Batch {
  readonly stamp: number
  readonly requests: readonly Request[]
  readonly proposals?: readonly Uint8Array[]
}

/** A backup hands a proposal to the primary (as clients' requests are relayed). */
export interface ProposalMessage {
  readonly t: 'proposal'
  readonly payload: Uint8Array
}

export interface PrePrepare {
  readonly t: 'pre-prepare'
  readonly view: number
  readonly seq: number
  readonly batch: Batch
  /** Primary's signature over prePrepareStatement(group, view, seq, batchDigest). */
  readonly signature: Uint8Array
}

export interface Prepare {
  readonly t: 'prepare'
  readonly view: number
  readonly seq: number
  readonly digest: Uint8Array
  readonly signature: Uint8Array
}

export interface Commit {
  readonly t: 'commit'
  readonly view: number
  readonly seq: number
  readonly digest: Uint8Array
}

export interface Checkpoint {
  readonly t: 'checkpoint'
  readonly seq: number
  /** Digest of the replica's checkpoint state (application snapshot + exactly-once table). */
  readonly digest: Uint8Array
  readonly signature: Uint8Array
}

export interface RequestMessage {
  readonly t: 'request'
  readonly request: Request
}

export interface Reply {
  readonly t: 'reply'
  readonly view: number
  readonly timestamp: number
  readonly readOnly: boolean
  readonly resultDigest: Uint8Array
  /** Present from the designated replier, on retransmissions, and for read-only replies. */
  readonly result?: Uint8Array
}

/** "Here is how far I am": a replica that waits too long asks its peers to resend what it misses. */
export interface Status {
  readonly t: 'status'
  readonly view: number
  /** False while the sender waits for the NEW-VIEW of `view`. */
  readonly active: boolean
  readonly lastExecuted: number
  readonly stable: number
}

/** A prepared certificate: the pre-prepare and 2f prepares from distinct backups, same view, seq, digest. */
export interface PreparedProof {
  readonly prePrepare: PrePrepare
  readonly prepares: QuorumCertificate
}

export interface CheckpointProof {
  readonly seq: number
  readonly digest: Uint8Array
  /** 2f+1 checkpoint signatures; absent only for the genesis checkpoint at seq 0. */
  readonly certificate?: QuorumCertificate
}

export interface ViewChange {
  readonly t: 'view-change'
  readonly view: number
  readonly stable: CheckpointProof
  readonly prepared: readonly PreparedProof[]
  readonly signature: Uint8Array
}

export interface NewView {
  readonly t: 'new-view'
  readonly view: number
  /** 2f+1 signed view changes for `view`, indexed by sender. */
  readonly viewChanges: ReadonlyArray<{ readonly replica: number; readonly viewChange: ViewChange }>
  /** The pre-prepares the new primary re-issues for the window above the chosen checkpoint. */
  readonly prePrepares: readonly PrePrepare[]
  /**
   * The new primary's signature over newViewStatement: any replica may relay a NEW-VIEW (to a
   * peer that missed it), but only the primary of its view can have made it.
   */
  readonly signature: Uint8Array
}

/**
 * "I executed this batch at this sequence number", signed: sent to a peer that is behind and
 * cannot take part in our view (it is changing view, or in another one). f+1 matching
 * attestations prove that a correct replica executed the batch, so the peer may execute it too.
 */
export interface Executed {
  readonly t: 'executed'
  readonly seq: number
  readonly digest: Uint8Array
  readonly signature: Uint8Array
}

/** A stable checkpoint's proof, sent to a replica whose status shows it is behind it. */
export interface Stable {
  readonly t: 'stable'
  readonly proof: CheckpointProof
}

/** Asks for the stable checkpoint's state (`seq`, `digest`), one chunk at a time. */
export interface FetchState {
  readonly t: 'fetch-state'
  readonly seq: number
  readonly digest: Uint8Array
  readonly chunk: number
}

/**
 * One chunk of a stable checkpoint's state, with what proves it against the checkpoint digest (the
 * root of the state's chunk tree, see merkle.ts): the fetcher checks it on arrival.
 */
export interface StateChunk {
  readonly t: 'state-chunk'
  readonly seq: number
  readonly digest: Uint8Array
  readonly chunk: number
  /** The whole state's length in bytes; committed in the digest, it fixes the number of chunks. */
  readonly length: number
  /** Sibling hashes from the chunk's leaf up to the tree root, lowest first. */
  readonly proof: readonly Uint8Array[]
  readonly data: Uint8Array
}

export type Message =
  | RequestMessage
  | ProposalMessage
  | PrePrepare
  | Prepare
  | Commit
  | Checkpoint
  | Reply
  | Status
  | ViewChange
  | NewView
  | Executed
  | Stable
  | FetchState
  | StateChunk

export type MessageType = Message['t']

// ---- statements (what gets signed or hashed) ----

/**
 * What every signed statement names besides its kind: the deployment (a digest of the
 * membership's identities) and the group it is meant for. A signature made for one group or one
 * deployment never verifies in another.
 */
export interface StatementScope {
  readonly deployment: Uint8Array
  readonly group: string
}

export function requestStatement(scope: StatementScope, r: Omit<Request, 'signature'>): ValueMap {
  return { t: 'request', deployment: scope.deployment, group: scope.group, client: r.client, timestamp: r.timestamp, op: r.op, readOnly: r.readOnly, publicKey: r.publicKey }
}

/** The digest a client signs: its request, bound to the deployment and the group it invokes. */
export function requestDigest(scope: StatementScope, r: Omit<Request, 'signature'>): Uint8Array {
  return digestOf(requestStatement(scope, r))
}

export function proposalDigest(payload: Uint8Array): Uint8Array {
  return sha256(payload)
}

export function batchDigest(stamp: number, requestDigests: readonly Uint8Array[], proposalDigests: readonly Uint8Array[] = []): Uint8Array {
  return digestOf({ t: 'batch', stamp, requests: requestDigests, proposals: proposalDigests.length > 0 ? proposalDigests : undefined })
}

export function prePrepareStatement(scope: StatementScope, view: number, seq: number, digest: Uint8Array): Uint8Array {
  return digestOf({ t: 'pre-prepare', deployment: scope.deployment, group: scope.group, view, seq, digest })
}

export function prepareStatement(scope: StatementScope, view: number, seq: number, digest: Uint8Array): Uint8Array {
  return digestOf({ t: 'prepare', deployment: scope.deployment, group: scope.group, view, seq, digest })
}

export function executedStatement(scope: StatementScope, seq: number, digest: Uint8Array): Uint8Array {
  return digestOf({ t: 'executed', deployment: scope.deployment, group: scope.group, seq, digest })
}

export function checkpointStatement(scope: StatementScope, seq: number, digest: Uint8Array): Uint8Array {
  return digestOf({ t: 'checkpoint', deployment: scope.deployment, group: scope.group, seq, digest })
}

export function viewChangeStatement(scope: StatementScope, vc: Omit<ViewChange, 'signature' | 't'>): Uint8Array {
  return digestOf({ t: 'view-change', deployment: scope.deployment, group: scope.group, body: viewChangeBody(vc) })
}

/** What the new primary signs for a NEW-VIEW: its view, the view changes it chose and its pre-prepares. */
export function newViewStatement(scope: StatementScope, nv: Omit<NewView, 'signature' | 't'>): Uint8Array {
  return digestOf({ t: 'new-view', deployment: scope.deployment, group: scope.group, body: sha256(encode(newViewBody(nv))) })
}

// ---- encoding ----

function requestToValue(r: Request): ValueMap {
  return { client: r.client, timestamp: r.timestamp, op: r.op, readOnly: r.readOnly, publicKey: r.publicKey, signature: r.signature }
}

function prePrepareToValue(m: PrePrepare): ValueMap {
  const proposals = m.batch.proposals !== undefined && m.batch.proposals.length > 0 ? m.batch.proposals : undefined
  return { t: m.t, view: m.view, seq: m.seq, stamp: m.batch.stamp, requests: m.batch.requests.map(requestToValue), proposals, signature: m.signature }
}

function checkpointProofToValue(p: CheckpointProof): ValueMap {
  return { seq: p.seq, digest: p.digest, certificate: p.certificate === undefined ? undefined : certificateToValue(p.certificate) }
}

function viewChangeBody(vc: Omit<ViewChange, 'signature' | 't'>): ValueMap {
  return {
    view: vc.view,
    stable: checkpointProofToValue(vc.stable),
    prepared: vc.prepared.map((p) => ({ prePrepare: prePrepareToValue(p.prePrepare), prepares: certificateToValue(p.prepares) })),
  }
}

function newViewBody(nv: Omit<NewView, 'signature' | 't'>): ValueMap {
  return {
    view: nv.view,
    viewChanges: nv.viewChanges.map((v) => ({ replica: v.replica, viewChange: toValue(v.viewChange) })),
    prePrepares: nv.prePrepares.map(prePrepareToValue),
  }
}

function toValue(m: Message): ValueMap {
  switch (m.t) {
    case 'request':
      return { t: m.t, request: requestToValue(m.request) }
    case 'pre-prepare':
      return prePrepareToValue(m)
    case 'view-change':
      return { t: m.t, ...viewChangeBody(m), signature: m.signature }
    case 'stable':
      return { t: m.t, proof: checkpointProofToValue(m.proof) }
    case 'new-view':
      return { t: m.t, ...newViewBody(m), signature: m.signature }
    default:
      return m as unknown as ValueMap
  }
}

export function encodeMessage(m: Message): Uint8Array {
  return encode(toValue(m))
}

const encodedOnce = new WeakMap<Message, Uint8Array>()

/**
 * `encodeMessage`, remembered per message object: a broadcast hands the same object to every
 * peer, so it is encoded once. Messages are never mutated after they are made.
 */
export function encodeMessageOnce(m: Message): Uint8Array {
  let bytes = encodedOnce.get(m)
  if (bytes === undefined) {
    bytes = encodeMessage(m)
    encodedOnce.set(m, bytes)
  }
  return bytes
}

// ---- decoding ----

function readRequest(v: Value | undefined, field: string, limits: MessageLimits): Request {
  const m = asMap(v, field)
  const publicKey = m.publicKey === undefined ? undefined : asBytes(m.publicKey, `${field}.publicKey`, 32)
  return {
    client: asString(m.client, `${field}.client`, limits.maxClientIdLength),
    timestamp: asUint(m.timestamp, `${field}.timestamp`),
    op: asBytes(m.op, `${field}.op`, undefined, limits.maxOpBytes),
    readOnly: asBool(m.readOnly, `${field}.readOnly`),
    ...(publicKey !== undefined ? { publicKey } : {}),
    signature: asBytes(m.signature, `${field}.signature`, SIGNATURE_BYTES),
  }
}

function readPrePrepare(m: ValueMap, field: string, limits: MessageLimits): PrePrepare {
  const requests = asArray(m.requests, `${field}.requests`, limits.maxBatchRequests).map((r, i) => readRequest(r, `${field}.requests[${i}]`, limits))
  const proposals =
    m.proposals === undefined
      ? undefined
      : asArray(m.proposals, `${field}.proposals`, limits.maxBatchProposals).map((p, i) => asBytes(p, `${field}.proposals[${i}]`, undefined, limits.maxProposalBytes))
  if (proposals !== undefined && proposals.length === 0) throw new DecodeError('wrong-type', `${field}.proposals: omitted when empty`)
  return {
    t: 'pre-prepare',
    view: readView(m.view, `${field}.view`),
    seq: readSeq(m.seq, `${field}.seq`),
    batch: { stamp: asUint(m.stamp, `${field}.stamp`), requests, ...(proposals !== undefined ? { proposals } : {}) },
    signature: asBytes(m.signature, `${field}.signature`, SIGNATURE_BYTES),
  }
}

/**
 * Views and sequence numbers a message may name: far above anything a group reaches (2^48 batches
 * at a million a second take nine years), and far enough below 2^53 that `+ 1` and window sums
 * stay exact integers whatever a peer sends.
 */
export const MAX_VIEW = 2 ** 48
export const MAX_SEQ = 2 ** 48

function readView(v: Value | undefined, field: string): number {
  return asUint(v, field, MAX_VIEW)
}

function readSeq(v: Value | undefined, field: string): number {
  return asUint(v, field, MAX_SEQ)
}

function readDigest(v: Value | undefined, field: string): Uint8Array {
  return asBytes(v, field, DIGEST_BYTES)
}

function readCheckpointProof(v: Value | undefined, field: string): CheckpointProof {
  const m = asMap(v, field)
  return {
    seq: readSeq(m.seq, `${field}.seq`),
    digest: readDigest(m.digest, `${field}.digest`),
    ...(m.certificate !== undefined ? { certificate: certificateFromValue(m.certificate, `${field}.certificate`) } : {}),
  }
}

function readViewChange(m: ValueMap, field: string, limits: MessageLimits): ViewChange {
  const prepared = asArray(m.prepared, `${field}.prepared`, limits.maxViewChangeEntries).map((p, i) => {
    const pm = asMap(p, `${field}.prepared[${i}]`)
    return {
      prePrepare: readPrePrepare(asMap(pm.prePrepare, `${field}.prepared[${i}].prePrepare`), `${field}.prepared[${i}].prePrepare`, limits),
      prepares: certificateFromValue(pm.prepares, `${field}.prepared[${i}].prepares`),
    }
  })
  return {
    t: 'view-change',
    view: readView(m.view, `${field}.view`),
    stable: readCheckpointProof(m.stable, `${field}.stable`),
    prepared,
    signature: asBytes(m.signature, `${field}.signature`, SIGNATURE_BYTES),
  }
}

function readMessage(m: ValueMap, limits: MessageLimits): Message {
  const t = asString(m.t, 't', 32)
  switch (t) {
    case 'request':
      return { t, request: readRequest(m.request, 'request', limits) }
    case 'proposal':
      return { t, payload: asBytes(m.payload, 'payload', undefined, limits.maxProposalBytes) }
    case 'pre-prepare':
      return readPrePrepare(m, 'pre-prepare', limits)
    case 'prepare':
      return { t, view: readView(m.view, 'view'), seq: readSeq(m.seq, 'seq'), digest: readDigest(m.digest, 'digest'), signature: asBytes(m.signature, 'signature', SIGNATURE_BYTES) }
    case 'commit':
      return { t, view: readView(m.view, 'view'), seq: readSeq(m.seq, 'seq'), digest: readDigest(m.digest, 'digest') }
    case 'checkpoint':
      return { t, seq: readSeq(m.seq, 'seq'), digest: readDigest(m.digest, 'digest'), signature: asBytes(m.signature, 'signature', SIGNATURE_BYTES) }
    case 'reply': {
      const result = m.result === undefined ? undefined : asBytes(m.result, 'result', undefined, limits.maxOpBytes)
      return {
        t,
        view: readView(m.view, 'view'),
        timestamp: asUint(m.timestamp, 'timestamp'),
        readOnly: asBool(m.readOnly, 'readOnly'),
        resultDigest: readDigest(m.resultDigest, 'resultDigest'),
        ...(result !== undefined ? { result } : {}),
      }
    }
    case 'status':
      return { t, view: readView(m.view, 'view'), active: asBool(m.active, 'active'), lastExecuted: readSeq(m.lastExecuted, 'lastExecuted'), stable: readSeq(m.stable, 'stable') }
    case 'stable':
      return { t, proof: readCheckpointProof(m.proof, 'proof') }
    case 'executed':
      return { t, seq: readSeq(m.seq, 'seq'), digest: readDigest(m.digest, 'digest'), signature: asBytes(m.signature, 'signature', SIGNATURE_BYTES) }
    case 'view-change':
      return readViewChange(m, 'view-change', limits)
    case 'new-view': {
      const viewChanges = asArray(m.viewChanges, 'viewChanges', 256).map((v, i) => {
        const vm = asMap(v, `viewChanges[${i}]`)
        return { replica: asUint(vm.replica, `viewChanges[${i}].replica`, 255), viewChange: readViewChange(asMap(vm.viewChange, `viewChanges[${i}].viewChange`), `viewChanges[${i}].viewChange`, limits) }
      })
      const prePrepares = asArray(m.prePrepares, 'prePrepares', limits.maxViewChangeEntries).map((p, i) => readPrePrepare(asMap(p, `prePrepares[${i}]`), `prePrepares[${i}]`, limits))
      return { t, view: readView(m.view, 'view'), viewChanges, prePrepares, signature: asBytes(m.signature, 'signature', SIGNATURE_BYTES) }
    }
    case 'fetch-state':
      return { t, seq: readSeq(m.seq, 'seq'), digest: readDigest(m.digest, 'digest'), chunk: asUint(m.chunk, 'chunk', MAX_STATE_CHUNKS - 1) }
    case 'state-chunk':
      return {
        t,
        seq: readSeq(m.seq, 'seq'),
        digest: readDigest(m.digest, 'digest'),
        chunk: asUint(m.chunk, 'chunk', MAX_STATE_CHUNKS - 1),
        length: asUint(m.length, 'length', MAX_STATE_BYTES),
        proof: asArray(m.proof, 'proof', MAX_PROOF_HASHES).map((p, i) => readDigest(p, `proof[${i}]`)),
        data: asBytes(m.data, 'data', undefined, limits.maxChunkBytes),
      }
    default:
      throw new DecodeError('wrong-type', `unknown message type ${t}`)
  }
}

/** Decodes a message from the network: undefined for anything malformed (the caller counts the drop). */
export function tryDecodeMessage(bytes: Uint8Array, limits: MessageLimits): Message | undefined {
  try {
    return decodeMessage(bytes, limits)
  } catch (err) {
    if (err instanceof DecodeError) return undefined
    throw err
  }
}

/** Decodes and shape-checks one message; throws DecodeError for anything malformed. */
export function decodeMessage(bytes: Uint8Array, limits: MessageLimits): Message {
  return readMessage(asMap(decode(bytes, limits.maxMessageBytes), 'message'), limits)
}
