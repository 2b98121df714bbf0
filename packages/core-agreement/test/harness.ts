/**
 * A tiny scenario harness for core-agreement tests, in the manner of etcd-io/raft's tests: one
 * group of Replicas and a few Clients, a virtual clock the test advances, and an in-memory network
 * the test controls frame by frame (deliver all, deliver some, drop, hold, reorder, isolate).
 * It does for the state machines what a host does: feed frames and ticks in, apply `persist` to a
 * MemoryStorage, then route `messages`. It imports nothing from the simulator (layering).
 */
import { type GeneratedCluster, type Group, type KeyPair, asBytes, asMap, asUint, decode, encode, generateCluster, sha256, toHex } from '@bftrc/crypto'
import {
  Client,
  type ClientConfig,
  type CompletedRequest,
  type ExecutedBatch,
  type BatchContext,
  type ExecutionContext,
  type Executor,
  MemoryStorage,
  type Message,
  type MessageType,
  type ProposalValidator,
  Replica,
  type ReplicaConfig,
  type ReplicaEvent,
  type StatementScope,
  encodeMessage,
  scopeOf,
} from '../src/index.js'

export const GROUP = 'g'

/**
 * The test application: a hash chain over every executed operation and its context. Any
 * divergence in order, content, stamp or sequence number shows in the chain; each result is the
 * chain after the operation. `calls` counts invocations (not part of the state), for exactly-once
 * checks. `padding` bytes make the snapshot large (multi-chunk state transfer).
 */
export class ChainExecutor implements Executor {
  count = 0
  chain: Uint8Array = new Uint8Array(32)
  lastStamp = 0
  calls = 0
  readOnlyCalls = 0
  /** Proposals executed (not part of the state). */
  proposals = 0

  constructor(readonly padding = 0) {}

  execute(op: Uint8Array, ctx: ExecutionContext): Uint8Array {
    if (ctx.stamp < this.lastStamp) throw new Error(`agreed time ran backwards: ${ctx.stamp} < ${this.lastStamp}`)
    this.calls++
    this.count++
    this.lastStamp = ctx.stamp
    this.chain = sha256(encode({ chain: this.chain, op, client: ctx.client, timestamp: ctx.timestamp, seq: ctx.seq, stamp: ctx.stamp }))
    return encode({ count: this.count, chain: this.chain })
  }

  /** Ordered proposals of the upper layer go into the chain too. */
  executeProposal(payload: Uint8Array, ctx: BatchContext): void {
    this.proposals++
    this.chain = sha256(encode({ chain: this.chain, proposal: payload, seq: ctx.seq, stamp: ctx.stamp }))
  }

  executeReadOnly(_op: Uint8Array, _ctx: ExecutionContext): Uint8Array {
    this.readOnlyCalls++
    return encode({ count: this.count, chain: this.chain })
  }

  snapshot(): Uint8Array {
    const pad = new Uint8Array(this.padding)
    // Deterministic, incompressible-looking padding derived from the chain.
    for (let i = 0; i < pad.length; i++) pad[i] = ((this.chain[i % 32] as number) + i) & 0xff
    return encode({ count: this.count, chain: this.chain, lastStamp: this.lastStamp, pad })
  }

  restore(snapshot: Uint8Array): void {
    const m = asMap(decode(snapshot))
    this.count = asUint(m.count, 'count')
    this.chain = asBytes(m.chain, 'chain', 32)
    this.lastStamp = asUint(m.lastStamp, 'lastStamp')
  }
}

export interface Frame {
  /** Send order, unique per harness. */
  readonly n: number
  readonly from: string
  readonly to: string
  readonly message: Message
  readonly bytes: Uint8Array
}

export type FrameFilter = (f: Frame) => boolean

export interface ReplicaNode {
  readonly id: string
  readonly index: number
  replica: Replica | undefined
  storage: MemoryStorage
  executor: ChainExecutor
  /** Every batch this replica reported executed (across restarts). */
  readonly executed: ExecutedBatch[]
  readonly events: ReplicaEvent[]
}

export interface ClientNode {
  readonly id: string
  readonly client: Client
  readonly completed: CompletedRequest[]
}

