/**
 * Bounded fuzzing of the decoder and of Replica.step: arbitrary bytes, arbitrary canonical values
 * shaped like messages, and mutations (bit flips, truncations, splices, insertions) of valid
 * frames captured from a scenario that uses every message type.
 */
import { DecodeError, type Value, encode } from '@bftrc/crypto'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { DEFAULT_LIMITS, MAX_PROOF_HASHES, MAX_STATE_BYTES, MAX_STATE_CHUNKS, type Message, type MessageType, type PrePrepare, decodeMessage, encodeMessage } from '../src/index.js'
import { EVENTS, type Frame, Harness, hex } from './harness.js'

const TYPES: readonly MessageType[] = ['request', 'proposal', 'pre-prepare', 'prepare', 'commit', 'checkpoint', 'reply', 'status', 'view-change', 'new-view', 'stable', 'fetch-state', 'state-chunk']

/** Runs a scenario that sends every message type; returns the harness (quiet, in view 1) and its frames. */
function corpusScenario(): { h: Harness; frames: Frame[] } {
  const h = new Harness({ config: { checkpointInterval: 4, logWindow: 8 }, proposals: EVENTS })
  h.isolate('g/3')
  h.propose('g/1', 'event:corpus')
  for (let i = 0; i < 9; i++) h.commit(`c${i % 4}`, `op-${i}`)
  h.heal()
  h.runUntil(() => h.replica('g/3').status().lastExecuted === h.replica('g/0').status().lastExecuted)
  h.invoke('c1', 'read', { readOnly: true })
  h.deliverAll()
  h.isolate('g/0')
  h.invoke('c2', 'after the primary died')
  h.runUntil(() => h.completed('c2').length === 3)
  h.heal()
  h.run(3_000)
  return { h, frames: h.sent }
}

/** Picks up to `perType` frames of each type, spread over the run. */
function sample(frames: readonly Frame[], perType: number): Frame[] {
  const out: Frame[] = []
  for (const t of TYPES) {
    const of = frames.filter((f) => f.message.t === t)
    const step = Math.max(1, Math.floor(of.length / perType))
    for (let i = 0; i < of.length && out.filter((f) => f.message.t === t).length < perType; i += step) out.push(of[i] as Frame)
  }
  return out
}

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'splice'; other: number; at: number; otherAt: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'overwrite'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number }

const position = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true })
const interesting = fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 9 }), fc.constantFrom(Uint8Array.of(0x80), Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x7f), Uint8Array.of(0), Uint8Array.of(7, 0xff, 0xff, 0x03)))

const mutation: fc.Arbitrary<Mutation[]> = fc.array(
  fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: position, bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at: position }),
    fc.record({ kind: fc.constant('splice' as const), other: fc.nat(), at: position, otherAt: position }),
    fc.record({ kind: fc.constant('insert' as const), at: position, bytes: interesting }),
    fc.record({ kind: fc.constant('overwrite' as const), at: position, bytes: interesting }),
    fc.record({ kind: fc.constant('delete' as const), at: position, length: fc.integer({ min: 1, max: 40 }) }),
  ),
  { minLength: 1, maxLength: 3 },
)

function mutate(bytes: Uint8Array, ms: readonly Mutation[], corpus: readonly Uint8Array[]): Uint8Array {
  let b = bytes
  for (const m of ms) {
    const at = Math.floor(m.at * (b.length + 1))
    switch (m.kind) {
      case 'flip': {
        if (b.length === 0) break
        const c = Uint8Array.from(b)
        const i = Math.min(at, c.length - 1)
        c[i] = (c[i] as number) ^ (1 << m.bit)
        b = c
        break
      }
      case 'truncate':
        b = b.subarray(0, at)
        break
      case 'splice': {
        const other = corpus[m.other % corpus.length] as Uint8Array
        b = Uint8Array.from([...b.subarray(0, at), ...other.subarray(Math.floor(m.otherAt * other.length))])
        break
      }
      case 'insert':
        b = Uint8Array.from([...b.subarray(0, at), ...m.bytes, ...b.subarray(at)])
        break
      case 'overwrite': {
        const c = Uint8Array.from(b)
        c.set(m.bytes.subarray(0, Math.max(0, c.length - at)), Math.min(at, c.length))
        b = c
        break
      }
      case 'delete':
        b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + m.length)])
        break
    }
  }
  return b
}

/** decodeMessage either returns a message that survives a re-encoding, or throws DecodeError. */
function decodesCleanly(bytes: Uint8Array): 'ok' | 'rejected' {
  let m: Message
  try {
    m = decodeMessage(bytes, DEFAULT_LIMITS)
  } catch (err) {
    if (err instanceof DecodeError) return 'rejected'
    throw err
  }
  expect(TYPES).toContain(m.t)
  expect(decodeMessage(encodeMessage(m), DEFAULT_LIMITS)).toEqual(m)
  return 'ok'
}

