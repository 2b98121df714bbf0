/** Keys and a membership config for a local cluster: what `bftrc-keys cluster` writes. */
import { createHash } from 'node:crypto'
import { ConfigError } from './errors.js'
import { type KeyPair, generateKeyPair, keyPairFromSeed, toHex } from './keys.js'
import { GROUP_NAME, MAX_MEMBERS_PER_GROUP, type MembershipConfig, Membership, replicaId } from './membership.js'

export interface ClusterSpec {
  /** group name → f; each group gets 3f+1 members unless `n` says more. */
  readonly groups: ReadonlyArray<{ readonly name: string; readonly f: number; readonly n?: number }>
  readonly clients?: readonly string[]
  readonly openClients?: boolean
  readonly authorities?: { readonly count: number; readonly threshold: number }
  /** First TCP port; members take consecutive ports. 0 lets the OS pick at start (no addrs written). */
  readonly basePort?: number
  readonly host?: string
  /** Deterministic keys from this 32-byte seed (tests and simulations); random otherwise. */
  readonly seed?: Uint8Array
  /** The deployment name (see MembershipConfig.deployment). */
  readonly deployment?: string
  /** Allow groups with f = 0: tests of the transport and of the unreplicated baseline only. */
  readonly allowZeroFaultTolerance?: boolean
}

export interface GeneratedCluster {
  readonly config: MembershipConfig
  readonly membership: Membership
  /** Replica ids, client ids and `authority/<i>` → key pair. */
  readonly keys: ReadonlyMap<string, KeyPair>
}

function derivedKey(seed: Uint8Array, label: string): KeyPair {
  // Deterministic keys for tests: seed_i = SHA-256(seed || label). Never used for real deployments.
  return keyPairFromSeed(new Uint8Array(createHash('sha256').update(seed).update(label).digest()))
}

/** Builds keys and a validated config; a spec mistake (such as a group named twice) is a ConfigError. */
export function generateCluster(spec: ClusterSpec): GeneratedCluster {
  const keys = new Map<string, KeyPair>()
  const make = (label: string): KeyPair => {
    // A group named "authority" would give its replicas the labels of the upgrade authorities.
    if (keys.has(label)) throw new ConfigError(label, 'two identities of the cluster would share this name')
    const kp = spec.seed === undefined ? generateKeyPair() : derivedKey(spec.seed, label)
    keys.set(label, kp)
    return kp
  }
  const host = spec.host ?? '127.0.0.1'
  let port = spec.basePort ?? 0
  const groups: Record<string, { f: number; members: Array<{ publicKey: string; addrs: string[] }> }> = {}
  for (const g of spec.groups) {
    // Checked here, before the name is used as a property name (think "__proto__").
    if (!GROUP_NAME.test(g.name)) throw new ConfigError(`groups.${g.name}`, 'group names are 1-32 of a-z, 0-9 and -, starting with a letter')
    if (Object.hasOwn(groups, g.name)) throw new ConfigError(`groups.${g.name}`, 'group named twice')
    const n = g.n ?? 3 * g.f + 1
    // Bounded before generating keys; everything else about f and n is checked by Membership.
    if (!(n <= MAX_MEMBERS_PER_GROUP)) throw new ConfigError(`groups.${g.name}.members`, `at most ${MAX_MEMBERS_PER_GROUP} members`)
    const members = []
    for (let i = 0; i < n; i++) {
      const kp = make(replicaId(g.name, i))
      members.push({ publicKey: toHex(kp.publicKey), addrs: port > 0 ? [`/ip4/${host}/tcp/${port++}`] : [] })
    }
    groups[g.name] = { f: g.f, members }
  }
  const config: MembershipConfig = {
    version: 1,
    ...(spec.deployment !== undefined ? { deployment: spec.deployment } : {}),
    groups,
    ...(spec.clients !== undefined || spec.openClients !== undefined
      ? { clients: { open: spec.openClients ?? false, members: (spec.clients ?? []).map((id) => ({ id, publicKey: toHex(make(id).publicKey) })) } }
      : {}),
    ...(spec.authorities !== undefined
      ? {
          upgradeAuthority: {
            threshold: spec.authorities.threshold,
            publicKeys: Array.from({ length: spec.authorities.count }, (_, i) => toHex(make(`authority/${i}`).publicKey)),
          },
        }
      : {}),
  }
  return { config, membership: Membership.fromConfig(config, { allowZeroFaultTolerance: spec.allowZeroFaultTolerance === true }), keys }
}
