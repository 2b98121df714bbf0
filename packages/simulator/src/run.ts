/** Runs a scenario over a range of seeds and sums up what the CLI and tests report. */
import { groupScenarioByName } from './groups/group-scenarios.js'
import { type Scenario, scenarioByName } from './scenarios.js'
import { Simulation, type SimulationResult } from './simulation.js'
import type { Violation } from './checkers.js'
import { type SeedOutcome, runGroupSeed } from './paired.js'
import { UnknownScenarioError } from './run-errors.js'

export interface CampaignOptions {
  readonly scenario: string
  readonly seeds: number
  readonly firstSeed?: number
  readonly f?: number
  readonly requests?: number
  /** Called after each run (progress display). */
  readonly onRun?: (r: SimulationResult) => void
  /** Called after each seed of a group scenario (both runs of a paired one). */
  readonly onGroupRun?: (outcome: SeedOutcome) => void
}

export interface CampaignReport {
  readonly scenario: string
  readonly f: number
  readonly runs: number
  readonly firstSeed: number
  readonly violations: ReadonlyArray<Violation & { readonly seed: number }>
  readonly failingSeeds: readonly number[]
  readonly completedRequests: number
  readonly expectedRequests: number
  /** Messages sent per completed request, all types, averaged over runs. */
  readonly messagesPerRequest: number
  /** Mean request latency in message delays (one delay = 1 virtual ms; exact in `basic`). */
  readonly delaysPerRequest: number
  readonly messagesByTypePerRequest: Readonly<Record<string, number>>
  readonly viewChanges: number
  /** Mean delays from the first view change until the first request executed in a later view. */
  readonly viewChangeDelays: number | undefined
  readonly stateTransfers: number
  readonly expectViolations: boolean
  readonly maxSizes: Readonly<Record<string, number>>
  /** Heap samples of the last run (MiB, one per virtual second), for long runs. */
  readonly heapSamplesMiB: readonly number[]
}

export { UnknownScenarioError }

export function runCampaign(o: CampaignOptions): CampaignReport {
  const scenario: Scenario | undefined = scenarioByName(o.scenario)
  if (scenario === undefined) throw new UnknownScenarioError(`unknown scenario ${o.scenario}`)
  const f = o.f ?? 1
  const firstSeed = o.firstSeed ?? 1
  const violations: Array<Violation & { seed: number }> = []
  const failing: number[] = []
  let completed = 0
  let expected = 0
  let mpr = 0
  let latency = 0
  let vcs = 0
  let transfers = 0
  const vcLatencies: number[] = []
  const byType = new Map<string, number>()
  const maxSizes = new Map<string, number>()
  let heap: readonly number[] = []
  for (let i = 0; i < o.seeds; i++) {
    const seed = firstSeed + i
    const r = new Simulation(scenario.build({ seed, f, ...(o.requests !== undefined ? { requests: o.requests } : {}) })).run()
    o.onRun?.(r)
    if (r.violations.length > 0) failing.push(seed)
    for (const v of r.violations) violations.push({ ...v, seed })
    completed += r.completedRequests
    expected += r.expectedRequests
    mpr += r.completedRequests > 0 ? r.messages / r.completedRequests : 0
    latency += r.meanLatency
    vcs += r.viewChanges
    transfers += r.stateTransfers
    heap = r.heapSamplesMiB
    for (const [k, v] of Object.entries(r.maxSizes)) if (v > (maxSizes.get(k) ?? 0)) maxSizes.set(k, v)
    if (r.viewChangeLatency !== undefined) vcLatencies.push(r.viewChangeLatency)
    for (const [t, c] of Object.entries(r.messagesByType)) byType.set(t, (byType.get(t) ?? 0) + (r.completedRequests > 0 ? c / r.completedRequests : 0))
  }
  const runs = o.seeds
  const round = (x: number) => Math.round(x * 100) / 100
  return {
    scenario: scenario.name,
    f,
    runs,
    firstSeed,
    violations,
    failingSeeds: failing,
    completedRequests: completed,
    expectedRequests: expected,
    messagesPerRequest: round(mpr / Math.max(1, runs)),
    delaysPerRequest: round(latency / Math.max(1, runs)),
    messagesByTypePerRequest: Object.fromEntries([...byType].sort().map(([t, c]) => [t, round(c / Math.max(1, runs))])),
    viewChanges: vcs,
    viewChangeDelays: vcLatencies.length === 0 ? undefined : round(vcLatencies.reduce((a, b) => a + b, 0) / vcLatencies.length),
    stateTransfers: transfers,
    expectViolations: scenario.expectViolations === true,
    maxSizes: Object.fromEntries(maxSizes),
    heapSamplesMiB: heap,
  }
}

