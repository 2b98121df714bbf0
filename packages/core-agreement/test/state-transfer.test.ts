import { describe, expect, it } from 'vitest'
import { STATE_CHUNK_BYTES, StateTree, chunkCount } from '../src/index.js'
import type { CheckpointProof, StateChunk } from '../src/messages.js'
import { CHUNKS_IN_FLIGHT, StateFetch, StateServer } from '../src/state-transfer.js'
import { Harness, both, from, hex, is, op } from './harness.js'

const K = 4
const L = 8

/** g/3 is cut off while the others order `batches` requests (passing several checkpoints); then the network heals. */
function leftBehind(batches: number, padding = 0): Harness {
  const h = new Harness({ config: { checkpointInterval: K, logWindow: L }, padding })
  h.isolate('g/3')
  for (let i = 0; i < batches; i++) h.commit(`c${i % 4}`, `op-${i}`)
  h.heal()
  return h
}

const caughtUp = (h: Harness) => () => h.replica('g/3').status().lastExecuted === h.replica('g/0').status().lastExecuted && h.converged()

describe('state transfer', () => {
  it('a replica that missed several checkpoints fetches the stable state, checks it, and converges', () => {
    const h = leftBehind(3 * K + 2)
    expect(h.replica('g/0').status()).toMatchObject({ lastExecuted: 3 * K + 2, stableCheckpoint: 3 * K })
    expect(h.replica('g/3').status()).toMatchObject({ lastExecuted: 0, stableCheckpoint: 0 })

    h.runUntil(caughtUp(h))
    expect(h.events('g/3', 'state-transfer-started')).toEqual([{ kind: 'state-transfer-started', seq: 3 * K, source: 0 }])
    expect(h.events('g/3', 'state-transferred')).toEqual([{ kind: 'state-transferred', seq: 3 * K }])
    expect(h.replica('g/3').status()).toMatchObject({ stableCheckpoint: 3 * K, transferring: false })
    // It executed only the two batches above the checkpoint itself.
    expect(h.node('g/3').executor.calls).toBe(2)
    expect(h.node('g/3').executed.map((b) => b.seq)).toEqual([3 * K + 1, 3 * K + 2])
    expect(hex(h.node('g/3').storage.loadSync()!.checkpoint.digest)).toBe(hex(h.node('g/0').storage.loadSync()!.checkpoint.digest))

    // It takes part again: with g/0 gone, the group still needs it for a quorum.
    h.isolate('g/0')
    h.invoke('c0', 'after')
    h.runUntil(() => h.completed('c0').length === 5, 20_000)
    expect(h.replica('g/3').status().lastExecuted).toBe(3 * K + 3)
  })

  it('a replica only a little behind catches up from the log, without a state transfer', () => {
    const h = leftBehind(K - 2)
    h.runUntil(caughtUp(h))
    expect(h.events('g/3', 'state-transfer-started')).toEqual([])
    expect(h.node('g/3').executed.map((b) => b.seq)).toEqual([1, 2])
  })

  it('a lying source is detected and the state is fetched from another replica', () => {
    const h = leftBehind(3 * K)
    // The first source's answers never arrive; a forged chunk in its name does.
    const silence = h.block(both(is('state-chunk'), from('g/0')))
    h.runUntil(() => h.sent.some(both(is('fetch-state'), from('g/3'))))
    const ask = h.sentOf('fetch-state', from('g/3'))[0]!
    expect(ask.to).toBe('g/0')
    const stable = h.node('g/0').storage.loadSync()!.checkpoint
    const data = op('a state that does not hash to the digest')
    const lie: StateChunk = { t: 'state-chunk', seq: stable.seq, digest: stable.digest, chunk: 0, length: data.length, proof: [], data }
    h.inject('g/0', 'g/3', lie)
    expect(h.events('g/3', 'lying-state')).toEqual([{ kind: 'lying-state', source: 0, seq: 3 * K }])
    silence()
    h.runUntil(caughtUp(h))
    expect(h.events('g/3', 'state-transferred')).toEqual([{ kind: 'state-transferred', seq: 3 * K }])
    const answered = h.delivered.filter(both(is('state-chunk'), (f) => f.to === 'g/3'))
    expect(answered.length).toBeGreaterThan(0)
    expect(answered.every((f) => f.from !== 'g/0')).toBe(true)
  })

  describe('a state larger than one chunk', () => {
    const padding = STATE_CHUNK_BYTES + 1000

    it('is fetched chunk by chunk, each with its proof, and reassembled', () => {
      const h = leftBehind(3 * K, padding)
      h.runUntil(caughtUp(h))
      const stable = h.node('g/0').storage.loadSync()!.checkpoint
      const chunks = h.delivered.filter(both(is('state-chunk'), (f) => f.to === 'g/3')).map((f) => f.message as StateChunk)
      expect(chunks.map((c) => [c.chunk, c.length, c.proof.length])).toEqual([
        [0, stable.state.length, 1],
        [1, stable.state.length, 1],
      ])
      expect(chunks[0]!.data.length).toBe(STATE_CHUNK_BYTES)
      expect(h.events('g/3', 'state-transferred')).toHaveLength(1)
      expect(hex(h.node('g/3').storage.loadSync()!.checkpoint.state)).toBe(hex(stable.state))
    })

    it('a source whose chunk does not verify against the certified digest is abandoned at that chunk; the chunks already verified are kept', () => {
      const h = leftBehind(3 * K, padding)
      // g/0 answers; its last chunk is altered on the way (same length, other bytes).
      let altered = 0
      h.block((f) => {
        if (f.message.t !== 'state-chunk' || f.from !== 'g/0' || f.message.chunk !== 1) return false
        const m = f.message
        const data = Uint8Array.from(m.data)
        data[0] = (data[0] as number) ^ 1
        altered++
        h.inject('g/0', 'g/3', { ...m, data })
        return true
      })
      h.runUntil(caughtUp(h))
      expect(altered).toBe(1)
      expect(h.events('g/3', 'lying-state')).toEqual([{ kind: 'lying-state', source: 0, seq: 3 * K }])
      expect(h.events('g/3', 'state-transferred')).toHaveLength(1)
      expect(hex(h.replica('g/3').stateDigest())).toBe(hex(h.replica('g/0').stateDigest()))
      // The next source is asked only for the chunk g/3 still lacks.
      expect(h.sentOf('fetch-state', from('g/3')).map((f) => [f.to, (f.message as { chunk: number }).chunk])).toEqual([
        ['g/0', 0],
        ['g/0', 1],
        ['g/1', 1],
      ])
    })
  })

  it('drops a lying state source at its first bad chunk, holding no more than the chunks in flight (was: buffered the whole state, up to 1 GiB, before checking it)', () => {
    // A state of 13 chunks; g/0, the first source, answers every request with garbage of the
    // right size under an honest-looking header (seq, digest, length, proof).
    const h = leftBehind(3 * K, 12 * STATE_CHUNK_BYTES)
    let served = 0
    let peak = 0
    h.block((f) => {
      if (f.message.t !== 'state-chunk' || f.from !== 'g/0' || f.to !== 'g/3') return false
      const m = f.message
      served++
      const data = Uint8Array.from(m.data, (b, i) => (b ^ (i + 1)) & 0xff)
      h.inject('g/0', 'g/3', { ...m, data })
      if (h.events('g/3', 'lying-state').length === 0) peak = Math.max(peak, h.replica('g/3').sizes().stateTransferBytes ?? 0)
      return true
    })
    h.runUntil(caughtUp(h))
    expect(chunkCount(h.node('g/0').storage.loadSync()!.checkpoint.state.length)).toBe(13)
    expect(h.events('g/3', 'lying-state')).toEqual([{ kind: 'lying-state', source: 0, seq: 3 * K }])
    // One chunk from the liar, and nothing of it kept; the old fetcher took all 13 and held 12
    // of them (3 MiB, unchecked) before it found the lie.
    expect(served).toBe(1)
    expect(peak).toBeLessThanOrEqual(CHUNKS_IN_FLIGHT * STATE_CHUNK_BYTES)
    expect(peak).toBe(0)
    expect(h.events('g/3', 'state-transferred')).toEqual([{ kind: 'state-transferred', seq: 3 * K }])
    expect(hex(h.replica('g/3').stateDigest())).toBe(hex(h.replica('g/0').stateDigest()))
    expect(h.replica('g/3').sizes().stateTransferBytes).toBe(0)
  })

  it('a replica whose source stays silent times out and asks the next one', () => {
    const h = leftBehind(3 * K)
    h.block(both(is('state-chunk'), from('g/0')))
    h.runUntil(caughtUp(h))
    const asked = [...new Set(h.sentOf('fetch-state', from('g/3')).map((f) => f.to))]
    expect(asked.slice(0, 2)).toEqual(['g/0', 'g/1'])
  })
})

