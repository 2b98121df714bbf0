import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ConfigError, Membership, generateCluster, keyPairFromSeed, parseReplicaId, parseTcpMultiaddr, peerIdOf, replicaId, toHex } from '../src/index.js'

// A valid config: two groups, clients, upgrade authorities; deterministic keys.
const base = generateCluster({
  groups: [
    { name: 'kv', f: 1 },
    { name: 'bank', f: 1, n: 5 },
  ],
  clients: ['alice', 'bob'],
  authorities: { count: 3, threshold: 2 },
  basePort: 7000,
  seed: new Uint8Array(32).fill(1),
})
type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
// The cases below write wrong types into any field on purpose: a typed config would forbid exactly that.
// biome-ignore lint/suspicious/noExplicitAny: deliberately untyped config under mutation
type Loose = any
const validConfig = (): Record<string, Json> => JSON.parse(JSON.stringify(base.config))
const freshKey = (byte: number): string => toHex(keyPairFromSeed(new Uint8Array(32).fill(byte)).publicKey)

/** The ConfigError `fromConfig` throws for the config after `mutate` (which changes it in place); fails if it accepts. */
function rejection(mutate: (c: Record<string, Loose>) => unknown): ConfigError {
  const c = validConfig()
  mutate(c)
  return rejectionOf(c)
}

function rejectionOf(config: unknown): ConfigError {
  try {
    Membership.fromConfig(config)
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return err as ConfigError
  }
  throw new Error('config accepted')
}

describe('a valid config', () => {
  it('is accepted with groups, members, clients and authorities as written', () => {
    const m = Membership.fromConfig(validConfig())
    expect([...m.groups.keys()]).toEqual(['kv', 'bank'])
    const kv = m.group('kv')!
    expect([kv.f, kv.n, kv.quorum, kv.weakQuorum]).toEqual([1, 4, 3, 2])
    expect(m.group('bank')!.n).toBe(5)
    expect(m.group('nope')).toBeUndefined()
    const k2 = m.member('kv/2')!
    expect(k2).toMatchObject({ id: 'kv/2', group: 'kv', index: 2, addrs: ['/ip4/127.0.0.1/tcp/7002'] })
    expect(k2.publicKey).toEqual(base.keys.get('kv/2')!.publicKey)
    expect(k2.peerId).toBe(peerIdOf(k2.publicKey))
    expect(m.byPeer(k2.peerId)).toBe(k2)
    expect([...m.members].map((x) => x.id)).toEqual(['kv/0', 'kv/1', 'kv/2', 'kv/3', 'bank/0', 'bank/1', 'bank/2', 'bank/3', 'bank/4'])
    const alice = m.clients.get('alice')!
    expect(alice.publicKey).toEqual(base.keys.get('alice')!.publicKey)
    expect(m.byPeer(alice.peerId)).toBe(alice)
    expect(m.byPeer('12D3KooWnobody')).toBeUndefined()
    expect(m.openClients).toBe(false)
    expect(m.upgradeAuthority!.threshold).toBe(2)
    expect(m.upgradeAuthority!.publicKeys.map(toHex)).toEqual([0, 1, 2].map((i) => toHex(base.keys.get(`authority/${i}`)!.publicKey)))
    expect(Membership.parse(JSON.stringify(validConfig())).group('kv')!.n).toBe(4)
  })

  it('accepts the minimal forms: f=0 with one member (when asked for), no addrs, no clients, no authority, upper-case hex', () => {
    const m = Membership.fromConfig({ version: 1, groups: { a: { f: 0, members: [{ publicKey: freshKey(3).toUpperCase(), addrs: [] }] } } }, { allowZeroFaultTolerance: true })
    expect(m.group('a')!.n).toBe(1)
    expect(m.clients.size).toBe(0)
    expect(m.openClients).toBe(false)
    expect(m.upgradeAuthority).toBeUndefined()
    const open = Membership.fromConfig({ ...validConfig(), clients: { open: true, members: [] } })
    expect(open.openClients).toBe(true)
  })

  it('generateCluster: deterministic keys from a seed, one key per identity', () => {
    const again = generateCluster({ groups: [{ name: 'kv', f: 1 }, { name: 'bank', f: 1, n: 5 }], clients: ['alice', 'bob'], authorities: { count: 3, threshold: 2 }, basePort: 7000, seed: new Uint8Array(32).fill(1) })
    expect(again.config).toEqual(base.config)
    expect([...base.keys.keys()].sort()).toEqual(['alice', 'authority/0', 'authority/1', 'authority/2', 'bank/0', 'bank/1', 'bank/2', 'bank/3', 'bank/4', 'bob', 'kv/0', 'kv/1', 'kv/2', 'kv/3'])
    expect(generateCluster({ groups: [{ name: 'kv', f: 1 }] }).config.groups.kv!.members[0]!.addrs).toEqual([])
  })

  it('generateCluster refuses specs whose identities would collide (bug fixed)', () => {
    const err = (run: () => unknown): ConfigError => {
      try {
        run()
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError)
        return e as ConfigError
      }
      throw new Error('accepted')
    }
    // Before: the second "kv" silently replaced the first and its keys.
    expect(err(() => generateCluster({ groups: [{ name: 'kv', f: 1 }, { name: 'kv', f: 2 }] })).field).toBe('groups.kv')
    // Before: authority/0's key silently replaced replica authority/0's key in `keys`.
    expect(err(() => generateCluster({ groups: [{ name: 'authority', f: 0 }], authorities: { count: 1, threshold: 1 }, allowZeroFaultTolerance: true })).field).toBe('authority/0')
    expect(err(() => generateCluster({ groups: [{ name: '__proto__', f: 0 }] })).field).toBe('groups.__proto__')
    expect(err(() => generateCluster({ groups: [{ name: 'kv', f: 100 }] })).field).toBe('groups.kv.members')
    expect(err(() => generateCluster({ groups: [{ name: 'kv', f: 1, n: 3 }] })).field).toBe('groups.kv.members')
  })
})