export interface GroupCampaignReport {
  readonly scenario: string
  readonly f: number
  readonly runs: number
  readonly firstSeed: number
  readonly violations: ReadonlyArray<Violation & { readonly seed: number }>
  readonly failingSeeds: readonly number[]
  readonly completedCalls: number
  readonly expectedCalls: number
  /** All frames per completed call (both groups' agreement plus the shares). */
  readonly messagesPerCall: number
  /** Request shares plus reply shares per completed call. */
  readonly interGroupMessagesPerCall: number
  /** Mean call latency in message delays (one delay = 1 virtual ms; exact in replicated-basic). */
  readonly delaysPerCall: number
  readonly messagesByTypePerCall: Readonly<Record<string, number>>
  readonly viewChanges: number
  readonly stateTransfers: number
  /** The plain-client CLBFT baseline (`basic`) with the same f, run alongside. */
  readonly baseline: { readonly messagesPerRequest: number; readonly delaysPerRequest: number }
  readonly ratios: { readonly messages: number; readonly delays: number }
}

export function runGroupCampaign(o: CampaignOptions): GroupCampaignReport {
  const scenario = groupScenarioByName(o.scenario)
  if (scenario === undefined) throw new UnknownScenarioError(`unknown scenario ${o.scenario}`)
  const f = o.f ?? 1
  const firstSeed = o.firstSeed ?? 1
  const violations: Array<Violation & { seed: number }> = []
  const failing: number[] = []
  let calls = 0
  let expected = 0
  let mpc = 0
  let ig = 0
  let latency = 0
  let vcs = 0
  let transfers = 0
  const byType = new Map<string, number>()
  for (let i = 0; i < o.seeds; i++) {
    const seed = firstSeed + i
    const outcome = runGroupSeed(scenario, seed, f, o.requests)
    const r = outcome.result
    o.onGroupRun?.(outcome)
    if (outcome.violations.length > 0) failing.push(seed)
    for (const v of outcome.violations) violations.push({ ...v, seed })
    calls += r.calls
    expected += r.expectedCalls
    const per = (x: number) => (r.calls > 0 ? x / r.calls : 0)
    mpc += per(r.messages)
    ig += per(r.interGroupMessages)
    latency += r.meanCallLatency
    vcs += r.viewChanges
    transfers += r.stateTransfers
    for (const [t, c] of Object.entries(r.messagesByType)) byType.set(t, (byType.get(t) ?? 0) + per(c))
  }
  const runs = Math.max(1, o.seeds)
  const round = (x: number) => Math.round(x * 100) / 100
  const baseline = runCampaign({ scenario: 'basic', seeds: 1, f, firstSeed, requests: 10 })
  const messagesPerCall = round(mpc / runs)
  const delaysPerCall = round(latency / runs)
  return {
    scenario: scenario.name,
    f,
    runs: o.seeds,
    firstSeed,
    violations,
    failingSeeds: failing,
    completedCalls: calls,
    expectedCalls: expected,
    messagesPerCall,
    interGroupMessagesPerCall: round(ig / runs),
    delaysPerCall,
    messagesByTypePerCall: Object.fromEntries([...byType].sort().map(([t, c]) => [t, round(c / runs)])),
    viewChanges: vcs,
    stateTransfers: transfers,
    baseline: { messagesPerRequest: baseline.messagesPerRequest, delaysPerRequest: baseline.delaysPerRequest },
    ratios: { messages: round(messagesPerCall / baseline.messagesPerRequest), delays: round(delaysPerCall / baseline.delaysPerRequest) },
  }
}
