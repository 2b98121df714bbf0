/**
 * The real-time hosts (`src/host/`): VoterHost with the host clock over an in-process transport,
 * persist-before-send with a storage the test holds back, a restart from LevelStorage, and
 * ClientHost for plain clients.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryStorage, type PersistOp, type PersistedState, type Storage, DEFAULT_LIMITS, decodeMessage, encodeMessage } from '@bftrc/core-agreement'
import { type Transport, asMap, asUint, decode, encode, generateCluster, sha256 } from '@bftrc/crypto'
import { afterAll, describe, expect, it } from 'vitest'
import type { AppContext, CallContext, CallRef, GroupApp } from '../src/index.js'
import { Voter } from '../src/index.js'
import { ClientHost, ClientQueueFullError, ClientTimeoutError, VoterHost, openVoterHost } from '../src/host/index.js'

/** An in-process network: frames are delivered on a later turn, in order per pair. */
class Hub {
  readonly nodes = new Map<string, LoopTransport>()
  sent = 0
}

class LoopTransport implements Transport {
  handler: ((from: string, bytes: Uint8Array) => void) | undefined
  started = false
  readonly sent: Array<{ to: string; bytes: Uint8Array }> = []
  constructor(
    readonly hub: Hub,
    readonly id: string,
  ) {
    hub.nodes.set(id, this)
  }
  async start(): Promise<void> {
    this.started = true
  }
  async stop(): Promise<void> {
    this.started = false
    this.hub.nodes.delete(this.id)
  }
  send(to: string, bytes: Uint8Array): boolean {
    if (!this.started) return false
    this.sent.push({ to, bytes })
    this.hub.sent++
    setImmediate(() => {
      const peer = this.hub.nodes.get(to)
      if (peer?.started === true) peer.handler?.(this.id, bytes)
    })
    return true
  }
  onMessage(handler: (from: string, bytes: Uint8Array) => void): void {
    this.handler = handler
  }
}

/** A storage whose writes complete only when the test opens the gate. */
class GatedStorage implements Storage {
  readonly inner = new MemoryStorage()
  open = true
  private waiting: Array<() => void> = []
  applied = 0
  async load(): Promise<PersistedState | undefined> {
    return this.inner.load()
  }
  apply(ops: readonly PersistOp[]): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.inner.applySync(ops)
        this.applied++
        resolve()
      }
      if (this.open) done()
      else this.waiting.push(done)
    })
  }
  release(): void {
    this.open = true
    const w = this.waiting
    this.waiting = []
    for (const f of w) f()
  }
  async close(): Promise<void> {}
}

class CounterApp implements GroupApp {
  count = 0
  onCall(_ctx: CallContext, _caller: string, op: Uint8Array): Uint8Array {
    this.count++
    return encode({ count: this.count, op })
  }
  onRequest(_ctx: AppContext, _client: string, op: Uint8Array): Uint8Array {
    this.count++
    return encode({ count: this.count, op })
  }
  snapshot(): Uint8Array {
    return encode({ count: this.count })
  }
  restore(state: Uint8Array): void {
    this.count = asUint(asMap(decode(state)).count, 'count')
  }
}

/** Calls `server` `calls` times, one at a time, asynchronously. */
class DriverApp implements GroupApp {
  delivered = 0
  constructor(readonly calls: number) {}
  init(ctx: AppContext): void {
    ctx.call('server', encode({ i: 1 }))
  }
  onReply(ctx: AppContext, _call: CallRef, _result: Uint8Array): void {
    this.delivered++
    if (this.delivered < this.calls) ctx.call('server', encode({ i: this.delivered + 1 }))
  }
  snapshot(): Uint8Array {
    return encode({ delivered: this.delivered })
  }
  restore(state: Uint8Array): void {
    this.delivered = asUint(asMap(decode(state)).delivered, 'delivered')
  }
}

const cluster = generateCluster({ groups: [{ name: 'server', f: 1 }, { name: 'client', f: 1 }], clients: ['alice'], seed: sha256(encode({ test: 'node-host' })) })
const dirs: string[] = []
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

