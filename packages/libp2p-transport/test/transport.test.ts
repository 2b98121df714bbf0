import { createConnection } from 'node:net'
import { Membership, generateKeyPair, peerIdOf, toHex } from '@bftrc/crypto'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import {
  TransportConfigError,
  TransportStateError,
  TransportTimeoutError,
  createLibp2pTransport,
  encodeFrame,
  encodeFrames,
  openClientId,
} from '../src/index.js'
import { type TestCluster, inbox, node, rawNode, rawStream, readU32, stopAfterEach, testCluster, u32, waitFor } from './helpers.js'

const SEED = new Uint8Array(32).fill(7)
const REPLICAS = ['kv/0', 'kv/1', 'kv/2', 'kv/3']

const { track, start } = stopAfterEach()

function addrOf(cluster: TestCluster, id: string): string {
  return cluster.membership.member(id)!.addrs[0]!
}

describe('libp2p transport on 127.0.0.1', () => {
  it('uses the member key as identity and listens on the configured address', async () => {
    const c = await testCluster({ groups: [{ name: 'kv', f: 1 }], seed: SEED })
    const t = await start(c, 'kv/2')
    const m = c.membership.member('kv/2')!
    expect(t.id).toBe('kv/2')
    expect(t.role).toBe('replica')
    expect(t.peerId).toBe(m.peerId)
    expect(t.listenAddrs).toEqual([`${m.addrs[0]}/p2p/${m.peerId}`])
    expect(t.peerIds.sort()).toEqual(REPLICAS)
  }, 15_000)

  it('delivers every frame in order per pair, all to all, and counts frames and bytes', async () => {
    const c = await testCluster({ groups: [{ name: 'kv', f: 1 }], seed: SEED })
    const nodes = await Promise.all(REPLICAS.map((id) => start(c, id)))
    const seen = new Map<string, number[]>()
    for (const t of nodes) t.onMessage((from, bytes) => {
      const key = `${from}->${t.id}`
      const list = seen.get(key) ?? []
      list.push(readU32(bytes))
      seen.set(key, list)
    })
    const N = 3000
    // Sent in several turns, some before the streams exist: queued frames go out in order too.
    for (let round = 0; round < 3; round++) {
      for (let i = (round * N) / 3; i < ((round + 1) * N) / 3; i++) {
        for (const a of nodes) for (const b of nodes) if (a !== b) expect(a.send(b.id, u32(i))).toBe(true)
      }
      await new Promise((r) => setTimeout(r, 5))
    }
    await waitFor(() => [...seen.values()].reduce((n, l) => n + l.length, 0) === 12 * N, 15_000, 'all frames')
    const inOrder = Array.from({ length: N }, (_, i) => i)
    for (const a of REPLICAS) for (const b of REPLICAS) if (a !== b) expect(seen.get(`${a}->${b}`)).toEqual(inOrder)
    for (const t of nodes) {
      const m = t.metrics()
      for (const other of REPLICAS.filter((id) => id !== t.id)) {
        const p = m.peers[other]!
        expect(p).toMatchObject({ framesOut: N, bytesOut: 4 * N, framesIn: N, bytesIn: 4 * N, dropped: 0, queueDepth: 0, connected: true, connects: 1, reconnects: 0 })
      }
    }
  }, 25_000)

  it('delivers frames to itself through the same queue', async () => {
    const c = await testCluster({ groups: [{ name: 'kv', f: 0, n: 1 }], seed: SEED })
    const t = await start(c, 'kv/0')
    const got = inbox(t)
    expect(t.send('kv/0', Uint8Array.of(1))).toBe(true)
    expect(t.send('kv/0', Uint8Array.of(2))).toBe(true)
    await waitFor(() => got.length === 2)
    expect(got).toEqual([
      { from: 'kv/0', bytes: Uint8Array.of(1) },
      { from: 'kv/0', bytes: Uint8Array.of(2) },
    ])
    expect(t.metrics().peers['kv/0']).toMatchObject({ kind: 'self', framesIn: 2, framesOut: 2 })
  }, 15_000)

  it('carries large frames intact through yamux back-pressure (drain)', async () => {
    const c = await testCluster({ groups: [{ name: 'kv', f: 0, n: 2 }], seed: SEED })
    const [a, b] = await Promise.all([start(c, 'kv/0'), start(c, 'kv/1')])
    await a.whenConnected(['kv/1'])
    const got = inbox(b)
    const size = 512 * 1024
    const count = 24 // 12 MiB in one turn: far above yamux's 256 KiB window
    for (let i = 0; i < count; i++) expect(a.send('kv/1', new Uint8Array(size).fill(i))).toBe(true)
    expect(a.queueDepth('kv/1')).toBe(count)
    await waitFor(() => got.length === count, 15_000, 'large frames')
    got.forEach((g, i) => {
      expect(g.bytes.byteLength).toBe(size)
      expect(g.bytes[0]).toBe(i)
      expect(g.bytes[size - 1]).toBe(i)
    })
    expect(a.metrics().peers['kv/1']).toMatchObject({ framesOut: count, bytesOut: count * size, queueDepth: 0 })
  }, 20_000)

  it('bounds the queue per peer: frames then bytes; drops are counted and the rest is delivered', async () => {
    const c = await testCluster({ groups: [{ name: 'kv', f: 0, n: 2 }], seed: SEED })
    // kv/1 is down: kv/0 queues for it.
    const a = await start(c, 'kv/0', { maxQueueFrames: 10, maxQueueBytes: 1000 })
    for (let i = 0; i < 10; i++) expect(a.send('kv/1', u32(i))).toBe(true)
    expect(a.send('kv/1', u32(10))).toBe(false)
    expect(a.metrics().peers['kv/1']).toMatchObject({ queueDepth: 10, queueBytes: 40, drops: { queueFull: 1 }, dropped: 1, connected: false })

    const b = await start(c, 'kv/1', { maxQueueFrames: 100, maxQueueBytes: 1000 })
    const got = inbox(b)
    await waitFor(() => got.length === 10, 10_000, 'queued frames after kv/1 started')
    expect(got.map((g) => readU32(g.bytes))).toEqual([...Array(10).keys()])
    expect(got.every((g) => g.from === 'kv/0')).toBe(true)
    // The byte bound: 2 x 400 fits, a third does not.
    expect(b.send('kv/0', new Uint8Array(400))).toBe(true)
    expect(b.send('kv/0', new Uint8Array(400))).toBe(true)
    expect(b.send('kv/0', new Uint8Array(400))).toBe(false)
    expect(b.metrics().peers['kv/0']!.drops.queueFull).toBe(1)
  }, 15_000)

  it('reconnects with back-off after either end restarts; frames queued meanwhile arrive', async () => {
    const c = await testCluster({ groups: [{ name: 'kv', f: 0, n: 2 }], seed: SEED })
    const a = await start(c, 'kv/0') // kv/0 dials kv/1
    let b = await start(c, 'kv/1')
    let gotB = inbox(b)
    await a.whenConnected(['kv/1'])
    a.send('kv/1', Uint8Array.of(1))
    await waitFor(() => gotB.length === 1)

    // The peer that is dialled restarts: the dialer notices, backs off, redials.
    await b.stop()
    await waitFor(() => !a.isConnected('kv/1'), 5_000, 'kv/0 to notice')
    a.send('kv/1', Uint8Array.of(2))
    a.send('kv/1', Uint8Array.of(3))
    await new Promise((r) => setTimeout(r, 300)) // a few failed dials
    b = await start(c, 'kv/1')
    gotB = inbox(b)
    await waitFor(() => gotB.length === 2, 10_000, 'frames queued during the restart')
    expect(gotB.map((g) => g.bytes[0])).toEqual([2, 3])
    const ma = a.metrics().peers['kv/1']!
    expect(ma.reconnects).toBe(1)
    expect(ma.dialFailures).toBeGreaterThan(0)

    // The dialer restarts: the new stream replaces the old one at kv/1.
    await a.stop()
    const a2 = await start(c, 'kv/0')
    const gotA = inbox(a2)
    await a2.whenConnected(['kv/1'])
    await waitFor(() => b.isConnected('kv/0'))
    b.send('kv/0', Uint8Array.of(4))
    a2.send('kv/1', Uint8Array.of(5))
    await waitFor(() => gotA.length === 1 && gotB.length === 3, 10_000, 'traffic after the dialer restarted')
    expect(gotA[0]).toEqual({ from: 'kv/1', bytes: Uint8Array.of(4) })
    expect(gotB[2]).toEqual({ from: 'kv/0', bytes: Uint8Array.of(5) })
    expect(b.metrics().peers['kv/0']!.reconnects).toBe(1)
  }, 25_000)

  it('lets listed clients connect with their own keys; replicas answer over the client connection', async () => {
    const c = await testCluster({ groups: [{ name: 'kv', f: 1 }], clients: ['alice', 'bob'], seed: SEED })
    const replicas = await Promise.all(REPLICAS.map((id) => start(c, id)))
    const boxes = replicas.map(inbox)
    // A replica can queue for a client before it connects; it never dials clients.
    expect(replicas[3]!.send('alice', Uint8Array.of(42))).toBe(true)
    const alice = await start(c, 'alice')
    const got = inbox(alice)
    expect(alice.role).toBe('client')
    expect(alice.listenAddrs).toEqual([])
    expect(alice.peerIds.sort()).toEqual(['alice', ...REPLICAS])
    await alice.whenConnected(REPLICAS)
    REPLICAS.forEach((id, i) => {
      alice.send(id, Uint8Array.of(i))
    })
    await waitFor(() => boxes.every((b) => b.length === 1) && got.length === 1)
    boxes.forEach((b, i) => {
      expect(b[0]).toEqual({ from: 'alice', bytes: Uint8Array.of(i) })
    })
    expect(got[0]).toEqual({ from: 'kv/3', bytes: Uint8Array.of(42) })
    for (const r of replicas) r.send('alice', Uint8Array.of(7))
    await waitFor(() => got.length === 5)
    expect(got.slice(1).map((g) => g.from).sort()).toEqual(REPLICAS)
    // A client talks to replicas only; bob is unknown to alice.
    expect(alice.send('bob', Uint8Array.of(1))).toBe(false)
    expect(alice.metrics().unknownPeerDrops).toBe(1)
    expect(replicas[0]!.metrics().peers.alice).toMatchObject({ kind: 'client', dialFailures: 0, connects: 1 })
  }, 20_000)

  it('accepts open clients (unknown keys) only when the membership allows them', async () => {
    const open = await testCluster({ groups: [{ name: 'kv', f: 0, n: 2 }], openClients: true, seed: SEED })
    const [r0, r1] = await Promise.all([start(open, 'kv/0'), start(open, 'kv/1')])
    const got0 = inbox(r0)
    const stranger = generateKeyPair()
    const client = track(createLibp2pTransport({ membership: open.membership, keyPair: stranger, reconnectInitialDelayMs: 20 }))
    const gotC = inbox(client)
    expect(client.id).toBe(openClientId(peerIdOf(stranger.publicKey)))
    await client.start()
    await client.whenConnected(['kv/0', 'kv/1'])
    client.send('kv/0', Uint8Array.of(9))
    await waitFor(() => got0.length === 1)
    expect(got0[0]).toEqual({ from: client.id, bytes: Uint8Array.of(9) })
    expect(r0.send(client.id, Uint8Array.of(10))).toBe(true)
    await waitFor(() => gotC.length === 1)
    expect(gotC[0]).toEqual({ from: 'kv/0', bytes: Uint8Array.of(10) })
    expect(r0.metrics().peers[client.id]).toMatchObject({ kind: 'open-client', framesIn: 1, framesOut: 1 })
    // When the open client goes away its state goes too (no growth with client churn).
    await client.stop()
    await waitFor(() => r0.metrics().peers[client.id] === undefined && r1.metrics().peers[client.id] === undefined, 5_000, 'open client state to go')
    expect(r0.send(client.id, Uint8Array.of(11))).toBe(false)

    const closed = await testCluster({ groups: [{ name: 'kv', f: 0, n: 1 }], seed: SEED })
    expect(() => createLibp2pTransport({ membership: closed.membership, keyPair: stranger })).toThrow(TransportConfigError)
  }, 20_000)

  it('refuses connections from keys outside the membership, and counts them', async () => {
    const c = await testCluster({ groups: [{ name: 'kv', f: 0, n: 2 }], clients: ['alice'], seed: SEED })
    const r1 = await start(c, 'kv/1')
    const got = inbox(r1)
    const stranger = generateKeyPair()
    const raw = track(await rawNode(stranger.seed))
    await expect(
      (async () => {
        const s = await rawStream(raw, addrOf(c, 'kv/1'), c.membership.member('kv/1')!.peerId)
        s.send(encodeFrame(Uint8Array.of(1)))
        // Some refusals surface only on use; wait for the reset.
        await new Promise((resolve, reject) => {
          s.addEventListener('close', () => reject(new Error('closed')))
          setTimeout(resolve, 2_000)
        })
      })(),
    ).rejects.toBeDefined()
    expect(r1.metrics().refusedConnections).toBeGreaterThanOrEqual(1)
    expect(got).toEqual([])

    // A client node refuses every inbound connection, even a replica's.
    const alice = await start(c, 'alice', { listen: ['/ip4/127.0.0.1/tcp/0'] })
    const asReplica = track(await rawNode(c.keys.get('kv/0')!.seed))
    await expect(rawStream(asReplica, alice.listenAddrs[0]!.replace(/\/p2p\/.*$/, ''), alice.peerId)).rejects.toBeDefined()
    expect(alice.metrics().refusedConnections).toBeGreaterThanOrEqual(1)
  }, 20_000)

  it('refuses a frame stream from a member that must not open it (the higher id), and counts it', async () => {
    const c = await testCluster({ groups: [{ name: 'kv', f: 0, n: 2 }], seed: SEED })
    const r0 = await start(c, 'kv/0') // kv/0 dials kv/1, never the reverse
    const got = inbox(r0)
    const asKv1 = track(await rawNode(c.keys.get('kv/1')!.seed))
    const s = await rawStream(asKv1, addrOf(c, 'kv/0'), c.membership.member('kv/0')!.peerId).catch(() => undefined)
    if (s !== undefined) {
      try {
        s.send(encodeFrame(Uint8Array.of(1)))
      } catch {
        // already reset
      }
      await waitFor(() => s.status !== 'open', 5_000, 'the stream to be reset')
    }
    await waitFor(() => r0.metrics().refusedStreams >= 1, 5_000, 'refusedStreams')
    expect(got).toEqual([])
  }, 15_000)

  it('drops and counts oversize, truncated and garbage input without crashing, and keeps serving', async () => {
    const c = await testCluster({ groups: [{ name: 'kv', f: 0, n: 2 }], seed: SEED })
    const r1 = await start(c, 'kv/1', { maxFrameBytes: 1024 })
    const got = inbox(r1)
    const kv1 = c.membership.member('kv/1')!

    // Raw TCP garbage at the listening port: the handshake fails, nothing reaches the handler.
    await new Promise<void>((resolve) => {
      const [host, port] = [kv1.addrs[0]!.split('/')[2]!, Number(kv1.addrs[0]!.split('/')[4])]
      const sock = createConnection({ host, port }, () => {
        sock.write(Uint8Array.from({ length: 4096 }, (_, i) => (i * 131) % 256))
        setTimeout(() => sock.destroy(), 200)
      })
      sock.on('error', () => {})
      sock.on('close', () => resolve())
    })

    // An authenticated member (kv/0's key) that misbehaves on the frame stream.
    const asKv0 = track(await rawNode(c.keys.get('kv/0')!.seed))
    const s = await rawStream(asKv0, kv1.addrs[0]!, kv1.peerId)
    s.send(encodeFrames([Uint8Array.of(1), new Uint8Array(5000).fill(0xab), Uint8Array.of(2)])) // oversize in the middle
    s.send(encodeFrame(new Uint8Array(1024).fill(3))) // exactly the maximum: fine
    const junk = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7919) % 256)
    s.send(Uint8Array.of(0xff, 0xff, 0xff, 0xf0)) // a 4 GiB header: skipped, never allocated
    s.send(junk)
    await waitFor(() => got.length === 3, 5_000, 'the valid frames')
    expect(got.map((g) => g.bytes.byteLength)).toEqual([1, 1, 1024])
    expect(got.every((g) => g.from === 'kv/0')).toBe(true)
    expect(r1.metrics().peers['kv/0']!.drops.oversizeIn).toBe(2)
    await s.close()
    await asKv0.stop()
    // That stream ended inside the skipped 4 GiB body: truncated.
    await waitFor(() => r1.metrics().peers['kv/0']!.drops.truncatedIn === 1, 5_000, 'truncatedIn after the skip')

    // A stream that ends inside a frame.
    const asKv0Again = track(await rawNode(c.keys.get('kv/0')!.seed))
    const s2 = await rawStream(asKv0Again, kv1.addrs[0]!, kv1.peerId)
    s2.send(Uint8Array.of(0, 0, 0, 10, 1, 2, 3))
    await new Promise((r) => setTimeout(r, 50))
    await asKv0Again.stop()
    await waitFor(() => r1.metrics().peers['kv/0']!.drops.truncatedIn === 2, 5_000, 'truncatedIn')
    expect(r1.metrics().peers['kv/0']).toMatchObject({ framesIn: 3, bytesIn: 1026, drops: { oversizeIn: 2, truncatedIn: 2 } })

    // Oversize outbound frames are refused by send().
    expect(r1.send('kv/0', new Uint8Array(1025))).toBe(false)
    expect(r1.metrics().peers['kv/0']!.drops.oversize).toBe(1)

    // The real kv/0 still gets through, and the handler throwing does not stop delivery.
    let calls = 0
    r1.onMessage((from, bytes) => {
      calls++
      if (bytes[0] === 0) throw new Error('handler bug')
      got.push({ from, bytes })
    })
    const r0 = await start(c, 'kv/0')
    r0.send('kv/1', Uint8Array.of(0))
    r0.send('kv/1', Uint8Array.of(4))
    await waitFor(() => got.length === 4, 10_000, 'the honest kv/0')
    expect(calls).toBe(2)
    expect(r1.metrics().handlerErrors).toBe(1)
    expect(got[3]).toEqual({ from: 'kv/0', bytes: Uint8Array.of(4) })
  }, 20_000)

  it('stops cleanly: idempotent, no delivery after, send counted as dropped, no restart', async () => {
    const c = await testCluster({ groups: [{ name: 'kv', f: 0, n: 2 }], seed: SEED })
    const [a, b] = await Promise.all([start(c, 'kv/0'), start(c, 'kv/1')])
    await a.whenConnected(['kv/1'])
    await waitFor(() => b.isConnected('kv/0'))
    const got = inbox(b)
    await Promise.all([b.stop(), b.stop()])
    a.send('kv/1', Uint8Array.of(1))
    expect(b.send('kv/0', Uint8Array.of(1))).toBe(false)
    expect(b.metrics().peers['kv/0']!.drops.stopped).toBe(1)
    await expect(b.start()).rejects.toBeInstanceOf(TransportStateError)
    await expect(b.whenConnected(['kv/0'])).rejects.toBeInstanceOf(TransportStateError)
    await new Promise((r) => setTimeout(r, 100))
    expect(got).toEqual([])
    await a.stop()
    expect(a.metrics().peers['kv/1']!.connected).toBe(false)
  }, 15_000)

  it('survives stop() during start(), and start() called twice', async () => {
    const c = await testCluster({ groups: [{ name: 'kv', f: 0, n: 2 }], seed: SEED })
    const a = track(node(c, 'kv/0'))
    const starting = a.start()
    expect(a.start()).toBe(starting)
    const stopping = a.stop()
    await starting
    await stopping
    expect(a.listenAddrs).toEqual([])
    // The port is free again: a new node can take it.
    const again = await start(c, 'kv/0')
    expect(again.listenAddrs).toHaveLength(1)
  }, 15_000)

  it('refuses an unparsable listen address with a TransportConfigError naming it (was: a raw libp2p error at start)', async () => {
    const c = await testCluster({ groups: [{ name: 'kv', f: 0, n: 1 }], seed: SEED })
    const peerId = c.membership.member('kv/0')!.peerId
    const bad = [
      '/garbage',
      '',
      '/ip4/127.0.0.1',
      '/ip4/127.0.0.1/udp/5',
      '/ip4/999.0.0.1/tcp/1',
      '/ip4/127.0.0.1/tcp/70000',
      '/ip4/127.0.0.1/tcp/0/',
      '/ip4/127.0.0.1/tcp/0/ws',
      `/ip4/127.0.0.1/tcp/0/p2p/${peerId}`,
    ]
    for (const listen of bad) {
      let thrown: unknown
      try {
        node(c, 'kv/0', { listen: ['/ip4/127.0.0.1/tcp/0', listen] })
      } catch (err) {
        thrown = err
      }
      expect(thrown, listen).toBeInstanceOf(TransportConfigError)
      expect((thrown as Error).message, listen).toMatch(/^listen\[1\]: /)
    }
    // Every form the membership accepts is one libp2p parses, with the peer id the transport appends.
    const forms = ['/ip4/10.1.2.3/tcp/7000', '/ip6/2001:DB8:0:0:0:0:0:1/tcp/1', '/ip6/::ffff:192.0.2.1/tcp/2', '/ip6/1::/tcp/3', '/dns4/replica-1.example/tcp/65535', '/dns6/a/tcp/4', '/dns/1.example/tcp/5']
    for (const a of forms) {
      expect(() => Membership.fromConfig({ version: 1, groups: { kv: { f: 0, members: [{ publicKey: toHex(c.keys.get('kv/0')!.publicKey), addrs: [a] }] } } }, { allowZeroFaultTolerance: true }), a).not.toThrow()
      expect(multiaddr(`${a}/p2p/${peerId}`).getComponents().map((x) => x.name), a).toEqual([a.split('/')[1], 'tcp', 'p2p'])
    }
    // Port 0 (any free port) is fine for listening, unlike in the membership.
    const t = await start(c, 'kv/0', { listen: ['/ip4/127.0.0.1/tcp/0'] })
    expect(t.listenAddrs).toHaveLength(1)
    // An address the OS refuses (taken by another socket) is a TransportConfigError from start().
    const taken = t.listenAddrs[0]!.replace(/\/p2p\/.*$/, '')
    const again = track(node(c, 'kv/0', { listen: [taken] }))
    await expect(again.start()).rejects.toBeInstanceOf(TransportConfigError)
  }, 15_000)

  it('reports a timeout when a peer never comes, and rejects bad options', async () => {
    const c = await testCluster({ groups: [{ name: 'kv', f: 0, n: 2 }], seed: SEED })
    const a = await start(c, 'kv/0')
    await expect(a.whenConnected(['kv/1'], 200)).rejects.toBeInstanceOf(TransportTimeoutError)
    await expect(a.whenConnected(['nobody'], 200)).rejects.toBeInstanceOf(TransportConfigError)
    expect(a.send('nobody', Uint8Array.of(1))).toBe(false)
    expect(a.metrics().unknownPeerDrops).toBe(1)
    expect(() => node(c, 'kv/1', { maxFrameBytes: 0 })).toThrow(TransportConfigError)
    expect(() => node(c, 'kv/1', { maxQueueFrames: 1.5 })).toThrow(TransportConfigError)
    expect(() => node(c, 'kv/1', { inboundUpgradeTimeoutMs: 0 })).toThrow(TransportConfigError)
    expect(() => node(c, 'kv/1', { maxPendingInboundPerAddress: -1 })).toThrow(TransportConfigError)
    expect(() => node(c, 'kv/1', { maxPendingInbound: Number.NaN })).toThrow(TransportConfigError)
    expect(() => node(c, 'kv/1', { maxPendingInboundFromMembers: 0.5 })).toThrow(TransportConfigError)
    expect(() => node(c, 'kv/1', { listen: '/ip4/127.0.0.1/tcp/0' as unknown as string[] })).toThrow(/^listen: expected an array/)
    const noAddrs = await testCluster({ groups: [{ name: 'kv', f: 0, n: 1 }], seed: SEED })
    const cfg = { ...noAddrs.config, groups: { kv: { f: 0, members: [{ ...noAddrs.config.groups.kv!.members[0]!, addrs: [] }] } } }
    expect(() => createLibp2pTransport({ membership: Membership.fromConfig(cfg, { allowZeroFaultTolerance: true }), keyPair: noAddrs.keys.get('kv/0')! })).toThrow(TransportConfigError)
  }, 15_000)
})
