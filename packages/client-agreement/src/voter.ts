/**
 * A replica of a group in the replicated-clients protocol: a voter (agreement and communication)
 * around an executor (the deterministic application).
 *
 * The voter runs core-agreement's CLBFT to order the group's events, and does the inter-group
 * part of DESIGN section 5 outside the order:
 *  - caller side: signs a request share for each call the executor issues and sends it to the
 *    callee's primary (the one f+1 callee replicas report); collects reply shares into a reply
 *    certificate and proposes it; retransmits its share to every callee replica when a call
 *    takes too long;
 *  - callee side: collects request shares into a request certificate and proposes it; signs a
 *    reply share for each executed call (full result from the designated replica k mod n);
 *    answers a retransmitted share from its reply cache.
 * Like the core, it does no I/O and reads no clock: `step`, `tick`, `ready`.
 */
import {
  type PersistOp,
  type PersistedState,
  Replica,
  type ReplicaConfig,
  type ReplicaEvent,
  type ExecutedBatch,
  AnswerBudget,
  FULL_RESULT_BYTES,
  encodeMessageOnce,
  resolveConfig,
  primaryOf,
} from '@bftrc/core-agreement'
import { type Group, type KeyPair, type Membership, type QuorumCertificate, ShareCollector, sha256, signBytes, verifyBytes, DecodeError } from '@bftrc/crypto'
import type { GroupApp } from './app.js'
import { encodeEvent, eventValidator } from './events.js'
import { DEFAULT_VERSION, type Effect, GroupExecutor } from './executor.js'
import { type AppVersion, type UpgradeRequest, UpgradeError, localCodeCheck, upgradeVerdict, verifyUpgradeAuthority } from './upgrade.js'
import { type ReplyShare, type RequestShare, decodeInterGroup, encodeInterGroup, isInterGroupFrame, replyShareStatement, requestShareStatement } from './wire.js'

export interface VoterConfig {
  readonly core: Partial<ReplicaConfig>
  /**
   * A call not delivered after this long is retransmitted to every callee replica; doubles. The
   * first timeout adapts: four times the smoothed latency of recent calls, never below this.
   */
  readonly callTimeout: number
  readonly maxCallTimeout: number
  /** W: outstanding calls per (caller, callee) pair, and shares buffered per caller replica. */
  readonly callWindow: number
  readonly maxQueuedCalls: number
  readonly maxTimers: number
  readonly maxWorkflows: number
  readonly maxOpBytes: number
  /** A backup proposes a due timer tick itself only after the primary has had this long. */
  readonly tickGrace: number
  /**
   * Once a quorum of the callee has agreed on a call's result digest without its full bytes, the
   * caller waits as long again as the call took so far (at most this many ms) before asking every
   * callee replica for it: the designated one may be behind or faulty.
   */
  readonly resultTimeout: number
}

export const DEFAULT_VOTER_CONFIG: VoterConfig = {
  core: {},
  callTimeout: 1_000,
  maxCallTimeout: 16_000,
  callWindow: 64,
  maxQueuedCalls: 10_000,
  maxTimers: 10_000,
  maxWorkflows: 1_000,
  maxOpBytes: 64 * 1024,
  tickGrace: 200,
  resultTimeout: 50,
}

export interface VoterInit {
  readonly membership: Membership
  readonly self: string
  readonly keyPair: KeyPair
  readonly app: GroupApp
  /** Version of `app` (default "1"). */
  readonly version?: string
  /** Other versions this replica holds code for (upgrades switch to them). */
  readonly versions?: readonly AppVersion[]
  readonly config?: Partial<VoterConfig>
  readonly restored?: PersistedState
  readonly now?: number
}

export interface Frame {
  readonly to: string
  readonly bytes: Uint8Array
  /** Message type, for counters. */
  readonly type: string
}

export interface VoterReady {
  readonly persist: readonly PersistOp[]
  readonly frames: readonly Frame[]
  readonly executed: readonly ExecutedBatch[]
  readonly events: readonly ReplicaEvent[]
  /** What the executor did outside the order: calls sent, executed, delivered, rejections. */
  readonly effects: readonly Effect[]
}

