/**
 * Quorum certificates: signatures over one digest from distinct members of one named group.
 * `f+1` of them prove that at least one correct member vouches for the digest; `2f+1`, that a
 * quorum does. Shares name their signer by index in the group, which keeps certificates small.
 */
import type { Value, ValueMap } from './encoding.js'
import { CertificateError, DecodeError } from './errors.js'
import { DIGEST_BYTES, bytesEqual } from './digest.js'
import { SIGNATURE_BYTES, type KeyPair, signBytes, verifyBytes } from './keys.js'
import type { Group, Membership } from './membership.js'
import { asArray, asBytes, asMap, asString, asUint } from './schema.js'

export interface SignatureShare {
  readonly signer: number
  readonly signature: Uint8Array
}

export interface QuorumCertificate {
  readonly group: string
  readonly digest: Uint8Array
  readonly shares: readonly SignatureShare[]
}

/** Signs a 32-byte statement digest. The statement itself carries its type, so digests of different kinds never collide. */
export function signDigest(keyPair: KeyPair, digest: Uint8Array): Uint8Array {
  return signBytes(keyPair, digest)
}

export function verifyShare(group: Group, digest: Uint8Array, share: SignatureShare): boolean {
  const member = group.members[share.signer]
  return member !== undefined && verifyBytes(member.publicKey, digest, share.signature)
}

export interface CertificateExpectation {
  readonly group: string
  readonly digest?: Uint8Array
  readonly threshold: number
}

/**
 * Checks a certificate against the membership. Throws CertificateError naming the first problem;
 * returns normally only if at least `threshold` distinct members validly signed the digest.
 * A threshold that is not a whole number >= 1 is a programming error (RangeError).
 */
export function verifyCertificate(membership: Membership, cert: QuorumCertificate, expect: CertificateExpectation): void {
  // A threshold below 1 would accept an empty certificate: that is the caller's bug, not input.
  if (!Number.isInteger(expect.threshold) || expect.threshold < 1) throw new RangeError(`certificate threshold must be a whole number >= 1, got ${expect.threshold}`)
  if (cert.group !== expect.group) throw new CertificateError('wrong-group', `certificate of group ${cert.group}, expected ${expect.group}`)
  const group = membership.group(cert.group)
  if (group === undefined) throw new CertificateError('wrong-group', `unknown group ${cert.group}`)
  if (!(cert.digest instanceof Uint8Array) || cert.digest.length !== DIGEST_BYTES) throw new CertificateError('malformed', 'digest must be 32 bytes')
  if (expect.digest !== undefined && !bytesEqual(cert.digest, expect.digest)) throw new CertificateError('wrong-digest', 'certificate is for another digest')
  if (!Array.isArray(cert.shares)) throw new CertificateError('malformed', 'shares must be an array')
  if (cert.shares.length < expect.threshold) {
    throw new CertificateError('below-threshold', `${cert.shares.length} signatures, ${expect.threshold} needed`)
  }
  if (cert.shares.length > group.n) throw new CertificateError('malformed', `more signatures (${cert.shares.length}) than members (${group.n})`)
  const seen = new Set<number>()
  for (const share of cert.shares) {
    if (!Number.isInteger(share.signer) || share.signer < 0 || share.signer >= group.n) {
      throw new CertificateError('non-member', `signer ${share.signer} is not a member of ${group.name}`)
    }
    if (seen.has(share.signer)) throw new CertificateError('duplicate-signer', `signer ${share.signer} appears twice`)
    seen.add(share.signer)
    if (!verifyShare(group, cert.digest, share)) throw new CertificateError('bad-signature', `bad signature from ${group.name}/${share.signer}`)
  }
}

/**
 * Collects shares for one statement until a threshold is met. One share per signer, first one
 * wins, so a Byzantine signer cannot grow it; shares over other digests are refused.
 */
export class ShareCollector {
  private readonly shares = new Map<number, Uint8Array>()

  constructor(
    readonly group: Group,
    readonly digest: Uint8Array,
    readonly threshold: number,
  ) {
    if (!Number.isInteger(threshold) || threshold < 1 || threshold > group.n) {
      throw new RangeError(`threshold must be a whole number from 1 to ${group.n}, got ${threshold}`)
    }
  }

  /** Adds a share after checking it; returns the reason when it is refused. */
  add(share: SignatureShare, alreadyVerified = false): 'added' | 'duplicate' | 'non-member' | 'bad-signature' {
    if (!Number.isInteger(share.signer) || share.signer < 0 || share.signer >= this.group.n) return 'non-member'
    if (this.shares.has(share.signer)) return 'duplicate'
    if (!alreadyVerified && !verifyShare(this.group, this.digest, share)) return 'bad-signature'
    this.shares.set(share.signer, share.signature)
    return 'added'
  }

  get size(): number {
    return this.shares.size
  }

  get complete(): boolean {
    return this.shares.size >= this.threshold
  }

  /** The certificate with exactly `threshold` shares (lowest signer indices first), once complete. */
  certificate(): QuorumCertificate | undefined {
    if (!this.complete) return undefined
    const signers = [...this.shares.keys()].sort((a, b) => a - b).slice(0, this.threshold)
    return { group: this.group.name, digest: this.digest, shares: signers.map((signer) => ({ signer, signature: this.shares.get(signer) as Uint8Array })) }
  }
}

export function certificateToValue(cert: QuorumCertificate): ValueMap {
  return { group: cert.group, digest: cert.digest, shares: cert.shares.map((s) => [s.signer, s.signature]) }
}

/** Reads a certificate's shape from decoded input; signatures are checked later by verifyCertificate. */
export function certificateFromValue(v: Value | undefined, field = 'certificate'): QuorumCertificate {
  const m = asMap(v, field)
  const shares = asArray(m.shares, `${field}.shares`, 256).map((s, i) => {
    const pair = asArray(s, `${field}.shares[${i}]`)
    if (pair.length !== 2) throw new DecodeError('wrong-type', `${field}.shares[${i}]: expected [signer, signature]`)
    return { signer: asUint(pair[0], `${field}.shares[${i}].signer`, 255), signature: asBytes(pair[1], `${field}.shares[${i}].signature`, SIGNATURE_BYTES) }
  })
  return { group: asString(m.group, `${field}.group`, 32), digest: asBytes(m.digest, `${field}.digest`, DIGEST_BYTES), shares }
}
