/**
 * Static membership: named groups of replicas, each with its `f` and ordered members, the
 * unreplicated clients allowed to connect, and the upgrade authority. Loaded from one JSON file;
 * every mistake is a ConfigError naming the field.
 */
import { parseTcpMultiaddr } from './addr.js'
import { digestOf } from './digest.js'
import { ConfigError, KeyError } from './errors.js'
import { PUBLIC_KEY_BYTES, fromHex, peerIdOf, publicKeyObject } from './keys.js'

export interface MemberConfig {
  readonly publicKey: string
  readonly addrs: readonly string[]
}
export interface GroupConfig {
  readonly f: number
  readonly members: readonly MemberConfig[]
}
export interface ClientConfig {
  readonly id: string
  readonly publicKey: string
}
export interface MembershipConfig {
  readonly version: 1
  /**
   * A name that sets this deployment apart from any other that reuses the same keys (optional).
   * It goes into the deployment id, which every signed statement carries.
   */
  readonly deployment?: string
  readonly groups: Readonly<Record<string, GroupConfig>>
  readonly clients?: { readonly open: boolean; readonly members: readonly ClientConfig[] }
  readonly upgradeAuthority?: { readonly threshold: number; readonly publicKeys: readonly string[] }
}

export interface Member {
  /** `"<group>/<index>"` */
  readonly id: string
  readonly group: string
  readonly index: number
  readonly publicKey: Uint8Array
  readonly peerId: string
  readonly addrs: readonly string[]
}

export interface Group {
  readonly name: string
  readonly f: number
  readonly n: number
  readonly members: readonly Member[]
  /**
   * ⌈(n+f+1)/2⌉ (2f+1 when n = 3f+1): any two quorums share at least f+1 members, so at least one
   * correct member, and n-f members (the correct ones) always make a quorum.
   */
  readonly quorum: number
  /** f+1: enough that at least one member is correct. */
  readonly weakQuorum: number
}

export interface Client {
  readonly id: string
  readonly publicKey: Uint8Array
  readonly peerId: string
}

export const GROUP_NAME = /^[a-z][a-z0-9-]{0,31}$/
const DEPLOYMENT_NAME = /^[A-Za-z0-9._-]{1,64}$/
export const CLIENT_ID = /^[A-Za-z0-9._-]{1,64}$/
export const MAX_MEMBERS_PER_GROUP = 256
export const MAX_GROUPS = 64
export const MAX_CLIENTS = 100_000
const MAX_ADDRS = 16
const MAX_ADDR_LENGTH = 256

/** Options of a programmatic membership; a config file never sets them. */
export interface MembershipOptions {
  /**
   * Accept groups with f = 0 (no fault tolerance): for tests of the transport and of the
   * unreplicated baseline only. A config file parsed with `Membership.parse` never gets it.
   */
  readonly allowZeroFaultTolerance?: boolean
}

/** The quorum of a group of n members tolerating f faults: ⌈(n+f+1)/2⌉. */
export function quorumOf(n: number, f: number): number {
  return Math.ceil((n + f + 1) / 2)
}

export function replicaId(group: string, index: number): string {
  return `${group}/${index}`
}

/** Splits `"<group>/<index>"`; undefined for anything else. */
export function parseReplicaId(id: string): { group: string; index: number } | undefined {
  if (typeof id !== 'string') return undefined
  const slash = id.indexOf('/')
  if (slash <= 0) return undefined
  const group = id.slice(0, slash)
  const rest = id.slice(slash + 1)
  if (!GROUP_NAME.test(group) || !/^(0|[1-9][0-9]{0,3})$/.test(rest)) return undefined
  return { group, index: Number(rest) }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

function checkKeys(obj: Record<string, unknown>, field: string, allowed: readonly string[]): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) throw new ConfigError(field === '' ? key : `${field}.${key}`, `unknown field (allowed: ${allowed.join(', ')})`)
  }
}

function parsePublicKey(v: unknown, field: string, seen: Map<string, string>): Uint8Array {
  if (typeof v !== 'string') throw new ConfigError(field, `expected ${PUBLIC_KEY_BYTES * 2} hex characters`)
  let key: Uint8Array
  try {
    key = fromHex(v, PUBLIC_KEY_BYTES)
    publicKeyObject(key)
  } catch (err) {
    throw new ConfigError(field, err instanceof KeyError ? err.message : 'not an Ed25519 public key')
  }
  const hex = v.toLowerCase()
  const other = seen.get(hex)
  if (other !== undefined) throw new ConfigError(field, `same public key as ${other}: every identity needs its own key`)
  seen.set(hex, field)
  return key
}

type JsonFrame = { readonly keys: Set<string>; key: string; expectKey: boolean } | { index: number }

/**
 * The path (as in ConfigError.field) of the first key repeated within one object of `text`, which
 * must be valid JSON (JSON.parse has accepted it); undefined when every object's keys are unique.
 */
