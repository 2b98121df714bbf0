/**
 * What one member holding its own key (or a client holding its own) once achieved against a
 * correct group, each reproduced as it was found and kept as a regression test: the test names
 * say what used to happen.
 */
import { Worker } from 'node:worker_threads'
import { type KeyPair, encode, keyPairFromSeed, peerIdOf, sha256, signBytes } from '@bftrc/crypto'
import { describe, expect, it } from 'vitest'
import { type Executor, type PrePrepare, type Request, type Status, digestOfBatch, requestDigest, scopeOf } from '../src/index.js'
import { Craft } from './craft.js'
import { ChainExecutor, Harness, from, hex, op } from './harness.js'

const START = 1_000_000

/** Runs one STATUS against a fresh group in a worker: did `step` return, and how fast? */
function stepStatusInWorker(status: Status, limitMs: number): Promise<{ returned: boolean; sent: number }> {
  return new Promise((resolve, reject) => {
    // A worker does not inherit the test runner's TypeScript loader: register tsx, then load the fixture.
    const fixture = new URL('./fixtures/step-in-worker.ts', import.meta.url).href
    const source = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(fixture)}) })`
    const worker = new Worker(source, { eval: true, workerData: { status } })
    const timer = setTimeout(() => {
      void worker.terminate()
      resolve({ returned: false, sent: 0 })
    }, limitMs)
    worker.once('message', (m: { returned: boolean; sent: number }) => {
      clearTimeout(timer)
      void worker.terminate()
      resolve(m)
    })
    worker.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
  })
}

describe('a faulty member against one correct replica', () => {
  it('a STATUS claiming lastExecuted near 2^53 is answered from our own window and returns (was: seq++ stood still at 2^53, the replica hung for good)', async () => {
    for (const lastExecuted of [2 ** 53 - 10, 2 ** 48, 2 ** 48 - 1]) {
      const r = await stepStatusInWorker({ t: 'status', view: 3, active: false, lastExecuted, stable: 0 }, 20_000)
      expect(r.returned, `STATUS lastExecuted=${lastExecuted}`).toBe(true)
    }
  })

  it('refuses numbers no group reaches before using them: views and sequence numbers above 2^48 do not decode', () => {
    const h = new Harness()
    const before = h.snapshotOf(0)
    for (const lastExecuted of [2 ** 53 - 1, 2 ** 53 - 40, 2 ** 48 + 1]) {
      h.inject('g/1', 'g/0', encode({ t: 'status', view: 0, active: false, lastExecuted, stable: 0 }))
    }
    h.inject('g/1', 'g/0', encode({ t: 'commit', view: 2 ** 53 - 1, seq: 1, digest: new Uint8Array(32) }))
    expect(h.counter(0, 'dropped.malformed')).toBe(4)
    expect(h.snapshotOf(0)).toEqual(before)
  })

  it('a NEW-VIEW made by a member that is not the primary of its view is refused, relayed or not (was: accepted from anyone)', () => {
    const h = new Harness()
    h.now = START
    h.commit('c0', 'first')
    const craft = new Craft(h)
    // View 1's primary is g/1; g/2 holds three genuine view changes for view 1 and makes its own NEW-VIEW.
    const vcs = [0, 2, 3].map((i) => [i, craft.viewChange(1, h.id(i))] as const)
    // f+1 view changes for view 1 reach g/3: it joins view 1 and waits for its NEW-VIEW.
    for (const [i, vc] of vcs) if (i !== 3) h.inject(h.id(i), 'g/3', vc)
    expect(h.replica(3).status()).toMatchObject({ view: 1, active: false })
    const forged = craft.newView(1, vcs, [], 'g/2')
    const out = h.inject('g/2', 'g/3', forged)
    expect(out.filter((f) => f.message.t === 'prepare')).toEqual([])
    expect(h.counter(3, 'dropped.bad-new-view-signature')).toBe(1)
    expect(h.replica(3).status().active).toBe(false)
    // The same view changes in a NEW-VIEW the primary signed move g/3 into view 1, whoever relays it.
    h.inject('g/2', 'g/3', craft.newView(1, vcs, []))
    expect(h.replica(3).status()).toMatchObject({ view: 1, active: true })
  })
})

describe('quorums for any n >= 3f+1', () => {
  it('n = 5, f = 1: an equivocating primary cannot make correct replicas execute different batches at one sequence number (was: quorums of 2f+1 = 3 out of 5)', () => {
    const h = new Harness({ n: 5 })
    h.now = START
    h.tick() // the replicas' clocks at START, or every crafted pre-prepare is refused for its stamp
    const craft = new Craft(h)
    const a = craft.batch(START, craft.request('c0', 1, 'pay alice'))
    const b = craft.batch(START, craft.request('c0', 1, 'pay bob'))
    const ppA = craft.prePrepare(0, 1, a)
    const ppB = craft.prePrepare(0, 1, b)
    // The faulty primary g/0 shows batch A to g/1 and g/2, batch B to g/3 and g/4, and commits to both.
    h.isolate('g/0')
    for (const [target, pp] of [['g/1', ppA], ['g/2', ppA], ['g/3', ppB], ['g/4', ppB]] as const) {
      h.inject('g/0', target, pp)
      h.inject('g/0', target, { t: 'commit', view: 0, seq: 1, digest: digestOfBatch(h.scope, pp.batch) })
    }
    h.deliverAll()
    // Every backup took its pre-prepare and voted for it: the test is about quorums, not stamps.
    for (const i of [1, 2, 3, 4]) {
      expect(h.counter(i, 'dropped.bad-stamp')).toBe(0)
      expect(h.sentOf('prepare', from(h.id(i))).length).toBeGreaterThan(0)
    }
    const executed = new Map<string, string>()
    for (const i of [1, 2, 3, 4]) for (const e of h.node(i).executed) if (e.seq === 1) executed.set(h.id(i), hex(e.digest))
    expect(new Set(executed.values()).size, `batches executed at seq 1: ${JSON.stringify([...executed])}`).toBeLessThanOrEqual(1)
    expect(h.group.quorum).toBe(4)
  })
})

describe('statements bound to their group and deployment', () => {
  it('a client request signed for another group does not execute here, and a request is answered from the reply cache only if it is the one that executed (was: relayed to group B, executed there, and B answered the client\'s own B request with its result)', () => {
    const h = new Harness({ otherGroups: [{ name: 'other', f: 1 }] })
    h.now = START
    const craft = new Craft(h)
    // c0's request for group "other" (timestamp 1), relayed by a faulty member into our group.
    const forOther = craft.request('c0', 1, 'transfer everything', { scope: scopeOf(h.cluster.membership, 'other') })
    h.inject('g/1', 'g/0', { t: 'request', request: forOther })
    h.deliverAll()
    expect(h.counter(0, 'dropped.bad-request')).toBe(1)
    expect(h.node(1).executor.count).toBe(0)
    // c0's own request for us, with the same timestamp, executes and is answered with its own result.
    const done = h.commit('c0', 'read my balance')
    expect(done.timestamp).toBe(1)
    expect(h.node(1).executor.count).toBe(1)
    // Another request under an executed timestamp (a client's mistake, or a replay) gets no cached answer.
    const conflicting = craft.request('c0', 1, 'something else')
    const out = h.inject('c0', 'g/2', { t: 'request', request: conflicting })
    expect(out).toEqual([])
    expect(h.counter(2, 'dropped.conflicting-request')).toBe(1)
  })

  it('nothing signed in one deployment verifies in another with the same keys (the deployment id differs)', () => {
    const h = new Harness()
    const other = new Harness({ deployment: 'staging' })
    expect(hex(h.cluster.membership.deployment)).not.toBe(hex(other.cluster.membership.deployment))
    const r = new Craft(h).request('c0', 1, 'x')
    other.inject('c0', 'g/0', { t: 'request', request: r })
    expect(other.counter(0, 'dropped.bad-request')).toBe(1)
  })
})

/** An open client: any key, id derived from it, timestamps its clock in microseconds. */
function openClient(h: Harness, seedByte: number): { id: string; key: KeyPair; request: (timestamp: number, text: string) => Request } {
  const key = keyPairFromSeed(new Uint8Array(32).fill(seedByte))
  const id = `peer:${peerIdOf(key.publicKey)}`
  return {
    id,
    key,
    request: (timestamp, text) => {
      const body = { client: id, timestamp, op: op(text), readOnly: false, publicKey: key.publicKey }
      return { ...body, signature: signBytes(key, requestDigest(h.scope, body)) }
    },
  }
}

/** Orders `r` through the primary and delivers everything; returns the replies the client got. */
function orderOpen(h: Harness, client: string, r: Request): number {
  const out = h.inject(client, 'g/0', { t: 'request', request: r })
  h.deliverAll()
  return out.length
}

describe('exactly once with open clients', () => {
  it('a flood of fresh open identities cannot evict a victim\'s row, so a faulty primary re-ordering its old request does not execute it twice (was: LRU eviction past maxClients)', () => {
    const h = new Harness({ openClients: true, config: { maxOpenClients: 2 } })
    h.now = START
    h.tick()
    const victim = openClient(h, 1)
    const old = victim.request(START * 1000, 'pay 100 to mallory')
    orderOpen(h, victim.id, old)
    expect(h.node(1).executor.count).toBe(1)
    // Fresh identities cost nothing: the table holds two open rows, both live, so the third is refused.
    for (const seed of [2, 3, 4]) {
      const a = openClient(h, seed)
      orderOpen(h, a.id, a.request(START * 1000 + seed, 'fill the table'))
    }
    expect(h.node(1).executor.count).toBe(2)
    expect(h.counter(1, 'refused.table-full')).toBe(2)
    // The faulty primary (its key) orders the victim's old signed request again.
    const craft = new Craft(h)
    const seq = h.replica(1).status().lastExecuted + 1
    const replay = craft.prePrepare(0, seq, craft.batch(START, old))
    for (const target of ['g/1', 'g/2', 'g/3']) h.inject('g/0', target, replay)
    h.deliverAll()
    expect(h.replica(1).status().lastExecuted).toBe(seq)
    expect(h.node(1).executor.count).toBe(2)
  })

  it('an open row is reused only once its timestamp has left the window, and a request outside the window is refused with an error result', () => {
    const window = 60_000
    const h = new Harness({ openClients: true, config: { maxOpenClients: 1, openClientWindow: window } })
    h.now = START
    h.tick()
    const a = openClient(h, 1)
    const b = openClient(h, 2)
    orderOpen(h, a.id, a.request(START * 1000, 'a'))
    orderOpen(h, b.id, b.request(START * 1000 + 1, 'b'))
    expect(h.counter(1, 'refused.table-full')).toBe(1)
    // Later than the window: a's row guards nothing the window would admit, so b gets it.
    h.now = START + window + 1_000
    h.tick()
    orderOpen(h, b.id, b.request(h.now * 1000, 'b again'))
    expect(h.node(1).executor.count).toBe(2)
    // a's old request is now outside the window: refused, never executed twice.
    orderOpen(h, a.id, a.request(START * 1000, 'a'))
    expect(h.node(1).executor.count).toBe(2)
    expect(h.counter(1, 'refused.outside-window')).toBe(1)
    // Timestamps from the future (beyond the clock skew) are refused too.
    const c = openClient(h, 3)
    orderOpen(h, c.id, c.request((h.now + 3_600_000) * 1000, 'from the future'))
    expect(h.counter(1, 'refused.outside-window')).toBe(2)
  })
})

/** An application that answers with whatever a test asks: too many bytes, not bytes, or throws. */
class Hostile extends ChainExecutor {
  override execute(operation: Uint8Array, ctx: Parameters<Executor['execute']>[1]): Uint8Array {
    const text = Buffer.from(operation).toString()
    if (text === 'huge') return new Uint8Array(1024 * 1024)
    if (text === 'string') return 'not bytes' as unknown as Uint8Array
    if (text === 'throw') throw new Error(`the application broke on seq ${ctx.seq}`)
    return super.execute(operation, ctx)
  }
}

describe('deterministic failure of the application', () => {
  it.each(['huge', 'string', 'throw'])('a result that is %s becomes the same error result on every correct replica and the group goes on (was: every replica threw at the same batch)', (kind) => {
    const h = new Harness({ executor: () => new Hostile() })
    h.now = START
    const failed = h.commit('c0', kind)
    expect(Buffer.from(failed.result).toString()).toMatch(/^error: /)
    const next = h.commit('c0', 'still alive')
    expect(Buffer.from(next.result).toString()).not.toMatch(/^error/)
    expect(h.converged()).toBe(true)
  })
})

describe('bytes a peer can draw', () => {
  it('answers to one peer stay within its answer budget however often it sends a 51-byte STATUS (was: about 2 MB out per STATUS, unthrottled)', () => {
    const perSecond = 256 * 1024
    const h = new Harness({ config: { answerBytesPerSecond: perSecond, checkpointInterval: 64, logWindow: 128 } })
    h.now = START
    const big = 'x'.repeat(60_000)
    for (let i = 0; i < 20; i++) h.commit(`c${i % 4}`, `${big}${i}`)
    const status = encode({ t: 'status', view: 0, active: false, lastExecuted: 0, stable: 0 })
    let bytesIn = 0
    let bytesOut = 0
    // 1 000 STATUS frames within one second of the replica's clock.
    for (let i = 0; i < 1_000; i++) {
      bytesIn += status.length
      if (i % 100 === 0) h.tick(100)
      for (const f of h.inject('g/1', 'g/0', status)) bytesOut += f.bytes.length
    }
    expect(bytesIn).toBe(51_000)
    // One second's allowance, plus what accrues over that second, plus the one message that may
    // take the budget below zero (a pre-prepare of one 60 kB request).
    expect(bytesOut).toBeLessThanOrEqual(2 * perSecond + 64 * 1024)
    expect(bytesOut).toBeGreaterThan(0)
    expect(h.counter(0, 'dropped.answer-budget')).toBeGreaterThan(0)
  })
})

describe('fair service at the primary', () => {
  it('a member relaying thousands of open clients\' requests fills only its own line: a listed client\'s request goes out in the next batch', () => {
    const h = new Harness({ openClients: true, config: { maxQueuedPerSource: 64, maxBatchRequests: 16, pipelineDepth: 1 } })
    h.now = START
    // Hold every pre-prepare, so requests pile up at the primary.
    const release = h.hold((f) => f.message.t === 'pre-prepare')
    let refused = 0
    for (let i = 0; i < 200; i++) {
      const c = openClient(h, 10 + (i % 200))
      h.inject('g/3', 'g/0', { t: 'request', request: c.request(START * 1000 + i, `junk ${i}`) })
    }
    refused = h.counter(0, 'dropped.source-queue-full')
    // The first request went out at once (a batch of one, then the pipeline was full); 64 wait.
    expect(refused).toBe(200 - 1 - 64)
    h.invoke('c1', 'important')
    h.deliverAll()
    release()
    h.release()
    h.deliverAll()
    const bySeq = new Map<number, string[]>()
    for (const f of h.sentOf('pre-prepare')) {
      const pp = f.message as PrePrepare
      bySeq.set(pp.seq, pp.batch.requests.map((r) => r.client))
    }
    // One batch was in flight when c1's request came; the next one takes a request from each
    // line in turn, so c1's is in it, not behind the 64 relayed ones (4 batches of 16).
    const seqOfC1 = [...bySeq].find(([, clients]) => clients.includes('c1'))?.[0]
    expect(seqOfC1).toBe(2)
  })
})

describe('evidence of what a request costs', () => {
  it('every statement digest differs between groups and deployments (spot check of the request statement)', () => {
    const h = new Harness({ otherGroups: [{ name: 'other', f: 1 }] })
    const body = { client: 'c0', timestamp: 1, op: op('x'), readOnly: false }
    expect(hex(requestDigest(h.scope, body))).not.toBe(hex(requestDigest(scopeOf(h.cluster.membership, 'other'), body)))
    expect(hex(requestDigest(h.scope, body))).not.toBe(hex(requestDigest({ ...h.scope, deployment: sha256(new Uint8Array(1)) }, body)))
  })
})
