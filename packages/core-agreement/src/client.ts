/**
 * An unreplicated CLBFT client, as an I/O-free state machine like the replica.
 *
 * One request outstanding at a time. A read-write request goes to the primary it believes
 * current (to every replica until replies have told it the view); the result is accepted with f+1 matching reply digests from distinct replicas and one
 * full result that hashes to that digest. On timeout it retransmits to every replica (backups
 * relay it to the primary and start their view-change timers; replicas that executed it answer
 * from their reply cache). A read-only request goes to all replicas and needs 2f+1 matching
 * results; otherwise it is re-issued as an ordered request.
 */
import { type Group, type KeyPair, type Membership, peerIdOf, sha256, signBytes } from '@bftrc/crypto'
import { DEFAULT_LIMITS, type MessageLimits } from './limits.js'
import { type Message, type Reply, type Request, type StatementScope, tryDecodeMessage, requestDigest } from './messages.js'
import { equalBytes, scopeOf } from './proofs.js'
import type { Outbound } from './ready.js'

export interface ClientConfig {
  /**
   * First retransmission timeout, and its floor: an ordered request waits 4x the smoothed latency
   * of the ordered requests answered without retransmission (when that is longer), so a busy
   * group is not flooded with copies of requests that are merely slow. Doubles on each retry up
   * to `maxRetransmitTimeout`.
   */
  readonly retransmitTimeout: number
  readonly maxRetransmitTimeout: number
  /**
   * Once 2f+1 replicas have agreed on a result's digest without its full bytes, the client waits
   * as long again as that took (at most this many ms) before asking every replica for it: the
   * replica meant to send it in full may be behind or faulty.
   */
  readonly resultTimeout: number
  readonly limits: MessageLimits
}

export const DEFAULT_CLIENT_CONFIG: ClientConfig = { retransmitTimeout: 500, maxRetransmitTimeout: 8_000, resultTimeout: 50, limits: DEFAULT_LIMITS }

export interface ClientInit {
  readonly membership: Membership
  /** The group this client invokes. */
  readonly group: string
  readonly id: string
  readonly keyPair: KeyPair
  /**
   * First timestamp. Timestamps must grow across restarts of the client, so a real host passes
   * something like wall-clock microseconds; the simulator passes 1.
   */
  readonly firstTimestamp: number
  readonly now?: number
  readonly config?: Partial<ClientConfig>
}

export interface CompletedRequest {
  readonly timestamp: number
  readonly readOnly: boolean
  readonly result: Uint8Array
  readonly view: number
  readonly invokedAt: number
  readonly completedAt: number
  /** True when a read-only request fell back to ordered execution. */
  readonly fellBack: boolean
}

export class ClientBusyError extends Error {
  override readonly name = 'ClientBusyError'
}

interface Outstanding {
  request: Request
  op: Uint8Array
  invokedAt: number
  deadline: number
  timeout: number
  fellBack: boolean
  retransmitted: boolean
  /** When 2f+1 replicas had agreed on a digest without the full result (see `resultTimeout`). */
  digestsAgreedAt: number | undefined
  /** Sent again to every replica for the full result. */
  askedForResult: boolean
  readonly replies: Map<number, Reply>
}

export class Client {
  readonly id: string
  readonly group: Group
  readonly config: ClientConfig
  readonly counters = new Map<string, number>()
  private readonly keyPair: KeyPair
  private readonly scope: StatementScope
  private readonly open: boolean
  private now: number
  private view = 0
  private nextTimestamp: number
  private outstanding: Outstanding | undefined
  /** Smoothed latency of ordered requests answered without a retransmission (ms). */
  private smoothedLatency: number | undefined
  private messages: Outbound[] = []
  private completed: CompletedRequest[] = []

  constructor(init: ClientInit) {
    const group = init.membership.group(init.group)
    if (group === undefined) throw new Error(`unknown group ${init.group}`)
    this.group = group
    this.scope = scopeOf(init.membership, group.name)
    this.id = init.id
    this.keyPair = init.keyPair
    this.config = { ...DEFAULT_CLIENT_CONFIG, ...init.config }
    const listed = init.membership.clients.get(init.id)
    this.open = listed === undefined
    if (this.open && init.id !== `peer:${peerIdOf(init.keyPair.publicKey)}`) throw new Error(`client ${init.id} is not in the membership`)
    if (listed !== undefined && !equalBytes(listed.publicKey, init.keyPair.publicKey)) throw new Error(`key of ${init.id} differs from the membership's`)
    this.nextTimestamp = init.firstTimestamp
    this.now = init.now ?? 0
  }

  get busy(): boolean {
    return this.outstanding !== undefined
  }

  /** Issues one operation; returns its timestamp. Throws ClientBusyError while one is outstanding. */
  invoke(op: Uint8Array, options: { readOnly?: boolean; now?: number } = {}): number {
    if (options.now !== undefined && options.now > this.now) this.now = options.now
    if (this.outstanding !== undefined) throw new ClientBusyError('a request is already outstanding')
    if (op.length > this.config.limits.maxOpBytes) throw new RangeError(`operation exceeds ${this.config.limits.maxOpBytes} bytes`)
    const readOnly = options.readOnly === true
    const request = this.makeRequest(op, readOnly)
    const timeout = readOnly ? this.config.retransmitTimeout : this.orderedTimeout()
    this.outstanding = { request, op, invokedAt: this.now, deadline: this.now + timeout, timeout, fellBack: false, retransmitted: false, digestsAgreedAt: undefined, askedForResult: false, replies: new Map() }
    // Every replica gets every request: the backups then know what the primary has to order and
    // replace it when it is slow to (see OrderingMonitor), and no request waits on a primary
    // that is faulty or that the client wrongly believes current.
    this.broadcast(request)
    return request.timestamp
  }