interface CallTracker {
  readonly callee: string
  readonly k: number
  readonly share: RequestShare
  readonly sentAt: number
  retransmitted: boolean
  deadline: number
  timeout: number
  /** When a quorum of callee replicas had agreed on the result's digest without its full bytes. */
  digestsAgreedAt?: number
  askedForResult?: boolean
}

interface Collection {
  readonly collector: ShareCollector
  /** Full payload once known (the op of a call, the result of a reply). */
  payload: Uint8Array | undefined
  /** The encoded event, once the certificate is complete. */
  event?: Uint8Array
  /** The group accepted the event for ordering (false again if it refused it). */
  proposed: boolean
  /** Replicas whose shares it holds (each costs one slot of that replica's buffer). */
  readonly senders: Set<string>
  /** The view each sender's share named (see `routeOf`). */
  readonly views: Map<number, number>
}

/** The (f+1)-th highest view the shares of a collection name: at least one correct sender has taken part in it. */
function routeOf(c: Collection, group: Group): number | undefined {
  const views = [...c.views.values()].sort((a, b) => b - a)
  return views[group.weakQuorum - 1]
}

/** Bytes of a reply share besides its result (names, digest, signature, view), for the answer budget. */
const REPLY_SHARE_OVERHEAD = 256
/** Refused certificates proposed again per tick at most (bounds the work of one tick). */
const REPROPOSALS_PER_TICK = 16

function callKey(group: string, k: number): string {
  return `${group}:${k}`
}

export class Voter {
  readonly replica: Replica
  readonly executor: GroupExecutor
  readonly group: Group
  readonly config: VoterConfig
  readonly counters = new Map<string, number>()
  private readonly membership: Membership
  private readonly keyPair: KeyPair
  private now: number
  /** Other groups' views as their members report them: group → member index → view. */
  private readonly reportedViews = new Map<string, Map<number, number>>()
  private readonly calls = new Map<string, CallTracker>()
  /** Callee side: request certificates being collected, `${caller}:${k}:${H(op)}`. */
  private readonly incoming = new Map<string, Collection>()
  /** Caller side: reply certificates being collected, `${callee}:${k}:${H(result)}`. */
  private readonly replies = new Map<string, Collection>()
  /** Shares buffered per sending replica (performance isolation). */
  private readonly buffered = new Map<string, number>()
  private tickProposed: { at: number; when: number } | undefined
  /** Bytes each replica of another group may still draw from our reply cache (see AnswerBudget). */
  private readonly answerBudget: AnswerBudget
  /** Smoothed latency of calls delivered without retransmission (host ms), for adaptive timeouts. */
  private callLatency: number | undefined
  private startProposed = false
  /** Host time at construction: a backup waits tickGrace from here before proposing the start. */
  private readonly createdAt: number
  private frames: Frame[] = []
  private persist: PersistOp[] = []
  private executed: ExecutedBatch[] = []
  private events: ReplicaEvent[] = []
  private effects: Effect[] = []

  constructor(init: VoterInit) {
    this.config = { ...DEFAULT_VOTER_CONFIG, ...init.config }
    this.membership = init.membership
    this.keyPair = init.keyPair
    this.now = init.now ?? 0
    this.createdAt = this.now
    this.answerBudget = new AnswerBudget(resolveConfig(this.config.core).answerBytesPerSecond)
    const member = init.membership.member(init.self)
    if (member === undefined) throw new Error(`${init.self} is not a member`)
    this.group = init.membership.group(member.group) as Group
    this.executor = new GroupExecutor(this.group.name, init.app, {
      callWindow: this.config.callWindow,
      maxQueuedCalls: this.config.maxQueuedCalls,
      maxTimers: this.config.maxTimers,
      maxWorkflows: this.config.maxWorkflows,
      maxOpBytes: this.config.maxOpBytes,
    }, { version: init.version ?? DEFAULT_VERSION, versions: init.versions ?? [] }, new Set(init.membership.groups.keys()))
    this.replica = new Replica({
      membership: init.membership,
      self: init.self,
      keyPair: init.keyPair,
      executor: this.executor,
      config: this.config.core,
      proposals: eventValidator(init.membership, this.group.name, this.config.maxOpBytes, this.config.tickGrace),
      now: this.now,
      ...(init.restored !== undefined ? { restored: init.restored } : {}),
    })
    this.drain()
    // A restarted replica re-announces the calls its restored state has outstanding.
    if (init.restored !== undefined) this.announceOutstanding()
  }