describe('every mistake is a ConfigError naming the field', () => {
  const kvKey = (i: number) => base.config.groups.kv!.members[i]!.publicKey
  const cases: Array<[string, (c: Record<string, Loose>) => unknown, RegExp?]> = [
    ['extra', (c) => (c.extra = 1)],
    ['version', (c) => delete c.version],
    ['version', (c) => (c.version = 2)],
    ['version', (c) => (c.version = '1')],
    ['groups', (c) => delete c.groups],
    ['groups', (c) => (c.groups = [])],
    ['groups', (c) => (c.groups = null)],
    ['groups', (c) => (c.groups = 'kv')],
    ['groups', (c) => (c.groups = {}), /at least one group/],
    ['groups', (c) => (c.groups = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`g${i}`, c.groups.kv]))), /at most 64/],
    ['groups.KV', (c) => (c.groups.KV = c.groups.kv)],
    ['groups.1kv', (c) => (c.groups['1kv'] = c.groups.kv)],
    ['groups.k_v', (c) => (c.groups.k_v = c.groups.kv)],
    ['groups.', (c) => (c.groups[''] = c.groups.kv)],
    [`groups.${'a'.repeat(33)}`, (c) => (c.groups['a'.repeat(33)] = c.groups.kv)],
    ['groups.kv', (c) => (c.groups.kv = [])],
    ['groups.kv', (c) => (c.groups.kv = null)],
    ['groups.kv.n', (c) => (c.groups.kv.n = 4)],
    ['groups.kv.f', (c) => (c.groups.kv.f = -1)],
    ['groups.kv.f', (c) => (c.groups.kv.f = 0.5)],
    ['groups.kv.f', (c) => (c.groups.kv.f = '1')],
    ['groups.kv.f', (c) => (c.groups.kv.f = null)],
    ['groups.kv.f', (c) => delete c.groups.kv.f],
    ['groups.kv.f', (c) => (c.groups.kv.f = Number.POSITIVE_INFINITY)],
    ['groups.kv.members', (c) => delete c.groups.kv.members],
    ['groups.kv.members', (c) => (c.groups.kv.members = {})],
    ['groups.kv.members', (c) => (c.groups.kv.f = 2), /f=2 needs at least 7 members \(n >= 3f\+1\), found 4/],
    ['groups.kv.members', (c) => c.groups.kv.members.pop(), /f=1 needs at least 4 members \(n >= 3f\+1\), found 3/],
    [
      'groups.kv.members',
      (c) => {
        c.groups.kv.f = 0
        c.groups.kv.members = Array(257).fill(c.groups.kv.members[0])
      },
      /at most 256/,
    ],
    ['groups.kv.members[1]', (c) => (c.groups.kv.members[1] = kvKey(1))],
    ['groups.kv.members[1]', (c) => (c.groups.kv.members[1] = null)],
    ['groups.kv.members[1]', (c) => delete c.groups.kv.members[1]], // a hole in the array: map/forEach would skip it (bug fixed)
    ['groups.kv.members[1].id', (c) => (c.groups.kv.members[1].id = 'kv/1')],
    ['groups.kv.members[1].publicKey', (c) => delete c.groups.kv.members[1].publicKey],
    ['groups.kv.members[1].publicKey', (c) => (c.groups.kv.members[1].publicKey = 7)],
    ['groups.kv.members[1].publicKey', (c) => (c.groups.kv.members[1].publicKey = kvKey(1).slice(2)), /expected 32 bytes/],
    ['groups.kv.members[1].publicKey', (c) => (c.groups.kv.members[1].publicKey = `${kvKey(1)}00`), /expected 32 bytes/],
    ['groups.kv.members[1].publicKey', (c) => (c.groups.kv.members[1].publicKey = `x${kvKey(1).slice(1)}`), /not a hex/],
    ['groups.kv.members[1].publicKey', (c) => (c.groups.kv.members[1].publicKey = `0x${kvKey(1).slice(2)}`), /not a hex/],
    ['groups.kv.members[1].publicKey', (c) => (c.groups.kv.members[1].publicKey = '00'.repeat(32)), /small order/],
    ['groups.kv.members[1].publicKey', (c) => (c.groups.kv.members[1].publicKey = `01${'00'.repeat(31)}`), /small order/],
    ['groups.kv.members[1].publicKey', (c) => (c.groups.kv.members[1].publicKey = 'ff'.repeat(32)), /non-canonical/],
    ['groups.kv.members[1].publicKey', (c) => (c.groups.kv.members[1].publicKey = kvKey(0)), /same public key as groups.kv.members\[0\].publicKey/],
    ['groups.kv.members[1].publicKey', (c) => (c.groups.kv.members[1].publicKey = kvKey(0).toUpperCase()), /same public key/],
    ['groups.bank.members[2].publicKey', (c) => (c.groups.bank.members[2].publicKey = kvKey(3)), /same public key as groups.kv.members\[3\]/],
    ['clients.members[1].publicKey', (c) => (c.clients.members[1].publicKey = kvKey(2)), /same public key as groups.kv.members\[2\]/],
    ['clients.members[1].publicKey', (c) => (c.clients.members[1].publicKey = c.clients.members[0].publicKey), /same public key as clients.members\[0\]/],
    ['upgradeAuthority.publicKeys[0]', (c) => (c.upgradeAuthority.publicKeys[0] = kvKey(0)), /same public key as groups.kv.members\[0\]/],
    ['upgradeAuthority.publicKeys[2]', (c) => (c.upgradeAuthority.publicKeys[2] = c.clients.members[0].publicKey), /same public key as clients.members\[0\]/],
    ['upgradeAuthority.publicKeys[1]', (c) => (c.upgradeAuthority.publicKeys[1] = c.upgradeAuthority.publicKeys[0])],
    ['groups.kv.members[0].addrs', (c) => delete c.groups.kv.members[0].addrs],
    ['groups.kv.members[0].addrs', (c) => (c.groups.kv.members[0].addrs = '/ip4/127.0.0.1/tcp/7000')],
    ['groups.kv.members[0].addrs', (c) => (c.groups.kv.members[0].addrs = Array(17).fill('/ip4/127.0.0.1/tcp/7000'))],
    ['groups.kv.members[0].addrs[0]', (c) => (c.groups.kv.members[0].addrs = [7000])],
    ['groups.kv.members[0].addrs[1]', (c) => (c.groups.kv.members[0].addrs = ['/ip4/127.0.0.1/tcp/7000', '127.0.0.1:7000'])],
    ['groups.kv.members[0].addrs[0]', (c) => (c.groups.kv.members[0].addrs = [`/dns4/${'a'.repeat(260)}/tcp/1`])],
    ['groups.kv.members[0].addrs[0]', (c) => (c.groups.kv.members[0].addrs = [null])],
    ['clients', (c) => (c.clients = [])],
    ['clients', (c) => (c.clients = null)],
    ['clients.extra', (c) => (c.clients.extra = true)],
    ['clients.open', (c) => (c.clients.open = 'false')],
    ['clients.open', (c) => (c.clients.open = 0)],
    ['clients.open', (c) => delete c.clients.open],
    ['clients.members', (c) => delete c.clients.members],
    ['clients.members', (c) => (c.clients.members = { alice: c.clients.members[0] })],
    ['clients.members[0]', (c) => (c.clients.members[0] = 'alice')],
    ['clients.members[0].addrs', (c) => (c.clients.members[0].addrs = [])],
    ['clients.members[0].id', (c) => delete c.clients.members[0].id],
    ['clients.members[0].id', (c) => (c.clients.members[0].id = '')],
    ['clients.members[0].id', (c) => (c.clients.members[0].id = 'kv/0')],
    ['clients.members[0].id', (c) => (c.clients.members[0].id = 'al ice')],
    ['clients.members[0].id', (c) => (c.clients.members[0].id = 'a'.repeat(65))],
    ['clients.members[0].id', (c) => (c.clients.members[0].id = 7)],
    ['clients.members[1].id', (c) => (c.clients.members[1].id = 'alice'), /duplicate client id alice/],
    ['upgradeAuthority', (c) => (c.upgradeAuthority = [])],
    ['upgradeAuthority', (c) => (c.upgradeAuthority = 2)],
    ['upgradeAuthority.keys', (c) => (c.upgradeAuthority.keys = [])],
    ['upgradeAuthority.publicKeys', (c) => (c.upgradeAuthority.publicKeys = [])],
    ['upgradeAuthority.publicKeys', (c) => delete c.upgradeAuthority.publicKeys],
    ['upgradeAuthority.publicKeys', (c) => (c.upgradeAuthority.publicKeys = c.upgradeAuthority.publicKeys[0])],
    ['upgradeAuthority.publicKeys', (c) => (c.upgradeAuthority.publicKeys = Array.from({ length: 257 }, () => freshKey(9)))],
    ['upgradeAuthority.publicKeys[1]', (c) => (c.upgradeAuthority.publicKeys[1] = 'nope')],
    ['upgradeAuthority.threshold', (c) => (c.upgradeAuthority.threshold = 0), /from 1 to 3/],
    ['upgradeAuthority.threshold', (c) => (c.upgradeAuthority.threshold = 4), /from 1 to 3/],
    ['upgradeAuthority.threshold', (c) => (c.upgradeAuthority.threshold = 1.5)],
    ['upgradeAuthority.threshold', (c) => (c.upgradeAuthority.threshold = '2')],
    ['upgradeAuthority.threshold', (c) => delete c.upgradeAuthority.threshold],
  ]
  it('(root): not an object', () => {
    for (const config of [null, undefined, [], 'config', 1, true]) expect(rejectionOf(config).field).toBe('(root)')
  })

  for (const [field, mutate, message] of cases) {
    it(`${field}${message === undefined ? '' : ` (${message.source})`}: ${mutate.toString().replace(/^\(c\) => /, '').slice(0, 70)}`, () => {
      const err = rejection(mutate)
      expect(err.field).toBe(field)
      expect(err.message.startsWith(`${field}: `)).toBe(true)
      if (message !== undefined) expect(err.message).toMatch(message)
    })
  }
})

