/**
 * `pnpm bench`: the three systems side by side in one run, over libp2p on 127.0.0.1.
 *
 *   (1) raw        an unreplicated request/response KV server (one process): the transport's limit
 *   (2) clbft      plain clients (this process) → a 3f+1 KV group (separate processes, LevelDB)
 *   (3) replicated a 3f+1 client group (separate processes, LevelDB) → the same KV group:
 *                  synchronous calls (a workflow), then pipelined asynchronous calls (a window)
 *
 * For each: latency p50/p99, throughput, messages (transport frames) and bytes per operation,
 * CPU per operation (all processes of the system, the load generator included); then the ratios.
 * Then scaling: the simulator's message delays and messages per call for f = 1..10, and real
 * processes' latency for f = 2. Writes a chart (SVG) and, with --json FILE, the figures.
 *
 *   node dist/bench/bench/bench.js [--quick] [--json FILE] [--svg FILE] [--f2|--no-f2] [--no-sim] [--data-root DIR] [--chart-from JSON]
 *   (--quick: fewer operations, no f = 2 processes unless --f2, simulator at f = 1 and 10 only)
 */
import { execFile } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import type { ClientHost } from '@bftrc/client-agreement/node-host'
import { decode, encode } from '@bftrc/crypto'
import { type Libp2pTransport, createLibp2pTransport } from '@bftrc/libp2p-transport'
import { kv } from '../src/kv-app.js'
import { cpuJiffies, machine } from './machine.js'
import { type TransportTotals, addTotals, emptyTotals, totals } from './metrics.js'
import { type Child, type Cluster, type ClientEndpoint, REPO, clientHost as openClientHost, invokedFrom, killAll, logger, makeCluster, runFolder, sleep, startGroup, withTimeout } from './processes.js'
import { type LatencySummary, median, ratio, round, summarise } from './stats.js'
import { barChart } from './svg.js'

interface Options {
  quick: boolean
  json: string | undefined
  svg: string
  f2: boolean | undefined
  sim: boolean
  /** Only redraw the chart from a saved --json report. */
  chartFrom: string | undefined
  /** Where the replicas' LevelDB folders go (default: the OS temp folder, on the local disk here). */
  dataRoot: string
}

function parseArgs(argv: readonly string[]): Options {
  const o: Options = { quick: false, json: undefined, svg: join(REPO, 'BENCHMARKS.svg'), f2: undefined, sim: true, chartFrom: undefined, dataRoot: tmpdir() }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--') continue
    if (a === '--quick') o.quick = true
    else if (a === '--no-f2') o.f2 = false
    else if (a === '--f2') o.f2 = true
    else if (a === '--no-sim') o.sim = false
    else if (a === '--chart-from') {
      const v = argv[++i]
      if (v === undefined) throw new Error('--chart-from needs a file')
      o.chartFrom = resolve(invokedFrom, v)
    } else if (a === '--data-root') {
      const v = argv[++i]
      if (v === undefined) throw new Error('--data-root needs a folder')
      o.dataRoot = resolve(invokedFrom, v)
    } else if (a === '--json' || a === '--svg') {
      const v = argv[++i]
      if (v === undefined) throw new Error(`${a} needs a file`)
      if (a === '--json') o.json = resolve(invokedFrom, v)
      else o.svg = resolve(invokedFrom, v)
    } else throw new Error(`unknown argument ${a}; usage: bench [--quick] [--json FILE] [--svg FILE] [--f2|--no-f2] [--no-sim] [--data-root DIR] [--chart-from JSON]`)
  }
  if (o.f2 === undefined) o.f2 = !o.quick
  return o
}

const log = logger('bench')

// ------------------------------------------------------------------------------------ figures

interface Snapshot {
  readonly at: number
  readonly cpuMicros: number
  readonly cpuSystemMicros: number
  readonly transport: TransportTotals
  /** Median over the replicas of their durable-write latency p50 (last 512 writes each). */
  readonly writeP50: number
  /** Durable writes (Readies with persist ops) summed over the replicas. */
  readonly writes: number
  /** View changes summed over the replicas. */
  readonly viewChanges: number
}

