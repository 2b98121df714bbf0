import { describe, expect, it } from 'vitest'
import { OrderingMonitor, REMINDERS_PER_CHECK, ROUND_FACTOR } from '../src/ordering-monitor.js'

const SLACK = 50
const CAP = 1_000
const always = () => true

describe('OrderingMonitor', () => {
  it('allows the cap before any round is measured, then slack plus ROUND_FACTOR smoothed rounds, never more than the cap', () => {
    const m = new OrderingMonitor(SLACK, CAP)
    expect(m.allowance()).toBe(CAP)
    m.sampleRound(10)
    expect(m.allowance()).toBe(SLACK + ROUND_FACTOR * 10)
    m.sampleRound(90) // smoothed: 10 + (90 - 10) / 8 = 20
    expect(m.smoothedRound()).toBe(20)
    expect(m.allowance()).toBe(SLACK + ROUND_FACTOR * 20)
    for (let i = 0; i < 200; i++) m.sampleRound(10_000)
    expect(m.allowance()).toBe(CAP)
  })

  it('ignores samples that are not finite non-negative numbers', () => {
    const m = new OrderingMonitor(SLACK, CAP)
    for (const bad of [Number.NaN, -1, Number.POSITIVE_INFINITY]) m.sampleRound(bad)
    expect(m.smoothedRound()).toBeUndefined()
  })

  it('reminds once halfway through the allowance, reports the entry late once a whole allowance has passed since the reminder', () => {
    const m = new OrderingMonitor(SLACK, CAP)
    m.sampleRound(0)
    m.watch('r:c0', 0)
    expect(m.check(SLACK / 2 - 1, true, always)).toEqual({ remind: [], late: undefined })
    expect(m.check(SLACK / 2, true, always)).toEqual({ remind: ['r:c0'], late: undefined })
    expect(m.check(SLACK, true, always)).toEqual({ remind: [], late: undefined })
    expect(m.check(SLACK / 2 + SLACK - 1, true, always)).toEqual({ remind: [], late: undefined })
    expect(m.check(SLACK / 2 + SLACK, true, always)).toEqual({ remind: [], late: 'r:c0' })
  })

  it('gives the primary a whole allowance after a late reminder (our own clock jumped: a paused process)', () => {
    const m = new OrderingMonitor(SLACK, CAP)
    m.sampleRound(0)
    m.watch('r:c0', 0)
    expect(m.check(10 * SLACK, true, always)).toEqual({ remind: ['r:c0'], late: undefined })
    expect(m.check(11 * SLACK - 1, true, always)).toEqual({ remind: [], late: undefined })
    expect(m.check(11 * SLACK, true, always)).toEqual({ remind: [], late: 'r:c0' })
  })

  it('restarts the clock after the reminder when the primary had no room meanwhile', () => {
    const m = new OrderingMonitor(SLACK, CAP)
    m.sampleRound(0)
    m.watch('r:c0', 0)
    expect(m.check(SLACK / 2, true, always).remind).toEqual(['r:c0'])
    expect(m.check(SLACK, false, always)).toEqual({ remind: [], late: undefined })
    expect(m.check(500, true, always)).toEqual({ remind: [], late: undefined })
    expect(m.check(500 + SLACK - 1, true, always)).toEqual({ remind: [], late: undefined })
    expect(m.check(500 + SLACK, true, always)).toEqual({ remind: [], late: 'r:c0' })
  })

  it('runs the clock only while the primary has room to order', () => {
    const m = new OrderingMonitor(SLACK, CAP)
    m.sampleRound(0)
    m.watch('r:c0', 0)
    // Busy from 10 to 500: the clock restarts when room comes back.
    expect(m.check(10, false, always).remind).toEqual([])
    expect(m.check(500, true, always).remind).toEqual([])
    expect(m.check(500 + SLACK / 2 - 1, true, always).remind).toEqual([])
    expect(m.check(500 + SLACK / 2, true, always).remind).toEqual(['r:c0'])
  })

  it('drops entries that no longer wait, and restarts the clock of a replaced one', () => {
    const m = new OrderingMonitor(SLACK, CAP)
    m.sampleRound(0)
    m.watch('r:c0', 0)
    m.watch('r:c1', 0)
    expect(m.check(SLACK / 2, true, (key) => key !== 'r:c0').remind).toEqual(['r:c1'])
    expect(m.size).toBe(1)
    m.watch('r:c1', SLACK / 2 + 10) // the client's next request
    expect(m.check(SLACK, true, always)).toEqual({ remind: [], late: undefined })
  })

  it('sends at most REMINDERS_PER_CHECK reminders per check; the rest follow at the next', () => {
    const m = new OrderingMonitor(SLACK, CAP)
    m.sampleRound(0)
    for (let i = 0; i < REMINDERS_PER_CHECK + 10; i++) m.watch(`r:c${i}`, 0)
    expect(m.check(SLACK / 2, true, always).remind).toHaveLength(REMINDERS_PER_CHECK)
    expect(m.check(SLACK / 2 + 1, true, always).remind).toHaveLength(10)
  })

  it('clear forgets every entry (a new view or role)', () => {
    const m = new OrderingMonitor(SLACK, CAP)
    m.watch('r:c0', 0)
    m.clear()
    expect(m.size).toBe(0)
    expect(m.check(CAP, true, always)).toEqual({ remind: [], late: undefined })
  })
})
