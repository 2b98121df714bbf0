/**
 * Every rejection path of every handler: the frame is dropped, the right `dropped.<reason>`
 * counter (and only it, besides `received.<type>`) goes up, nothing is sent or persisted, and the
 * replica's observable state (status, sizes, state digest) is unchanged.
 */
import { encode, sha256 } from '@bftrc/crypto'
import { describe, expect, it } from 'vitest'
import { type Commit, type Message, type NewView, type PrePrepare, type Prepare, type ReplicaConfig, STATE_CHUNK_BYTES, type ViewChange, digestOfBatch, encodeMessage } from '../src/index.js'
import { Craft } from './craft.js'
import { EVENTS, Harness, both, from, hex, is, op, to } from './harness.js'

const K = 4
const L = 8
const SKEW = 10_000
const START = 100_000

/** A group that ordered and executed one request of c0 (seq 1, stamp START) in view 0. */
function setup(config: Partial<ReplicaConfig> = {}) {
  const h = new Harness({ config: { checkpointInterval: K, logWindow: L, maxClockSkew: SKEW, ...config }, otherGroups: [{ name: 'h', f: 1 }] })
  h.now = START
  h.commit('c0', 'first')
  const craft = new Craft(h)
  const pp1 = h.sentOf('pre-prepare')[0]!.message as PrePrepare
  return { h, craft, pp1, d1: digestOfBatch(h.scope, pp1.batch) }
}

function counterDiff(before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>): Record<string, number> {
  const diff: Record<string, number> = {}
  for (const [k, v] of after) if (v !== (before.get(k) ?? 0)) diff[k] = v - (before.get(k) ?? 0)
  return diff
}

interface RejectOptions {
  /** sizes() fields a valid-but-refused input may legitimately touch (a cache of verified signatures). */
  readonly ignoreSizes?: readonly string[]
  /** Names the case in failure messages. */
  readonly label?: string
}

/** Injects `message` into `target` as if sent by `sender` and checks that it is rejected with `reason` and changes nothing. */
function expectRejected(h: Harness, target: string, sender: string, message: Message | Uint8Array, reason: string, options: RejectOptions = {}): void {
  const replica = h.replica(target)
  const counters = new Map(replica.counters)
  const strip = (s: ReturnType<Harness['snapshotOf']>) => {
    const sizes = { ...(s.sizes as Record<string, number>) }
    for (const k of options.ignoreSizes ?? []) delete sizes[k]
    return { ...s, sizes }
  }
  const before = strip(h.snapshotOf(target))
  const stored = h.node(target).storage.loadSync()
  const out = h.inject(sender, target, message)
  const expected: Record<string, number> = { [`dropped.${reason}`]: 1 }
  if (!(message instanceof Uint8Array)) expected[`received.${message.t}`] = 1
  const what = `${reason}${options.label === undefined ? '' : ` (${options.label})`}`
  expect(counterDiff(counters, replica.counters), `counters after ${what}`).toEqual(expected)
  expect(out.map((f) => `${f.message.t}→${f.to}`), `sent after ${what}`).toEqual([])
  expect(strip(h.snapshotOf(target)), `state after ${what}`).toEqual(before)
  expect(h.node(target).storage.loadSync(), `storage after ${what}`).toEqual(stored)
}

describe('any frame', () => {
  it('malformed bytes and unknown message types are dropped as malformed', () => {
    const { h } = setup()
    const valid = encodeMessage({ t: 'status', view: 0, active: true, lastExecuted: 0, stable: 0 })
    const frames = [
      new Uint8Array(0),
      Uint8Array.of(0xff),
      encode([1, 2, 3]),
      encode({ t: 'gossip', view: 0 }),
      encode({ t: 'prepare', view: 0 }),
      encode({ t: 'status', view: -1, active: true, lastExecuted: 0, stable: 0 }),
      Uint8Array.of(...valid, 0),
      valid.subarray(0, valid.length - 1),
    ]
    for (const bytes of frames) expectRejected(h, 'g/1', 'g/2', bytes, 'malformed')
  })

  it('a reply sent to a replica is an unexpected type', () => {
    const { h } = setup()
    expectRejected(h, 'g/1', 'g/2', { t: 'reply', view: 0, timestamp: 1, readOnly: false, resultDigest: new Uint8Array(32) }, 'unexpected-type')
  })

  it('replica-only messages from non-members, other groups, clients or itself are not from a peer', () => {
    const { h, craft, pp1, d1 } = setup()
    const messages: Message[] = [
      pp1,
      craft.prepare(0, 1, d1, 'g/2'),
      { t: 'commit', view: 0, seq: 1, digest: d1 },
      craft.checkpoint(K, new Uint8Array(32), 'g/2'),
      { t: 'status', view: 0, active: true, lastExecuted: 0, stable: 0 },
      { t: 'stable', proof: craft.genesis() },
      craft.viewChange(1, 'g/2'),
      craft.newView(1, [], []),
      { t: 'fetch-state', seq: 0, digest: h.genesisDigest, chunk: 0 },
      { t: 'state-chunk', seq: 0, digest: h.genesisDigest, chunk: 0, length: 1, proof: [], data: new Uint8Array(1) },
    ]
    for (const sender of ['x/0', 'nobody', 'h/0', 'c0', 'g/1']) {
      for (const m of messages) expectRejected(h, 'g/1', sender, m, 'not-a-peer')
    }
  })
})