describe('StateFetch and StateServer, chunk by chunk', () => {
  const layout = { chunkBytes: 16, maxBytes: 16 * 64 }
  const state = Uint8Array.from({ length: 16 * 9 + 5 }, (_, i) => (i * 31 + 7) & 0xff) // 10 chunks
  const tree = new StateTree(state, 16)
  const target: CheckpointProof = { seq: 8, digest: tree.root }
  const honest = (i: number): StateChunk => ({ t: 'state-chunk', seq: 8, digest: tree.root, chunk: i, length: state.length, proof: tree.proof(i)!, data: tree.chunk(i) })
  const asked = (f: StateFetch, now = 0) => f.nextRequests(now, 100).map((r) => r.chunk)

  it('asks for chunk 0, then keeps CHUNKS_IN_FLIGHT requests out, and writes each verified chunk into a buffer of the proven length', () => {
    const f = new StateFetch(target, [1, 2, 3], 1, layout)
    expect(asked(f)).toEqual([0])
    expect(asked(f)).toEqual([])
    expect(f.bytesHeld).toBe(0)
    expect(f.onChunk(1, honest(0))).toEqual({ kind: 'progress' })
    expect(f.bytesHeld).toBe(state.length)
    expect(f.bytesVerified).toBe(16)
    expect(asked(f)).toEqual([1, 2, 3, 4])
    expect(f.onChunk(1, honest(3))).toEqual({ kind: 'progress' })
    expect(f.onChunk(1, honest(1))).toEqual({ kind: 'progress' })
    expect(asked(f)).toEqual([5, 6])
    for (const i of [2, 4, 5, 6]) expect(f.onChunk(1, honest(i)).kind).toBe('progress')
    expect(asked(f)).toEqual([7, 8, 9])
    expect(f.onChunk(1, honest(9)).kind).toBe('progress')
    expect(f.onChunk(1, honest(8)).kind).toBe('progress')
    const done = f.onChunk(1, honest(7))
    expect(done.kind).toBe('complete')
    expect(hex((done as { state: Uint8Array }).state)).toBe(hex(state))
    expect(f.bytesVerified).toBe(state.length)
  })

  it('the empty state and a state of one full chunk', () => {
    for (const s of [new Uint8Array(0), new Uint8Array(16).fill(3)]) {
      const t = new StateTree(s, 16)
      const f = new StateFetch({ seq: 8, digest: t.root }, [1, 2], 1, layout)
      expect(asked(f)).toEqual([0])
      const done = f.onChunk(1, { t: 'state-chunk', seq: 8, digest: t.root, chunk: 0, length: s.length, proof: [], data: t.chunk(0) })
      expect(done).toEqual({ kind: 'complete', state: s })
    }
  })

  const lies: ReadonlyArray<readonly [string, (m: StateChunk) => StateChunk]> = [
    ['a flipped bit', (m) => ({ ...m, data: Uint8Array.from(m.data, (b, k) => (k === 3 ? b ^ 0x10 : b)) })],
    ['another chunk’s data', (m) => ({ ...m, data: tree.chunk((m.chunk + 1) % 9) })],
    ['another chunk’s proof', (m) => ({ ...m, proof: tree.proof((m.chunk + 2) % 10)! })],
    ['a longer state', (m) => ({ ...m, length: m.length + 1 })],
    ['a shorter state', (m) => ({ ...m, length: m.length - 16 })],
    ['a truncated proof', (m) => ({ ...m, proof: m.proof.slice(0, -1) })],
    ['an extended proof', (m) => ({ ...m, proof: [...m.proof, new Uint8Array(32)] })],
    ['a chunk past the end it claims', (m) => ({ ...m, chunk: 10 })],
  ]

  it.each(lies)('abandons the source at its first chunk with %s, whether it is the first chunk or a later one', (_name, lie) => {
    // As the first chunk (the length is not known yet).
    const first = new StateFetch(target, [1, 2, 3], 1, layout)
    asked(first)
    expect(first.onChunk(1, lie(honest(0)))).toEqual({ kind: 'lying', source: 1 })
    expect(first.bytesHeld).toBe(0)
    // As a later chunk: the verified one is kept through the rotation; the next source is asked
    // only for what is missing.
    const later = new StateFetch(target, [1, 2, 3], 1, layout)
    asked(later)
    later.onChunk(1, honest(0))
    expect(asked(later)).toEqual([1, 2, 3, 4])
    expect(later.onChunk(1, lie(honest(2)))).toEqual({ kind: 'lying', source: 1 })
    later.rotate(0)
    expect(later.source).toBe(2)
    expect(later.bytesVerified).toBe(16)
    expect(later.onChunk(1, honest(1))).toEqual({ kind: 'ignored', reason: 'not-source' })
    expect(asked(later)).toEqual([1, 2, 3, 4])
  })

  it('ignores chunks from another peer, of another checkpoint, not asked for, or already held', () => {
    const f = new StateFetch(target, [1, 2, 3], 1, layout)
    asked(f)
    expect(f.onChunk(2, honest(0))).toEqual({ kind: 'ignored', reason: 'not-source' })
    expect(f.onChunk(1, { ...honest(0), seq: 4 })).toEqual({ kind: 'ignored', reason: 'other-checkpoint' })
    expect(f.onChunk(1, { ...honest(0), digest: new Uint8Array(32) })).toEqual({ kind: 'ignored', reason: 'other-checkpoint' })
    expect(f.onChunk(1, honest(1))).toEqual({ kind: 'ignored', reason: 'unrequested' })
    expect(f.onChunk(1, honest(0)).kind).toBe('progress')
    expect(f.onChunk(1, honest(0))).toEqual({ kind: 'ignored', reason: 'duplicate' })
    expect(f.onChunk(1, honest(7))).toEqual({ kind: 'ignored', reason: 'unrequested' })
  })

  it('the server answers every chunk with a proof that verifies, keeps one tree per state, and builds none for a chunk past the end', () => {
    const server = new StateServer(16)
    expect(server.chunk(state, 10)).toBeUndefined()
    expect(server.holdsTree).toBe(false)
    const f = new StateFetch(target, [1], 1, layout)
    let outcome: ReturnType<StateFetch['onChunk']> = { kind: 'progress' }
    while (outcome.kind === 'progress') {
      for (const r of f.nextRequests(0, 100)) {
        const c = server.chunk(state, r.chunk)!
        outcome = f.onChunk(1, { t: 'state-chunk', seq: 8, digest: tree.root, chunk: r.chunk, ...c })
      }
    }
    expect(outcome).toEqual({ kind: 'complete', state })
    expect(server.holdsTree).toBe(true)
    server.forget()
    expect(server.holdsTree).toBe(false)
  })
})
