import { describe, expect, it } from 'vitest'
import type { Checkpoint, PrePrepare } from '../src/index.js'
import { Craft } from './craft.js'
import { Harness, both, from, hex, is, to } from './harness.js'

const K = 4
const L = 8

function harness(config = {}) {
  return new Harness({ config: { checkpointInterval: K, logWindow: L, ...config } })
}

describe('checkpoints', () => {
  it('every replica takes a checkpoint every K batches; the same digest everywhere; stable with 2f+1 of them', () => {
    const h = harness()
    for (let i = 0; i < K - 1; i++) h.commit('c0', `op-${i}`)
    expect(h.sentOf('checkpoint')).toHaveLength(0)
    h.hold(is('checkpoint'))
    h.commit('c0', 'op-k')
    const held = h.held.map((f) => f.message as Checkpoint)
    expect(held).toHaveLength(4 * 3)
    expect(new Set(held.map((c) => c.seq))).toEqual(new Set([K]))
    expect(new Set(held.map((c) => hex(c.digest)))).toEqual(new Set([hex(h.replica('g/0').stateDigest())]))
    for (const id of h.ids) expect(h.replica(id).status().stableCheckpoint).toBe(0)

    // g/0 holds its own vote; one more is f+1, not enough.
    h.release(both(from('g/1'), to('g/0')))
    h.deliverAll()
    expect(h.replica('g/0').status().stableCheckpoint).toBe(0)
    expect(h.replica('g/0').sizes().checkpointVotes).toBe(2)
    // The third makes 2f+1.
    h.release(both(from('g/2'), to('g/0')))
    h.deliverAll()
    expect(h.replica('g/0').status().stableCheckpoint).toBe(K)
    expect(h.events('g/0', 'stable-checkpoint')).toEqual([{ kind: 'stable-checkpoint', seq: K }])

    h.release()
    h.deliverAll()
    for (const id of h.ids) {
      expect(h.replica(id).status().stableCheckpoint).toBe(K)
      const stored = h.node(id).storage.loadSync()
      expect(stored?.checkpoint.seq).toBe(K)
      expect(stored?.checkpoint.certificate?.shares).toHaveLength(3)
      expect(stored?.entries).toEqual([])
    }
  })

  it('garbage-collects the log, the votes and the stored entries at each stable checkpoint, so memory stays flat', () => {
    const h = harness()
    const peaks: Record<string, number> = {}
    for (let i = 0; i < 10 * K; i++) {
      h.commit(`c${i % 4}`, `op-${i}`)
      for (const id of h.ids) {
        for (const [k, v] of Object.entries(h.replica(id).sizes())) peaks[k] = Math.max(peaks[k] ?? 0, v)
        peaks.stored = Math.max(peaks.stored ?? 0, h.node(id).storage.entryCount)
      }
    }
    for (const id of h.ids) {
      expect(h.replica(id).status()).toMatchObject({ lastExecuted: 10 * K, stableCheckpoint: 10 * K })
      expect(h.replica(id).sizes()).toMatchObject({ log: 0, checkpointVotes: 0, ownCheckpoints: 0, queue: 0, pending: 0, inFlight: 0, viewChanges: 0, clients: 4 })
      expect(h.node(id).storage.entryCount).toBe(0)
    }
    expect(peaks.log).toBeLessThanOrEqual(K)
    expect(peaks.stored).toBeLessThanOrEqual(K)
    expect(peaks.checkpointVotes).toBeLessThanOrEqual(4)
    expect(peaks.ownCheckpoints).toBeLessThanOrEqual(1)
  })

  it('the primary stops at the high watermark (stable + L) and resumes when a checkpoint becomes stable', () => {
    const h = harness({ pipelineDepth: 2 * L })
    h.hold(is('checkpoint'))
    for (let i = 0; i < L; i++) h.commit('c0', `op-${i}`)
    expect(h.replica('g/0').status()).toMatchObject({ lastExecuted: L, stableCheckpoint: 0 })

    h.invoke('c1', 'beyond the window')
    h.deliverAll()
    expect(h.completed('c1')).toHaveLength(0)
    expect(h.replica('g/0').status().queued).toBe(1)
    expect(Math.max(...h.sentOf('pre-prepare').map((f) => (f.message as PrePrepare).seq))).toBe(L)
    // Log entries up to L are kept while nothing is stable.
    expect(h.replica('g/1').sizes().log).toBe(L)

    h.release()
    h.deliverAll()
    expect(h.completed('c1')).toHaveLength(1)
    for (const id of h.ids) expect(h.replica(id).status()).toMatchObject({ lastExecuted: L + 1, stableCheckpoint: L })
  })

  it('with many clients queued at the high watermark, all complete once the window moves', () => {
    const h = harness({ pipelineDepth: 2 * L, maxBatchRequests: 1 })
    h.hold(is('checkpoint'))
    for (const c of h.clientIds) h.invoke(c, `first-${c}`)
    h.deliverAll()
    for (const c of h.clientIds) h.invoke(c, `second-${c}`)
    h.deliverAll()
    for (const c of h.clientIds) h.invoke(c, `third-${c}`)
    h.deliverAll()
    // 12 single-request batches wanted, only L fit.
    expect(h.replica('g/0').status()).toMatchObject({ lastExecuted: L, queued: 12 - L })
    h.release()
    h.deliverAll()
    for (const c of h.clientIds) expect(h.completed(c)).toHaveLength(3)
    expect(h.converged()).toBe(true)
  })

  it('a Byzantine replica’s checkpoint with another digest neither blocks nor forges stability', () => {
    const h = harness()
    const craft = new Craft(h)
    h.block(both(is('checkpoint'), from('g/3')))
    for (let i = 0; i < K - 1; i++) h.commit('c0', `op-${i}`)
    const lie = craft.checkpoint(K, new Uint8Array(32).fill(9), 'g/3')
    for (const id of ['g/0', 'g/1', 'g/2']) h.inject('g/3', id, lie)
    h.commit('c0', 'op-k')
    for (const id of ['g/0', 'g/1', 'g/2']) {
      expect(h.replica(id).status().stableCheckpoint).toBe(K)
      expect(hex(h.node(id).storage.loadSync()!.checkpoint.digest)).toBe(hex(h.replica(id).stateDigest()))
    }
  })

  it('checkpoint votes that arrive before the replica executed the batch still count', () => {
    const h = harness()
    for (let i = 0; i < K - 1; i++) h.commit('c0', `op-${i}`)
    // g/3 executes seq K last: the other checkpoints reach it first.
    h.hold(both(is('commit'), to('g/3')))
    h.invoke('c0', 'op-k')
    h.deliverAll()
    expect(h.replica('g/3').status()).toMatchObject({ lastExecuted: K - 1 })
    expect(h.replica('g/3').sizes().checkpointVotes).toBe(3)
    h.release()
    h.deliverAll()
    expect(h.replica('g/3').status()).toMatchObject({ lastExecuted: K, stableCheckpoint: K })
    expect(h.events('g/3', 'state-transfer-started')).toEqual([])
  })
})
