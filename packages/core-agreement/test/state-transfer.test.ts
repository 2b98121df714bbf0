import { describe, expect, it } from 'vitest'
import { STATE_CHUNK_BYTES } from '../src/index.js'
import type { StateChunk } from '../src/messages.js'
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
    const lie: StateChunk = { t: 'state-chunk', seq: stable.seq, digest: stable.digest, chunk: 0, chunks: 1, data: op('a state that does not hash to the digest') }
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

    it('is fetched chunk by chunk and reassembled', () => {
      const h = leftBehind(3 * K, padding)
      h.runUntil(caughtUp(h))
      const chunks = h.delivered.filter(both(is('state-chunk'), (f) => f.to === 'g/3')).map((f) => f.message as StateChunk)
      expect(chunks.map((c) => [c.chunk, c.chunks])).toEqual([
        [0, 2],
        [1, 2],
      ])
      expect(chunks[0]!.data.length).toBe(STATE_CHUNK_BYTES)
      expect(h.events('g/3', 'state-transferred')).toHaveLength(1)
    })

    it('a source whose chunks do not add up to the certified digest is abandoned', () => {
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
      expect(altered).toBeGreaterThan(0)
      expect(h.events('g/3', 'lying-state')).toEqual([{ kind: 'lying-state', source: 0, seq: 3 * K }])
      expect(h.events('g/3', 'state-transferred')).toHaveLength(1)
      expect(hex(h.replica('g/3').stateDigest())).toBe(hex(h.replica('g/0').stateDigest()))
    })
  })

  it('a replica whose source stays silent times out and asks the next one', () => {
    const h = leftBehind(3 * K)
    h.block(both(is('state-chunk'), from('g/0')))
    h.runUntil(caughtUp(h))
    const asked = [...new Set(h.sentOf('fetch-state', from('g/3')).map((f) => f.to))]
    expect(asked.slice(0, 2)).toEqual(['g/0', 'g/1'])
  })
})
