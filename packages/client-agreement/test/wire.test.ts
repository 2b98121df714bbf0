import { DecodeError, generateCluster, sha256, signBytes } from '@bftrc/crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  type RequestShare,
  decodeEvent,
  decodeInterGroup,
  encodeEvent,
  encodeInterGroup,
  eventKey,
  eventValidator,
  requestShareStatement,
  replyShareStatement,
} from '../src/index.js'

const cluster = generateCluster({ groups: [{ name: 'client', f: 1 }, { name: 'server', f: 1 }], seed: new Uint8Array(32).fill(3) })
const op = new TextEncoder().encode('op')

function share(i: number, k = 1, callee = 'server'): { signer: number; signature: Uint8Array } {
  return { signer: i, signature: signBytes(cluster.keys.get(`client/${i}`) as never, requestShareStatement(cluster.membership.deployment, 'client', callee, k, sha256(op))) }
}

describe('inter-group wire format', () => {
  it('round-trips request and reply shares', () => {
    const m: RequestShare = { t: 'request-share', caller: 'client', callee: 'server', k: 3, op, view: 2, retransmit: true, signature: new Uint8Array(64) }
    expect(decodeInterGroup(encodeInterGroup(m), 1024)).toEqual(m)
  })

  it('rejects anything else with a DecodeError and never throws another error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (junk) => {
        const frame = new Uint8Array([0xc1, ...junk])
        try {
          decodeInterGroup(frame, 1024)
        } catch (err) {
          expect(err).toBeInstanceOf(DecodeError)
        }
      }),
      { numRuns: 3000 },
    )
    expect(() => decodeInterGroup(new Uint8Array([8, 0]), 1024)).toThrow(DecodeError)
  })
})

describe('event validation (what a replica checks before voting)', () => {
  const validator = eventValidator(cluster.membership, 'server', 1024, 200)
  const cert = (shares: Array<{ signer: number; signature: Uint8Array }>, digest = requestShareStatement(cluster.membership.deployment, 'client', 'server', 1, sha256(op))) => ({ group: 'client', digest, shares })

  it('accepts a call with f+1 valid shares from distinct caller replicas', () => {
    const ev = { e: 'call' as const, caller: 'client', k: 1, op, cert: cert([share(0), share(2)]) }
    expect(validator.validate(encodeEvent(ev))).toBe(eventKey(ev))
    expect(decodeEvent(encodeEvent(ev), 1024)).toEqual(ev)
  })

  it.each([
    ['one share only', () => ({ e: 'call', caller: 'client', k: 1, op, cert: cert([share(0)]) })],
    ['the same signer twice', () => ({ e: 'call', caller: 'client', k: 1, op, cert: cert([share(1), share(1)]) })],
    ['shares for another call number', () => ({ e: 'call', caller: 'client', k: 2, op, cert: cert([share(0), share(1)]) })],
    ['shares addressed to another group', () => ({ e: 'call', caller: 'client', k: 1, op, cert: cert([share(0, 1, 'other'), share(1, 1, 'other')], requestShareStatement(cluster.membership.deployment, 'client', 'other', 1, sha256(op))) })],
    ['a call from an unknown group', () => ({ e: 'call', caller: 'nobody', k: 1, op, cert: cert([share(0), share(1)]) })],
    ['a call from ourselves', () => ({ e: 'call', caller: 'server', k: 1, op, cert: { ...cert([share(0), share(1)]), group: 'server' } })],
    ['call number zero', () => ({ e: 'call', caller: 'client', k: 0, op, cert: cert([share(0), share(1)]) })],
    ['a reply nobody signed', () => ({ e: 'reply', callee: 'client', k: 1, result: op, cert: { group: 'client', digest: replyShareStatement(cluster.membership.deployment, 'client', 'server', 1, sha256(op)), shares: [] } })],
  ])('rejects %s', (_name, make) => {
    expect(validator.validate(encodeEvent(make() as never))).toBeUndefined()
  })

  it('rejects undecodable payloads', () => {
    expect(validator.validate(new Uint8Array([1, 2, 3]))).toBeUndefined()
  })
})
