/**
 * `pnpm load`: an open-loop client at increasing rates against a 4-replica KV group (real
 * processes, LevelDB on local disk, libp2p on 127.0.0.1), past saturation. For each step:
 * offered rate, throughput, latency, timeouts, requests shed at the client and dropped by the
 * replicas, replica memory and queue sizes. Then the group drains and must still agree (same
 * sequence number and state digest everywhere) and be live (an ordered write and read), and
 * replica memory past saturation must stay bounded (load-report.ts: MEMORY_RULE, RETAINED_HEAP_RULE).
 *
 *   node dist/bench/bench/load.js [--quick] [--steps R1,R2,..] [--step-seconds S] [--clients N] [--timeout-ms MS]
 *                                 [--arrivals poisson|uniform] [--seed N] [--max-pending N] [--json FILE] [--data-root DIR]
 *
 * Exit: 0 all checks held, 1 a check failed (or the run broke), 2 usage error.
 */
import { rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { type Membership, generateKeyPair, peerIdOf } from '@bftrc/crypto'
import { kv } from '../src/kv-app.js'
import { OpenLoopGenerator } from './load-generator.js'
import { LoadChecks } from './load-checks.js'
import { type LoadOptions, USAGE, UsageError, arrivalOffsets, arrivalRng, parseLoadArgs } from './load-plan.js'
import { type Measured, buildReport, renderReport } from './load-output.js'
import { type ClientSide, type StepCounts, type StepSummary, clientSideDelta, summariseStep } from './load-report.js'
import { cpuJiffies, machine } from './machine.js'
import type { NodeStatus } from './metrics.js'
import { type Child, type ClientEndpoint, clientHost, invokedFrom, killAll, logger, makeCluster, runFolder, startGroup, withTimeout } from './processes.js'
import { quantile, ratio, round } from './stats.js'

const log = logger('load')
const KV = 'kv'

/** Statuses of every replica that answers (a replica too busy to answer in 10 s is left out). */
async function statusAll(group: readonly Child[], gc = false): Promise<NodeStatus[]> {
  const settled = await Promise.allSettled(group.map((c) => c.status({ gc })))
  return settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))
}

/** Samples the replicas every second until stopped (one request at a time). */
function sampler(group: readonly Child[], into: NodeStatus[]): () => void {
  let busy = false
  const timer = setInterval(() => {
    if (busy) return
    busy = true
    void statusAll(group).then((s) => {
      into.push(...s)
      busy = false
    })
  }, 1000)
  return () => clearInterval(timer)
}

/**
 * Starts `count` client identities (open clients, each its own libp2p node, connected to every
 * replica), 32 at a time. A ClientHost ticks only while its request is outstanding, and these
 * every 100 ms (retransmission timers start at 500 ms), so hundreds of them cost little.
 */
async function startClients(membership: Membership, count: number): Promise<ClientEndpoint[]> {
  const replicas = membership.group(KV)!.members.map((m) => m.id)
  const out: ClientEndpoint[] = []
  for (let i = 0; i < count; i += 32) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(32, count - i) }, async () => {
        const kp = generateKeyPair()
        const ep = await clientHost(membership, `peer:${peerIdOf(kp.publicKey)}`, kp, [KV], { maxQueued: 1, tickIntervalMs: 100 })
        await ep.transport.whenConnected(replicas, 60_000)
        return ep
      }),
    )
    out.push(...batch)
  }
  return out
}

interface StepRecord {
  readonly rate: number
  readonly counts: StepCounts
  readonly seconds: number
  readonly clientSide: ClientSide
  readonly samples: NodeStatus[]
  readonly end: Promise<NodeStatus[]>
}

async function runSteps(o: LoadOptions, gen: OpenLoopGenerator, group: readonly Child[], start: NodeStatus[]): Promise<StepSummary[]> {
  const records: StepRecord[] = []
  let clientBefore = gen.clientSide()
  for (const [i, rate] of o.steps.entries()) {
    const samples: NodeStatus[] = []
    const stop = sampler(group, samples)
    const t0 = performance.now()
    const counts = await gen.runStep(arrivalOffsets(rate, o.stepSeconds, o.arrivals, arrivalRng(o.seed, i)), o.stepSeconds * 1000)
    const seconds = (performance.now() - t0) / 1000
    stop()
    const clientAfter = gen.clientSide()
    const clientSide = clientSideDelta(clientBefore, clientAfter)
    clientBefore = clientAfter
    // The step's closing statuses are taken while the next step runs: no pause in the arrivals.
    records.push({ rate, counts, seconds, clientSide, samples, end: statusAll(group) })
    const c = counts
    log(`${rate} ops/s offered: ${round(c.completed / seconds, 1)} ops/s done, p50 ${round(quantile(c.latenciesMs, 0.5), 1)} ms, p99 ${round(quantile(c.latenciesMs, 0.99), 1)} ms, ${c.timedOut} timed out, ${c.shedAtClient} shed at the client, ${gen.outstanding} outstanding, issue lag p99 ${round(quantile(c.issueLagMs, 0.99), 1)} ms, ${clientSide.retransmits} retransmissions, ${clientSide.reconnects} reconnects`)
  }
  const ends = await Promise.all(records.map((r) => r.end))
  return records.map((r, i) => summariseStep(r.rate, r.seconds, r.counts, { before: i === 0 ? start : (ends[i - 1] as NodeStatus[]), after: ends[i] as NodeStatus[], samples: r.samples }, r.clientSide))
}

