/**
 * The adversary's own promises: a seed replays the same attack, every message type is generated,
 * numbers and lengths reach their edges, frames stay within what a transport carries, and every
 * signature is its own (over its own group's statement, another group's, or junk): never a key
 * it does not hold.
 */
import { DEFAULT_LIMITS, type Message, encodeMessage, prepareStatement, requestDigest, scopeOf, tryDecodeMessage } from '@bftrc/core-agreement'
import { DEFAULT_MAX_ENCODED_BYTES, type KeyPair, generateCluster, signBytes, verifyBytes } from '@bftrc/crypto'
import { describe, expect, it } from 'vitest'
import { FIXED_EDGES, GenerativeClient, GenerativeMember, Prng, edgeLength, edgeNumber, randomBytes } from '../src/index.js'

const SEED = new Uint8Array(32).fill(7)

function cluster(openClients = false) {
  return generateCluster({ groups: [{ name: 'kv', f: 1 }, { name: 'bank', f: 1 }], clients: ['alice'], openClients, seed: SEED })
}

function key(keys: ReadonlyMap<string, KeyPair>, id: string): KeyPair {
  const k = keys.get(id)
  if (k === undefined) throw new Error(`no key for ${id}`)
  return k
}

/** Honest traffic for the corpus: a client's request and a prepare of another member. */
function honestFrames(c: ReturnType<typeof cluster>): Array<{ from: string; bytes: Uint8Array }> {
  const scope = scopeOf(c.membership, 'kv')
  const body = { client: 'alice', timestamp: 5, op: new Uint8Array([1, 2, 3]), readOnly: false }
  const request = { ...body, signature: signBytes(key(c.keys, 'alice'), requestDigest(scope, body)) }
  const digest = new Uint8Array(32).fill(9)
  const prepare: Message = { t: 'prepare', view: 0, seq: 1, digest, signature: signBytes(key(c.keys, 'kv/0'), prepareStatement(scope, 0, 1, digest)) }
  return [
    { from: 'alice', bytes: encodeMessage({ t: 'request', request }) },
    { from: 'kv/0', bytes: encodeMessage(prepare) },
  ]
}

/** Small operations keep the draws cheap; the shapes are the same at any limit. */
const CONFIG = { maxOpBytes: 512 }

function member(c: ReturnType<typeof cluster>, seed: number): GenerativeMember {
  const m = new GenerativeMember({ membership: c.membership, self: 'kv/1', keyPair: key(c.keys, 'kv/1'), prng: new Prng(seed), config: CONFIG })
  for (const f of honestFrames(c)) m.observe(f.from, f.bytes)
  return m
}

function run(m: GenerativeMember, ticks: number) {
  const out = []
  for (let i = 0; i < ticks; i++) out.push(...m.tick({ view: 4, lastExecuted: 70, stable: 64 }))
  return out
}

/** One tick (which sets the window: view 4, last executed 70, stable 64), then `count` more generated messages. */
function draw(m: GenerativeMember, count: number) {
  const ticked = m.tick({ view: 4, lastExecuted: 70, stable: 64 })
  const out = [...ticked]
  for (let i = 0; i < count; i++) out.push(...m.one())
  return { ticked: ticked.length, out }
}

describe('Prng', () => {
  it('replays a seed exactly and keeps draws in range', () => {
    const a = new Prng(42)
    const b = new Prng(42)
    const drawsA = Array.from({ length: 1000 }, () => a.int(-3, 9))
    expect(Array.from({ length: 1000 }, () => b.int(-3, 9))).toEqual(drawsA)
    expect(Math.min(...drawsA)).toBe(-3)
    expect(Math.max(...drawsA)).toBe(9)
    expect(new Prng(43).uint32()).not.toBe(new Prng(42).uint32())
  })

  it('forks a child whose draws do not shift the parent', () => {
    const a = new Prng(1)
    const b = new Prng(1)
    const child = a.fork()
    b.uint32() // the fork's one draw
    for (let i = 0; i < 10; i++) child.uint32()
    expect(a.uint32()).toBe(b.uint32())
  })

  it('refuses to pick from nothing', () => {
    expect(() => new Prng(1).pick([])).toThrow(/empty/)
  })
})