/** CPU and transport totals of a set of children and local transports, now. */
async function snapshot(children: readonly Child[], local: readonly Libp2pTransport[]): Promise<Snapshot> {
  const st = await Promise.all(children.map((c) => c.status()))
  // The load generator's CPU counts only when it is part of the system (it has a client transport).
  const cpu = local.length > 0 ? process.cpuUsage() : { user: 0, system: 0 }
  const t = emptyTotals()
  for (const x of [...st.map((s) => s.transport), ...local.map(totals)]) addTotals(t, x)
  return { at: performance.now(), cpuMicros: st.reduce((s, x) => s + x.cpuMicros, 0) + cpu.user + cpu.system, cpuSystemMicros: st.reduce((s, x) => s + x.cpuSystemMicros, 0) + cpu.system, transport: t, writes: st.reduce((s, x) => s + (x.host?.writes ?? 0), 0), viewChanges: st.reduce((s, x) => s + (x.host?.viewChanges ?? 0), 0), writeP50: median(st.flatMap((x) => (x.host !== undefined && x.host.writeP50 > 0 ? [x.host.writeP50] : []))) }
}

export interface PhaseResult {
  readonly system: string
  readonly mode: string
  readonly f: number
  readonly ops: number
  readonly seconds: number
  readonly latencyMs: LatencySummary
  readonly opsPerSec: number
  readonly messagesPerOp: number
  readonly bytesPerOp: number
  readonly cpuMsPerOp: number
  /** Share of that CPU spent in the kernel (system time): socket writes, fsync. */
  readonly cpuSystemShare: number
  /** CPU per operation less the idle system's background (ticks, heartbeats) over the phase. */
  readonly cpuMsPerOpNetOfIdle: number
  /** Median over the system's replicas of their durable-write latency p50 (ms), at the end of the phase. */
  readonly writeP50Ms: number
  /** Durable writes per operation, summed over the system's replicas (group commit merges some). */
  readonly writesPerOp: number
  /** View changes during the phase, summed over the system's replicas (each replica counts its own). */
  readonly viewChanges: number
  readonly dropped: number
  readonly note: string
}

function result(system: string, mode: string, f: number, ops: number, seconds: number, latencies: number[], before: Snapshot, after: Snapshot, note: string, idleCpuMsPerSec = 0): PhaseResult {
  const cpuMs = (after.cpuMicros - before.cpuMicros) / 1000
  const r: PhaseResult = {
    system,
    mode,
    f,
    ops,
    seconds: round(seconds, 3),
    latencyMs: summarise(latencies),
    opsPerSec: round(ops / seconds, 1),
    messagesPerOp: round((after.transport.framesOut - before.transport.framesOut) / ops, 1),
    bytesPerOp: round((after.transport.bytesOut - before.transport.bytesOut) / ops, 0),
    cpuMsPerOp: round((after.cpuMicros - before.cpuMicros) / 1000 / ops, 3),
    cpuMsPerOpNetOfIdle: round((cpuMs - (idleCpuMsPerSec * (after.at - before.at)) / 1000) / ops, 3),
    writeP50Ms: after.writeP50,
    writesPerOp: round((after.writes - before.writes) / ops, 1),
    viewChanges: after.viewChanges - before.viewChanges,
    cpuSystemShare: ratio(after.cpuSystemMicros - before.cpuSystemMicros, after.cpuMicros - before.cpuMicros),
    dropped: after.transport.dropped - before.transport.dropped,
    note,
  }
  log(`${system} ${mode} f=${f}: ${ops} ops in ${r.seconds} s, p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms, ${r.opsPerSec} ops/s, ${r.messagesPerOp} msg/op, ${r.bytesPerOp} B/op, ${r.cpuMsPerOp} ms CPU/op (${Math.round(r.cpuSystemShare * 100)} % system; ${r.cpuMsPerOpNetOfIdle} net of idle), write p50 ${r.writeP50Ms} ms, ${r.writesPerOp} durable writes/op, ${r.viewChanges} view changes (summed over replicas)`)
  return r
}

// ------------------------------------------------------------------------------------ raw server