export interface HarnessOptions {
  readonly f?: number
  /** Members of the group (default 3f+1). */
  readonly n?: number
  /** Let any key act as a client (`peer:<peerId>`), as well as the listed ones. */
  readonly openClients?: boolean
  /** The deployment name (another name, another deployment id, with the same keys). */
  readonly deployment?: string
  /** The application of each replica (default ChainExecutor with `padding`). */
  readonly executor?: () => ChainExecutor
  /** Client ids (listed in the membership). Default: c0..c3. */
  readonly clients?: readonly string[]
  readonly seed?: number
  readonly config?: Partial<ReplicaConfig>
  readonly clientConfig?: Partial<ClientConfig>
  /** Snapshot padding of every executor, bytes. */
  readonly padding?: number
  /** Other groups in the membership (their members are not peers of this group's replicas). */
  readonly otherGroups?: ReadonlyArray<{ readonly name: string; readonly f: number }>
  /** Upper-layer proposals: the validator every replica uses (EVENTS accepts `event:<key>`). */
  readonly proposals?: ProposalValidator
}

/** A test validator: a proposal is valid when it reads `event:<anything>`, and that text is its key. */
export const EVENTS: ProposalValidator = {
  validate(payload: Uint8Array): string | undefined {
    const text = Buffer.from(payload).toString('latin1')
    return text.startsWith('event:') ? text : undefined
  },
}

interface Rule {
  readonly action: 'drop' | 'hold'
  readonly match: FrameFilter
}

/** Frame filters that read like the scenario. */
export const is =
  (...types: MessageType[]): FrameFilter =>
  (f) =>
    types.includes(f.message.t)
export const to =
  (...ids: string[]): FrameFilter =>
  (f) =>
    ids.includes(f.to)
export const from =
  (...ids: string[]): FrameFilter =>
  (f) =>
    ids.includes(f.from)
export const both =
  (...filters: FrameFilter[]): FrameFilter =>
  (f) =>
    filters.every((p) => p(f))
export const not =
  (filter: FrameFilter): FrameFilter =>
  (f) =>
    !filter(f)
export const any: FrameFilter = () => true

export const op = (text: string): Uint8Array => new TextEncoder().encode(text)
export const hex = (b: Uint8Array): string => toHex(b)

export class Harness {
  readonly cluster: GeneratedCluster
  readonly group: Group
  /** The deployment and group every statement of the group names. */
  readonly scope: StatementScope
  readonly ids: readonly string[]
  readonly clientIds: readonly string[]
  readonly config: Partial<ReplicaConfig>
  /** Digest of the genesis checkpoint state (what every fresh replica starts from). */
  readonly genesisDigest: Uint8Array
  now = 0
  /** Frames sent and not yet delivered or dropped, in send order. */
  queue: Frame[] = []
  /** Frames a `hold` rule caught, waiting for `release`. */
  held: Frame[] = []
  /** Every frame ever emitted by a replica or client (also those dropped by a rule). */
  readonly sent: Frame[] = []
  readonly delivered: Frame[] = []
  private readonly nodes = new Map<string, ReplicaNode>()
  private readonly clientNodes = new Map<string, ClientNode>()
  private rules: Rule[] = []
  private nextFrame = 0
  private readonly padding: number
  private readonly newExecutor: () => ChainExecutor
  private readonly validator: ProposalValidator | undefined

  constructor(options: HarnessOptions = {}) {
    const f = options.f ?? 1
    this.clientIds = options.clients ?? ['c0', 'c1', 'c2', 'c3']
    this.config = options.config ?? {}
    this.padding = options.padding ?? 0
    this.newExecutor = options.executor ?? (() => new ChainExecutor(this.padding))
    this.validator = options.proposals
    const seed = sha256(encode({ harness: options.seed ?? 1 }))
    this.cluster = generateCluster({ groups: [{ name: GROUP, f, ...(options.n !== undefined ? { n: options.n } : {}) }, ...(options.otherGroups ?? [])], clients: [...this.clientIds], openClients: options.openClients === true, seed, ...(options.deployment !== undefined ? { deployment: options.deployment } : {}) })
    this.group = this.cluster.membership.group(GROUP) as Group
    this.scope = scopeOf(this.cluster.membership, GROUP)
    this.ids = this.group.members.map((m) => m.id)
    for (const m of this.group.members) {
      const node: ReplicaNode = { id: m.id, index: m.index, replica: undefined, storage: new MemoryStorage(), executor: this.newExecutor(), executed: [], events: [] }
      this.nodes.set(m.id, node)
      this.start(node, false)
    }
    this.genesisDigest = this.replica(0).stateDigest()
    for (const id of this.clientIds) {
      const client = new Client({
        membership: this.cluster.membership,
        group: GROUP,
        id,
        keyPair: this.key(id),
        firstTimestamp: 1,
        now: this.now,
        ...(options.clientConfig !== undefined ? { config: options.clientConfig } : {}),
      })
      this.clientNodes.set(id, { id, client, completed: [] })
    }
  }

