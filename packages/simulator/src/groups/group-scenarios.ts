/**
 * Multi-group scenarios: replicated clients calling replicated servers. Names contain
 * `replicated`; `--f` sets f of every group.
 */
import { BEHAVIOURS, type Behaviour, behaviourByName, equivocate, silent } from '../adversary.js'
import type { NetworkFaults } from '../network.js'
import { Prng } from '@bftrc/adversary'
import { type AppVersion, type UpgradeRequest, encodeEvent, signUpgrade } from '@bftrc/client-agreement'
import { encodeMessage } from '@bftrc/core-agreement'
import { type KeyPair, sha256 } from '@bftrc/crypto'
import { DriverApp, DriverAppV2, type DriverMode, RegisterApp, RelayApp } from './apps.js'
import type { GroupSimulation, GroupSimulationOptions, GroupSpec } from './group-simulation.js'
import { FUZZ_SCENARIOS } from './fuzz-scenarios.js'
import { SLOW_PRIMARY_SCENARIOS } from './slow-primary-scenarios.js'
import { floodShares, forgeShares, withholdReplies, wrongReply } from './share-adversary.js'

export interface GroupScenarioParams {
  readonly seed: number
  readonly f: number
  readonly calls?: number
}

export interface GroupScenario {
  readonly name: string
  readonly description: string
  /**
   * The campaign also runs each seed without its adversaries (Byzantine behaviours and clients
   * taken out, everything else the same) and bounds the difference: the measured workload's
   * time and latency (performance isolation) and the bytes the adversaries drew (amplification).
   */
  readonly pairedBaseline?: boolean
  build(p: GroupScenarioParams): GroupSimulationOptions
}

const UNIT: NetworkFaults = { dropRate: 0, duplicateRate: 0, minDelay: 1, maxDelay: 1 }
const JITTER: NetworkFaults = { dropRate: 0, duplicateRate: 0, minDelay: 1, maxDelay: 5 }
const MILD: NetworkFaults = { dropRate: 0.01, duplicateRate: 0.01, minDelay: 1, maxDelay: 10 }
const LOSSY: NetworkFaults = { dropRate: 0.05, duplicateRate: 0.05, minDelay: 1, maxDelay: 30 }
const SMALL_LOG = { core: { checkpointInterval: 4, logWindow: 8 } }

function n(f: number): number {
  return 3 * f + 1
}

function pickFaulty(seed: number, f: number, salt: number): number[] {
  const prng = new Prng(seed ^ salt)
  const out: number[] = []
  while (out.length < f) {
    const i = prng.int(0, n(f) - 1)
    if (!out.includes(i)) out.push(i)
  }
  return out
}

function twoGroups(p: GroupScenarioParams, mode: DriverMode, over: Partial<GroupSimulationOptions> = {}, client: Partial<GroupSpec> = {}, server: Partial<GroupSpec> = {}): GroupSimulationOptions {
  const calls = p.calls ?? 10
  return {
    seed: p.seed,
    groups: [
      { name: 'client', f: p.f, app: () => new DriverApp('server', calls, mode), ...client },
      { name: 'server', f: p.f, app: () => new RegisterApp(), ...server },
    ],
    drivers: ['client'],
    faults: JITTER,
    safetyDuration: 3_000,
    livenessTimeout: 120_000,
    ...over,
  }
}

function mixed(seed: number, f: number, salt: number, pool: readonly Behaviour[]): Map<number, Behaviour> {
  const prng = new Prng(seed ^ salt ^ 0x77)
  return new Map(pickFaulty(seed, f, salt).map((i) => [i, prng.pick(pool)]))
}

const CORE_POOL = (): Behaviour[] => BEHAVIOURS.map((b) => behaviourByName(b))