describe('request', () => {
  it('a client sending another client’s request is impersonation', () => {
    const { h, craft } = setup()
    expectRejected(h, 'g/0', 'c1', { t: 'request', request: craft.request('c0', 2) }, 'impersonation')
    expectRejected(h, 'g/0', 'x/0', { t: 'request', request: craft.request('c0', 2) }, 'impersonation')
  })

  it('a replica does not take a request from itself', () => {
    const { h, craft } = setup()
    expectRejected(h, 'g/0', 'g/0', { t: 'request', request: craft.request('c0', 2) }, 'not-a-peer')
  })

  it('bad signatures and unknown clients are bad requests, at the primary and at a backup, read-write or read-only', () => {
    const { h, craft } = setup()
    for (const target of ['g/0', 'g/1']) {
      expectRejected(h, target, 'c0', { t: 'request', request: craft.request('c0', 2, 'x', { signer: 'c1' }) }, 'bad-request')
      expectRejected(h, target, 'c0', { t: 'request', request: craft.request('c0', 2, 'x', { signer: 'c1', readOnly: true }) }, 'bad-request')
      expectRejected(h, target, 'c0', { t: 'request', request: { ...craft.request('c0', 2), op: op('tampered') } }, 'bad-request')
      const unknown = { ...craft.request('c1', 1), client: 'zz' }
      expectRejected(h, target, 'zz', { t: 'request', request: unknown }, 'bad-request')
    }
    // A retransmission of an executed request with a forged signature is not answered from the cache.
    const executed = h.sentOf('request')[0]!.message as { t: 'request'; request: ReturnType<Craft['request']> }
    expectRejected(h, 'g/1', 'c0', { t: 'request', request: { ...executed.request, signature: craft.request('c0', 1, 'y').signature } }, 'bad-request')
  })

  it('a copy of a verified request with a forged signature is still a bad request, so a correct primary never orders it', () => {
    // The primary verifies c3's request but sheds it (queue full). Later the same request arrives
    // with garbage for a signature. Were verification cached by request digest alone, the primary
    // would order the unverified copy, and every backup would take the batch as proof that the
    // (correct) primary is faulty.
    const { h, craft } = setup({ maxPendingRequests: 1, pipelineDepth: 1 })
    h.inject('c1', 'g/0', { t: 'request', request: craft.request('c1', 1) })
    h.inject('c2', 'g/0', { t: 'request', request: craft.request('c2', 1) })
    const genuine = craft.request('c3', 1)
    h.inject('c3', 'g/0', { t: 'request', request: genuine })
    expect(h.counter('g/0', 'dropped.queue-full')).toBe(1)
    h.deliverAll()
    expect(h.replica('g/0').status()).toMatchObject({ lastExecuted: 3, queued: 0 })
    const forged = { ...genuine, signature: craft.request('c3', 1, 'something else').signature }
    expectRejected(h, 'g/0', 'c3', { t: 'request', request: forged }, 'bad-request')
    h.deliverAll()
    for (const id of h.ids) expect(h.counter(id, 'dropped.bad-batch')).toBe(0)
    expect(h.replica('g/1').status().view).toBe(0)
  })

  it('read-only requests are taken only from the client itself', () => {
    const { h, craft } = setup()
    expectRejected(h, 'g/1', 'g/2', { t: 'request', request: craft.request('c0', 2, 'get', { readOnly: true }) }, 'forwarded-read-only')
  })

  it('a request older than the client’s last executed one is stale', () => {
    const { h, craft } = setup()
    expectRejected(h, 'g/0', 'c0', { t: 'request', request: craft.request('c0', 0) }, 'stale-request')
    expectRejected(h, 'g/1', 'c0', { t: 'request', request: craft.request('c0', 0) }, 'stale-request')
  })

  it('a backup does not take a request relayed by another replica', () => {
    const { h, craft } = setup()
    expectRejected(h, 'g/1', 'g/2', { t: 'request', request: craft.request('c1', 1) }, 'not-primary', { ignoreSizes: ['verifiedRequests'] })
  })

  it('the primary refuses a request it already has in flight', () => {
    const { h, craft } = setup()
    const request = craft.request('c1', 1)
    h.inject('c1', 'g/0', { t: 'request', request })
    h.drop()
    expect(h.replica('g/0').sizes().inFlight).toBe(1)
    expectRejected(h, 'g/0', 'c1', { t: 'request', request }, 'duplicate-request')
    expectRejected(h, 'g/0', 'g/2', { t: 'request', request }, 'duplicate-request')
  })

  it('the primary sheds requests past maxPendingRequests', () => {
    const { h, craft } = setup({ maxPendingRequests: 1, pipelineDepth: 1 })
    h.inject('c1', 'g/0', { t: 'request', request: craft.request('c1', 1) }) // ordered at seq 2, in flight
    h.inject('c2', 'g/0', { t: 'request', request: craft.request('c2', 1) }) // queued
    expect(h.replica('g/0').status().queued).toBe(1)
    expectRejected(h, 'g/0', 'c3', { t: 'request', request: craft.request('c3', 1) }, 'queue-full', { ignoreSizes: ['verifiedRequests'] })
  })

  it('a backup sheds client requests past maxPendingRequests', () => {
    const { h, craft } = setup({ maxPendingRequests: 1 })
    h.inject('c1', 'g/1', { t: 'request', request: craft.request('c1', 1) })
    expect(h.replica('g/1').status().pending).toBe(1)
    expectRejected(h, 'g/1', 'c2', { t: 'request', request: craft.request('c2', 1) }, 'pending-full', { ignoreSizes: ['verifiedRequests'] })
  })
})