  get id(): string {
    return this.replica.id
  }

  // ---------------------------------------------------------------- host interface

  step(from: string, bytes: Uint8Array, now?: number): void {
    if (now !== undefined && now > this.now) this.now = now
    if (isInterGroupFrame(bytes)) this.onInterGroup(from, bytes)
    else this.replica.step(from, bytes, this.now)
    this.drain()
  }

  tick(now: number): void {
    if (now > this.now) this.now = now
    this.replica.tick(this.now)
    this.drain()
    for (const t of this.calls.values()) {
      // Fallback: the call is late, or a quorum of the callee agrees on its result's digest but
      // the replica meant to send the full result has not: every callee replica gets our share,
      // and those that executed the call answer us from their reply cache, in full.
      const resultWait = t.digestsAgreedAt === undefined ? 0 : Math.min(this.config.resultTimeout, Math.max(1, t.digestsAgreedAt - t.sentAt))
      const resultMissing = t.digestsAgreedAt !== undefined && !t.askedForResult && this.now - t.digestsAgreedAt >= resultWait
      if (this.now < t.deadline && !resultMissing) continue
      this.count(resultMissing ? 'result-asked' : 'call-retransmit')
      const share: RequestShare = { ...t.share, view: this.replica.status().activeView, retransmit: true }
      for (const m of this.groupOf(t.callee).members) this.sendInterGroup(m.id, share)
      if (resultMissing) {
        t.askedForResult = true
        continue
      }
      t.retransmitted = true
      t.timeout = Math.min(2 * t.timeout, this.config.maxCallTimeout)
      t.deadline = this.now + t.timeout
    }
    this.proposeTimerTick()
    this.reproposeRefused()
    this.drain()
  }

  /** See core-agreement's `Replica.persistHeldWrites`: call before a clean stop, then `ready()`. */
  persistHeldWrites(): void {
    this.replica.persistHeldWrites()
    this.drain()
  }

  ready(): VoterReady {
    const r = { persist: this.persist, frames: this.frames, executed: this.executed, events: this.events, effects: this.effects }
    this.persist = []
    this.frames = []
    this.executed = []
    this.events = []
    this.effects = []
    return r
  }

  // ---------------------------------------------------------------- upgrades

  /**
   * Submits an externally requested upgrade for ordering. Everything that can be refused before
   * ordering is refused here with an UpgradeError, and then nothing changes: a bad authority
   * signature or too few of them, another group, a version this replica does not hold (or holds
   * with another digest), the version already running, a downgrade not explicitly allowed, a
   * replayed request. Returns the event key.
   */
  submitUpgrade(request: UpgradeRequest): string {
    verifyUpgradeAuthority(this.membership, this.group.name, request)
    const verdict = upgradeVerdict(this.executor.currentVersion, this.executor.appliedUpgrades(), request)
    if (verdict !== undefined) throw verdict
    const local = localCodeCheck(this.executor.installedVersions(), request)
    if (!('create' in local)) throw local
    const payload = encodeEvent({ e: 'upgrade', request })
    if (!this.replica.propose(payload)) throw new UpgradeError('malformed', 'the group refused the upgrade event (buffers full)')
    this.drain()
    return `upgrade:${request.version}`
  }

  /** Installs the code of a version; a replica halted for lack of it resumes when it can. */
  installVersion(v: AppVersion): void {
    this.executor.install(v)
    this.replica.resume()
    this.drain()
  }

  get version(): string {
    return this.executor.currentVersion
  }

  /** The application instance running now (an upgrade replaces it). */
  get app(): GroupApp {
    return this.executor.currentApp
  }

  /** Digest of the whole replicated state (application, inter-group state, exactly-once table). */
  stateDigest(): Uint8Array {
    return this.replica.stateDigest()
  }

  sizes(): Record<string, number> {
    return { ...this.replica.sizes(), ...this.executor.sizes(), calls: this.calls.size, incoming: this.incoming.size, replyCollections: this.replies.size }
  }

  // ---------------------------------------------------------------- plumbing

