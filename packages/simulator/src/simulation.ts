/**
 * One deterministic simulated run: a group of replicas and some clients on a simulated network,
 * driven by a virtual clock and one seed. The host loop here does for the state machines what the
 * real host does: feed frames and ticks in, persist, then send what `ready()` hands out.
 *
 * A run has a safety phase (faults on, for `safetyDuration`) and a liveness phase (network healed,
 * crashed correct replicas restarted): every client request must then complete and every correct
 * replica converge to one state, or the run reports a liveness violation.
 */
import {
  Client,
  type ClientConfig,
  type CompletedRequest,
  MemoryStorage,
  Replica,
  type ReplicaConfig,
  type ReplicaEvent,
  encodeMessageOnce,
  scopeOf,
} from '@bftrc/core-agreement'
import { type GeneratedCluster, type KeyPair, encode, generateCluster, setVerificationCache, sha256 } from '@bftrc/crypto'
import type { Behaviour } from './adversary.js'
import { Checkers, type Violation } from './checkers.js'
import { EventQueue } from './event-queue.js'
import { type NetworkFaults, PERFECT, SimNetwork } from './network.js'
import { Prng } from '@bftrc/adversary'
import { ChainExecutor } from './test-executor.js'

export const GROUP = 'g'

export interface ScheduledAction {
  readonly at: number
  readonly run: (sim: Simulation) => void
}

export interface SimulationOptions {
  readonly seed: number
  readonly f: number
  readonly clients: number
  readonly requestsPerClient: number
  /** Faults of the safety phase. */
  readonly faults: NetworkFaults
  /** Length of the safety phase, virtual ms. */
  readonly safetyDuration: number
  /** Network of the liveness phase. */
  readonly stableNetwork?: NetworkFaults
  /** Time the liveness phase may take before the run fails. */
  readonly livenessTimeout: number
  readonly tickInterval?: number
  readonly readOnlyRatio?: number
  /** Idle time of a client between its requests, virtual ms. */
  readonly thinkTime?: readonly [number, number]
  readonly replicaConfig?: Partial<ReplicaConfig>
  readonly clientConfig?: Partial<ClientConfig>
  /** Replica index → Byzantine behaviour. */
  readonly byzantine?: ReadonlyMap<number, Behaviour>
  /**
   * Twins: these replica indices run as two instances with one key; instance A serves the members
   * and clients listed in `sideA`, instance B everyone else.
   */
  readonly twins?: { readonly replicas: readonly number[]; readonly sideA: ReadonlySet<string> }
  readonly schedule?: readonly ScheduledAction[]
  /** Check convergence at the end (off for runs that are meant to break safety). */
  readonly expectLiveness?: boolean
  /** Record heap use every virtual second (long runs). */
  readonly sampleHeap?: boolean
}

export interface SimulationResult {
  readonly seed: number
  readonly violations: readonly Violation[]
  readonly completedRequests: number
  readonly expectedRequests: number
  readonly messages: number
  readonly messagesByType: Readonly<Record<string, number>>
  readonly bytes: number
  /** Mean request latency in virtual ms (= message delays where every hop takes one unit). */
  readonly meanLatency: number
  readonly finalTime: number
  readonly viewChanges: number
  readonly maxView: number
  readonly stateTransfers: number
  /** Virtual time from the first view change until the first request committed in the new view. */
  readonly viewChangeLatency: number | undefined
  readonly events: Readonly<Record<string, number>>
  /** Largest size seen of each bounded structure over all correct replicas (sampled every second). */
  readonly maxSizes: Readonly<Record<string, number>>
  /** Heap in use (MiB) at each sample, for the flat-memory check of long runs. */
  readonly heapSamplesMiB: readonly number[]
}

interface ReplicaInstance {
  readonly key: string
  replica: Replica | undefined
  readonly storage: MemoryStorage
  executor: ChainExecutor
}

interface ReplicaNode {
  readonly id: string
  readonly index: number
  readonly instances: ReplicaInstance[]
  readonly behaviour: Behaviour | undefined
  readonly correct: boolean
}