describe('proposal', () => {
  const withProposals = (config: Partial<ReplicaConfig> = {}) => {
    const h = new Harness({ config: { checkpointInterval: K, logWindow: L, ...config }, proposals: EVENTS })
    return { h, craft: new Craft(h) }
  }

  it('a backup does not take a proposal (only the primary orders them)', () => {
    const { h } = withProposals()
    expectRejected(h, 'g/1', 'g/2', { t: 'proposal', payload: op('event:a') }, 'not-primary')
  })

  it('an invalid proposal, or any proposal at a replica without a validator', () => {
    const { h } = withProposals()
    expectRejected(h, 'g/0', 'g/2', { t: 'proposal', payload: op('not an event') }, 'bad-proposal')
    const { h: plain } = setup()
    expectRejected(plain, 'g/0', 'g/2', { t: 'proposal', payload: op('event:a') }, 'bad-proposal')
    expect(plain.propose('g/1', 'event:a')).toBe(false)
    expect(plain.counter('g/1', 'dropped.bad-proposal')).toBe(1)
  })

  it('a proposal already queued or in flight is a duplicate; past maxPendingRequests the queue is full', () => {
    const { h } = withProposals({ maxPendingRequests: 1, pipelineDepth: 1 })
    h.inject('g/1', 'g/0', { t: 'proposal', payload: op('event:a') }) // ordered at seq 1, in flight
    expectRejected(h, 'g/0', 'g/2', { t: 'proposal', payload: op('event:a') }, 'duplicate-proposal', { ignoreSizes: ['validProposals'] })
    h.inject('g/1', 'g/0', { t: 'proposal', payload: op('event:b') }) // queued
    expectRejected(h, 'g/0', 'g/2', { t: 'proposal', payload: op('event:b') }, 'duplicate-proposal', { ignoreSizes: ['validProposals'] })
    expectRejected(h, 'g/0', 'g/2', { t: 'proposal', payload: op('event:c') }, 'queue-full', { ignoreSizes: ['validProposals'] })
  })

  it('a pre-prepare carrying an invalid proposal proves the primary faulty', () => {
    const { h, craft } = withProposals()
    const pp = craft.prePrepare(0, 1, { stamp: 0, requests: [], proposals: [op('event:fine'), op('bogus')] })
    const out = h.inject('g/0', 'g/2', pp)
    expect(h.counter('g/2', 'dropped.bad-batch')).toBe(1)
    expect(out.filter(is('prepare'))).toEqual([])
    expect(h.events('g/2', 'faulty-primary')).toEqual([{ kind: 'faulty-primary', view: 0, reason: 'invalid proposal in a batch' }])
  })
})