class RawClient {
  private readonly pending: Array<(b: Uint8Array) => void> = []
  constructor(
    readonly transport: Libp2pTransport,
    readonly server: string,
  ) {
    transport.onMessage((_from, bytes) => this.pending.shift()?.(bytes))
  }
  request(op: Uint8Array): Promise<Uint8Array> {
    return new Promise((r) => {
      this.pending.push(r)
      if (!this.transport.send(this.server, op)) throw new Error('raw: send refused')
    })
  }
}

async function runRaw(o: Sizes, dataRoot: string, logDir: string): Promise<PhaseResult[]> {
  const c = await makeCluster([{ name: 'raw', f: 0 }], ['b0'])
  const [server] = startGroup(c, 'raw', 'raw', dataRoot, logDir) as [Child]
  const transport = createLibp2pTransport({ membership: c.membership, keyPair: c.keys.get('b0')! })
  try {
    await withTimeout(server.ready, 15_000, 'raw server start')
    await transport.start()
    await transport.whenConnected(['raw/0'], 10_000)
    const client = new RawClient(transport, 'raw/0')
    for (let i = 0; i < 200; i++) await client.request(kv.put(`w${i % 16}`, 'warm-up'))
    const out: PhaseResult[] = []
    {
      const before = await snapshot([server], [transport])
      const lat: number[] = []
      const t0 = performance.now()
      for (let i = 0; i < o.seqOps; i++) {
        const s = performance.now()
        await client.request(kv.put(`bench-${i % 256}`, `call ${i} ${'x'.repeat(16)}`))
        lat.push(performance.now() - s)
      }
      const t1 = performance.now()
      out.push(result('unreplicated', 'sequential', 0, o.seqOps, (t1 - t0) / 1000, lat, before, await snapshot([server], [transport]), 'one request at a time'))
    }
    {
      const before = await snapshot([server], [transport])
      const lat: number[] = []
      let done = 0
      const t0 = performance.now()
      const deadline = t0 + o.tputSeconds * 1000
      const lane = async () => {
        let i = 0
        while (performance.now() < deadline) {
          const s = performance.now()
          await client.request(kv.put(`bench-${i++ % 256}`, `call ${i} ${'x'.repeat(16)}`))
          lat.push(performance.now() - s)
          done++
        }
      }
      await Promise.all(Array.from({ length: o.rawWindow }, lane))
      const t1 = performance.now()
      out.push(result('unreplicated', 'pipelined', 0, done, (t1 - t0) / 1000, lat, before, await snapshot([server], [transport]), `${o.rawWindow} requests in flight on one connection`))
    }
    return out
  } finally {
    await transport.stop().catch(() => {})
    await server.stop()
  }
}

// ------------------------------------------------------------------------------------ CLBFT and replicated

interface Sizes {
  seqOps: number
  tputSeconds: number
  rawWindow: number
  clients: number
  syncCalls: number
  asyncCalls: number
  asyncWindow: number
  f2Ops: number
  idleSeconds: number
  warmupCalls: number
}

function clientHost(c: Cluster, id: string, groups: string[]): Promise<ClientEndpoint> {
  return openClientHost(c.membership, id, c.keys.get(id)!, groups)
}

async function waitWorkload(child: Child, run: number, n: number, timeoutMs: number): Promise<{ startedAt: number; finishedAt: number; delivered: number; errors: number }> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const s = await child.status()
    const w = s.workload as { run: number; delivered: number; active: boolean; startedAt: number; finishedAt: number; errors: number }
    if (w.run === run && !w.active && w.delivered >= n) return w
    if (Date.now() > end) throw new Error(`workload ${run} on ${child.id}: ${w.delivered}/${n} delivered after ${timeoutMs} ms`)
    await sleep(50)
  }
}

let runCounter = 1
/** Where a stuck workload leaves the replicas' statuses (the run's log folder, set by main). */
let stuckDumpDir = tmpdir()

interface IdleFigures {
  f: number
  seconds: number
  kvCpuMsPerSec: number
  cgCpuMsPerSec: number
  kvMessagesPerSec: number
  cgMessagesPerSec: number
}
const idle: IdleFigures[] = []
function idleOf(f: number): { kv: number; cg: number } {
  const x = idle.find((i) => i.f === f)
  return { kv: x?.kvCpuMsPerSec ?? 0, cg: x?.cgCpuMsPerSec ?? 0 }
}