async function until(what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('VoterHost', () => {
  it('sends nothing of a Ready before its persist ops are durable', async () => {
    const hub = new Hub()
    const storage = new GatedStorage()
    const transport = new LoopTransport(hub, 'server/0')
    const voter = new Voter({ membership: cluster.membership, self: 'server/0', keyPair: cluster.keys.get('server/0')!, app: new CounterApp(), now: Date.now() })
    const host = new VoterHost({ voter, storage, transport, tickIntervalMs: 1_000_000 })
    await host.start()
    expect(storage.applied).toBeGreaterThanOrEqual(1) // the genesis checkpoint (and the group's first batch)
    // A plain client's request makes the primary assign a sequence number: a pre-prepare that
    // must be on disk before it is sent.
    const alice = new ClientHost({ membership: cluster.membership, id: 'alice', keyPair: cluster.keys.get('alice')!, transport: new LoopTransport(hub, 'alice'), groups: ['server'] })
    await alice.start()
    await new Promise((r) => setTimeout(r, 50))
    storage.open = false
    const sentBefore = transport.sent.length
    const appliedBefore = storage.applied
    const pending = alice.invoke('server', encode({ hello: 1 }))
    await until('the request to reach the primary', () => host.status().counters.framesIn > 0)
    await new Promise((r) => setTimeout(r, 50))
    expect(transport.sent.slice(sentBefore)).toEqual([])
    expect(host.status().pendingWrites).toBeGreaterThan(0)
    storage.release()
    await until('pre-prepares to leave', () => transport.sent.length >= sentBefore + 3)
    expect(transport.sent.slice(sentBefore, sentBefore + 3).map((f) => f.to).sort()).toEqual(['server/1', 'server/2', 'server/3'])
    expect(storage.applied).toBeGreaterThan(appliedBefore)
    await host.stop()
    await alice.stop()
    void pending.catch(() => undefined)
  })

  it('bounds the bytes of the frames it queues while the disk is behind, and drops the rest', async () => {
    const hub = new Hub()
    const storage = new GatedStorage()
    const voter = new Voter({ membership: cluster.membership, self: 'server/0', keyPair: cluster.keys.get('server/0')!, app: new CounterApp(), now: Date.now() })
    const host = new VoterHost({ voter, storage, transport: new LoopTransport(hub, 'server/0'), tickIntervalMs: 1_000_000, maxPendingWrites: 1, maxQueuedInputBytes: 4_000 })
    await host.start()
    const alice = new ClientHost({ membership: cluster.membership, id: 'alice', keyPair: cluster.keys.get('alice')!, transport: new LoopTransport(hub, 'alice'), groups: ['server'] })
    await alice.start()
    const peer = new LoopTransport(hub, 'server/2')
    await peer.start()
    try {
      // A request makes the primary write a pre-prepare; the gate holds it, so inputs queue.
      storage.open = false
      void alice.invoke('server', encode({ hello: 1 })).catch(() => undefined)
      await until('a write to wait for the disk', () => host.status().pendingWrites === 1)
      for (let i = 0; i < 10; i++) peer.send('server/0', new Uint8Array(1_000).fill(i))
      await until('the frames to arrive', () => host.status().queuedInputs + host.status().counters.framesInDropped >= 10)
      const held = host.status()
      expect(held.queuedInputs).toBe(4)
      expect(held.queuedInputBytes).toBe(4_000)
      expect(held.counters.framesInDropped).toBe(6)
      storage.release()
      await until('the queue to drain', () => host.status().queuedInputs === 0)
      expect(host.status().queuedInputBytes).toBe(0)
    } finally {
      await alice.stop()
      await host.stop()
    }
  })

  it('ticks only once tickAfter resolves, and steps inbound frames meanwhile', async () => {
    const hub = new Hub()
    let release: () => void = () => undefined
    const gate = new Promise<void>((r) => (release = r))
    const voter = new Voter({ membership: cluster.membership, self: 'server/1', keyPair: cluster.keys.get('server/1')!, app: new CounterApp(), now: Date.now() })
    const host = new VoterHost({ voter, storage: new MemoryStorage(), transport: new LoopTransport(hub, 'server/1'), tickIntervalMs: 5, tickAfter: () => gate })
    await host.start()
    await new Promise((r) => setTimeout(r, 60))
    expect(host.ticking).toBe(false)
    expect(host.status().counters.ticks).toBe(0)
    const peer = new LoopTransport(hub, 'server/2')
    await peer.start()
    peer.send('server/1', new Uint8Array([1, 2, 3]))
    await until('the frame to be stepped', () => host.status().counters.framesIn === 1)
    release()
    await until('ticks', () => host.status().counters.ticks > 2)
    expect(host.ticking).toBe(true)
    await host.stop()
    expect(host.running).toBe(false)
  })

  it('runs two groups of four in real time: calls complete and the groups agree', async () => {
    const hub = new Hub()
    const hosts: VoterHost[] = []
    const apps = new Map<string, GroupApp>()
    for (const g of ['server', 'client']) {
      for (let i = 0; i < 4; i++) {
        const id = `${g}/${i}`
        const app = g === 'server' ? new CounterApp() : new DriverApp(20)
        apps.set(id, app)
        const voter = new Voter({ membership: cluster.membership, self: id, keyPair: cluster.keys.get(id)!, app, now: Date.now() })
        hosts.push(new VoterHost({ voter, storage: new MemoryStorage(), transport: new LoopTransport(hub, id) }))
      }
    }
    await Promise.all(hosts.map((h) => h.start()))
    try {
      await until('20 calls delivered at every client replica', () => [0, 1, 2, 3].every((i) => (apps.get(`client/${i}`) as DriverApp).delivered === 20))
      await until('agreement', () => {
        for (const g of ['server', 'client']) {
          const s = hosts.filter((h) => h.voter.group.name === g).map((h) => h.status())
          if (new Set(s.map((x) => `${x.lastExecuted}:${x.stateDigest}`)).size !== 1) return false
        }
        return true
      })
      const st = hosts[0]!.status()
      expect(st.counters.callsExecuted).toBe(20)
      expect(st.counters.framesOut).toBeGreaterThan(0)
      expect(st.stateDigest).toMatch(/^[0-9a-f]{64}$/)
      expect((apps.get('server/0') as CounterApp).count).toBe(20)
    } finally {
      await Promise.all(hosts.map((h) => h.stop()))
    }
  })

  it('restarts a replica from its LevelStorage folder where it was', async () => {
    const root = mkdtempSync(join(tmpdir(), 'bftrc-node-host-'))
    dirs.push(root)
    const hub = new Hub()
    const open = (i: number) =>
      openVoterHost({ membership: cluster.membership, self: `server/${i}`, keyPair: cluster.keys.get(`server/${i}`)!, app: new CounterApp(), dataDir: join(root, `${i}`), transport: new LoopTransport(hub, `server/${i}`) })
    let opened = await Promise.all([0, 1, 2, 3].map(open))
    expect(opened.every((o) => !o.restored)).toBe(true)
    await Promise.all(opened.map((o) => o.host.start()))
    const alice = new ClientHost({ membership: cluster.membership, id: 'alice', keyPair: cluster.keys.get('alice')!, transport: new LoopTransport(hub, 'alice'), groups: ['server'] })
    await alice.start()
    try {
      for (let i = 1; i <= 5; i++) {
        const r = await alice.invoke('server', encode({ i }), { timeoutMs: 10_000 })
        expect(asUint(asMap(decode(r.result)).count, 'count')).toBe(i)
      }
      await until('all four executed', () => opened.every((o) => o.host.status().lastExecuted === opened[0]!.host.status().lastExecuted))
      const before = opened.map((o) => o.host.status())
      await Promise.all(opened.map((o) => o.host.stop()))
      opened = await Promise.all([0, 1, 2, 3].map(open))
      expect(opened.every((o) => o.restored)).toBe(true)
      const after = opened.map((o) => o.host.status())
      expect(after.map((s) => s.stateDigest)).toEqual(before.map((s) => s.stateDigest))
      expect(after.map((s) => s.lastExecuted)).toEqual(before.map((s) => s.lastExecuted))
      await Promise.all(opened.map((o) => o.host.start()))
      const r = await alice.invoke('server', encode({ i: 6 }), { timeoutMs: 10_000 })
      expect(asUint(asMap(decode(r.result)).count, 'count')).toBe(6)
    } finally {
      await alice.stop()
      await Promise.all(opened.map((o) => o.host.stop()))
    }
  })
})

/** Four stand-in replicas of `server` that answer each request only when the test says so. */
class HeldReplicas {
  readonly held: Array<{ timestamp: number; op: Uint8Array }> = []
  /** Timestamps seen: a retransmission still in flight after its answer is not held again. */
  private readonly seen = new Set<number>()
  private readonly nodes: LoopTransport[]
  constructor(hub: Hub) {
    this.nodes = [0, 1, 2, 3].map((i) => new LoopTransport(hub, `server/${i}`))
    this.nodes[0]!.onMessage((_from, bytes) => {
      const m = decodeMessage(bytes, DEFAULT_LIMITS)
      if (m.t !== 'request' || this.seen.has(m.request.timestamp)) return
      this.seen.add(m.request.timestamp)
      this.held.push({ timestamp: m.request.timestamp, op: m.request.op })
    })
  }
  async start(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.start()))
  }
  /** Every replica replies to the oldest held request with the operation echoed. */
  answerOldest(): void {
    const h = this.held.shift()
    if (h === undefined) throw new Error('no request held')
    for (const n of this.nodes) n.send('alice', encodeMessage({ t: 'reply', view: 0, timestamp: h.timestamp, readOnly: false, resultDigest: sha256(h.op), result: h.op }))
  }
}

