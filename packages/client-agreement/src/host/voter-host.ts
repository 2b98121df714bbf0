/**
 * A real-time host for one Voter: the host clock (`Date.now`, a tick every ~10 ms), a durable
 * `Storage` (LevelStorage on disk) and a `Transport` (libp2p in production).
 *
 * Rules it keeps (core-agreement's README, "Durable storage"):
 *  - persist before you send: the frames of a Ready leave only after that Ready's `persist` ops
 *    (and every earlier Ready's) are durable;
 *  - one input at a time: inbound frames wait in one line per sender (Inbox) and are fed to the
 *    voter one by one, a frame of each sender in turn, in arrival order within a sender, with
 *    a due tick before the next frame; so a peer that floods delays only its own frames.
 *    The host steps on while a write is in flight (LevelStorage coalesces the writes submitted
 *    meanwhile into one synced batch: group commit); each Ready's frames are chained behind its
 *    own `apply`, whose promises resolve in call order, so frames leave in the order produced.
 *    At most `maxPendingWrites` Readies wait for the disk; beyond that inputs wait in the queue
 *    (bounded per sender by `maxQueuedInputsPerPeer` frames and `maxQueuedInputBytesPerPeer`,
 *    and in all by `maxQueuedInputs` and `maxQueuedInputBytes`; frames past a bound are dropped
 *    and counted, as a network would).
 *  - a failed write is final: the host stops feeding the voter, sends nothing more and reports
 *    the error through `onFatal`; the process must restart the replica from disk.
 *
 * This module does I/O (timers, the clock): it is exported as `@bftrc/client-agreement/node-host`
 * and never from the deterministic core's index.
 */
import type { PersistOp, Storage } from '@bftrc/core-agreement'
import { type Transport, toHex } from '@bftrc/crypto'
import type { Frame, Voter, VoterReady } from '../voter.js'
import { Inbox } from './inbox.js'

export interface VoterHostInit {
  readonly voter: Voter
  readonly storage: Storage
  readonly transport: Transport
  /** Milliseconds between ticks. Default 10. */
  readonly tickIntervalMs?: number
  /** The host clock. Default `Date.now`. */
  readonly clock?: () => number
  /** Readies allowed to wait for the disk before inputs queue up. Default 256. */
  readonly maxPendingWrites?: number
  /** Inputs queued while the disk is behind; frames beyond it are dropped. Default 20 000. */
  readonly maxQueuedInputs?: number
  /**
   * Bytes of the frames queued while the disk is behind; frames beyond it are dropped. Default
   * 64 MiB (the frame count alone would allow 20 000 frames of the transport's 4 MiB).
   */
  readonly maxQueuedInputBytes?: number
  /** Inputs one sender may have waiting; its frames beyond it are dropped. Default 4096. */
  readonly maxQueuedInputsPerPeer?: number
  /** Bytes one sender may have waiting. Default 16 MiB. */
  readonly maxQueuedInputBytesPerPeer?: number
  /**
   * Rewrites what the replica sends (tests and the demo's Byzantine replicas): returns the frames
   * actually sent in place of one honest frame. Default: identity.
   */
  readonly outbound?: (frame: Frame) => readonly Frame[]
  /** Filters inbound frames; false drops the frame before the voter sees it. */
  readonly inbound?: (from: string, bytes: Uint8Array) => boolean
  /** Observer of every Ready after its frames were sent (executed batches, events, effects). */
  readonly onReady?: (ready: VoterReady) => void
  /** Called once when the host stops on its own: a failed write or an exception of the voter. */
  readonly onFatal?: (error: unknown) => void
  /**
   * Resolves when ticking may begin (inbound frames are processed meanwhile). A replica that
   * ticks before its peers are reachable proposes events (the group's first batch) that nobody
   * can order yet, and its view-change timer may fire while the group is still starting. A
   * process host can wait here, with a bound, until it is connected to its group.
   */
  readonly tickAfter?: () => Promise<void>
}

export interface VoterHostCounters {
  /** Frames delivered to the voter, and dropped before it (queue full, inbound filter, stopped). */
  framesIn: number
  framesInDropped: number
  /** Frames handed to the transport, and the ones it refused (queue full, unknown peer). */
  framesOut: number
  framesOutRefused: number
  ticks: number
  /** Readies that carried persist ops, and the ops. */
  writes: number
  persistOps: number
  executedBatches: number
  viewChanges: number
  stateTransfers: number
  callsSent: number
  callsExecuted: number
  callsDelivered: number
  rejected: number
}