describe('pre-prepare', () => {
  it('a signature that is not the primary’s is bad', () => {
    const { h, craft } = setup()
    const batch = craft.batch(START, craft.request('c1', 1))
    expectRejected(h, 'g/2', 'g/0', craft.prePrepare(0, 2, batch, 'g/3'), 'bad-signature')
    // The primary's signature over another sequence number does not transfer.
    const signed = craft.prePrepare(0, 3, batch)
    expectRejected(h, 'g/2', 'g/0', { ...signed, seq: 2 }, 'bad-signature')
  })

  it('wrong views: a future view is refused; older views (or any while changing view) are only learned from, if signed', () => {
    const { h, craft, pp1 } = setup()
    const batch = craft.batch(START, craft.request('c1', 1))
    expectRejected(h, 'g/2', 'g/1', craft.prePrepare(1, 2, batch), 'future-view')
    // f+1 view changes move g/2 into view 1, waiting for its NEW-VIEW.
    h.inject('g/1', 'g/2', craft.viewChange(1, 'g/1'))
    h.inject('g/3', 'g/2', craft.viewChange(1, 'g/3'))
    h.drop()
    expect(h.replica('g/2').status()).toMatchObject({ view: 1, active: false })
    expectRejected(h, 'g/2', 'g/1', craft.prePrepare(2, 2, batch), 'future-view')
    expectRejected(h, 'g/2', 'g/0', pp1, 'old-view') // already executed
    expectRejected(h, 'g/2', 'g/0', craft.prePrepare(0, 2, batch, 'g/3'), 'bad-signature')
    expectRejected(h, 'g/2', 'g/1', craft.prePrepare(1, 2, batch, 'g/3'), 'bad-signature')
    // A validly signed one is kept to learn a decision from, but not voted for.
    const learned = craft.prePrepare(0, 2, batch)
    expect(h.inject('g/0', 'g/2', learned)).toEqual([])
    expectRejected(h, 'g/2', 'g/0', learned, 'duplicate')
  })

  it('sequence numbers outside the watermark window', () => {
    const { h, craft } = setup()
    const batch = craft.batch(START, craft.request('c1', 1))
    expectRejected(h, 'g/2', 'g/0', craft.prePrepare(0, L + 1, batch), 'outside-window')
    expectRejected(h, 'g/2', 'g/0', craft.prePrepare(0, 0, batch), 'outside-window')
  })

  it('the same pre-prepare twice is a duplicate', () => {
    const { h, pp1 } = setup()
    expectRejected(h, 'g/2', 'g/0', pp1, 'duplicate')
    expectRejected(h, 'g/2', 'g/1', pp1, 'duplicate')
  })

  it('stamps too far ahead of the clock, going backwards, or lagging the clock are refused', () => {
    const { h, craft } = setup()
    const pp = (stamp: number) => craft.prePrepare(0, 2, craft.batch(stamp, craft.request('c1', 1)))
    expectRejected(h, 'g/2', 'g/0', pp(START + SKEW + 1), 'bad-stamp', { ignoreSizes: ['verifiedRequests'] })
    expectRejected(h, 'g/2', 'g/0', pp(START - 1), 'bad-stamp', { ignoreSizes: ['verifiedRequests'] })
    h.now = START + 2 * SKEW
    h.tick()
    h.drop()
    expectRejected(h, 'g/2', 'g/0', pp(START + SKEW - 1), 'bad-stamp', { ignoreSizes: ['verifiedRequests'] })
    // On the bound it is fine.
    h.inject('g/0', 'g/2', pp(START + SKEW))
    expect(h.replica('g/2').counters.get('dropped.bad-stamp')).toBe(3)
    expect(h.sentOf('prepare', both(from('g/2'), (f) => (f.message as Prepare).seq === 2))).toHaveLength(3)
  })

  describe('an invalid batch proves the primary faulty: dropped, no prepare, and a view change', () => {
    // [name, requests, config, proof even when relayed by another replica]
    const cases: Array<[string, (c: Craft) => ReturnType<Craft['request']>[], Partial<ReplicaConfig>, boolean]> = [
      ['a request with a bad signature', (c) => [c.request('c1', 1), c.request('c2', 1, 'x', { signer: 'c3' })], {}, false],
      ['a read-only request', (c) => [c.request('c1', 1, 'get', { readOnly: true })], {}, true],
      ['a request of an unknown client', (c) => [{ ...c.request('c1', 1), client: 'zz' }], {}, true],
      ['more requests than maxBatchRequests', (c) => [c.request('c1', 1), c.request('c2', 1), c.request('c3', 1)], { maxBatchRequests: 2 }, true],
    ]
    for (const [name, requests, config, relayProves] of cases) {
      for (const sender of relayProves ? ['g/0', 'g/3'] : ['g/0']) {
        it(`${name}${sender === 'g/0' ? '' : ', relayed by a backup'}`, () => {
          const { h, craft } = setup(config)
          const pp = craft.prePrepare(0, 2, craft.batch(START, ...requests(craft)))
          const out = h.inject(sender, 'g/2', pp)
          expect(h.counter('g/2', 'dropped.bad-batch')).toBe(1)
          expect(out.filter(is('prepare'))).toHaveLength(0)
          expect(out.filter(is('view-change')).map((f) => f.to)).toEqual(['g/0', 'g/1', 'g/3'])
          expect(h.events('g/2', 'faulty-primary')).toEqual([{ kind: 'faulty-primary', view: 0, reason: 'invalid request in a batch' }])
          expect(h.replica('g/2').status()).toMatchObject({ view: 1, active: false, lastExecuted: 1 })
        })
      }
    }
  })

  it('a pre-prepare relayed with a tampered request signature is dropped without accusing the correct primary', () => {
    // Request signatures are not covered by the primary's signature (it signs request digests),
    // so a relaying backup can corrupt them: that proves nothing about the primary.
    const { h, craft } = setup()
    h.inject('c1', 'g/0', { t: 'request', request: craft.request('c1', 1) })
    const genuine = h.drop().find(both(is('pre-prepare'), to('g/2')))!.message as PrePrepare
    const [r] = genuine.batch.requests
    const tampered: PrePrepare = { ...genuine, batch: { ...genuine.batch, requests: [{ ...r!, signature: craft.request('c1', 1, 'other').signature }] } }
    expect(hex(digestOfBatch(h.scope, tampered.batch))).toBe(hex(digestOfBatch(h.scope, genuine.batch)))
    const out = h.inject('g/3', 'g/2', tampered)
    expect(h.counter('g/2', 'dropped.bad-batch')).toBe(1)
    expect(out.map((f) => f.message.t)).toEqual([])
    expect(h.replica('g/2').status()).toMatchObject({ view: 0, active: true })
    // The primary's own copy is then accepted as usual.
    const prepared = h.inject('g/0', 'g/2', genuine)
    expect(prepared.filter(is('prepare'))).toHaveLength(3)
  })

  it('two validly signed pre-prepares for one slot (equivocation) are relayed as proof and start a view change', () => {
    const { h, craft, pp1 } = setup()
    const other = craft.prePrepare(0, 1, craft.batch(START, craft.request('c1', 1)))
    const out = h.inject('g/0', 'g/2', other)
    expect(h.counter('g/2', 'dropped.equivocation')).toBe(1)
    const relayed = out.filter(is('pre-prepare')).map((f) => hex(digestOfBatch(h.scope, (f.message as PrePrepare).batch)))
    expect(relayed).toEqual([...Array(3).fill(hex(digestOfBatch(h.scope, pp1.batch))), ...Array(3).fill(hex(digestOfBatch(h.scope, other.batch)))])
    expect(h.replica('g/2').status()).toMatchObject({ view: 1, active: false, lastExecuted: 1 })
    // A second pre-prepare with a forged signature proves nothing.
    const { h: h2, craft: c2 } = setup()
    expectRejected(h2, 'g/2', 'g/0', c2.prePrepare(0, 1, c2.batch(START, c2.request('c1', 1)), 'g/3'), 'bad-signature')
  })
})