  /** Feeds one frame; `now` (optional) moves the clock forward without firing timers. */
  step(from: string, bytes: Uint8Array, now?: number): void {
    if (now !== undefined && now > this.now) this.now = now
    const msg = tryDecodeMessage(bytes, this.config.limits)
    if (msg === undefined) return this.drop('malformed')
    if (msg.t !== 'reply') return this.drop('unexpected-type')
    const slash = from.indexOf('/')
    const replica = this.group.members.find((m) => m.id === from)
    if (slash < 0 || replica === undefined) return this.drop('not-a-replica')
    const o = this.outstanding
    if (o === undefined || msg.timestamp !== o.request.timestamp || msg.readOnly !== o.request.readOnly) return this.drop('stale-reply')
    if (msg.result !== undefined && !equalBytes(sha256(msg.result), msg.resultDigest)) return this.drop('bad-result-digest')
    const previous = o.replies.get(replica.index)
    // Keep a full result over a digest-only reply from the same replica.
    if (previous === undefined || (previous.result === undefined && msg.result !== undefined) || msg.view > previous.view) o.replies.set(replica.index, msg)
    this.tryComplete(o)
  }

  tick(now: number): void {
    if (now > this.now) this.now = now
    const o = this.outstanding
    if (o === undefined) return
    // Waiting as long again as the digests took to agree (at most `resultTimeout`) costs a slow
    // or faulty designated replica at most one more round, never a retransmission timeout.
    const resultWait = o.digestsAgreedAt === undefined ? 0 : Math.min(this.config.resultTimeout, Math.max(1, o.digestsAgreedAt - o.invokedAt))
    if (o.digestsAgreedAt !== undefined && !o.askedForResult && this.now - o.digestsAgreedAt >= resultWait) {
      // 2f+1 replicas agree on the result's digest, but the one meant to send it in full is
      // slow, behind or faulty: ask every replica (each answers from its reply cache with the
      // full result) rather than wait a whole retransmission timeout.
      o.askedForResult = true
      this.count('result-asked')
      this.broadcast(o.request)
    }
    if (this.now < o.deadline) return
    if (o.request.readOnly) {
      // Not enough matching read-only answers in time: order it instead.
      this.count('read-only-fallback')
      o.request = this.makeRequest(o.op, false)
      o.fellBack = true
      o.replies.clear()
      this.broadcast(o.request)
      o.timeout = this.orderedTimeout()
    } else {
      this.count('retransmit')
      o.retransmitted = true
      this.broadcast(o.request)
      o.timeout = Math.min(2 * o.timeout, this.config.maxRetransmitTimeout)
    }
    o.deadline = this.now + o.timeout
  }

  ready(): { messages: Outbound[]; completed: CompletedRequest[] } {
    const r = { messages: this.messages, completed: this.completed }
    this.messages = []
    this.completed = []
    return r
  }

  /** The view this client believes current (learned from replies). */
  currentView(): number {
    return this.view
  }

  /** The first retransmission timeout of an ordered request (see `ClientConfig.retransmitTimeout`). */
  orderedTimeout(): number {
    const adaptive = this.smoothedLatency === undefined ? 0 : Math.ceil(4 * this.smoothedLatency)
    return Math.min(Math.max(this.config.retransmitTimeout, adaptive), this.config.maxRetransmitTimeout)
  }

  private makeRequest(op: Uint8Array, readOnly: boolean): Request {
    const body = { client: this.id, timestamp: this.nextTimestamp++, op, readOnly, ...(this.open ? { publicKey: this.keyPair.publicKey } : {}) }
    return { ...body, signature: signBytes(this.keyPair, requestDigest(this.scope, body)) }
  }

  private broadcast(request: Request): void {
    const message: Message = { t: 'request', request }
    for (const m of this.group.members) this.messages.push({ to: m.id, message })
  }

  private tryComplete(o: Outstanding): void {
    const needed = o.request.readOnly ? this.group.quorum : this.group.weakQuorum
    const byDigest = new Map<string, Reply[]>()
    for (const r of o.replies.values()) {
      const k = Buffer.from(r.resultDigest).toString('hex')
      const list = byDigest.get(k) ?? []
      list.push(r)
      byDigest.set(k, list)
    }
    for (const list of byDigest.values()) {
      if (list.length < needed) continue
      const full = list.find((r) => r.result !== undefined)
      if (full === undefined) {
        // Enough replicas agree on the digest, but the one meant to send the full result has
        // not: if it stays missing for `resultTimeout`, `tick` asks every replica for it.
        if (list.length >= this.group.quorum) o.digestsAgreedAt ??= this.now
        continue
      }
      // The view at least f+1 replicas report (so at least one correct replica is there).
      const views = list.map((r) => r.view).sort((a, b) => b - a)
      const view = views[this.group.weakQuorum - 1] ?? this.view
      if (view > this.view) this.view = view
      if (!o.request.readOnly && !o.retransmitted) {
        const sample = this.now - o.invokedAt
        this.smoothedLatency = this.smoothedLatency === undefined ? sample : this.smoothedLatency + (sample - this.smoothedLatency) / 8
      }
      this.outstanding = undefined
      this.completed.push({
        timestamp: o.request.timestamp,
        readOnly: o.request.readOnly,
        result: full.result as Uint8Array,
        view: this.view,
        invokedAt: o.invokedAt,
        completedAt: this.now,
        fellBack: o.fellBack,
      })
      return
    }
  }

  private count(name: string): void {
    this.counters.set(name, (this.counters.get(name) ?? 0) + 1)
  }

  private drop(reason: string): void {
    this.count(`dropped.${reason}`)
  }
}
