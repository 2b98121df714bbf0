/**
 * The generative adversary against one group and against a caller and a callee group, alongside
 * the ordinary faults: a lossy network, a partition, crashes and restarts from disk (replicas
 * that fall behind catch up by state transfer), and an upgrade under load. f members of each group
 * run the adversary (the primary in some seeds), and Byzantine plain clients (a listed one and
 * open ones) send requests of every shape. Beside the safety and liveness checkers, every run
 * checks the work per input and the memory of correct replicas; the campaign runs each seed a
 * second time without the adversaries and compares (performance isolation, amplification).
 */
import { Prng } from '@bftrc/adversary'
import { type AppVersion, type UpgradeRequest, signUpgrade } from '@bftrc/client-agreement'
import { type KeyPair, sha256 } from '@bftrc/crypto'
import { type Behaviour, generative } from '../adversary.js'
import type { NetworkFaults } from '../network.js'
import { DriverApp, DriverAppV2, RegisterApp, RegisterAppV2 } from './apps.js'
import type { GroupScenario, GroupScenarioParams } from './group-scenarios.js'
import type { GroupScheduledAction, GroupSimulation, GroupSimulationOptions, PlainClientSpec } from './group-simulation.js'

const MILD: NetworkFaults = { dropRate: 0.01, duplicateRate: 0.01, minDelay: 1, maxDelay: 10 }
/**
 * Frequent checkpoints (state transfers happen), an answer budget of 1 MiB/s (a sixteenth of the
 * default, so it binds), and an ordering slack for a network of 1-10 ms hops with no disk or CPU
 * time (the default 50 ms is for real hosts): a faulty primary that orders late is replaced after
 * about 10 ms plus four prepare rounds.
 */
const CONFIG = { core: { checkpointInterval: 4, logWindow: 8, answerBytesPerSecond: 1024 * 1024, orderingSlack: 10 } }

const KV_V2_DIGEST = sha256(new TextEncoder().encode('register-v2 code bundle'))
const DRIVER_V2_DIGEST = sha256(new TextEncoder().encode('driver-v2 fuzz code bundle'))

function n(f: number): number {
  return 3 * f + 1
}

/** f members of a group, drawn by the seed; the primary (index 0) among them in about half the seeds. */
function fuzzers(prng: Prng, f: number): Map<number, Behaviour> {
  const picked = new Set<number>()
  if (prng.chance(0.5)) picked.add(0)
  while (picked.size < f) picked.add(prng.int(0, n(f) - 1))
  return new Map([...picked].map((i) => [i, generative()]))
}

/** A correct replica of `group` (not one of `faulty`), drawn by the seed. */
function correctOne(prng: Prng, f: number, faulty: ReadonlyMap<number, Behaviour>, not: readonly number[] = []): number {
  const candidates = Array.from({ length: n(f) }, (_, i) => i).filter((i) => !faulty.has(i) && !not.includes(i))
  return prng.pick(candidates)
}

function upgrade(sim: GroupSimulation, group: string, version: string, codeDigest: Uint8Array): UpgradeRequest {
  const body = { group, version, codeDigest, allowDowngrade: false }
  return { ...body, signatures: [0, 1].map((i) => signUpgrade(sim.cluster.membership, body, i, sim.cluster.keys.get(`authority/${i}`) as KeyPair)) }
}

/**
 * The ordinary faults of a group: a partition of one correct replica, and two crashes with a
 * restart from disk (a replica that falls behind catches up by state transfer). No disk is lost:
 * a replica that forgets what it voted counts as faulty, and f members are faulty already.
 */
function ordinaryFaults(prng: Prng, group: string, f: number, faulty: ReadonlyMap<number, Behaviour>): GroupScheduledAction[] {
  const cut = correctOne(prng, f, faulty)
  const crashed = correctOne(prng, f, faulty, [cut])
  const restarted = correctOne(prng, f, faulty, [crashed])
  const cutAt = prng.int(200, 1_500)
  const crashAt = prng.int(1_500, 3_000)
  const restartAt = prng.int(3_500, 4_500)
  return [
    { at: cutAt, run: (s) => s.network.partition([`${group}/${cut}`], s.nodes.filter((x) => x.id !== `${group}/${cut}`).map((x) => x.id)) },
    { at: cutAt + prng.int(500, 1_500), run: (s) => s.network.heal() },
    { at: crashAt, run: (s) => s.crash(`${group}/${crashed}`) },
    { at: crashAt + prng.int(300, 900), run: (s) => s.restart(`${group}/${crashed}`) },
    { at: restartAt, run: (s) => s.crash(`${group}/${restarted}`) },
    { at: restartAt + prng.int(200, 600), run: (s) => s.restart(`${group}/${restarted}`) },
  ]
}