describe('edge values', () => {
  it('reaches every fixed edge, the anchors and one off them, and stays an integer no decoder can misread', () => {
    const r = new Prng(3)
    const seen = new Set<number>()
    for (let i = 0; i < 20_000; i++) {
      const n = edgeNumber(r, [100, 1000])
      expect(Number.isSafeInteger(n)).toBe(true)
      expect(n).toBeGreaterThanOrEqual(-(2 ** 31))
      seen.add(n)
    }
    for (const e of FIXED_EDGES) expect(seen, `edge ${e}`).toContain(e)
    for (const a of [99, 100, 101, 999, 1000, 1001]) expect(seen, `anchor ${a}`).toContain(a)
    expect([...seen].some((n) => n < 0)).toBe(true)
  })

  it('draws lengths of 0, 1, the limit and one past it, never more', () => {
    const r = new Prng(4)
    const seen = new Set<number>()
    for (let i = 0; i < 2000; i++) {
      const n = edgeLength(r, 16)
      expect(n).toBeGreaterThanOrEqual(0)
      expect(n).toBeLessThanOrEqual(17)
      seen.add(n)
    }
    for (const n of [0, 1, 16, 17]) expect(seen).toContain(n)
  })

  it('caps random bytes so no draw costs more than the cap', () => {
    const r = new Prng(5)
    expect(randomBytes(r, 10).length).toBe(10)
    expect(randomBytes(r, -1).length).toBe(0)
    expect(randomBytes(r, 5000, 1024).length).toBe(1024)
  })
})

describe('GenerativeMember', () => {
  it('replays the same attack from the same seed', () => {
    const c = cluster()
    const a = run(member(c, 11), 60)
    const b = run(member(c, 11), 60)
    expect(a.length).toBeGreaterThan(64) // a burst of 64 one tick in 50
    expect(b.map((f) => [f.to, f.type, Buffer.from(f.bytes).toString('hex')])).toEqual(a.map((f) => [f.to, f.type, Buffer.from(f.bytes).toString('hex')]))
    expect(run(member(c, 12), 60).map((f) => f.type)).not.toEqual(a.map((f) => f.type))
  })

  it('generates every message type of every layer, to other members only, within the encoder limit', () => {
    const c = cluster()
    const m = member(c, 21)
    const ticked = run(m, 150)
    const drawn = draw(m, 600)
    const frames = [...ticked, ...drawn.out]
    const types = new Set(frames.map((f) => f.type))
    for (const t of ['status', 'prepare', 'commit', 'checkpoint', 'executed', 'pre-prepare', 'view-change', 'new-view', 'stable', 'fetch-state', 'state-chunk', 'proposal', 'request', 'reply', 'request-share', 'reply-share', 'replay', 'splice', 'garbage', 'malformed']) {
      expect(types, t).toContain(`gen.${t}`)
    }
    const members = new Set([...c.membership.members].map((x) => x.id))
    for (const f of frames) {
      expect(f.to).not.toBe('kv/1')
      expect(members).toContain(f.to)
      expect(f.bytes.length).toBeLessThanOrEqual(DEFAULT_MAX_ENCODED_BYTES)
    }
    // Mostly its own group; the other group gets shares (and anything, now and then).
    expect(frames.some((f) => f.to.startsWith('bank/'))).toBe(true)
    expect(frames.filter((f) => f.to.startsWith('kv/')).length).toBeGreaterThan(frames.length / 2)
    // What its ticks sent is counted per kind, as the hosts report it.
    expect([...m.counts.values()].reduce((a, b) => a + b, 0)).toBe(ticked.length + drawn.ticked)
  })

  it('draws the fields of STATUS from the window edges and the far edges (a peer-chosen lastExecuted near 2^53)', () => {
    const frames = draw(member(cluster(), 31), 2000).out
    const statuses = frames
      .filter((f) => f.type === 'gen.status')
      .map((f) => tryDecodeMessage(f.bytes, DEFAULT_LIMITS))
      .filter((m): m is Extract<Message, { t: 'status' }> => m?.t === 'status')
    const executed = new Set(statuses.map((s) => s.lastExecuted))
    expect(statuses.length).toBeGreaterThan(40)
    expect([...executed].some((n) => n >= 2 ** 31)).toBe(true)
    expect([69, 70, 71].some((n) => executed.has(n))).toBe(true)
    expect([191, 192, 193].some((n) => executed.has(n))).toBe(true) // stable + log window, ±1
    expect(statuses.some((s) => s.active) && statuses.some((s) => !s.active)).toBe(true)
  })

  it('signs only with its own key: its own group, another group, a made-up deployment, or junk', () => {
    const c = cluster()
    const frames = draw(member(c, 41), 2000).out.filter((f) => f.type === 'gen.prepare')
    const prepares = frames
      .map((f) => tryDecodeMessage(f.bytes, DEFAULT_LIMITS))
      .filter((m): m is Extract<Message, { t: 'prepare' }> => m?.t === 'prepare')
    expect(prepares.length).toBeGreaterThan(20)
    const own = c.membership.member('kv/1')?.publicKey as Uint8Array
    const others = [...c.membership.members].filter((x) => x.id !== 'kv/1').map((x) => x.publicKey)
    let ownScope = 0
    let otherGroup = 0
    let junk = 0
    for (const p of prepares) {
      const valid = (pk: Uint8Array, group: string) => verifyBytes(pk, prepareStatement(scopeOf(c.membership, group), p.view, p.seq, p.digest), p.signature)
      if (valid(own, 'kv')) ownScope++
      else if (valid(own, 'bank')) otherGroup++
      else junk++
      for (const pk of others) expect(valid(pk, 'kv') || valid(pk, 'bank')).toBe(false)
    }
    // Genuine signatures dominate (so receivers get past verification to the edge values).
    expect(ownScope).toBeGreaterThan(prepares.length / 2)
    expect(otherGroup).toBeGreaterThan(0)
    expect(junk).toBeGreaterThan(0)
  })

  it('replays frames it observed, byte for byte', () => {
    const c = cluster()
    const honest = honestFrames(c).map((f) => Buffer.from(f.bytes).toString('hex'))
    const replays = draw(member(c, 51), 500).out.filter((f) => f.type === 'gen.replay')
    expect(replays.length).toBeGreaterThan(0)
    for (const r of replays) expect(honest).toContain(Buffer.from(r.bytes).toString('hex'))
  })

  it('refuses an identity that is not a member', () => {
    const c = cluster()
    expect(() => new GenerativeMember({ membership: c.membership, self: 'kv/9', keyPair: key(c.keys, 'kv/1'), prng: new Prng(1) })).toThrow(/not a member/)
  })
})

