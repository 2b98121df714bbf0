/**
 * Accounting of inbound connections that have not finished their handshake: TCP accepted, Noise
 * and Yamux not yet done, so nothing proves who is at the other end. Each remote address may hold
 * a few such connections; addresses of members share a pool of their own, so hosts without a key
 * cannot crowd out a member that reconnects. No I/O and no timers here: the transport wires it to
 * libp2p's connection gater and enforces the handshake deadline.
 */
import { ipv6Bytes, isIpv4 } from '@bftrc/crypto'

export interface PendingLimits {
  /** Pending connections from one address that is not a member's (an IPv6 address counts per /64). */
  readonly perAddress: number
  /** Pending connections from all addresses that are not members', together. */
  readonly others: number
  /** Pending connections from members' addresses, together (no per-address bound among them). */
  readonly members: number
}

export interface PreHandshakeMetrics {
  /** Inbound connections accepted by TCP whose handshake (Noise, then Yamux) has not finished, now. */
  readonly pending: number
  /** Of those, the ones from members' addresses. */
  readonly pendingFromMembers: number
  /** Refused at once: `maxPendingInboundPerAddress` connections from that address were pending already. */
  readonly refusedPerAddress: number
  /** Refused at once: the pool for the address (others' or members') was full. */
  readonly refusedPoolFull: number
  /** Closed because the handshake did not finish within `inboundUpgradeTimeoutMs`. */
  readonly timedOut: number
  /** Closed before the handshake finished for another reason: garbage, a hang-up (not a refused key: `refusedConnections`). */
  readonly failed: number
}

/** How a pending connection stopped being pending. */
export type PendingOutcome = 'upgraded' | 'refused' | 'timed-out' | 'failed'

/**
 * The canonical text of an IP address: IPv4 dotted quads as they are, IPv6 as 8 hex groups, an
 * IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, how a dual-stack socket reports an IPv4 peer) as
 * its IPv4 address. Undefined for anything that is not an IP address.
 */
export function canonicalIp(ip: string): string | undefined {
  if (isIpv4(ip)) return ip
  const b = ipv6Bytes(ip)
  if (b === undefined) return undefined
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`
  const words: string[] = []
  for (let i = 0; i < 16; i += 2) words.push((((b[i] as number) << 8) | (b[i + 1] as number)).toString(16))
  return words.join(':')
}

/** The bucket per-address bounds count in: the IPv4 address, or the /64 of an IPv6 address (one host usually owns a whole /64). */
function bucketOf(canonical: string | undefined): string {
  if (canonical === undefined) return '(not an IP address)'
  return canonical.includes(':') ? `${canonical.split(':').slice(0, 4).join(':')}::/64` : canonical
}

/** Whether an address names a host (unspecified addresses such as 0.0.0.0 only say "listen everywhere"). */
function isSpecified(canonical: string): boolean {
  return canonical !== '0.0.0.0' && canonical !== '0:0:0:0:0:0:0:0'
}

interface Slot {
  readonly bucket: string
  readonly member: boolean
  readonly onRelease: () => void
}

export class PendingInbound<C extends object> {
  private readonly slots = new Map<C, Slot>()
  private readonly byBucket = new Map<string, number>()
  private readonly memberIps: ReadonlySet<string>
  private fromMembers = 0
  private fromOthers = 0
  private refusedPerAddress = 0
  private refusedPoolFull = 0
  private timedOut = 0
  private failed = 0

  /** `memberIps`: the IP addresses members are configured at (host names and unspecified addresses are ignored). */
  constructor(
    private readonly limits: PendingLimits,
    memberIps: Iterable<string>,
  ) {
    const set = new Set<string>()
    for (const ip of memberIps) {
      const c = canonicalIp(ip)
      if (c !== undefined && isSpecified(c)) set.add(c)
    }
    this.memberIps = set
  }

  /** The members' IP addresses, canonical (see `canonicalIp`). */
  get memberAddresses(): string[] {
    return [...this.memberIps]
  }

  /**
   * Takes a slot for `conn` from `ip` (undefined: not an IP connection, counted as one unknown
   * address), or refuses it and counts why. `onRelease` runs once when the slot is given back.
   */
  admit(conn: C, ip: string | undefined, onRelease: () => void = () => {}): boolean {
    if (this.slots.has(conn)) return true
    const canonical = ip === undefined ? undefined : canonicalIp(ip)
    const member = canonical !== undefined && this.memberIps.has(canonical)
    const bucket = bucketOf(canonical)
    if (member) {
      if (this.fromMembers >= this.limits.members) {
        this.refusedPoolFull++
        return false
      }
      this.fromMembers++
    } else {
      const n = this.byBucket.get(bucket) ?? 0
      if (n >= this.limits.perAddress) {
        this.refusedPerAddress++
        return false
      }
      if (this.fromOthers >= this.limits.others) {
        this.refusedPoolFull++
        return false
      }
      this.fromOthers++
      this.byBucket.set(bucket, n + 1)
    }
    this.slots.set(conn, { bucket, member, onRelease })
    return true
  }

  /** Gives back `conn`'s slot and counts how it ended; false (and nothing counted) when it held none. */
  release(conn: C, outcome: PendingOutcome): boolean {
    const slot = this.slots.get(conn)
    if (slot === undefined) return false
    this.slots.delete(conn)
    if (slot.member) {
      this.fromMembers--
    } else {
      this.fromOthers--
      const n = (this.byBucket.get(slot.bucket) ?? 1) - 1
      if (n === 0) this.byBucket.delete(slot.bucket)
      else this.byBucket.set(slot.bucket, n)
    }
    if (outcome === 'timed-out') this.timedOut++
    else if (outcome === 'failed') this.failed++
    slot.onRelease()
    return true
  }

  /** Gives back every slot (the transport stopped); nothing is counted. */
  clear(): void {
    for (const conn of [...this.slots.keys()]) this.release(conn, 'refused')
  }

  metrics(): PreHandshakeMetrics {
    return {
      pending: this.fromMembers + this.fromOthers,
      pendingFromMembers: this.fromMembers,
      refusedPerAddress: this.refusedPerAddress,
      refusedPoolFull: this.refusedPoolFull,
      timedOut: this.timedOut,
      failed: this.failed,
    }
  }
}
