import { type Socket, connect, createServer } from 'node:net'
import { type ClusterSpec, type KeyPair, Membership, type MembershipConfig, generateCluster } from '@bftrc/crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { Stream } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { type Libp2p, createLibp2p } from 'libp2p'
import { afterEach } from 'vitest'
import { type Libp2pTransport, type Libp2pTransportInit, PROTOCOL, createLibp2pTransport } from '../src/index.js'

/** Ports the OS reports free on 127.0.0.1 right now (all held open until every one is picked). */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<import('node:net').Server>((resolve, reject) => {
          const s = createServer()
          s.once('error', reject)
          s.listen(0, host, () => resolve(s))
        }),
    ),
  )
  const ports = servers.map((s) => {
    const a = s.address()
    if (a === null || typeof a === 'string') throw new Error('no port')
    return a.port
  })
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))))
  return ports
}

export interface TestCluster {
  readonly membership: Membership
  readonly config: MembershipConfig
  readonly keys: ReadonlyMap<string, KeyPair>
}

/** A cluster whose replicas have addresses on free ports of `host`. */
export async function testCluster(spec: Omit<ClusterSpec, 'basePort' | 'host'>, host = '127.0.0.1'): Promise<TestCluster> {
  const generated = generateCluster({ ...spec, basePort: 0, allowZeroFaultTolerance: true })
  const groups: Record<string, { f: number; members: Array<{ publicKey: string; addrs: string[] }> }> = {}
  const total = Object.values(generated.config.groups).reduce((n, g) => n + g.members.length, 0)
  const ports = await freePorts(total, host)
  let i = 0
  for (const [name, g] of Object.entries(generated.config.groups)) {
    groups[name] = { f: g.f, members: g.members.map((m) => ({ publicKey: m.publicKey, addrs: [`/ip4/${host}/tcp/${ports[i++]}`] })) }
  }
  const config: MembershipConfig = { ...generated.config, groups }
  return { config, membership: Membership.fromConfig(config, { allowZeroFaultTolerance: true }), keys: generated.keys }
}

/** Fast back-off so reconnection tests stay short. */
export const FAST: Partial<Libp2pTransportInit> = { reconnectInitialDelayMs: 20, reconnectMaxDelayMs: 300 }

export function node(cluster: TestCluster, id: string, extra: Partial<Libp2pTransportInit> = {}): Libp2pTransport {
  const keyPair = cluster.keys.get(id)
  if (keyPair === undefined) throw new Error(`no key for ${id}`)
  return createLibp2pTransport({ membership: cluster.membership, keyPair, ...FAST, ...extra })
}

type Stoppable = { stop(): unknown }

/**
 * For a test file: `track(x)` registers a node, flood or anything with `stop()`, and everything
 * registered is stopped after each test, even when it fails; `start(...)` creates, tracks and
 * starts a transport.
 */
export function stopAfterEach(): {
  track<T extends Stoppable>(x: T): T
  start(cluster: TestCluster, id: string, extra?: Partial<Libp2pTransportInit>): Promise<Libp2pTransport>
} {
  const running: Array<Stoppable> = []
  afterEach(async () => {
    await Promise.all(running.splice(0).map(async (x) => x.stop()))
  })
  const track = <T extends Stoppable>(x: T): T => {
    running.push(x)
    return x
  }
  const start = (cluster: TestCluster, id: string, extra: Partial<Libp2pTransportInit> = {}): Promise<Libp2pTransport> => {
    const t = track(node(cluster, id, extra))
    return t.start().then(() => t)
  }
  return { track, start }
}

/** Collects what a transport delivers. */
export function inbox(t: Libp2pTransport): Array<{ from: string; bytes: Uint8Array }> {
  const got: Array<{ from: string; bytes: Uint8Array }> = []
  t.onMessage((from, bytes) => got.push({ from, bytes }))
  return got
}