describe('member addresses', () => {
  const peerId = peerIdOf(base.keys.get('kv/2')!.publicKey)
  const withAddrs = (addrs: unknown[]): Record<string, Loose> => {
    const c: Record<string, Loose> = validConfig()
    c.groups.kv.members[2].addrs = addrs
    return c
  }
  // Each was accepted (it starts with "/") and then made the transport throw a raw libp2p error.
  const rejected: Array<[string, RegExp]> = [
    ['/garbage', /unsupported protocol/],
    ['/ip4/999.1.1.1/tcp/1', /IPv4/],
    ['/ip4/256.0.0.1/tcp/1', /IPv4/],
    ['/ip4/01.2.3.4/tcp/1', /IPv4/],
    ['/ip4/1.2.3/tcp/1', /IPv4/],
    ['/ip4/1.2.3.4.5/tcp/1', /IPv4/],
    ['/ip4/1.2.3.-4/tcp/1', /IPv4/],
    ['/ip4/ 1.2.3.4/tcp/1', /IPv4/],
    ['/ip4/1.2.3.4/tcp/0', /port/],
    ['/ip4/1.2.3.4/tcp/70000', /port/],
    ['/ip4/1.2.3.4/tcp/65536', /port/],
    ['/ip4/1.2.3.4/tcp/05', /port/],
    ['/ip4/1.2.3.4/tcp/+5', /port/],
    ['/ip4/1.2.3.4/tcp/5e3', /port/],
    ['/ip4/1.2.3.4/tcp/0x10', /port/],
    ['/ip4/1.2.3.4/tcp/-1', /port/],
    ['/ip4/1.2.3.4', /\/tcp\/<port>/],
    ['/ip4/1.2.3.4/udp/5', /\/tcp\/<port>/],
    ['/ip4/1.2.3.4/tcp', /\/tcp\/<port>/],
    ['/ip4/1.2.3.4/tcp/5/', /empty component|trailing/],
    ['/ip4//tcp/5', /empty component/],
    ['//ip4/1.2.3.4/tcp/5', /empty component/],
    ['/ip4/1.2.3.4//tcp/5', /empty component/],
    ['/', /empty component/],
    ['/ip4/1.2.3.4/tcp/5/ws', /nothing may follow/],
    ['/ip4/1.2.3.4/tcp/5/tcp/6', /nothing may follow/],
    [`/ip4/1.2.3.4/tcp/5/p2p/${peerId}`, /\/p2p/],
    ['/tcp/5', /unsupported protocol/],
    ['/IP4/1.2.3.4/tcp/5', /unsupported protocol/],
    ['/dnsaddr/example.com/tcp/5', /unsupported protocol/],
    ['/unix/tmp/replica.sock', /unsupported protocol/],
    ['/ip6/1::2::3/tcp/5', /IPv6/],
    ['/ip6/1:2:3:4:5:6:7:8:9/tcp/5', /IPv6/],
    ['/ip6/1:2:3:4:5:6:7/tcp/5', /IPv6/],
    ['/ip6/12345::/tcp/5', /IPv6/],
    ['/ip6/::g/tcp/5', /IPv6/],
    ['/ip6/1:::2/tcp/5', /IPv6/],
    ['/ip6/:1::/tcp/5', /IPv6/],
    ['/ip6/fe80::1%eth0/tcp/5', /IPv6/],
    ['/ip6/::1.2.3.4.5/tcp/5', /IPv6/],
    ['/ip6/::256.1.1.1/tcp/5', /IPv6/],
    ['/ip6/1.2.3.4/tcp/5', /IPv6/],
    ['/dns4/-bad.example/tcp/5', /host name/],
    ['/dns4/bad-.example/tcp/5', /host name/],
    ['/dns4/exa_mple.com/tcp/5', /host name/],
    ['/dns4/a..b/tcp/5', /host name/],
    ['/dns4/example.com./tcp/5', /host name/],
    [`/dns6/${'a'.repeat(64)}.example/tcp/5`, /host name/],
    ['/dns/exa mple/tcp/5', /host name/],
    ['/ip4/1.2.3.4/tcp/5 ', /port/],
  ]

  it('refuses an unparsable member address with a ConfigError naming the field (was: accepted, then crashed the transport)', () => {
    for (const [addr, why] of rejected) {
      const err = rejectionOf(withAddrs(['/ip4/127.0.0.1/tcp/7002', addr]))
      expect(err.field, addr).toBe('groups.kv.members[2].addrs[1]')
      expect(err.message, addr).toMatch(why)
      expect(err.message, addr).toContain(JSON.stringify(addr))
    }
  })

  it('accepts exactly the TCP forms the transport dials: /ip4, /ip6, /dns4, /dns6, /dns with /tcp/<1-65535>', () => {
    const accepted = [
      '/ip4/127.0.0.1/tcp/7000',
      '/ip4/0.0.0.0/tcp/1',
      '/ip4/255.255.255.255/tcp/65535',
      '/ip4/10.0.0.1/tcp/1',
      '/ip6/::1/tcp/7000',
      '/ip6/::/tcp/1',
      '/ip6/1::/tcp/1',
      '/ip6/2001:db8::1/tcp/443',
      '/ip6/2001:DB8:0:0:0:0:0:1/tcp/443',
      '/ip6/1:2:3:4:5:6:7:8/tcp/5',
      '/ip6/::ffff:192.0.2.1/tcp/5',
      '/ip6/64:ff9b::192.0.2.1/tcp/5',
      '/dns4/localhost/tcp/7000',
      '/dns6/replica-1.example.org/tcp/7000',
      '/dns/a/tcp/1',
      '/dns/1.example/tcp/1',
      '/dns4/xn--bcher-kva.example/tcp/1',
      `/dns4/${'a'.repeat(63)}.example/tcp/1`,
    ]
    const m = Membership.fromConfig(withAddrs(accepted.slice(0, 16)))
    expect(m.member('kv/2')!.addrs).toEqual(accepted.slice(0, 16))
    expect(Membership.fromConfig(withAddrs(accepted.slice(16))).member('kv/2')!.addrs).toEqual(accepted.slice(16))
  })
})

