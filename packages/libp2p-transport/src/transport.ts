/**
 * The bftrc `Transport` over libp2p 3: TCP, Noise, Yamux. A node's identity is its member's
 * Ed25519 key; only peers of the membership may connect (a connection gater checks the peer id
 * that Noise has just proven), so the `from` handed to `onMessage` is an authenticated member or
 * client id. One long-lived stream per peer pair carries length-prefixed frames both ways.
 */
import './polyfill.js'
import type { Client, KeyPair, Member, Membership, Transport } from '@bftrc/crypto'
import { parseTcpMultiaddr, peerIdOf } from '@bftrc/crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { Connection, MultiaddrConnection, PeerId, Stream } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { type Libp2p, createLibp2p } from 'libp2p'
import { PendingInbound, type PreHandshakeMetrics } from './admission.js'
import { TransportConfigError, TransportStateError, TransportTimeoutError } from './errors.js'
import { FRAME_HEADER_BYTES, FrameDecoder, MAX_FRAME_HEADER_VALUE, encodeFrames } from './framing.js'
import { FrameQueue } from './queue.js'

/** The libp2p protocol of the frame stream. */
export const PROTOCOL = '/bftrc/frames/1.0.0'

export const DEFAULTS = {
  maxFrameBytes: 4 * 1024 * 1024,
  maxQueueFrames: 4096,
  maxQueueBytes: 16 * 1024 * 1024,
  maxBatchBytes: 256 * 1024,
  reconnectInitialDelayMs: 100,
  reconnectMaxDelayMs: 5_000,
  reconnectFactor: 2,
  dialTimeoutMs: 5_000,
  maxConnections: 1_024,
  maxOpenClients: 1_024,
  inboundConnectionThreshold: 100,
  inboundUpgradeTimeoutMs: 3_000,
  maxPendingInboundPerAddress: 4,
  maxPendingInbound: 128,
  maxPendingInboundFromMembers: 64,
} as const

/**
 * libp2p's own inbound upgrade timeout runs this much after ours, as a backstop: ours fires first,
 * so the connection is counted as timed out (libp2p's would surface as an ordinary failure).
 */
const LIBP2P_UPGRADE_TIMEOUT_MARGIN_MS = 1_000

export interface Libp2pTransportInit {
  /** Who may connect, and where replicas listen. */
  readonly membership: Membership
  /** This node's key: a replica's or a client's from the membership, or any key for an open client. */
  readonly keyPair: Pick<KeyPair, 'seed' | 'publicKey'>
  /** Multiaddrs to listen on. Default: the member's configured addrs; clients listen nowhere. */
  readonly listen?: readonly string[]
  /** Largest frame sent or accepted, in bytes. Default 4 MiB. Inbound frames above it are skipped and counted. */
  readonly maxFrameBytes?: number
  /** Frames queued per peer before `send` drops. Default 4096. */
  readonly maxQueueFrames?: number
  /** Payload bytes queued per peer before `send` drops. Default 16 MiB. */
  readonly maxQueueBytes?: number
  /** Bytes coalesced into one stream write. Default 256 KiB (a single larger frame is written alone). */
  readonly maxBatchBytes?: number
  /** Reconnection back-off: first delay, cap, multiplier (±20 % jitter). Defaults 100 ms, 5 s, 2. */
  readonly reconnectInitialDelayMs?: number
  readonly reconnectMaxDelayMs?: number
  readonly reconnectFactor?: number
  /** One dial attempt (TCP + Noise + Yamux + stream) may take this long. Default 5 s. */
  readonly dialTimeoutMs?: number
  /** libp2p connection limit. Default 1024. */
  readonly maxConnections?: number
  /** Open clients (not in the membership) connected at once, when the membership allows them. Default 1024. */
  readonly maxOpenClients?: number
  /** Inbound connections per second per remote host before libp2p resets them. Default 100 (libp2p's 5 is too low for 127.0.0.1). */
  readonly inboundConnectionThreshold?: number
  /**
   * An inbound connection must finish its handshake (Noise, then Yamux) within this many ms or it
   * is closed and counted (`preHandshake.timedOut`). Default 3000 (libp2p's default is 10 s).
   */
  readonly inboundUpgradeTimeoutMs?: number
  /**
   * Inbound connections still in their handshake from one remote address that is not a member's
   * (IPv6: per /64); more are refused at once and counted (`preHandshake.refusedPerAddress`). Default 4.
   */
  readonly maxPendingInboundPerAddress?: number
  /** Inbound connections still in their handshake from all addresses that are not members', together. Default 128. */
  readonly maxPendingInbound?: number
  /**
   * Inbound connections still in their handshake from members' addresses (the IPs in the
   * membership's addrs), together: a pool the others cannot use. Default 64.
   */
  readonly maxPendingInboundFromMembers?: number
  /** Told about swallowed errors: a throwing message handler, failed dials. Default: ignore. */
  readonly onError?: (error: unknown, context: string) => void
}