async function replicatedWorkload(b0: ClientHost, cg: Child[], kvGroup: Child[], local: Libp2pTransport[], f: number, mode: 'sync' | 'async', n: number, window: number, timeoutMs: number, warmUp = false): Promise<PhaseResult> {
  const system = [...kvGroup, ...cg]
  const run = runCounter++
  await Promise.all(cg.map((c) => c.status({ samples: true }))) // clear samples
  const before = await snapshot(system, local)
  const t0 = performance.now()
  const r = await withTimeout(b0.invoke('cg', encode({ cmd: 'start', mode, n, window, run })), 20_000, 'start workload')
  const answer = decode(r.result) as { ok: boolean; error?: string }
  if (!answer.ok) throw new Error(`start workload: ${answer.error}`)
  const w = await waitWorkload(cg[0]!, run, n, timeoutMs).catch(async (err: unknown) => {
    // Leave the evidence of a stuck call: every replica's host status (view, sequence numbers,
    // counters, calls sent and delivered), next to the replicas' logs.
    const statuses = await Promise.all(system.map((c) => c.status().catch((e: unknown) => ({ id: c.id, error: String(e) }))))
    const file = join(stuckDumpDir, `stuck-run-${run}.json`)
    writeFileSync(file, JSON.stringify(statuses, null, 1))
    throw new Error(`${(err as Error).message}; every replica's status in ${file}`)
  })
  const t1 = performance.now()
  const after = await snapshot(system, local)
  const statuses = await Promise.all(cg.map((c) => c.status({ samples: true })))
  const lat = statuses[0]!.samples ?? []
  const p50s = statuses.map((s) => summarise(s.samples ?? []).p50)
  const agreedSeconds = (w.finishedAt - w.startedAt) / 1000
  const res = result(
    warmUp ? 'warm-up: replicated' : 'replicated',
    mode === 'sync' ? 'sync calls' : `async, window ${window}`,
    f,
    n,
    agreedSeconds > 0 ? agreedSeconds : (t1 - t0) / 1000,
    lat,
    before,
    after,
    `latency at ${cg[0]!.id}, host clock, shares sent → result delivered; p50 at the ${cg.length} caller replicas: ${p50s.join(', ')} ms; throughput over agreed time start→last delivery; errors ${w.errors}`,
    idleOf(f).kv + idleOf(f).cg,
  )
  return res
}