/**
 * Plain clients of a group: three listed and one open during the whole run, and three listed ones
 * that make up the measured workload (a longer one than a handful of requests, so that the
 * comparison with and without adversaries is about throughput and latency, not one request).
 */
function clientsOf(group: string, prefix: string, requests: number): PlainClientSpec[] {
  return [
    ...[0, 1, 2].map((i) => ({ id: `${prefix}c${i}`, group, requests, readOnlyRatio: 0.2 })),
    { id: `${prefix}o0`, group, requests, open: true },
    ...[0, 1, 2].map((i) => ({ id: `${prefix}m${i}`, group, requests: 4 * requests, measured: true })),
  ]
}

export const FUZZ_SCENARIOS: readonly GroupScenario[] = [
  {
    name: 'byzantine-fuzz',
    description: 'one group: f members run the generative adversary (every message type, edge values, replays, splices, other groups\' statements) and Byzantine clients send requests of every shape, beside a partition, crashes and restarts (state transfers) and an upgrade under load',
    pairedBaseline: true,
    build: (p: GroupScenarioParams): GroupSimulationOptions => {
      const prng = new Prng(p.seed ^ 0xf022)
      const faulty = fuzzers(prng, p.f)
      const kvV2: AppVersion = { version: '2', codeDigest: KV_V2_DIGEST, create: () => new RegisterAppV2(), migrate: RegisterAppV2.migrate }
      const requests = p.calls ?? 6
      return {
        seed: p.seed,
        groups: [{ name: 'kv', f: p.f, app: () => new RegisterApp(), byzantine: faulty, versions: () => [kvV2] }],
        drivers: [],
        clients: clientsOf('kv', '', requests),
        byzantineClients: [{ group: 'kv', listed: 'evil' }, { group: 'kv' }],
        measure: { driverCalls: 0 },
        faults: MILD,
        safetyDuration: 6_000,
        livenessTimeout: 60_000,
        voterConfig: CONFIG,
        expectVersions: { kv: '2' },
        schedule: [...ordinaryFaults(prng, 'kv', p.f, faulty), { at: prng.int(300, 2_500), run: (s) => s.submitUpgrade('kv', upgrade(s, 'kv', '2', KV_V2_DIGEST)) }],
      }
    },
  },
  {
    name: 'replicated-byzantine-fuzz',
    description: 'a caller and a callee group with f generative adversaries in each (inter-group shares and ordered events included) and Byzantine clients of both, beside partitions, crashes and restarts (state transfers) and an upgrade of the caller under load',
    pairedBaseline: true,
    build: (p: GroupScenarioParams): GroupSimulationOptions => {
      const prng = new Prng(p.seed ^ 0xf023)
      const callerFaulty = fuzzers(prng, p.f)
      const calleeFaulty = fuzzers(prng, p.f)
      const calls = p.calls ?? 12
      const driverV2: AppVersion = { version: '2', codeDigest: DRIVER_V2_DIGEST, create: () => new DriverAppV2('server', calls, 'pipelined'), migrate: DriverAppV2.migrate }
      return {
        seed: p.seed,
        groups: [
          { name: 'client', f: p.f, app: () => new DriverApp('server', calls, 'pipelined'), byzantine: callerFaulty, versions: () => [driverV2] },
          { name: 'server', f: p.f, app: () => new RegisterApp(), byzantine: calleeFaulty },
        ],
        drivers: ['client'],
        clients: [...clientsOf('server', 's', 4), ...clientsOf('client', 'd', 3)],
        byzantineClients: [{ group: 'server' }, { group: 'client', listed: 'evil' }],
        measure: { driverCalls: 16 },
        faults: MILD,
        safetyDuration: 6_000,
        livenessTimeout: 120_000,
        voterConfig: CONFIG,
        expectVersions: { client: '2' },
        schedule: [
          ...ordinaryFaults(prng, 'client', p.f, callerFaulty),
          ...ordinaryFaults(prng, 'server', p.f, calleeFaulty),
          { at: prng.int(300, 2_500), run: (s) => s.submitUpgrade('client', upgrade(s, 'client', '2', DRIVER_V2_DIGEST)) },
        ],
      }
    },
  },
]
