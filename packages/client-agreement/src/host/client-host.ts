/**
 * A real-time host for plain (unreplicated) core-agreement Clients: one Client per server group,
 * all over one Transport, driven by the host clock. `invoke` returns a promise of the result.
 * A Client has one request outstanding at a time; further invokes for the same group wait in
 * line (in call order). The line is bounded (`maxQueued`): an invoke that finds it full is
 * refused at once with `ClientQueueFullError`. An invocation whose `timeoutMs` passes before it
 * was sent leaves the line and is never sent; one already sent stays the Client's outstanding
 * request (the protocol has no cancel) until the group answers it, and later ones wait behind it.
 */
import { Client, type ClientConfig, type CompletedRequest, encodeMessageOnce } from '@bftrc/core-agreement'
import type { KeyPair, Membership, Transport } from '@bftrc/crypto'

export interface ClientHostInit {
  readonly membership: Membership
  /** The client id (listed in the membership's clients). */
  readonly id: string
  readonly keyPair: KeyPair
  readonly transport: Transport
  /** The server groups this host talks to. Default: every group of the membership. */
  readonly groups?: readonly string[]
  readonly clientConfig?: Partial<ClientConfig>
  /** Milliseconds between ticks (retransmission timers). Default 10. */
  readonly tickIntervalMs?: number
  /** Invocations per group in line, the one outstanding included, before invoke refuses. Default 1024. */
  readonly maxQueued?: number
  readonly clock?: () => number
}

export interface InvokeOptions {
  /** Read-only optimisation: 2f+1 matching replies, falling back to ordered execution. */
  readonly readOnly?: boolean
  /** Reject with ClientTimeoutError after this long. Default: wait for ever. */
  readonly timeoutMs?: number
}

export class ClientTimeoutError extends Error {
  override readonly name = 'ClientTimeoutError'
}

export class ClientStoppedError extends Error {
  override readonly name = 'ClientStoppedError'
}

/** The group's line already holds `maxQueued` invocations; nothing was sent. */
export class ClientQueueFullError extends Error {
  override readonly name = 'ClientQueueFullError'
}

export interface ClientHostCounters {
  /** Frames refused by the transport (queue full, peer unknown). */
  refused: number
  /** Invokes refused because the line was full. */
  queueFull: number
  /** Invocations whose timeout passed: before they were sent (dropped from the line) or after. */
  timedOutUnsent: number
  timedOutSent: number
  /** Requests the group answered after their invocation had timed out. */
  lateCompletions: number
}

interface Waiting {
  readonly op: Uint8Array
  readonly readOnly: boolean
  readonly resolve: (r: CompletedRequest) => void
  readonly reject: (err: unknown) => void
  timestamp: number | undefined
  timer: ReturnType<typeof setTimeout> | undefined
  settled: boolean
}

interface Lane {
  readonly client: Client
  readonly line: Waiting[]
}

export class ClientHost {
  readonly id: string
  private readonly transport: Transport
  private readonly clock: () => number
  private readonly tickIntervalMs: number
  private readonly lanes = new Map<string, Lane>()
  private timer: ReturnType<typeof setInterval> | undefined
  private started = false
  private stopped = false
  private readonly maxQueued: number
  readonly counters: ClientHostCounters = { refused: 0, queueFull: 0, timedOutUnsent: 0, timedOutSent: 0, lateCompletions: 0 }

  constructor(init: ClientHostInit) {
    this.id = init.id
    this.transport = init.transport
    this.clock = init.clock ?? Date.now
    this.tickIntervalMs = init.tickIntervalMs ?? 10
    this.maxQueued = init.maxQueued ?? 1024
    if (!(Number.isSafeInteger(this.maxQueued) && this.maxQueued >= 1)) throw new RangeError('maxQueued must be a positive integer')
    const now = this.clock()
    for (const group of init.groups ?? [...init.membership.groups.keys()]) {
      // Timestamps must grow across runs of the same client id: wall-clock microseconds.
      const client = new Client({ membership: init.membership, group, id: init.id, keyPair: init.keyPair, firstTimestamp: now * 1000, now, ...(init.clientConfig !== undefined ? { config: init.clientConfig } : {}) })
      this.lanes.set(group, { client, line: [] })
    }
    this.transport.onMessage((from, bytes) => {
      const slash = from.indexOf('/')
      const lane = slash > 0 ? this.lanes.get(from.slice(0, slash)) : undefined
      if (lane === undefined) return
      lane.client.step(from, bytes, this.clock())
      this.flush(lane)
    })
  }

