/**
 * A CLBFT (PBFT) replica as an I/O-free state machine, in the manner of etcd-io/raft.
 *
 * Inputs: `step(from, bytes)` for a frame the transport authenticated as coming from `from`,
 * and `tick(now)` for the passage of the host's clock. Outputs: `ready()` hands over what to
 * persist, what to send, what was executed. Nothing in here reads a clock, draws randomness,
 * or touches a socket or a file, so the simulator and the libp2p host drive the same code.
 *
 * Hostile input never throws out of `step`: anything malformed, unauthorised, out of window or
 * with a bad signature is dropped and counted in `counters`. Exceptions that do escape are
 * broken invariants of this code (assertions), as in TigerBeetle.
 */
import {
  type Client as MembershipClient,
  DecodeError,
  type Group,
  type KeyPair,
  type Membership,
  type QuorumCertificate,
  ShareCollector,
  decode,
  encode,
  peerIdOf,
  sha256,
  signBytes,
  verifyBytes,
  asMap,
  asBytes,
  asUint,
} from '@bftrc/crypto'
import { ClientTable, type ClientTableLimits, refusalResult } from './client-table.js'
import { type ReplicaConfig, resolveConfig } from './config.js'
import { FULL_RESULT_BYTES, type Executor, type ProposalValidator, errorResult } from './executor.js'
import { AnswerBudget } from './answer-budget.js'
import { FairQueue } from './fair-queue.js'
import { LogEntry } from './log.js'
import { OrderingMonitor } from './ordering-monitor.js'
import {
  type Checkpoint,
  type CheckpointProof,
  type Commit,
  type FetchState,
  type Message,
  type NewView,
  type PrePrepare,
  type Prepare,
  proposalDigest,
  type PreparedProof,
  type Reply,
  type Request,
  type StateChunk,
  type Status,
  type ViewChange,
  checkpointStatement,
  executedStatement,
  type Executed,
  tryDecodeMessage,
  encodeMessageOnce,
  prePrepareStatement,
  prepareStatement,
  requestDigest,
  viewChangeStatement,
  newViewStatement,
} from './messages.js'
import {
  type GroupContext,
  digestOfBatch,
  equalBytes,
  primaryOf,
  scopeOf,
  selectNewView,
  verifyCheckpointProof,
  verifyPrePrepareSignature,
  verifyViewChange,
} from './proofs.js'
import type { ExecutedBatch, ExecutedRequest, Outbound, Ready, ReplicaEvent } from './ready.js'
import { MAX_STATE_BYTES, stateRoot } from './merkle.js'
import { StateFetch, StateServer } from './state-transfer.js'
import type { PersistOp, PersistedEntry, PersistedState } from './storage.js'

/**
 * Requests and proposals whose signatures were checked, remembered so a backup that saw a request
 * directly does not check it again in the pre-prepare. Only what is in flight matters, so a few
 * thousand suffice; cleared when full (memory stays flat in long runs).
 */
const VERIFIED_CACHE_LIMIT = 4096
/** Sequence numbers a STATUS answer resends at most (bounds the work one STATUS can cause). */
const STATUS_RESEND_LIMIT = 32
/** Pending proposals a backup resends to the primary per STATUS interval at most. */
const PROPOSAL_RESENDS = 16
/** Rate-limited proposal keys remembered per proposer (a handful of kinds, so a few suffice). */
const RATE_LIMITED_LIMIT = 1024

export interface ReplicaInit {
  readonly membership: Membership
  /** This replica's id, `"<group>/<index>"`. */
  readonly self: string
  readonly keyPair: KeyPair
  /** The application, in its initial state (its snapshot is the genesis checkpoint). */
  readonly executor: Executor
  readonly config?: Partial<ReplicaConfig>
  /** What the host's Storage loaded after a restart; absent for a fresh replica. */
  readonly restored?: PersistedState
  /** The host clock at creation. */
  readonly now?: number
  /** Checks the upper layer's proposals; without it the replica orders client requests only. */
  readonly proposals?: ProposalValidator
}

export interface ReplicaStatus {
  readonly id: string
  readonly view: number
  readonly primary: number
  readonly active: boolean
  /**
   * The view this replica last took part in (entered with its NEW-VIEW, or 0): what it tells
   * other groups, so that a replica changing view alone does not make them believe its group
   * moved to a view nobody else is in.
   */
  readonly activeView: number
  readonly lastExecuted: number
  readonly stableCheckpoint: number
  readonly logEntries: number
  /** Slots above the last executed one that hold a pre-prepare: ordered work not executed yet. */
  readonly unexecutedSlots: number
  readonly queued: number
  readonly pending: number
  readonly proposalsWaiting: number
  readonly transferring: boolean
  /** Why the executor stopped executing (an upgrade whose code this replica lacks), if it did. */
  readonly halted: string | undefined
}

function latin1(d: Uint8Array): string {
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('latin1')
}

export class Replica {
  readonly id: string
  readonly index: number
  readonly group: Group
  readonly config: ReplicaConfig
  /** Drops and receipts by reason: `dropped.<reason>`, `received.<type>`. */
  readonly counters = new Map<string, number>()

  private readonly membership: Membership
  private readonly keyPair: KeyPair
  private readonly executor: Executor
  private readonly ctx: GroupContext
  private readonly peers: string[]

  private now: number
  private view = 0
  private active = true
  private activeView = 0
  private readonly log = new Map<number, LogEntry>()
  private lastExecuted = 0
  private lastExecStamp = 0
  private highestPrePrepareSeen = 0
  private stable: CheckpointProof
  private stableState: Uint8Array
  private clientTable: ClientTable
  private readonly ownCheckpoints = new Map<number, { digest: Uint8Array; state: Uint8Array; message: Checkpoint }>()
  private readonly checkpointVotes = new Map<number, Map<number, { digest: Uint8Array; signature: Uint8Array }>>()
  private ownStableCheckpoint: Checkpoint | undefined

  // Primary: requests waiting for a sequence number, latest per client, in the line of their source.
  private readonly queue: FairQueue<Request>
  private lastAssigned = 0
  private lastAssignedStamp = 0
  /**
   * Primary: per client, the highest timestamp in an issued, not yet executed batch, and that
   * batch's sequence number (see `inFlightAt`: an entry whose slot executed, or left our log
   * without executing here, no longer counts).
   */
  private readonly inFlight = new Map<string, { readonly timestamp: number; readonly seq: number }>()
  // Backup: requests received directly from clients and not yet executed (they arm the view-change timer).
  private readonly pending = new Map<string, Request>()
  /** Backup: how long the primary takes to order what we saw and proposed (see OrderingMonitor). */
  private readonly monitor: OrderingMonitor
  private readonly verifiedRequests = new Set<string>()
  /** Bytes each recipient may still be sent in answers (see `answer`). */
  private readonly answerBudget: AnswerBudget

  // Proposals of the upper layer, by the key its validator gives them.
  private readonly validator: ProposalValidator | undefined
  private readonly proposalQueue: FairQueue<Uint8Array>
  /** `${proposer}:${key}` → when a rate-limited proposal was last accepted from that replica. */
  private readonly lastRateLimited = new Map<string, number>()
  private readonly pendingProposals = new Map<string, Uint8Array>()
  /** Primary: proposals in an issued, not yet executed batch, by key, with the batch's sequence number. */
  private readonly inFlightProposals = new Map<string, number>()
  private readonly validProposals = new Map<string, string>()

  // Slots committed here whose committed flag is not written yet (see advance).
  private readonly unsavedCommits = new Set<LogEntry>()
  private unsavedCommitsSince = 0

  // View change.
  private readonly viewChanges = new Map<number, ViewChange>()
  private currentNewView: NewView | undefined
  private viewChangeDeadline: number | undefined
  private viewChangeTimeout: number
  // The timeout of the view we are changing to, held until 2f+1 replicas have joined it (PBFT's
  // rule: a replica alone in a view must not time out of it and climb ahead of the others).
  private gatedViewChangeTimeout: number | undefined
  private lastStatusSent: number
  /**
   * While not active: the latest view below ours in which we saw the group decide a batch (its
   * primary's signed pre-prepare, learned from), so our pending events can go to that primary.
   */
  private progressView: number | undefined
  /** Send STATUS at the next tick, whatever the interval (we learned we are behind). */
  private statusWanted = false
  /** Our next slot, and since when it has waited behind a later slot that committed (see askIfBlocked). */
  private blocked: { readonly next: number; readonly since: number } | undefined

  // State transfer.
  private transferTarget: { proof: CheckpointProof; learnedAt: number } | undefined
  private fetch: StateFetch | undefined
  /** Chunks and proofs of the stable checkpoint's state, for peers that fetch it. */
  private readonly stateServer = new StateServer()

  private restoring = false
  private out: { persist: PersistOp[]; messages: Outbound[]; executed: ExecutedBatch[]; events: ReplicaEvent[] } = {
    persist: [],
    messages: [],
    executed: [],
    events: [],
  }

  constructor(init: ReplicaInit) {
    this.config = resolveConfig(init.config)
    this.membership = init.membership
    const member = init.membership.member(init.self)
    if (member === undefined) throw new Error(`${init.self} is not a member`)
    if (!equalBytes(member.publicKey, init.keyPair.publicKey)) throw new Error(`key of ${init.self} differs from the membership's`)
    this.id = init.self
    this.index = member.index
    this.group = init.membership.group(member.group) as Group
    this.keyPair = init.keyPair
    this.executor = init.executor
    this.validator = init.proposals
    this.now = init.now ?? 0
    this.peers = this.group.members.filter((m) => m.index !== this.index).map((m) => m.id)
    this.viewChangeTimeout = this.config.viewChangeTimeout
    this.monitor = new OrderingMonitor(this.config.orderingSlack, this.config.viewChangeTimeout)
    this.lastStatusSent = this.now
    this.clientTable = this.newClientTable()
    this.answerBudget = new AnswerBudget(this.config.answerBytesPerSecond)
    this.queue = new FairQueue(this.config.maxQueuedPerSource, this.config.maxPendingRequests)
    this.proposalQueue = new FairQueue(this.config.maxQueuedPerSource, this.config.maxPendingRequests)

    const genesisState = this.checkpointState()
    const genesisDigest = stateRoot(genesisState)
    this.ctx = { membership: init.membership, group: this.group, scope: scopeOf(init.membership, this.group.name), genesisDigest, logWindow: this.config.logWindow }
    this.stable = { seq: 0, digest: genesisDigest }
    this.stableState = genesisState
    if (init.restored === undefined) {
      this.persist({ op: 'checkpoint', checkpoint: { seq: 0, digest: genesisDigest, state: genesisState } })
    } else {
      this.restore(init.restored)
    }
  }

