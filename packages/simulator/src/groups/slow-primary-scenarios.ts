/**
 * A primary that is merely slow (Aardvark's attack): correct in every respect but timing, it
 * sends each pre-prepare a fixed delay late, drawn by the seed from far below to far above what
 * the backups allow (see core-agreement's OrderingMonitor). The backups must replace a primary
 * slower than their ordering allowance, and a slower-than-honest one that stays below it may cost
 * each request at most that allowance: the campaign runs each seed again with an honest primary
 * and compares (performance isolation, with the allowance added per request).
 */
import { Prng } from '@bftrc/adversary'
import { ROUND_FACTOR } from '@bftrc/core-agreement'
import { slowPrimary } from '../adversary.js'
import type { NetworkFaults } from '../network.js'
import { DriverApp, RegisterApp } from './apps.js'
import type { GroupScenario, GroupScenarioParams } from './group-scenarios.js'
import type { GroupSimulationOptions, PlainClientSpec } from './group-simulation.js'

/** Hops of 1-3 ms and 1 % loss (the backups' reminders cover a client's copy the primary lost). */
const NETWORK: NetworkFaults = { dropRate: 0.01, duplicateRate: 0, minDelay: 1, maxDelay: 3 }
/** The fixed part of the ordering allowance in these scenarios (see ReplicaConfig.orderingSlack). */
const SLACK = 10
/**
 * The most a primary below the allowance can add to a request: one and a half allowances (half
 * until the backups' reminder, a whole one after it), with a prepare round of at most two hops
 * (the others' pre-prepare, then their prepare), and one tick (the backups look at their clocks
 * on ticks).
 */
export const DELAY_PER_REQUEST = Math.ceil(1.5 * (SLACK + ROUND_FACTOR * 2 * NETWORK.maxDelay)) + 10
/** From well within the allowance to far beyond it (the view-change timeout is 1 s). */
const DELAYS = [2, 5, 10, 20, 30, 45, 60, 100, 300, 1_000, 3_000]
const CONFIG = { core: { orderingSlack: SLACK } }
/** The primaries turn slow when the safety phase ends, as the measured workload begins. */
const SAFETY = 1_000
const SLOW_FROM = SAFETY

function clientsOf(group: string, prefix: string, requests: number, measured = 4): PlainClientSpec[] {
  return [
    // Traffic from the start, so the backups have measured their prepare round before the
    // measured workload (a cold backup allows a whole view-change timeout).
    ...[0, 1].map((i) => ({ id: `${prefix}c${i}`, group, requests })),
    ...Array.from({ length: measured }, (_, i) => ({ id: `${prefix}m${i}`, group, requests: 4 * requests, measured: true })),
  ]
}

export const SLOW_PRIMARY_SCENARIOS: readonly GroupScenario[] = [
  {
    name: 'slow-primary',
    description: 'one group whose primary sends every pre-prepare late by a delay the seed draws (2 ms to 3 s): replaced beyond the ordering allowance, costing at most that allowance per request below it',
    pairedBaseline: true,
    build: (p: GroupScenarioParams): GroupSimulationOptions => {
      const prng = new Prng(p.seed ^ 0x510e)
      const delay = prng.pick(DELAYS)
      const requests = p.calls ?? 10
      return {
        seed: p.seed,
        groups: [{ name: 'kv', f: p.f, app: () => new RegisterApp(), byzantine: new Map([[0, slowPrimary(delay, SLOW_FROM)]]) }],
        drivers: [],
        clients: clientsOf('kv', '', requests),
        measure: { driverCalls: 0, delayPerRequest: DELAY_PER_REQUEST },
        faults: NETWORK,
        safetyDuration: SAFETY,
        // Nothing happens then, but the safety phase (and the warm-up traffic) lasts until the
        // primaries turn slow; the measured workload starts right after.
        schedule: [{ at: SLOW_FROM, run: () => {} }],
        livenessTimeout: 60_000,
        voterConfig: CONFIG,
      }
    },
  },
  {
    name: 'replicated-slow-primary',
    description: 'a caller and a callee group whose primaries both order late by delays the seed draws, under calls and plain clients of both groups (the backups see a call only after a call timeout; client requests at once)',
    pairedBaseline: true,
    build: (p: GroupScenarioParams): GroupSimulationOptions => {
      const prng = new Prng(p.seed ^ 0x510f)
      const callerDelay = prng.pick(DELAYS)
      const calleeDelay = prng.pick(DELAYS)
      const calls = p.calls ?? 8
      return {
        seed: p.seed,
        groups: [
          { name: 'client', f: p.f, app: () => new DriverApp('server', calls, 'sync'), byzantine: new Map([[0, slowPrimary(callerDelay, SLOW_FROM)]]) },
          { name: 'server', f: p.f, app: () => new RegisterApp(), byzantine: new Map([[0, slowPrimary(calleeDelay, SLOW_FROM)]]) },
        ],
        drivers: ['client'],
        // A measured client of the caller group also starts its extra calls (see measure).
        clients: [...clientsOf('server', 's', 4), ...clientsOf('client', 'd', 2, 1)],
        measure: { driverCalls: 2 * calls, delayPerRequest: DELAY_PER_REQUEST },
        faults: NETWORK,
        safetyDuration: SAFETY,
        // Nothing happens then, but the safety phase (and the warm-up traffic) lasts until the
        // primaries turn slow; the measured workload starts right after.
        schedule: [{ at: SLOW_FROM, run: () => {} }],
        livenessTimeout: 120_000,
        voterConfig: CONFIG,
      }
    },
  },
]