describe('Membership.parse', () => {
  const parseError = (text: string): ConfigError => {
    try {
      Membership.parse(text)
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError)
      return err as ConfigError
    }
    throw new Error('accepted')
  }

  it('names the file for text that is not JSON', () => {
    for (const text of ['', '{', 'version: 1', "{'version': 1}", '{"version": 1,}', '\u0000']) {
      const err = parseError(text)
      expect(err.field).toBe('(file)')
      expect(err.message).toMatch(/not valid JSON/)
    }
  })

  it('refuses a key repeated within one object, which JSON.parse would silently drop (bug fixed)', () => {
    const text = JSON.stringify(validConfig(), null, 2)
    // The second "kv" group would have replaced the first.
    const twoKv = text.replace('"bank":', '"kv":')
    expect(parseError(twoKv).field).toBe('groups.kv')
    const twoF = text.replace('"f": 1,', '"f": 1, "f": 0,')
    expect(parseError(twoF).field).toBe('groups.kv.f')
    const twoKeys = text.replace('"publicKey":', '"publicKey": "00", "publicKey":')
    expect(parseError(twoKeys).field).toBe('groups.kv.members[0].publicKey')
    const third = text.replace(/("publicKey": "[0-9a-f]+",\s*"addrs": \[\s*"\/ip4\/127.0.0.1\/tcp\/7002")/, '"addrs": [], $1')
    expect(parseError(third).field).toBe('groups.kv.members[2].addrs')
    const escaped = JSON.stringify({ version: 1, groups: {} }).replace('"version":1', '"version":1,"vers\\u0069on":1')
    expect(parseError(escaped).field).toBe('version')
    const top = '{"version": 1, "version": 1, "groups": {}}'
    expect(parseError(top).field).toBe('version')
    // The same key in different objects, and keys or values with quotes and brackets inside, are fine.
    const tricky = JSON.stringify({ ...validConfig(), clients: { open: false, members: [{ id: 'a', publicKey: freshKey(5) }] } })
    expect(Membership.parse(tricky).clients.size).toBe(1)
    expect(parseError('{"version": 1, "groups": {"kv": {"f": 0, "members": [{"publicKey": "\\"{[,", "addrs": []}]}}}').field).toBe('groups.kv.members[0].publicKey')
  })

  it('never throws anything but ConfigError on damaged text (property)', () => {
    const text = JSON.stringify(validConfig())
    fc.assert(
      fc.property(fc.nat({ max: text.length - 1 }), fc.nat({ max: text.length }), fc.string({ maxLength: 3 }), (at, cut, insert) => {
        const damaged = text.slice(0, at) + insert + text.slice(at + 1, Math.max(at + 1, cut))
        try {
          Membership.parse(damaged)
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigError)
        }
      }),
      { numRuns: 500 },
    )
  })
})