/** Canonical values shaped like messages: the canonical layer accepts them, the schema layer must judge. */
const fieldNames = ['t', 'view', 'seq', 'digest', 'signature', 'request', 'client', 'timestamp', 'op', 'readOnly', 'publicKey', 'stamp', 'requests', 'stable', 'prepared', 'prePrepare', 'prepares', 'group', 'shares', 'certificate', 'viewChanges', 'replica', 'viewChange', 'prePrepares', 'proof', 'chunk', 'length', 'data', 'active', 'lastExecuted', 'resultDigest', 'result']
const shapedValue: fc.Arbitrary<Value> = fc.letrec<{ value: Value }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.oneof(fc.nat(5), fc.maxSafeNat(), fc.integer({ min: -3, max: -1 })),
    fc.constantFrom(...TYPES, 'g', 'c0', ''),
    fc.oneof(fc.uint8Array({ maxLength: 4 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 64, maxLength: 64 })),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.constantFrom(...fieldNames), tie('value'), { maxKeys: 7 }),
  ),
})).value
/** Mostly the right type for a field, sometimes anything at all. */
const field = <T extends Value>(right: fc.Arbitrary<T>): fc.Arbitrary<Value> => fc.oneof({ arbitrary: right, weight: 12 }, { arbitrary: shapedValue, weight: 1 })
const num = field(fc.oneof(fc.nat(10), fc.maxSafeNat()))
const bytes = (n?: number) => field(n === undefined ? fc.uint8Array({ maxLength: 8 }) : fc.uint8Array({ minLength: n, maxLength: n }))
const bool = field(fc.boolean())
const str = field(fc.constantFrom('g', 'c0', 'x'))
type Shape = Record<string, fc.Arbitrary<Value>>
const map = (shape: Shape): fc.Arbitrary<Value> =>
  fc.tuple(fc.record(shape), fc.option(fc.constantFrom(...Object.keys(shape)), { freq: 6 })).map(([m, drop]) => {
    const out = { ...m } as Record<string, Value>
    if (drop !== null) delete out[drop]
    return out
  })
const requestShape = { client: str, timestamp: num, op: bytes(), readOnly: bool, signature: bytes(64) }
const certificateShape = { group: str, digest: bytes(32), shares: field(fc.array(fc.tuple(fc.nat(5), fc.uint8Array({ minLength: 64, maxLength: 64 })), { maxLength: 3 })) }
const prePrepareShape = {
  t: fc.constant('pre-prepare'),
  view: num,
  seq: num,
  stamp: num,
  requests: field(fc.array(map(requestShape), { maxLength: 3 })),
  proposals: fc.option(field(fc.array(fc.uint8Array({ maxLength: 8 }), { maxLength: 2 })), { nil: undefined }) as fc.Arbitrary<Value>,
  signature: bytes(64),
}
const proofShape = { seq: num, digest: bytes(32), certificate: fc.option(map(certificateShape), { nil: undefined }) as fc.Arbitrary<Value> }
const viewChangeShape = {
  t: fc.constant('view-change'),
  view: num,
  stable: map(proofShape),
  prepared: field(fc.array(map({ prePrepare: map(prePrepareShape), prepares: map(certificateShape) }), { maxLength: 2 })),
  signature: bytes(64),
}
const shapes: Record<MessageType, Shape> = {
  request: { t: fc.constant('request'), request: map(requestShape) },
  proposal: { t: fc.constant('proposal'), payload: bytes() },
  'pre-prepare': prePrepareShape,
  prepare: { t: fc.constant('prepare'), view: num, seq: num, digest: bytes(32), signature: bytes(64) },
  commit: { t: fc.constant('commit'), view: num, seq: num, digest: bytes(32) },
  checkpoint: { t: fc.constant('checkpoint'), seq: num, digest: bytes(32), signature: bytes(64) },
  reply: { t: fc.constant('reply'), view: num, timestamp: num, readOnly: bool, resultDigest: bytes(32), result: bytes() },
  status: { t: fc.constant('status'), view: num, active: bool, lastExecuted: num, stable: num },
  'view-change': viewChangeShape,
  'new-view': { t: fc.constant('new-view'), view: num, viewChanges: field(fc.array(map({ replica: num, viewChange: map(viewChangeShape) }), { maxLength: 2 })), prePrepares: field(fc.array(map(prePrepareShape), { maxLength: 2 })) },
  stable: { t: fc.constant('stable'), proof: map(proofShape) },
  executed: { t: fc.constant('executed'), seq: num, digest: bytes(32), signature: bytes(64) },
  'fetch-state': { t: fc.constant('fetch-state'), seq: num, digest: bytes(32), chunk: num },
  'state-chunk': {
    t: fc.constant('state-chunk'),
    seq: num,
    digest: bytes(32),
    chunk: num,
    length: num,
    proof: field(fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { maxLength: 3 })),
    data: bytes(),
  },
}
const shapedMessage = fc.oneof(...TYPES.map((t) => map(shapes[t]))).map((v) => encode(v))