export async function waitFor(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

export function u32(n: number): Uint8Array {
  const b = new Uint8Array(4)
  new DataView(b.buffer).setUint32(0, n)
  return b
}

export function readU32(b: Uint8Array): number {
  return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0)
}

/**
 * A bare libp2p node (no gater, no frame logic) for playing a hostile or rule-breaking peer;
 * `localAddress` binds its outgoing sockets (e.g. 127.0.0.3: Linux routes all of 127/8 to lo).
 */
export async function rawNode(seed: Uint8Array, localAddress?: string): Promise<Libp2p> {
  // @libp2p/tcp passes dialOpts to net.connect; its type does not list localAddress.
  const dialOpts = localAddress === undefined ? undefined : { noDelay: true, localAddress }
  return createLibp2p({
    privateKey: await generateKeyPairFromSeed('Ed25519', seed),
    transports: [tcp({ dialOpts })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { inboundConnectionThreshold: 1000 },
  })
}

/** Opens the frame protocol from a bare node to a member's address. */
export async function rawStream(raw: Libp2p, addr: string, peerId: string): Promise<Stream> {
  const conn = await raw.dial(multiaddr(`${addr}/p2p/${peerId}`), { signal: AbortSignal.timeout(5000) })
  return conn.newStream(PROTOCOL, { signal: AbortSignal.timeout(5000) })
}

/** Host and port of `/ip4/<host>/tcp/<port>`. */
export function hostPort(addr: string): { host: string; port: number } {
  const [, proto, host, tcpName, port] = addr.split('/')
  if (proto !== 'ip4' || tcpName !== 'tcp' || host === undefined) throw new Error(`not /ip4/<host>/tcp/<port>: ${addr}`)
  return { host, port: Number(port) }
}

export interface Flood {
  /** How long (ms) each socket the replica has closed stayed open. */
  readonly lifetimes: number[]
  /** Ages (ms) of the sockets open now. */
  openAges(): number[]
  stop(): Promise<void>
}

/**
 * A host that holds no key and never completes a handshake: keeps `sockets` TCP connections to
 * host:port open from the source addresses `from` (round robin), each sending nothing or the
 * first bytes of a multistream-select header and then stalling. A socket the replica closes is
 * reopened after `reopenMs`, so the flood refills whatever the replica frees.
 */
export function slowHandshakeFlood(opts: { host: string; port: number; from: readonly string[]; sockets: number; reopenMs: number }): Flood {
  const lifetimes: number[] = []
  const open = new Map<Socket, number>()
  const all = new Set<Socket>()
  let stopped = false
  const timers = new Set<ReturnType<typeof setTimeout>>()
  const openOne = (i: number): void => {
    if (stopped) return
    const sock = connect({ host: opts.host, port: opts.port, localAddress: opts.from[i % opts.from.length] })
    all.add(sock)
    sock.on('connect', () => {
      open.set(sock, Date.now())
      // Half stall at once, half after a few bytes of "\x13/multistream/1.0.0\n".
      if (i % 2 === 1) sock.write(Uint8Array.of(0x13, 0x2f, 0x6d, 0x75, 0x6c))
    })
    sock.on('error', () => {})
    sock.on('close', () => {
      const openedAt = open.get(sock)
      open.delete(sock)
      all.delete(sock)
      if (openedAt !== undefined && !stopped) lifetimes.push(Date.now() - openedAt)
      if (stopped) return
      const t = setTimeout(() => {
        timers.delete(t)
        openOne(i)
      }, opts.reopenMs)
      timers.add(t)
    })
  }
  for (let i = 0; i < opts.sockets; i++) openOne(i)
  return {
    lifetimes,
    openAges: () => {
      const now = Date.now()
      return [...open.values()].map((t) => now - t)
    },
    stop: async () => {
      stopped = true
      for (const t of timers) clearTimeout(t)
      const closing = [...all].map((s) => new Promise<void>((resolve) => s.once('close', () => resolve())))
      for (const s of all) s.destroy()
      await Promise.all(closing)
    },
  }
}
