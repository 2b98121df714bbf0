import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type Batch, type Commit, type NewView, type PrePrepare, type ViewChange, digestOfBatch, selectNewView } from '../src/index.js'
import { Craft } from './craft.js'
import { Harness, both, from, hex, is, not, to } from './harness.js'

const T = 1_000 // default viewChangeTimeout
const RETRANSMIT = 500 // default client retransmitTimeout
/** The ordering allowance before any prepare round was measured (see OrderingMonitor). */
const FIRST_ALLOWANCE = T
/** Tests of the view-change timer itself: an ordering allowance that never acts before it. */
const NO_MONITOR = { orderingSlack: 10 * T }

/** The client's request waits; it retransmits to all after its timeout. */
function retransmitted(h: Harness): void {
  h.deliverAll()
  h.tick(RETRANSMIT)
  h.deliverAll()
}

describe('view change', () => {
  it('a silent primary: the backups, which saw the request too, remind it halfway through their allowance, then the primary of view 1 takes over', () => {
    const h = new Harness()
    h.isolate('g/0')
    const ts = h.invoke('c0', 'put x 1')
    h.deliverAll()
    for (const id of ['g/1', 'g/2', 'g/3']) expect(h.replica(id).status()).toMatchObject({ view: 0, active: true, pending: 1 })

    h.tick(FIRST_ALLOWANCE / 2 - 1)
    h.deliverAll()
    expect(h.counter('g/1', 'ordering.reminded')).toBe(0)
    h.tick(1)
    h.deliverAll()
    for (const id of ['g/1', 'g/2', 'g/3']) expect(h.counter(id, 'ordering.reminded')).toBe(1)
    h.tick(FIRST_ALLOWANCE / 2 - 1)
    h.deliverAll()
    expect(h.sentOf('view-change')).toHaveLength(0)
    h.tick(1)
    for (const id of ['g/1', 'g/2', 'g/3']) expect(h.events(id, 'view-change-started')).toEqual([{ kind: 'view-change-started', view: 1 }])
    h.deliverAll()

    for (const id of ['g/1', 'g/2', 'g/3']) {
      expect(h.events(id, 'new-view')).toEqual([{ kind: 'new-view', view: 1, primary: 1 }])
      expect(h.replica(id).status()).toMatchObject({ view: 1, active: true, primary: 1, lastExecuted: 1, pending: 0 })
    }
    expect(h.sentOf('new-view').every((f) => f.from === 'g/1')).toBe(true)
    const [done] = h.completed('c0')
    expect(done).toMatchObject({ timestamp: ts, view: 1 })
    expect(h.client('c0').currentView()).toBe(1)
    h.invoke('c0', 'put x 2')
    h.deliverAll()
    expect(h.completed('c0')).toHaveLength(2)
  })

  it('a batch prepared in view 0 is re-issued in view 1 with the same digest, and executes once', () => {
    const h = new Harness()
    h.hold(both(is('commit'), (f) => (f.message as Commit).view === 0))
    h.invoke('c0', 'put x 1')
    h.deliverAll()
    const pp0 = h.sentOf('pre-prepare')[0]!.message as PrePrepare
    for (const id of h.ids) expect(h.replica(id).status().lastExecuted).toBe(0)

    h.isolate('g/0')
    h.tick(RETRANSMIT)
    h.deliverAll()
    h.tick(T)
    h.deliverAll()

    const nv = h.sentOf('new-view')[0]!.message as NewView
    expect(nv.view).toBe(1)
    expect(nv.prePrepares.map((pp) => [pp.view, pp.seq, hex(digestOfBatch(h.scope, pp.batch))])).toEqual([[1, 1, hex(digestOfBatch(h.scope, pp0.batch))]])
    expect(nv.viewChanges.every(({ viewChange }) => viewChange.prepared.some((p) => p.prePrepare.seq === 1))).toBe(true)
    for (const id of ['g/1', 'g/2', 'g/3']) {
      expect(h.node(id).executed.map((b) => [b.seq, b.view, hex(b.digest)])).toEqual([[1, 1, hex(digestOfBatch(h.scope, pp0.batch))]])
      expect(h.node(id).executor.calls).toBe(1)
    }
    expect(h.completed('c0')).toHaveLength(1)
    // The old view's commits, arriving late, change nothing.
    h.heal()
    h.release()
    h.deliverAll(not(to('g/0')))
    for (const id of ['g/1', 'g/2', 'g/3']) expect(h.node(id).executor.calls).toBe(1)
  })

  it('f+1 view changes for a higher view pull a replica along; f do not', () => {
    const h = new Harness()
    const craft = new Craft(h)
    h.inject('g/1', 'g/3', craft.viewChange(1, 'g/1'))
    expect(h.replica('g/3').status()).toMatchObject({ view: 0, active: true })
    const out = h.inject('g/2', 'g/3', craft.viewChange(1, 'g/2'))
    expect(h.replica('g/3').status()).toMatchObject({ view: 1, active: false })
    expect(out.filter(is('view-change')).map((f) => f.to)).toEqual(['g/0', 'g/1', 'g/2'])
    expect(h.events('g/3', 'view-change-started')).toEqual([{ kind: 'view-change-started', view: 1 }])
  })

  it('f+1 view changes for different higher views move a replica to the smallest of them', () => {
    const h = new Harness()
    const craft = new Craft(h)
    h.inject('g/1', 'g/3', craft.viewChange(7, 'g/1'))
    h.inject('g/2', 'g/3', craft.viewChange(3, 'g/2'))
    expect(h.replica('g/3').status()).toMatchObject({ view: 3, active: false })
  })

  it('inflated view numbers from one Byzantine replica move nobody', () => {
    const h = new Harness()
    const craft = new Craft(h)
    for (const target of ['g/0', 'g/2', 'g/3']) {
      h.inject('g/1', target, craft.viewChange(1_000_000, 'g/1'))
      h.inject('g/1', target, { t: 'status', view: 1_000_000, active: false, lastExecuted: 1_000_000, stable: 1_000_000 })
      h.inject('g/1', target, craft.newView(1_000_000, [[1, craft.viewChange(1_000_000, 'g/1')]], []))
      expect(h.counter(target, 'dropped.bad-new-view')).toBe(1)
    }
    h.drop()
    h.run(3 * T)
    for (const id of h.ids) expect(h.replica(id).status()).toMatchObject({ view: 0, active: true })
    h.commit('c0', 'still works')
    expect(h.completed('c0')[0]?.view).toBe(0)
  })

  it('the view-change timeout doubles while no new view forms, up to maxViewChangeTimeout', () => {
    const base = 100
    const h = new Harness({ config: { viewChangeTimeout: base, maxViewChangeTimeout: 8 * base } })
    const craft = new Craft(h)
    // The primary is silent; the backups hear a client's retransmitted request, but no NEW-VIEW ever arrives.
    h.isolate('g/0')
    h.block(is('new-view'))
    for (const id of ['g/1', 'g/2', 'g/3']) h.inject('c0', id, { t: 'request', request: craft.request('c0', 1) })
    const armedAt = h.now
    const starts: number[] = []
    while (h.now - armedAt < 40 * base) {
      h.tick(10)
      h.deliverAll()
      const seen = h.events('g/3', 'view-change-started').length
      while (starts.length < seen) starts.push(h.now - armedAt)
    }
    const gaps = starts.map((t, i) => t - (starts[i - 1] ?? 0))
    expect(gaps.slice(0, 8)).toEqual([base, base, 2 * base, 4 * base, 8 * base, 8 * base, 8 * base, 8 * base])
    for (const id of ['g/1', 'g/2', 'g/3']) expect(h.replica(id).status().view).toBe(starts.length)
  })

  it('a replica alone in a view change waits there: its timer starts only once 2f+1 replicas joined', () => {
    const h = new Harness({ config: { viewChangeTimeout: 100 } })
    const craft = new Craft(h)
    // g/3 is cut off from its peers but hears a client's retransmitted request: it suspects the primary alone.
    const heal = h.block((f) => f.from === 'g/3' || f.to === 'g/3')
    h.inject('c0', 'g/3', { t: 'request', request: craft.request('c0', 1) })
    h.run(5_000)
    expect(h.events('g/3', 'view-change-started')).toEqual([{ kind: 'view-change-started', view: 1 }])
    expect(h.replica('g/3').status()).toMatchObject({ view: 1, active: false })
    // Back in touch, it still executes what the group orders in view 0 (learning), and when the
    // others change view it is already there.
    heal()
    h.isolate('g/0')
    h.invoke('c1', 'after the heal')
    h.run(5_000)
    for (const id of ['g/1', 'g/2', 'g/3']) expect(h.replica(id).status()).toMatchObject({ view: 1, active: true })
    expect(h.completed('c1')).toHaveLength(1)
  })

  it('batches accepted in a view that never execute arm the timer, the primary\'s included', () => {
    const h = new Harness()
    // Every prepare is lost: nobody's batch prepares, and no client retransmits to the backups.
    h.block(is('prepare'))
    h.invoke('c0', 'stuck')
    h.deliverAll()
    // Ordered, so nothing is late for the backups' ordering watch: this is the timer's case.
    for (const id of h.ids) expect(h.replica(id).status()).toMatchObject({ lastExecuted: 0 })
    h.run(T - 10)
    for (const id of h.ids) expect(h.events(id, 'view-change-started')).toEqual([])
    h.run(110)
    for (const id of h.ids) expect(h.events(id, 'view-change-started')).toEqual([{ kind: 'view-change-started', view: 1 }])
  })

  it('STATUS from a peer that executed a slot we still wait for gets our votes for it (it may have to vote again)', () => {
    const h = new Harness()
    h.block(both(is('commit'), to('g/2')))
    h.invoke('c0', 'a')
    h.deliverAll()
    expect(h.replica('g/1').status().lastExecuted).toBe(1)
    expect(h.replica('g/2').status().lastExecuted).toBe(0)
    // g/1 executed seq 1 already; g/2 waits for it. After a NEW-VIEW re-issues such a slot, g/1
    // must vote on it again and may lack g/2's prepare: g/2 resends its votes, not only above 1.
    const out = h.inject('g/1', 'g/2', { t: 'status', view: 0, active: true, lastExecuted: 1, stable: 0 })
    expect(out.filter(both(is('prepare'), to('g/1'))).map((f) => (f.message as { seq: number }).seq)).toEqual([1])
    expect(out.filter(both(is('commit'), to('g/1'))).map((f) => (f.message as { seq: number }).seq)).toEqual([1])
  })

  it('after a view change makes progress, the next one waits the base timeout again', () => {
    const h = new Harness({ config: NO_MONITOR })
    h.isolate('g/0')
    h.invoke('c0', 'a')
    retransmitted(h)
    h.tick(T)
    h.deliverAll()
    expect(h.completed('c0')).toHaveLength(1)
    // Now the primary of view 1 falls silent too (f = 1 is exceeded only in time, not at once: g/0 is back).
    h.heal()
    h.isolate('g/1')
    h.invoke('c0', 'b')
    h.deliverAll()
    // Armed (when the backups saw the request) at the base timeout again, not at 2T, where the
    // last view change left it.
    h.run(T - 10)
    expect(h.events('g/2', 'view-change-started').map((e) => e.view)).toEqual([1])
    h.run(10)
    expect(h.events('g/2', 'view-change-started').map((e) => e.view)).toEqual([1, 2])
    h.runUntil(() => h.completed('c0').length === 2)
    expect(h.completed('c0')[1]?.view).toBe(2)
  })

  it('a replica that missed the NEW-VIEW gets it again through STATUS', () => {
    const h = new Harness()
    h.isolate('g/0')
    h.invoke('c0', 'a')
    retransmitted(h)
    h.tick(T)
    h.drop(both(is('new-view'), to('g/3')))
    h.block(both(is('new-view'), to('g/3'), (f) => f.from === 'g/1'))
    h.deliverAll()
    expect(h.replica('g/3').status()).toMatchObject({ view: 1, active: false })
    h.heal()
    h.isolate('g/0')
    h.runUntil(() => h.replica('g/3').status().active)
    expect(h.replica('g/3').status()).toMatchObject({ view: 1, active: true, lastExecuted: 1 })
  })

  it('a replica that changed view alone learns what the others commit, without voting', () => {
    const h = new Harness()
    const craft = new Craft(h)
    // g/3 alone hears a request that never reaches the primary (its relay is lost too).
    h.block(both(is('request'), to('g/0')))
    h.inject('c0', 'g/3', { t: 'request', request: craft.request('c0', 1) })
    h.tick(T)
    h.drop()
    expect(h.replica('g/3').status()).toMatchObject({ view: 1, active: false })
    h.heal()
    h.block(both(is('view-change'), from('g/3')))
    for (let i = 0; i < 3; i++) h.commit('c1', `op-${i}`)
    expect(h.replica('g/0').status()).toMatchObject({ view: 0, lastExecuted: 3 })
    expect(h.replica('g/3').status()).toMatchObject({ view: 1, active: false, lastExecuted: 3 })
    expect(h.counter('g/3', 'learned-commit')).toBe(3)
    expect(h.sentOf('prepare', from('g/3'))).toEqual([])
    expect(h.sentOf('commit', from('g/3'))).toEqual([])
    expect(hex(h.replica('g/3').stateDigest())).toBe(hex(h.replica('g/0').stateDigest()))
  })

  it('an equivocating primary is caught and replaced, and nothing conflicting executes', () => {
    const h = new Harness()
    const craft = new Craft(h)
    h.hold(is('prepare'))
    h.invoke('c0', 'a')
    h.deliverAll()
    const a = h.sentOf('pre-prepare')[0]!.message as PrePrepare
    const b = craft.prePrepare(0, 1, craft.batch(a.batch.stamp, craft.request('c1', 1)))
    // The Byzantine primary shows g/1 a second pre-prepare for seq 1.
    h.inject('g/0', 'g/1', b)
    expect(h.counter('g/1', 'dropped.equivocation')).toBe(1)
    h.held = []
    h.heal()
    h.isolate('g/0')
    h.deliverAll()
    for (const id of ['g/1', 'g/2', 'g/3']) {
      expect(h.counter(id, 'dropped.equivocation')).toBeGreaterThanOrEqual(1)
      expect(h.replica(id).status()).toMatchObject({ view: 1, active: true })
    }
    h.runUntil(() => h.completed('c0').length === 1)
    const orders = ['g/1', 'g/2', 'g/3'].map((id) => h.node(id).executed.map((x) => `${x.seq}:${hex(x.digest)}`).join())
    expect(new Set(orders).size).toBe(1)
  })

  it('a Byzantine view change with a forged certificate does not spoil a correct primary’s NEW-VIEW', () => {
    // Seq 1 prepared at g/1 only. g/3 (Byzantine) claims it prepared too, with garbage for
    // prepares. g/1, the next primary, must not vouch for that claim in its NEW-VIEW: g/0 and g/2,
    // who did not prepare seq 1, would check the certificate and refuse the whole NEW-VIEW.
    const h = new Harness()
    const craft = new Craft(h)
    h.isolate('g/3')
    h.block(is('status'))
    h.invoke('c0', 'a')
    h.deliverAll(not(is('prepare', 'commit')))
    h.deliverAll(both(is('prepare'), to('g/1')))
    h.drop(is('prepare', 'commit'))
    const pp = h.sentOf('pre-prepare')[0]!.message as PrePrepare
    const other = craft.prePrepare(0, 2, craft.batch(pp.batch.stamp, craft.request('c1', 1)))
    const forged: ViewChange = craft.viewChange(1, 'g/3', {
      prepared: [{ prePrepare: pp, prepares: { ...craft.preparedProof(pp, [1, 2]).prepares, shares: craft.preparedProof(other, [1, 2]).prepares.shares } }],
    })
    // The client retransmits; g/0 has it in flight, g/1 and g/2 relay it and arm their timers.
    h.tick(RETRANSMIT)
    h.deliverAll(not(is('prepare', 'commit')))
    h.drop(is('prepare', 'commit'))
    h.tick(T)
    h.inject('g/3', 'g/1', forged)
    h.deliverAll()
    for (const id of ['g/0', 'g/2']) expect(h.counter(id, 'dropped.bad-new-view')).toBe(0)
    for (const id of ['g/0', 'g/1', 'g/2']) expect(h.replica(id).status()).toMatchObject({ view: 1, active: true })
    h.heal()
    h.isolate('g/3')
    h.runUntil(() => h.completed('c0').length === 1)
    expect(h.completed('c0')[0]?.view).toBe(1)
  })
})