describe('prepare', () => {
  it('a prepare from the primary', () => {
    const { h, craft, d1 } = setup()
    expectRejected(h, 'g/2', 'g/0', craft.prepare(0, 2, d1, 'g/0'), 'prepare-from-primary')
  })

  it('wrong views', () => {
    const { h, craft, d1 } = setup()
    expectRejected(h, 'g/2', 'g/1', craft.prepare(1, 2, d1, 'g/1'), 'future-view')
  })

  it('outside the watermark window', () => {
    const { h, craft, d1 } = setup()
    expectRejected(h, 'g/2', 'g/1', craft.prepare(0, L + 1, d1, 'g/1'), 'outside-window')
    expectRejected(h, 'g/2', 'g/1', craft.prepare(0, 0, d1, 'g/1'), 'outside-window')
  })

  it('a second vote from the same replica for one slot is a duplicate', () => {
    const { h, craft, d1 } = setup()
    const own = h.sentOf('prepare', both(from('g/1'), to('g/2')))[0]!.message
    expectRejected(h, 'g/2', 'g/1', own, 'duplicate')
    // Another digest from the same replica for the same slot does not replace its vote.
    expectRejected(h, 'g/2', 'g/1', craft.prepare(0, 1, sha256(d1), 'g/1'), 'duplicate')
  })

  it('a signature that is not the sender’s is bad, for a fresh slot and for one with a pre-prepare', () => {
    const { h, craft } = setup()
    const pp2 = craft.prePrepare(0, 2, craft.batch(START, craft.request('c1', 1)))
    const d2 = digestOfBatch(h.scope, pp2.batch)
    expectRejected(h, 'g/2', 'g/3', craft.prepare(0, 2, d2, 'g/1'), 'bad-signature')
    h.inject('g/0', 'g/2', pp2)
    h.drop()
    expectRejected(h, 'g/2', 'g/3', craft.prepare(0, 2, d2, 'g/1'), 'bad-signature')
    expectRejected(h, 'g/2', 'g/3', { ...craft.prepare(0, 2, d2, 'g/3'), digest: sha256(d2) }, 'bad-signature')
  })
})

describe('commit', () => {
  it('wrong views, outside the window, duplicates', () => {
    const { h, d1 } = setup()
    const commit = (view: number, seq: number): Commit => ({ t: 'commit', view, seq, digest: d1 })
    expectRejected(h, 'g/2', 'g/1', commit(1, 2), 'future-view')
    expectRejected(h, 'g/2', 'g/1', commit(0, L + 1), 'outside-window')
    expectRejected(h, 'g/2', 'g/1', commit(0, 0), 'outside-window')
    expectRejected(h, 'g/2', 'g/1', commit(0, 1), 'duplicate')
    expectRejected(h, 'g/2', 'g/0', commit(0, 1), 'duplicate')
  })
})

describe('checkpoint', () => {
  it('not a multiple of K, at or below the stable checkpoint, or too far ahead', () => {
    const { h, craft } = setup()
    const d = new Uint8Array(32).fill(7)
    expectRejected(h, 'g/2', 'g/1', craft.checkpoint(K - 1, d, 'g/1'), 'bad-checkpoint')
    expectRejected(h, 'g/2', 'g/1', craft.checkpoint(K + 1, d, 'g/1'), 'bad-checkpoint')
    expectRejected(h, 'g/2', 'g/1', craft.checkpoint(0, d, 'g/1'), 'old-checkpoint')
    expectRejected(h, 'g/2', 'g/1', craft.checkpoint(2 * L + K, d, 'g/1'), 'far-checkpoint')
    // The farthest one accepted is stable + 2L.
    h.inject('g/1', 'g/2', craft.checkpoint(2 * L, d, 'g/1'))
    expect(h.replica('g/2').sizes().checkpointVotes).toBe(1)
  })

  it('a bad signature, and a second vote from the same replica', () => {
    const { h, craft } = setup()
    const d = new Uint8Array(32).fill(7)
    expectRejected(h, 'g/2', 'g/1', craft.checkpoint(K, d, 'g/3'), 'bad-signature')
    h.inject('g/1', 'g/2', craft.checkpoint(K, d, 'g/1'))
    expectRejected(h, 'g/2', 'g/1', craft.checkpoint(K, d, 'g/1'), 'duplicate')
    expectRejected(h, 'g/2', 'g/1', craft.checkpoint(K, sha256(d), 'g/1'), 'duplicate')
  })

  it('a STABLE proof below the quorum or with forged shares', () => {
    const { h, craft } = setup()
    const d = new Uint8Array(32).fill(7)
    expectRejected(h, 'g/2', 'g/1', { t: 'stable', proof: craft.checkpointProof(K, d, [0, 1]) }, 'bad-checkpoint-proof')
    const forged = craft.checkpointProof(K, d, [0, 1, 3])
    const shares = forged.certificate!.shares.map((s, i) => ({ ...s, signer: i === 2 ? 2 : s.signer }))
    expectRejected(h, 'g/2', 'g/1', { t: 'stable', proof: { ...forged, certificate: { ...forged.certificate!, shares } } }, 'bad-checkpoint-proof')
    expectRejected(h, 'g/2', 'g/1', { t: 'stable', proof: { seq: K, digest: d } }, 'bad-checkpoint-proof')
    const otherDigest = craft.checkpointProof(K, d, [0, 1, 2])
    expectRejected(h, 'g/2', 'g/1', { t: 'stable', proof: { ...otherDigest, digest: sha256(d) } }, 'bad-checkpoint-proof')
  })
})

