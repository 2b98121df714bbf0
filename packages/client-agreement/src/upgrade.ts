/**
 * Externally requested software upgrades (DESIGN section 5). An upgrade request names the group,
 * the new version and the digest of its code, and carries signatures of the configured upgrade
 * authority (at least `threshold` of its keys). It is ordered like any other event; at that point
 * every correct replica checks it holds that code, migrates the state deterministically and goes
 * on with the new version, or, lacking the code, stops executing until it has it.
 */
import {
  DIGEST_BYTES,
  DecodeError,
  type KeyPair,
  type Membership,
  SIGNATURE_BYTES,
  type Value,
  asArray,
  asBool,
  asBytes,
  asMap,
  asString,
  asUint,
  digestOf,
  signBytes,
  toHex,
  verifyBytes,
} from '@bftrc/crypto'
import type { GroupApp } from './app.js'

export interface UpgradeRequest {
  readonly group: string
  readonly version: string
  readonly codeDigest: Uint8Array
  /** A downgrade (a lower version) is refused unless the authority says so explicitly. */
  readonly allowDowngrade: boolean
  /** Signatures by authority keys, by index in the configured list. */
  readonly signatures: ReadonlyArray<{ readonly authority: number; readonly signature: Uint8Array }>
}

/** One version of an application a replica can run, with its code digest and state migration. */
export interface AppVersion {
  readonly version: string
  /** Digest of the code (e.g. sha256 of the bundle): must equal what the upgrade request names. */
  readonly codeDigest: Uint8Array
  readonly create: () => GroupApp
  /** Deterministic: the previous version's snapshot → this version's state. Identity if absent. */
  readonly migrate?: (fromVersion: string, oldState: Uint8Array) => Uint8Array
}

export type UpgradeErrorCode =
  | 'malformed'
  | 'wrong-group'
  | 'no-authority'
  | 'invalid-signature'
  | 'insufficient-signatures'
  | 'unknown-version'
  | 'digest-mismatch'
  | 'same-version'
  | 'downgrade'
  | 'replayed'

export class UpgradeError extends Error {
  override readonly name = 'UpgradeError'
  constructor(
    readonly code: UpgradeErrorCode,
    message: string,
  ) {
    super(message)
  }
}

/** What the upgrade authority signs: the request, bound to the deployment (see `Membership.deployment`). */
export function upgradeStatement(deployment: Uint8Array, r: Omit<UpgradeRequest, 'signatures'>): Uint8Array {
  return digestOf({ t: 'upgrade', deployment, group: r.group, version: r.version, codeDigest: r.codeDigest, allowDowngrade: r.allowDowngrade })
}

/** What an authority key holder runs to sign a request for the deployment `membership` describes. */
export function signUpgrade(membership: Pick<Membership, 'deployment'>, r: Omit<UpgradeRequest, 'signatures'>, authority: number, key: KeyPair): { authority: number; signature: Uint8Array } {
  return { authority, signature: signBytes(key, upgradeStatement(membership.deployment, r)) }
}

export function upgradeToValue(r: UpgradeRequest): Value {
  return {
    group: r.group,
    version: r.version,
    codeDigest: r.codeDigest,
    allowDowngrade: r.allowDowngrade,
    signatures: r.signatures.map((s) => [s.authority, s.signature]),
  }
}

export function upgradeFromValue(v: Value | undefined): UpgradeRequest {
  const m = asMap(v, 'upgrade')
  const version = asString(m.version, 'version', 64)
  if (!/^[0-9A-Za-z.+-]{1,64}$/.test(version)) throw new DecodeError('wrong-type', 'version: 1-64 of 0-9 A-Z a-z . + -')
  return {
    group: asString(m.group, 'group', 32),
    version,
    codeDigest: asBytes(m.codeDigest, 'codeDigest', DIGEST_BYTES),
    allowDowngrade: asBool(m.allowDowngrade, 'allowDowngrade'),
    signatures: asArray(m.signatures, 'signatures', 256).map((s, i) => {
      const pair = asArray(s, `signatures[${i}]`)
      if (pair.length !== 2) throw new DecodeError('wrong-type', `signatures[${i}]: expected [authority, signature]`)
      return { authority: asUint(pair[0], `signatures[${i}].authority`, 255), signature: asBytes(pair[1], `signatures[${i}].signature`, SIGNATURE_BYTES) }
    }),
  }
}

/** Checks the authority's signatures (what every replica checks before voting). Throws UpgradeError. */
export function verifyUpgradeAuthority(membership: Membership, group: string, r: UpgradeRequest): void {
  if (r.group !== group) throw new UpgradeError('wrong-group', `upgrade is for group ${r.group}, not ${group}`)
  const authority = membership.upgradeAuthority
  if (authority === undefined) throw new UpgradeError('no-authority', 'the membership configures no upgrade authority')
  const statement = upgradeStatement(membership.deployment, r)
  const signers = new Set<number>()
  for (const s of r.signatures) {
    const key = authority.publicKeys[s.authority]
    if (key === undefined || signers.has(s.authority) || !verifyBytes(key, statement, s.signature)) {
      throw new UpgradeError('invalid-signature', `signature of authority key ${s.authority} is invalid, unknown or repeated`)
    }
    signers.add(s.authority)
  }
  if (signers.size < authority.threshold) {
    throw new UpgradeError('insufficient-signatures', `${signers.size} authority signatures, ${authority.threshold} needed`)
  }
}

/** Orders versions: dot-separated parts, numerically where both are numbers. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/)
  const pb = b.split(/[.+-]/)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '0'
    const y = pb[i] ?? '0'
    const nx = /^\d+$/.test(x) ? Number(x) : Number.NaN
    const ny = /^\d+$/.test(y) ? Number(y) : Number.NaN
    const c = !Number.isNaN(nx) && !Number.isNaN(ny) ? nx - ny : x < y ? -1 : x > y ? 1 : 0
    if (c !== 0) return Math.sign(c)
  }
  return 0
}

/** The deterministic (group-wide) verdict on an ordered upgrade, given the state's history. */
export function upgradeVerdict(current: string, applied: ReadonlySet<string>, r: UpgradeRequest): UpgradeError | undefined {
  const id = upgradeId(r)
  if (applied.has(id)) return new UpgradeError('replayed', `upgrade to ${r.version} was applied before`)
  if (r.version === current) return new UpgradeError('same-version', `already running ${r.version}`)
  if (compareVersions(r.version, current) < 0 && !r.allowDowngrade) return new UpgradeError('downgrade', `${r.version} is older than ${current}; the request does not allow a downgrade`)
  return undefined
}

export function upgradeId(r: Pick<UpgradeRequest, 'version' | 'codeDigest'>): string {
  return `${r.version}:${toHex(r.codeDigest)}`
}

/** This replica's own check: does it hold exactly the code the request names? */
export function localCodeCheck(versions: readonly AppVersion[], r: Pick<UpgradeRequest, 'version' | 'codeDigest'>): UpgradeError | AppVersion {
  const v = versions.find((x) => x.version === r.version)
  if (v === undefined) return new UpgradeError('unknown-version', `no code for version ${r.version} is installed on this replica`)
  if (toHex(v.codeDigest) !== toHex(r.codeDigest)) {
    return new UpgradeError('digest-mismatch', `installed code of ${r.version} has digest ${toHex(v.codeDigest).slice(0, 16)}…, the request names ${toHex(r.codeDigest).slice(0, 16)}…`)
  }
  return v
}