interface ClientNode {
  readonly id: string
  readonly client: Client
  issued: number
  completed: number
  waitingSince: number
  readonly latencies: number[]
}


export class Simulation {
  time = 0
  readonly queue = new EventQueue()
  readonly network: SimNetwork
  readonly checkers: Checkers
  readonly cluster: GeneratedCluster
  readonly replicas: ReplicaNode[] = []
  readonly clients: ClientNode[] = []
  readonly prng: Prng
  private readonly clientPrng: Prng
  private readonly eventCounts = new Map<string, number>()
  private firstViewChangeAt: number | undefined
  private viewChangeLatency: number | undefined
  private phase: 'safety' | 'liveness' = 'safety'
  private maxView = 0
  private orderedCompleted = 0
  private readonly maxSizes = new Map<string, number>()
  private readonly heapSamples: number[] = []

  constructor(readonly options: SimulationOptions) {
    // One process runs the whole group, so every replica would check the same signatures again.
    setVerificationCache(20_000)
    this.prng = new Prng(options.seed)
    this.clientPrng = this.prng.fork()
    const seedBytes = sha256(encode({ seed: options.seed }))
    this.cluster = generateCluster({
      groups: [{ name: GROUP, f: options.f }],
      clients: Array.from({ length: options.clients }, (_, i) => `c${i}`),
      seed: seedBytes,
    })
    this.checkers = new Checkers(() => this.time)
    this.network = new SimNetwork(this.queue, this.prng.fork(), () => this.time, (from, to, bytes, side) => this.deliver(from, to, bytes, side))
    this.network.faults = options.faults
    const group = this.cluster.membership.group(GROUP)
    if (group === undefined) throw new Error('no group')
    const twins = new Set(options.twins?.replicas ?? [])
    for (const m of group.members) {
      const behaviour = options.byzantine?.get(m.index)
      const count = twins.has(m.index) ? 2 : 1
      const instances: ReplicaInstance[] = []
      for (let i = 0; i < count; i++) {
        const inst: ReplicaInstance = { key: count === 1 ? m.id : `${m.id}#${i === 0 ? 'A' : 'B'}`, replica: undefined, storage: new MemoryStorage(), executor: new ChainExecutor() }
        instances.push(inst)
      }
      const node: ReplicaNode = { id: m.id, index: m.index, instances, behaviour, correct: behaviour === undefined && count === 1 }
      this.replicas.push(node)
      for (const inst of instances) this.startInstance(node, inst, false)
    }
    for (let i = 0; i < options.clients; i++) {
      const id = `c${i}`
      const client = new Client({
        membership: this.cluster.membership,
        group: GROUP,
        id,
        keyPair: this.cluster.keys.get(id) as never,
        firstTimestamp: 1,
        now: 0,
        ...(options.clientConfig !== undefined ? { config: options.clientConfig } : {}),
      })
      this.clients.push({ id, client, issued: 0, completed: 0, waitingSince: 0, latencies: [] })
    }
  }

  // ---------------------------------------------------------------- nodes

  private startInstance(node: ReplicaNode, inst: ReplicaInstance, fromDisk: boolean): void {
    inst.executor = new ChainExecutor()
    const restored = fromDisk ? inst.storage.loadSync() : undefined
    inst.replica = new Replica({
      membership: this.cluster.membership,
      self: node.id,
      keyPair: this.cluster.keys.get(node.id) as never,
      executor: inst.executor,
      now: this.time,
      ...(this.options.replicaConfig !== undefined ? { config: this.options.replicaConfig } : {}),
      ...(restored !== undefined ? { restored } : {}),
    })
    if (fromDisk) this.checkers.onRewind(inst.key)
    this.flushReplica(node, inst)
  }

  node(index: number): ReplicaNode {
    return this.replicas[index] as ReplicaNode
  }

  /** Stops a replica (all its instances); with `wipe`, its disk is lost too. */
  crash(index: number, wipe = false): void {
    const node = this.node(index)
    for (const inst of node.instances) {
      inst.replica = undefined
      if (wipe) (inst as { storage: MemoryStorage }).storage = new MemoryStorage()
    }
    this.count('crash')
  }

