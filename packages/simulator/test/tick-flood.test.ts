/**
 * A member that proposes timer ticks without end (ticks need no certificate, so they cost it
 * nothing) must not crowd certified calls out of the order.
 */
import { encodeEvent } from '@bftrc/client-agreement'
import { encodeMessage } from '@bftrc/core-agreement'
import { describe, expect, it } from 'vitest'
import { type Behaviour, GroupSimulation, groupScenarioByName } from '../src/index.js'

/** With each STATUS and COMMIT it would send, proposes 2 000 ticks with ever new `at` values to every replica of its group. */
function tickFlood(): Behaviour {
  let at = 1
  return {
    name: 'tick-flood',
    outbound(ctx) {
      const frames = [{ to: ctx.to, bytes: ctx.bytes }]
      if (ctx.message?.t === 'status' || ctx.message?.t === 'commit') {
        for (let i = 0; i < 2_000; i++) frames.push({ to: ctx.to, bytes: encodeMessage({ t: 'proposal', payload: encodeEvent({ e: 'tick', at: at++ }) }), type: 'tick-flood' } as never)
      }
      return frames
    },
  }
}

describe('a member flooding the order with tick proposals', () => {
  it.each([1, 2, 3])('does not keep certified calls from being ordered, nor fill the primary\'s queue (was: 20 000 ticks filled it, refused calls were never proposed again) (seed %i)', (seed) => {
    const base = (groupScenarioByName('replicated-pipelined') as NonNullable<ReturnType<typeof groupScenarioByName>>).build({ seed, f: 1, calls: 40 })
    const groups = base.groups.map((g) => (g.name === 'server' ? { ...g, byzantine: new Map([[3, tickFlood()]]) } : g))
    const sim = new GroupSimulation({ ...base, groups })
    const r = sim.run()
    expect(r.violations).toEqual([])
    expect(r.calls).toBe(r.expectedCalls)
    for (const n of sim.nodes.filter((x) => x.group === 'server' && x.correct)) {
      const counters = n.voter?.replica.counters
      expect(counters?.get('dropped.queue-full') ?? 0, n.id).toBe(0)
    }
    const primary = sim.nodes.find((x) => x.id === 'server/0')?.voter?.replica
    // One key for every tick: the flood is one proposal waiting or in flight, the rest dropped.
    const dropped = (primary?.counters.get('dropped.proposal-rate') ?? 0) + (primary?.counters.get('dropped.duplicate-proposal') ?? 0)
    expect(dropped).toBeGreaterThan(10_000)
    expect(primary?.sizes().proposalQueue ?? 0).toBeLessThanOrEqual(1)
  })
})