  // ---------------------------------------------------------------- host interface

  /**
   * Feeds one frame from `from` (authenticated by the transport). Never throws on bad input.
   * `now`, when given, moves the replica's clock forward without firing timers (stamps and
   * skew checks then use the time of delivery rather than of the last tick).
   */
  step(from: string, bytes: Uint8Array, now?: number): void {
    if (now !== undefined && now > this.now) this.now = now
    const msg = tryDecodeMessage(bytes, this.config.limits)
    if (msg === undefined) return this.drop('malformed')
    this.count(`received.${msg.t}`)
    const sender = this.membership.member(from)
    const fromReplica = sender !== undefined && sender.group === this.group.name ? sender.index : undefined
    if (msg.t === 'request') return this.onRequest(from, fromReplica, msg.request)
    if (fromReplica === undefined || fromReplica === this.index) return this.drop('not-a-peer')
    switch (msg.t) {
      case 'proposal':
        return this.onProposal(fromReplica, msg.payload)
      case 'pre-prepare':
        return this.onPrePrepare(fromReplica, msg)
      case 'prepare':
        return this.onPrepare(fromReplica, msg)
      case 'commit':
        return this.onCommit(fromReplica, msg)
      case 'checkpoint':
        return this.onCheckpoint(fromReplica, msg)
      case 'status':
        return this.onStatus(fromReplica, msg)
      case 'stable':
        return this.onStable(msg.proof)
      case 'executed':
        return this.onExecuted(fromReplica, msg)
      case 'view-change':
        return this.onViewChange(fromReplica, msg)
      case 'new-view':
        return this.onNewView(msg)
      case 'fetch-state':
        return this.onFetchState(fromReplica, msg)
      case 'state-chunk':
        return this.onStateChunk(fromReplica, msg)
      case 'reply':
        return this.drop('unexpected-type')
    }
  }

  /** Advances the replica's notion of time and fires whatever timers are due. */
  tick(now: number): void {
    if (now > this.now) this.now = now
    if (this.viewChangeDeadline !== undefined && this.now >= this.viewChangeDeadline) {
      this.startViewChange(this.view + 1, 'timeout')
    }
    if (this.awaitingOrder()) this.armViewChangeTimer()
    // Committed flags ride along with the next write (see advance); if none comes within a STATUS
    // interval, they get a write of their own, so a restart rarely has to gather commits again.
    if (this.unsavedCommits.size > 0 && this.now - this.unsavedCommitsSince >= this.config.statusInterval) this.flushUnsavedCommits()
    // STATUS: often while waiting for something, rarely (a heartbeat) when idle, so a replica
    // that missed the last batches before the group fell idle still learns it is behind.
    const interval = this.hasWork() || !this.active ? this.config.statusInterval : this.config.idleStatusInterval
    this.askIfBlocked()
    if (this.statusWanted || this.now - this.lastStatusSent >= interval) {
      this.statusWanted = false
      this.lastStatusSent = this.now
      this.broadcast({ t: 'status', view: this.view, active: this.active, lastExecuted: this.lastExecuted, stable: this.stable.seq })
      if (!this.active) {
        const own = this.viewChanges.get(this.index)
        if (own !== undefined && own.view === this.view) this.broadcast(own)
      }
      this.resendPendingProposals()
    }
    this.watchPrimary()
    this.driveStateTransfer()
  }

  /**
   * Asks its peers (STATUS) once its next slot has waited a whole ordering allowance behind a later
   * slot that committed, and then at most once per allowance. The group decided past that slot, so
   * what this replica lacks for it (a vote a faulty peer spoiled by sending it another digest, a
   * lost frame) will not come by itself, and the next STATUS interval may be far off; meanwhile,
   * with a small log window or a group running on a bare quorum, everyone waits for it.
   */
  private askIfBlocked(): void {
    const next = this.lastExecuted + 1
    const entry = this.log.get(next)
    let blocked = false
    if (entry === undefined || !entry.committed || entry.prePrepare === undefined) {
      for (const [seq, e] of this.log) {
        if (seq > next && e.committed) {
          blocked = true
          break
        }
      }
    }
    if (!blocked) {
      this.blocked = undefined
      return
    }
    if (this.blocked?.next !== next) this.blocked = { next, since: this.now }
    const wait = this.monitor.allowance()
    if (this.now - this.blocked.since >= wait && this.now - this.lastStatusSent >= wait) this.statusWanted = true
  }

  /**
   * Puts the writes the replica holds back (committed flags, which otherwise go out with the next
   * write or tick) into the next Ready. A host calls it before a clean stop, so that a restart
   * resumes exactly where the replica stopped rather than a few slots earlier.
   */
  persistHeldWrites(): void {
    if (this.unsavedCommits.size > 0) this.flushUnsavedCommits()
  }

  /** Drains the effects accumulated since the last call. */
  ready(): Ready {
    const r = this.out
    this.out = { persist: [], messages: [], executed: [], events: [] }
    return r
  }

  hasReady(): boolean {
    return this.out.persist.length + this.out.messages.length + this.out.executed.length + this.out.events.length > 0
  }

  status(): ReplicaStatus {
    return {
      id: this.id,
      view: this.view,
      primary: primaryOf(this.group, this.view),
      active: this.active,
      activeView: this.activeView,
      lastExecuted: this.lastExecuted,
      stableCheckpoint: this.stable.seq,
      logEntries: this.log.size,
      unexecutedSlots: this.unexecutedSlots(),
      queued: this.queue.size,
      pending: this.pending.size,
      proposalsWaiting: this.proposalQueue.size + this.pendingProposals.size,
      transferring: this.fetch !== undefined,
      halted: this.executor.halted?.(),
    }
  }

  /**
   * Executes what has committed, after the executor stopped halting (the host installed the
   * code an upgrade needed). A replica that halted mid-batch still waits for a state transfer.
   */
  resume(): void {
    this.executeInOrder()
  }

  /** Digest of the current checkpoint state (application + exactly-once table), for checkers. */
  stateDigest(): Uint8Array {
    return stateRoot(this.checkpointState())
  }

  /** Sizes of every bounded structure, for memory checks in long runs. */
  sizes(): Record<string, number> {
    let votes = 0
    for (const v of this.checkpointVotes.values()) votes += v.size
    return {
      log: this.log.size,
      checkpointVotes: votes,
      ownCheckpoints: this.ownCheckpoints.size,
      queue: this.queue.size,
      pending: this.pending.size,
      verifiedRequests: this.verifiedRequests.size,
      viewChanges: this.viewChanges.size,
      inFlight: this.inFlight.size,
      proposalQueue: this.proposalQueue.size,
      pendingProposals: this.pendingProposals.size,
      inFlightProposals: this.inFlightProposals.size,
      validProposals: this.validProposals.size,
      clients: this.clientTable.size,
      stateTransferBytes: this.fetch?.bytesHeld ?? 0,
    }
  }

  // ---------------------------------------------------------------- helpers