  restart(index: number): void {
    const node = this.node(index)
    for (const inst of node.instances) {
      if (inst.replica !== undefined) continue
      const hasDisk = inst.storage.loadSync() !== undefined
      if (!hasDisk) this.checkers.onRewind(inst.key)
      this.startInstance(node, inst, hasDisk)
    }
    this.count('restart')
  }

  isUp(index: number): boolean {
    return this.node(index).instances.some((i) => i.replica !== undefined)
  }

  // ---------------------------------------------------------------- host loop

  /** Twins: which side a sender is on (its instance's side for a twin, else its side-A membership). */
  private sideOf(from: string, side: 'A' | 'B' | undefined): 'A' | 'B' {
    return side ?? (this.options.twins?.sideA.has(from) === true ? 'A' : 'B')
  }

  private deliver(from: string, to: string, bytes: Uint8Array, side: 'A' | 'B' | undefined): void {
    const slash = to.indexOf('/')
    if (slash >= 0) {
      const node = this.replicas[Number(to.slice(slash + 1))]
      if (node === undefined) return
      const inst = (node.instances.length === 1 ? node.instances[0] : node.instances[this.sideOf(from, side) === 'A' ? 0 : 1]) as ReplicaInstance
      if (inst.replica === undefined) return
      if (node.behaviour?.inbound?.(from, bytes) === false) return
      this.guard(node.id, () => inst.replica?.step(from, bytes, this.time))
      this.flushReplica(node, inst)
      return
    }
    const c = this.clients.find((x) => x.id === to)
    if (c === undefined) return
    c.client.step(from, bytes, this.time)
    this.flushClient(c)
  }

  /** A replica that throws has hit a broken invariant of the protocol code: that is a violation. */
  private guard(who: string, fn: () => void): void {
    try {
      fn()
    } catch (err) {
      this.checkers.fail('crash', `${who} threw: ${(err as Error).stack ?? String(err)}`)
      throw err
    }
  }

  private flushReplica(node: ReplicaNode, inst: ReplicaInstance): void {
    const replica = inst.replica
    if (replica === undefined) return
    const r = replica.ready()
    inst.storage.applySync(r.persist)
    for (const e of r.events) this.onEvent(node, inst, e)
    if (node.correct) for (const b of r.executed) this.checkers.onExecuted(inst.key, b)
    if (this.firstViewChangeAt !== undefined && this.viewChangeLatency === undefined && r.executed.some((b) => b.requests.length > 0 && b.view > 0)) {
      this.viewChangeLatency = this.time - this.firstViewChangeAt
    }
    const twinSide = node.instances.length === 1 ? undefined : node.instances[0] === inst ? 'A' : 'B'
    for (const out of r.messages) {
      // A twin instance talks only to its own side (the other instance's peers never hear it).
      if (twinSide !== undefined && this.sideOf(out.to, undefined) !== twinSide && !this.isTwin(out.to)) continue
      const bytes = encodeMessageOnce(out.message)
      if (node.behaviour !== undefined) {
        const ctx = {
          self: node.id,
          group: GROUP,
          scope: scopeOf(this.cluster.membership, GROUP),
          key: this.cluster.keys.get(node.id) as KeyPair,
          prng: this.prng,
          peers: this.replicas.map((r) => r.id),
          to: out.to,
          message: out.message,
          bytes,
        }
        for (const frame of node.behaviour.outbound(ctx)) {
          this.network.send(node.id, frame.to, frame.bytes, frame.type ?? out.message.t, twinSide)
        }
      } else {
        this.network.send(node.id, out.to, bytes, out.message.t, twinSide)
      }
    }
  }

  private isTwin(id: string): boolean {
    const slash = id.indexOf('/')
    return slash >= 0 && (this.replicas[Number(id.slice(slash + 1))]?.instances.length ?? 1) > 1
  }

  private onEvent(node: ReplicaNode, inst: ReplicaInstance, e: ReplicaEvent): void {
    this.count(e.kind)
    if (e.kind === 'view-change-started' && this.firstViewChangeAt === undefined && node.correct) this.firstViewChangeAt = this.time
    if (e.kind === 'new-view' && e.view > this.maxView) this.maxView = e.view
    if (e.kind === 'state-transferred') this.checkers.onRewind(inst.key)
  }