async function runGroups(f: number, o: Sizes, dataRoot: string, logDir: string, full: boolean): Promise<PhaseResult[]> {
  const clientIds = Array.from({ length: o.clients + 1 }, (_, i) => `b${i}`)
  const c = await makeCluster(
    [
      { name: 'kv', f },
      { name: 'cg', f },
    ],
    clientIds,
  )
  log(`f=${f}: starting ${3 * f + 1} KV replicas and ${3 * f + 1} client-group replicas (LevelDB in ${dataRoot})`)
  const kvGroup = startGroup(c, 'kv', 'replica', join(dataRoot, `f${f}`), logDir)
  const cg = startGroup(c, 'cg', 'replica', join(dataRoot, `f${f}`), logDir)
  const hosts: ClientEndpoint[] = []
  try {
    await withTimeout(Promise.all([...kvGroup, ...cg].map((x) => x.ready)), 30_000, 'replicas start')
    const b0 = await clientHost(c, 'b0', ['kv', 'cg'])
    hosts.push(b0)
    // Warm-up: connections, first batches, JIT.
    log(`f=${f}: replicas ready; warming up`)
    const warmup = full ? o.warmupCalls : Math.min(10, o.warmupCalls)
    for (let i = 0; i < warmup; i++) await withTimeout(b0.host.invoke('kv', kv.put(`w${i}`, 'warm-up')), 20_000, 'warm-up')
    await replicatedWorkload(b0.host, cg, kvGroup, [b0.transport], f, 'sync', warmup, 1, 60_000, true)
    const out: PhaseResult[] = []
    // Background: CPU and messages of the idle system (ticks every 10 ms, STATUS heartbeats).
    {
      const before = await Promise.all([snapshot(kvGroup, []), snapshot(cg, [])])
      await sleep(o.idleSeconds * 1000)
      const after = await Promise.all([snapshot(kvGroup, []), snapshot(cg, [])])
      const secs = (after[0].at - before[0].at) / 1000
      // snapshot() adds this process's CPU to each: take it out.
      const own = (i: 0 | 1) => (after[i].cpuMicros - before[i].cpuMicros) / 1000 / secs
      idle.push({ f, seconds: round(secs, 2), kvCpuMsPerSec: round(own(0), 1), cgCpuMsPerSec: round(own(1), 1), kvMessagesPerSec: round((after[0].transport.framesOut - before[0].transport.framesOut) / secs, 1), cgMessagesPerSec: round((after[1].transport.framesOut - before[1].transport.framesOut) / secs, 1) })
      log(`f=${f} idle: ${JSON.stringify(idle[idle.length - 1])}`)
    }
    const seqOps = full ? o.seqOps : o.f2Ops
    // CLBFT, one plain client, one request at a time.
    {
      const before = await snapshot(kvGroup, [b0.transport])
      const lat: number[] = []
      const t0 = performance.now()
      for (let i = 0; i < seqOps; i++) {
        const s = performance.now()
        await withTimeout(b0.host.invoke('kv', kv.put(`bench-${i % 256}`, `call ${i} ${'x'.repeat(16)}`)), 20_000, 'CLBFT request')
        lat.push(performance.now() - s)
      }
      const t1 = performance.now()
      out.push(result('CLBFT', 'sequential', f, seqOps, (t1 - t0) / 1000, lat, before, await snapshot(kvGroup, [b0.transport]), 'one plain client, one request at a time; latency at the client', idleOf(f).kv))
    }
    // Replicated client group, synchronous calls.
    out.push(await replicatedWorkload(b0.host, cg, kvGroup, [b0.transport], f, 'sync', full ? o.syncCalls : o.f2Ops, 1, 120_000))
    if (!full) return out
    // CLBFT throughput: closed loop, many plain clients (batching at the primary).
    {
      for (const id of clientIds.slice(1)) hosts.push(await clientHost(c, id, ['kv']))
      const clients = hosts.slice(1)
      for (const h of clients) await withTimeout(h.host.invoke('kv', kv.put('w', 'warm-up')), 20_000, 'client warm-up')
      const local = hosts.map((h) => h.transport)
      const before = await snapshot(kvGroup, local)
      const lat: number[] = []
      let done = 0
      const t0 = performance.now()
      const deadline = t0 + o.tputSeconds * 1000
      await Promise.all(
        clients.map(async (h, ci) => {
          let i = 0
          while (performance.now() < deadline) {
            const s = performance.now()
            await withTimeout(h.host.invoke('kv', kv.put(`c${ci}-${i++ % 16}`, `call ${i} ${'x'.repeat(16)}`)), 20_000, 'CLBFT request')
            lat.push(performance.now() - s)
            done++
          }
        }),
      )
      const t1 = performance.now()
      out.push(result('CLBFT', `${clients.length} clients`, f, done, (t1 - t0) / 1000, lat, before, await snapshot(kvGroup, local), `${clients.length} plain clients (each its own libp2p node in the load generator), closed loop`, idleOf(f).kv))
    }
    // Replicated client group, pipelined asynchronous calls.
    out.push(await replicatedWorkload(b0.host, cg, kvGroup, [b0.transport], f, 'async', o.asyncCalls, o.asyncWindow, 120_000))
    const views = await Promise.all([...kvGroup, ...cg].map((x) => x.status()))
    const vc = views.reduce((s, v) => s + (v.host?.viewChanges ?? 0), 0)
    if (vc > 0) log(`note: ${vc} view changes happened during the f=${f} run`)
    return out
  } finally {
    for (const h of hosts) await h.host.stop().catch(() => {})
    await Promise.all([...kvGroup, ...cg].map((x) => x.stop()))
  }
}

// ------------------------------------------------------------------------------------ simulator

interface SimFigures {
  f: number
  n: number
  clbftDelays: number
  clbftMessages: number
  replicatedDelays: number
  replicatedMessages: number
  interGroupMessages: number
  messageRatio: number
}

