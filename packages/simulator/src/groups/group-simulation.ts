/**
 * A deterministic simulation of several replicated groups calling each other (DESIGN section 5):
 * every replica is a client-agreement Voter with its own application instance, on the seeded
 * simulated network, with crashes, restarts, Byzantine behaviours, and checkers for group
 * consistency, validity, exactly-once and convergence.
 */
import { type AppVersion, type Frame as VoterFrame, type GroupApp, type UpgradeRequest, Voter, type VoterConfig, decodeInterGroup, isInterGroupFrame } from '@bftrc/client-agreement'
import { MemoryStorage, decodeMessage, DEFAULT_LIMITS, type Message, scopeOf } from '@bftrc/core-agreement'
import { type GeneratedCluster, type KeyPair, encode, generateCluster, setVerificationCache, sha256 } from '@bftrc/crypto'
import type { Behaviour } from '../adversary.js'
import type { Violation } from '../checkers.js'
import { Checkers } from '../checkers.js'
import { EventQueue } from '../event-queue.js'
import { type NetworkFaults, PERFECT, SimNetwork } from '../network.js'
import { Prng } from '../prng.js'
import type { DriverApp } from './apps.js'

export interface GroupSpec {
  readonly name: string
  readonly f: number
  /** A fresh application instance for one replica (called again on restart). */
  readonly app: () => GroupApp
  /** Replica index → Byzantine behaviour. */
  readonly byzantine?: ReadonlyMap<number, Behaviour>
  /** More than f faulty replicas on purpose (fault-isolation runs): checks on this group are off. */
  readonly overFaulty?: boolean
  /** Versions a replica holds code for, beyond the genesis app (replica index → list; default all). */
  readonly versions?: (index: number) => readonly AppVersion[]
}

export interface GroupScheduledAction {
  readonly at: number
  readonly run: (sim: GroupSimulation) => void
}

export interface GroupSimulationOptions {
  readonly seed: number
  readonly groups: readonly GroupSpec[]
  /** Groups whose DriverApp must finish (all correct replicas) for the run to be done. */
  readonly drivers: readonly string[]
  readonly faults: NetworkFaults
  readonly safetyDuration: number
  readonly livenessTimeout: number
  readonly stableNetwork?: NetworkFaults
  readonly tickInterval?: number
  readonly schedule?: readonly GroupScheduledAction[]
  readonly voterConfig?: Partial<VoterConfig>
  /** Only safety is checked (a group beyond f may stall its callers). */
  readonly expectLiveness?: boolean
  /** Versions every correct replica must run at the end (upgrade scenarios). */
  readonly expectVersions?: Readonly<Record<string, string>>
  /** Upgrade requests the operator submits that must all be refused (counted at the end). */
  readonly expectRefusedUpgrades?: number
}

export interface GroupSimulationResult {
  readonly seed: number
  readonly violations: readonly Violation[]
  readonly calls: number
  readonly expectedCalls: number
  /** Frames from the first call's issue to the last delivery (all types, both groups). */
  readonly messages: number
  readonly interGroupMessages: number
  readonly messagesByType: Readonly<Record<string, number>>
  /** Mean virtual ms from a call's issue to its delivery (first correct caller replica). */
  readonly meanCallLatency: number
  readonly finalTime: number
  readonly viewChanges: number
  readonly stateTransfers: number
  /** Replicas (correct ones) that switched version, and that halted for lack of code. */
  readonly upgrades: number
  readonly halts: number
  readonly refusedUpgradeSubmissions: number
}

interface Node {
  readonly id: string
  readonly group: string
  readonly index: number
  voter: Voter | undefined
  app: GroupApp
  storage: MemoryStorage
  readonly behaviour: Behaviour | undefined
  readonly correct: boolean
}

export class GroupSimulation {
  time = 0
  readonly queue = new EventQueue()
  readonly network: SimNetwork
  readonly prng: Prng
  readonly cluster: GeneratedCluster
  readonly nodes: Node[] = []
  private readonly checkers = new Map<string, Checkers>()
  private readonly violations: Violation[] = []
  private readonly issuedAt = new Map<string, number>()
  private readonly latencies: number[] = []
  private readonly delivered = new Map<string, Map<string, string>>()
  private readonly executedCalls = new Map<string, Set<string>>()
  private readonly correctResults = new Map<string, string>()
  private measuring = false
  private measuredFrames = 0
  private measuredInterGroup = 0
  private readonly measuredByType = new Map<string, number>()
  private lastDeliveryFrames = 0
  private lastDeliveryInterGroup = 0
  private lastDeliveryByType = new Map<string, number>()
  private phase: 'safety' | 'liveness' = 'safety'
  private maxView = 0
  private transfers = 0
  /** group → seq at which its first correct replica upgraded, per target version. */
  private readonly upgradedAt = new Map<string, number>()
  upgrades = 0
  halts = 0
  readonly upgradeErrors: string[] = []