  private count(name: string): void {
    this.eventCounts.set(name, (this.eventCounts.get(name) ?? 0) + 1)
  }

  private flushClient(c: ClientNode): void {
    const r = c.client.ready()
    for (const out of r.messages) this.network.send(c.id, out.to, encodeMessageOnce(out.message), out.message.t)
    for (const done of r.completed) this.onCompleted(c, done)
  }

  private onCompleted(c: ClientNode, done: CompletedRequest): void {
    c.completed++
    if (!done.readOnly) this.orderedCompleted++
    c.latencies.push(done.completedAt - done.invokedAt)
    this.checkers.onAccepted(c.id, done, Buffer.from(sha256(done.result)).toString('hex'))
    if (c.issued < this.options.requestsPerClient) {
      const [lo, hi] = this.options.thinkTime ?? [0, 0]
      const wait = hi > 0 ? this.clientPrng.int(lo, hi) : 0
      if (wait === 0) this.issue(c)
      else this.queue.push(this.time + wait, () => this.issue(c))
    }
  }

  private issue(c: ClientNode): void {
    if (c.client.busy || c.issued >= this.options.requestsPerClient) return
    const readOnly = this.clientPrng.chance(this.options.readOnlyRatio ?? 0)
    const op = encode({ client: c.id, n: c.issued })
    c.issued++
    c.client.invoke(op, { readOnly, now: this.time })
    this.flushClient(c)
  }

  private tickAll(): void {
    for (const node of this.replicas) {
      for (const inst of node.instances) {
        if (inst.replica === undefined) continue
        this.guard(node.id, () => inst.replica?.tick(this.time))
        this.flushReplica(node, inst)
      }
    }
    for (const c of this.clients) {
      c.client.tick(this.time)
      this.flushClient(c)
    }
    this.queue.push(this.time + (this.options.tickInterval ?? 10), () => this.tickAll())
  }

  private allClientsDone(): boolean {
    return this.clients.every((c) => c.completed >= this.options.requestsPerClient)
  }

  private correctUp(): ReplicaInstance[] {
    return this.replicas.filter((n) => n.correct).flatMap((n) => n.instances.filter((i) => i.replica !== undefined))
  }

  /**
   * Every correct replica up is at one sequence number with one state digest, and those taking
   * part in a view have no ordered slot left to execute (replicas restarted together may agree on
   * a prefix while a slot they all prepared still waits to be committed again).
   */
  private converged(): boolean {
    const live = this.correctUp()
    if (live.length === 0) return true
    const first = live[0]?.replica?.status().lastExecuted
    if (!live.every((i) => i.replica?.status().lastExecuted === first)) return false
    if (!live.every((i) => !(i.replica as Replica).status().active || (i.replica as Replica).status().unexecutedSlots === 0)) return false
    // What clients saw acknowledged is executed everywhere (after a restart of every replica, a
    // slot they all prepared may still wait for its commits or for the next view to re-issue it).
    if (!live.every((i) => i.executor.count >= this.orderedCompleted)) return false
    const digests = new Set(live.map((i) => Buffer.from((i.replica as Replica).stateDigest()).toString('hex')))
    return digests.size === 1
  }

  private startLiveness(): void {
    this.phase = 'liveness'
    this.network.faults = this.options.stableNetwork ?? PERFECT
    this.network.heal()
    for (const node of this.replicas) if (node.correct && !this.isUp(node.index)) this.restart(node.index)
  }

