/**
 * One process of a system under test, forked by bench.ts with an IPC channel:
 *
 *   node node.js raw     CONFIG_JSON KEY_SEED_HEX ID            unreplicated KV server over libp2p
 *   node node.js replica CONFIG_JSON KEY_SEED_HEX ID DATA_DIR [CORE_JSON]
 *                                                               a replica (LevelStorage on disk): KvApp in
 *                                                               group kv, BenchCallerApp otherwise; CORE_JSON
 *                                                               overrides numeric core-agreement settings
 *
 * IPC: the child sends { t: 'ready' } once serving; on { t: 'status', samples, gc } it answers
 * { t: 'status', ... } with CPU time, memory, transport totals, the host's figures, the workload
 * state and (when asked) the per-call latencies measured since the last such request; with `gc`
 * (and node --expose-gc) it runs a full collection first; on { t: 'stop' } it stops and exits.
 * It also exits when the parent goes away (the IPC channel closes).
 */
import { mkdirSync } from 'node:fs'
import { type VoterHost, openVoterHost } from '@bftrc/client-agreement/node-host'
import { Membership, fromHex, keyPairFromSeed } from '@bftrc/crypto'
import { createLibp2pTransport } from '@bftrc/libp2p-transport'
import { KvApp } from '../src/kv-app.js'
import { VOTER_CONFIG } from '../src/settings.js'
import { BenchCallerApp } from './bench-app.js'
import { type HostFigures, type NodeStatus, totals } from './metrics.js'

function send(msg: unknown): void {
  process.send?.(msg)
}

async function main(): Promise<void> {
  const [mode, configJson, seedHex, id, dataDir, coreJson] = process.argv.slice(2)
  if ((mode !== 'raw' && mode !== 'replica') || configJson === undefined || seedHex === undefined || id === undefined) throw new Error('usage: node.js raw|replica CONFIG_JSON SEED_HEX ID [DATA_DIR]')
  // The unreplicated baseline runs a group with f = 0, which only a benchmark may ask for.
  const membership = Membership.parse(configJson, { allowZeroFaultTolerance: true })
  const keyPair = keyPairFromSeed(fromHex(seedHex))
  const transport = createLibp2pTransport({ membership, keyPair, onError: (err, context) => process.stderr.write(`${id} transport ${context}: ${(err as Error).message ?? err}\n`) })
  let host: VoterHost | undefined
  let app: BenchCallerApp | undefined
  const issued = new Map<string, number>()
  let samples: number[] = []
  if (mode === 'raw') {
    const kvApp = new KvApp()
    transport.onMessage((from, bytes) => {
      // KvApp.onRequest does not read its context.
      transport.send(from, kvApp.onRequest(undefined as never, from, bytes))
    })
    await transport.start()
  } else {
    if (dataDir === undefined) throw new Error('replica needs DATA_DIR')
    mkdirSync(dataDir, { recursive: true })
    const member = membership.member(id)
    if (member === undefined) throw new Error(`${id} is not a replica`)
    app = member.group === 'kv' ? undefined : new BenchCallerApp()
    const opened = await openVoterHost({
      membership,
      self: id,
      keyPair,
      app: app ?? new KvApp(),
      dataDir,
      transport,
      config: coreJson === undefined ? VOTER_CONFIG : { ...VOTER_CONFIG, core: { ...VOTER_CONFIG.core, ...coreOverrides(coreJson) } },
      tickAfter: () =>
        transport.whenConnected(
          membership.group(member.group)!.members.filter((m) => m.id !== id).map((m) => m.id),
          5_000,
        ),
      // Per-call latency in host time: from the Ready whose frames carry the request shares
      // (sent after it is on disk) to the Ready that delivers the result (on disk too).
      onReady: (r) => {
        if (r.effects.length === 0) return
        const now = performance.now()
        for (const e of r.effects) {
          if (e.kind === 'send-call') issued.set(`${e.callee}:${e.k}`, now)
          else if (e.kind === 'call-delivered') {
            const key = `${e.callee}:${e.k}`
            const at = issued.get(key)
            if (at !== undefined) {
              issued.delete(key)
              samples.push(now - at)
            }
          }
        }
      },
      onFatal: (err) => {
        process.stderr.write(`${id} fatal: ${(err as Error).stack ?? err}\n`)
        process.exit(1)
      },
    })
    host = opened.host
    await host.start()
  }
  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    const timer = setTimeout(() => process.exit(0), 3000)
    timer.unref()
    try {
      if (host !== undefined) await host.stop()
      else await transport.stop()
    } finally {
      process.exit(0)
    }
  }
  process.on('disconnect', () => void stop())
  process.on('SIGTERM', () => void stop())
  process.on('message', (msg: { t: string; samples?: boolean; gc?: boolean }) => {
    if (msg.t === 'stop') void stop()
    else if (msg.t === 'status') {
      if (msg.gc === true) (globalThis as { gc?: () => void }).gc?.()
      const cpu = process.cpuUsage()
      const mem = process.memoryUsage()
      const status: NodeStatus = {
        t: 'status',
        id,
        cpuMicros: cpu.user + cpu.system,
        cpuSystemMicros: cpu.system,
        rssBytes: mem.rss,
        heapUsedBytes: mem.heapUsed,
        transport: totals(transport),
        ...(app !== undefined ? { workload: { ...app.state } } : {}),
        ...(msg.samples === true ? { samples } : {}),
        ...(host !== undefined ? { host: hostFigures(host) } : {}),
      }
      if (msg.samples === true) samples = []
      send(status)
    }
  })
  send({ t: 'ready' })
}

/** Numeric core-agreement settings from the command line (the replica's config check validates them). */
function coreOverrides(json: string): Record<string, number> {
  const v: unknown = JSON.parse(json)
  if (typeof v !== 'object' || v === null || Object.values(v).some((x) => typeof x !== 'number')) throw new Error(`CORE_JSON must map settings to numbers: ${json}`)
  return v as Record<string, number>
}

function hostFigures(host: VoterHost): HostFigures {
  const s = host.status()
  return {
    writeP50: s.writeLatency.p50,
    writeP99: s.writeLatency.p99,
    view: s.view,
    lastExecuted: s.lastExecuted,
    stateDigest: s.stateDigest,
    viewChanges: s.counters.viewChanges,
    framesInDropped: s.counters.framesInDropped,
    writes: s.counters.writes,
    executedBatches: s.counters.executedBatches,
    queuedInputs: s.queuedInputs,
    pendingWrites: s.pendingWrites,
    queueFull: s.replicaCounters['dropped.queue-full'] ?? 0,
    pendingFull: s.replicaCounters['dropped.pending-full'] ?? 0,
    sizes: s.sizes,
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench node: ${(err as Error).stack ?? err}\n`)
  process.exit(1)
})