  // ---------------------------------------------------------------- nodes

  key(id: string): KeyPair {
    const k = this.cluster.keys.get(id)
    if (k === undefined) throw new Error(`no key for ${id}`)
    return k
  }

  id(i: number | string): string {
    return typeof i === 'number' ? (this.ids[i] as string) : i
  }

  node(i: number | string): ReplicaNode {
    const n = this.nodes.get(this.id(i))
    if (n === undefined) throw new Error(`no replica ${i}`)
    return n
  }

  replica(i: number | string): Replica {
    const r = this.node(i).replica
    if (r === undefined) throw new Error(`replica ${i} is down`)
    return r
  }

  replicas(): Replica[] {
    return [...this.nodes.values()].flatMap((n) => (n.replica === undefined ? [] : [n.replica]))
  }

  client(id = 'c0'): Client {
    return this.clientNode(id).client
  }

  clientNode(id = 'c0'): ClientNode {
    const c = this.clientNodes.get(id)
    if (c === undefined) throw new Error(`no client ${id}`)
    return c
  }

  completed(id = 'c0'): CompletedRequest[] {
    return this.clientNode(id).completed
  }

  /** Events of a replica, optionally of one kind. */
  events<K extends ReplicaEvent['kind']>(i: number | string, kind?: K): Array<Extract<ReplicaEvent, { kind: K }>> {
    return this.node(i).events.filter((e) => kind === undefined || e.kind === kind) as Array<Extract<ReplicaEvent, { kind: K }>>
  }

  private start(node: ReplicaNode, fromDisk: boolean): void {
    node.executor = this.newExecutor()
    const restored = fromDisk ? node.storage.loadSync() : undefined
    node.replica = new Replica({
      membership: this.cluster.membership,
      self: node.id,
      keyPair: this.key(node.id),
      executor: node.executor,
      config: this.config,
      now: this.now,
      ...(this.validator !== undefined ? { proposals: this.validator } : {}),
      ...(restored !== undefined ? { restored } : {}),
    })
    this.flush(node.id)
  }

  /** Stops a replica; its MemoryStorage survives unless `wipe`. Frames to it are lost while it is down. */
  crash(i: number | string, wipe = false): void {
    const node = this.node(i)
    node.replica = undefined
    if (wipe) node.storage = new MemoryStorage()
  }

  /** Starts a crashed replica again from what its storage holds (as a real host would). */
  restart(i: number | string): Replica {
    const node = this.node(i)
    if (node.replica !== undefined) throw new Error(`${node.id} is running`)
    this.start(node, node.storage.loadSync() !== undefined)
    return node.replica as unknown as Replica
  }

  // ---------------------------------------------------------------- clients

  /** The client issues an operation (its request goes into the network queue); returns its timestamp. */
  invoke(clientId: string, operation: string | Uint8Array, options: { readOnly?: boolean } = {}): number {
    const c = this.clientNode(clientId)
    const ts = c.client.invoke(typeof operation === 'string' ? op(operation) : operation, options)
    this.flush(clientId)
    return ts
  }

  /** The upper layer of replica `i` proposes an event (see Replica.propose); returns its answer. */
  propose(i: number | string, payload: string | Uint8Array): boolean {
    const ok = this.replica(i).propose(typeof payload === 'string' ? op(payload) : payload)
    this.flush(this.id(i))
    return ok
  }

  // ---------------------------------------------------------------- effects