function duplicateJsonKey(text: string): string | undefined {
  const stack: JsonFrame[] = []
  const path = (last: string): string => {
    let out = ''
    for (let k = 0; k < stack.length - 1; k++) {
      const frame = stack[k] as JsonFrame
      out += 'keys' in frame ? (out === '' ? frame.key : `.${frame.key}`) : `[${frame.index}]`
    }
    return out === '' ? last : `${out}.${last}`
  }
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    const top = stack[stack.length - 1]
    if (c === 0x22 /* " */) {
      let j = i + 1
      while (j < text.length && text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1
      if (top !== undefined && 'keys' in top && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string
        if (top.keys.has(key)) return path(key)
        top.keys.add(key)
        top.key = key
        top.expectKey = false
      }
      i = j
    } else if (c === 0x7b /* { */) stack.push({ keys: new Set(), key: '', expectKey: true })
    else if (c === 0x5b /* [ */) stack.push({ index: 0 })
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) stack.pop()
    else if (c === 0x2c /* , */ && top !== undefined) {
      if ('keys' in top) top.expectKey = true
      else top.index++
    }
  }
  return undefined
}

export class Membership {
  readonly groups: ReadonlyMap<string, Group>
  readonly clients: ReadonlyMap<string, Client>
  readonly openClients: boolean
  readonly upgradeAuthority: { readonly threshold: number; readonly publicKeys: readonly Uint8Array[] } | undefined
  private readonly membersById = new Map<string, Member>()
  private readonly byPeerId = new Map<string, Member | Client>()

  /**
   * The deployment id: a digest of every identity the membership trusts (groups, f, member keys,
   * clients, open clients, upgrade authority, the optional deployment name), not of addresses.
   * Every signed statement carries it, so nothing signed for one deployment verifies in another.
   */
  readonly deployment: Uint8Array

