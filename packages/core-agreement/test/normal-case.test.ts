import { sha256 } from '@bftrc/crypto'
import { describe, expect, it } from 'vitest'
import { type ExecutionContext, FULL_RESULT_BYTES, type PrePrepare, type Reply } from '../src/index.js'
import { ChainExecutor, EVENTS, Harness, any, both, from, hex, is, not, to } from './harness.js'

/** The chain executor with results one byte over FULL_RESULT_BYTES (so replies carry digests). */
class LargeResults extends ChainExecutor {
  override execute(op: Uint8Array, ctx: ExecutionContext): Uint8Array {
    super.execute(op, ctx)
    return new Uint8Array(FULL_RESULT_BYTES + 1).fill(this.count & 0xff)
  }
}

describe('normal case', () => {
  it('a request commits in order at every replica and the client accepts the result', () => {
    const h = new Harness()
    const ts = h.invoke('c0', 'put x 1')
    h.deliverAll()

    const [done] = h.completed('c0')
    expect(done?.timestamp).toBe(ts)
    expect(done?.readOnly).toBe(false)
    expect(done?.view).toBe(0)
    for (const node of h.ids.map((id) => h.node(id))) {
      expect(node.executed.map((b) => b.seq)).toEqual([1])
      expect(node.executed[0]?.requests).toEqual([{ client: 'c0', timestamp: ts, resultDigest: sha256(done?.result as Uint8Array) }])
      expect(node.executor.calls).toBe(1)
    }
    expect(h.converged()).toBe(true)
  })

  it('sends exactly 4 requests, 3 pre-prepares, 9 prepares, 12 commits and 4 replies for n = 4', () => {
    const h = new Harness()
    h.invoke('c0', 'put x 1')
    h.deliverAll()
    // The client sends to every replica (the backups watch that the primary orders it), and the
    // backups relay nothing: the primary has its own copy.
    expect(h.sentByType()).toEqual({ request: 4, 'pre-prepare': 3, prepare: 9, commit: 12, reply: 4 })
    expect(h.sentOf('request').map((f) => f.from)).toEqual(['c0', 'c0', 'c0', 'c0'])
    // The primary never prepares; every backup prepares to every other replica.
    expect(h.sentOf('prepare', from('g/0'))).toHaveLength(0)
    // A small result goes in full in every reply (a digest would save nothing).
    const replies = h.sentOf('reply').map((f) => f.message as Reply)
    expect(replies.filter((r) => r.result !== undefined)).toHaveLength(4)
    expect(new Set(replies.map((r) => hex(r.resultDigest))).size).toBe(1)
  })

  it('a result over FULL_RESULT_BYTES goes in full from one designated replica, as a digest from the others', () => {
    const h = new Harness({ executor: () => new LargeResults() })
    h.invoke('c0', 'put x 1')
    h.deliverAll()
    const replies = h.sentOf('reply').map((f) => f.message as Reply)
    expect(replies.filter((r) => r.result !== undefined)).toHaveLength(1)
    expect(replies.find((r) => r.result !== undefined)?.result?.length).toBe(FULL_RESULT_BYTES + 1)
    expect(new Set(replies.map((r) => hex(r.resultDigest))).size).toBe(1)
  })

  it('requests of several clients execute in one order, the same everywhere', () => {
    const h = new Harness()
    for (let round = 0; round < 3; round++) {
      for (const c of h.clientIds) h.invoke(c, `${c}-${round}`)
      // Deliver in a scrambled order: the agreement, not the network, fixes the order.
      h.reorder()
      h.deliverAll()
    }
    for (const c of h.clientIds) expect(h.completed(c)).toHaveLength(3)
    const orders = h.ids.map((id) =>
      h
        .node(id)
        .executed.flatMap((b) => b.requests.map((r) => `${b.seq}:${r.client}:${r.timestamp}`))
        .join(','),
    )
    expect(new Set(orders).size).toBe(1)
    const seqs = h.node('g/2').executed.map((b) => b.seq)
    expect(seqs).toEqual(seqs.map((_, i) => i + 1))
    expect(h.converged()).toBe(true)
  })

  describe('the client', () => {
    it('accepts f+1 matching replies with one full result, not fewer', () => {
      const h = new Harness({ executor: () => new LargeResults() })
      h.invoke('c0', 'put x 1')
      h.deliverAll(not(is('reply')))
      const replies = h.queue.filter(is('reply'))
      expect(replies).toHaveLength(4)
      const full = replies.find((f) => (f.message as Reply).result !== undefined)
      const digestOnly = replies.filter((f) => (f.message as Reply).result === undefined)
      // One digest-only reply: not enough.
      h.deliverFrame(digestOnly[0]!)
      expect(h.completed('c0')).toHaveLength(0)
      // Two matching digests but no full result: still not enough.
      h.deliverFrame(digestOnly[1]!)
      expect(h.completed('c0')).toHaveLength(0)
      // The designated replier's full result completes it.
      h.deliverFrame(full!)
      expect(h.completed('c0')).toHaveLength(1)
      expect(hex(sha256(h.completed('c0')[0]!.result))).toBe(hex((full!.message as Reply).resultDigest))
    })

    it('does not accept f+1 replies that disagree, nor a full result that does not hash to its digest', () => {
      const h = new Harness()
      const ts = h.invoke('c0', 'put x 1')
      h.deliverAll(not(is('reply')))
      h.drop(is('reply'))
      const result = new TextEncoder().encode('forged')
      const liar: Reply = { t: 'reply', view: 0, timestamp: ts, readOnly: false, resultDigest: sha256(result), result }
      h.inject('g/1', 'c0', liar)
      h.inject('g/2', 'c0', { ...liar, resultDigest: sha256(new TextEncoder().encode('other')), result: undefined } as Reply)
      expect(h.completed('c0')).toHaveLength(0)
      h.inject('g/3', 'c0', { ...liar, result: new TextEncoder().encode('not the digest') })
      expect(h.client('c0').counters.get('dropped.bad-result-digest')).toBe(1)
      expect(h.completed('c0')).toHaveLength(0)
    })
  })

  describe('the client\'s retransmission timeout', () => {
    it('waits 4x the smoothed latency of ordered requests before retransmitting, never less than the configured floor', () => {
      const h = new Harness()
      const c = h.client('c0')
      expect(c.orderedTimeout()).toBe(c.config.retransmitTimeout)
      // A slow group: every reply takes 300 ms.
      for (let i = 0; i < 20; i++) {
        h.invoke('c0', `put k ${i}`)
        h.deliverAll(not(is('reply')))
        h.tick(300)
        h.deliverAll()
      }
      expect(h.completed('c0')).toHaveLength(20)
      expect(c.orderedTimeout()).toBe(1200)
      expect(c.counters.get('retransmit')).toBeUndefined()
      // The next request gets no answer: no copies before 1200 ms, then one to every replica.
      h.invoke('c0', 'put k lost')
      h.drop(any)
      h.tick(1_199)
      expect(c.counters.get('retransmit')).toBeUndefined()
      h.tick(1)
      expect(c.counters.get('retransmit')).toBe(1)
      expect(h.queue.filter(is('request'))).toHaveLength(4)
    })
  })

  describe('adaptive batching and pipelining', () => {
    it('requests that arrive while a batch is in flight go out together in the next pre-prepare', () => {
      const h = new Harness({ config: { pipelineDepth: 1 } })
      h.invoke('c0', 'first')
      h.deliverAll(to('g/0')) // the primary orders c0's request at seq 1 and stops: nothing else arrives yet
      expect(h.replica(0).status().queued).toBe(0)
      h.invoke('c1', 'a')
      h.invoke('c2', 'b')
      h.invoke('c3', 'c')
      h.deliverAll(both(is('request'), to('g/0')))
      // seq 1 is in flight: the three wait in the primary's queue.
      expect(h.replica(0).status().queued).toBe(3)
      h.deliverAll()
      const pps = h.sentOf('pre-prepare', to('g/1')).map((f) => f.message as PrePrepare)
      expect(pps.map((pp) => [pp.seq, pp.batch.requests.map((r) => r.client)])).toEqual([
        [1, ['c0']],
        [2, ['c1', 'c2', 'c3']],
      ])
      for (const c of h.clientIds) expect(h.completed(c)).toHaveLength(1)
      expect(h.converged()).toBe(true)
    })

    it('the primary keeps at most pipelineDepth batches in flight', () => {
      const h = new Harness({ clients: ['c0', 'c1', 'c2', 'c3', 'c4', 'c5'], config: { pipelineDepth: 2 } })
      for (const c of h.clientIds) h.invoke(c, `op-${c}`)
      h.deliverAll(to('g/0'))
      const inFlight = h.queue.filter(both(is('pre-prepare'), to('g/1'))).map((f) => (f.message as PrePrepare).seq)
      expect(inFlight).toEqual([1, 2])
      expect(h.replica(0).status().queued).toBe(4)
      h.deliverAll()
      const seqs = h.sentOf('pre-prepare', to('g/1')).map((f) => [(f.message as PrePrepare).seq, (f.message as PrePrepare).batch.requests.length])
      // After seq 1 executes, the four queued requests leave in one batch (seq 2 is still in flight).
      expect(seqs).toEqual([
        [1, 1],
        [2, 1],
        [3, 4],
      ])
      for (const c of h.clientIds) expect(h.completed(c)).toHaveLength(1)
    })

    it('maxBatchRequests splits a long queue into several pre-prepares', () => {
      const h = new Harness({ clients: ['c0', 'c1', 'c2', 'c3', 'c4', 'c5'], config: { pipelineDepth: 1, maxBatchRequests: 2 } })
      h.invoke('c0', 'first')
      h.deliverAll(to('g/0'))
      for (const c of h.clientIds.slice(1)) h.invoke(c, `op-${c}`)
      h.deliverAll()
      const sizes = h.sentOf('pre-prepare', to('g/1')).map((f) => (f.message as PrePrepare).batch.requests.length)
      expect(sizes).toEqual([1, 2, 2, 1])
      for (const c of h.clientIds) expect(h.completed(c)).toHaveLength(1)
    })
  })

  describe('proposals of the upper layer', () => {
    it('a backup’s proposal is relayed to the primary, ordered with client requests, and executed once everywhere', () => {
      const h = new Harness({ proposals: EVENTS, config: { pipelineDepth: 1 } })
      h.invoke('c0', 'first')
      h.deliverAll(to('g/0'))
      expect(h.propose('g/2', 'event:timer-1')).toBe(true)
      expect(h.queue.filter(is('proposal')).map((f) => f.to)).toEqual(['g/0'])
      h.invoke('c1', 'second')
      h.deliverAll(both(is('request', 'proposal'), to('g/0')))
      h.deliverAll()
      const pps = h.sentOf('pre-prepare', to('g/1')).map((f) => f.message as PrePrepare)
      expect(pps.map((pp) => [pp.seq, pp.batch.requests.length, pp.batch.proposals?.length ?? 0])).toEqual([
        [1, 1, 0],
        [2, 1, 1],
      ])
      for (const id of h.ids) {
        expect(h.node(id).executor.proposals).toBe(1)
        expect(h.node(id).executed.map((b) => b.proposals)).toEqual([[], ['event:timer-1']])
        expect(h.replica(id).status().proposalsWaiting).toBe(0)
      }
      expect(h.converged()).toBe(true)
    })

    it('the same proposal from several replicas is ordered once', () => {
      const h = new Harness({ proposals: EVENTS })
      for (const id of h.ids) h.propose(id, 'event:x')
      h.deliverAll()
      for (const id of h.ids) expect(h.node(id).executor.proposals).toBe(1)
    })
  })

  describe('exactly once', () => {
    it('a retransmitted request is answered from the reply cache, not executed again', () => {
      const h = new Harness()
      const ts = h.invoke('c0', 'increment')
      h.deliverAll(not(is('reply')))
      const firstReplies = h.drop(is('reply')) // every reply is lost
      expect(firstReplies).toHaveLength(4)
      for (const id of h.ids) expect(h.node(id).executor.calls).toBe(1)

      h.tick(h.client('c0').config.retransmitTimeout)
      const retransmitted = h.queue.filter(is('request'))
      expect(retransmitted.map((f) => f.to).sort()).toEqual([...h.ids].sort())
      h.deliverAll()

      expect(h.completed('c0').map((c) => c.timestamp)).toEqual([ts])
      const cached = h.sent.filter((f) => f.message.t === 'reply' && f.n > firstReplies[3]!.n).map((f) => f.message as Reply)
      // Every replica answers from its cache, with the full result.
      expect(cached).toHaveLength(4)
      expect(cached.every((r) => r.result !== undefined)).toBe(true)
      for (const id of h.ids) {
        expect(h.node(id).executor.calls).toBe(1)
        expect(h.node(id).executed).toHaveLength(1)
      }
      expect(h.sentOf('pre-prepare')).toHaveLength(3)
    })

    it('a request the primary orders twice is executed once', () => {
      const h = new Harness()
      h.invoke('c0', 'increment')
      h.deliverAll()
      const request = h.sentOf('request')[0]!.message
      // The same request again, straight to the primary (a replayed frame): no second batch.
      h.inject('c0', 'g/0', request)
      h.deliverAll()
      expect(h.sentOf('pre-prepare')).toHaveLength(3)
      for (const id of h.ids) expect(h.node(id).executor.calls).toBe(1)
    })
  })

  describe('read-only requests', () => {
    it('are answered by every replica without ordering, and 2f+1 matching results complete them', () => {
      const h = new Harness()
      h.commit('c0', 'put x 1')
      const before = h.sentByType()
      h.invoke('c1', 'get x', { readOnly: true })
      h.deliverAll()
      const [done] = h.completed('c1')
      expect(done?.readOnly).toBe(true)
      expect(done?.fellBack).toBe(false)
      const after = h.sentByType()
      expect(after['pre-prepare']).toBe(before['pre-prepare'])
      expect(after.request! - before.request!).toBe(4)
      expect(after.reply! - before.reply!).toBe(4)
      for (const id of h.ids) {
        expect(h.node(id).executor.readOnlyCalls).toBe(1)
        expect(h.node(id).executor.calls).toBe(1)
      }
    })

    it('fall back to an ordered request when 2f+1 matching results do not arrive in time', () => {
      const h = new Harness()
      const ts = h.invoke('c1', 'get x', { readOnly: true })
      h.deliverAll(not(is('reply')))
      // Only f+1 read-only answers get through.
      h.deliverQueued(both(is('reply'), from('g/0', 'g/1')))
      h.drop(is('reply'))
      expect(h.completed('c1')).toHaveLength(0)

      h.tick(h.client('c1').config.retransmitTimeout)
      expect(h.client('c1').counters.get('read-only-fallback')).toBe(1)
      h.deliverAll()
      const [done] = h.completed('c1')
      expect(done?.fellBack).toBe(true)
      expect(done?.readOnly).toBe(false)
      expect(done?.timestamp).toBeGreaterThan(ts)
      for (const id of h.ids) expect(h.node(id).executor.calls).toBe(1)
    })
  })
})
