import { describe, expect, it } from 'vitest'
import { type PrePrepare, type Prepare, type ViewChange, digestOfBatch } from '../src/index.js'
import { type GroupContext, verifyViewChange } from '../src/proofs.js'
import { Craft } from './craft.js'
import { Harness, both, from, hex, is, not, to } from './harness.js'

const K = 4
const L = 8

describe('restart from storage', () => {
  it('keeps lastExecuted and the state digest, re-executing only above the stable checkpoint', () => {
    const h = new Harness({ config: { checkpointInterval: K, logWindow: L } })
    for (let i = 0; i < K + 2; i++) h.commit(`c${i % 4}`, `op-${i}`)
    const before = { status: h.replica('g/1').status(), digest: hex(h.replica('g/1').stateDigest()) }
    expect(before.status).toMatchObject({ lastExecuted: K + 2, stableCheckpoint: K })

    h.tick(200) // a committed flag waits for the next write, or a STATUS interval (150 ms) at most
    h.crash('g/1')
    const r = h.restart('g/1')
    expect(r.status()).toMatchObject({ lastExecuted: K + 2, stableCheckpoint: K, view: 0, active: true })
    expect(hex(r.stateDigest())).toBe(before.digest)
    // The new executor was restored from the checkpoint and ran the two committed batches above it, without replying again.
    expect(h.node('g/1').executor.calls).toBe(2)
    expect(h.queue.filter(is('reply'))).toEqual([])

    h.commit('c0', 'after restart')
    expect(h.converged()).toBe(true)
  })

  it('every replica restarted at once loses nothing acknowledged', () => {
    const h = new Harness({ config: { checkpointInterval: K, logWindow: L } })
    for (let i = 0; i < K + 3; i++) h.commit(`c${i % 4}`, `op-${i}`)
    const digest = hex(h.replica('g/0').stateDigest())
    // Killed right after the last reply: its committed flag was not written anywhere (it goes
    // with the next write or tick), but its prepared certificate and commit were.
    for (const id of h.ids) h.crash(id)
    h.queue = []
    for (const id of h.ids) h.restart(id)
    for (const id of h.ids) {
      expect(h.replica(id).status().lastExecuted).toBe(K + 2)
      expect(h.node(id).storage.loadSync()?.entries.find((e) => e.seq === K + 3)).toMatchObject({ prepared: true, committed: false })
    }
    // STATUS brings every replica the others' commits again; nobody changes view.
    h.runUntil(() => h.ids.every((id) => h.replica(id).status().lastExecuted === K + 3))
    for (const id of h.ids) expect(hex(h.replica(id).stateDigest())).toBe(digest)
    for (const id of h.ids) expect(h.events(id, 'view-change-started')).toEqual([])
    h.commit('c1', 'after everyone restarted')
    expect(h.replica('g/2').status().lastExecuted).toBe(K + 4)
    expect(h.converged()).toBe(true)
  })

  it('a restarted replica does not prepare a conflicting batch for a slot it already prepared', () => {
    const h = new Harness()
    const craft = new Craft(h)
    h.hold(is('commit'))
    h.invoke('c0', 'a')
    h.deliverAll()
    const pp = h.sentOf('pre-prepare')[0]!.message as PrePrepare
    const mine = h.sentOf('prepare', from('g/1'))[0]!.message as Prepare
    expect(h.node('g/1').storage.loadSync()?.entries.map((e) => [e.seq, e.view, e.prepared])).toEqual([[1, 0, true]])

    h.crash('g/1')
    h.restart('g/1')
    // A Byzantine primary now offers the restarted replica another batch for the same slot.
    const conflicting = craft.prePrepare(0, 1, craft.batch(pp.batch.stamp, craft.request('c1', 1)))
    const out = h.inject('g/0', 'g/1', conflicting)
    const prepares = out.filter(is('prepare')).map((f) => hex((f.message as Prepare).digest))
    expect(prepares).not.toContain(hex(digestOfBatch(h.scope, conflicting.batch)))
    expect(h.counter('g/1', 'dropped.equivocation')).toBe(1)
    expect(hex(mine.digest)).toBe(hex(digestOfBatch(h.scope, pp.batch)))
  })

  it('a restarted replica still helps a slot it accepted before the crash to prepare', () => {
    // g/1 accepted seq 1 and persisted it, but crashed before its prepare left. g/3 is silent,
    // so g/2 needs g/1's prepare: the restarted g/1 must (re)send the same prepare when asked.
    const h = new Harness()
    h.isolate('g/3')
    h.invoke('c0', 'a')
    h.deliverAll(not(is('prepare')))
    h.drop(both(is('prepare'), from('g/1')))
    h.crash('g/1')
    h.restart('g/1')
    h.runUntil(() => h.completed('c0').length === 1, 5_000)
    expect(h.completed('c0')[0]?.view).toBe(0)
    expect(h.events('g/2', 'view-change-started')).toEqual([])
  })

  it('a replica restarted during a view change waits for the NEW-VIEW and gets it through STATUS', () => {
    const h = new Harness()
    h.isolate('g/0')
    h.invoke('c0', 'a')
    h.deliverAll()
    h.tick(500)
    h.deliverAll()
    h.tick(1_000)
    h.deliverAll()
    expect(h.replica('g/2').status()).toMatchObject({ view: 1, active: true })
    h.crash('g/2')
    const r = h.restart('g/2')
    expect(r.status()).toMatchObject({ view: 1, active: false })
    h.runUntil(() => h.replica('g/2').status().active)
    expect(h.replica('g/2').status()).toMatchObject({ view: 1, active: true, lastExecuted: 1 })
    h.commit('c0', 'b')
    expect(h.replica('g/2').status().lastExecuted).toBe(2)
  })

  it('a slot re-issued in a later view keeps, on disk, the pre-prepare its older prepared certificate is for', () => {
    // g/2 prepares seq 1 in view 0; the commits are lost, so the slot does not commit there. In
    // view 1 the new primary g/1 re-issues it, and g/2 accepts the new pre-prepare but no prepares
    // of view 1 reach it: its newest certificate is still view 0's. Restarted then, it must send
    // a view change whose certificate checks out, or nobody would accept it.
    const h = new Harness()
    h.block(is('commit'))
    h.invoke('c0', 'a')
    h.deliverAll()
    h.isolate('g/0')
    h.block(both(is('prepare'), to('g/2')))
    h.runUntil(() => h.replica('g/2').status().view === 1 && h.replica('g/2').status().active, 10_000)
    const stored = h.node('g/2').storage.loadSync()?.entries.find((e) => e.seq === 1)
    expect(stored?.prePrepare.view).toBe(1)
    expect(stored?.preparedPrePrepare?.view).toBe(0)

    h.crash('g/2')
    h.restart('g/2')
    h.heal()
    h.isolate('g/1')
    const unblock = h.block(both(is('prepare'), to('g/2')))
    // Primary g/1 of view 1 is gone: a new request makes the others change view again.
    h.invoke('c1', 'b')
    h.runUntil(() => h.sentOf('view-change', from('g/2')).some((f) => (f.message as ViewChange).view >= 2), 20_000)
    const ctx = (h.replica('g/0') as unknown as { ctx: GroupContext }).ctx
    for (const f of h.sentOf('view-change', from('g/2'))) {
      const vc = f.message as ViewChange
      expect(vc.prepared.map((p) => p.prePrepare.seq)).toEqual([1])
      expect(verifyViewChange(ctx, vc, 2)).toBe(true)
    }
    unblock()
    h.runUntil(() => h.completed('c1').length === 1 && h.replica('g/2').status().lastExecuted === 2, 20_000)
  })

  it('a restarted replica asks for what it missed at its first tick: a restarted primary orders again within a round trip', () => {
    const h = new Harness()
    h.isolate('g/0')
    h.invoke('c0', 'a')
    h.runUntil(() => h.completed('c0').length === 1)
    expect(h.replica('g/1').status()).toMatchObject({ view: 1, active: true, primary: 1 })
    h.tick(1_000) // well past a STATUS interval: the restart, not the heartbeat, sends the STATUS
    h.deliverAll()
    h.crash('g/1')
    const r = h.restart('g/1')
    expect(r.status()).toMatchObject({ view: 1, active: false })
    const statusBefore = h.sentOf('status', from('g/1')).length
    h.tick(1)
    expect(h.sentOf('status', from('g/1')).length).toBeGreaterThan(statusBefore)
    h.deliverAll()
    expect(h.replica('g/1').status()).toMatchObject({ view: 1, active: true })
    h.invoke('c0', 'b') // c0 knows view 1 from its first reply
    h.deliverAll()
    expect(h.completed('c0').length).toBe(2)
  })

  it('a primary restarted in its own view keeps the slots it assigned after the NEW-VIEW (never re-assigns them)', () => {
    const h = new Harness()
    h.isolate('g/0')
    h.invoke('c0', 'a')
    h.runUntil(() => h.completed('c0').length === 1)
    expect(h.replica('g/1').status()).toMatchObject({ view: 1, active: true, primary: 1 })
    // g/1 assigns seq 2 in view 1 (after its NEW-VIEW); nothing of it gets further than g/1.
    const cut = h.block(from('g/1'))
    h.invoke('c1', 'b')
    h.tick(500)
    h.deliverAll()
    const first = h.sentOf('pre-prepare', from('g/1')).map((f) => f.message as PrePrepare).find((pp) => pp.view === 1 && pp.seq === 2)
    expect(first).toBeDefined()
    h.crash('g/1')
    h.restart('g/1')
    cut()
    // Back in view 1 through its own NEW-VIEW (peers resend it on STATUS), another request comes.
    h.runUntil(() => h.replica('g/1').status().active)
    h.invoke('c2', 'c')
    h.run(3_000)
    for (const f of h.sentOf('pre-prepare', from('g/1'))) {
      const pp = f.message as PrePrepare
      if (pp.view === 1 && pp.seq === 2) expect(hex(digestOfBatch(h.scope, pp.batch))).toBe(hex(digestOfBatch(h.scope, (first as PrePrepare).batch)))
    }
    h.runUntil(() => h.completed('c1').length === 1 && h.completed('c2').length === 1, 10_000)
  })

  it('a replica that lost its disk starts from genesis and catches up by state transfer', () => {
    const h = new Harness({ config: { checkpointInterval: K, logWindow: L } })
    for (let i = 0; i < 3 * K + 1; i++) h.commit(`c${i % 4}`, `op-${i}`)
    h.crash('g/3', true)
    h.queue = h.queue.filter(not(to('g/3')))
    const r = h.restart('g/3')
    expect(r.status()).toMatchObject({ lastExecuted: 0, stableCheckpoint: 0 })
    h.runUntil(() => h.replica('g/3').status().lastExecuted === 3 * K + 1 && h.converged())
    expect(h.events('g/3', 'state-transferred')).toEqual([{ kind: 'state-transferred', seq: 3 * K }])
  })
})