/** Who a peer is to this node. */
export type PeerKind = 'self' | 'replica' | 'client' | 'open-client'

export interface DropCounts {
  /** send(): the peer's queue was full (frames or bytes). */
  queueFull: number
  /** send(): the frame exceeded maxFrameBytes. */
  oversize: number
  /** send() after stop(). */
  stopped: number
  /** Queued frames thrown away: stop() with frames pending, an open client that went away, a failed write. */
  discarded: number
  /** Received: a header announced more than maxFrameBytes; the body was skipped. */
  oversizeIn: number
  /** Received: the stream ended inside a frame. */
  truncatedIn: number
}

export interface PeerMetrics {
  readonly id: string
  readonly kind: PeerKind
  readonly connected: boolean
  /** Frames and payload bytes (length prefixes not counted) handed to the stream / delivered upward. */
  readonly framesOut: number
  readonly bytesOut: number
  readonly framesIn: number
  readonly bytesIn: number
  readonly drops: Readonly<DropCounts>
  /** Sum of `drops`. */
  readonly dropped: number
  /** Streams established, and of those the ones after the first (reconnections). */
  readonly connects: number
  readonly reconnects: number
  /** Dial attempts that failed (this node dials the peer). */
  readonly dialFailures: number
  /** Frames and payload bytes waiting in this node's queue for the peer. */
  readonly queueDepth: number
  readonly queueBytes: number
}

export interface TransportMetrics {
  readonly id: string
  readonly peers: Readonly<Record<string, PeerMetrics>>
  /** send() to an id that is not a peer of this node. */
  readonly unknownPeerDrops: number
  /** Encrypted connections refused by the gater (peer id not in the membership). */
  readonly refusedConnections: number
  /** Frame streams refused: from a peer this node dials itself, to a client node, or over the open-client limit. */
  readonly refusedStreams: number
  /** Exceptions thrown by the onMessage handler (caught; the frame counts as delivered). */
  readonly handlerErrors: number
  /** Inbound connections before the handshake: how many are pending, and the ones refused or dropped. */
  readonly preHandshake: PreHandshakeMetrics
}

interface PeerState {
  readonly id: string
  readonly kind: PeerKind
  readonly peerId: string
  /** This node opens the stream to the peer. */
  readonly dialer: boolean
  readonly addrs: Multiaddr[]
  readonly queue: FrameQueue
  stream: Stream | undefined
  dialing: boolean
  retryTimer: ReturnType<typeof setTimeout> | undefined
  backoffMs: number
  framesOut: number
  bytesOut: number
  framesIn: number
  bytesIn: number
  drops: DropCounts
  connects: number
  dialFailures: number
}

type State = 'new' | 'starting' | 'started' | 'stopping' | 'stopped'

function positiveInteger(name: string, value: number | undefined, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = value ?? fallback
  if (!Number.isInteger(v) || v < 1 || v > max) throw new TransportConfigError(`${name}: expected a whole number from 1 to ${max}, got ${v}`)
  return v
}

/** The `listen` option: TCP multiaddrs this transport can listen on (port 0 allowed), each checked now rather than by libp2p at start. */
function checkListen(listen: unknown): void {
  if (!Array.isArray(listen)) throw new TransportConfigError('listen: expected an array of multiaddr strings')
  listen.forEach((a: unknown, i) => {
    if (typeof a !== 'string') throw new TransportConfigError(`listen[${i}]: expected a multiaddr string such as /ip4/0.0.0.0/tcp/7001`)
    const parsed = parseTcpMultiaddr(a, { anyPort: true })
    if ('error' in parsed) throw new TransportConfigError(`listen[${i}]: ${JSON.stringify(a)}: ${parsed.error}`)
    try {
      multiaddr(a)
    } catch (err) {
      throw new TransportConfigError(`listen[${i}]: ${JSON.stringify(a)}: ${(err as Error).message}`, { cause: err })
    }
  })
}