describe('view-change', () => {
  it('for the current view while active, or an older one', () => {
    const { h, craft } = setup()
    expectRejected(h, 'g/2', 'g/1', craft.viewChange(0, 'g/1'), 'old-view')
  })

  describe('bad signatures, bad checkpoint proofs, bad prepared certificates', () => {
    type Setup = ReturnType<typeof setup> & { other: PrePrepare }
    const cases: Array<[string, (s: Setup) => ViewChange]> = [
      ['signed by another replica', ({ craft }) => craft.viewChange(1, 'g/3')],
      ['a checkpoint proof below the quorum', ({ craft }) => craft.viewChange(1, 'g/1', { stable: craft.checkpointProof(K, new Uint8Array(32), [0, 1]) })],
      ['a genesis checkpoint with another digest', ({ h, craft }) => craft.viewChange(1, 'g/1', { stable: { seq: 0, digest: sha256(h.genesisDigest) } })],
      ['a certificate with a prepare from the primary', ({ craft, other }) => craft.viewChange(1, 'g/1', { prepared: [craft.preparedProof(other, [0, 1])] })],
      ['a certificate with too few prepares', ({ craft, other }) => craft.viewChange(1, 'g/1', { prepared: [craft.preparedProof(other, [1])] })],
      ['a certificate whose pre-prepare is forged', ({ craft, other }) => craft.viewChange(1, 'g/1', { prepared: [craft.preparedProof(craft.prePrepare(0, 2, other.batch, 'g/1'), [1, 2])] })],
      ['a certificate from the new view itself', ({ craft, other }) => craft.viewChange(1, 'g/1', { prepared: [craft.preparedProof(craft.prePrepare(1, 2, other.batch), [2, 3])] })],
      ['a certificate outside the window', ({ craft, other }) => craft.viewChange(1, 'g/1', { prepared: [craft.preparedProof(craft.prePrepare(0, L + 1, other.batch), [1, 2])] })],
      ['two certificates for one slot', ({ craft, other }) => craft.viewChange(1, 'g/1', { prepared: [craft.preparedProof(other, [1, 2]), craft.preparedProof(other, [2, 3])] })],
      // The receiver prepared seq 1 itself: a claim about that slot still needs a valid certificate,
      // or a correct new primary would put it in a NEW-VIEW that correct backups refuse.
      ['a certificate with a prepare from the primary, for a slot the receiver prepared', ({ craft, pp1 }) => craft.viewChange(1, 'g/1', { prepared: [craft.preparedProof(pp1, [0, 1])] })],
      ['a certificate with too few prepares, for a slot the receiver prepared', ({ craft, pp1 }) => craft.viewChange(1, 'g/1', { prepared: [craft.preparedProof(pp1, [1])] })],
      [
        'a certificate with forged prepares, for a slot the receiver prepared',
        ({ craft, pp1, other }) =>
          craft.viewChange(1, 'g/1', { prepared: [{ prePrepare: pp1, prepares: { ...craft.preparedProof(pp1, [1, 3]).prepares, shares: craft.preparedProof(other, [1, 3]).prepares.shares } }] }),
      ],
    ]
    const withOther = (): Setup => {
      const s = setup()
      return { ...s, other: s.craft.prePrepare(0, 2, s.craft.batch(START, s.craft.request('c1', 1))) }
    }
    for (const [name, make] of cases) {
      it(name, () => {
        const s = withOther()
        expectRejected(s.h, 'g/2', 'g/1', make(s), 'bad-view-change')
      })
    }
    it('while view changes with valid certificates are accepted', () => {
      const { h, craft, pp1, other } = withOther()
      h.inject('g/1', 'g/2', craft.viewChange(1, 'g/1', { prepared: [craft.preparedProof(pp1, [1, 3]), craft.preparedProof(other, [1, 3])] }))
      h.inject('g/3', 'g/2', craft.viewChange(1, 'g/3', { stable: craft.checkpointProof(K, new Uint8Array(32).fill(1), [0, 1, 3]) }))
      expect(h.counter('g/2', 'dropped.bad-view-change')).toBe(0)
      expect(h.replica('g/2').sizes().viewChanges).toBe(3) // both, and its own (f+1 moved it to view 1)
    })
  })

  it('a second view change from the same replica for the same view is a duplicate', () => {
    const { h, craft } = setup()
    h.inject('g/1', 'g/2', craft.viewChange(1, 'g/1'))
    expectRejected(h, 'g/2', 'g/1', craft.viewChange(1, 'g/1'), 'duplicate')
  })
})