async function simulate(fs: number[]): Promise<SimFigures[]> {
  const cli = join(REPO, 'packages/simulator/dist/cli.js')
  const run = promisify(execFile)
  const one = async (scenario: string, f: number) => {
    const { stdout } = await run(process.execPath, [cli, '--scenario', scenario, '--f', String(f), '--json'], { timeout: 120_000, maxBuffer: 16 << 20 })
    return JSON.parse(stdout) as Record<string, unknown>
  }
  const out: SimFigures[] = []
  for (const f of fs) {
    const [basic, repl] = await Promise.all([one('basic', f), one('replicated-basic', f)])
    if (basic.ok !== true || repl.ok !== true) throw new Error(`simulator f=${f} reported a failure`)
    const s: SimFigures = {
      f,
      n: 3 * f + 1,
      clbftDelays: basic.delaysPerRequest as number,
      clbftMessages: basic.messagesPerRequest as number,
      replicatedDelays: repl.delaysPerCall as number,
      replicatedMessages: repl.messagesPerCall as number,
      interGroupMessages: repl.interGroupMessagesPerCall as number,
      messageRatio: ratio(repl.messagesPerCall as number, basic.messagesPerRequest as number),
    }
    log(`simulator f=${f}: CLBFT ${s.clbftDelays} delays ${s.clbftMessages} msgs; replicated ${s.replicatedDelays} delays ${s.replicatedMessages} msgs (${s.interGroupMessages} inter-group)`)
    out.push(s)
  }
  return out
}

// ------------------------------------------------------------------------------------ report

function table(rows: readonly PhaseResult[]): string {
  const head = '| system | mode | f | ops | latency p50 (ms) | p99 (ms) | throughput (ops/s) | messages/op | bytes/op | CPU/op (ms) | CPU/op net of idle (ms) | disk writes/op | disk write p50 (ms) |'
  const sep = '|---|---|---|---|---|---|---|---|---|---|---|---|---|'
  const lines = rows.map((r) => `| ${r.system} | ${r.mode} | ${r.f} | ${r.ops} | ${r.latencyMs.p50} | ${r.latencyMs.p99} | ${r.opsPerSec} | ${r.messagesPerOp} | ${r.bytesPerOp} | ${r.cpuMsPerOp} | ${r.cpuMsPerOpNetOfIdle} | ${r.writesPerOp} | ${Number.isNaN(r.writeP50Ms) ? '–' : r.writeP50Ms} |`)
  return [head, sep, ...lines].join('\n')
}

interface ChartInput {
  readonly when: string
  readonly quick: boolean
  readonly machine: { readonly before: Record<string, unknown> }
  readonly rows: readonly PhaseResult[]
  readonly ratios: { readonly replicatedOverClbftLatencyP50: number; readonly replicatedOverClbftMessages: number; readonly clbftOverUnreplicatedThroughput: number }
}