const CALL_SCENARIOS: readonly GroupScenario[] = [
  {
    name: 'replicated-basic',
    description: 'failure-free: a replicated client group makes sequential async calls to a server group, every hop one delay unit',
    build: (p) => twoGroups(p, 'async', { faults: UNIT, safetyDuration: 0 }),
  },
  {
    name: 'replicated-sync',
    description: 'a workflow invokes the server synchronously (generator workflow, with sleeps), mildly lossy network',
    build: (p) => twoGroups(p, 'sync', { faults: MILD }),
  },
  {
    name: 'replicated-pipelined',
    description: 'the client keeps 8 async calls in flight (admission window), jittery network',
    build: (p) => twoGroups({ ...p, calls: p.calls ?? 40 }, 'pipelined'),
  },
  {
    name: 'replicated-timers',
    description: 'calls paced by the client group\'s timers (agreed time, tick events)',
    build: (p) => twoGroups(p, 'timer', { faults: MILD }),
  },
  {
    name: 'replicated-lossy',
    description: '5% drops, 5% duplicates, delays 1-30 ms for 8 s between and inside both groups',
    build: (p) => twoGroups(p, 'async', { faults: LOSSY, safetyDuration: 8_000 }),
  },
  {
    name: 'replicated-nested',
    description: 'three groups: the client calls a relay that answers only after its own call to a backend (deferred replies)',
    build: (p) => {
      const calls = p.calls ?? 8
      return {
        seed: p.seed,
        groups: [
          { name: 'client', f: p.f, app: () => new DriverApp('relay', calls, 'async') },
          { name: 'relay', f: p.f, app: () => new RelayApp('backend') },
          { name: 'backend', f: p.f, app: () => new RegisterApp() },
        ],
        drivers: ['client'],
        faults: MILD,
        safetyDuration: 3_000,
        livenessTimeout: 120_000,
      }
    },
  },
  {
    name: 'replicated-byzantine-client',
    description: 'f replicas of the client group misbehave (core behaviours and forged or flooded shares)',
    build: (p) => twoGroups(p, 'async', { faults: MILD }, { byzantine: mixed(p.seed, p.f, 1, [...CORE_POOL(), forgeShares, floodShares]) }),
  },
  {
    name: 'replicated-byzantine-server',
    description: 'f replicas of the server group misbehave (core behaviours and wrong reply shares)',
    build: (p) => twoGroups(p, 'async', { faults: MILD }, {}, { byzantine: mixed(p.seed, p.f, 2, [...CORE_POOL(), wrongReply]) }),
  },
  {
    name: 'replicated-withheld-replies',
    description: 'pipelined calls while a server replica withholds its reply shares: the calls it should answer in full wait for the retransmission, the others complete; the withheld ones must still be answerable',
    // A window of 4 (8 calls in flight at the app) makes the span of call numbers the limit.
    build: (p) => twoGroups({ ...p, calls: p.calls ?? 60 }, 'pipelined', { faults: JITTER, voterConfig: { callWindow: 4 } }, {}, { byzantine: new Map(pickFaulty(p.seed, p.f, 5).map((i) => [i, withholdReplies])) }),
  },
  {
    name: 'replicated-byzantine-both',
    description: 'f Byzantine replicas in each group at once, primaries included in some seeds',
    build: (p) =>
      twoGroups(p, 'sync', { faults: MILD }, { byzantine: mixed(p.seed, p.f, 3, [...CORE_POOL(), forgeShares]) }, { byzantine: mixed(p.seed, p.f, 4, [...CORE_POOL(), wrongReply]) }),
  },
  {
    name: 'replicated-primaries',
    description: 'both groups\' primaries are faulty: the client\'s is silent, the server\'s equivocates',
    build: (p) => twoGroups(p, 'async', { faults: JITTER }, { byzantine: new Map([[0, silent]]) }, { byzantine: new Map([[0, equivocate]]) }),
  },
  {
    name: 'replicated-restart',
    description: 'replicas of both groups crash and restart from disk, one loses its disk; checkpoints every 4',
    build: (p) =>
      twoGroups({ ...p, calls: p.calls ?? 20 }, 'async', {
        faults: MILD,
        voterConfig: SMALL_LOG,
        safetyDuration: 6_000,
        schedule: [
          { at: 100, run: (s: GroupSimulation) => s.crash('client/1') },
          { at: 400, run: (s: GroupSimulation) => s.restart('client/1') },
          { at: 600, run: (s: GroupSimulation) => s.crash('server/2', true) },
          { at: 1_200, run: (s: GroupSimulation) => s.restart('server/2') },
          { at: 1_400, run: (s: GroupSimulation) => s.crash('server/0') },
          { at: 2_000, run: (s: GroupSimulation) => s.restart('server/0') },
        ],
      }),
  },
  {
    name: 'replicated-isolation-client',
    description: 'fault isolation: a second client group with more than f faulty replicas floods and forges; the server and the healthy client are unaffected',
    build: (p) => {
      const calls = p.calls ?? 10
      const bad = new Map<number, Behaviour>(Array.from({ length: p.f + 1 }, (_, i) => [i, i % 2 === 0 ? floodShares : forgeShares]))
      return {
        seed: p.seed,
        groups: [
          { name: 'client', f: p.f, app: () => new DriverApp('server', calls, 'async') },
          { name: 'rogue', f: p.f, app: () => new DriverApp('server', calls * 3, 'pipelined', 32), byzantine: bad, overFaulty: true },
          { name: 'server', f: p.f, app: () => new RegisterApp() },
        ],
        drivers: ['client'],
        faults: MILD,
        safetyDuration: 3_000,
        livenessTimeout: 120_000,
      }
    },
  },
  {
    name: 'replicated-isolation-server',
    description: 'fault isolation: more than f server replicas collude on wrong results; the client group may accept a wrong result but never diverges',
    build: (p) =>
      twoGroups(
        p,
        'async',
        { faults: MILD, expectLiveness: false, safetyDuration: 4_000, livenessTimeout: 4_000 },
        {},
        { byzantine: new Map(Array.from({ length: p.f + 1 }, (_, i) => [i + 1, wrongReply])), overFaulty: true },
      ),
  },
]

// ---------------------------------------------------------------- upgrades

const V2_DIGEST = sha256(new TextEncoder().encode('driver-v2 code bundle'))