describe('ClientHost', () => {
  it('bounds its line, drops unsent invocations that time out, counts late answers, ticks only while busy', async () => {
    const hub = new Hub()
    const replicas = new HeldReplicas(hub)
    await replicas.start()
    const alice = new ClientHost({ membership: cluster.membership, id: 'alice', keyPair: cluster.keys.get('alice')!, transport: new LoopTransport(hub, 'alice'), groups: ['server'], maxQueued: 3 })
    await alice.start()
    try {
      expect(alice.ticking).toBe(false) // idle: no timer
      const first = alice.invoke('server', encode({ n: 1 }), { timeoutMs: 100 })
      expect(alice.ticking).toBe(true)
      const second = alice.invoke('server', encode({ n: 2 }), { timeoutMs: 100 })
      const third = alice.invoke('server', encode({ n: 3 }))
      third.catch(() => undefined) // awaited below; stop() rejects it if the test fails first
      expect(alice.queued('server')).toBe(3)
      await expect(alice.invoke('server', encode({ n: 4 }))).rejects.toBeInstanceOf(ClientQueueFullError)
      expect(alice.counters.queueFull).toBe(1)
      // Both time out: the first was sent and stays outstanding, the second never left the line.
      await expect(first).rejects.toBeInstanceOf(ClientTimeoutError)
      await expect(second).rejects.toBeInstanceOf(ClientTimeoutError)
      expect(alice.queued('server')).toBe(2)
      expect(alice.counters).toMatchObject({ timedOutSent: 1, timedOutUnsent: 1 })
      await until('the first request to reach the replicas', () => replicas.held.length === 1)
      await until('a retransmission of it', () => (alice.clientCounters().retransmit ?? 0) >= 1)
      // The late answer to the first frees the Client; the third (not the second) goes out next.
      replicas.answerOldest()
      await until('the third request to be sent', () => replicas.held.length === 1 && alice.queued('server') === 1)
      expect(alice.counters.lateCompletions).toBe(1)
      expect(decode(replicas.held[0]!.op)).toEqual({ n: 3 })
      replicas.answerOldest()
      expect(decode((await third).result)).toEqual({ n: 3 })
      expect(alice.queued('server')).toBe(0)
      await until('the tick timer to stop', () => !alice.ticking)
    } finally {
      await alice.stop()
    }
  })
})