describe('new-view', () => {
  /** g/2 joins view 1 on view changes of g/1 and g/3 and waits for the NEW-VIEW. */
  function waiting() {
    const s = setup()
    const { h, craft, pp1 } = s
    const vc1 = craft.viewChange(1, 'g/1')
    const vc3 = craft.viewChange(1, 'g/3')
    h.inject('g/1', 'g/2', vc1)
    const out = h.inject('g/3', 'g/2', vc3)
    h.drop()
    const vc2 = out.find(is('view-change'))!.message as ViewChange
    expect(vc2.prepared.map((p) => p.prePrepare.seq)).toEqual([1])
    const reissued = craft.prePrepare(1, 1, pp1.batch)
    const vcs: Array<readonly [number, ViewChange]> = [
      [1, vc1],
      [2, vc2],
      [3, vc3],
    ]
    return { ...s, vc1, vc2, vc3, vcs, reissued }
  }

  it('a NEW-VIEW for an old view', () => {
    const { h, craft, vcs, reissued } = waiting()
    expectRejected(h, 'g/2', 'g/1', craft.newView(0, vcs, [reissued]), 'old-view')
  })

  it('bad view changes: missing, for another view, repeated senders, a forged one', () => {
    const { h, craft, vcs, vc1, vc3, reissued } = waiting()
    const cases: Array<[string, NewView]> = [
      ['only 2f view changes', craft.newView(1, vcs.slice(0, 2), [reissued])],
      ['no view changes', craft.newView(1, [], [])],
      ['a view change for another view', craft.newView(1, [...vcs.slice(0, 2), [3, craft.viewChange(2, 'g/3')]], [reissued])],
      ['one sender twice', craft.newView(1, [vcs[0]!, vcs[1]!, [1, vc1]], [reissued])],
      ['a view change attributed to the wrong replica', craft.newView(1, [vcs[0]!, vcs[1]!, [0, vc3]], [reissued])],
      ['a view change with a bad signature', craft.newView(1, [vcs[0]!, vcs[1]!, [3, { ...vc3, signature: vc1.signature }]], [reissued])],
    ]
    for (const [name, nv] of cases) expectRejected(h, 'g/2', 'g/1', nv, 'bad-new-view', { label: name })
  })

  it('wrong pre-prepares: missing, extra, another batch, another view, not signed by the new primary', () => {
    const { h, craft, vcs, reissued, pp1 } = waiting()
    const cases: Array<[string, readonly PrePrepare[]]> = [
      ['the prepared batch is not re-issued', []],
      ['an extra null batch', [reissued, craft.prePrepare(1, 2, craft.batch(0))]],
      ['a null batch instead of the prepared one', [craft.prePrepare(1, 1, craft.batch(0))]],
      ['another batch at the prepared slot', [craft.prePrepare(1, 1, craft.batch(START, craft.request('c1', 1)))]],
      ['the old view’s pre-prepare', [pp1]],
      ['signed by the old primary', [craft.prePrepare(1, 1, pp1.batch, 'g/0')]],
      ['at another sequence number', [craft.prePrepare(1, 2, pp1.batch)]],
    ]
    for (const [name, pps] of cases) expectRejected(h, 'g/2', 'g/1', craft.newView(1, vcs, pps), 'bad-new-view', { label: name })
    // The right one is accepted (from whoever relays it).
    h.inject('g/3', 'g/2', craft.newView(1, vcs, [reissued]))
    expect(h.replica('g/2').status()).toMatchObject({ view: 1, active: true, primary: 1 })
  })
})

describe('fetch-state', () => {
  it('for a checkpoint that is not the stable one, or past its last chunk', () => {
    const { h } = setup()
    expectRejected(h, 'g/0', 'g/3', { t: 'fetch-state', seq: K, digest: h.genesisDigest, chunk: 0 }, 'fetch-unknown-checkpoint')
    expectRejected(h, 'g/0', 'g/3', { t: 'fetch-state', seq: 0, digest: sha256(h.genesisDigest), chunk: 0 }, 'fetch-unknown-checkpoint')
    expectRejected(h, 'g/0', 'g/3', { t: 'fetch-state', seq: 0, digest: h.genesisDigest, chunk: 1 }, 'fetch-bad-chunk')
    const out = h.inject('g/3', 'g/0', { t: 'fetch-state', seq: 0, digest: h.genesisDigest, chunk: 0 })
    expect(out.map((f) => f.message.t)).toEqual(['state-chunk'])
  })
})

