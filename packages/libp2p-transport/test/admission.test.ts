import { describe, expect, it } from 'vitest'
import { PendingInbound, canonicalIp } from '../src/admission.js'

const conn = (): object => ({})

describe('pre-handshake accounting', () => {
  it('bounds pending connections per address, then for all non-member addresses together', () => {
    const p = new PendingInbound({ perAddress: 2, others: 3, members: 1 }, [])
    const a = [conn(), conn(), conn()]
    expect(p.admit(a[0]!, '192.0.2.1')).toBe(true)
    expect(p.admit(a[1]!, '192.0.2.1')).toBe(true)
    expect(p.admit(a[2]!, '192.0.2.1')).toBe(false)
    expect(p.admit(conn(), '192.0.2.2')).toBe(true)
    expect(p.admit(conn(), '192.0.2.3')).toBe(false) // pool of 3 full
    expect(p.metrics()).toMatchObject({ pending: 3, refusedPerAddress: 1, refusedPoolFull: 1 })
    // A slot comes back once, however the connection ends; the outcome is counted once.
    expect(p.release(a[0]!, 'timed-out')).toBe(true)
    expect(p.release(a[0]!, 'failed')).toBe(false)
    expect(p.release(a[2]!, 'failed')).toBe(false) // never admitted
    expect(p.admit(a[2]!, '192.0.2.1')).toBe(true)
    expect(p.metrics()).toMatchObject({ pending: 3, timedOut: 1, failed: 0 })
  })

  it('gives members their own pool, with no per-address bound inside it', () => {
    const p = new PendingInbound({ perAddress: 1, others: 1, members: 3 }, ['10.0.0.7', '2001:db8::7', '0.0.0.0'])
    expect(p.memberAddresses.sort()).toEqual(['10.0.0.7', '2001:db8:0:0:0:0:0:7'])
    expect(p.admit(conn(), '192.0.2.1')).toBe(true)
    expect(p.admit(conn(), '192.0.2.2')).toBe(false) // others' pool full
    expect(p.admit(conn(), '10.0.0.7')).toBe(true)
    expect(p.admit(conn(), '10.0.0.7')).toBe(true)
    expect(p.admit(conn(), '2001:DB8:0::7')).toBe(true) // same address, other spelling
    expect(p.admit(conn(), '10.0.0.7')).toBe(false)
    expect(p.admit(conn(), '0.0.0.0')).toBe(false) // "listen everywhere" is no member's address
    expect(p.metrics()).toMatchObject({ pending: 4, pendingFromMembers: 3, refusedPoolFull: 3, refusedPerAddress: 0 })
  })

  it('counts an IPv6 /64 as one address, an IPv4-mapped address as its IPv4 address, and non-IP peers together', () => {
    const p = new PendingInbound({ perAddress: 1, others: 10, members: 1 }, [])
    expect(p.admit(conn(), '2001:db8:1:2::1')).toBe(true)
    expect(p.admit(conn(), '2001:db8:1:2:ffff::9')).toBe(false)
    expect(p.admit(conn(), '2001:db8:1:3::1')).toBe(true)
    expect(p.admit(conn(), '198.51.100.4')).toBe(true)
    expect(p.admit(conn(), '::ffff:198.51.100.4')).toBe(false)
    expect(p.admit(conn(), undefined)).toBe(true)
    expect(p.admit(conn(), 'not-an-ip')).toBe(false)
    expect(canonicalIp('::FFFF:c633:6404')).toBe('198.51.100.4')
    expect(canonicalIp('::1')).toBe('0:0:0:0:0:0:0:1')
    expect(canonicalIp('nope')).toBeUndefined()
  })

  it('runs the release callback once, and clear() frees everything without counting', () => {
    const p = new PendingInbound({ perAddress: 4, others: 4, members: 4 }, ['127.0.0.1'])
    let released = 0
    const c = conn()
    p.admit(c, '127.0.0.1', () => released++)
    p.admit(conn(), '192.0.2.1', () => released++)
    p.release(c, 'upgraded')
    p.release(c, 'failed')
    expect(released).toBe(1)
    p.clear()
    expect(released).toBe(2)
    expect(p.metrics()).toEqual({ pending: 0, pendingFromMembers: 0, refusedPerAddress: 0, refusedPoolFull: 0, timedOut: 0, failed: 0 })
  })
})