  async start(): Promise<void> {
    await this.transport.start()
    this.started = true
    this.tickWhileBusy()
  }

  /** True while the tick timer runs: only while some Client has a request outstanding. */
  get ticking(): boolean {
    return this.timer !== undefined
  }

  /**
   * Starts the tick timer if a Client is busy; it stops itself once none is, so an idle host
   * (a load generator holds hundreds) costs no CPU.
   */
  private tickWhileBusy(): void {
    if (this.timer !== undefined || !this.started || this.stopped) return
    if (![...this.lanes.values()].some((l) => l.client.busy)) return
    this.timer = setInterval(() => {
      const now = this.clock()
      let busy = false
      for (const lane of this.lanes.values()) {
        lane.client.tick(now)
        this.flush(lane)
        busy ||= lane.client.busy
      }
      if (!busy) {
        clearInterval(this.timer)
        this.timer = undefined
      }
    }, this.tickIntervalMs)
    this.timer.unref?.()
  }

  /** Invokes `op` on `group`; resolves with the accepted result (f+1 matching, or 2f+1 read-only). */
  invoke(group: string, op: Uint8Array, options: InvokeOptions = {}): Promise<CompletedRequest> {
    const lane = this.lanes.get(group)
    if (lane === undefined) return Promise.reject(new Error(`this client host does not talk to group ${group}`))
    if (this.stopped) return Promise.reject(new ClientStoppedError('client host stopped'))
    if (lane.line.length >= this.maxQueued) {
      this.counters.queueFull++
      return Promise.reject(new ClientQueueFullError(`${lane.line.length} invocations of ${group} already in line`))
    }
    return new Promise<CompletedRequest>((resolve, reject) => {
      const w: Waiting = { op, readOnly: options.readOnly === true, resolve, reject, timestamp: undefined, timer: undefined, settled: false }
      if (options.timeoutMs !== undefined) {
        w.timer = setTimeout(() => {
          if (w.settled) return
          w.settled = true
          if (w.timestamp === undefined) {
            // Never sent: it leaves the line.
            this.counters.timedOutUnsent++
            const at = lane.line.indexOf(w)
            if (at >= 0) lane.line.splice(at, 1)
          } else this.counters.timedOutSent++ // still the Client's outstanding request
          reject(new ClientTimeoutError(`no answer from ${group} within ${options.timeoutMs} ms`))
        }, options.timeoutMs)
      }
      lane.line.push(w)
      this.next(lane)
    })
  }

  /** Invocations of `group` not yet answered: the one outstanding (even if it timed out) and those in line. */
  queued(group: string): number {
    return this.lanes.get(group)?.line.length ?? 0
  }

  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    for (const lane of this.lanes.values()) {
      for (const w of lane.line) {
        if (w.timer !== undefined) clearTimeout(w.timer)
        if (!w.settled) {
          w.settled = true
          w.reject(new ClientStoppedError('client host stopped'))
        }
      }
      lane.line.length = 0
    }
    await this.transport.stop()
  }

  /** The Clients' own counters (`retransmit`, `read-only-fallback`, `dropped.<reason>`), summed over groups. */
  clientCounters(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const lane of this.lanes.values()) for (const [k, v] of lane.client.counters) out[k] = (out[k] ?? 0) + v
    return out
  }

  /** The view each group's client believes current. */
  views(): Record<string, number> {
    return Object.fromEntries([...this.lanes].map(([g, l]) => [g, l.client.currentView()]))
  }

  private next(lane: Lane): void {
    if (lane.client.busy) return
    const w = lane.line[0]
    if (w === undefined || w.timestamp !== undefined) return
    w.timestamp = lane.client.invoke(w.op, { readOnly: w.readOnly, now: this.clock() })
    this.flush(lane)
    this.tickWhileBusy()
  }

  private flush(lane: Lane): void {
    const r = lane.client.ready()
    for (const out of r.messages) {
      if (!this.transport.send(out.to, encodeMessageOnce(out.message))) this.counters.refused++
    }
    for (const done of r.completed) {
      // One request is outstanding per Client: the head of the line (a read-only request that
      // fell back to ordered execution completes under a new timestamp).
      const w = lane.line[0]?.timestamp !== undefined ? lane.line.shift() : undefined
      if (w !== undefined) {
        if (w.timer !== undefined) clearTimeout(w.timer)
        if (!w.settled) {
          w.settled = true
          w.resolve(done)
        } else this.counters.lateCompletions++
      }
    }
    if (r.completed.length > 0) this.next(lane)
  }
}

