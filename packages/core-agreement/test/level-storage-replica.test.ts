/**
 * End to end with the real Replica: a 4-replica group driven by hand, each replica persisting its
 * Ready.persist into its own LevelStorage (awaited before its messages are delivered). Then every
 * store is closed and reopened and new Replicas start from `await storage.load()`: they must be
 * where they were. A replica that was down meanwhile rejoins and catches up.
 */
import { DecodeError, asBytes, asMap, asUint, decode, encode, generateCluster, sha256 } from '@bftrc/crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { Client, type CompletedRequest, type ExecutionContext, type Executor, Replica, type ReplicaConfig, encodeMessage } from '../src/index.js'
import { LevelStorage } from '../src/storage/level-storage.js'
import { removeDir, tempDir } from './helpers/storage-ops.js'

/** A tiny deterministic application: a hash chain over what it executed, and a count. */
class ChainExecutor implements Executor {
  count = 0
  chain: Uint8Array = new Uint8Array(32)

  execute(op: Uint8Array, ctx: ExecutionContext): Uint8Array {
    this.count++
    this.chain = sha256(encode({ chain: this.chain, op, seq: ctx.seq, client: ctx.client, timestamp: ctx.timestamp }))
    return encode({ count: this.count, chain: this.chain })
  }

  executeReadOnly(): Uint8Array {
    return encode({ count: this.count, chain: this.chain })
  }

  snapshot(): Uint8Array {
    return encode({ count: this.count, chain: this.chain })
  }

  restore(snapshot: Uint8Array): void {
    try {
      const m = asMap(decode(snapshot))
      this.count = asUint(m.count, 'count')
      this.chain = asBytes(m.chain, 'chain', 32)
    } catch (err) {
      if (err instanceof DecodeError) throw new Error(`restore: ${err.message}`)
      throw err
    }
  }
}

const CONFIG: Partial<ReplicaConfig> = { checkpointInterval: 4, logWindow: 8 }
const cluster = generateCluster({ groups: [{ name: 'g', f: 1 }], clients: ['c0'], seed: sha256(encode({ test: 'level-storage-replica' })) })
const group = cluster.membership.group('g')
if (group === undefined) throw new Error('no group')
const ids = group.members.map((m) => m.id)
const root = tempDir('bftrc-replica-')
afterAll(() => removeDir(root))

interface Node {
  readonly id: string
  readonly dir: string
  replica: Replica
  storage: LevelStorage
  executor: ChainExecutor
  up: boolean
}

interface Frame {
  readonly from: string
  readonly to: string
  readonly bytes: Uint8Array
}

class Host {
  constructor(readonly dir: string) {}
  now = 0
  readonly events: string[] = []
  readonly nodes: Node[] = []
  readonly queue: Frame[] = []
  readonly completed: CompletedRequest[] = []
  /** Executed batches whose commit was found on disk when the replica's messages went out. */
  checkedDurable = 0
  client = new Client({ membership: cluster.membership, group: 'g', id: 'c0', keyPair: cluster.keys.get('c0') as never, firstTimestamp: 1 })

  async start(index: number, fresh: boolean): Promise<Node> {
    const id = ids[index] as string
    const dir = `${this.dir}/${index}`
    const storage = await LevelStorage.open(dir)
    const restored = await storage.load()
    expect(restored === undefined).toBe(fresh)
    const executor = new ChainExecutor()
    const replica = new Replica({
      membership: cluster.membership,
      self: id,
      keyPair: cluster.keys.get(id) as never,
      executor,
      config: CONFIG,
      now: this.now,
      ...(restored !== undefined ? { restored } : {}),
    })
    const node: Node = { id, dir, replica, storage, executor, up: true }
    this.nodes[index] = node
    await this.flush(node)
    return node
  }

  async stop(index: number): Promise<void> {
    const node = this.nodes[index] as Node
    node.up = false
    await node.storage.close()
  }

  /** Persist, await, then hand out the messages: the order a real host must keep. */
  async flush(node: Node): Promise<void> {
    while (node.replica.hasReady()) {
      const r = node.replica.ready()
      await node.storage.apply(r.persist)
      for (const e of r.events) this.events.push(`${node.id} ${e.kind}${'seq' in e ? ` ${e.seq}` : ''}${'view' in e ? ` v${e.view}` : ''}`)
      if (r.executed.length > 0) {
        // What a reply acknowledges is on disk before the reply leaves: the slot prepared (with
        // its certificate; the committed flag is written lazily) or a checkpoint above it.
        const disk = await node.storage.load()
        for (const b of r.executed) {
          const onDisk = (disk?.checkpoint.seq ?? -1) >= b.seq || disk?.entries.some((e) => e.seq === b.seq && (e.committed || (e.prepared && e.prepares !== undefined))) === true
          expect(onDisk, `${node.id} executed seq ${b.seq} before it was durable`).toBe(true)
          this.checkedDurable++
        }
      }
      for (const out of r.messages) this.queue.push({ from: node.id, to: out.to, bytes: encodeMessage(out.message) })
    }
  }

  flushClient(): void {
    const r = this.client.ready()
    for (const out of r.messages) this.queue.push({ from: 'c0', to: out.to, bytes: encodeMessage(out.message) })
    this.completed.push(...r.completed)
  }

  /** Delivers frames until none is left (frames to a replica that is down are lost). */
  async deliverAll(): Promise<void> {
    for (let steps = 0; this.queue.length > 0; steps++) {
      if (steps > 100_000) throw new Error('no quiescence')
      const f = this.queue.shift() as Frame
      if (f.to === 'c0') {
        this.client.step(f.from, f.bytes)
        this.flushClient()
        continue
      }
      const node = this.nodes[ids.indexOf(f.to)]
      if (node === undefined || !node.up) continue
      node.replica.step(f.from, f.bytes)
      await this.flush(node)
    }
  }

