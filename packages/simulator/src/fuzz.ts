/**
 * Fuzzing of every decoder and message handler with generated and mutated input. The corpus of
 * valid frames comes from a real simulated run (core messages, inter-group shares, client
 * requests); mutations flip bits, overwrite, truncate, extend and splice them. Every target must
 * answer with its typed rejection (or a counted drop), never another exception, and the replicas
 * fed the junk must not change state or grow memory.
 */
import { Voter, decodeEvent, decodeInterGroup, isInterGroupFrame } from '@bftrc/client-agreement'
import { Client, DEFAULT_LIMITS, MemoryStorage, Replica, decodeMessage } from '@bftrc/core-agreement'
import { ConfigError, DecodeError, KeyError, type KeyPair, Membership, decode, generateCluster, parseKeyFile, serializeKeyFile } from '@bftrc/crypto'
import { RegisterApp } from './groups/apps.js'
import { GroupSimulation } from './groups/group-simulation.js'
import { groupScenarioByName } from './groups/group-scenarios.js'
import { Prng } from '@bftrc/adversary'
import { ChainExecutor } from './test-executor.js'

export interface FuzzTargetReport {
  readonly target: string
  readonly inputs: number
  readonly accepted: number
  readonly rejected: number
  /** Exceptions other than the target's typed rejection: must be 0. */
  readonly crashes: number
  readonly firstCrash?: string
}

export interface FuzzReport {
  readonly seed: number
  readonly targets: readonly FuzzTargetReport[]
  readonly corpus: number
  /** Replicas fed every junk frame: did their state stay put and their structures stay bounded? */
  readonly stateUnchanged: boolean
  readonly maxSizes: Readonly<Record<string, number>>
  readonly heapMiB: { readonly before: number; readonly after: number }
  /** Frames the handlers dropped and counted (`dropped.*`), per handler. */
  readonly dropsCounted: Readonly<Record<string, number>>
}

/** Valid frames of every kind, captured from a short replicated run with clients and faults. */
export function captureCorpus(seed: number): Uint8Array[] {
  const scenario = groupScenarioByName('replicated-byzantine-both')
  if (scenario === undefined) throw new Error('no corpus scenario')
  const sim = new GroupSimulation(scenario.build({ seed, f: 1, calls: 4 }))
  const frames: Uint8Array[] = []
  const send = sim.network.send.bind(sim.network)
  sim.network.send = (from, to, bytes, type, side) => {
    if (frames.length < 4000) frames.push(bytes)
    send(from, to, bytes, type, side)
  }
  sim.run()
  return frames
}

export function mutate(prng: Prng, corpus: readonly Uint8Array[]): Uint8Array {
  const pick = () => prng.pick(corpus)
  switch (prng.int(0, 7)) {
    case 0:
      return new Uint8Array(prng.int(0, 300)).map(() => prng.int(0, 255))
    case 1: {
      const b = new Uint8Array(pick())
      for (let i = prng.int(1, 4); i > 0 && b.length > 0; i--) {
        const at = prng.int(0, b.length - 1)
        b[at] = (b[at] as number) ^ (1 << prng.int(0, 7))
      }
      return b
    }
    case 2: {
      const b = new Uint8Array(pick())
      if (b.length > 0) b[prng.int(0, b.length - 1)] = prng.pick([0, 0x7f, 0x80, 0xff, 0xc1, 8, 7, 5])
      return b
    }
    case 3: {
      const b = pick()
      return b.subarray(0, prng.int(0, b.length))
    }
    case 4: {
      const b = pick()
      const extra = new Uint8Array(prng.int(1, 64)).map(() => prng.int(0, 255))
      const out = new Uint8Array(b.length + extra.length)
      out.set(b)
      out.set(extra, b.length)
      return out
    }
    case 5: {
      const a = pick()
      const b = pick()
      const cut = prng.int(0, a.length)
      const from = prng.int(0, b.length)
      const out = new Uint8Array(cut + b.length - from)
      out.set(a.subarray(0, cut))
      out.set(b.subarray(from), cut)
      return out
    }
    case 6: {
      // A huge declared length or count right after a tag.
      const b = new Uint8Array(pick())
      if (b.length > 2) {
        const at = prng.int(0, b.length - 2)
        b.set([prng.pick([5, 6, 7, 8]), 0xff, 0xff, 0xff, 0xff, 0x0f].slice(0, b.length - at), at)
      }
      return b
    }
    default:
      return pick()
  }
}

function target(name: string, run: (input: Uint8Array) => boolean, typed: (err: unknown) => boolean) {
  const report = { target: name, inputs: 0, accepted: 0, rejected: 0, crashes: 0, firstCrash: undefined as string | undefined }
  return {
    report,
    feed(input: Uint8Array) {
      report.inputs++
      try {
        if (run(input)) report.accepted++
        else report.rejected++
      } catch (err) {
        if (typed(err)) report.rejected++
        else {
          report.crashes++
          report.firstCrash ??= (err as Error).stack ?? String(err)
        }
      }
    },
  }
}

const isDecodeError = (err: unknown) => err instanceof DecodeError