describe('fuzzing valid configs', () => {
  /** Every path (as a list of keys) in a JSON value. */
  function paths(v: Json, prefix: Array<string | number> = []): Array<Array<string | number>> {
    const out: Array<Array<string | number>> = [prefix]
    if (Array.isArray(v)) for (const [i, x] of v.entries()) out.push(...paths(x, [...prefix, i]))
    else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...prefix, k]))
    return out
  }
  const original = validConfig()
  const allPaths = paths(original).filter((p) => p.length > 0)
  const replacement: fc.Arbitrary<Json> = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
    fc.constantFrom<Json>(freshKey(7), base.config.groups.kv!.members[0]!.publicKey, '/ip4/10.0.0.1/tcp/1', 'kv', 'alice', -1, 0, 1, 2, 3, 4, 256, 1e9, 0.5, '', [], {}),
  )
  const mutation = fc.record({ path: fc.constantFrom(...allPaths), kind: fc.constantFrom('replace', 'delete', 'duplicate'), value: replacement })

  it('never throws anything but ConfigError, and what it accepts satisfies the invariants', () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (mutations) => {
        const c = validConfig()
        for (const { path, kind, value } of mutations) {
          let parent: Loose = c
          for (const key of path.slice(0, -1)) parent = parent?.[key]
          if (parent === null || typeof parent !== 'object') continue
          const last = path[path.length - 1] as string | number
          if (kind === 'delete') {
            if (Array.isArray(parent) && typeof last === 'number') parent.splice(last, 1)
            else delete parent[last]
          } else if (kind === 'duplicate' && Array.isArray(parent)) parent.push(structuredClone(parent[last as number]))
          else Object.defineProperty(parent, last, { value, enumerable: true, writable: true, configurable: true })
        }
        let m: Membership
        try {
          m = Membership.parse(JSON.stringify(c))
        } catch (err) {
          expect(err).toBeInstanceOf(ConfigError)
          return
        }
        const keys = new Set<string>()
        for (const g of m.groups.values()) {
          expect(g.n).toBeGreaterThanOrEqual(3 * g.f + 1)
          expect(g.members.length).toBe(g.n)
          g.members.forEach((member, i) => {
            expect(member.id).toBe(replicaId(g.name, i))
            for (const a of member.addrs) expect('addr' in parseTcpMultiaddr(a)).toBe(true)
            keys.add(toHex(member.publicKey))
          })
        }
        for (const client of m.clients.values()) keys.add(toHex(client.publicKey))
        for (const k of m.upgradeAuthority?.publicKeys ?? []) keys.add(toHex(k))
        expect(keys.size).toBe([...m.groups.values()].reduce((s, g) => s + g.n, 0) + m.clients.size + (m.upgradeAuthority?.publicKeys.length ?? 0))
      }),
      { numRuns: 1500 },
    )
  })
})