/** Latency figures over the last samples (milliseconds). */
export interface LatencyFigures {
  readonly samples: number
  readonly mean: number
  readonly p50: number
  readonly p99: number
  readonly max: number
}

/** A bounded window of samples. */
class Window {
  private readonly values: number[] = []
  private next = 0
  constructor(private readonly size = 512) {}
  add(v: number): void {
    if (this.values.length < this.size) this.values.push(v)
    else this.values[this.next] = v
    this.next = (this.next + 1) % this.size
  }
  figures(): LatencyFigures {
    const n = this.values.length
    if (n === 0) return { samples: 0, mean: 0, p50: 0, p99: 0, max: 0 }
    const sorted = [...this.values].sort((a, b) => a - b)
    const at = (q: number) => sorted[Math.min(n - 1, Math.floor(q * n))] as number
    return { samples: n, mean: Math.round((sorted.reduce((a, b) => a + b, 0) / n) * 10) / 10, p50: at(0.5), p99: at(0.99), max: sorted[n - 1] as number }
  }
}

export interface VoterHostStatus {
  readonly id: string
  readonly group: string
  readonly index: number
  readonly running: boolean
  readonly fatal: string | undefined
  readonly view: number
  readonly primary: number
  readonly isPrimary: boolean
  /** False while a view change is under way. */
  readonly active: boolean
  readonly lastExecuted: number
  readonly stableCheckpoint: number
  readonly transferring: boolean
  readonly halted: string | undefined
  /** Hex digest of the replica's whole replicated state (see `Voter.stateDigest`). */
  readonly stateDigest: string
  readonly startedAt: number
  readonly uptimeMs: number
  readonly pendingWrites: number
  readonly queuedInputs: number
  readonly queuedInputBytes: number
  readonly counters: Readonly<VoterHostCounters>
  /** The voter's and the core replica's own counters (`dropped.<reason>`, `received.<type>`, …). */
  readonly voterCounters: Readonly<Record<string, number>>
  readonly replicaCounters: Readonly<Record<string, number>>
  /** Sizes of the bounded structures (log, calls outstanding, timers, workflows, …). */
  readonly sizes: Readonly<Record<string, number>>
  /** Time from a Ready to its frames leaving (the durable write, and waiting behind earlier ones). */
  readonly writeLatency: LatencyFigures
  /** Time from issuing one of our calls to delivering its result (this replica's view). */
  readonly callLatency: LatencyFigures
  /** The transport's own metrics, when it has a `metrics()` method (libp2p does). */
  readonly transport: unknown
}

type Input = { readonly kind: 'frame'; readonly from: string; readonly bytes: Uint8Array } | { readonly kind: 'tick' }

const DEFAULTS = { tickIntervalMs: 10, maxPendingWrites: 256, maxQueuedInputs: 20_000, maxQueuedInputBytes: 64 * 1024 * 1024, maxQueuedInputsPerPeer: 4096, maxQueuedInputBytesPerPeer: 16 * 1024 * 1024 }

