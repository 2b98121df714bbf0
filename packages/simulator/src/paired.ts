/**
 * One seed of a group scenario, and, for scenarios with adversaries that want it, the same seed
 * again without them (every Byzantine behaviour and Byzantine client taken out, every other draw
 * the same), then the checks that compare the two:
 *
 * - performance isolation: once the network is stable, the measured workload takes at most twice
 *   as long with the adversaries as without them, and its requests wait at most twice as long
 *   (plus one tick, the simulator's clock resolution);
 * - amplification: what the correct replicas send an adversary beyond what they send that member
 *   when it is honest stays within their answer budgets over the run plus a small multiple of
 *   what the adversary sent them (`AMPLIFICATION`).
 */
import { resolveConfig } from '@bftrc/core-agreement'
import type { Violation } from './checkers.js'
import { type GroupScenario, groupScenarioByName } from './groups/group-scenarios.js'
import { GroupSimulation, type GroupSimulationOptions, type GroupSimulationResult } from './groups/group-simulation.js'
import { UnknownScenarioError } from './run-errors.js'

/** Bytes an adversary may draw per byte it sends, beyond the answer budgets. */
export const AMPLIFICATION = 4
/** Performance isolation: at most this many times the time and latency without the adversaries. */
export const ISOLATION_FACTOR = 2

export interface SeedOutcome {
  readonly seed: number
  readonly result: GroupSimulationResult
  /** The same seed without adversaries, when the scenario pairs its runs. */
  readonly baseline: GroupSimulationResult | undefined
  /** Per adversary: the bytes the correct replicas sent that member in the run without adversaries (it was honest there). */
  readonly honestTraffic: Readonly<Record<string, { readonly to: number; readonly from: number }>>
  /** The run's own violations and those of the comparison. */
  readonly violations: readonly Violation[]
}

/** The same options with every adversary taken out. */
export function withoutAdversaries(o: GroupSimulationOptions): GroupSimulationOptions {
  return { ...o, groups: o.groups.map(({ byzantine: _b, ...g }) => g), byzantineClients: [] }
}

export function runGroupSeed(scenario: GroupScenario | string, seed: number, f: number, calls?: number): SeedOutcome {
  const s = typeof scenario === 'string' ? groupScenarioByName(scenario) : scenario
  if (s === undefined) throw new UnknownScenarioError(`unknown scenario ${scenario as string}`)
  const options = s.build({ seed, f, ...(calls !== undefined ? { calls } : {}) })
  const attacked = new GroupSimulation(options)
  const result = attacked.run()
  if (s.pairedBaseline !== true) return { seed, result, baseline: undefined, honestTraffic: {}, violations: result.violations }
  const quiet = new GroupSimulation(withoutAdversaries(options))
  const baseline = quiet.run()
  const violations = [...result.violations]
  for (const v of baseline.violations) violations.push({ ...v, detail: `without adversaries: ${v.detail}` })
  if (result.violations.length === 0 && baseline.violations.length === 0) {
    violations.push(...compare(options, result, baseline, attacked, quiet))
  }
  const honestTraffic = Object.fromEntries(Object.keys(result.adversaryTraffic).map((id) => [id, quiet.trafficWith(id)]))
  return { seed, result, baseline, honestTraffic, violations }
}

function compare(options: GroupSimulationOptions, r: GroupSimulationResult, b: GroupSimulationResult, attacked: GroupSimulation, quiet: GroupSimulation): Violation[] {
  const out: Violation[] = []
  const tick = options.tickInterval ?? 10
  const at = r.finalTime
  if (r.measured === undefined || b.measured === undefined) {
    out.push({ invariant: 'isolation', detail: `the measured workload did not run (${r.measured === undefined ? 'with' : 'without'} adversaries)`, at })
  } else {
    // A delay the scenario's adversaries may add by design, per sequential request of a measured
    // client and per ordering of a driver's calls (the call, then its reply).
    const delay = options.measure?.delayPerRequest ?? 0
    const sequential = Math.max(0, ...(options.clients ?? []).filter((c) => c.measured === true).map((c) => c.requests))
    const extraDuration = delay * (sequential + 2 * (options.measure?.driverCalls ?? 0))
    if (r.measured.durationMs > ISOLATION_FACTOR * b.measured.durationMs + 2 * tick + extraDuration) {
      out.push({ invariant: 'isolation', detail: `measured workload took ${r.measured.durationMs} ms with adversaries, ${b.measured.durationMs} ms without`, at })
    }
    if (r.measured.meanRequestLatency > ISOLATION_FACTOR * b.measured.meanRequestLatency + tick + delay) {
      out.push({ invariant: 'isolation', detail: `measured requests waited ${r.measured.meanRequestLatency.toFixed(1)} ms with adversaries, ${b.measured.meanRequestLatency.toFixed(1)} ms without`, at })
    }
  }
  const budget = resolveConfig(options.voterConfig?.core).answerBytesPerSecond
  const correct = attacked.nodes.filter((n) => n.correct).length
  // Answers come from two budgets per correct replica (its core replica's and its voter's).
  const allowance = 2 * budget * correct * (r.finalTime / 1000 + 1)
  for (const [id, t] of Object.entries(r.adversaryTraffic)) {
    const normal = quiet.trafficWith(id)
    const excess = t.to - normal.to
    if (excess > allowance + AMPLIFICATION * t.from) {
      out.push({ invariant: 'amplification', detail: `${id} drew ${t.to} bytes (${normal.to} when honest) for ${t.from} bytes sent; allowance ${Math.round(allowance)} + ${AMPLIFICATION}x`, at })
    }
  }
  return out
}