async function run(o: LoadOptions): Promise<boolean> {
  const started = Date.now()
  const machineBefore = machine()
  const jiffiesBefore = cpuJiffies()
  const { dataRoot, logDir } = runFolder(o.dataRoot, 'bftrc-load-')
  log(`${o.quick ? 'quick' : 'full'} run: steps ${o.steps.join(', ')} ops/s × ${o.stepSeconds} s, ${o.clients} client identities, deadline ${o.timeoutMs} ms, ${o.arrivals} arrivals${o.maxPending !== undefined ? `, replicas' maxPendingRequests ${o.maxPending}` : ''}; data and logs in ${dataRoot}`)
  const c = await makeCluster([{ name: KV, f: 1 }], [], true)
  const group = startGroup(c, KV, 'replica', dataRoot, logDir, { execArgv: ['--expose-gc'], ...(o.maxPending !== undefined ? { core: { maxPendingRequests: o.maxPending } } : {}) })
  const endpoints: ClientEndpoint[] = []
  let kept = true
  try {
    await withTimeout(Promise.all(group.map((x) => x.ready)), 30_000, 'replicas start')
    log(`replicas ready; starting ${o.clients} client identities (+1 checker)`)
    endpoints.push(...(await startClients(c.membership, o.clients + 1)))
    const checker = endpoints.pop() as ClientEndpoint
    // Warm-up: one request per identity (the replicas learn every client key; JIT), all at once.
    await Promise.all(endpoints.map((ep, i) => withTimeout(ep.host.invoke(KV, kv.put(`load/warm-up/${i}`, 'x')), 120_000, 'warm-up request')))
    log('warmed up: one request per identity answered')
    const baseline = await statusAll(group, true)
    const gen = new OpenLoopGenerator({ endpoints, group: KV, timeoutMs: o.timeoutMs, op: (n) => kv.put(`load/${n % 1024}`, `v${n} ${'x'.repeat(24)}`) })
    const steps = await runSteps(o, gen, group, await statusAll(group))
    log(`steps done; draining ${gen.outstanding} outstanding requests`)
    const drain = await gen.drain(60_000 + o.timeoutMs)
    const correctness = await new LoadChecks(group, checker, log).run()
    const final = await statusAll(group, true)
    const jiffiesAfter = cpuJiffies()
    const measured: Measured = { started, machineBefore, machineAfter: machine(), busyShare: ratio(jiffiesAfter.busy - jiffiesBefore.busy, jiffiesAfter.total - jiffiesBefore.total), baseline, final, steps, drain, stillOutstanding: gen.outstanding, correctness }
    const report = buildReport(o, measured, process.memoryUsage.rss(), Date.now())
    process.stdout.write(`${renderReport(report)}\n`)
    if (o.json !== undefined) {
      writeFileSync(o.json, `${JSON.stringify(report, null, 2)}\n`)
      log(`figures: ${o.json}`)
    }
    kept = !report.ok
    return report.ok
  } finally {
    await Promise.all(endpoints.map((e) => e.host.stop().catch(() => {})))
    await Promise.all(group.map((x) => x.stop()))
    killAll()
    if (kept) log(`logs kept in ${logDir}`)
    else rmSync(dataRoot, { recursive: true, force: true })
  }
}

async function main(): Promise<number> {
  let o: LoadOptions
  try {
    o = parseLoadArgs(process.argv.slice(2), invokedFrom, tmpdir())
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`load: ${err.message}\n${USAGE}\n`)
    return 2
  }
  if (o.help) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  // Start-up, drain and checks take at most ~5 min on a starved machine; then the steps.
  const limitMs = (o.steps.length * o.stepSeconds + 600) * 1000 + o.timeoutMs
  const hardStop = setTimeout(() => {
    log(`hard time limit (${limitMs / 1000} s) reached: killing the processes`)
    killAll()
    process.exit(1)
  }, limitMs)
  hardStop.unref()
  return (await run(o)) ? 0 : 1
}

process.on('SIGINT', () => {
  killAll()
  process.exit(130)
})

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`error: ${(err as Error).stack ?? err}`)
    killAll()
    process.exit(1)
  },
)
