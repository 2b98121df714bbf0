import { describe, expect, it } from 'vitest'
import { DEFAULT_CONFIG, type ProposalValidator } from '../src/index.js'
import { EVENTS, Harness, both, from, is, not, to } from './harness.js'

/**
 * A primary that is merely slow (Aardvark's attack) orders everything, only late. The harness
 * delivers instantly, so the measured prepare round is 0 and the ordering allowance is the slack.
 */
const SLACK = DEFAULT_CONFIG.orderingSlack
const BACKUPS = ['g/1', 'g/2', 'g/3']

/** A harness whose backups have measured a prepare round (one request went through). */
function warmed(options: ConstructorParameters<typeof Harness>[0] = {}): Harness {
  const h = new Harness(options)
  h.commit('c3', 'warm-up')
  return h
}

function viewChanges(h: Harness): number[] {
  return BACKUPS.flatMap((id) => h.events(id, 'view-change-started').map((e) => e.view))
}

describe('a slow primary', () => {
  it('holding its pre-prepares past the allowance loses its view; the request completes in view 1', () => {
    const h = warmed()
    h.hold(both(is('pre-prepare'), from('g/0')))
    h.invoke('c0', 'late')
    h.deliverAll()
    h.run(SLACK / 2 - 10)
    for (const id of BACKUPS) expect(h.counter(id, 'ordering.reminded')).toBe(0)
    h.run(10)
    // Half the allowance: the backups hand the request to the primary themselves (it may have lost it).
    for (const id of BACKUPS) expect(h.counter(id, 'ordering.reminded')).toBe(1)
    // From then on the primary has it for sure, and gets a whole allowance more.
    h.run(SLACK - 20)
    expect(viewChanges(h)).toEqual([])
    h.run(20)
    for (const id of BACKUPS) {
      expect(h.events(id, 'faulty-primary')).toEqual([{ kind: 'faulty-primary', view: 0, reason: 'slow primary' }])
      expect(h.counter(id, 'ordering.slow-primary')).toBe(1)
    }
    h.runUntil(() => h.completed('c0').length === 1, 5_000)
    expect(h.completed('c0')[0]?.view).toBe(1)
    // The whole delay was one and a half allowances and a view change, not a view-change timeout after a
    // client's retransmission timeout.
    expect(h.now).toBeLessThan(DEFAULT_CONFIG.viewChangeTimeout)
  })

  it('ordering within the allowance keeps its view', () => {
    const h = warmed()
    h.hold(both(is('pre-prepare'), from('g/0')))
    for (let i = 0; i < 20; i++) {
      h.invoke('c0', `op-${i}`)
      h.run(SLACK - 20)
      h.release()
      h.deliverAll()
      expect(h.completed('c0')).toHaveLength(i + 1)
    }
    expect(viewChanges(h)).toEqual([])
    for (const id of BACKUPS) expect(h.counter(id, 'ordering.reminded')).toBe(0)
  })

  it('a busy primary is not a slow one: while its pipeline is full, nothing is late', () => {
    const clients = ['c0', 'c1', 'c2', 'c3', 'c4']
    const h = new Harness({ clients: [...clients, 'c5'] })
    h.commit('c5', 'warm-up')
    // Nothing executes while commits are held: after pipelineDepth batches the primary waits,
    // and the fifth request with it.
    h.hold(is('commit'))
    for (const c of clients) {
      h.invoke(c, `busy-${c}`)
      h.deliverAll()
    }
    const depth = DEFAULT_CONFIG.pipelineDepth
    expect(h.sentOf('pre-prepare', from('g/0')).length).toBe(3 * (1 + depth)) // warm-up + a full pipeline
    h.run(3 * SLACK)
    for (const id of BACKUPS) expect(h.counter(id, 'ordering.reminded')).toBe(0)
    expect(viewChanges(h)).toEqual([])
    h.heal()
    h.release()
    h.runUntil(() => clients.every((c) => h.completed(c).length === 1), 2_000)
    expect(viewChanges(h)).toEqual([])
  })

  it('a primary that lost the client\'s copy gets it from the backups\' reminder, and keeps its view', () => {
    const h = warmed()
    h.block(both(is('request'), from('c0'), to('g/0')))
    const start = h.now
    h.invoke('c0', 'lost on the way')
    h.runUntil(() => h.completed('c0').length === 1, 1_000)
    expect(h.completed('c0')[0]?.view).toBe(0)
    // Well before the client's own retransmission.
    expect(h.now - start).toBeLessThanOrEqual(SLACK / 2 + 10)
    expect(h.client('c0').counters.get('retransmit')).toBeUndefined()
    expect(viewChanges(h)).toEqual([])
  })

  it('a backup that lacks a pre-prepare of the view does not judge the primary (it would not know what it orders)', () => {
    const h = warmed()
    h.hold(both(is('pre-prepare'), to('g/3')))
    h.invoke('c0', 'g/3 misses the pre-prepare')
    h.run(3 * SLACK)
    // The others prepared and committed; g/3 sees their votes for a slot it has no pre-prepare of.
    expect(h.completed('c0')).toHaveLength(1)
    expect(h.counter('g/3', 'ordering.slow-primary')).toBe(0)
    expect(h.events('g/3', 'view-change-started')).toEqual([])
  })

  it('watches the events it proposed like requests, but not rate-limited ones (the primary may hold a tick back)', () => {
    const ticks: ProposalValidator = { validate: (p) => EVENTS.validate(p), minInterval: (key) => (key.startsWith('event:tick') ? 200 : undefined) }
    const h = warmed({ proposals: ticks })
    h.hold(both(is('pre-prepare'), from('g/0')))
    for (const id of BACKUPS) h.propose(id, 'event:tick')
    h.run(3 * SLACK)
    expect(viewChanges(h)).toEqual([])
    for (const id of BACKUPS) h.propose(id, 'event:call-7')
    h.run(SLACK / 2 + SLACK + 20)
    for (const id of BACKUPS) expect(h.events(id, 'faulty-primary').map((e) => e.reason)).toEqual(['slow primary'])
  })

  it('one backup alone cannot move the group: the others join only at f+1', () => {
    const h = warmed()
    // The primary is slow towards g/3 alone; g/1 and g/2 see it on time.
    h.hold(both(is('pre-prepare'), from('g/0'), to('g/3')))
    h.hold(both(is('prepare'), to('g/3')))
    h.hold(both(is('commit'), to('g/3')))
    h.invoke('c0', 'slow to one')
    h.run(SLACK / 2 + SLACK + 20)
    expect(h.events('g/3', 'faulty-primary').map((e) => e.reason)).toEqual(['slow primary'])
    for (const id of ['g/1', 'g/2']) expect(h.events(id, 'view-change-started')).toEqual([])
    expect(h.completed('c0')).toHaveLength(1)
  })

  it('a replica whose next slot waits behind a later committed one asks within an allowance, not a STATUS interval', () => {
    // A faulty peer can spoil one replica's slot (a commit with another digest reaches it first),
    // and a group running on a bare quorum then waits for that replica. Found by byzantine-fuzz
    // seeds 33, 135, 180 and 259: a STATUS interval (150 ms) of stall inside the measured workload.
    const h = warmed()
    const start = h.now
    const lastStatus = () => Math.max(-1, ...h.sentOf('status', from('g/3')).map((f) => f.n))
    const unblock = h.block(both(is('commit'), to('g/3'), not(from('g/0'))))
    h.invoke('c0', 'spoiled at g/3')
    h.deliverAll()
    unblock()
    h.invoke('c1', 'next')
    h.deliverAll()
    const r3 = h.replica('g/3')
    const before = r3.status().lastExecuted
    expect(h.replica('g/1').status().lastExecuted).toBe(before + 2)
    expect(r3.status().unexecutedSlots).toBe(2)
    const statusBefore = lastStatus()
    h.runUntil(() => r3.status().lastExecuted === before + 2, 1_000)
    expect(lastStatus()).toBeGreaterThan(statusBefore)
    // It asked once the allowance had passed (with the round measured as 0 here, the slack),
    // well before a STATUS interval would have come round.
    expect(h.now - start).toBeGreaterThanOrEqual(SLACK)
    expect(h.now - start).toBeLessThan(DEFAULT_CONFIG.statusInterval)
  })
})
