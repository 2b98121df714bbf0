import { describe, expect, it } from 'vitest'
import { Simulation, scenarioByName } from '../src/index.js'
import { campaign, failures } from './helpers.js'

/**
 * Messages for one unbatched request in a group of n: PBFT's (request, pre-prepares, prepares,
 * commits, replies), except that the client sends the request to every replica rather than to the
 * primary alone (so the backups can tell a slow primary; see core-agreement's OrderingMonitor).
 */
function messagesPerRequest(f: number): number {
  const n = 3 * f + 1
  return n + (n - 1) + (n - 1) * (n - 1) + n * (n - 1) + n
}

describe('failure-free normal case (basic)', () => {
  it('completes a request in 5 message delays with 32 messages for n = 4 (PBFT\'s 29, the request sent to every replica)', () => {
    const r = campaign('basic', 3)
    expect(failures(r)).toBe('')
    expect(r.completedRequests).toBe(r.expectedRequests)
    expect(r.delaysPerRequest).toBe(5)
    expect(r.messagesPerRequest).toBe(32)
    expect(r.messagesByTypePerRequest).toEqual({ request: 4, 'pre-prepare': 3, prepare: 9, commit: 12, reply: 4 })
  })

  it.each([2, 3, 4, 6, 10])('keeps 5 delays and the message count for f = %i', (f) => {
    const sim = new Simulation((scenarioByName('basic') as NonNullable<ReturnType<typeof scenarioByName>>).build({ seed: 7, f, requests: 3 }))
    const r = sim.run()
    expect(r.violations).toEqual([])
    expect(r.meanLatency).toBe(5)
    expect(r.messages / r.completedRequests).toBe(messagesPerRequest(f))
  })

  it('batches concurrent requests while earlier batches are in flight', () => {
    const r = campaign('batching', 3)
    expect(failures(r)).toBe('')
    expect(r.completedRequests).toBe(r.expectedRequests)
    // Fewer pre-prepares than requests: several requests share a batch.
    expect(r.messagesByTypePerRequest['pre-prepare']).toBeLessThan(3)
    expect(r.messagesPerRequest).toBeLessThan(32)
  })
})

describe('determinism', () => {
  it('replays a seed exactly', () => {
    const build = () => new Simulation((scenarioByName('lossy') as NonNullable<ReturnType<typeof scenarioByName>>).build({ seed: 42, f: 1 })).run()
    const a = build()
    const b = build()
    expect(b.messages).toBe(a.messages)
    expect(b.finalTime).toBe(a.finalTime)
    expect(b.messagesByType).toEqual(a.messagesByType)
    expect(b.meanLatency).toBe(a.meanLatency)
  })

  it('gives different runs for different seeds', () => {
    const s = scenarioByName('lossy') as NonNullable<ReturnType<typeof scenarioByName>>
    const a = new Simulation(s.build({ seed: 1, f: 1 })).run()
    const b = new Simulation(s.build({ seed: 2, f: 1 })).run()
    expect(a.messages === b.messages && a.finalTime === b.finalTime).toBe(false)
  })
})