  /** Carries out the effects of a replica or client: persist, then send (through the rules). Returns the frames it sent. */
  flush(id: string): Frame[] {
    const out: Frame[] = []
    const node = this.nodes.get(id)
    if (node !== undefined) {
      const replica = node.replica
      if (replica === undefined) return out
      const r = replica.ready()
      node.storage.applySync(r.persist)
      node.executed.push(...r.executed)
      node.events.push(...r.events)
      for (const m of r.messages) out.push(this.emit(id, m.to, m.message))
      return out
    }
    const c = this.clientNodes.get(id)
    if (c === undefined) return out
    const r = c.client.ready()
    c.completed.push(...r.completed)
    for (const m of r.messages) out.push(this.emit(id, m.to, m.message))
    return out
  }

  /** Queues a frame from `from` to `to` as if `from` had sent it (subject to the rules). */
  emit(from: string, to: string, message: Message, bytes = encodeMessage(message)): Frame {
    const frame: Frame = { n: this.nextFrame++, from, to, message, bytes }
    this.sent.push(frame)
    const rule = this.rules.find((r) => r.match(frame))
    if (rule?.action === 'hold') this.held.push(frame)
    else if (rule === undefined) this.queue.push(frame)
    return frame
  }

  /**
   * Feeds a frame straight into `to` (bypassing the queue and the rules), as a Byzantine peer or
   * a test would, and carries out the effects. Returns the frames the recipient sent in response.
   */
  inject(fromId: string, toId: string, message: Message | Uint8Array): Frame[] {
    const bytes = message instanceof Uint8Array ? message : encodeMessage(message)
    return this.stepAndFlush(fromId, toId, bytes)
  }

  private stepAndFlush(fromId: string, toId: string, bytes: Uint8Array): Frame[] {
    const node = this.nodes.get(toId)
    if (node !== undefined) {
      if (node.replica === undefined) return []
      node.replica.step(fromId, bytes)
      return this.flush(toId)
    }
    const c = this.clientNodes.get(toId)
    if (c === undefined) return []
    c.client.step(fromId, bytes)
    return this.flush(toId)
  }

  // ---------------------------------------------------------------- network

  /** Delivers one queued frame (removing it from the queue). */
  deliverFrame(frame: Frame): void {
    const i = this.queue.indexOf(frame)
    if (i >= 0) this.queue.splice(i, 1)
    this.delivered.push(frame)
    this.stepAndFlush(frame.from, frame.to, frame.bytes)
  }

  /**
   * Delivers queued frames matching `filter` in send order, including those the deliveries
   * cause, until none matches. Returns how many were delivered.
   */
  deliverAll(filter: FrameFilter = any, limit = 200_000): number {
    let n = 0
    for (;;) {
      const frame = this.queue.find(filter)
      if (frame === undefined) return n
      if (++n > limit) throw new Error(`deliverAll: more than ${limit} frames (a message storm?)`)
      this.deliverFrame(frame)
    }
  }

  /** Delivers only the frames queued now that match `filter` (not what they cause). */
  deliverQueued(filter: FrameFilter = any): number {
    const frames = this.queue.filter(filter)
    for (const frame of frames) this.deliverFrame(frame)
    return frames.length
  }

  /** Delivers queued frames addressed to any of `ids`, and what they cause for them, until quiet. */
  deliverTo(...ids: string[]): number {
    return this.deliverAll(to(...ids))
  }

  /** Removes queued frames matching `filter` and returns them (lost, unless the test re-sends them). */
  drop(filter: FrameFilter = any): Frame[] {
    const taken = this.queue.filter(filter)
    this.queue = this.queue.filter((f) => !filter(f))
    return taken
  }

  /** Reorders the queue: reverses it, or sorts it by `compare`. */
  reorder(compare?: (a: Frame, b: Frame) => number): void {
    if (compare === undefined) this.queue.reverse()
    else this.queue.sort(compare)
  }

  /** Puts frames (for instance ones dropped or held earlier) back at the end of the queue. */
  requeue(frames: readonly Frame[]): void {
    this.queue.push(...frames)
  }

  /** From now on, frames matching `filter` are lost when sent. Returns a function that lifts the rule. */
  block(filter: FrameFilter): () => void {
    return this.addRule({ action: 'drop', match: filter })
  }

  /** From now on, frames matching `filter` are held back until `release`. */
  hold(filter: FrameFilter): () => void {
    return this.addRule({ action: 'hold', match: filter })
  }