describe('decodeMessage', () => {
  let corpus: Uint8Array[] = []
  beforeAll(() => {
    corpus = sample(corpusScenario().frames, 8).map((f) => f.bytes)
  })

  it('the corpus holds every message type, and each decodes', () => {
    const types = new Set(corpus.map((b) => decodeMessage(b, DEFAULT_LIMITS).t))
    expect([...types].sort()).toEqual([...TYPES].sort())
  })

  it('arbitrary bytes: a message or a DecodeError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        decodesCleanly(bytes)
      }),
      { numRuns: 3_000, seed: 1 },
    )
  })

  it('canonical values shaped like messages: a message or a DecodeError', () => {
    const outcomes = { ok: 0, rejected: 0 }
    fc.assert(
      fc.property(shapedMessage, (bytes) => {
        outcomes[decodesCleanly(bytes)]++
      }),
      { numRuns: 3_000, seed: 2 },
    )
    // Both sides are well represented: the schema layer is what judges these.
    expect(outcomes.ok).toBeGreaterThan(100)
    expect(outcomes.rejected).toBeGreaterThan(300)
  })

  it('mutated valid frames (bit flips, truncations, splices, insertions): a message or a DecodeError', () => {
    const outcomes = { ok: 0, rejected: 0 }
    fc.assert(
      fc.property(fc.nat(), mutation, (i, ms) => {
        outcomes[decodesCleanly(mutate(corpus[i % corpus.length] as Uint8Array, ms, corpus))]++
      }),
      { numRuns: 6_000, seed: 3 },
    )
    expect(outcomes.rejected).toBeGreaterThan(outcomes.ok)
    expect(outcomes.ok).toBeGreaterThan(0)
  })

  it('enforces every limit', () => {
    const sig = new Uint8Array(64)
    const d = new Uint8Array(32)
    const request = (client: string, op: Uint8Array) => ({ client, timestamp: 1, op, readOnly: false, signature: sig })
    const pp = (n: number): Message => ({ t: 'pre-prepare', view: 0, seq: 1, batch: { stamp: 0, requests: Array.from({ length: n }, () => request('c0', new Uint8Array(1))) }, signature: sig })
    const vc = (n: number): Message => ({
      t: 'view-change',
      view: 1,
      stable: { seq: 0, digest: d },
      prepared: Array.from({ length: n }, (_, i) => ({ prePrepare: { ...(pp(0) as PrePrepare), seq: i + 1 }, prepares: { group: 'g', digest: d, shares: [] } })),
      signature: sig,
    })
    const limits = { ...DEFAULT_LIMITS, maxOpBytes: 8, maxBatchRequests: 3, maxClientIdLength: 5, maxViewChangeEntries: 2, maxChunkBytes: 16, maxMessageBytes: 4096 }
    const cases: Array<[string, Message, Message]> = [
      ['op size', { t: 'request', request: request('c0', new Uint8Array(8)) }, { t: 'request', request: request('c0', new Uint8Array(9)) }],
      ['client id', { t: 'request', request: request('c0123', new Uint8Array(1)) }, { t: 'request', request: request('c01234', new Uint8Array(1)) }],
      ['batch size', pp(3), pp(4)],
      ['view-change entries', vc(2), vc(3)],
      ['chunk size', { t: 'state-chunk', seq: 4, digest: d, chunk: 0, length: 16, proof: [], data: new Uint8Array(16) }, { t: 'state-chunk', seq: 4, digest: d, chunk: 0, length: 17, proof: [], data: new Uint8Array(17) }],
      ['result size', { t: 'reply', view: 0, timestamp: 1, readOnly: false, resultDigest: d, result: new Uint8Array(8) }, { t: 'reply', view: 0, timestamp: 1, readOnly: false, resultDigest: d, result: new Uint8Array(9) }],
      ['message size', { t: 'state-chunk', seq: 4, digest: d, chunk: 0, length: 16, proof: [], data: new Uint8Array(16) }, { t: 'request', request: request('c0', new Uint8Array(1)) }],
    ]
    for (const [name, fits, exceeds] of cases) {
      expect(() => decodeMessage(encodeMessage(fits), limits), name).not.toThrow()
      const tooBig = name === 'message size' ? { ...limits, maxMessageBytes: encodeMessage(exceeds).length - 1 } : limits
      expect(() => decodeMessage(encodeMessage(exceeds), tooBig), name).toThrow(DecodeError)
    }
  })

  it('bounds a state chunk: proof hashes of 32 bytes, at most the deepest tree, a length up to MAX_STATE_BYTES, an index below MAX_STATE_CHUNKS', () => {
    const d = new Uint8Array(32)
    const chunk = { t: 'state-chunk' as const, seq: 4, digest: d, chunk: 0, length: 16, proof: [] as Uint8Array[], data: new Uint8Array(16) }
    const cases: Array<[string, Message, Message]> = [
      ['proof length', { ...chunk, proof: Array.from({ length: MAX_PROOF_HASHES }, () => d) }, { ...chunk, proof: Array.from({ length: MAX_PROOF_HASHES + 1 }, () => d) }],
      ['proof hash size', { ...chunk, proof: [d] }, { ...chunk, proof: [new Uint8Array(31)] }],
      ['proof hash size (long)', { ...chunk, proof: [d] }, { ...chunk, proof: [new Uint8Array(33)] }],
      ['state length', { ...chunk, length: MAX_STATE_BYTES }, { ...chunk, length: MAX_STATE_BYTES + 1 }],
      ['chunk index', { ...chunk, chunk: MAX_STATE_CHUNKS - 1 }, { ...chunk, chunk: MAX_STATE_CHUNKS }],
      ['fetched chunk index', { t: 'fetch-state', seq: 4, digest: d, chunk: MAX_STATE_CHUNKS - 1 }, { t: 'fetch-state', seq: 4, digest: d, chunk: MAX_STATE_CHUNKS }],
    ]
    expect(MAX_PROOF_HASHES).toBe(12)
    for (const [name, fits, exceeds] of cases) {
      expect(decodeMessage(encodeMessage(fits), DEFAULT_LIMITS), name).toEqual(fits)
      expect(() => decodeMessage(encodeMessage(exceeds), DEFAULT_LIMITS), name).toThrow(DecodeError)
    }
    const { proof: _, ...withoutProof } = chunk
    expect(() => decodeMessage(encode(withoutProof), DEFAULT_LIMITS)).toThrow(DecodeError)
  })
})

