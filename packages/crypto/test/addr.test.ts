import { isIPv6 } from 'node:net'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isHostname, isIpv4, ipv6Bytes, parseTcpMultiaddr, toHex } from '../src/index.js'

const ok = (text: string, anyPort = false) => {
  const r = parseTcpMultiaddr(text, { anyPort })
  if ('error' in r) throw new Error(`${text}: ${r.error}`)
  return r.addr
}
const error = (text: string, anyPort = false): string => {
  const r = parseTcpMultiaddr(text, { anyPort })
  if ('addr' in r) throw new Error(`${text}: accepted`)
  return r.error
}

const octet = fc.integer({ min: 0, max: 255 })
const ipv4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'))
const word = fc.integer({ min: 0, max: 0xffff })
/** Random IPv6 text: 8 groups in any case, a run of zero groups compressed or not, sometimes a dotted tail. */
const ipv6 = fc
  .record({ words: fc.array(word, { minLength: 8, maxLength: 8 }), zeroFrom: fc.nat({ max: 7 }), zeroLen: fc.nat({ max: 8 }), compress: fc.boolean(), upper: fc.boolean(), dotted: fc.boolean() })
  .map(({ words, zeroFrom, zeroLen, compress, upper, dotted }) => {
    const w = words.map((x, i) => (i >= zeroFrom && i < zeroFrom + zeroLen ? 0 : x))
    const hex = w.map((x) => x.toString(16))
    const tail = dotted ? [`${w[6]! >> 8}.${w[6]! & 0xff}.${w[7]! >> 8}.${w[7]! & 0xff}`] : hex.slice(6)
    const all = [...hex.slice(0, 6), ...tail]
    const end = Math.min(zeroFrom + zeroLen, dotted ? 6 : 8)
    const text = compress && end - zeroFrom >= 1 ? `${all.slice(0, zeroFrom).join(':')}::${all.slice(end).join(':')}` : all.join(':')
    return { text: upper ? text.toUpperCase() : text, words: w }
  })
const label = fc.stringMatching(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,20}[A-Za-z0-9])?$/)
const hostname = fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.'))
const port = fc.integer({ min: 1, max: 65535 })

describe('parseTcpMultiaddr', () => {
  it('accepts every address of the supported forms and returns its parts (property)', () => {
    fc.assert(
      fc.property(ipv4, ipv6, hostname, port, fc.constantFrom('dns', 'dns4', 'dns6'), (v4, v6, host, p, dns) => {
        expect(ok(`/ip4/${v4}/tcp/${p}`)).toEqual({ kind: 'ip4', host: v4, port: p })
        expect(ok(`/ip6/${v6.text}/tcp/${p}`)).toEqual({ kind: 'ip6', host: v6.text, port: p })
        expect(ok(`/${dns}/${host}/tcp/${p}`)).toEqual({ kind: dns, host, port: p })
      }),
      { numRuns: 500 },
    )
  })

  it('reads IPv6 text exactly as node:net does, and gives its 16 bytes (property)', () => {
    fc.assert(
      fc.property(ipv6, ({ text, words }) => {
        expect(isIPv6(text)).toBe(true)
        const bytes = ipv6Bytes(text)
        expect(bytes && toHex(bytes)).toBe(words.map((w) => w.toString(16).padStart(4, '0')).join(''))
      }),
      { numRuns: 500 },
    )
    // Node agrees on arbitrary strings over the IPv6 alphabet, except zones, which bftrc refuses.
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9a-fA-F:.]{0,46}$/), (text) => {
        expect(ipv6Bytes(text) !== undefined).toBe(isIPv6(text))
      }),
      { numRuns: 2000 },
    )
    expect(isIPv6('fe80::1%eth0')).toBe(true)
    expect(ipv6Bytes('fe80::1%eth0')).toBeUndefined()
  })

  it('takes port 0 only when asked (a listen address), and nothing after the port', () => {
    expect(error('/ip4/127.0.0.1/tcp/0')).toMatch(/port "0": expected 1-65535/)
    expect(ok('/ip4/127.0.0.1/tcp/0', true).port).toBe(0)
    expect(error('/ip4/127.0.0.1/tcp/00', true)).toMatch(/port/)
    expect(error('/ip4/127.0.0.1/tcp/65536', true)).toMatch(/port/)
    expect(error('/ip4/127.0.0.1/tcp/1/p2p/12D3KooWabc')).toMatch(/\/p2p/)
    expect(error('/ip4/127.0.0.1/tcp/1/ws')).toMatch(/nothing may follow \/tcp\/<port> \(found \/ws\)/)
    expect(error('ip4/127.0.0.1/tcp/1')).toMatch(/^expected \/ip4/)
    expect(error('')).toMatch(/^expected \/ip4/)
  })

  it('refuses host names that RFC 1123 does not allow', () => {
    expect(isHostname(`${'a'.repeat(63)}.b`)).toBe(true)
    expect(isHostname(`${'a'.repeat(64)}.b`)).toBe(false)
    expect(isHostname(Array(4).fill('a'.repeat(63)).join('.').slice(0, 253))).toBe(true)
    expect(isHostname(`${Array(4).fill('a'.repeat(63)).join('.')}`)).toBe(false) // 255 characters
    for (const bad of ['', '.', 'a.', '.a', 'a..b', '-a', 'a-', 'a_b', 'a b', 'ä.example', 'a/b']) expect(isHostname(bad), bad).toBe(false)
    expect(isIpv4('1.2.3.4')).toBe(true)
    for (const bad of ['1.2.3', '1.2.3.4.', '01.2.3.4', '1.2.3.256', '1.2.3.4 ', '١.2.3.4']) expect(isIpv4(bad), bad).toBe(false)
  })

  it('never throws on arbitrary input (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.stringMatching(/^(\/[a-z0-9.:%-]{0,12}){0,6}$/)), fc.boolean(), (text, anyPort) => {
        const r = parseTcpMultiaddr(text, { anyPort })
        expect('addr' in r || typeof r.error === 'string').toBe(true)
      }),
      { numRuns: 2000 },
    )
  })
})