describe('GenerativeClient', () => {
  function frames(client: GenerativeClient, ticks: number) {
    const out = []
    for (let i = 0; i < ticks; i++) out.push(...client.tick(1_000 + i * 10))
    return out
  }

  it('a listed client sends only as itself, and replays from a seed', () => {
    const c = cluster()
    const make = () => new GenerativeClient({ membership: c.membership, group: 'kv', prng: new Prng(61), listed: { id: 'alice', keyPair: key(c.keys, 'alice') } })
    const a = frames(make(), 200)
    expect(a.length).toBeGreaterThan(100)
    for (const f of a) {
      expect(f.from).toBe('alice')
      expect(f.to).toMatch(/^kv\/[0-3]$/)
    }
    expect(frames(make(), 200).map((f) => Buffer.from(f.bytes).toString('hex'))).toEqual(a.map((f) => Buffer.from(f.bytes).toString('hex')))
    expect(new Set(a.map((f) => f.type))).toEqual(new Set(['gen.client-request', 'gen.client-replay', 'gen.client-garbage']))
  })

  it('an open-client attacker makes up at most 64 identities and draws operations past the limit and statements for another group', () => {
    const c = cluster(true)
    const client = new GenerativeClient({ membership: c.membership, group: 'kv', prng: new Prng(71) })
    const out = frames(client, 2000)
    expect(client.ids.length).toBeGreaterThan(1)
    expect(client.ids.length).toBeLessThanOrEqual(64)
    for (const id of client.ids) expect(id).toMatch(/^peer:/)
    const requests = out.filter((f) => f.type === 'gen.client-request').map((f) => tryDecodeMessage(f.bytes, { ...DEFAULT_LIMITS, maxOpBytes: DEFAULT_LIMITS.maxOpBytes + 1 }))
    expect(requests.some((m) => m?.t === 'request' && m.request.op.length > DEFAULT_LIMITS.maxOpBytes)).toBe(true)
    const kv = scopeOf(c.membership, 'kv')
    const bank = scopeOf(c.membership, 'bank')
    let forBank = 0
    for (const m of requests) {
      if (m?.t !== 'request' || m.request.publicKey === undefined) continue
      const { signature, ...body } = m.request
      if (!verifyBytes(m.request.publicKey, requestDigest(kv, body), signature) && verifyBytes(m.request.publicKey, requestDigest(bank, body), signature)) forBank++
    }
    expect(forBank).toBeGreaterThan(0)
  })

  it('a closed membership without a listed key sends nothing', () => {
    const c = cluster(false)
    expect(frames(new GenerativeClient({ membership: c.membership, group: 'kv', prng: new Prng(81) }), 100)).toEqual([])
  })
})