  async tick(ms: number): Promise<void> {
    this.now += ms
    for (const node of this.nodes) {
      if (!node.up) continue
      node.replica.tick(this.now)
      await this.flush(node)
    }
    this.client.tick(this.now)
    this.flushClient()
    await this.deliverAll()
  }

  /** Issues `n` requests one after the other, each to completion. */
  async requests(n: number, tag: string): Promise<void> {
    for (let i = 0; i < n; i++) {
      const before = this.completed.length
      this.client.invoke(encode({ tag, i }))
      this.flushClient()
      await this.deliverAll()
      for (let t = 0; this.completed.length === before; t++) {
        if (t > 50) throw new Error(`request ${tag}/${i} did not complete`)
        await this.tick(100)
      }
    }
  }

  snapshot(index: number): { digest: string; lastExecuted: number; stable: number; view: number } {
    const r = (this.nodes[index] as Node).replica
    return { digest: Buffer.from(r.stateDigest()).toString('hex'), lastExecuted: r.status().lastExecuted, stable: r.status().stableCheckpoint, view: r.status().view }
  }
}

describe('Replica on LevelStorage', () => {
  it('restarts every replica from disk where it was; a replica that was down rejoins and catches up', async () => {
    const host = new Host(`${root}/restart`)
    for (let i = 0; i < 4; i++) await host.start(i, true)

    // Phase 1: all four replicas, 6 requests (one batch each), a checkpoint at 4.
    await host.requests(6, 'a')
    for (let i = 0; i < 4; i++) expect(host.snapshot(i)).toMatchObject({ lastExecuted: 6, stable: 4 })

    // Phase 2: replica 3 goes down (its disk stays); 6 more requests, checkpoints at 8 and 12.
    // (Time passes first: a committed flag waits for the next write, or a STATUS interval at
    // most, and these stops are clean ones. The simulator's crash scenarios kill at any time.)
    await host.tick(200)
    const down = host.snapshot(3)
    await host.stop(3)
    await host.requests(6, 'b')
    const before = [0, 1, 2].map((i) => host.snapshot(i))
    for (const s of before) expect(s).toMatchObject({ lastExecuted: 12, stable: 12 })
    expect(new Set(before.map((s) => s.digest)).size).toBe(1)

    // Phase 3: every store is closed; every replica restarts from what its disk holds.
    await host.tick(200)
    for (let i = 0; i < 3; i++) await host.stop(i)
    for (let i = 0; i < 4; i++) await host.start(i, false)
    for (let i = 0; i < 3; i++) expect(host.snapshot(i)).toEqual(before[i])
    expect(host.snapshot(3)).toEqual(down)
    expect((host.nodes[0] as Node).executor.count).toBe(12)

    // Phase 4: replica 3 learns it is behind (STATUS), fetches the checkpoint-12 state, and joins in.
    for (let t = 0; host.snapshot(3).lastExecuted < 12; t++) {
      if (t > 100) throw new Error(`replica 3 did not catch up: ${JSON.stringify(host.snapshot(3))}`)
      await host.tick(100)
    }
    expect(host.events).toContain('g/3 state-transferred 12')
    await host.requests(2, 'c')
    const after = [0, 1, 2, 3].map((i) => host.snapshot(i))
    for (const s of after) expect(s.lastExecuted).toBe(14)
    expect(new Set(after.map((s) => s.digest)).size).toBe(1)
    expect(host.completed).toHaveLength(14)

    // The disks agree with the replicas: replica 3's store now holds the transferred checkpoint.
    const disk3 = await (host.nodes[3] as Node).storage.load()
    expect(disk3?.checkpoint.seq).toBe(12)
    expect(disk3?.entries.map((e) => e.seq)).toEqual([13, 14])
    expect(host.checkedDurable).toBeGreaterThan(40)
    for (let i = 0; i < 4; i++) await host.stop(i)
  })

  it('restarts a whole group from disk after a view change, and the group moves on', async () => {
    const host = new Host(`${root}/view-change`)
    for (let i = 0; i < 4; i++) await host.start(i, true)
    await host.requests(3, 'a')

    // The primary goes down: the client's retransmission starts the backups' timers, view 1 follows.
    await host.stop(0)
    await host.requests(3, 'b')
    for (const i of [1, 2, 3]) expect(host.snapshot(i)).toMatchObject({ view: 1, lastExecuted: 6 })

    // The old primary comes back from its disk and learns the new view and what it missed.
    await host.start(0, false)
    for (let t = 0; host.snapshot(0).lastExecuted < 6 || host.snapshot(0).view < 1; t++) {
      if (t > 100) throw new Error(`replica 0 did not catch up: ${JSON.stringify(host.snapshot(0))}`)
      await host.tick(100)
    }

    // Every replica stops and restarts from disk, mid-view 1: same states, and the group goes on.
    const before = [0, 1, 2, 3].map((i) => host.snapshot(i))
    for (let i = 0; i < 4; i++) await host.stop(i)
    for (let i = 0; i < 4; i++) await host.start(i, false)
    for (let i = 0; i < 4; i++) expect(host.snapshot(i)).toEqual(before[i])
    await host.requests(3, 'c')
    const after = [0, 1, 2, 3].map((i) => host.snapshot(i))
    for (const s of after) expect(s.lastExecuted).toBe(9)
    expect(new Set(after.map((s) => s.digest)).size).toBe(1)
    expect(host.completed).toHaveLength(9)
    for (let i = 0; i < 4; i++) await host.stop(i)
  })
})