/** A peer's dial targets: its configured addrs with its peer id appended (the membership forbids /p2p in addrs). */
function dialAddrs(id: string, addrs: readonly string[], peerId: string): Multiaddr[] {
  return addrs.map((a, i) => {
    try {
      return multiaddr(`${a}/p2p/${peerId}`)
    } catch (err) {
      throw new TransportConfigError(`${id} addrs[${i}]: ${JSON.stringify(a)}: ${(err as Error).message}`, { cause: err })
    }
  })
}

function isMember(x: Member | Client | undefined): x is Member {
  return x !== undefined && 'group' in x
}

function noop(): void {}

/** The id an open client (a key outside the membership) gets: replicas and the client derive the same. */
export function openClientId(peerId: string): string {
  return `peer:${peerId}`
}

export class Libp2pTransport implements Transport {
  /** This node's membership id: `"kv/0"`, `"alice"`, or `"peer:<peerId>"` for an open client. */
  readonly id: string
  /** This node's libp2p peer id (derived from its Ed25519 public key). */
  readonly peerId: string
  readonly role: 'replica' | 'client'
  private readonly membership: Membership
  private readonly seed: Uint8Array
  private readonly listen: readonly string[]
  private readonly maxFrameBytes: number
  private readonly maxQueueFrames: number
  private readonly maxQueueBytes: number
  private readonly maxBatchBytes: number
  private readonly reconnectInitialDelayMs: number
  private readonly reconnectMaxDelayMs: number
  private readonly reconnectFactor: number
  private readonly dialTimeoutMs: number
  private readonly maxConnections: number
  private readonly maxOpenClients: number
  private readonly inboundConnectionThreshold: number
  private readonly inboundUpgradeTimeoutMs: number
  private readonly maxPendingInbound: number
  private readonly maxPendingInboundFromMembers: number
  private readonly pendingInbound: PendingInbound<MultiaddrConnection>
  private readonly onError: (error: unknown, context: string) => void

  private state: State = 'new'
  private node: Libp2p | undefined
  private handler: ((from: string, bytes: Uint8Array) => void) | undefined
  private readonly peers = new Map<string, PeerState>()
  private readonly byPeerId = new Map<string, PeerState>()
  private openClients = 0
  private dirty = new Set<PeerState>()
  private flushScheduled = false
  private readonly dialAborts = new Set<AbortController>()
  private readonly connectWaiters = new Set<() => void>()
  private starting: Promise<void> | undefined
  private stopping: Promise<void> | undefined
  private unknownPeerDrops = 0
  private refusedConnections = 0
  private refusedStreams = 0
  private handlerErrors = 0