  private count(name: string): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + 1)
  }

  private groupOf(name: string): Group {
    return this.membership.group(name) as Group
  }

  private sendInterGroup(to: string, m: RequestShare | ReplyShare): void {
    this.frames.push({ to, bytes: encodeInterGroup(m), type: m.t })
  }

  /** Moves the core's output into ours and acts on the executor's effects. */
  private drain(): void {
    for (;;) {
      const r = this.replica.ready()
      const effects = this.executor.effects
      this.executor.effects = []
      if (r.persist.length + r.messages.length + r.executed.length + r.events.length + effects.length === 0) break
      this.persist.push(...r.persist)
      for (const out of r.messages) {
        this.frames.push({ to: out.to, bytes: encodeMessageOnce(out.message), type: out.message.t })
      }
      this.executed.push(...r.executed)
      this.events.push(...r.events)
      for (const e of r.events) if (e.kind === 'state-transferred') this.afterStateTransfer()
      for (const e of effects) this.onEffect(e)
      this.effects.push(...effects)
    }
  }

  /** The primary of another group: the view that at least f+1 of its members report. */
  private believedPrimary(group: Group): string {
    const views = [...(this.reportedViews.get(group.name)?.values() ?? [])].sort((a, b) => b - a)
    const view = views[group.weakQuorum - 1] ?? 0
    return (group.members[primaryOf(group, view)] as { id: string }).id
  }

  private noteView(group: string, member: number, view: number): void {
    let m = this.reportedViews.get(group)
    if (m === undefined) {
      m = new Map()
      this.reportedViews.set(group, m)
    }
    if ((m.get(member) ?? -1) < view) m.set(member, view)
  }

  // ---------------------------------------------------------------- effects of execution

  private onEffect(e: Effect): void {
    switch (e.kind) {
      case 'send-call':
        return this.announceCall(e.callee, e.k, e.op)
      case 'call-delivered': {
        const t = this.calls.get(callKey(e.callee, e.k))
        if (t !== undefined && !t.retransmitted) {
          const sample = this.now - t.sentAt
          this.callLatency = this.callLatency === undefined ? sample : 0.8 * this.callLatency + 0.2 * sample
        }
        this.calls.delete(callKey(e.callee, e.k))
        for (const key of this.replies.keys()) if (key.startsWith(`${e.callee}:${e.k}:`)) this.forget(this.replies, key)
        return
      }
      case 'call-executed':
        for (const key of this.incoming.keys()) if (key.startsWith(`${e.caller}:${e.k}:`)) this.forget(this.incoming, key)
        return
      case 'send-reply': {
        const caller = this.groupOf(e.caller)
        const to = e.route !== undefined ? (caller.members[primaryOf(caller, e.route)] as { id: string }).id : this.believedPrimary(caller)
        return this.sendReplyShare(e.caller, e.k, e.result, to, e.k % this.group.n === this.replica.index || e.result.length <= FULL_RESULT_BYTES)
      }
      case 'rejected':
        return this.count(`rejected.${e.code}`)
    }
  }

  private forget(map: Map<string, Collection>, key: string): void {
    const c = map.get(key)
    if (c === undefined) return
    map.delete(key)
    // Release the buffer slots of the shares it held.
    for (const sender of c.senders) this.buffered.set(sender, Math.max(0, (this.buffered.get(sender) ?? 1) - 1))
  }

  private announceCall(callee: string, k: number, op: Uint8Array): void {
    if (this.membership.group(callee) === undefined) {
      this.count('call-to-unknown-group')
      return
    }
    const share: RequestShare = {
      t: 'request-share',
      caller: this.group.name,
      callee,
      k,
      op,
      view: this.replica.status().activeView,
      retransmit: false,
      signature: signBytes(this.keyPair, requestShareStatement(this.membership.deployment, this.group.name, callee, k, sha256(op))),
    }
    // Under load calls legitimately wait behind the window: a fixed timeout would turn every one
    // of them into a retransmission storm. Four times the smoothed latency, within the bounds.
    const timeout = Math.min(this.config.maxCallTimeout, Math.max(this.config.callTimeout, 4 * (this.callLatency ?? 0)))
    this.calls.set(callKey(callee, k), { callee, k, share, sentAt: this.now, retransmitted: false, deadline: this.now + timeout, timeout })
    this.sendInterGroup(this.believedPrimary(this.groupOf(callee)), share)
  }

  private announceOutstanding(): void {
    for (const c of this.executor.outstandingCalls()) if (!this.calls.has(callKey(c.callee, c.k))) this.announceCall(c.callee, c.k, c.op)
  }

  private afterStateTransfer(): void {
    // Calls the transferred state has delivered are done; calls it has outstanding need shares.
    for (const [key, t] of this.calls) if (!this.executor.isOutstanding(t.callee, t.k)) this.calls.delete(key)
    this.announceOutstanding()
  }

  private sendReplyShare(caller: string, k: number, result: Uint8Array, to: string, full: boolean): void {
    const resultDigest = sha256(result)
    const share: ReplyShare = {
      t: 'reply-share',
      callee: this.group.name,
      caller,
      k,
      resultDigest,
      ...(full ? { result } : {}),
      view: this.replica.status().activeView,
      signature: signBytes(this.keyPair, replyShareStatement(this.membership.deployment, this.group.name, caller, k, resultDigest)),
    }
    this.sendInterGroup(to, share)
  }

  // ---------------------------------------------------------------- inter-group input

  private onInterGroup(from: string, bytes: Uint8Array): void {
    let m: RequestShare | ReplyShare
    try {
      m = decodeInterGroup(bytes, this.config.maxOpBytes)
    } catch (err) {
      if (err instanceof DecodeError) return this.count('dropped.malformed')
      throw err
    }
    const sender = this.membership.member(from)
    if (sender === undefined) return this.count('dropped.not-a-member')
    if (m.t === 'request-share') this.onRequestShare(sender.group, sender.index, from, m)
    else this.onReplyShare(sender.group, sender.index, from, m)
  }

  private onRequestShare(group: string, index: number, from: string, m: RequestShare): void {
    if (m.callee !== this.group.name || m.caller !== group || group === this.group.name) return this.count('dropped.misaddressed-share')
    const opDigest = sha256(m.op)
    const statement = requestShareStatement(this.membership.deployment, m.caller, m.callee, m.k, opDigest)
    const senderKey = this.groupOf(group).members[index]?.publicKey
    if (senderKey === undefined || !verifyBytes(senderKey, statement, m.signature)) return this.count('dropped.bad-share-signature')
    this.noteView(group, index, m.view)
    if (this.executor.callExecuted(m.caller, m.k)) {
      // Already executed: answer this caller replica straight from the reply cache, within its
      // answer budget (a retransmitted share of a hundred bytes draws a full result back).
      const cached = this.executor.cachedReply(m.caller, m.k)
      if (cached === undefined) return this.count('dropped.not-cached')
      if (!this.answerBudget.take(from, cached.result.length + REPLY_SHARE_OVERHEAD, this.now)) return this.count('dropped.answer-budget')
      this.sendReplyShare(m.caller, m.k, cached.result, from, true)
      return this.count('answered-from-cache')
    }
    if (!this.executor.admits(m.caller, m.k)) return this.count('dropped.outside-window')
    const key = `${m.caller}:${m.k}:${Buffer.from(opDigest).toString('hex')}`
    const c = this.collect(this.incoming, key, this.groupOf(group), statement, from, index, m.signature)
    if (c === undefined) return
    c.payload = m.op
    c.views.set(index, m.view)
    this.proposeCollected(c, (cert, op) => encodeEvent({ e: 'call', caller: m.caller, k: m.k, op, cert, route: routeOf(c, this.groupOf(group)) }))
  }

  private onReplyShare(group: string, index: number, from: string, m: ReplyShare): void {
    if (m.caller !== this.group.name || m.callee !== group || group === this.group.name) return this.count('dropped.misaddressed-share')
    if (m.result !== undefined && Buffer.compare(sha256(m.result), m.resultDigest) !== 0) return this.count('dropped.bad-result-digest')
    const statement = replyShareStatement(this.membership.deployment, m.callee, m.caller, m.k, m.resultDigest)
    const senderKey = this.groupOf(group).members[index]?.publicKey
    if (senderKey === undefined || !verifyBytes(senderKey, statement, m.signature)) return this.count('dropped.bad-share-signature')
    this.noteView(group, index, m.view)
    if (!this.executor.isOutstanding(m.callee, m.k)) return this.count('dropped.not-outstanding')
    const key = `${m.callee}:${m.k}:${Buffer.from(m.resultDigest).toString('hex')}`
    const c = this.collect(this.replies, key, this.groupOf(group), statement, from, index, m.signature)
    if (c === undefined) return
    if (m.result !== undefined) c.payload = m.result
    else if (c.payload === undefined && c.collector.size >= this.groupOf(group).quorum) {
      const t = this.calls.get(callKey(m.callee, m.k))
      if (t !== undefined) t.digestsAgreedAt ??= this.now
    }
    this.proposeCollected(c, (cert, result) => encodeEvent({ e: 'reply', callee: m.callee, k: m.k, result, cert }))
  }

  /**
   * Proposes a complete certificate for ordering. A proposal the group refused (its buffers were
   * full) stays unproposed, and `tick` proposes it again: marking it proposed before the answer
   * left a certified call that was once refused waiting for ever.
   */
  private proposeCollected(c: Collection, event: (cert: QuorumCertificate, payload: Uint8Array) => Uint8Array): void {
    if (c.proposed || !c.collector.complete || c.payload === undefined) return
    const cert = c.collector.certificate()
    if (cert === undefined) return
    c.event ??= event(cert, c.payload)
    c.proposed = this.replica.propose(c.event)
    if (!c.proposed) this.count('proposal-refused')
  }

  /** Certificates the group refused earlier, proposed again (a bounded number per tick). */
  private reproposeRefused(): void {
    let budget = REPROPOSALS_PER_TICK
    for (const map of [this.incoming, this.replies]) {
      for (const c of map.values()) {
        if (budget <= 0) return
        if (c.proposed || c.event === undefined) continue
        budget--
        c.proposed = this.replica.propose(c.event)
      }
    }
  }

  /** Adds a verified share to its collection, within the per-sender buffer bound. */
  private collect(map: Map<string, Collection>, key: string, group: Group, statement: Uint8Array, from: string, index: number, signature: Uint8Array): Collection | undefined {
    let c = map.get(key)
    if (c === undefined) {
      if ((this.buffered.get(from) ?? 0) >= this.config.callWindow) {
        this.count('dropped.share-buffer-full')
        return undefined
      }
      c = { collector: new ShareCollector(group, statement, group.weakQuorum), payload: undefined, proposed: false, senders: new Set(), views: new Map() }
      map.set(key, c)
    }
    if (!c.senders.has(from)) {
      if ((this.buffered.get(from) ?? 0) >= this.config.callWindow) {
        this.count('dropped.share-buffer-full')
        return undefined
      }
      c.senders.add(from)
      this.buffered.set(from, (this.buffered.get(from) ?? 0) + 1)
    }
    c.collector.add({ signer: index, signature }, true)
    return c
  }

  // ---------------------------------------------------------------- timers and start

  /**
   * Timers fire at the first batch whose agreed time reaches them. When the group has nothing
   * else to order, a tick event makes that batch: the primary proposes it when the timer is due,
   * a backup only after a grace period (and then under the view-change timer, like any relayed
   * event), so a primary that ignores timers is replaced. The first batch also starts the app.
   */
  private proposeTimerTick(): void {
    const status = this.replica.status()
    if (!status.active) return
    const primary = status.primary === this.replica.index
    if (!this.executor.isStarted) {
      if (!this.startProposed && (primary || this.now - this.createdAt >= this.config.tickGrace)) {
        this.startProposed = true
        this.replica.propose(encodeEvent({ e: 'tick', at: 0 }))
      }
      return
    }
    const at = this.executor.nextTimerAt()
    if (at === undefined) return
    if (this.now < at + (primary ? 0 : this.config.tickGrace)) return
    // Propose once per deadline, again only if it is still due a call timeout later.
    if (this.tickProposed !== undefined && this.tickProposed.at === at && this.now < this.tickProposed.when + this.config.callTimeout) return
    this.tickProposed = { at, when: this.now }
    this.replica.propose(encodeEvent({ e: 'tick', at }))
  }
}