export function fuzz(seed: number, inputsPerTarget: number): FuzzReport {
  const heapBefore = Math.round(process.memoryUsage().heapUsed / 1048576)
  const corpus = captureCorpus(seed)
  const prng = new Prng(seed)
  // Same group names as the corpus (so frames get past the addressing checks into the deeper
  // ones), other keys (so no captured signature is valid here and no state may change).
  const cluster = generateCluster({ groups: [{ name: 'client', f: 1 }, { name: 'server', f: 1 }], clients: ['c0'], authorities: { count: 3, threshold: 2 }, seed: new Uint8Array(32).fill(seed & 0xff) })
  const replica = new Replica({ membership: cluster.membership, self: 'server/1', keyPair: cluster.keys.get('server/1') as KeyPair, executor: new ChainExecutor() })
  const voter = new Voter({ membership: cluster.membership, self: 'client/2', keyPair: cluster.keys.get('client/2') as KeyPair, app: new RegisterApp() })
  const client = new Client({ membership: cluster.membership, group: 'server', id: 'c0', keyPair: cluster.keys.get('c0') as KeyPair, firstTimestamp: 1 })
  client.invoke(new Uint8Array([1]))
  client.ready()
  const storage = new MemoryStorage()
  const replicaDigest = Buffer.from(replica.stateDigest()).toString('hex')
  const voterDigest = Buffer.from(voter.stateDigest()).toString('hex')
  const senders = ['server/0', 'server/2', 'server/3', 'client/0', 'c0', 'stranger']
  const configText = JSON.stringify(cluster.config)
  const keyText = serializeKeyFile('server/0', cluster.keys.get('server/0') as KeyPair)
  const textCorpus = [new TextEncoder().encode(configText), new TextEncoder().encode(keyText)]
  // Ordered events (proposals) travel inside pre-prepares: take them out as a corpus of their own.
  const eventCorpus: Uint8Array[] = []
  for (const frame of corpus) {
    try {
      const m = decodeMessage(frame, DEFAULT_LIMITS)
      if (m.t === 'pre-prepare') eventCorpus.push(...(m.batch.proposals ?? []))
    } catch {}
  }

  const targets = [
    target('crypto.decode', (b) => {
      decode(b)
      return true
    }, isDecodeError),
    target('core.decodeMessage', (b) => {
      decodeMessage(b, DEFAULT_LIMITS)
      return true
    }, isDecodeError),
    target('client-agreement.decodeInterGroup', (b) => {
      decodeInterGroup(isInterGroupFrame(b) ? b : new Uint8Array([0xc1, ...b]), 64 * 1024)
      return true
    }, isDecodeError),
    target('client-agreement.decodeEvent', (b) => {
      decodeEvent(b, 64 * 1024)
      return true
    }, isDecodeError),
    target(
      'core.Replica.step',
      (b) => {
        replica.step(prng.pick(senders), b)
        storage.applySync(replica.ready().persist)
        return true
      },
      () => false,
    ),
    target(
      'client-agreement.Voter.step',
      (b) => {
        voter.step(prng.pick(['client/0', 'client/1', 'server/0', 'server/3', 'c0']), b)
        voter.ready()
        return true
      },
      () => false,
    ),
    target(
      'core.Client.step',
      (b) => {
        client.step(prng.pick(['server/0', 'server/1', 'stranger']), b)
        client.ready()
        return true
      },
      () => false,
    ),
    target(
      'crypto.Membership.parse',
      (b) => {
      Membership.parse(new TextDecoder().decode(b))
      return true
    },
      (err) => err instanceof ConfigError,
    ),
    target(
      'crypto.parseKeyFile',
      (b) => {
      parseKeyFile(new TextDecoder().decode(b))
      return true
    },
      (err) => err instanceof KeyError,
    ),
  ]
  for (const t of targets) {
    const text = t.report.target === 'crypto.Membership.parse' || t.report.target === 'crypto.parseKeyFile'
    const source = text ? textCorpus : t.report.target === 'client-agreement.decodeEvent' && eventCorpus.length > 0 ? eventCorpus : corpus
    for (let i = 0; i < inputsPerTarget; i++) t.feed(mutate(prng, source))
  }
  const sizes = { ...replica.sizes(), ...Object.fromEntries(Object.entries(voter.sizes()).map(([k, v]) => [`voter.${k}`, v])) }
  const stateUnchanged = Buffer.from(replica.stateDigest()).toString('hex') === replicaDigest && Buffer.from(voter.stateDigest()).toString('hex') === voterDigest
  const drops = (counters: ReadonlyMap<string, number>) => [...counters].filter(([k]) => k.startsWith('dropped.')).reduce((n, [, v]) => n + v, 0)
  return {
    seed,
    dropsCounted: { replica: drops(replica.counters), voter: drops(voter.counters) + drops(voter.replica.counters), client: drops(client.counters) },
    targets: targets.map((t) => t.report),
    corpus: corpus.length,
    stateUnchanged,
    maxSizes: sizes,
    heapMiB: { before: heapBefore, after: Math.round(process.memoryUsage().heapUsed / 1048576) },
  }
}