  constructor(init: Libp2pTransportInit) {
    this.membership = init.membership
    if (!(init.keyPair?.seed instanceof Uint8Array) || init.keyPair.seed.length !== 32) {
      throw new TransportConfigError('keyPair.seed: expected the 32-byte Ed25519 seed')
    }
    this.seed = init.keyPair.seed
    this.peerId = peerIdOf(init.keyPair.publicKey)
    this.maxFrameBytes = positiveInteger('maxFrameBytes', init.maxFrameBytes, DEFAULTS.maxFrameBytes, MAX_FRAME_HEADER_VALUE)
    this.maxQueueFrames = positiveInteger('maxQueueFrames', init.maxQueueFrames, DEFAULTS.maxQueueFrames)
    this.maxQueueBytes = positiveInteger('maxQueueBytes', init.maxQueueBytes, DEFAULTS.maxQueueBytes)
    this.maxBatchBytes = positiveInteger('maxBatchBytes', init.maxBatchBytes, DEFAULTS.maxBatchBytes)
    this.reconnectInitialDelayMs = positiveInteger('reconnectInitialDelayMs', init.reconnectInitialDelayMs, DEFAULTS.reconnectInitialDelayMs)
    this.reconnectMaxDelayMs = positiveInteger('reconnectMaxDelayMs', init.reconnectMaxDelayMs, DEFAULTS.reconnectMaxDelayMs)
    this.reconnectFactor = init.reconnectFactor ?? DEFAULTS.reconnectFactor
    if (!(this.reconnectFactor >= 1)) throw new TransportConfigError(`reconnectFactor: expected a number >= 1, got ${this.reconnectFactor}`)
    this.dialTimeoutMs = positiveInteger('dialTimeoutMs', init.dialTimeoutMs, DEFAULTS.dialTimeoutMs)
    this.maxConnections = positiveInteger('maxConnections', init.maxConnections, DEFAULTS.maxConnections)
    this.maxOpenClients = positiveInteger('maxOpenClients', init.maxOpenClients, DEFAULTS.maxOpenClients)
    this.inboundConnectionThreshold = positiveInteger('inboundConnectionThreshold', init.inboundConnectionThreshold, DEFAULTS.inboundConnectionThreshold)
    this.inboundUpgradeTimeoutMs = positiveInteger('inboundUpgradeTimeoutMs', init.inboundUpgradeTimeoutMs, DEFAULTS.inboundUpgradeTimeoutMs)
    const perAddress = positiveInteger('maxPendingInboundPerAddress', init.maxPendingInboundPerAddress, DEFAULTS.maxPendingInboundPerAddress)
    this.maxPendingInbound = positiveInteger('maxPendingInbound', init.maxPendingInbound, DEFAULTS.maxPendingInbound)
    this.maxPendingInboundFromMembers = positiveInteger('maxPendingInboundFromMembers', init.maxPendingInboundFromMembers, DEFAULTS.maxPendingInboundFromMembers)
    const memberIps: string[] = []
    for (const m of this.membership.members) {
      for (const a of m.addrs) {
        const parsed = parseTcpMultiaddr(a)
        if ('addr' in parsed && (parsed.addr.kind === 'ip4' || parsed.addr.kind === 'ip6')) memberIps.push(parsed.addr.host)
      }
    }
    this.pendingInbound = new PendingInbound({ perAddress, others: this.maxPendingInbound, members: this.maxPendingInboundFromMembers }, memberIps)
    this.onError = init.onError ?? noop

    const self = this.membership.byPeer(this.peerId)
    if (init.listen !== undefined) checkListen(init.listen)
    if (isMember(self)) {
      this.role = 'replica'
      this.id = self.id
      this.listen = init.listen ?? self.addrs
      if (this.listen.length === 0) throw new TransportConfigError(`member ${self.id} has no addrs in the membership; pass \`listen\``)
    } else if (self !== undefined) {
      this.role = 'client'
      this.id = self.id
      this.listen = init.listen ?? []
    } else if (this.membership.openClients) {
      this.role = 'client'
      this.id = openClientId(this.peerId)
      this.listen = init.listen ?? []
    } else {
      throw new TransportConfigError(`key ${this.peerId} is not in the membership and the membership does not allow open clients`)
    }

    this.addPeer(this.id, 'self', this.peerId, [])
    for (const m of this.membership.members) {
      if (m.id === this.id) continue
      this.addPeer(m.id, 'replica', m.peerId, m.addrs)
    }
    if (this.role === 'replica') {
      for (const c of this.membership.clients.values()) this.addPeer(c.id, 'client', c.peerId, [])
    }
  }

  /** Multiaddrs the node listens on, with `/p2p/<peerId>` (after start; port 0 resolved). */
  get listenAddrs(): string[] {
    return this.node?.getMultiaddrs().map((a) => a.toString()) ?? []
  }

  /** Ids this node can send to, itself included. */
  get peerIds(): string[] {
    return [...this.peers.keys()]
  }

  /** Starts listening (replicas) and dialling; resolves once the node runs. Frames sent before are queued. */
  start(): Promise<void> {
    if (this.state === 'started') return Promise.resolve()
    if (this.starting !== undefined && this.state === 'starting') return this.starting
    if (this.state !== 'new') return Promise.reject(new TransportStateError(`start() in state ${this.state}: a stopped transport cannot be restarted; create a new one`))
    this.state = 'starting'
    this.starting = this.doStart()
    return this.starting
  }