  constructor(readonly options: GroupSimulationOptions) {
    setVerificationCache(200_000)
    this.prng = new Prng(options.seed)
    this.cluster = generateCluster({
      groups: options.groups.map((g) => ({ name: g.name, f: g.f })),
      authorities: { count: 3, threshold: 2 },
      seed: sha256(encode({ seed: options.seed, groups: true })),
    })
    this.network = new SimNetwork(this.queue, this.prng.fork(), () => this.time, (from, to, bytes) => this.deliver(from, to, bytes))
    this.network.faults = options.faults
    for (const g of options.groups) {
      this.checkers.set(g.name, new Checkers(() => this.time))
      const group = this.cluster.membership.group(g.name)
      if (group === undefined) throw new Error(`no group ${g.name}`)
      for (const m of group.members) {
        const behaviour = g.byzantine?.get(m.index)
        const node: Node = { id: m.id, group: g.name, index: m.index, voter: undefined, app: g.app(), storage: new MemoryStorage(), behaviour, correct: behaviour === undefined && g.overFaulty !== true }
        this.nodes.push(node)
        this.start(node, false)
      }
    }
  }

  private spec(group: string): GroupSpec {
    return this.options.groups.find((g) => g.name === group) as GroupSpec
  }

  private start(node: Node, fromDisk: boolean): void {
    node.app = this.spec(node.group).app()
    const restored = fromDisk ? node.storage.loadSync() : undefined
    node.voter = new Voter({
      membership: this.cluster.membership,
      self: node.id,
      keyPair: this.cluster.keys.get(node.id) as KeyPair,
      app: node.app,
      versions: this.spec(node.group).versions?.(node.index) ?? [],
      now: this.time,
      ...(this.options.voterConfig !== undefined ? { config: this.options.voterConfig } : {}),
      ...(restored !== undefined ? { restored } : {}),
    })
    this.checkers.get(node.group)?.onRewind(node.id)
    this.executedCalls.delete(node.id)
    this.delivered.delete(node.id)
    this.flush(node)
  }

  node(id: string): Node {
    const n = this.nodes.find((x) => x.id === id)
    if (n === undefined) throw new Error(`no node ${id}`)
    return n
  }

  crash(id: string, wipe = false): void {
    const n = this.node(id)
    n.voter = undefined
    if (wipe) n.storage = new MemoryStorage()
  }

  restart(id: string): void {
    const n = this.node(id)
    if (n.voter !== undefined) return
    this.start(n, n.storage.loadSync() !== undefined)
  }

  // ---------------------------------------------------------------- host loop

  private deliver(from: string, to: string, bytes: Uint8Array): void {
    const node = this.nodes.find((n) => n.id === to)
    if (node?.voter === undefined) return
    try {
      node.voter.step(from, bytes, this.time)
    } catch (err) {
      this.violate(node.correct ? 'crash' : 'crash', `${node.id} threw: ${(err as Error).stack}`)
      throw err
    }
    this.flush(node)
  }

  private violate(invariant: Violation['invariant'], detail: string): void {
    if (this.violations.length < 50) this.violations.push({ invariant, detail, at: this.time })
  }

  private flush(node: Node): void {
    const voter = node.voter
    if (voter === undefined) return
    const r = voter.ready()
    node.storage.applySync(r.persist)
    const checker = this.checkers.get(node.group) as Checkers
    if (node.correct) for (const b of r.executed) checker.onExecuted(node.id, b)
    for (const e of r.events) {
      if (e.kind === 'state-transferred') {
        this.transfers++
        checker.onRewind(node.id)
      }
      if (e.kind === 'new-view' && e.view > this.maxView) this.maxView = e.view
    }
    for (const e of r.effects) this.onEffect(node, e)
    for (const frame of r.frames) this.send(node, frame)
  }

  private send(node: Node, frame: VoterFrame): void {
    if (this.measuring) {
      this.measuredFrames++
      if (frame.type === 'request-share' || frame.type === 'reply-share') this.measuredInterGroup++
      this.measuredByType.set(frame.type, (this.measuredByType.get(frame.type) ?? 0) + 1)
    }
    if (node.behaviour === undefined) {
      this.network.send(node.id, frame.to, frame.bytes, frame.type)
      return
    }
    let message: Message | undefined
    if (!isInterGroupFrame(frame.bytes)) {
      try {
        message = decodeMessage(frame.bytes, DEFAULT_LIMITS)
      } catch {
        message = undefined
      }
    }
    const ctx = {
      self: node.id,
      group: node.group,
      scope: scopeOf(this.cluster.membership, node.group),
      key: this.cluster.keys.get(node.id) as KeyPair,
      prng: this.prng,
      peers: this.nodes.map((n) => n.id),
      to: frame.to,
      message,
      bytes: frame.bytes,
    }
    for (const out of node.behaviour.outbound(ctx)) this.network.send(node.id, out.to, out.bytes, out.type ?? frame.type)
  }