describe('state-chunk', () => {
  /** g/3 missed three checkpoints and has started fetching the stable one. */
  function fetching() {
    const h = new Harness({ config: { checkpointInterval: K, logWindow: L } })
    const craft = new Craft(h)
    h.isolate('g/3')
    for (let i = 0; i < 3 * K; i++) h.commit('c0', `op-${i}`)
    h.heal()
    const proof = craft.checkpointProof(3 * K, h.replica('g/0').stateDigest(), [0, 1, 2])
    h.inject('g/0', 'g/3', { t: 'stable', proof })
    h.tick(h.replica('g/3').config.statusInterval)
    const fetch = h.queue.find(both(is('fetch-state'), from('g/3')))!
    h.drop()
    return { h, proof, source: fetch.to }
  }

  it('a chunk nobody asked for', () => {
    const { h } = setup()
    expectRejected(h, 'g/1', 'g/0', { t: 'state-chunk', seq: 0, digest: h.genesisDigest, chunk: 0, length: 8, proof: [], data: new Uint8Array(8) }, 'unrequested-chunk')
  })

  it('chunks from a replica that is not the source, of another checkpoint, or not requested', () => {
    const { h, proof, source } = fetching()
    expect(source).toBe('g/0')
    const state = new Uint8Array(8)
    const chunk = { t: 'state-chunk' as const, seq: proof.seq, digest: proof.digest, chunk: 0, length: 2 * STATE_CHUNK_BYTES, proof: [], data: state }
    expectRejected(h, 'g/3', 'g/1', chunk, 'chunk-not-source')
    expectRejected(h, 'g/3', source, { ...chunk, seq: K }, 'chunk-other-checkpoint')
    expectRejected(h, 'g/3', source, { ...chunk, digest: sha256(proof.digest) }, 'chunk-other-checkpoint')
    expectRejected(h, 'g/3', source, { ...chunk, chunk: 1 }, 'chunk-unrequested')
  })

  it('a chunk that lies is detected, reported, and the next replica is asked', () => {
    const { h, proof, source } = fetching()
    const data = op('not the state')
    const lie = { t: 'state-chunk' as const, seq: proof.seq, digest: proof.digest, chunk: 0, length: data.length, proof: [], data }
    const out = h.inject(source, 'g/3', lie)
    expect(h.counter('g/3', 'dropped.lying-state')).toBe(1)
    expect(h.events('g/3', 'lying-state')).toEqual([{ kind: 'lying-state', source: 0, seq: proof.seq }])
    expect(out.filter(is('fetch-state')).map((f) => f.to)).toEqual(['g/1'])
    expect(h.replica('g/3').status().lastExecuted).toBe(0)
    // A chunk past the end of the length it claims is a lie too (whether asked for or not).
    h.inject('g/1', 'g/3', { ...lie, chunk: 1 })
    expect(h.counter('g/3', 'dropped.lying-state')).toBe(2)
    expect(h.events('g/3', 'lying-state').map((e) => (e as { source: number }).source)).toEqual([0, 1])
  })
})

describe('client', () => {
  function clientSetup() {
    const h = new Harness()
    const ts = h.invoke('c0', 'put x 1')
    h.drop()
    const result = op('result')
    const reply = { t: 'reply' as const, view: 0, timestamp: ts, readOnly: false, resultDigest: sha256(result), result }
    return { h, ts, reply }
  }

  function expectClientDrops(h: Harness, sender: string, message: Message | Uint8Array, reason: string): void {
    const client = h.client('c0')
    const counters = new Map(client.counters)
    const out = h.inject(sender, 'c0', message)
    expect(counterDiff(counters, client.counters)).toEqual({ [`dropped.${reason}`]: 1 })
    expect(out).toEqual([])
    expect(client.busy).toBe(true)
    expect(h.completed('c0')).toEqual([])
  }

  it('drops malformed frames, other types, replies from non-replicas, stale replies and results that do not match their digest', () => {
    const { h, reply, ts } = clientSetup()
    expectClientDrops(h, 'g/1', Uint8Array.of(1, 2, 3), 'malformed')
    expectClientDrops(h, 'g/1', { t: 'commit', view: 0, seq: 1, digest: new Uint8Array(32) }, 'unexpected-type')
    expectClientDrops(h, 'c1', reply, 'not-a-replica')
    expectClientDrops(h, 'x/1', reply, 'not-a-replica')
    expectClientDrops(h, 'g/1', { ...reply, timestamp: ts + 1 }, 'stale-reply')
    expectClientDrops(h, 'g/1', { ...reply, readOnly: true }, 'stale-reply')
    expectClientDrops(h, 'g/1', { ...reply, resultDigest: new Uint8Array(32) }, 'bad-result-digest')
  })

  it('replies from a replica of another group do not count', () => {
    const h = new Harness({ otherGroups: [{ name: 'h', f: 1 }] })
    const ts = h.invoke('c0', 'put x 1')
    h.drop()
    const result = op('result')
    const reply = { t: 'reply' as const, view: 0, timestamp: ts, readOnly: false, resultDigest: sha256(result), result }
    expectClientDrops(h, 'h/1', reply, 'not-a-replica')
    h.inject('h/2', 'c0', reply)
    h.inject('g/1', 'c0', reply)
    expect(h.completed('c0')).toEqual([])
  })
})