function record(map: ReadonlyMap<string, number>): Record<string, number> {
  return Object.fromEntries([...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

export class VoterHost {
  readonly voter: Voter
  readonly counters: VoterHostCounters = {
    framesIn: 0,
    framesInDropped: 0,
    framesOut: 0,
    framesOutRefused: 0,
    ticks: 0,
    writes: 0,
    persistOps: 0,
    executedBatches: 0,
    viewChanges: 0,
    stateTransfers: 0,
    callsSent: 0,
    callsExecuted: 0,
    callsDelivered: 0,
    rejected: 0,
  }
  private readonly storage: Storage
  private readonly transport: Transport
  private readonly clock: () => number
  private readonly tickIntervalMs: number
  private readonly maxPendingWrites: number
  private readonly init: VoterHostInit
  private readonly inbox: Inbox
  private tickQueued = false
  private pendingWrites = 0
  private lastWrite: Promise<void> = Promise.resolve()
  private timer: ReturnType<typeof setInterval> | undefined
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new'
  private fatalError: unknown
  private readonly startedAt: number
  private readonly writeWindow = new Window()
  private readonly callWindow = new Window()
  private readonly callsIssued = new Map<string, number>()

  constructor(init: VoterHostInit) {
    this.init = init
    this.voter = init.voter
    this.storage = init.storage
    this.transport = init.transport
    this.clock = init.clock ?? Date.now
    this.tickIntervalMs = init.tickIntervalMs ?? DEFAULTS.tickIntervalMs
    this.maxPendingWrites = init.maxPendingWrites ?? DEFAULTS.maxPendingWrites
    this.inbox = new Inbox({
      total: init.maxQueuedInputs ?? DEFAULTS.maxQueuedInputs,
      totalBytes: init.maxQueuedInputBytes ?? DEFAULTS.maxQueuedInputBytes,
      perSender: init.maxQueuedInputsPerPeer ?? DEFAULTS.maxQueuedInputsPerPeer,
      perSenderBytes: init.maxQueuedInputBytesPerPeer ?? DEFAULTS.maxQueuedInputBytesPerPeer,
    })
    this.startedAt = this.clock()
    if (!(this.tickIntervalMs > 0)) throw new RangeError('tickIntervalMs must be positive')
    this.transport.onMessage((from, bytes) => this.enqueue({ kind: 'frame', from, bytes }))
  }

  get id(): string {
    return this.voter.id
  }

  get running(): boolean {
    return this.state === 'running' && this.fatalError === undefined
  }

  /**
   * Persists what the voter produced while it was built (the genesis checkpoint of a fresh
   * replica), starts the transport and the tick timer.
   */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`host of ${this.id} already ${this.state}`)
    this.state = 'running'
    // What the constructor of a Voter produced (a fresh replica's genesis checkpoint, a restarted
    // one's re-announced calls) goes out like any Ready, once it is on disk.
    this.handle(this.voter.ready())
    await this.lastWrite
    if (this.fatalError !== undefined) throw this.fatalError
    await this.transport.start()
    const startTicking = () => {
      if (this.state !== 'running' || this.fatalError !== undefined || this.timer !== undefined) return
      this.timer = setInterval(() => this.enqueue({ kind: 'tick' }), this.tickIntervalMs)
      this.timer.unref?.()
      this.enqueue({ kind: 'tick' })
    }
    if (this.init.tickAfter === undefined) startTicking()
    else this.init.tickAfter().then(startTicking, startTicking)
    this.pump()
  }

  /** True once the tick timer runs (see `tickAfter`). */
  get ticking(): boolean {
    return this.timer !== undefined
  }

  /** Stops ticking and stepping, waits for the writes in flight, stops the transport and closes the storage. */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return
    const wasNew = this.state === 'new'
    this.state = 'stopping'
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    this.inbox.clear()
    if (!wasNew) {
      if (this.fatalError === undefined) {
        this.voter.persistHeldWrites()
        this.handle(this.voter.ready())
      }
      try {
        await this.lastWrite
      } catch {
        // a failed write was already reported through onFatal
      }
    }
    await this.transport.stop()
    await this.storage.close()
    this.state = 'stopped'
  }

  status(): VoterHostStatus {
    const s = this.voter.replica.status()
    const t = this.transport as Transport & { metrics?: () => unknown }
    return {
      id: this.id,
      group: this.voter.group.name,
      index: this.voter.replica.index,
      running: this.state === 'running' && this.fatalError === undefined,
      fatal: this.fatalError === undefined ? undefined : String((this.fatalError as Error).message ?? this.fatalError),
      view: s.view,
      primary: s.primary,
      isPrimary: s.primary === this.voter.replica.index,
      active: s.active,
      lastExecuted: s.lastExecuted,
      stableCheckpoint: s.stableCheckpoint,
      transferring: s.transferring,
      halted: s.halted,
      stateDigest: toHex(this.voter.stateDigest()),
      startedAt: this.startedAt,
      uptimeMs: this.clock() - this.startedAt,
      pendingWrites: this.pendingWrites,
      queuedInputs: this.inbox.size,
      queuedInputBytes: this.inbox.bytes,
      counters: { ...this.counters },
      voterCounters: record(this.voter.counters),
      replicaCounters: record(this.voter.replica.counters),
      sizes: this.voter.sizes(),
      writeLatency: this.writeWindow.figures(),
      callLatency: this.callWindow.figures(),
      transport: typeof t.metrics === 'function' ? t.metrics() : undefined,
    }
  }

  // ---------------------------------------------------------------- the loop

  private enqueue(input: Input): void {
    if ((this.state !== 'running' && this.state !== 'new') || this.fatalError !== undefined) {
      if (input.kind === 'frame') this.counters.framesInDropped++
      return
    }
    if (input.kind === 'tick') {
      // One tick waiting is enough: a tick only reads the clock.
      this.tickQueued = true
    } else if (!this.inbox.push(input.from, input.bytes)) {
      this.counters.framesInDropped++
      return
    }
    if (this.state === 'running') this.pump()
  }

  /** Feeds waiting inputs to the voter, one at a time (a due tick first), while the disk keeps up. */
  private pump(): void {
    while (this.state === 'running' && this.fatalError === undefined && this.pendingWrites < this.maxPendingWrites) {
      try {
        if (this.tickQueued) {
          this.tickQueued = false
          this.counters.ticks++
          this.voter.tick(this.clock())
        } else {
          const input = this.inbox.shift()
          if (input === undefined) return
          if (this.init.inbound !== undefined && !this.init.inbound(input.from, input.bytes)) {
            this.counters.framesInDropped++
            continue
          }
          this.counters.framesIn++
          this.voter.step(input.from, input.bytes, this.clock())
        }
      } catch (err) {
        // Hostile input never throws out of step(); an exception is a broken invariant.
        this.fail(err)
        return
      }
      this.handle(this.voter.ready())
    }
  }

  /** Persists a Ready, then sends its frames (chained behind every earlier write). */
  private handle(r: VoterReady): void {
    const persist: readonly PersistOp[] = r.persist
    if (persist.length === 0 && r.frames.length === 0 && r.executed.length === 0 && r.events.length === 0 && r.effects.length === 0) return
    if (persist.length > 0) {
      this.counters.writes++
      this.counters.persistOps += persist.length
    }
    this.pendingWrites++
    // apply([]) behind a pending write waits for it; with nothing pending it resolves at once.
    // Chained behind the previous Ready as well, so frames leave in the order they were made
    // whatever order a Storage resolves in (LevelStorage resolves in call order anyway).
    const written = this.storage.apply(persist)
    const previous = this.lastWrite
    const began = this.clock()
    this.lastWrite = written.then(
      async () => {
        await previous
        this.pendingWrites--
        if (persist.length > 0) this.writeWindow.add(this.clock() - began)
        this.deliver(r)
        this.pump()
      },
      async (err: unknown) => {
        await previous
        this.pendingWrites--
        this.fail(err)
      },
    )
  }

  private deliver(r: VoterReady): void {
    if (this.fatalError !== undefined || this.state === 'stopped') return
    for (const frame of r.frames) {
      const frames = this.init.outbound === undefined ? [frame] : this.init.outbound(frame)
      for (const f of frames) {
        if (this.transport.send(f.to, f.bytes)) this.counters.framesOut++
        else this.counters.framesOutRefused++
      }
    }
    this.counters.executedBatches += r.executed.length
    for (const e of r.events) {
      if (e.kind === 'new-view') this.counters.viewChanges++
      if (e.kind === 'state-transferred') this.counters.stateTransfers++
    }
    const now = this.clock()
    for (const e of r.effects) {
      if (e.kind === 'send-call') {
        this.counters.callsSent++
        if (this.callsIssued.size < 100_000) this.callsIssued.set(`${e.callee}:${e.k}`, now)
      } else if (e.kind === 'call-executed') this.counters.callsExecuted++
      else if (e.kind === 'call-delivered') {
        this.counters.callsDelivered++
        const key = `${e.callee}:${e.k}`
        const at = this.callsIssued.get(key)
        if (at !== undefined) {
          this.callsIssued.delete(key)
          this.callWindow.add(now - at)
        }
      } else if (e.kind === 'rejected') this.counters.rejected++
    }
    this.init.onReady?.(r)
  }

  private fail(err: unknown): void {
    if (this.fatalError !== undefined) return
    this.fatalError = err
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    this.inbox.clear()
    this.init.onFatal?.(err)
  }
}