describe('parseReplicaId', () => {
  it('splits well-formed ids and round-trips replicaId', () => {
    expect(parseReplicaId('kv/0')).toEqual({ group: 'kv', index: 0 })
    expect(parseReplicaId('a-b-9/255')).toEqual({ group: 'a-b-9', index: 255 })
    expect(parseReplicaId(`${'a'.repeat(32)}/9999`)).toEqual({ group: 'a'.repeat(32), index: 9999 })
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z][a-z0-9-]{0,31}$/), fc.nat({ max: 9999 }), (g, i) => {
        expect(parseReplicaId(replicaId(g, i))).toEqual({ group: g, index: i })
      }),
    )
  })

  it('is undefined for everything else', () => {
    const bad = ['', 'kv', 'kv/', '/0', 'kv//0', 'kv/0/1', 'kv/01', 'kv/00', 'kv/-1', 'kv/+1', 'kv/1.0', 'kv/1e3', 'kv/ 1', 'kv/1 ', ' kv/1', 'kv/10000', 'KV/0', '1kv/0', 'k_v/0', `${'a'.repeat(33)}/0`, 'kv/0x1', 'kv/٣', 'alice', 'kv\\0']
    for (const id of bad) expect({ id, parsed: parseReplicaId(id) }).toEqual({ id, parsed: undefined })
    for (const id of [undefined, null, 7, {}, ['kv/0']]) expect(parseReplicaId(id as unknown as string)).toBeUndefined()
  })

  it('computes every quorum from n: ⌈(n+f+1)/2⌉, so two quorums share a correct member for any n >= 3f+1 (was: 2f+1 whatever n)', () => {
    // n = 5, f = 1: with quorums of 2f+1 = 3, two quorums could share only the one faulty member.
    const five = generateCluster({ groups: [{ name: 'kv', f: 1, n: 5 }] }).membership.group('kv')!
    expect(five.quorum).toBe(4)
    expect(2 * five.quorum - five.n).toBeGreaterThanOrEqual(five.f + 1)
    for (let f = 1; f <= 5; f++) {
      for (let n = 3 * f + 1; n <= 3 * f + 6; n++) {
        const g = generateCluster({ groups: [{ name: 'g', f, n }], seed: new Uint8Array(32).fill(n) }).membership.group('g')!
        expect(2 * g.quorum - n, `n=${n} f=${f}: quorum intersection`).toBeGreaterThanOrEqual(f + 1)
        expect(n - f, `n=${n} f=${f}: the correct members make a quorum`).toBeGreaterThanOrEqual(g.quorum)
        expect(g.weakQuorum).toBe(f + 1)
      }
    }
    expect(generateCluster({ groups: [{ name: 'kv', f: 1 }] }).membership.group('kv')!.quorum).toBe(3)
  })

  it('refuses f = 0 from a config file and unless a test asks for it (was: accepted, with quorums of 1)', () => {
    const zero = { version: 1, groups: { kv: { f: 0, members: [0, 1, 2, 3].map((i) => ({ publicKey: freshKey(40 + i), addrs: [] })) } } }
    expect(() => Membership.parse(JSON.stringify(zero))).toThrow(/f = 0/)
    expect(() => Membership.fromConfig(zero)).toThrow(ConfigError)
    expect(() => generateCluster({ groups: [{ name: 'kv', f: 0, n: 4 }] })).toThrow(ConfigError)
    expect(Membership.fromConfig(zero, { allowZeroFaultTolerance: true }).group('kv')!.quorum).toBe(3)
  })

  it('names the deployment by a digest of its identities: other keys, groups, f or name give another id; addresses do not', () => {
    const a = generateCluster({ groups: [{ name: 'kv', f: 1 }], seed: new Uint8Array(32).fill(7), basePort: 7000 })
    const id = toHex(a.membership.deployment)
    expect(a.membership.deployment.length).toBe(32)
    expect(toHex(generateCluster({ groups: [{ name: 'kv', f: 1 }], seed: new Uint8Array(32).fill(7), basePort: 9000 }).membership.deployment)).toBe(id)
    expect(toHex(generateCluster({ groups: [{ name: 'kv', f: 1 }], seed: new Uint8Array(32).fill(8) }).membership.deployment)).not.toBe(id)
    expect(toHex(generateCluster({ groups: [{ name: 'kv', f: 1, n: 5 }], seed: new Uint8Array(32).fill(7) }).membership.deployment)).not.toBe(id)
    expect(toHex(generateCluster({ groups: [{ name: 'kv', f: 1 }], seed: new Uint8Array(32).fill(7), deployment: 'staging' }).membership.deployment)).not.toBe(id)
    expect(() => Membership.fromConfig({ ...a.config, deployment: 'no spaces allowed' })).toThrow(ConfigError)
  })
})