describe('Replica.step on mutated frames', () => {
  it('never throws, never executes or changes state, and counts every frame as received or dropped', () => {
    const { h, frames } = corpusScenario()
    const picked = sample(frames, 40)
    const corpusBytes = picked.map((f) => f.bytes)
    const target = 'g/2'
    const lastExecuted = h.replica(target).status().lastExecuted
    const digest = hex(h.replica(target).stateDigest())
    const senders = ['g/0', 'g/1', 'g/3', 'c0', 'c3', 'x/0', 'h/1', target]
    const total = { frames: 0, counted: 0, dropped: 0 }
    const tally = (counters: ReadonlyMap<string, number>) => {
      let counted = 0
      let dropped = 0
      for (const [k, v] of counters) {
        if (k.startsWith('received.') || k === 'dropped.malformed') counted += v
        if (k.startsWith('dropped.')) dropped += v
      }
      return { counted, dropped }
    }
    let before = tally(h.replica(target).counters)
    fc.assert(
      fc.property(fc.nat(), fc.nat(), fc.boolean(), mutation, (i, s, original, ms) => {
        const frame = picked[i % picked.length] as Frame
        const bytes = mutate(frame.bytes, ms, corpusBytes)
        const from = original ? frame.from : (senders[s % senders.length] as string)
        const replica = h.replica(target)
        replica.step(from, bytes)
        replica.ready() // effects are discarded: nothing reaches the others
        total.frames++
        if (total.frames % 64 === 0) replica.tick(h.now + total.frames)
        expect(replica.status().lastExecuted).toBe(lastExecuted)
        // Every ~2500 frames: a fresh start from storage, so a replica knocked into a view change is fuzzed afresh.
        if (total.frames % 2_500 === 0) {
          expect(hex(replica.stateDigest())).toBe(digest)
          const t = tally(replica.counters)
          total.counted += t.counted - before.counted
          total.dropped += t.dropped - before.dropped
          h.crash(target)
          h.restart(target)
          h.replica(target).ready()
          before = tally(h.replica(target).counters)
        }
      }),
      { numRuns: 20_000, seed: 4 },
    )
    const t = tally(h.replica(target).counters)
    total.counted += t.counted - before.counted
    total.dropped += t.dropped - before.dropped
    expect(hex(h.replica(target).stateDigest())).toBe(digest)
    expect(h.replica(target).status().lastExecuted).toBe(lastExecuted)
    expect(total.frames).toBe(20_000)
    // Ticks add no frames: every stepped frame was counted exactly once as received or malformed.
    expect(total.counted).toBe(total.frames)
    expect(total.dropped).toBeGreaterThan(total.frames * 0.8)
  })
})
