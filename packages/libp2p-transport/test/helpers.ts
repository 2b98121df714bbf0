import { createServer } from 'node:net'
import { type ClusterSpec, type KeyPair, Membership, type MembershipConfig, generateCluster } from '@bftrc/crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { Stream } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { type Libp2p, createLibp2p } from 'libp2p'
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

/** A bare libp2p node (no gater, no frame logic) for playing a hostile or rule-breaking peer. */
export async function rawNode(seed: Uint8Array): Promise<Libp2p> {
  return createLibp2p({
    privateKey: await generateKeyPairFromSeed('Ed25519', seed),
    transports: [tcp()],
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
