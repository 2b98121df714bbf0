import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  CertificateError,
  DecodeError,
  type Group,
  type QuorumCertificate,
  SIGNATURE_BYTES,
  ShareCollector,
  type Value,
  certificateFromValue,
  certificateToValue,
  decode,
  digestOf,
  encode,
  generateCluster,
  signDigest,
  verifyCertificate,
  verifyShare,
} from '../src/index.js'

// One deterministic cluster with groups of f = 1, 2, 3 (n = 4, 7, 10).
const cluster = generateCluster({
  groups: [
    { name: 'g1', f: 1 },
    { name: 'g2', f: 2 },
    { name: 'g3', f: 3 },
    { name: 'other', f: 1 },
  ],
  seed: new Uint8Array(32).fill(42),
})
const { membership, keys } = cluster
const groupOf = (name: string): Group => membership.group(name) as Group
const digest = digestOf({ type: 'checkpoint', seq: 128, state: new Uint8Array(32).fill(7) })
const otherDigest = digestOf({ type: 'checkpoint', seq: 129, state: new Uint8Array(32).fill(7) })

// Signatures are deterministic: sign each (group, signer, digest) once.
const signatureCache = new Map<string, Uint8Array>()
function share(group: string, signer: number, over = digest): { signer: number; signature: Uint8Array } {
  const id = `${group}/${signer}/${over[0]}`
  let signature = signatureCache.get(id)
  if (signature === undefined) {
    signature = signDigest(keys.get(`${group}/${signer}`)!, over)
    signatureCache.set(id, signature)
  }
  return { signer, signature }
}

function certificate(group: string, signers: readonly number[], over = digest): QuorumCertificate {
  return { group, digest: over, shares: signers.map((s) => share(group, s, over)) }
}

function certError(cert: QuorumCertificate, expect_: { group: string; digest?: Uint8Array; threshold: number }): string {
  try {
    verifyCertificate(membership, cert, expect_)
  } catch (err) {
    expect(err).toBeInstanceOf(CertificateError)
    return (err as CertificateError).code
  }
  return 'ok'
}

describe('group quorums', () => {
  it('has n = 3f+1, quorum 2f+1 and weak quorum f+1', () => {
    for (const f of [1, 2, 3]) {
      const g = groupOf(`g${f}`)
      expect([g.f, g.n, g.quorum, g.weakQuorum]).toEqual([f, 3 * f + 1, 2 * f + 1, f + 1])
    }
  })
})