  /** Runs the whole scenario and returns its figures and violations. */
  run(): SimulationResult {
    for (const a of this.options.schedule ?? []) this.queue.push(a.at, () => a.run(this))
    this.queue.push(0, () => this.tickAll())
    for (const c of this.clients) this.queue.push(0, () => this.issue(c))
    this.queue.push(this.options.safetyDuration, () => this.startLiveness())
    const deadline = this.options.safetyDuration + this.options.livenessTimeout
    let lastPrune = 0
    try {
      for (;;) {
        const at = this.queue.peekTime()
        if (at === undefined || at > deadline) break
        const e = this.queue.pop()
        if (e === undefined) break
        this.time = e.at
        e.run()
        if (this.phase === 'liveness' && this.allClientsDone() && this.converged()) break
        if (this.phase === 'safety' && this.allClientsDone() && this.time >= 0 && this.converged() && (this.options.schedule ?? []).every((s) => s.at <= this.time)) {
          // Nothing left to stress: go straight to the liveness check.
          this.startLiveness()
        }
        if (this.time - lastPrune > 1000) {
          lastPrune = this.time
          this.sample()
          const live = this.correctUp()
          if (live.length > 0) this.checkers.prune(Math.min(...live.map((i) => (i.replica as Replica).status().stableCheckpoint)))
        }
      }
    } catch (err) {
      if (this.checkers.violations.length === 0) this.checkers.fail('crash', (err as Error).stack ?? String(err))
    }
    if (this.options.expectLiveness !== false && this.checkers.violations.length === 0) {
      if (!this.allClientsDone()) {
        const missing = this.clients.filter((c) => c.completed < this.options.requestsPerClient).map((c) => `${c.id} ${c.completed}/${this.options.requestsPerClient}`)
        this.checkers.fail('liveness', `requests not completed by ${deadline} ms: ${missing.join(', ')}; replicas ${this.describe()}`)
      } else if (!this.converged()) {
        this.checkers.fail('convergence', `correct replicas did not converge: ${this.describe()}`)
      } else {
        // Nothing acknowledged is lost and nothing runs twice: every correct replica's application
        // executed exactly the ordered requests the clients saw acknowledged.
        for (const inst of this.correctUp()) {
          if (inst.executor.count !== this.orderedCompleted) {
            this.checkers.fail('durability', `${inst.key} executed ${inst.executor.count} operations, clients acknowledged ${this.orderedCompleted}`)
          }
        }
      }
    }
    const latencies = this.clients.flatMap((c) => c.latencies)
    return {
      seed: this.options.seed,
      violations: this.checkers.violations,
      completedRequests: latencies.length,
      expectedRequests: this.options.clients * this.options.requestsPerClient,
      messages: this.network.sent,
      messagesByType: Object.fromEntries([...this.network.sentByType].sort()),
      bytes: this.network.bytes,
      meanLatency: latencies.length === 0 ? 0 : latencies.reduce((a, b) => a + b, 0) / latencies.length,
      finalTime: this.time,
      viewChanges: this.maxView,
      maxView: this.maxView,
      stateTransfers: this.eventCounts.get('state-transferred') ?? 0,
      viewChangeLatency: this.viewChangeLatency,
      events: Object.fromEntries([...this.eventCounts].sort()),
      maxSizes: Object.fromEntries(this.maxSizes),
      heapSamplesMiB: this.heapSamples,
    }
  }

  private sample(): void {
    for (const inst of this.correctUp()) {
      for (const [k, v] of Object.entries((inst.replica as Replica).sizes())) if (v > (this.maxSizes.get(k) ?? 0)) this.maxSizes.set(k, v)
    }
    if (this.options.sampleHeap === true) {
      // Live data, not garbage awaiting collection, when node runs with --expose-gc.
      ;(globalThis as { gc?: () => void }).gc?.()
      this.heapSamples.push(Math.round(process.memoryUsage().heapUsed / 1048576))
    }
  }

  describe(): string {
    return this.replicas
      .map((n) =>
        n.instances
          .map((i) => {
            if (i.replica === undefined) return `${i.key}:down`
            const s = i.replica.status()
            return `${i.key}:v${s.view}${s.active ? '' : '*'} exec${s.lastExecuted} stable${s.stableCheckpoint} log${s.logEntries}${s.transferring ? ' xfer' : ''}`
          })
          .join(' '),
      )
      .join(' | ')
  }

  /** The replica instances of a node (for tests and scenarios). */
  instances(index: number): readonly ReplicaInstance[] {
    return this.node(index).instances
  }
}