  private onEffect(node: Node, e: ReturnType<Voter['ready']>['effects'][number]): void {
    if (!node.correct) return
    switch (e.kind) {
      case 'send-call': {
        const key = `${node.group}>${e.callee}:${e.k}`
        if (!this.issuedAt.has(key)) this.issuedAt.set(key, this.time)
        this.measuring = true
        return
      }
      case 'call-executed': {
        let set = this.executedCalls.get(node.id)
        if (set === undefined) {
          set = new Set()
          this.executedCalls.set(node.id, set)
        }
        const key = `${e.caller}:${e.k}`
        if (set.has(key)) this.violate('exactly-once', `${node.id} executed call ${key} twice`)
        set.add(key)
        return
      }
      case 'send-reply': {
        const key = `${e.caller}>${node.group}:${e.k}`
        const d = Buffer.from(sha256(e.result)).toString('hex')
        const known = this.correctResults.get(key)
        if (known === undefined) this.correctResults.set(key, d)
        else if (known !== d) this.violate('agreement', `correct replicas of ${node.group} computed different results for ${key}`)
        return
      }
      case 'call-delivered': {
        const key = `${node.group}>${e.callee}:${e.k}`
        const d = Buffer.from(sha256(e.result)).toString('hex')
        let mine = this.delivered.get(node.id)
        if (mine === undefined) {
          mine = new Map()
          this.delivered.set(node.id, mine)
        }
        if (mine.has(key)) this.violate('exactly-once', `${node.id} delivered ${key} twice`)
        mine.set(key, d)
        // Group consistency: every correct caller replica delivers the same result.
        for (const [other, theirs] of this.delivered) {
          const t = theirs.get(key)
          if (other !== node.id && t !== undefined && t !== d) this.violate('agreement', `${node.id} and ${other} delivered different results for ${key}`)
        }
        // Validity: a correct callee group's result (unless it has more than f faults).
        const calleeSpec = this.spec(e.callee)
        const expected = this.correctResults.get(key)
        if (calleeSpec.overFaulty !== true && expected !== undefined && expected !== d) this.violate('validity', `${node.id} delivered a result for ${key} that no correct ${e.callee} replica computed`)
        if (calleeSpec.overFaulty !== true && expected === undefined) this.violate('validity', `${node.id} delivered ${key} before any correct ${e.callee} replica answered it`)
        const first = [...this.delivered.values()].filter((m) => m.has(key)).length === 1
        // Figures count the drivers' calls (a relay's own calls are part of their cost).
        if (first && this.options.drivers.includes(node.group)) {
          const at = this.issuedAt.get(key)
          if (at !== undefined) this.latencies.push(this.time - at)
          this.lastDeliveryFrames = this.measuredFrames
          this.lastDeliveryInterGroup = this.measuredInterGroup
          this.lastDeliveryByType = new Map(this.measuredByType)
        }
        return
      }
      case 'upgraded': {
        // Every correct replica switches at the same point of the order.
        this.upgrades++
        const key = `${node.group}:${e.to}`
        const at = this.upgradedAt.get(key)
        if (at === undefined) this.upgradedAt.set(key, e.seq)
        else if (at !== e.seq) this.violate('agreement', `${node.id} upgraded to ${e.to} at seq ${e.seq}, another correct replica at ${at}`)
        return
      }
      case 'halted':
        this.halts++
        return
      case 'rejected':
        return
    }
  }

  /** The operator's move: hand an upgrade request to every running replica of the group. */
  submitUpgrade(group: string, request: UpgradeRequest): void {
    for (const n of this.nodes) {
      if (n.group !== group || n.voter === undefined) continue
      try {
        n.voter.submitUpgrade(request)
      } catch (err) {
        this.upgradeErrors.push(`${n.id}: ${(err as Error).message}`)
      }
      this.flush(n)
    }
  }

  /** Installs a version's code on one replica (the remedy for a replica that halted). */
  installVersion(id: string, version: AppVersion): void {
    const n = this.node(id)
    n.voter?.installVersion(version)
    this.flush(n)
  }

  private tickAll(): void {
    for (const node of this.nodes) {
      if (node.voter === undefined) continue
      node.voter.tick(this.time)
      this.flush(node)
    }
    this.queue.push(this.time + (this.options.tickInterval ?? 10), () => this.tickAll())
  }