describe('ShareCollector', () => {
  for (const f of [1, 2, 3]) {
    for (const kind of ['weak (f+1)', 'quorum (2f+1)'] as const) {
      it(`completes at exactly the ${kind} threshold for f=${f}`, () => {
        const g = groupOf(`g${f}`)
        const threshold = kind === 'quorum (2f+1)' ? g.quorum : g.weakQuorum
        expect(threshold).toBe(kind === 'quorum (2f+1)' ? 2 * f + 1 : f + 1)
        const c = new ShareCollector(g, digest, threshold)
        // Add signers from the highest index down, to check certificate() orders them.
        for (let i = 0; i < threshold; i++) {
          expect(c.complete).toBe(false)
          expect(c.certificate()).toBeUndefined()
          expect(c.add(share(g.name, g.n - 1 - i))).toBe('added')
          expect(c.size).toBe(i + 1)
        }
        expect(c.complete).toBe(true)
        const cert = c.certificate()!
        expect(cert.shares.map((s) => s.signer)).toEqual(Array.from({ length: threshold }, (_, i) => g.n - threshold + i))
        verifyCertificate(membership, cert, { group: g.name, digest, threshold })
        // More shares keep it complete; the certificate keeps exactly `threshold`, lowest indices first.
        for (let s = 0; s < g.n - threshold; s++) expect(c.add(share(g.name, s))).toBe('added')
        expect(c.size).toBe(g.n)
        expect(c.certificate()!.shares.map((s) => s.signer)).toEqual(Array.from({ length: threshold }, (_, i) => i))
      })
    }
  }

  it('refuses duplicates, non-members and bad signatures without growing', () => {
    const g = groupOf('g1')
    const c = new ShareCollector(g, digest, g.quorum)
    expect(c.add(share('g1', 0))).toBe('added')
    expect(c.add(share('g1', 0))).toBe('duplicate')
    for (const signer of [-1, 4, 5, 255, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(c.add({ signer, signature: share('g1', 1).signature })).toBe('non-member')
    }
    expect(c.add({ signer: 1, signature: share('g1', 2).signature })).toBe('bad-signature') // another member's
    expect(c.add(share('g1', 1, otherDigest))).toBe('bad-signature') // another digest
    expect(c.add({ signer: 1, signature: share('other', 1).signature })).toBe('bad-signature') // another group
    expect(c.add({ signer: 1, signature: new Uint8Array(SIGNATURE_BYTES) })).toBe('bad-signature')
    expect(c.add({ signer: 1, signature: new Uint8Array(3) })).toBe('bad-signature')
    expect(c.add({ signer: 1, signature: undefined as unknown as Uint8Array })).toBe('bad-signature')
    expect(c.size).toBe(1)
    // A refused bad share does not block the signer's later good one.
    expect(c.add(share('g1', 1))).toBe('added')
    expect(c.size).toBe(2)
  })

  it('keeps the first share of a signer (first wins), even an unchecked one', () => {
    const g = groupOf('g1')
    const c = new ShareCollector(g, digest, 2)
    const first = share('g1', 0)
    expect(c.add(first, true)).toBe('added')
    expect(c.add({ signer: 0, signature: new Uint8Array(SIGNATURE_BYTES).fill(1) }, true)).toBe('duplicate')
    expect(c.add(share('g1', 1))).toBe('added')
    expect(c.certificate()!.shares[0]!.signature).toEqual(first.signature)
    // `alreadyVerified` skips the signature check, never the membership check.
    expect(c.add({ signer: 9, signature: first.signature }, true)).toBe('non-member')
  })

  it('refuses a threshold it can never or trivially reach', () => {
    const g = groupOf('g1')
    for (const t of [0, -1, 1.5, 5, Number.NaN]) expect(() => new ShareCollector(g, digest, t)).toThrow(RangeError)
    expect(new ShareCollector(g, digest, 4).threshold).toBe(4)
  })
})

describe('verifyCertificate', () => {
  const g = groupOf('g1')
  const good = certificate('g1', [0, 1, 2])
  const exp = { group: 'g1', digest, threshold: g.quorum }

  it('accepts a valid certificate, with or without an expected digest, in any share order', () => {
    expect(certError(good, exp)).toBe('ok')
    expect(certError(good, { group: 'g1', threshold: 3 })).toBe('ok')
    expect(certError(certificate('g1', [3, 0, 2]), exp)).toBe('ok')
    expect(certError(certificate('g1', [0, 1, 2, 3]), exp)).toBe('ok')
  })

  it('names each problem with its code', () => {
    const sig = (s: number) => share('g1', s).signature
    const cases: Array<[string, QuorumCertificate, typeof exp | { group: string; threshold: number }]> = [
      ['wrong-group', good, { ...exp, group: 'other' }],
      ['wrong-group', { ...good, group: 'nope' }, { ...exp, group: 'nope' }],
      ['wrong-group', { ...good, group: 'constructor' }, { ...exp, group: 'constructor' }],
      ['wrong-digest', good, { ...exp, digest: otherDigest }],
      ['wrong-digest', certificate('g1', [0, 1, 2], otherDigest), exp],
      ['malformed', { ...good, digest: digest.subarray(0, 31) }, exp],
      ['malformed', { ...good, digest: new Uint8Array(33) }, exp],
      ['malformed', { ...good, digest: 'digest' as unknown as Uint8Array }, exp],
      ['malformed', { ...good, shares: undefined as unknown as [] }, exp],
      ['malformed', certificate('g1', [0, 1, 2, 3, 0]), exp],
      ['below-threshold', certificate('g1', [0, 1]), exp],
      ['below-threshold', { ...good, shares: [] }, exp],
      ['below-threshold', certificate('g1', [0, 1, 2, 3]), { ...exp, threshold: 5 }],
      ['non-member', { ...good, shares: [...good.shares.slice(0, 2), { signer: 4, signature: sig(2) }] }, exp],
      ['non-member', { ...good, shares: [...good.shares.slice(0, 2), { signer: -1, signature: sig(2) }] }, exp],
      ['non-member', { ...good, shares: [...good.shares.slice(0, 2), { signer: 1.5, signature: sig(2) }] }, exp],
      ['non-member', { ...good, shares: [...good.shares.slice(0, 2), { signer: '2' as unknown as number, signature: sig(2) }] }, exp],
      ['duplicate-signer', { ...good, shares: [...good.shares.slice(0, 2), good.shares[0]!] }, exp],
      ['duplicate-signer', { ...good, shares: [good.shares[0]!, good.shares[1]!, good.shares[2]!, good.shares[2]!] }, exp],
      ['bad-signature', { ...good, shares: [...good.shares.slice(0, 2), { signer: 2, signature: sig(3) }] }, exp],
      ['bad-signature', { ...good, shares: [...good.shares.slice(0, 2), { signer: 2, signature: new Uint8Array(64) }] }, exp],
      ['bad-signature', { ...good, shares: [...good.shares.slice(0, 2), { signer: 2, signature: new Uint8Array(5) }] }, exp],
      ['bad-signature', { ...good, shares: [...good.shares.slice(0, 2), { signer: 2, signature: share('other', 2).signature }] }, exp],
    ]
    cases.forEach(([code, cert, e], i) => {
      expect({ i, code: certError(cert, e) }).toEqual({ i, code })
    })
  })

  it('treats a threshold below 1 as a programming error, never as "accept anything"', () => {
    for (const threshold of [0, -1, 0.5, Number.NaN]) {
      expect(() => verifyCertificate(membership, { ...good, shares: [] }, { group: 'g1', threshold })).toThrow(RangeError)
    }
  })

  it('accepts a random set of signers iff it has at least `threshold` distinct members (property)', () => {
    // Random f, a random subset of the members in random order, a random threshold in 1..n.
    const arb = fc.constantFrom(1, 2, 3).chain((f) =>
      fc.record({
        f: fc.constant(f),
        signers: fc.shuffledSubarray(Array.from({ length: 3 * f + 1 }, (_, i) => i)),
        threshold: fc.integer({ min: 1, max: 3 * f + 1 }),
      }),
    )
    fc.assert(
      fc.property(arb, ({ f, signers, threshold }) => {
        const name = `g${f}`
        const result = certError(certificate(name, signers), { group: name, digest, threshold })
        expect(result).toBe(signers.length >= threshold ? 'ok' : 'below-threshold')
      }),
      { numRuns: 200 },
    )
  })
})

describe('certificate values', () => {
  const cert = certificate('g2', [0, 2, 4, 6, 5])

  it('round-trips through canonical encoding', () => {
    const bytes = encode(certificateToValue(cert))
    const back = certificateFromValue(decode(bytes))
    expect(back).toEqual(cert)
    expect(encode(certificateToValue(back))).toEqual(bytes)
    verifyCertificate(membership, back, { group: 'g2', digest, threshold: 5 })
  })

  it('rejects malformed shapes with DecodeError naming the field', () => {
    const v = certificateToValue(cert) as Record<string, Value>
    const pair = (signer: Value, signature: Value): Value => [signer, signature]
    const sig = cert.shares[0]!.signature
    const cases: Array<[Value | undefined, RegExp]> = [
      [undefined, /^certificate: expected a map/],
      [null, /^certificate: expected a map/],
      [[], /^certificate: expected a map/],
      [new Uint8Array(3), /^certificate: expected a map/],
      ['cert', /^certificate: expected a map/],
      [{ ...v, group: undefined }, /^certificate.group/],
      [{ ...v, group: 7 }, /^certificate.group/],
      [{ ...v, group: 'g'.repeat(33) }, /^certificate.group/],
      [{ ...v, digest: undefined }, /^certificate.digest/],
      [{ ...v, digest: new Uint8Array(31) }, /^certificate.digest: expected 32 bytes/],
      [{ ...v, digest: 'ab'.repeat(16) }, /^certificate.digest/],
      [{ ...v, shares: undefined }, /^certificate.shares: expected an array/],
      [{ ...v, shares: {} }, /^certificate.shares: expected an array/],
      [{ ...v, shares: Array.from({ length: 257 }, () => pair(0, sig)) }, /^certificate.shares: expected at most 256/],
      [{ ...v, shares: [sig] }, /^certificate.shares\[0\]: expected an array/],
      [{ ...v, shares: [[0]] }, /^certificate.shares\[0\]: expected \[signer, signature\]/],
      [{ ...v, shares: [[0, sig, 1]] }, /^certificate.shares\[0\]: expected \[signer, signature\]/],
      [{ ...v, shares: [pair(-1, sig)] }, /^certificate.shares\[0\].signer/],
      [{ ...v, shares: [pair(256, sig)] }, /^certificate.shares\[0\].signer/],
      [{ ...v, shares: [pair('0', sig)] }, /^certificate.shares\[0\].signer/],
      [{ ...v, shares: [pair(0, sig), pair(1, sig.subarray(1))] }, /^certificate.shares\[1\].signature: expected 64 bytes/],
      [{ ...v, shares: [pair(0, null)] }, /^certificate.shares\[0\].signature/],
    ]
    for (const [value, message] of cases) {
      try {
        certificateFromValue(value)
        throw new Error(`accepted ${String(message)}`)
      } catch (err) {
        expect(err).toBeInstanceOf(DecodeError)
        expect((err as DecodeError).code).toBe('wrong-type')
        expect((err as DecodeError).message).toMatch(message)
      }
    }
    expect(() => certificateFromValue(null, 'msg.cert')).toThrow(/^msg.cert: expected a map/)
  })

  it('decodes arbitrary mutations of an encoded certificate to DecodeError, or to something verifyCertificate judges', () => {
    const bytes = encode(certificateToValue(cert))
    fc.assert(
      fc.property(fc.nat({ max: bytes.length - 1 }), fc.nat({ max: 255 }), fc.nat({ max: bytes.length }), (at, byte, cut) => {
        const mutated = Uint8Array.from(bytes).subarray(0, Math.max(cut, at + 1))
        mutated[at] = byte
        let parsed: QuorumCertificate
        try {
          parsed = certificateFromValue(decode(mutated))
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError)
          return
        }
        try {
          verifyCertificate(membership, parsed, { group: 'g2', digest, threshold: 5 })
          expect(encode(certificateToValue(parsed))).toEqual(bytes) // only the original passes
        } catch (err) {
          expect(err).toBeInstanceOf(CertificateError)
        }
      }),
      { numRuns: 300 },
    )
  })

  it('verifyShare checks membership and signature', () => {
    const g = groupOf('g1')
    expect(verifyShare(g, digest, share('g1', 1))).toBe(true)
    expect(verifyShare(g, digest, { signer: 7, signature: share('g1', 1).signature })).toBe(false)
    expect(verifyShare(g, otherDigest, share('g1', 1))).toBe(false)
  })
})