  private async doStart(): Promise<void> {
    try {
      const privateKey = await generateKeyPairFromSeed('Ed25519', this.seed)
      const gater = {
        denyDialPeer: (peer: PeerId) => !this.mayDial(peer.toString()),
        denyOutboundEncryptedConnection: (peer: PeerId) => !this.mayDial(peer.toString()),
        // Runs when TCP has accepted, before any handshake byte is read.
        denyInboundConnection: (maConn: MultiaddrConnection) => !this.admitPending(maConn),
        // Runs after Noise has proven the remote's key.
        denyInboundEncryptedConnection: (peer: PeerId, maConn: MultiaddrConnection) => {
          const deny = !this.mayAccept(peer.toString())
          if (deny) {
            this.refusedConnections++
            this.pendingInbound.release(maConn, 'refused')
          }
          return deny
        },
        // Runs once Yamux is agreed too: the handshake is over.
        denyInboundUpgradedConnection: (_peer: PeerId, maConn: MultiaddrConnection) => {
          this.pendingInbound.release(maConn, 'upgraded')
          return false
        },
      }
      const node = await createLibp2p({
        privateKey,
        addresses: { listen: [...this.listen] },
        transports: [tcp()],
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()],
        connectionGater: gater,
        connectionManager: {
          maxConnections: this.maxConnections,
          inboundConnectionThreshold: this.inboundConnectionThreshold,
          dialTimeout: this.dialTimeoutMs,
          connectionCloseTimeout: 500,
          inboundUpgradeTimeout: this.inboundUpgradeTimeoutMs + LIBP2P_UPGRADE_TIMEOUT_MARGIN_MS,
          // The gater's bounds above are the real limit; libp2p's single global count (default 10,
          // released a few microtasks after ours) must never refuse first.
          maxIncomingPendingConnections: 2 * (this.maxPendingInbound + this.maxPendingInboundFromMembers),
          // Members' addresses skip libp2p's global pending count, its per-host rate limit and
          // maxConnections, and are never pruned: open clients cannot crowd out a member.
          // (An IPv4 address also in its IPv4-mapped form, as a dual-stack listener reports it.)
          allow: this.pendingInbound.memberAddresses.flatMap((ip) => (ip.includes(':') ? [`/ip6/${ip}`] : [`/ip4/${ip}`, `/ip6/::ffff:${ip}`])),
        },
        start: false,
      })
      this.node = node
      if (node.peerId.toString() !== this.peerId) throw new TransportConfigError('libp2p derived a different peer id from the key')
      await node.handle(PROTOCOL, (stream, connection) => this.onInboundStream(stream, connection), {
        maxInboundStreams: 4,
        maxOutboundStreams: 4,
      })
      if (this.state !== 'starting') return // stop() was called meanwhile; it stops the node
      try {
        await node.start()
      } catch (err) {
        // Typically an address the OS will not give us (in use, not local): the options are wrong.
        if ((err as Error)?.name === 'UnsupportedListenAddressesError') {
          throw new TransportConfigError(`cannot listen on ${this.listen.join(', ')}: ${(err as Error).message}`, { cause: err })
        }
        throw err
      }
    } catch (err) {
      if (this.state === 'starting') this.state = 'stopped'
      try {
        await this.node?.stop()
      } catch {
        // the start error is the one worth reporting
      }
      throw err
    }
    if (this.state !== 'starting') return
    this.state = 'started'
    for (const peer of this.peers.values()) {
      if (peer.dialer) void this.connect(peer)
      if (peer.queue.length > 0) this.markDirty(peer)
    }
  }

  async stop(): Promise<void> {
    if (this.state === 'new') {
      this.state = 'stopped'
      return
    }
    if (this.stopping !== undefined) return this.stopping
    const wasStarting = this.state === 'starting'
    this.state = 'stopping'
    this.stopping = (async () => {
      if (wasStarting) await this.starting?.catch(noop)
      for (const ac of this.dialAborts) ac.abort(new TransportStateError('transport stopped'))
      this.dialAborts.clear()
      for (const peer of this.peers.values()) {
        if (peer.retryTimer !== undefined) clearTimeout(peer.retryTimer)
        peer.retryTimer = undefined
        peer.drops.discarded += peer.queue.clear()
        const stream = peer.stream
        peer.stream = undefined
        stream?.abort(new TransportStateError('transport stopped'))
      }
      this.dirty.clear()
      for (const wake of this.connectWaiters) wake()
      try {
        // Abort rather than close gracefully: queued frames are already discarded, and a graceful
        // close waits for each remote (connectionCloseTimeout) before libp2p gives up.
        for (const connection of this.node?.getConnections() ?? []) connection.abort(new TransportStateError('transport stopped'))
        await this.node?.stop()
      } finally {
        this.pendingInbound.clear() // their timers: libp2p has closed the sockets
        this.state = 'stopped'
      }
    })()
    return this.stopping
  }

  onMessage(handler: (from: string, bytes: Uint8Array) => void): void {
    this.handler = handler
  }

  send(to: string, bytes: Uint8Array): boolean {
    if (!(bytes instanceof Uint8Array)) throw new TypeError('send: bytes must be a Uint8Array')
    const peer = this.peers.get(to)
    if (peer === undefined) {
      this.unknownPeerDrops++
      return false
    }
    if (this.state === 'stopping' || this.state === 'stopped') {
      peer.drops.stopped++
      return false
    }
    if (bytes.byteLength > this.maxFrameBytes) {
      peer.drops.oversize++
      return false
    }
    const q = peer.queue
    if (q.length >= this.maxQueueFrames || q.bytes + bytes.byteLength > this.maxQueueBytes) {
      peer.drops.queueFull++
      return false
    }
    q.push(bytes)
    this.markDirty(peer)
    return true
  }

  /** True when a frame stream to `id` is open (always true for this node's own id once started). */
  isConnected(id: string): boolean {
    const peer = this.peers.get(id)
    if (peer === undefined) return false
    return peer.kind === 'self' ? this.state === 'started' : peer.stream !== undefined
  }

  /** Frames waiting in the queue for `id` (0 for unknown ids). */
  queueDepth(id: string): number {
    return this.peers.get(id)?.queue.length ?? 0
  }

  /** Resolves once every id in `ids` has an open stream; rejects with TransportTimeoutError after `timeoutMs`. */
  whenConnected(ids: Iterable<string>, timeoutMs = 10_000): Promise<void> {
    const wanted = [...ids]
    for (const id of wanted) if (!this.peers.has(id)) return Promise.reject(new TransportConfigError(`whenConnected: ${id} is not a peer of ${this.id}`))
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (this.state === 'stopping' || this.state === 'stopped') {
          done()
          reject(new TransportStateError('transport stopped'))
        } else if (wanted.every((id) => this.isConnected(id))) {
          done()
          resolve()
        }
      }
      const timer = setTimeout(() => {
        done()
        const missing = wanted.filter((id) => !this.isConnected(id))
        reject(new TransportTimeoutError(`${this.id}: no stream to ${missing.join(', ')} after ${timeoutMs} ms`))
      }, timeoutMs)
      const done = (): void => {
        clearTimeout(timer)
        this.connectWaiters.delete(check)
      }
      this.connectWaiters.add(check)
      check()
    })
  }

  metrics(): TransportMetrics {
    const peers: Record<string, PeerMetrics> = {}
    for (const p of this.peers.values()) {
      const d = p.drops
      peers[p.id] = {
        id: p.id,
        kind: p.kind,
        connected: this.isConnected(p.id),
        framesOut: p.framesOut,
        bytesOut: p.bytesOut,
        framesIn: p.framesIn,
        bytesIn: p.bytesIn,
        drops: { ...d },
        dropped: d.queueFull + d.oversize + d.stopped + d.discarded + d.oversizeIn + d.truncatedIn,
        connects: p.connects,
        reconnects: Math.max(0, p.connects - 1),
        dialFailures: p.dialFailures,
        queueDepth: p.queue.length,
        queueBytes: p.queue.bytes,
      }
    }
    return {
      id: this.id,
      peers,
      unknownPeerDrops: this.unknownPeerDrops,
      refusedConnections: this.refusedConnections,
      refusedStreams: this.refusedStreams,
      handlerErrors: this.handlerErrors,
      preHandshake: this.pendingInbound.metrics(),
    }
  }

  // ---- peers and admission -------------------------------------------------------------

  private addPeer(id: string, kind: PeerKind, peerId: string, addrs: readonly string[]): PeerState {
    // Replicas: the lower id dials, so each pair has one connection and one stream.
    // Clients dial replicas; replicas never dial clients.
    const dialer = kind === 'replica' && (this.role === 'client' || this.id < id)
    const peer: PeerState = {
      id,
      kind,
      peerId,
      dialer,
      addrs: dialer ? dialAddrs(id, addrs, peerId) : [],
      queue: new FrameQueue(),
      stream: undefined,
      dialing: false,
      retryTimer: undefined,
      backoffMs: this.reconnectInitialDelayMs,
      framesOut: 0,
      bytesOut: 0,
      framesIn: 0,
      bytesIn: 0,
      drops: { queueFull: 0, oversize: 0, stopped: 0, discarded: 0, oversizeIn: 0, truncatedIn: 0 },
      connects: 0,
      dialFailures: 0,
    }
    this.peers.set(id, peer)
    if (kind !== 'self') this.byPeerId.set(peerId, peer)
    return peer
  }

  /**
   * Takes a pre-handshake slot for a connection TCP has just accepted (false: refuse it). The slot
   * is given back when the handshake finishes, the connection closes, or the deadline passes.
   */
  private admitPending(maConn: MultiaddrConnection): boolean {
    if ((this.state !== 'started' && this.state !== 'starting') || maConn.status !== 'open') return false
    const ip = maConn.remoteAddr.getComponents().find((c) => c.name === 'ip4' || c.name === 'ip6')?.value
    let deadline: ReturnType<typeof setTimeout> | undefined
    const onClose = (): void => {
      this.pendingInbound.release(maConn, 'failed')
    }
    const admitted = this.pendingInbound.admit(maConn, ip, () => {
      clearTimeout(deadline)
      maConn.removeEventListener('close', onClose)
    })
    if (!admitted) return false
    deadline = setTimeout(() => {
      if (this.pendingInbound.release(maConn, 'timed-out')) {
        maConn.abort(new TransportTimeoutError(`handshake not finished within ${this.inboundUpgradeTimeoutMs} ms`))
      }
    }, this.inboundUpgradeTimeoutMs)
    deadline.unref()
    maConn.addEventListener('close', onClose)
    return true
  }

  private mayDial(peerId: string): boolean {
    return this.byPeerId.get(peerId)?.dialer === true
  }

  private mayAccept(peerId: string): boolean {
    if (this.role !== 'replica' || peerId === this.peerId) return false
    if (this.membership.byPeer(peerId) !== undefined) return true
    return this.membership.openClients
  }

  private onInboundStream(stream: Stream, connection: Connection): void {
    const why = this.admit(connection.remotePeer.toString())
    if (typeof why === 'string') {
      this.refusedStreams++
      stream.abort(new Error(why))
      return
    }
    this.attach(why, stream)
  }

  /** The peer an inbound frame stream belongs to, or why it is refused. */
  private admit(remote: string): PeerState | string {
    if (this.state !== 'started') return 'not started'
    if (this.role !== 'replica') return 'clients accept no streams'
    const known = this.byPeerId.get(remote)
    if (known !== undefined) return known.dialer ? `${known.id} must not open the stream to ${this.id}` : known
    // The gater lets unknown peers through only when the membership allows open clients.
    if (!this.membership.openClients || this.membership.byPeer(remote) !== undefined) return 'unknown peer'
    if (this.openClients >= this.maxOpenClients) return 'too many open clients'
    this.openClients++
    return this.addPeer(openClientId(remote), 'open-client', remote, [])
  }

  // ---- connections ---------------------------------------------------------------------

  private async connect(peer: PeerState): Promise<void> {
    if (this.state !== 'started' || peer.stream !== undefined || peer.dialing || this.node === undefined) return
    if (peer.retryTimer !== undefined) {
      clearTimeout(peer.retryTimer)
      peer.retryTimer = undefined
    }
    if (peer.addrs.length === 0) {
      peer.dialFailures++
      this.onError(new TransportConfigError(`${peer.id} has no addrs to dial`), `dial ${peer.id}`)
      return
    }
    peer.dialing = true
    const ac = new AbortController()
    this.dialAborts.add(ac)
    const signal = AbortSignal.any([ac.signal, AbortSignal.timeout(this.dialTimeoutMs)])
    try {
      const connection = await this.node.dial(peer.addrs, { signal })
      const stream = await connection.newStream(PROTOCOL, { signal })
      if (this.state !== 'started') {
        stream.abort(new TransportStateError('transport stopped'))
        return
      }
      this.attach(peer, stream)
    } catch (err) {
      if (this.state !== 'started') return
      peer.dialFailures++
      this.onError(err, `dial ${peer.id}`)
      this.scheduleRetry(peer)
    } finally {
      peer.dialing = false
      this.dialAborts.delete(ac)
    }
  }

  private scheduleRetry(peer: PeerState): void {
    if (this.state !== 'started' || !peer.dialer || peer.retryTimer !== undefined) return
    const delay = peer.backoffMs * (0.8 + 0.4 * Math.random())
    peer.backoffMs = Math.min(this.reconnectMaxDelayMs, peer.backoffMs * this.reconnectFactor)
    peer.retryTimer = setTimeout(() => {
      peer.retryTimer = undefined
      void this.connect(peer)
    }, delay)
  }

  private attach(peer: PeerState, stream: Stream): void {
    const old = peer.stream
    if (old !== undefined) {
      // A peer that restarted dials again before we noticed its old connection died.
      peer.stream = undefined
      old.abort(new Error('replaced by a newer stream'))
    }
    peer.stream = stream
    peer.connects++
    const attachedAt = Date.now()
    const decoder = new FrameDecoder(this.maxFrameBytes, {
      frame: (bytes) => this.deliver(peer, bytes),
      oversize: () => {
        peer.drops.oversizeIn++
      },
    })
    stream.addEventListener('message', (evt) => {
      const data = evt.data
      if (data instanceof Uint8Array) decoder.push(data)
      else for (const chunk of data) decoder.push(chunk)
    })
    stream.addEventListener('drain', () => {
      if (peer.stream === stream && peer.queue.length > 0) this.markDirty(peer)
    })
    stream.addEventListener('remoteCloseWrite', () => {
      // Close our half too, or half-closed streams pile up (TOOLCHAIN.md pitfall 10).
      stream.close().catch(() => stream.abort(new Error('close failed')))
    })
    stream.addEventListener(
      'close',
      () => {
        if (decoder.midFrame) peer.drops.truncatedIn++
        decoder.reset()
        if (peer.stream !== stream) return
        peer.stream = undefined
        if (peer.kind === 'open-client') {
          this.peers.delete(peer.id)
          this.byPeerId.delete(peer.peerId)
          this.openClients--
          peer.drops.discarded += peer.queue.clear()
          this.dirty.delete(peer)
        } else if (peer.dialer) {
          // Back off afresh only after a stream that lasted: a peer that accepts and at once
          // resets (a rule or config mismatch) sees the delays grow, not a 100 ms loop.
          if (Date.now() - attachedAt > this.reconnectMaxDelayMs) peer.backoffMs = this.reconnectInitialDelayMs
          this.scheduleRetry(peer)
        }
      },
      { once: true },
    )
    if (peer.queue.length > 0) this.markDirty(peer)
    for (const wake of [...this.connectWaiters]) wake()
  }

  // ---- data path -----------------------------------------------------------------------

  private deliver(peer: PeerState, bytes: Uint8Array): void {
    if (this.state !== 'started') return
    peer.framesIn++
    peer.bytesIn += bytes.byteLength
    const handler = this.handler
    if (handler === undefined) return
    try {
      handler(peer.id, bytes)
    } catch (err) {
      this.handlerErrors++
      this.onError(err, `onMessage from ${peer.id}`)
    }
  }

  private markDirty(peer: PeerState): void {
    this.dirty.add(peer)
    if (this.flushScheduled) return
    this.flushScheduled = true
    // Everything sent in this event-loop turn goes out together: one stream write per peer.
    setImmediate(() => this.flush())
  }

  private flush(): void {
    this.flushScheduled = false
    if (this.state !== 'started') return
    const batch = this.dirty
    this.dirty = new Set()
    for (const peer of batch) this.writeOut(peer)
  }

  private writeOut(peer: PeerState): void {
    const q = peer.queue
    if (peer.kind === 'self') {
      // Loopback: deliver what was queued before this flush; later sends go in the next turn.
      for (const frame of q.take(q.length)) {
        peer.framesOut++
        peer.bytesOut += frame.byteLength
        this.deliver(peer, frame)
      }
      return
    }
    const stream = peer.stream
    while (q.length > 0) {
      if (stream === undefined || stream.writeStatus !== 'writable' || stream.writableNeedsDrain) return
      let n = 0
      let bytes = 0
      while (n < q.length) {
        const size = FRAME_HEADER_BYTES + q.at(n).byteLength
        if (n > 0 && bytes + size > this.maxBatchBytes) break
        bytes += size
        n++
      }
      const frames = q.take(n)
      const payload = bytes - n * FRAME_HEADER_BYTES
      let accepted: boolean
      try {
        accepted = stream.send(encodeFrames(frames))
      } catch (err) {
        peer.drops.discarded += n
        this.onError(err, `write to ${peer.id}`)
        stream.abort(err instanceof Error ? err : new Error(String(err)))
        return
      }
      peer.framesOut += n
      peer.bytesOut += payload
      // false: yamux's buffer is full; the 'drain' listener resumes (pitfall 9: not onDrain()).
      if (!accepted) return
    }
  }
}

/** Creates a transport for the member or client whose key is `init.keyPair`; call `start()` next. */
export function createLibp2pTransport(init: Libp2pTransportInit): Libp2pTransport {
  return new Libp2pTransport(init)
}