  private correctUp(group?: string): Node[] {
    return this.nodes.filter((n) => n.correct && n.voter !== undefined && (group === undefined || n.group === group))
  }

  private driversDone(): boolean {
    return this.options.drivers.every((g) => {
      const live = this.correctUp(g)
      return live.length > 0 && live.every((n) => (n.voter?.app as DriverApp | undefined)?.done === true)
    })
  }

  private converged(): boolean {
    for (const g of this.options.groups) {
      if (g.overFaulty === true) continue
      const live = this.correctUp(g.name)
      if (live.length === 0) continue
      const exec = new Set(live.map((n) => n.voter?.replica.status().lastExecuted))
      if (exec.size !== 1) return false
      const digests = new Set(live.map((n) => Buffer.from((n.voter as Voter).stateDigest()).toString('hex')))
      if (digests.size !== 1) return false
    }
    return true
  }

  private startLiveness(): void {
    this.phase = 'liveness'
    this.network.faults = this.options.stableNetwork ?? PERFECT
    this.network.heal()
    for (const n of this.nodes) if (n.correct && n.voter === undefined) this.restart(n.id)
  }

  run(): GroupSimulationResult {
    for (const a of this.options.schedule ?? []) this.queue.push(a.at, () => a.run(this))
    this.queue.push(0, () => this.tickAll())
    this.queue.push(this.options.safetyDuration, () => this.startLiveness())
    const deadline = this.options.safetyDuration + this.options.livenessTimeout
    try {
      for (;;) {
        const at = this.queue.peekTime()
        if (at === undefined || at > deadline) break
        const e = this.queue.pop()
        if (e === undefined) break
        this.time = e.at
        e.run()
        if (this.driversDone() && this.converged()) {
          if (this.phase === 'liveness') break
          if ((this.options.schedule ?? []).every((s) => s.at <= this.time)) this.startLiveness()
        }
      }
    } catch (err) {
      if (this.violations.length === 0) this.violate('crash', (err as Error).stack ?? String(err))
    }
    for (const c of this.checkers.values()) for (const v of c.violations) this.violations.push(v)
    if (this.options.expectLiveness !== false && this.violations.length === 0) {
      if (!this.driversDone()) this.violate('liveness', `drivers not done by ${deadline} ms: ${this.describe()}`)
      else if (!this.converged()) this.violate('convergence', `groups did not converge: ${this.describe()}`)
      for (const [group, version] of Object.entries(this.options.expectVersions ?? {})) {
        for (const n of this.correctUp(group)) if (n.voter?.version !== version) this.violate('convergence', `${n.id} runs version ${n.voter?.version}, expected ${version}`)
      }
      if (this.options.expectRefusedUpgrades !== undefined) {
        const refusedRequests = new Set(this.upgradeErrors.map((e) => e.replace(/^[^:]*: /, ''))).size
        if (refusedRequests < this.options.expectRefusedUpgrades) this.violate('validity', `only ${refusedRequests} invalid upgrade requests were refused: ${this.upgradeErrors.join('; ')}`)
      }
    }
    const expectedCalls = this.options.drivers.reduce((sum, g) => sum + ((this.correctUp(g)[0]?.voter?.app as DriverApp | undefined)?.calls ?? 0), 0)
    return {
      seed: this.options.seed,
      violations: this.violations,
      calls: this.latencies.length,
      expectedCalls,
      messages: this.lastDeliveryFrames,
      interGroupMessages: this.lastDeliveryInterGroup,
      messagesByType: Object.fromEntries([...this.lastDeliveryByType].sort()),
      meanCallLatency: this.latencies.length === 0 ? 0 : this.latencies.reduce((a, b) => a + b, 0) / this.latencies.length,
      finalTime: this.time,
      viewChanges: this.maxView,
      stateTransfers: this.transfers,
      upgrades: this.upgrades,
      halts: this.halts,
      refusedUpgradeSubmissions: this.upgradeErrors.length,
    }
  }

  describe(): string {
    return this.nodes
      .map((n) => {
        if (n.voter === undefined) return `${n.id}:down`
        const s = n.voter.replica.status()
        const app = n.voter.app as Partial<DriverApp>
        return `${n.id}:v${s.view}${s.active ? '' : '*'} exec${s.lastExecuted} stable${s.stableCheckpoint}${app.delivered !== undefined ? ` delivered${app.delivered}` : ''}`
      })
      .join(' | ')
  }

  /** Decodes an inter-group frame for adversaries that rewrite shares. */
  static decodeShare(bytes: Uint8Array) {
    return decodeInterGroup(bytes, 64 * 1024)
  }
}