  private constructor(readonly config: MembershipConfig, options: MembershipOptions = {}) {
    const seenKeys = new Map<string, string>()
    if (!isObject(config)) throw new ConfigError('(root)', 'expected an object')
    checkKeys(config, '', ['version', 'deployment', 'groups', 'clients', 'upgradeAuthority'])
    if (config.version !== 1) throw new ConfigError('version', 'expected 1')
    if (config.deployment !== undefined && (typeof config.deployment !== 'string' || !DEPLOYMENT_NAME.test(config.deployment))) {
      throw new ConfigError('deployment', 'expected 1-64 of A-Z a-z 0-9 . _ -')
    }
    if (!isObject(config.groups)) throw new ConfigError('groups', 'expected an object of named groups')
    const names = Object.keys(config.groups)
    if (names.length === 0) throw new ConfigError('groups', 'at least one group is needed')
    if (names.length > MAX_GROUPS) throw new ConfigError('groups', `at most ${MAX_GROUPS} groups`)
    const groups = new Map<string, Group>()
    for (const name of names) {
      const field = `groups.${name}`
      if (!GROUP_NAME.test(name)) throw new ConfigError(field, 'group names are 1-32 of a-z, 0-9 and -, starting with a letter')
      const g = config.groups[name]
      if (!isObject(g)) throw new ConfigError(field, 'expected an object')
      checkKeys(g, field, ['f', 'members'])
      if (typeof g.f !== 'number' || !Number.isInteger(g.f) || g.f < 0) throw new ConfigError(`${field}.f`, 'expected a whole number >= 1')
      if (!Array.isArray(g.members)) throw new ConfigError(`${field}.members`, 'expected an array')
      const n = g.members.length
      if (n < 3 * g.f + 1) throw new ConfigError(`${field}.members`, `f=${g.f} needs at least ${3 * g.f + 1} members (n >= 3f+1), found ${n}`)
      if (n > MAX_MEMBERS_PER_GROUP) throw new ConfigError(`${field}.members`, `at most ${MAX_MEMBERS_PER_GROUP} members`)
      const members: Member[] = []
      // Index loops, not map/forEach: those skip the holes of a sparse array passed to fromConfig.
      for (let index = 0; index < n; index++) {
        const m: unknown = g.members[index]
        const mf = `${field}.members[${index}]`
        if (!isObject(m)) throw new ConfigError(mf, 'expected an object')
        checkKeys(m, mf, ['publicKey', 'addrs'])
        const publicKey = parsePublicKey(m.publicKey, `${mf}.publicKey`, seenKeys)
        if (!Array.isArray(m.addrs) || m.addrs.length > MAX_ADDRS) throw new ConfigError(`${mf}.addrs`, `expected an array of at most ${MAX_ADDRS} multiaddrs`)
        for (let i = 0; i < m.addrs.length; i++) {
          const a: unknown = m.addrs[i]
          if (typeof a !== 'string' || a.length > MAX_ADDR_LENGTH) {
            throw new ConfigError(`${mf}.addrs[${i}]`, `expected a multiaddr string of at most ${MAX_ADDR_LENGTH} characters such as /ip4/127.0.0.1/tcp/7001`)
          }
          const parsed = parseTcpMultiaddr(a)
          if ('error' in parsed) throw new ConfigError(`${mf}.addrs[${i}]`, `${JSON.stringify(a)}: ${parsed.error}`)
        }
        const member: Member = { id: replicaId(name, index), group: name, index, publicKey, peerId: peerIdOf(publicKey), addrs: [...(m.addrs as string[])] }
        this.membersById.set(member.id, member)
        this.byPeerId.set(member.peerId, member)
        members.push(member)
      }
      if (g.f === 0 && options.allowZeroFaultTolerance !== true) {
        throw new ConfigError(`${field}.f`, 'f = 0 tolerates no faulty member at all; a group needs f >= 1 (n >= 4)')
      }
      groups.set(name, { name, f: g.f, n, members, quorum: quorumOf(n, g.f), weakQuorum: g.f + 1 })
    }
    this.groups = groups

    const clients = new Map<string, Client>()
    let open = false
    if (config.clients !== undefined) {
      const c = config.clients as unknown
      if (!isObject(c)) throw new ConfigError('clients', 'expected an object')
      checkKeys(c, 'clients', ['open', 'members'])
      if (typeof c.open !== 'boolean') throw new ConfigError('clients.open', 'expected true or false')
      open = c.open
      if (!Array.isArray(c.members) || c.members.length > MAX_CLIENTS) throw new ConfigError('clients.members', `expected an array of at most ${MAX_CLIENTS}`)
      for (let i = 0; i < c.members.length; i++) {
        const m: unknown = c.members[i]
        const mf = `clients.members[${i}]`
        if (!isObject(m)) throw new ConfigError(mf, 'expected an object')
        checkKeys(m, mf, ['id', 'publicKey'])
        if (typeof m.id !== 'string' || !CLIENT_ID.test(m.id)) throw new ConfigError(`${mf}.id`, 'client ids are 1-64 of A-Z a-z 0-9 . _ -')
        if (clients.has(m.id)) throw new ConfigError(`${mf}.id`, `duplicate client id ${m.id}`)
        const publicKey = parsePublicKey(m.publicKey, `${mf}.publicKey`, seenKeys)
        const client: Client = { id: m.id, publicKey, peerId: peerIdOf(publicKey) }
        clients.set(m.id, client)
        this.byPeerId.set(client.peerId, client)
      }
    }
    this.clients = clients
    this.openClients = open

    if (config.upgradeAuthority !== undefined) {
      const u = config.upgradeAuthority as unknown
      if (!isObject(u)) throw new ConfigError('upgradeAuthority', 'expected an object')
      checkKeys(u, 'upgradeAuthority', ['threshold', 'publicKeys'])
      if (!Array.isArray(u.publicKeys) || u.publicKeys.length === 0 || u.publicKeys.length > MAX_MEMBERS_PER_GROUP) {
        throw new ConfigError('upgradeAuthority.publicKeys', 'expected a non-empty array of public keys')
      }
      const keys: Uint8Array[] = []
      for (let i = 0; i < u.publicKeys.length; i++) keys.push(parsePublicKey(u.publicKeys[i], `upgradeAuthority.publicKeys[${i}]`, seenKeys))
      if (typeof u.threshold !== 'number' || !Number.isInteger(u.threshold) || u.threshold < 1 || u.threshold > keys.length) {
        throw new ConfigError('upgradeAuthority.threshold', `expected a whole number from 1 to ${keys.length}`)
      }
      this.upgradeAuthority = { threshold: u.threshold, publicKeys: keys }
    } else {
      this.upgradeAuthority = undefined
    }
    this.deployment = digestOf({
      t: 'deployment',
      name: config.deployment,
      groups: [...groups.values()].map((g) => ({ name: g.name, f: g.f, keys: g.members.map((m) => m.publicKey) })),
      clients: [...clients.values()].map((c) => ({ id: c.id, key: c.publicKey })),
      open,
      authority: this.upgradeAuthority === undefined ? null : { threshold: this.upgradeAuthority.threshold, keys: [...this.upgradeAuthority.publicKeys] },
    })
  }

  /** Validates a parsed config object. */
  static fromConfig(config: unknown, options?: MembershipOptions): Membership {
    return new Membership(config as MembershipConfig, options)
  }

  /** Parses and validates the text of a config file; a key repeated within one object is a mistake too. */
  static parse(text: string, options?: MembershipOptions): Membership {
    let raw: unknown
    try {
      raw = JSON.parse(text)
    } catch (err) {
      throw new ConfigError('(file)', `not valid JSON: ${(err as Error).message}`)
    }
    const duplicate = duplicateJsonKey(text)
    if (duplicate !== undefined) throw new ConfigError(duplicate, 'appears twice in one object (JSON.parse would silently keep the last)')
    return Membership.fromConfig(raw, options)
  }

  group(name: string): Group | undefined {
    return this.groups.get(name)
  }

  member(id: string): Member | undefined {
    return this.membersById.get(id)
  }

  /** The member or client a libp2p peer id belongs to (the transport's check of who may connect). */
  byPeer(peerId: string): Member | Client | undefined {
    return this.byPeerId.get(peerId)
  }

  get members(): Iterable<Member> {
    return this.membersById.values()
  }
}
