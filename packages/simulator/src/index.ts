/**
 * @packageDocumentation
 * Deterministic simulation of bftrc groups: a virtual clock, a seeded network that drops,
 * duplicates, delays, reorders and partitions, crashes and restarts, Byzantine behaviours and
 * Twins, and invariant checkers on every step. One seed replays one run exactly.
 */
export { Simulation, type SimulationOptions, type SimulationResult, type ScheduledAction, GROUP } from './simulation.js'
export { SCENARIOS, scenarioByName, type Scenario, type ScenarioParams } from './scenarios.js'
export { runCampaign, runGroupCampaign, type CampaignOptions, type CampaignReport, type GroupCampaignReport, UnknownScenarioError } from './run.js'
export { GroupSimulation, type GroupSimulationOptions, type GroupSimulationResult, type GroupSpec } from './groups/group-simulation.js'
export { GROUP_SCENARIOS, groupScenarioByName, type GroupScenario } from './groups/group-scenarios.js'
export { DriverApp, RegisterApp, RelayApp, type DriverMode } from './groups/apps.js'
export { wrongReply, forgeShares, floodShares } from './groups/share-adversary.js'
export { Checkers, type Violation } from './checkers.js'
export { SimNetwork, type NetworkFaults, PERFECT } from './network.js'
export { EventQueue } from './event-queue.js'
export { Prng } from '@bftrc/adversary'
export { ChainExecutor } from './test-executor.js'
export { type Behaviour, type Frame, type AdversaryContext, BEHAVIOURS, behaviourByName, silent, equivocate, wrongResult, forge, inflateView, replay, garbage, flood } from './adversary.js'