describe('selectNewView', () => {
  const fakeSig = new Uint8Array(64)
  const fakeDigest = new Uint8Array(32)
  const batchOf = (seq: number, view: number, variant: number): Batch => ({ stamp: seq * 1_000_000 + view * 1_000 + variant, requests: [] })
  const ppOf = (view: number, seq: number, batch: Batch): PrePrepare => ({ t: 'pre-prepare', view, seq, batch, signature: fakeSig })

  /**
   * A history: per slot, either a batch committed in view `v` (so prepared at a set Q of 2f+1
   * replicas in view v, perhaps again in later views) or not; any replica outside Q may hold a
   * certificate from a lower view for another batch (what a faulty primary could have caused).
   */
  const history = fc
    .record({ f: fc.integer({ min: 1, max: 3 }), slots: fc.integer({ min: 1, max: 8 }), seed: fc.integer() })
    .chain(({ f, slots }) => {
      const n = 3 * f + 1
      const slot = fc.record({
        committed: fc.boolean(),
        view: fc.integer({ min: 0, max: 6 }),
        quorum: fc.shuffledSubarray([...Array(n).keys()], { minLength: 2 * f + 1, maxLength: 2 * f + 1 }),
        // Per replica: 0 nothing, 1 same batch in a later view, 2 another batch in a lower view.
        others: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: n, maxLength: n }),
        later: fc.integer({ min: 1, max: 3 }),
      })
      return fc.record({
        f: fc.constant(f),
        n: fc.constant(n),
        stables: fc.array(fc.constantFrom(0, 2, 4), { minLength: n, maxLength: n }),
        slots: fc.array(slot, { minLength: slots, maxLength: slots }),
        chosen: fc.shuffledSubarray([...Array(n).keys()], { minLength: 2 * f + 1, maxLength: n }),
      })
    })

  it('chooses every batch committed in an earlier view, whichever 2f+1 view changes it gets', () => {
    fc.assert(
      fc.property(history, ({ n, stables, slots, chosen }) => {
        const newView = 20
        const prepared: Array<Array<{ prePrepare: PrePrepare; prepares: { group: string; digest: Uint8Array; shares: [] } }>> = Array.from({ length: n }, () => [])
        slots.forEach((s, i) => {
          const seq = i + 1
          const committedBatch = batchOf(seq, s.view, 0)
          for (let r = 0; r < n; r++) {
            if (seq <= (stables[r] as number)) continue
            let pp: PrePrepare | undefined
            if (s.committed && s.quorum.includes(r)) {
              pp = ppOf(s.others[r] === 1 ? s.view + s.later : s.view, seq, committedBatch)
            } else if (s.others[r] === 2 && (!s.committed || s.view > 0)) {
              const v = s.committed ? s.view - 1 : s.view
              pp = ppOf(v, seq, batchOf(seq, v, 1 + r))
            } else if (s.others[r] === 1 && s.committed) {
              // Outside Q, a replica may still have prepared the committed batch in a later view.
              pp = ppOf(s.view + s.later, seq, committedBatch)
            }
            if (pp !== undefined) prepared[r]?.push({ prePrepare: pp, prepares: { group: 'g', digest: fakeDigest, shares: [] } })
          }
        })
        const vcs: ViewChange[] = chosen.map((r) => ({
          t: 'view-change',
          view: newView,
          stable: { seq: stables[r] as number, digest: fakeDigest },
          prepared: prepared[r] ?? [],
          signature: fakeSig,
        }))
        const plan = selectNewView(vcs)
        const maxStable = Math.max(...chosen.map((r) => stables[r] as number))
        expect(plan.stable.seq).toBe(maxStable)
        // Contiguous from the checkpoint up, nulls in the gaps.
        expect(plan.batches.map((b) => b.seq)).toEqual(plan.batches.map((_, i) => maxStable + 1 + i))
        slots.forEach((s, i) => {
          const seq = i + 1
          if (!s.committed || seq <= maxStable) return
          const got = plan.batches.find((b) => b.seq === seq)
          expect(got?.batch.stamp, `seq ${seq}`).toBe(batchOf(seq, s.view, 0).stamp)
        })
        // Nothing is invented: every non-null batch was reported by some chosen view change.
        const reported = new Set(vcs.flatMap((vc) => vc.prepared.map((p) => p.prePrepare.batch.stamp)))
        for (const b of plan.batches) if (b.batch.requests.length > 0 || b.batch.stamp !== 0) expect(reported.has(b.batch.stamp)).toBe(true)
      }),
      { numRuns: 500, seed: 20240601 },
    )
  })

  it('is deterministic: the same view changes in any order give the same plan', () => {
    const pp = (view: number, seq: number, variant: number) => ({ prePrepare: ppOf(view, seq, batchOf(seq, view, variant)), prepares: { group: 'g', digest: fakeDigest, shares: [] } })
    const vcs: ViewChange[] = [
      { t: 'view-change', view: 3, stable: { seq: 0, digest: fakeDigest }, prepared: [pp(0, 1, 1), pp(2, 3, 1)], signature: fakeSig },
      { t: 'view-change', view: 3, stable: { seq: 0, digest: fakeDigest }, prepared: [pp(1, 1, 2)], signature: fakeSig },
      { t: 'view-change', view: 3, stable: { seq: 0, digest: fakeDigest }, prepared: [], signature: fakeSig },
    ]
    const key = (vs: ViewChange[]) =>
      selectNewView(vs)
        .batches.map((b) => `${b.seq}:${b.batch.stamp}`)
        .join()
    expect(key(vcs)).toBe('1:1001002,2:0,3:3002001')
    expect(key([...vcs].reverse())).toBe(key(vcs))
    expect(key([vcs[1]!, vcs[2]!, vcs[0]!])).toBe(key(vcs))
  })
})