  /** Queues held frames matching `filter` again, in their send order. */
  release(filter: FrameFilter = any): number {
    const frames = this.held.filter(filter)
    this.held = this.held.filter((f) => !filter(f))
    this.queue.push(...frames)
    this.queue.sort((a, b) => a.n - b.n)
    return frames.length
  }

  /** Cuts `id` off from everyone (replicas and clients), both ways; queued frames to or from it are lost. */
  isolate(id: string): () => void {
    const cut: FrameFilter = (f) => f.from === id || f.to === id
    this.drop(cut)
    return this.block(cut)
  }

  /** Lifts every rule (isolation, blocks, holds). Held frames stay held until `release`. */
  heal(): void {
    this.rules = []
  }

  private addRule(rule: Rule): () => void {
    this.rules.push(rule)
    return () => {
      this.rules = this.rules.filter((r) => r !== rule)
    }
  }

  // ---------------------------------------------------------------- time

  /** Advances the clock by `ms` and ticks every replica and client once. Nothing is delivered. */
  tick(ms = 0): void {
    this.now += ms
    for (const node of this.nodes.values()) {
      if (node.replica === undefined) continue
      node.replica.tick(this.now)
      this.flush(node.id)
    }
    for (const c of this.clientNodes.values()) {
      c.client.tick(this.now)
      this.flush(c.id)
    }
  }

  /** Runs for `ms`: tick every `step` ms and deliver everything queued after each tick. */
  run(ms: number, step = 10): void {
    for (let t = 0; t < ms; t += step) {
      this.tick(step)
      this.deliverAll()
    }
  }

  /** Runs in steps until `done()` holds; throws after `maxMs`. */
  runUntil(done: () => boolean, maxMs = 60_000, step = 10): void {
    this.deliverAll()
    for (let t = 0; !done(); t += step) {
      if (t >= maxMs) throw new Error(`runUntil: not done after ${maxMs} ms: ${this.describe()}`)
      this.tick(step)
      this.deliverAll()
    }
  }

  // ---------------------------------------------------------------- observations

  /** Frames of the given types ever sent (optionally matching `filter`). */
  sentOf(type: MessageType, filter: FrameFilter = any): Frame[] {
    return this.sent.filter((f) => f.message.t === type && filter(f))
  }

  /** Counts of frames sent by type. */
  sentByType(filter: FrameFilter = any): Record<string, number> {
    const counts: Record<string, number> = {}
    for (const f of this.sent) if (filter(f)) counts[f.message.t] = (counts[f.message.t] ?? 0) + 1
    return counts
  }

  /** A counter of a replica (0 if never counted). */
  counter(i: number | string, name: string): number {
    return this.replica(i).counters.get(name) ?? 0
  }

  /** True when every running replica executed up to the same sequence number with the same state. */
  converged(): boolean {
    const live = this.replicas()
    const first = live[0]
    if (first === undefined) return true
    const seq = first.status().lastExecuted
    const digest = hex(first.stateDigest())
    return live.every((r) => r.status().lastExecuted === seq && hex(r.stateDigest()) === digest)
  }

  describe(): string {
    return [...this.nodes.values()]
      .map((n) => {
        if (n.replica === undefined) return `${n.id}:down`
        const s = n.replica.status()
        return `${n.id}:v${s.view}${s.active ? '' : '*'} exec${s.lastExecuted} stable${s.stableCheckpoint} log${s.logEntries}${s.transferring ? ' xfer' : ''}`
      })
      .join(' | ')
  }

  /** Everything observable about a replica's protocol state, for "nothing changed" checks. */
  snapshotOf(i: number | string): { status: unknown; sizes: unknown; digest: string } {
    const r = this.replica(i)
    return { status: r.status(), sizes: r.sizes(), digest: hex(r.stateDigest()) }
  }

  /**
   * Sends one read-write operation from `clientId` and delivers everything until it completes
   * (ticking the clock, so the client retransmits, if the first round is not enough).
   */
  commit(clientId: string, operation: string): CompletedRequest {
    const before = this.completed(clientId).length
    this.invoke(clientId, operation)
    this.runUntil(() => this.completed(clientId).length > before)
    return this.completed(clientId)[before] as CompletedRequest
  }
}