  private count(name: string): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + 1)
  }

  private drop(reason: string): void {
    this.count(`dropped.${reason}`)
  }

  private send(to: string, message: Message): void {
    this.out.messages.push({ to, message })
  }

  private broadcast(message: Message): void {
    for (const to of this.peers) this.out.messages.push({ to, message })
  }

  private persist(op: PersistOp): void {
    if (this.unsavedCommits.size > 0) this.flushUnsavedCommits()
    this.out.persist.push(op)
  }

  private flushUnsavedCommits(): void {
    const entries = [...this.unsavedCommits]
    this.unsavedCommits.clear()
    for (const e of entries) if (this.log.get(e.seq) === e) this.persistEntry(e)
  }

  private event(e: ReplicaEvent): void {
    this.out.events.push(e)
  }

  private isPrimary(): boolean {
    return primaryOf(this.group, this.view) === this.index
  }

  private primaryId(view = this.view): string {
    return (this.group.members[primaryOf(this.group, view)] as { id: string }).id
  }

  private entry(seq: number): LogEntry {
    let e = this.log.get(seq)
    if (e === undefined) {
      e = new LogEntry(seq)
      this.log.set(seq, e)
    }
    return e
  }

  private inWindow(seq: number): boolean {
    return seq > this.stable.seq && seq <= this.stable.seq + this.config.logWindow
  }

  /**
   * Drops a vote or pre-prepare outside our window. One above it means the group has moved past
   * us: ask for what we miss at the next tick, not a whole STATUS interval later (a group that
   * runs through its window in less than that would leave us behind for good).
   */
  private outsideWindow(seq: number): void {
    if (seq > this.stable.seq + this.config.logWindow) this.statusWanted = true
    this.drop('outside-window')
  }

  private unexecutedSlots(): number {
    let n = 0
    for (const [seq, e] of this.log) if (seq > this.lastExecuted && e.prePrepare !== undefined) n++
    return n
  }

  private hasWork(): boolean {
    if (this.queue.size > 0 || this.pending.size > 0 || this.transferTarget !== undefined) return true
    if (this.proposalQueue.size > 0 || this.pendingProposals.size > 0) return true
    for (const seq of this.log.keys()) if (seq > this.lastExecuted) return true
    for (const seq of this.checkpointVotes.keys()) if (seq > this.lastExecuted) return true
    return false
  }

  private persistEntry(e: LogEntry): void {
    if (e.prePrepare === undefined) return
    this.persist({
      op: 'entry',
      entry: {
        seq: e.seq,
        view: e.view,
        prePrepare: e.prePrepare,
        prepared: e.prepared,
        committed: e.committed,
        ...(e.preparedProof !== undefined ? { prepares: e.preparedProof.prepares } : {}),
        // The certificate may be older than the slot's current pre-prepare (the slot was re-issued
        // in a later view, or learned): keep the pre-prepare it certifies with it, or a restored
        // replica would pair the two and send view changes everybody rejects.
        ...(e.preparedProof !== undefined && e.preparedProof.prePrepare !== e.prePrepare ? { preparedPrePrepare: e.preparedProof.prePrepare } : {}),
      },
    })
  }

  private sign(statement: Uint8Array): Uint8Array {
    return signBytes(this.keyPair, statement)
  }

  // ---------------------------------------------------------------- requests

  private readonly isListedClient = (client: string): boolean => this.membership.clients.has(client)

  private clientTableLimits(): ClientTableLimits {
    return { maxOpenClients: this.config.maxOpenClients, openClientWindow: this.config.openClientWindow, maxClockSkew: this.config.maxClockSkew }
  }

  private newClientTable(): ClientTable {
    return new ClientTable(this.clientTableLimits(), this.isListedClient)
  }

  private clientKey(r: Request): Uint8Array | undefined {
    const known: MembershipClient | undefined = this.membership.clients.get(r.client)
    if (known !== undefined) return known.publicKey
    if (this.membership.openClients && r.publicKey !== undefined && r.client === `peer:${peerIdOf(r.publicKey)}`) return r.publicKey
    return undefined
  }

  /**
   * Checks a client request's signature once; remembers (digest, signature) pairs that passed
   * (bounded). The signature is part of the key: the digest does not cover it, so a copy of a
   * verified request with other signature bytes must be checked again, or a correct primary could
   * order a request that backups (who never saw the genuine copy) reject as proof against it.
   */
  private validRequest(r: Request): boolean {
    const key = this.clientKey(r)
    if (key === undefined) return false
    const digest = requestDigest(this.ctx.scope, r)
    const k = latin1(digest) + latin1(r.signature)
    if (this.verifiedRequests.has(k)) return true
    if (!verifyBytes(key, digest, r.signature)) return false
    if (this.verifiedRequests.size >= VERIFIED_CACHE_LIMIT) this.verifiedRequests.clear()
    this.verifiedRequests.add(k)
    return true
  }

  private onRequest(from: string, fromReplica: number | undefined, r: Request): void {
    const fromClient = fromReplica === undefined
    if (fromClient && from !== r.client) return this.drop('impersonation')
    if (fromReplica === this.index) return this.drop('not-a-peer')
    if (r.readOnly) {
      if (!fromClient) return this.drop('forwarded-read-only')
      if (!this.validRequest(r)) return this.drop('bad-request')
      const result = this.applicationResult(() => this.executor.executeReadOnly(r.op, { seq: this.lastExecuted, stamp: this.lastExecStamp, client: r.client, timestamp: r.timestamp }))
      return this.answer(r.client, { t: 'reply', view: this.view, timestamp: r.timestamp, readOnly: true, resultDigest: sha256(result), result })
    }
    const last = this.clientTable.get(r.client)
    if (last !== undefined && r.timestamp < last.timestamp) return this.drop('stale-request')
    if (last !== undefined && r.timestamp === last.timestamp) {
      // Already executed: answer from the reply cache, with the full result, but only the very
      // request that executed. Another one under the same timestamp (for another group, say, or
      // a client's mistake) must not be answered with this result.
      if (!equalBytes(requestDigest(this.ctx.scope, r), last.requestDigest)) return this.drop('conflicting-request')
      if (!this.validRequest(r)) return this.drop('bad-request')
      return this.answer(r.client, { t: 'reply', view: this.view, timestamp: r.timestamp, readOnly: false, resultDigest: last.resultDigest, result: last.result })
    }
    if (!this.validRequest(r)) return this.drop('bad-request')
    if (this.isPrimary() && this.active) {
      this.enqueue(r, fromClient ? `client:${r.client}` : `relay:${fromReplica}`)
      this.assignBatches()
      return
    }
    if (!fromClient) return this.drop('not-primary')
    // Clients send every request to every replica: the primary orders it, the backups watch that
    // it does so in time (see watchPrimary). A second copy is the client's retransmission: it has
    // waited a whole timeout, so we hand the request to the primary ourselves.
    const waiting = this.pending.get(r.client)
    if (waiting !== undefined && waiting.timestamp >= r.timestamp) {
      if (this.active && waiting.timestamp === r.timestamp) this.send(this.primaryId(), { t: 'request', request: waiting })
      this.armViewChangeTimer()
      return
    }
    if (waiting === undefined && this.pending.size >= this.config.maxPendingRequests) return this.drop('pending-full')
    this.pending.set(r.client, r)
    if (this.active) this.monitor.watch(`r:${r.client}`, this.now)
    this.armViewChangeTimer()
  }

  /**
   * Queues a request at the primary for the next batch, in the line of `source`: the client
   * itself when it sent the request, `relay:<replica>` when a backup relayed it (see FairQueue).
   */
  private enqueue(r: Request, source: string): void {
    const queued = this.queue.get(r.client)
    if (queued !== undefined && queued.timestamp >= r.timestamp) return this.drop('duplicate-request')
    if ((this.inFlightAt(this.inFlight, r.client)?.timestamp ?? -1) >= r.timestamp) return this.drop('duplicate-request')
    const outcome = this.queue.add(source, r.client, r)
    if (outcome === 'source-full') this.drop('source-queue-full')
    else if (outcome === 'full') this.drop('queue-full')
  }

  /**
   * An in-flight entry that still stands for a batch we will execute: its slot is above what we
   * executed and still holds a pre-prepare of our view. One whose slot we passed by state
   * transfer, or that a view change dropped, is forgotten here; kept, it made the primary refuse
   * the request (or certified event) as a duplicate for ever.
   */
  private inFlightAt<V extends number | { readonly seq: number }>(map: Map<string, V>, key: string): V | undefined {
    const entry = map.get(key)
    if (entry === undefined) return undefined
    const seq = typeof entry === 'number' ? entry : entry.seq
    const slot = this.log.get(seq)
    if (seq > this.lastExecuted && slot?.prePrepare !== undefined && slot.view === this.view) return entry
    map.delete(key)
    return undefined
  }

  /** Adaptive batching: issue batches while fewer than `pipelineDepth` are in flight. */
  private assignBatches(): void {
    if (!this.isPrimary() || !this.active) return
    // A primary that caught up by state transfer (or restarted) is past slots it once assigned:
    // new batches go above what it executed, never into a slot the checkpoint already covers.
    if (this.lastAssigned < this.lastExecuted) this.lastAssigned = this.lastExecuted
    while (
      (this.queue.size > 0 || this.proposalQueue.size > 0) &&
      this.lastAssigned - this.lastExecuted < this.config.pipelineDepth &&
      this.lastAssigned + 1 <= this.stable.seq + this.config.logWindow
    ) {
      const requests: Request[] = []
      let bytes = 0
      // Round-robin over the sources' lines, so no source's backlog delays another's entries.
      this.queue.take((client, r) => {
        if (requests.length >= this.config.maxBatchRequests) return false
        if (requests.length > 0 && bytes + r.op.length > this.config.maxBatchBytes) return false
        if (r.timestamp <= this.clientTable.lastTimestamp(client)) return 'skip'
        requests.push(r)
        this.inFlight.set(client, { timestamp: r.timestamp, seq: this.lastAssigned + 1 })
        bytes += r.op.length
        return true
      })
      const proposals: Uint8Array[] = []
      this.proposalQueue.take((key, payload) => {
        if (proposals.length >= this.config.limits.maxBatchProposals) return false
        if (proposals.length + requests.length > 0 && bytes + payload.length > this.config.maxBatchBytes) return false
        this.inFlightProposals.set(key, this.lastAssigned + 1)
        proposals.push(payload)
        bytes += payload.length
        return true
      })
      if (requests.length === 0 && proposals.length === 0) continue
      const stamp = Math.max(this.now, this.lastAssignedStamp, this.lastExecStamp)
      this.lastAssignedStamp = stamp
      const seq = ++this.lastAssigned
      const batch = proposals.length > 0 ? { stamp, requests, proposals } : { stamp, requests }
      const pp: PrePrepare = {
        t: 'pre-prepare',
        view: this.view,
        seq,
        batch,
        signature: this.sign(prePrepareStatement(this.ctx.scope, this.view, seq, digestOfBatch(this.ctx.scope, batch))),
      }
      this.acceptPrePrepare(this.entry(seq), pp)
      this.broadcast(pp)
    }
  }

  // ---------------------------------------------------------------- proposals

  /** The validator's key for a proposal, or undefined if invalid (outcomes cached by digest). */
  private proposalKey(payload: Uint8Array): string | undefined {
    if (this.validator === undefined) return undefined
    const d = latin1(proposalDigest(payload))
    const cached = this.validProposals.get(d)
    if (cached !== undefined) return cached
    const key = this.validator.validate(payload)
    if (key === undefined) return undefined
    if (this.validProposals.size >= VERIFIED_CACHE_LIMIT) this.validProposals.clear()
    this.validProposals.set(d, key)
    return key
  }

  /**
   * Asks the group to order an event of the upper layer. On the primary it waits for the next
   * batch; on a backup it is handed to the primary and watched by the view-change timer, like a
   * relayed client request. Returns false when it is invalid or the buffers are full.
   */
  propose(payload: Uint8Array): boolean {
    const key = this.proposalKey(payload)
    if (key === undefined) {
      this.drop('bad-proposal')
      return false
    }
    if (this.isPrimary() && this.active) return this.enqueueProposal(this.index, key, payload)
    if (!this.pendingProposals.has(key)) {
      if (this.pendingProposals.size >= this.config.maxPendingRequests) {
        this.drop('pending-full')
        return false
      }
      this.pendingProposals.set(key, payload)
      // Watched like a request we saw, unless the primary may hold it back on purpose (a
      // rate-limited proposal such as a timer tick).
      if (this.active && this.validator?.minInterval?.(key) === undefined) this.monitor.watch(`p:${key}`, this.now)
    }
    // Changing view, we hand it to the primary of the view the group still decides in, if we
    // know one (see `progressView`); otherwise it waits for our NEW-VIEW.
    const view = this.active ? this.view : this.progressView
    if (view !== undefined && primaryOf(this.group, view) !== this.index) this.send(this.primaryId(view), { t: 'proposal', payload })
    this.armViewChangeTimer()
    return true
  }

  private onProposal(from: number, payload: Uint8Array): void {
    if (!this.isPrimary() || !this.active) return this.drop('not-primary')
    const key = this.proposalKey(payload)
    if (key === undefined) return this.drop('bad-proposal')
    this.enqueueProposal(from, key, payload)
  }

  /**
   * Queues a proposal in the line of the replica that proposed it (see FairQueue). Keys the
   * validator rate-limits (timer ticks cost the proposer nothing) are accepted from one replica
   * at most once per their interval.
   */
  private enqueueProposal(proposer: number, key: string, payload: Uint8Array): boolean {
    if (this.inFlightAt(this.inFlightProposals, key) !== undefined) {
      this.drop('duplicate-proposal')
      return true
    }
    const interval = this.validator?.minInterval?.(key)
    if (interval !== undefined && !this.proposalQueue.has(key)) {
      const last = this.lastRateLimited.get(`${proposer}:${key}`)
      if (last !== undefined && this.now - last < interval) {
        this.drop('proposal-rate')
        return false
      }
      if (this.lastRateLimited.size >= RATE_LIMITED_LIMIT) this.lastRateLimited.delete(this.lastRateLimited.keys().next().value as string)
      this.lastRateLimited.set(`${proposer}:${key}`, this.now)
    }
    const outcome = this.proposalQueue.add(`replica:${proposer}`, key, payload)
    if (outcome === 'replaced') this.drop('duplicate-proposal')
    if (outcome === 'source-full' || outcome === 'full') {
      this.drop(outcome === 'full' ? 'queue-full' : 'source-queue-full')
      return false
    }
    this.assignBatches()
    return true
  }

  /**
   * A backup's proposals still waiting go to the primary again (a few per STATUS interval, oldest
   * first, then to the back of the line): one lost or refused frame must not leave an event to
   * the view-change timer alone, nor one that stays unordered wait for ever.
   */
  private resendPendingProposals(): void {
    if (this.pendingProposals.size === 0) return
    // While we change view (alone, perhaps, in a view nobody else is in), the group may go on
    // in the view we learn its batches from: hand our events to that view's primary, or a
    // certified reply this replica alone collected would wait until the next real view change.
    const view = this.active ? this.view : this.progressView
    if (view === undefined || primaryOf(this.group, view) === this.index) return
    let n = 0
    for (const [key, payload] of this.pendingProposals) {
      if (n++ >= PROPOSAL_RESENDS) break
      this.pendingProposals.delete(key)
      this.pendingProposals.set(key, payload)
      this.send(this.primaryId(view), { t: 'proposal', payload })
    }
    this.armViewChangeTimer()
  }

  /** Upper layers call this when an event they proposed is no longer needed (e.g. already executed). */
  withdraw(key: string): void {
    this.proposalQueue.delete(key)
    this.pendingProposals.delete(key)
    this.monitor.unwatch(`p:${key}`)
  }

  // ---------------------------------------------------------------- normal case

  /**
   * A pre-prepare counts for what its signature proves, not for who delivered it: backups resend
   * the primary's pre-prepares to peers that missed them, and relay conflicting ones as proof.
   */
  private onPrePrepare(from: number, pp: PrePrepare): void {
    if (pp.view > this.view) return this.drop('future-view')
    if (!this.inWindow(pp.seq)) return this.outsideWindow(pp.seq)
    if (!this.active || pp.view < this.view) return this.learnPrePrepare(pp)
    // Look the slot up without creating it: a rejected pre-prepare must leave no log entry behind.
    const e = this.log.get(pp.seq)
    const digest = digestOfBatch(this.ctx.scope, pp.batch)
    if (e?.prePrepare !== undefined && e.view === this.view) {
      if (equalBytes(e.digest as Uint8Array, digest)) return this.drop('duplicate')
      if (!verifyPrePrepareSignature(this.ctx, pp)) return this.drop('bad-signature')
      // Two validly signed pre-prepares for one (view, seq): the primary is provably faulty. Show
      // both to everyone, so every correct replica sees the proof and changes view with us.
      this.drop('equivocation')
      this.broadcast(e.prePrepare)
      this.broadcast(pp)
      return this.suspectPrimary('two pre-prepares for one sequence number')
    }
    if (!verifyPrePrepareSignature(this.ctx, pp)) return this.drop('bad-signature')
    // The primary signs the requests' digests, which cover everything but the requests' own
    // signatures: a bad count, a read-only or an unknown client's request is proof against the
    // primary whoever relays it, a bad request signature only when the primary sent it itself.
    const provable = pp.batch.requests.length > this.config.maxBatchRequests || pp.batch.requests.some((r) => r.readOnly || this.clientKey(r) === undefined)
    if (provable || pp.batch.requests.some((r) => !this.validRequest(r))) {
      this.drop('bad-batch')
      if (provable || from === primaryOf(this.group, pp.view)) return this.suspectPrimary('invalid request in a batch')
      return
    }
    if ((pp.batch.proposals ?? []).some((p) => this.proposalKey(p) === undefined)) {
      this.drop('bad-batch')
      return this.suspectPrimary('invalid proposal in a batch')
    }
    if (!this.acceptableStamp(pp)) return this.drop('bad-stamp')
    if (pp.seq > this.highestPrePrepareSeen) this.highestPrePrepareSeen = pp.seq
    const slot = e ?? this.entry(pp.seq)
    this.acceptPrePrepare(slot, pp)
    slot.acceptedAt = this.now
  }

  /**
   * Agreed time: a stamp may not lead our clock by more than maxClockSkew, may not go below the
   * previous batch's, and a fresh batch (the newest we have seen) may not lag by more than the
   * skew either. Older batches resent after a loss are exempt from the lag check. Executors also
   * see the stamp clamped to be monotonic, so time never runs backwards for the application.
   */
  private acceptableStamp(pp: PrePrepare): boolean {
    const stamp = pp.batch.stamp
    if (stamp > this.now + this.config.maxClockSkew) return false
    const previous = pp.seq - 1 === this.lastExecuted ? this.lastExecStamp : this.log.get(pp.seq - 1)?.prePrepare?.batch.stamp
    if (previous !== undefined && stamp < previous) return false
    if (pp.seq > this.highestPrePrepareSeen && stamp < this.now - this.config.maxClockSkew) return false
    return true
  }

  private acceptPrePrepare(e: LogEntry, pp: PrePrepare): void {
    e.view = pp.view
    e.prePrepare = pp
    e.digest = digestOfBatch(this.ctx.scope, pp.batch)
    e.acceptedAt = undefined
    e.prepared = false
    e.sentCommit = false
    e.ownPrepare = undefined
    this.persistEntry(e)
    if (primaryOf(this.group, pp.view) !== this.index) {
      this.ordered(pp)
      const prepare: Prepare = {
        t: 'prepare',
        view: pp.view,
        seq: pp.seq,
        digest: e.digest,
        signature: this.sign(prepareStatement(this.ctx.scope, pp.view, pp.seq, e.digest)),
      }
      e.ownPrepare = prepare
      LogEntry.addVote(e.prepares, this.index, { view: pp.view, digest: e.digest, signature: prepare.signature })
      this.broadcast(prepare)
    }
    this.advance(e)
  }

  private onPrepare(from: number, m: Prepare): void {
    if (!this.active || m.view !== this.view) return this.drop(m.view > this.view ? 'future-view' : 'old-view')
    if (from === primaryOf(this.group, m.view)) return this.drop('prepare-from-primary')
    if (!this.inWindow(m.seq)) return this.outsideWindow(m.seq)
    const existing = this.log.get(m.seq)?.prepares.get(from)
    if (existing !== undefined && existing.view >= m.view) return this.drop('duplicate')
    const member = this.group.members[from]
    if (member === undefined || !verifyBytes(member.publicKey, prepareStatement(this.ctx.scope, m.view, m.seq, m.digest), m.signature)) {
      return this.drop('bad-signature')
    }
    // Only a vote that passed creates the slot.
    const e = this.entry(m.seq)
    LogEntry.addVote(e.prepares, from, { view: m.view, digest: m.digest, signature: m.signature })
    this.advance(e)
  }

  private onCommit(from: number, m: Commit): void {
    if (m.view > this.view) return this.drop('future-view')
    if (!this.inWindow(m.seq)) return this.outsideWindow(m.seq)
    const e = this.entry(m.seq)
    if (!LogEntry.addVote(e.commits, from, { view: m.view, digest: m.digest })) return this.drop('duplicate')
    if (this.active && m.view === this.view) this.advance(e)
    else this.learnCommitted(e)
  }

  /**
   * Learning without voting. A replica that has left a view (it changes view, perhaps alone, or
   * has moved on) must not vote in it any more, but it may still *learn* what the view decided:
   * 2f+1 commits for (v, seq, d) mean f+1 correct replicas prepared d, so every later view keeps
   * d at seq (PBFT's committed predicate). It then executes d without sending anything, which
   * keeps a replica that timed out alone from falling behind the group for good.
   */
  private learnPrePrepare(pp: PrePrepare): void {
    // Look the slot up without creating it: a refused pre-prepare must leave no log entry behind.
    const existing = this.log.get(pp.seq)
    if (existing?.committed === true || pp.seq <= this.lastExecuted) return this.drop('old-view')
    const digest = digestOfBatch(this.ctx.scope, pp.batch)
    const known = existing?.learned.get(pp.view)
    if (known !== undefined && equalBytes(digestOfBatch(this.ctx.scope, known.batch), digest)) return this.drop('duplicate')
    if (!verifyPrePrepareSignature(this.ctx, pp)) return this.drop('bad-signature')
    const e = existing ?? this.entry(pp.seq)
    e.learn(pp)
    this.learnCommitted(e)
  }

  /** An attestation from a peer that it executed a batch (we are behind and out of its view). */
  private onExecuted(from: number, m: Executed): void {
    if (m.seq <= this.lastExecuted) return this.drop('old-executed')
    if (!this.inWindow(m.seq)) return this.outsideWindow(m.seq)
    const existing = this.log.get(m.seq)?.attestations.get(from)
    if (existing !== undefined) return this.drop('duplicate')
    const member = this.group.members[from]
    if (member === undefined || !verifyBytes(member.publicKey, executedStatement(this.ctx.scope, m.seq, m.digest), m.signature)) return this.drop('bad-signature')
    const e = this.entry(m.seq)
    e.attestations.set(from, m.digest)
    this.learnCommitted(e)
  }

  private learnCommitted(e: LogEntry): void {
    if (e.committed || e.seq <= this.lastExecuted) return
    let decided = e.committedBatch(this.ctx.scope, this.group.quorum)
    if (decided === undefined) {
      decided = e.attestedBatch(this.ctx.scope, this.group.weakQuorum)
      if (decided !== undefined) this.count('learned-from-attestations')
    }
    if (decided === undefined) return
    e.view = decided.view
    e.prePrepare = decided
    e.digest = digestOfBatch(this.ctx.scope, decided.batch)
    e.committed = true
    if (!this.active && decided.view < this.view && decided.view > (this.progressView ?? -1)) this.progressView = decided.view
    this.count('learned-commit')
    this.persistEntry(e)
    this.executeInOrder()
  }

  /** Moves a slot forward: prepared → send COMMIT; committed → execute what is in order. */
  private advance(e: LogEntry): void {
    if (e.prePrepare === undefined || e.view !== this.view || !this.active) return
    if (!e.prepared) {
      const prepares = e.matchingPrepares(primaryOf(this.group, e.view))
      if (prepares.length < this.group.quorum - 1) return
      e.prepared = true
      if (e.acceptedAt !== undefined) this.monitor.sampleRound(this.now - e.acceptedAt)
      const cert: QuorumCertificate = { group: this.group.name, digest: prepareStatement(this.ctx.scope, e.view, e.seq, e.digest as Uint8Array), shares: prepares.slice(0, this.group.quorum - 1) }
      e.preparedProof = { prePrepare: e.prePrepare, prepares: cert }
      this.persistEntry(e)
      if (!e.sentCommit) {
        e.sentCommit = true
        LogEntry.addVote(e.commits, this.index, { view: e.view, digest: e.digest as Uint8Array })
        this.broadcast({ t: 'commit', view: e.view, seq: e.seq, digest: e.digest as Uint8Array })
      }
    }
    if (e.prepared && !e.committed && e.matchingCommits() >= this.group.quorum) {
      e.committed = true
      // The flag rides along with the next write instead of delaying execution and the reply
      // by a synced write of its own: the batch is decided, and a replica restarted without the
      // flag still holds the prepared certificate and its commit, gathers the commits again
      // (STATUS) or gets the batch re-issued by the next view, and re-executes the same batch.
      if (this.unsavedCommits.size === 0) this.unsavedCommitsSince = this.now
      this.unsavedCommits.add(e)
      this.executeInOrder()
    }
  }

  private executeInOrder(): void {
    for (;;) {
      if (this.executor.halted?.() !== undefined) break
      const e = this.log.get(this.lastExecuted + 1)
      if (e === undefined || !e.committed || e.prePrepare === undefined) break
      this.executeBatch(e)
    }
    this.assignBatches()
  }

  /**
   * Runs the application on one operation. Whatever it does (throws, returns something that is
   * not bytes, or more bytes than a result may have) every correct replica does alike, so the
   * answer becomes the same error result on all of them, and the group goes on.
   */
  private applicationResult(run: () => Uint8Array): Uint8Array {
    let result: unknown
    try {
      result = run()
    } catch (err) {
      this.count('application-error.threw')
      return errorResult(`the application threw: ${String((err as Error)?.message ?? err).slice(0, 200)}`)
    }
    if (!(result instanceof Uint8Array)) {
      this.count('application-error.not-bytes')
      return errorResult('the application returned a result that is not bytes')
    }
    if (result.length > this.config.limits.maxOpBytes) {
      this.count('application-error.too-large')
      return errorResult(`the application returned ${result.length} bytes, more than the limit of ${this.config.limits.maxOpBytes}`)
    }
    return result
  }

  /** Forgets a client's requests at or below `r`'s timestamp wherever they wait (ordered now). */
  private settle(r: Request): void {
    const waiting = this.pending.get(r.client)
    if (waiting !== undefined && waiting.timestamp <= r.timestamp) {
      this.pending.delete(r.client)
      this.monitor.unwatch(`r:${r.client}`)
    }
    const queued = this.queue.get(r.client)
    if (queued !== undefined && queued.timestamp <= r.timestamp) this.queue.delete(r.client)
    if ((this.inFlight.get(r.client)?.timestamp ?? Number.POSITIVE_INFINITY) <= r.timestamp) this.inFlight.delete(r.client)
  }

  private executeBatch(e: LogEntry): void {
    const pp = e.prePrepare as PrePrepare
    const seq = e.seq
    const stamp = Math.max(pp.batch.stamp, this.lastExecStamp)
    const executed: ExecutedRequest[] = []
    const refused: ExecutedRequest[] = []
    this.executor.beginBatch?.({ seq, stamp })
    const proposalKeys: string[] = []
    for (const payload of pp.batch.proposals ?? []) {
      // Every correct replica checked it before voting; a batch re-issued by a NEW-VIEW was
      // checked by the f+1 correct replicas that prepared it. The key only tidies our queues.
      const key = this.proposalKey(payload)
      if (key !== undefined) {
        proposalKeys.push(key)
        this.proposalQueue.delete(key)
        this.pendingProposals.delete(key)
        this.monitor.unwatch(`p:${key}`)
        this.inFlightProposals.delete(key)
      }
      if (this.executor.halted?.() === undefined) this.executor.executeProposal?.(payload, { seq, stamp })
    }
    for (const r of pp.batch.requests) {
      // An executor that halted in this batch (it lacks code for an upgrade) executes nothing
      // more; its state is now behind the group's and only a state transfer repairs it.
      if (this.executor.halted?.() !== undefined) break
      // Exactly once: a request at or below the client's last executed timestamp is skipped by
      // every correct replica alike (a faulty primary may have ordered it twice); an open
      // client's request outside its time window, or with no row free, is refused alike.
      const refusal = this.clientTable.admit(r.client, r.timestamp, stamp)
      // Ordered is settled, whether it executes now, executed before, or is refused: nothing
      // waits for it any more (a backup's view-change timer must not fire for a request the
      // group answered with a refusal).
      this.settle(r)
      if (refusal === 'duplicate') continue
      if (refusal !== undefined) {
        this.count(`refused.${refusal}`)
        const result = refusalResult(refusal)
        const resultDigest = sha256(result)
        refused.push({ client: r.client, timestamp: r.timestamp, resultDigest })
        if (!this.restoring) this.send(r.client, { t: 'reply', view: this.view, timestamp: r.timestamp, readOnly: false, resultDigest, result })
        continue
      }
      const result = this.applicationResult(() => this.executor.execute(r.op, { seq, stamp, client: r.client, timestamp: r.timestamp }))
      const resultDigest = sha256(result)
      this.clientTable.record(r.client, { timestamp: r.timestamp, requestDigest: requestDigest(this.ctx.scope, r), result, resultDigest })
      executed.push({ client: r.client, timestamp: r.timestamp, resultDigest })
      if (!this.restoring) {
        const full = r.timestamp % this.group.n === this.index || result.length <= FULL_RESULT_BYTES
        const reply: Reply = { t: 'reply', view: this.view, timestamp: r.timestamp, readOnly: false, resultDigest, ...(full ? { result } : {}) }
        this.send(r.client, reply)
      }
    }
    this.lastExecuted = seq
    this.lastExecStamp = stamp
    this.lastStatusSent = this.now // progress: nobody needs to be asked for anything yet
    this.out.executed.push({ seq, view: e.view, digest: e.digest as Uint8Array, stamp, requests: executed, refused, proposals: proposalKeys })
    const haltedReason = this.executor.halted?.()
    if (haltedReason !== undefined) {
      this.count('halted')
      this.event({ kind: 'halted', seq, reason: haltedReason })
    } else if (seq % this.config.checkpointInterval === 0) this.takeCheckpoint(seq)
    // Progress: the view-change timer restarts for what still waits, at the base timeout. (While
    // changing view, the timer guards the NEW-VIEW and stays as it is.)
    if (this.active) {
      this.viewChangeTimeout = this.config.viewChangeTimeout
      this.viewChangeDeadline = undefined
      if (this.pending.size > 0 || this.pendingProposals.size > 0) this.armViewChangeTimer()
    }
  }

  // ---------------------------------------------------------------- checkpoints

  private checkpointState(): Uint8Array {
    return encode({ app: this.executor.snapshot(), clients: this.clientTable.toValue(), stamp: this.lastExecStamp })
  }

  private takeCheckpoint(seq: number): void {
    const state = this.checkpointState()
    const digest = stateRoot(state)
    const message: Checkpoint = { t: 'checkpoint', seq, digest, signature: this.sign(checkpointStatement(this.ctx.scope, seq, digest)) }
    this.ownCheckpoints.set(seq, { digest, state, message })
    // Restoring after a restart: count our vote, but our peers have long had it.
    if (!this.restoring) this.broadcast(message)
    this.addCheckpointVote(this.index, message)
  }

  private onCheckpoint(from: number, m: Checkpoint): void {
    if (m.seq <= this.stable.seq) return this.drop('old-checkpoint')
    if (m.seq % this.config.checkpointInterval !== 0) return this.drop('bad-checkpoint')
    if (m.seq > this.stable.seq + 2 * this.config.logWindow) return this.drop('far-checkpoint')
    if (this.checkpointVotes.get(m.seq)?.has(from) === true) return this.drop('duplicate')
    const member = this.group.members[from]
    if (member === undefined || !verifyBytes(member.publicKey, checkpointStatement(this.ctx.scope, m.seq, m.digest), m.signature)) {
      return this.drop('bad-signature')
    }
    this.addCheckpointVote(from, m)
  }

  private addCheckpointVote(from: number, m: Checkpoint): void {
    let votes = this.checkpointVotes.get(m.seq)
    if (votes === undefined) {
      votes = new Map()
      this.checkpointVotes.set(m.seq, votes)
    }
    if (votes.has(from)) return
    votes.set(from, { digest: m.digest, signature: m.signature })
    const collector = new ShareCollector(this.group, checkpointStatement(this.ctx.scope, m.seq, m.digest), this.group.quorum)
    for (const [signer, v] of votes) if (equalBytes(v.digest, m.digest)) collector.add({ signer, signature: v.signature }, true)
    const certificate = collector.certificate()
    if (certificate !== undefined) this.onStable({ seq: m.seq, digest: m.digest, certificate }, true)
  }

  /** A checkpoint proven stable (by our own votes, a peer's STABLE message, or a NEW-VIEW). */
  private onStable(proof: CheckpointProof, verified = false): void {
    if (proof.seq <= this.stable.seq) return
    if (!verified && !verifyCheckpointProof(this.ctx, proof)) return this.drop('bad-checkpoint-proof')
    const own = this.ownCheckpoints.get(proof.seq)
    if (own !== undefined && equalBytes(own.digest, proof.digest)) {
      this.ownStableCheckpoint = own.message
      return this.makeStable(proof, own.state)
    }
    if (own !== undefined) this.count('state-divergence')
    // We are behind this checkpoint (or our state differs from the group's): fetch it unless
    // the log brings us there first.
    // A higher checkpoint replaces the target but keeps when we first learned we were behind:
    // in a group that checkpoints faster than a STATUS interval, restarting that clock with
    // every proof meant the fetch never began.
    if (this.transferTarget === undefined || this.transferTarget.proof.seq < proof.seq) {
      this.transferTarget = { proof, learnedAt: this.transferTarget?.learnedAt ?? this.now }
    }
  }

  private makeStable(proof: CheckpointProof, state: Uint8Array): void {
    this.stable = proof
    this.stableState = state
    this.stateServer.forget()
    for (const seq of this.log.keys()) if (seq <= proof.seq) this.log.delete(seq)
    for (const seq of this.checkpointVotes.keys()) if (seq <= proof.seq) this.checkpointVotes.delete(seq)
    for (const seq of this.ownCheckpoints.keys()) if (seq <= proof.seq) this.ownCheckpoints.delete(seq)
    if (this.transferTarget !== undefined && this.transferTarget.proof.seq <= proof.seq) {
      this.transferTarget = undefined
      this.fetch = undefined
    }
    if (!this.restoring) {
      this.persist({ op: 'checkpoint', checkpoint: { seq: proof.seq, digest: proof.digest, state, ...(proof.certificate !== undefined ? { certificate: proof.certificate } : {}) } })
      this.event({ kind: 'stable-checkpoint', seq: proof.seq })
    }
    this.assignBatches()
  }

  // ---------------------------------------------------------------- status and retransmission

  private onStatus(from: number, s: Status): void {
    const to = (this.group.members[from] as { id: string }).id
    if (this.currentNewView !== undefined && this.active && (s.view < this.view || (s.view === this.view && !s.active))) {
      this.answer(to, this.currentNewView)
    }
    if (s.stable < this.stable.seq && this.stable.seq > 0) {
      this.answer(to, { t: 'stable', proof: this.stable })
      if (this.ownStableCheckpoint !== undefined) this.answer(to, this.ownStableCheckpoint)
    }
    if (!this.active) {
      // We are changing view; a peer not past it (restarted, say) counts our view change towards
      // its f+1 to join, now rather than at our next STATUS.
      const own = this.viewChanges.get(this.index)
      if (own !== undefined && own.view === this.view && s.view <= this.view) this.answer(to, own)
      return
    }
    // Resend what the peer lacks above its last executed slot: pre-prepares and commits help it
    // whatever view it is in (it can learn committed batches), prepares only in our view.
    // A peer that cannot vote in our view (changing view, perhaps alone, or in another view)
    // learns what we executed from signed attestations instead: f+1 of them suffice.
    const outsider = !s.active || s.view !== this.view
    // A peer voting in our view may have executed slots we still wait for (a NEW-VIEW re-issued
    // them): it votes on them again, and may lack our prepare to send the commit we need.
    const waitingFrom = Math.max(this.lastExecuted, this.stable.seq) + 1
    // The peer's numbers only choose where to start inside our own window: the slots visited are
    // bounded by our log, never by what a peer claims (2^53 - 1 once made `seq++` stand still).
    const claimed = Math.min(outsider ? s.lastExecuted : Math.min(s.lastExecuted, waitingFrom - 1), this.stable.seq + this.config.logWindow)
    const first = Math.max(claimed, this.stable.seq) + 1
    const last = Math.min(first + STATUS_RESEND_LIMIT - 1, this.stable.seq + this.config.logWindow)
    for (let seq = first; seq <= last; seq++) {
      const e = this.log.get(seq)
      if (e === undefined || e.prePrepare === undefined) continue
      if (outsider && e.committed && seq <= this.lastExecuted) {
        e.executedSignature ??= this.sign(executedStatement(this.ctx.scope, seq, e.digest as Uint8Array))
        this.answer(to, e.prePrepare)
        this.answer(to, { t: 'executed', seq, digest: e.digest as Uint8Array, signature: e.executedSignature })
        continue
      }
      if (e.view !== this.view || s.view < this.view) continue
      this.answer(to, e.prePrepare)
      if (e.ownPrepare !== undefined && s.view === this.view) this.answer(to, e.ownPrepare)
      if (e.sentCommit) this.answer(to, { t: 'commit', view: e.view, seq, digest: e.digest as Uint8Array })
    }
    for (const [seq, own] of this.ownCheckpoints) if (seq > s.stable) this.answer(to, own.message)
  }

  /**
   * Sends what a peer (or a client) asked for, within its budget of answer bytes: at most
   * `answerBytesPerSecond` per recipient, refilled with time. A peer gets back no more than that
   * however often and however cheaply it asks (a 51-byte STATUS once drew 2 MB).
   */
  private answer(to: string, message: Message): void {
    if (!this.answerBudget.take(to, encodeMessageOnce(message).length, this.now)) return this.drop('answer-budget')
    this.send(to, message)
  }


  // ---------------------------------------------------------------- a slow primary

  /** A pre-prepare of our view reached us (a backup): what it orders no longer waits. */
  private ordered(pp: PrePrepare): void {
    if (this.monitor.size === 0) return
    for (const r of pp.batch.requests) {
      const waiting = this.pending.get(r.client)
      if (waiting !== undefined && waiting.timestamp <= r.timestamp) this.monitor.unwatch(`r:${r.client}`)
    }
    for (const payload of pp.batch.proposals ?? []) {
      const key = this.proposalKey(payload)
      if (key !== undefined) this.monitor.unwatch(`p:${key}`)
    }
  }

  /**
   * Clients, and the events this replica proposed, that a pre-prepare of our view above what we
   * executed already orders.
   */
  private orderedInView(): { clients: Map<string, number>; proposals: Set<string> } {
    const clients = new Map<string, number>()
    const proposals = new Set<string>()
    for (const [seq, e] of this.log) {
      if (seq <= this.lastExecuted || e.view !== this.view || e.prePrepare === undefined) continue
      for (const r of e.prePrepare.batch.requests) if (r.timestamp > (clients.get(r.client) ?? -1)) clients.set(r.client, r.timestamp)
      for (const payload of e.prePrepare.batch.proposals ?? []) {
        const key = this.proposalKey(payload)
        if (key !== undefined) proposals.add(key)
      }
    }
    return { clients, proposals }
  }

  /** A new view: the new primary gets a fresh allowance for everything that still waits. */
  private watchAllPending(): void {
    const { clients, proposals } = this.orderedInView()
    for (const r of this.pending.values()) if ((clients.get(r.client) ?? -1) < r.timestamp) this.monitor.watch(`r:${r.client}`, this.now)
    for (const key of this.pendingProposals.keys()) {
      if (!proposals.has(key) && this.validator?.minInterval?.(key) === undefined) this.monitor.watch(`p:${key}`, this.now)
    }
  }

  /** Whether a watched entry still waits for the primary to order it (`ordered`: orderedInView, made once per check). */
  private stillWaiting(key: string, ordered: () => { clients: Map<string, number>; proposals: Set<string> }): boolean {
    const id = key.slice(2)
    if (key.startsWith('r:')) {
      const r = this.pending.get(id)
      if (r === undefined) return false
      if (r.timestamp <= this.clientTable.lastTimestamp(id)) {
        this.pending.delete(id) // executed without our seeing it (a state transfer)
        return false
      }
      return (ordered().clients.get(id) ?? -1) < r.timestamp
    }
    return this.pendingProposals.has(id) && !ordered().proposals.has(id)
  }

  /**
   * Whether the primary has room to order, as far as we can tell: fewer than pipelineDepth of its
   * batches unexecuted here, space in the log window, and no slot of the view we lack the
   * pre-prepare of (we would not know what it orders; STATUS fetches it).
   */
  private pipelineRoom(): boolean {
    let unexecuted = 0
    let highest = this.lastExecuted
    for (const [seq, e] of this.log) {
      if (seq <= this.lastExecuted) continue
      if (e.view === this.view && e.prePrepare !== undefined) {
        unexecuted++
        if (seq > highest) highest = seq
        continue
      }
      for (const v of e.prepares.values()) if (v.view === this.view) return false
      for (const v of e.commits.values()) if (v.view === this.view) return false
    }
    return unexecuted < this.config.pipelineDepth && highest + 1 <= this.stable.seq + this.config.logWindow
  }

  /**
   * A backup's watch over the primary's timing (see OrderingMonitor): what waited one allowance
   * is handed to the primary again, what waited two gets the primary replaced.
   */
  private watchPrimary(): void {
    if (!this.active || this.isPrimary() || this.transferTarget !== undefined || this.monitor.size === 0) return
    let orderedNow: { clients: Map<string, number>; proposals: Set<string> } | undefined
    const ordered = () => {
      orderedNow ??= this.orderedInView()
      return orderedNow
    }
    const due = this.monitor.check(this.now, this.pipelineRoom(), (key) => this.stillWaiting(key, ordered))
    for (const key of due.remind) {
      this.count('ordering.reminded')
      const id = key.slice(2)
      if (key.startsWith('r:')) {
        const r = this.pending.get(id)
        if (r !== undefined) this.send(this.primaryId(), { t: 'request', request: r })
      } else {
        const payload = this.pendingProposals.get(id)
        if (payload !== undefined) this.send(this.primaryId(), { t: 'proposal', payload })
      }
    }
    if (due.late !== undefined) {
      this.count('ordering.slow-primary')
      this.suspectPrimary('slow primary')
    }
  }

  // ---------------------------------------------------------------- view change

  private suspectPrimary(reason: string): void {
    this.event({ kind: 'faulty-primary', view: this.view, reason })
    this.startViewChange(this.view + 1, reason)
  }

  /**
   * Batches accepted in this view that do not execute are work we wait for too, not only the
   * requests clients relayed: the primary of a view whose backups cannot gather a quorum (one
   * left the view, the others executed these slots before a restart) must time out like anyone.
   */
  private awaitingOrder(): boolean {
    if (!this.active || this.viewChangeDeadline !== undefined || this.transferTarget !== undefined) return false
    for (const [seq, e] of this.log) if (seq > this.lastExecuted && e.prePrepare !== undefined && e.view === this.view) return true
    return false
  }

  /** Guards requests that wait in an active view: if they are not ordered in time, change view. */
  private armViewChangeTimer(): void {
    if (this.active && this.viewChangeDeadline === undefined) this.viewChangeDeadline = this.now + this.viewChangeTimeout
  }

  /**
   * While changing view, the timer that moves us on to the next view starts only once 2f+1
   * replicas (ourselves included) have asked for this view or a higher one. Without that gate,
   * replicas that enter views at different times (after a restart, say) time out at different
   * times, the one ahead leaves each view before the others reach it, and with the back-off
   * capped they climb in lockstep forever without 2f+1 of them meeting in one view. Counting
   * higher views too keeps a replica that is behind from waiting on ones that already left.
   */
  private openViewChangeGate(): void {
    if (this.active || this.gatedViewChangeTimeout === undefined) return
    let joined = 0
    for (const v of this.viewChanges.values()) if (v.view >= this.view) joined++
    if (joined < this.group.quorum) return
    this.viewChangeDeadline = this.now + this.gatedViewChangeTimeout
    this.gatedViewChangeTimeout = undefined
  }

  private startViewChange(view: number, _reason: string): void {
    if (view <= this.view && !(view === this.view && !this.active)) return
    if (view > this.view) {
      this.view = view
      this.persist({ op: 'view', view })
    }
    this.active = false
    this.monitor.clear()
    this.lastStatusSent = this.now
    const prepared: PreparedProof[] = []
    for (const e of [...this.log.values()].sort((a, b) => a.seq - b.seq)) {
      if (e.preparedProof !== undefined && this.inWindow(e.seq)) prepared.push(e.preparedProof)
    }
    const body = { view, stable: this.stable, prepared }
    const vc: ViewChange = { t: 'view-change', ...body, signature: this.sign(viewChangeStatement(this.ctx.scope, body)) }
    this.viewChanges.set(this.index, vc)
    for (const [replica, other] of this.viewChanges) if (other.view < view) this.viewChanges.delete(replica)
    this.broadcast(vc)
    this.event({ kind: 'view-change-started', view })
    this.viewChangeDeadline = undefined
    this.gatedViewChangeTimeout = this.viewChangeTimeout
    this.viewChangeTimeout = Math.min(2 * this.viewChangeTimeout, this.config.maxViewChangeTimeout)
    this.openViewChangeGate()
    this.tryNewView()
  }

  /**
   * A prepared proof identical to one we hold ourselves for the same slot need not be checked
   * again. Identical means the signatures too, not only (view, seq, digest): a view change is
   * forwarded inside a NEW-VIEW, and a replica that did not prepare the slot checks every
   * signature, so a forged certificate accepted here would make it refuse our NEW-VIEW.
   */
  private knownProof = (p: PreparedProof): boolean => {
    const mine = this.log.get(p.prePrepare.seq)?.preparedProof
    if (mine === undefined || mine.prePrepare.view !== p.prePrepare.view || !equalBytes(mine.prePrepare.signature, p.prePrepare.signature)) return false
    if (!equalBytes(digestOfBatch(this.ctx.scope, mine.prePrepare.batch), digestOfBatch(this.ctx.scope, p.prePrepare.batch))) return false
    const a = mine.prepares
    const b = p.prepares
    if (a.group !== b.group || !equalBytes(a.digest, b.digest) || a.shares.length !== b.shares.length) return false
    return a.shares.every((s, i) => s.signer === b.shares[i]?.signer && equalBytes(s.signature, b.shares[i].signature))
  }

  private onViewChange(from: number, vc: ViewChange): void {
    if (vc.view < this.view || (vc.view === this.view && this.active)) {
      if (this.currentNewView !== undefined && vc.view === this.view) this.answer((this.group.members[from] as { id: string }).id, this.currentNewView)
      return this.drop('old-view')
    }
    const existing = this.viewChanges.get(from)
    if (existing !== undefined && existing.view >= vc.view) return this.drop('duplicate')
    if (!verifyViewChange(this.ctx, vc, from, this.knownProof)) return this.drop('bad-view-change')
    this.viewChanges.set(from, vc)
    // f+1 replicas ask for higher views: at least one correct replica timed out, so join the
    // smallest of those views rather than wait for our own timer.
    const higher = [...this.viewChanges.entries()].filter(([r, v]) => r !== this.index && (v.view > this.view || (v.view === this.view && !this.active)))
    if (higher.length >= this.group.weakQuorum) {
      const target = Math.min(...higher.map(([, v]) => v.view))
      if (target > this.view) this.startViewChange(target, 'f+1 view changes')
    }
    this.openViewChangeGate()
    this.tryNewView()
  }

  private tryNewView(): void {
    if (this.active || primaryOf(this.group, this.view) !== this.index) return
    const vcs = [...this.viewChanges.entries()].filter(([, v]) => v.view === this.view).sort((a, b) => a[0] - b[0])
    if (vcs.length < this.group.quorum) return
    const chosen = vcs.slice(0, this.group.quorum)
    const plan = selectNewView(chosen.map(([, v]) => v))
    const prePrepares: PrePrepare[] = plan.batches.map(({ seq, batch }) => ({
      t: 'pre-prepare',
      view: this.view,
      seq,
      batch,
      signature: this.sign(prePrepareStatement(this.ctx.scope, this.view, seq, digestOfBatch(this.ctx.scope, batch))),
    }))
    const body = { view: this.view, viewChanges: chosen.map(([replica, viewChange]) => ({ replica, viewChange })), prePrepares }
    const nv: NewView = { t: 'new-view', ...body, signature: this.sign(newViewStatement(this.ctx.scope, body)) }
    this.broadcast(nv)
    this.enterNewView(nv, plan.stable)
  }

  private onNewView(nv: NewView): void {
    if (nv.view < this.view || (nv.view === this.view && this.active)) return this.drop('old-view')
    // Relayed or not, a NEW-VIEW counts only if the primary of its view made it: another member
    // holding 2f+1 view changes must not pick the set (and so the plan) a view starts from.
    const primary = this.group.members[primaryOf(this.group, nv.view)]
    if (primary === undefined || !verifyBytes(primary.publicKey, newViewStatement(this.ctx.scope, nv), nv.signature)) return this.drop('bad-new-view-signature')
    const senders = new Set<number>()
    for (const { replica, viewChange } of nv.viewChanges) {
      if (viewChange.view !== nv.view || senders.has(replica)) return this.drop('bad-new-view')
      senders.add(replica)
    }
    if (senders.size < this.group.quorum) return this.drop('bad-new-view')
    for (const { replica, viewChange } of nv.viewChanges) {
      if (!verifyViewChange(this.ctx, viewChange, replica, this.knownProof)) return this.drop('bad-new-view')
    }
    const plan = selectNewView(nv.viewChanges.map((v) => v.viewChange))
    if (plan.batches.length !== nv.prePrepares.length) return this.drop('bad-new-view')
    for (let i = 0; i < plan.batches.length; i++) {
      const expected = plan.batches[i] as { seq: number; batch: PrePrepare['batch'] }
      const pp = nv.prePrepares[i] as PrePrepare
      if (pp.view !== nv.view || pp.seq !== expected.seq || !equalBytes(digestOfBatch(this.ctx.scope, pp.batch), digestOfBatch(this.ctx.scope, expected.batch))) return this.drop('bad-new-view')
      if (!verifyPrePrepareSignature(this.ctx, pp)) return this.drop('bad-new-view')
    }
    if (nv.view > this.view) {
      this.view = nv.view
      this.persist({ op: 'view', view: nv.view })
    }
    this.enterNewView(nv, plan.stable)
  }

  private enterNewView(nv: NewView, stable: CheckpointProof): void {
    this.active = true
    this.activeView = nv.view
    this.progressView = undefined
    this.currentNewView = nv
    this.viewChangeDeadline = undefined
    this.gatedViewChangeTimeout = undefined
    for (const [replica, v] of this.viewChanges) if (v.view <= nv.view) this.viewChanges.delete(replica)
    this.event({ kind: 'new-view', view: nv.view, primary: primaryOf(this.group, nv.view) })
    if (stable.seq > this.stable.seq) this.onStable(stable, true)
    const reissued = new Set(nv.prePrepares.map((pp) => pp.seq))
    let maxSeq = Math.max(this.stable.seq, this.lastExecuted)
    let maxStamp = this.lastExecStamp
    // Slots of this very view that the NEW-VIEW does not carry were assigned after it: we are
    // re-entering a view we were in before a restart. Keep them as they are; forgetting them would
    // let a restarted primary assign another batch to a number it already used (equivocation).
    const sameView: LogEntry[] = []
    for (const [seq, e] of this.log) {
      if (seq <= this.stable.seq || reissued.has(seq)) continue
      if (e.view === nv.view && e.prePrepare !== undefined) {
        sameView.push(e)
        if (seq > maxSeq) maxSeq = seq
        if (e.prePrepare.batch.stamp > maxStamp) maxStamp = e.prePrepare.batch.stamp
      } else if (seq > this.lastExecuted) {
        this.log.delete(seq)
        this.persist({ op: 'forget', seq })
      } else e.resetForView()
    }
    for (const pp of nv.prePrepares) {
      if (pp.seq > maxSeq) maxSeq = pp.seq
      if (pp.batch.stamp > maxStamp) maxStamp = pp.batch.stamp
      if (pp.seq <= this.stable.seq) continue
      const e = this.entry(pp.seq)
      e.resetForView()
      if (pp.seq > this.highestPrePrepareSeen) this.highestPrePrepareSeen = pp.seq
      this.acceptPrePrepare(e, pp)
    }
    this.inFlight.clear()
    this.inFlightProposals.clear()
    this.monitor.clear()
    if (this.isPrimary()) {
      this.lastAssigned = maxSeq
      this.lastAssignedStamp = maxStamp
      for (const pp of [...nv.prePrepares, ...sameView.map((e) => e.prePrepare as PrePrepare)]) {
        if (pp.seq <= this.lastExecuted) continue
        for (const r of pp.batch.requests) if (r.timestamp > (this.inFlight.get(r.client)?.timestamp ?? -1)) this.inFlight.set(r.client, { timestamp: r.timestamp, seq: pp.seq })
        for (const p of pp.batch.proposals ?? []) {
          const key = this.proposalKey(p)
          if (key !== undefined) this.inFlightProposals.set(key, pp.seq)
        }
      }
      for (const [key, payload] of this.pendingProposals) this.enqueueProposal(this.index, key, payload)
      this.pendingProposals.clear()
      for (const r of this.pending.values()) this.enqueue(r, `client:${r.client}`)
      this.pending.clear()
      this.assignBatches()
    } else {
      // Requests this replica queued as an earlier primary, or watches as a backup, go to the new primary.
      for (const r of this.queue.values()) this.send(this.primaryId(), { t: 'request', request: r })
      this.queue.clear()
      for (const r of this.pending.values()) this.send(this.primaryId(), { t: 'request', request: r })
      // Proposals this replica queued as primary are now ones it waits for, like its own: kept
      // (and resent, and guarded by the view-change timer) until they execute.
      this.proposalQueue.take((key, payload) => {
        if (this.pendingProposals.size >= this.config.maxPendingRequests) return 'skip'
        this.pendingProposals.set(key, payload)
        return true
      })
      for (const payload of this.pendingProposals.values()) this.send(this.primaryId(), { t: 'proposal', payload })
      if (this.pending.size > 0 || this.pendingProposals.size > 0) this.armViewChangeTimer()
      this.watchAllPending()
    }
  }

  // ---------------------------------------------------------------- state transfer

  private driveStateTransfer(): void {
    const target = this.transferTarget
    if (target === undefined) return
    if (this.lastExecuted >= target.proof.seq && this.ownCheckpoints.has(target.proof.seq)) {
      const own = this.ownCheckpoints.get(target.proof.seq)
      if (own !== undefined && equalBytes(own.digest, target.proof.digest)) return this.makeStable(target.proof, own.state)
    }
    // Give the log a chance first, when it holds every slot up to the target and only commits are
    // missing: a replica that slightly lags catches up without a snapshot. A slot we lack is one
    // the quorum that made the target stable has discarded; waiting for it only delays the fetch.
    if (this.fetch === undefined && this.now - target.learnedAt < this.config.statusInterval && this.logHoldsUpTo(target.proof.seq)) return
    if (this.fetch === undefined || this.fetch.target !== target.proof) {
      const peers = this.group.members.map((m) => m.index).filter((i) => i !== this.index)
      const first = peers[(target.proof.seq / this.config.checkpointInterval + this.index) % peers.length] as number
      this.fetch = new StateFetch(target.proof, peers, first)
      this.event({ kind: 'state-transfer-started', seq: target.proof.seq, source: first })
    } else if (this.now >= this.fetch.deadline) {
      this.fetch.rotate(this.now)
    }
    const to = (this.group.members[this.fetch.source] as { id: string }).id
    for (const req of this.fetch.nextRequests(this.now, this.config.stateTransferTimeout)) this.send(to, req)
  }

  /** Whether every slot above what we executed, up to `seq`, has a pre-prepare in our log. */
  private logHoldsUpTo(seq: number): boolean {
    for (let s = this.lastExecuted + 1; s <= seq; s++) if (this.log.get(s)?.prePrepare === undefined) return false
    return true
  }

  private onFetchState(from: number, m: FetchState): void {
    const to = (this.group.members[from] as { id: string }).id
    if (m.seq !== this.stable.seq || !equalBytes(m.digest, this.stable.digest)) {
      if (this.stable.seq > m.seq) this.answer(to, { t: 'stable', proof: this.stable })
      return this.drop('fetch-unknown-checkpoint')
    }
    const chunk = this.stateServer.chunk(this.stableState, m.chunk)
    if (chunk === undefined) return this.drop('fetch-bad-chunk')
    const reply: StateChunk = { t: 'state-chunk', seq: m.seq, digest: m.digest, chunk: m.chunk, length: chunk.length, proof: chunk.proof, data: chunk.data }
    this.answer(to, reply)
  }

  private onStateChunk(from: number, m: StateChunk): void {
    if (this.fetch === undefined) return this.drop('unrequested-chunk')
    const outcome = this.fetch.onChunk(from, m)
    switch (outcome.kind) {
      case 'ignored':
        return this.drop(`chunk-${outcome.reason}`)
      case 'progress':
        return this.driveStateTransfer()
      case 'lying':
        this.drop('lying-state')
        this.event({ kind: 'lying-state', source: outcome.source, seq: m.seq })
        this.fetch.rotate(this.now)
        return this.driveStateTransfer()
      case 'complete':
        return this.installState(this.fetch.target, outcome.state)
    }
  }

  private installState(proof: CheckpointProof, state: Uint8Array): void {
    this.fetch = undefined
    this.transferTarget = undefined
    if (!this.restoreCheckpointState(state)) return this.drop('undecodable-state')
    // Committed slots above the checkpoint stay in the log and are (re-)executed from this state;
    // checkpoints we took on our own above it may come from a state that diverged, so they go.
    this.lastExecuted = proof.seq
    this.ownCheckpoints.clear()
    for (const seq of this.log.keys()) if (seq <= proof.seq) this.log.delete(seq)
    this.makeStable(proof, state)
    this.event({ kind: 'state-transferred', seq: proof.seq })
    // The group went on while we fetched: ask for the slots above the checkpoint right away.
    this.statusWanted = true
    this.executeInOrder()
  }

  /** Replaces application and exactly-once state from checkpoint bytes; false if they do not decode. */
  private restoreCheckpointState(state: Uint8Array): boolean {
    let app: Uint8Array
    let clients: ClientTable
    let stamp: number
    try {
      const m = asMap(decode(state, MAX_STATE_BYTES), 'state')
      app = asBytes(m.app, 'state.app')
      clients = ClientTable.fromValue(m.clients ?? null, this.clientTableLimits(), this.isListedClient, this.membership.clients.size)
      stamp = asUint(m.stamp, 'state.stamp')
    } catch (err) {
      if (err instanceof DecodeError) return false
      throw err
    }
    this.executor.restore(app)
    this.clientTable = clients
    this.lastExecStamp = stamp
    for (const [client, r] of this.pending) {
      if (r.timestamp > clients.lastTimestamp(client)) continue
      this.pending.delete(client)
      this.monitor.unwatch(`r:${client}`)
    }
    return true
  }

  // ---------------------------------------------------------------- restart

  private restore(state: PersistedState): void {
    this.restoring = true
    const cp = state.checkpoint
    if (cp.seq > 0) {
      if (!equalBytes(stateRoot(cp.state), cp.digest) || !this.restoreCheckpointState(cp.state)) {
        throw new Error('stored checkpoint does not match its digest: the disk is corrupt')
      }
    }
    this.stable = { seq: cp.seq, digest: cp.digest, ...(cp.certificate !== undefined ? { certificate: cp.certificate } : {}) }
    this.stableState = cp.state
    this.lastExecuted = cp.seq
    this.lastAssigned = cp.seq
    this.view = state.view
    // Wait for the NEW-VIEW of a view we may have been changing to; peers resend it on STATUS.
    // If none comes (every replica restarted), the timer moves the group on to the next view.
    this.active = state.view === 0
    if (!this.active) this.viewChangeDeadline = this.now + this.viewChangeTimeout
    // Announce ourselves at the first tick rather than a STATUS interval later: the answers bring
    // the NEW-VIEW and whatever was decided while we were down. A restarted primary of the
    // current view orders nothing until then.
    this.statusWanted = true
    for (const pe of state.entries) this.restoreEntry(pe)
    this.executeInOrder()
    for (const seq of this.log.keys()) if (seq > this.lastAssigned) this.lastAssigned = seq
    this.restoring = false
  }

  private restoreEntry(pe: PersistedEntry): void {
    if (pe.seq <= this.stable.seq) return
    const e = this.entry(pe.seq)
    e.view = pe.view
    e.prePrepare = pe.prePrepare
    e.digest = digestOfBatch(this.ctx.scope, pe.prePrepare.batch)
    e.prepared = pe.prepared
    e.sentCommit = pe.prepared
    e.committed = pe.committed
    if (pe.prepares !== undefined) e.preparedProof = { prePrepare: pe.preparedPrePrepare ?? pe.prePrepare, prepares: pe.prepares }
    if (pe.prePrepare.seq > this.highestPrePrepareSeen) this.highestPrePrepareSeen = pe.prePrepare.seq
    // A backup prepared this slot before the crash, but its PREPARE may never have left (the host
    // persists before it sends). Rebuild the same prepare, for the digest already accepted, so
    // STATUS answers resend it and its own vote counts again; the duplicate pre-prepare won't.
    if (primaryOf(this.group, pe.view) !== this.index) {
      const digest = e.digest
      const signature = this.sign(prepareStatement(this.ctx.scope, pe.view, pe.seq, digest))
      e.ownPrepare = { t: 'prepare', view: pe.view, seq: pe.seq, digest, signature }
      LogEntry.addVote(e.prepares, this.index, { view: pe.view, digest, signature })
    }
    // Prepared means our commit may have left: it counts again (the flag that the slot committed
    // is written lazily, so a prepared slot may have committed before the crash).
    if (pe.prepared) LogEntry.addVote(e.commits, this.index, { view: pe.view, digest: e.digest })
  }
}