/** The SVG chart of a report (also from a saved --json file: `--chart-from FILE`). */
function chart(report: ChartInput): string {
  const o = { quick: report.quick }
  const rows = report.rows
  const ratios = report.ratios
  const machineBefore = report.machine.before
  const version = String(machineBefore.node ?? process.version)
  const label = (r: PhaseResult) => `${r.system === 'unreplicated' ? 'unrepl.' : r.system} ${r.mode.replace('async, window', 'async w')}${r.f > 1 ? ` f=${r.f}` : ''}`
  return barChart(
    `bftrc bench${o.quick ? ' (quick)' : ''}: libp2p on 127.0.0.1, ${String(machineBefore.nproc)} cores`,
    [
    { title: 'latency p50 (bar), p99 (mark)', unit: 'ms', log: true, bars: rows.map((r) => ({ label: label(r), value: r.latencyMs.p50, marker: r.latencyMs.p99 })) },
    { title: 'throughput', unit: 'ops/s', log: true, bars: rows.map((r) => ({ label: label(r), value: r.opsPerSec })) },
    ],
    `${report.when}, node ${version}; replicated/CLBFT latency p50 ×${ratios.replicatedOverClbftLatencyP50}, messages ×${ratios.replicatedOverClbftMessages}; CLBFT/unreplicated throughput ×${ratios.clbftOverUnreplicatedThroughput}`,
  )
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2))
  if (o.chartFrom !== undefined) {
    writeFileSync(o.svg, chart(JSON.parse(readFileSync(o.chartFrom, 'utf8')) as ChartInput))
    log(`chart: ${o.svg} (from ${o.chartFrom})`)
    return
  }
  const sizes: Sizes = o.quick
    ? { seqOps: 50, tputSeconds: 2, rawWindow: 64, clients: 8, syncCalls: 50, asyncCalls: 120, asyncWindow: 16, f2Ops: 30, idleSeconds: 1, warmupCalls: 5 }
    : { seqOps: 250, tputSeconds: 8, rawWindow: 64, clients: 16, syncCalls: 250, asyncCalls: 800, asyncWindow: 32, f2Ops: 50, idleSeconds: 3, warmupCalls: 20 }
  const started = Date.now()
  const machineBefore = machine()
  const jiffiesBefore = cpuJiffies()
  const { dataRoot, logDir } = runFolder(o.dataRoot, 'bftrc-bench-')
  stuckDumpDir = logDir
  log(`${o.quick ? 'quick' : 'full'} run; data and logs in ${dataRoot}`)
  const hardStop = setTimeout(
    () => {
      log('hard time limit reached: killing the processes')
      killAll()
      process.exit(3)
    },
    o.quick ? 120_000 : 480_000,
  )
  hardStop.unref()
  let ok = false
  try {
    const rows: PhaseResult[] = []
    rows.push(...(await runRaw(sizes, dataRoot, logDir)))
    rows.push(...(await runGroups(1, sizes, dataRoot, logDir, true)))
    if (o.f2) rows.push(...(await runGroups(2, sizes, dataRoot, logDir, false)))
    const sim = o.sim ? await simulate(o.quick ? [1, 10] : [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) : []
    const find = (system: string, mode: string, f = 1) => rows.find((r) => r.system === system && r.mode.startsWith(mode) && r.f === f)
    const rawSeq = find('unreplicated', 'sequential', 0)
    const rawPipe = find('unreplicated', 'pipelined', 0)
    const cSeq = find('CLBFT', 'sequential')
    const cTput = find('CLBFT', `${sizes.clients} clients`)
    const rSync = find('replicated', 'sync')
    const rAsync = find('replicated', 'async')
    const ratios = {
      replicatedOverClbftLatencyP50: ratio(rSync?.latencyMs.p50 ?? Number.NaN, cSeq?.latencyMs.p50 ?? Number.NaN),
      replicatedOverClbftLatencyP99: ratio(rSync?.latencyMs.p99 ?? Number.NaN, cSeq?.latencyMs.p99 ?? Number.NaN),
      replicatedOverClbftMessages: ratio(rSync?.messagesPerOp ?? Number.NaN, cSeq?.messagesPerOp ?? Number.NaN),
      replicatedOverClbftCpu: ratio(rSync?.cpuMsPerOp ?? Number.NaN, cSeq?.cpuMsPerOp ?? Number.NaN),
      clbftOverUnreplicatedThroughput: ratio(cTput?.opsPerSec ?? Number.NaN, rawPipe?.opsPerSec ?? Number.NaN, 3),
      replicatedAsyncOverClbftThroughput: ratio(rAsync?.opsPerSec ?? Number.NaN, cTput?.opsPerSec ?? Number.NaN),
      clbftOverUnreplicatedLatencyP50: ratio(cSeq?.latencyMs.p50 ?? Number.NaN, rawSeq?.latencyMs.p50 ?? Number.NaN),
      f2: o.f2
        ? {
            replicatedOverClbftLatencyP50: ratio(find('replicated', 'sync', 2)?.latencyMs.p50 ?? Number.NaN, find('CLBFT', 'sequential', 2)?.latencyMs.p50 ?? Number.NaN),
            clbftF2OverF1LatencyP50: ratio(find('CLBFT', 'sequential', 2)?.latencyMs.p50 ?? Number.NaN, cSeq?.latencyMs.p50 ?? Number.NaN),
            replicatedF2OverF1LatencyP50: ratio(find('replicated', 'sync', 2)?.latencyMs.p50 ?? Number.NaN, rSync?.latencyMs.p50 ?? Number.NaN),
          }
        : undefined,
    }
    const jiffiesAfter = cpuJiffies()
    const machineBusyShare = ratio(jiffiesAfter.busy - jiffiesBefore.busy, jiffiesAfter.total - jiffiesBefore.total)
    const report = {
      when: new Date(started).toISOString(),
      quick: o.quick,
      seconds: round((Date.now() - started) / 1000, 1),
      machine: { before: machineBefore, after: machine(), busyShareDuringRun: machineBusyShare },
      storage: `LevelDB (classic-level, synced batches) under ${o.dataRoot}, one folder per replica`,
      sizes,
      rows,
      ratios,
      idle,
      simulator: sim,
    }
    const lines: string[] = []
    lines.push(`bftrc bench (${o.quick ? 'quick' : 'full'}), ${report.seconds} s, ${String(machineBefore.nproc)} cores, ${String(machineBefore.memoryGiB)} GiB, node ${process.version}, load ${JSON.stringify(machineBefore.loadavg)} → ${JSON.stringify(report.machine.after.loadavg)}, CPUs busy ${Math.round(machineBusyShare * 100)} % of the run (this benchmark and other jobs)`)
    lines.push('')
    lines.push(table(rows))
    lines.push('')
    lines.push('ratios:')
    lines.push(`  replicated sync / CLBFT sequential, latency p50: ${ratios.replicatedOverClbftLatencyP50} (p99 ${ratios.replicatedOverClbftLatencyP99}); design: 8/5 = 1.6 message delays`)
    lines.push(`  replicated sync / CLBFT sequential, messages per op: ${ratios.replicatedOverClbftMessages}; CPU per op: ${ratios.replicatedOverClbftCpu}`)
    lines.push(`  CLBFT (${sizes.clients} clients) / unreplicated pipelined, throughput: ${ratios.clbftOverUnreplicatedThroughput}`)
    lines.push(`  replicated async / CLBFT (${sizes.clients} clients), throughput: ${ratios.replicatedAsyncOverClbftThroughput}`)
    lines.push(`  CLBFT / unreplicated, sequential latency p50: ${ratios.clbftOverUnreplicatedLatencyP50}`)
    if (ratios.f2 !== undefined) lines.push(`  f=2: replicated/CLBFT latency p50 ${ratios.f2.replicatedOverClbftLatencyP50}; CLBFT f2/f1 ${ratios.f2.clbftF2OverF1LatencyP50}; replicated f2/f1 ${ratios.f2.replicatedF2OverF1LatencyP50}`)
    for (const x of idle) lines.push(`  idle system, f=${x.f}: KV group ${x.kvCpuMsPerSec} ms CPU/s and ${x.kvMessagesPerSec} messages/s; client group ${x.cgCpuMsPerSec} ms CPU/s and ${x.cgMessagesPerSec} messages/s`)
    if (sim.length > 0) {
      lines.push('')
      lines.push('simulator (messages and message delays per call, failure-free):')
      lines.push('| f | n | CLBFT delays | CLBFT messages | replicated delays | replicated messages | inter-group messages | messages ratio |')
      lines.push('|---|---|---|---|---|---|---|---|')
      for (const s of sim) lines.push(`| ${s.f} | ${s.n} | ${s.clbftDelays} | ${s.clbftMessages} | ${s.replicatedDelays} | ${s.replicatedMessages} | ${s.interGroupMessages} | ${s.messageRatio} |`)
    }
    process.stdout.write(`${lines.join('\n')}\n`)
    const svg = chart(report)
    writeFileSync(o.svg, svg)
    log(`chart: ${o.svg}`)
    if (o.json !== undefined) {
      writeFileSync(o.json, `${JSON.stringify(report, null, 2)}\n`)
      log(`figures: ${o.json}`)
    }
    ok = true
  } finally {
    killAll()
    if (ok) rmSync(dataRoot, { recursive: true, force: true })
    else log(`failed: logs kept in ${logDir}`)
  }
}

process.on('SIGINT', () => {
  killAll()
  process.exit(130)
})

main().then(
  () => process.exit(0),
  (err: unknown) => {
    log(`error: ${(err as Error).stack ?? err}`)
    killAll()
    process.exit(1)
  },
)