function driverV2(target: string, calls: number, mode: DriverMode): AppVersion {
  return { version: '2', codeDigest: V2_DIGEST, create: () => new DriverAppV2(target, calls, mode), migrate: DriverAppV2.migrate }
}

/** An upgrade request for the client group to version 2, signed by `signers` of the authority keys. */
function upgradeRequest(sim: GroupSimulation, over: Partial<Omit<UpgradeRequest, 'signatures'>> = {}, signers = [0, 2]): UpgradeRequest {
  const body = { group: 'client', version: '2', codeDigest: V2_DIGEST, allowDowngrade: false, ...over }
  return { ...body, signatures: signers.map((i) => signUpgrade(sim.cluster.membership, body, i, sim.cluster.keys.get(`authority/${i}`) as KeyPair)) }
}

/** A Byzantine replica that keeps proposing an upgrade of its own making (signed by itself only). */
const bogusUpgrade: Behaviour = {
  name: 'bogus-upgrade',
  outbound(ctx) {
    const frames = [{ to: ctx.to, bytes: ctx.bytes }]
    if (ctx.message?.t === 'status' || ctx.message?.t === 'prepare') {
      const body = { group: ctx.group, version: '666', codeDigest: new Uint8Array(32).fill(6), allowDowngrade: true }
      const request = { ...body, signatures: [{ authority: 0, signature: signUpgrade(ctx.scope, body, 0, ctx.key).signature }] }
      frames.push({ to: ctx.to, bytes: encodeMessage({ t: 'proposal', payload: encodeEvent({ e: 'upgrade', request }) }) })
    }
    return frames
  },
}

export const UPGRADE_SCENARIOS: readonly GroupScenario[] = [
  {
    name: 'replicated-upgrade',
    description: 'the client group is upgraded to version 2 under load, with a workflow suspended in a call: every replica switches at one point',
    build: (p) => {
      const calls = p.calls ?? 16
      return twoGroups(
        { ...p, calls },
        'sync',
        { faults: MILD, expectVersions: { client: '2' }, schedule: [{ at: 120, run: (s) => s.submitUpgrade('client', upgradeRequest(s)) }] },
        { versions: () => [driverV2('server', calls, 'sync')] },
      )
    },
  },
  {
    name: 'replicated-upgrade-missing-code',
    description: 'one client replica lacks version 2: it halts at the upgrade, the group runs on, and once the code is installed it catches up by state transfer',
    build: (p) => {
      const calls = p.calls ?? 24
      const lacking = n(p.f) - 1
      return twoGroups(
        { ...p, calls },
        'async',
        {
          faults: MILD,
          voterConfig: SMALL_LOG,
          safetyDuration: 4_000,
          expectVersions: { client: '2' },
          schedule: [
            { at: 100, run: (s) => s.submitUpgrade('client', upgradeRequest(s)) },
            { at: 1_500, run: (s) => s.installVersion(`client/${lacking}`, driverV2('server', calls, 'async')) },
          ],
        },
        { versions: (i) => (i === lacking ? [] : [driverV2('server', calls, 'async')]) },
      )
    },
  },
  {
    name: 'replicated-upgrade-invalid',
    description: 'invalid upgrade requests (too few or forged signatures, other group, unknown version, wrong digest, downgrade, replay) and a Byzantine replica proposing its own version change nothing',
    build: (p) => {
      const calls = p.calls ?? 12
      return twoGroups(
        { ...p, calls },
        'async',
        {
          faults: MILD,
          expectVersions: { client: '2' },
          expectRefusedUpgrades: 7,
          schedule: [
            { at: 50, run: (s) => s.submitUpgrade('client', upgradeRequest(s, {}, [1])) },
            { at: 60, run: (s) => s.submitUpgrade('client', { ...upgradeRequest(s), signatures: upgradeRequest(s).signatures.map((x) => ({ ...x, signature: new Uint8Array(64) })) }) },
            { at: 70, run: (s) => s.submitUpgrade('client', upgradeRequest(s, { group: 'server' })) },
            { at: 80, run: (s) => s.submitUpgrade('client', upgradeRequest(s, { version: '3' })) },
            { at: 90, run: (s) => s.submitUpgrade('client', upgradeRequest(s, { codeDigest: new Uint8Array(32).fill(9) })) },
            { at: 100, run: (s) => s.submitUpgrade('client', upgradeRequest(s, { version: '0' })) },
            { at: 150, run: (s) => s.submitUpgrade('client', upgradeRequest(s)) },
            { at: 900, run: (s) => s.submitUpgrade('client', upgradeRequest(s)) },
          ],
        },
        { versions: () => [driverV2('server', calls, 'async')], byzantine: new Map([[n(p.f) - 1, bogusUpgrade]]) },
      )
    },
  },
]

export const GROUP_SCENARIOS: readonly GroupScenario[] = [...CALL_SCENARIOS, ...UPGRADE_SCENARIOS, ...FUZZ_SCENARIOS, ...SLOW_PRIMARY_SCENARIOS]

export function groupScenarioByName(name: string): GroupScenario | undefined {
  return GROUP_SCENARIOS.find((s) => s.name === name)
}
