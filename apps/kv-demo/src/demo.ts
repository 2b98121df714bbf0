/**
 * `kv-demo demo` and `kv-demo up`: prepare the data folder, start every replica as its own
 * process, start the bank's workload through an ordered plain-client request, inject the
 * scheduled faults, show progress (terminal and dashboard), then verify and stop:
 *
 *  - the bank's report, read with an ordered request (f+1 bank replicas vouch for it): transfers
 *    completed, audits, every acknowledged write with its value;
 *  - the KV's contents under `bank/`, read with ordered scans (f+1 KV replicas vouch for them):
 *    every acknowledged write must be there (`lostAcknowledgedWrites`), the accounts' total
 *    must be what it was at the start;
 *  - agreement: every correct replica of each group ends at the same sequence number with the
 *    same state digest (from the final status each replica writes when it stops).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ClientHost } from '@bftrc/client-agreement/node-host'
import { type Membership, decode, encode } from '@bftrc/crypto'
import { BANK_GROUP, type DemoOptions, KV_GROUP, UsageError, checkFaults } from './args.js'
import { BANK_PREFIX, type BankReport } from './bank-app.js'
import type { BehaviourName } from './byzantine.js'
import { type Dashboard, type DashboardState, startDashboard } from './dashboard.js'
import type { KvEntry } from './kv-app.js'
import { type Io, closeDataDir, eventPrinter, openDataDir, startSupervisorClient, trapInterrupts } from './session.js'
import { type ReplicaStatusJson, healthOf } from './status.js'
import { Supervisor } from './supervisor.js'
import { type GroupSummary, badMessagesSeen, bankFinished, checkAcknowledgedWrites, faultsSeen, groupSummaries, latestBankProgress, readBankReport, reportProblems, scanAll, waitForAgreement } from './verify.js'


export const CURRENT_POINTER = join(tmpdir(), 'bftrc-kv-demo.current')

interface FaultRun {
  readonly text: string
  readonly kind: 'crash' | 'restart' | 'byzantine'
  readonly replica: string
  readonly at: number | undefined
  status: 'scheduled' | 'applied' | 'active'
  appliedAt: number | undefined
}

export interface Summary {
  ok: boolean
  /** The workload ended before verification (false after Ctrl-C or a timeout: then only `problems` counts). */
  verified: boolean
  /** Transfers the bank completed in this run. */
  ops: number
  opsRequested: number
  acknowledgedWrites: number
  lostAcknowledgedWrites: number
  audits: { runs: number; ok: number; failed: number; failures: readonly string[] }
  totals: { expected: number | null; kv: number | null; bankFinal: number | null }
  calls: { sync: number; async: number; latencyMsP50: number | null; latencyMsP99: number | null }
  durationSeconds: number
  transfersPerSecond: number
  /** Wall-clock seconds of each phase: replicas starting, workload, verification, stopping, all. */
  timings: { start: number; workload: number; verify: number; stop: number; total: number }
  groups: Record<string, GroupSummary>
  faults: Array<{ spec: string; applied: boolean; atSeconds: number | null }>
  /** What the correct replicas saw of the faults: messages refused as forged, malformed or lying; views; state transfers. */
  faultsSeen: { badMessagesRefused: number; viewChanges: number; stateTransfers: number }
  problems: string[]
  dataDir: string | null
}

function num(v: unknown): number {
  return typeof v === 'number' ? v : 0
}

export async function runDemo(opts: DemoOptions, io: Io): Promise<number> {
  const sizes = { kv: opts.servers, bank: opts.clients }
  for (const w of checkFaults(opts.faults, sizes)) io.stderr(`kv-demo: warning: ${w}\n`)
  const dir = await openDataDir(opts, io)
  if (typeof dir === 'number') return dir
  const { root, useTemp, cluster } = dir
  const membership = cluster.membership
  const kvGroup = membership.group(KV_GROUP)!
  const bankGroup = membership.group(BANK_GROUP)!
  const byzantine = new Map<string, BehaviourName>()
  for (const f of opts.faults) if (f.kind === 'byzantine') byzantine.set(f.replica, f.behaviour)
  const faults: FaultRun[] = opts.faults.map((f) => ({ text: f.text, kind: f.kind, replica: f.replica, at: f.kind === 'byzantine' ? undefined : f.at, status: f.kind === 'byzantine' ? 'active' : 'scheduled', appliedAt: undefined }))

  const started = Date.now()
  let phase = 'starting'
  let workloadStart = 0
  let target = 0
  let progress: Record<string, unknown> = {}
  const problems: string[] = []
  const quiet = opts.json && !io.isTTY
  const sup = new Supervisor(cluster.layout, membership, byzantine, eventPrinter(io, started, quiet))

  const groupView = (name: string) => {
    const views = sup.slots.filter((s) => s.group === name && s.status !== undefined && s.byzantine === undefined).map((s) => (s.status as ReplicaStatusJson).view)
    return views.length === 0 ? 0 : Math.max(...views)
  }
  const state = (): DashboardState => ({
    title: `bftrc kv-demo: bank (replicated client, n=${bankGroup.n}) → kv (replicated server, n=${kvGroup.n})`,
    phase,
    elapsed: (Date.now() - started) / 1000,
    dataDir: root,
    progress,
    groups: [kvGroup, bankGroup].map((g) => {
      const slots = sup.slots.filter((s) => s.group === g.name)
      const maxExec = Math.max(0, ...slots.map((s) => s.status?.lastExecuted ?? 0))
      return {
        name: g.name,
        role: g.name === KV_GROUP ? 'replicated KV server' : 'replicated bank client',
        f: g.f,
        n: g.n,
        view: groupView(g.name),
        replicas: slots.map((s) => {
          const st = s.state === 'up' ? s.status : undefined
          const health = s.state === 'up' ? healthOf(st, maxExec) : s.state === 'starting' ? 'starting' : s.state === 'died' ? 'died' : 'down'
          return {
            id: s.id,
            state: s.state,
            health,
            byzantine: s.byzantine ?? null,
            primary: st?.isPrimary === true,
            view: st?.view ?? null,
            lastExecuted: st?.lastExecuted ?? null,
            stableCheckpoint: st?.stableCheckpoint ?? null,
            callsInFlight: st === undefined ? null : (st.sizes.outstanding ?? 0) + (st.sizes.incoming ?? 0),
            restarts: s.restarts,
            pid: s.state === 'up' || s.state === 'starting' ? (s.pid ?? null) : null,
            digest: st?.stateDigest ?? null,
            callLatencyP50: st === undefined || st.callLatency.samples === 0 ? null : st.callLatency.p50,
          }
        }),
      }
    }),
    faults: faults.map((f) => ({ text: f.text, status: f.status })),
    events: sup.events.map((e) => ({ t: (e.at - started) / 1000, text: e.text })),
  })

  let interrupted = false
  let wake: () => void = () => undefined
  const untrap = trapInterrupts(sup, () => {
    interrupted = true
    wake()
  })

  let dashboard: Dashboard | undefined
  let client: ClientHost | undefined
  const timers: Array<ReturnType<typeof setTimeout>> = []
  let report: BankReport | undefined
  let kvEntries: KvEntry[] | undefined
  let progressShown = false
  const render = () => {
    if (quiet || !io.isTTY) return
    io.stderr(`\r\x1b[2K${progressLine()}`)
    progressShown = true
  }
  const progressLine = () => {
    const s = state()
    const g = (name: string) => {
      const grp = s.groups.find((x) => x.name === name)!
      const up = grp.replicas.filter((r) => r.state === 'up' && r.byzantine === null)
      const seq = Math.max(0, ...up.map((r) => r.lastExecuted ?? 0))
      const cp = Math.max(0, ...up.map((r) => r.stableCheckpoint ?? 0))
      const down = grp.replicas.filter((r) => r.state !== 'up').length
      return `${name} v${grp.view} seq ${seq} cp ${cp}${down > 0 ? ` (${down} down)` : ''}`
    }
    const faultsSeen = badMessagesSeen(sup)
    const applied = faults.filter((f) => f.status !== 'scheduled').length
    return `[${s.elapsed.toFixed(1)}s] ${phase}: transfers ${num(progress.completed)}/${target} · acked writes ${num(progress.ackedWrites)} · calls ${num(progress.syncCalls) + num(progress.asyncCalls)} · audits ${num(progress.audits)}${num(progress.auditsFailed) > 0 ? ` (${num(progress.auditsFailed)} FAILED)` : ''} · ${g(KV_GROUP)} · ${g(BANK_GROUP)} · faults ${applied}/${faults.length} applied, ${faultsSeen} bad messages refused`
  }
  let lastPlainLine = 0
  const tickDisplay = () => {
    if (quiet) return
    if (io.isTTY) render()
    else if (Date.now() - lastPlainLine >= 2000) {
      lastPlainLine = Date.now()
      io.stderr(`${progressLine()}\n`)
    }
  }

  const bankProgress = () => {
    const best = latestBankProgress(sup)
    if (best === undefined) return
    const inFlight = Math.max(0, ...sup.slots.filter((s) => s.group === BANK_GROUP && s.status !== undefined).map((s) => s.status!.sizes.outstanding ?? 0))
    progress = { ...best, inFlight, badMessagesRefused: badMessagesSeen(sup) }
  }
  const bankDone = () => bankFinished(sup, target)

  let exitCode = 1
  let completedBefore = 0
  try {
    if (opts.dashboard) {
      try {
        dashboard = await startDashboard(opts.dashboardPort ?? 0, state)
      } catch (err) {
        throw new Error(`dashboard: cannot listen on 127.0.0.1:${opts.dashboardPort ?? 0}: ${(err as Error).message}`)
      }
    }
    if (!quiet) {
      io.stderr(`kv-demo: data ${root}${cluster.created ? ' (new)' : ' (reused)'}${cluster.movedPorts ? ', ports moved' : ''}; kv ${kvGroup.n} replicas (f=${kvGroup.f}), bank ${bankGroup.n} replicas (f=${bankGroup.f})\n`)
      if (dashboard !== undefined) io.stderr(`kv-demo: dashboard ${dashboard.url}\n`)
    }
    // `up` announces where to look on stdout, unless stdout is reserved for the JSON summary.
    const say = opts.json ? io.stderr : io.stdout
    if (dashboard !== undefined && opts.command === 'up') say(`dashboard: ${dashboard.url}\n`)
    await sup.startAll(90_000)
    const upAt = Date.now()
    client = await startSupervisorClient(cluster.layout, membership)
    if (opts.command === 'up') {
      writeFileSync(CURRENT_POINTER, `${root}\n`)
      say(`cluster up: data ${root}\n  try: kv-demo status --data-dir ${root}\n       kv-demo scan bank/acct/ --data-dir ${root}\n  Ctrl-C stops it\n`)
    }

    // The workload: one ordered request, so every bank replica starts it at the same point.
    phase = 'workload'
    // (With --ops 0 this still creates the accounts of a fresh bank, for interactive use.)
    const r = decode((await client.invoke(BANK_GROUP, encode({ op: 'run', transfers: opts.ops, lanes: opts.lanes }), { timeoutMs: 60_000 })).result) as Record<string, unknown>
    if (r.ok !== true) throw new Error(`the bank refused the workload: ${String(r.error)}`)
    target = num(r.target)
    completedBefore = num(r.completed)
    sup.event(`workload: ${opts.ops} transfers requested (bank target ${target})`)
    workloadStart = Date.now()
    for (const f of faults) {
      if (f.at === undefined) continue
      timers.push(
        setTimeout(() => {
          if (f.kind === 'crash') sup.crash(f.replica)
          else sup.restart(f.replica)
          f.status = 'applied'
          f.appliedAt = (Date.now() - workloadStart) / 1000
        }, f.at * 1000),
      )
    }

    const deadline = workloadStart + opts.timeoutSeconds * 1000
    let workloadDone = false
    let announced = false
    for (;;) {
      await sup.poll()
      bankProgress()
      tickDisplay()
      const faultsDone = faults.every((f) => f.status !== 'scheduled')
      if (!workloadDone && bankDone()) {
        workloadDone = true
        sup.event(`workload done: ${num(progress.completed) - completedBefore} transfers in ${((Date.now() - workloadStart) / 1000).toFixed(1)} s`)
      }
      if (workloadDone && faultsDone && opts.command === 'demo') break
      if (workloadDone && opts.command === 'up' && !announced) {
        announced = true
        phase = 'running (Ctrl-C stops)'
      }
      if (interrupted) {
        if (opts.command === 'demo') problems.push('interrupted')
        break
      }
      if (opts.command === 'demo' && Date.now() > deadline) {
        problems.push(`timed out after ${opts.timeoutSeconds} s (${workloadDone ? 'waiting for scheduled faults' : `workload at ${num(progress.completed)}/${target}`})`)
        break
      }
      if (sup.failures.length > 0 && opts.command === 'demo') break
      await new Promise<void>((r) => {
        wake = r
        setTimeout(r, 300)
      })
    }
    for (const t of timers) clearTimeout(t)
    const durationSeconds = (Date.now() - workloadStart) / 1000
    const verifyAt = Date.now()
    if (progressShown) io.stderr('\n')

    // Verification, through the protocol: ordered requests, f+1 matching replies.
    phase = 'verifying'
    sup.event('verifying: bank report, KV contents, agreement')
    // After Ctrl-C of the demo, be quick about it.
    const verifyMs = interrupted && opts.command === 'demo' ? 5_000 : 20_000
    if (sup.failures.length === 0) {
      try {
        report = await readBankReport(client, verifyMs)
      } catch (err) {
        problems.push(`could not read the bank's report: ${(err as Error).message}`)
      }
      try {
        kvEntries = await scanAll(client, BANK_PREFIX, verifyMs)
      } catch (err) {
        problems.push(`could not scan the KV: ${(err as Error).message}`)
      }
    }
    // While transfers still run (interrupted, timed out) the groups keep moving: agreement and the
    // write checks are only meaningful once the workload is over.
    const converged = workloadDone ? await waitForAgreement(sup, membership, verifyMs + 10_000) : false
    if (workloadDone && !converged) problems.push(`the correct replicas did not reach the same state within ${(verifyMs + 10_000) / 1000} s of the end`)

    phase = 'stopping'
    const stopAt = Date.now()
    await client.stop()
    client = undefined
    await sup.stopAll(10_000)
    phase = 'done'
    const secs = (a: number, b: number) => Math.round((b - a) / 100) / 10
    const timings = { start: secs(started, upAt), workload: secs(workloadStart, verifyAt), verify: secs(verifyAt, stopAt), stop: secs(stopAt, Date.now()), total: secs(started, Date.now()) }

    const summary = summarize({ sup, membership, report, kvEntries, problems, faults, opts, target, completedBefore, durationSeconds, root, useTemp, timings, verified: workloadDone })
    exitCode = summary.ok ? 0 : 1
    if (opts.json) io.stdout(`${JSON.stringify(summary)}\n`)
    else io.stdout(humanSummary(summary))
    return exitCode
  } catch (err) {
    if (err instanceof UsageError) throw err
    io.stderr(`\nkv-demo: ${(err as Error).message}\n`)
    return 1
  } finally {
    for (const t of timers) clearTimeout(t)
    untrap()
    if (client !== undefined) await client.stop().catch(() => undefined)
    if (sup.slots.some((s) => s.proc !== undefined)) await sup.stopAll(5_000)
    if (dashboard !== undefined) await dashboard.close()
    if (opts.command === 'up') {
      try {
        if (readFileSync(CURRENT_POINTER, 'utf8').trim() === root) rmSync(CURRENT_POINTER, { force: true })
      } catch {
        // no pointer
      }
    }
    closeDataDir(dir, opts.keep, quiet, io)
  }
}

interface SummaryInput {
  readonly sup: Supervisor
  readonly membership: Membership
  readonly report: BankReport | undefined
  readonly kvEntries: KvEntry[] | undefined
  readonly problems: string[]
  readonly faults: readonly FaultRun[]
  readonly opts: DemoOptions
  readonly target: number
  readonly completedBefore: number
  readonly durationSeconds: number
  readonly root: string
  readonly useTemp: boolean
  readonly timings: Summary['timings']
  /** The workload ended: the invariants and agreement can be checked. */
  readonly verified: boolean
}

export function summarize(x: SummaryInput): Summary {
  const problems = [...x.problems, ...x.sup.failures]
  const r = x.report
  const writes = checkAcknowledgedWrites(r, x.kvEntries)
  if (!x.verified) problems.push(`not verified: the workload did not end (${r === undefined ? 'no report' : `${r.completed - x.completedBefore} of ${x.opts.ops} transfers`})`)
  problems.push(...reportProblems(r, writes, { verified: x.verified, requireReport: x.opts.command === 'demo' || x.target > 0, target: x.opts.command === 'demo' ? x.target : undefined }))
  for (const f of x.faults) if (f.status === 'scheduled') problems.push(`fault ${f.text} was not applied`)
  const { groups, problems: disagreements } = groupSummaries(x.sup, x.membership)
  if (x.verified) problems.push(...disagreements)
  const bankLatency = x.sup.slots.filter((s) => s.group === BANK_GROUP && s.byzantine === undefined && s.status !== undefined).map((s) => s.status!.callLatency)
  const lat = bankLatency.sort((a, b) => b.samples - a.samples)[0]
  const ops = r === undefined ? 0 : r.completed - x.completedBefore
  return {
    ok: problems.length === 0,
    verified: x.verified,
    ops,
    opsRequested: x.opts.ops,
    acknowledgedWrites: r?.ackedWrites ?? 0,
    lostAcknowledgedWrites: writes.lost,
    audits: { runs: r?.audits.runs ?? 0, ok: r?.audits.ok ?? 0, failed: r?.audits.failed ?? 0, failures: r?.audits.failures ?? [] },
    totals: { expected: r?.expectedTotal ?? null, kv: writes.kvTotal, bankFinal: r?.final?.total ?? null },
    calls: { sync: r?.syncCalls ?? 0, async: r?.asyncCalls ?? 0, latencyMsP50: lat === undefined || lat.samples === 0 ? null : lat.p50, latencyMsP99: lat === undefined || lat.samples === 0 ? null : lat.p99 },
    durationSeconds: Math.round(x.durationSeconds * 10) / 10,
    transfersPerSecond: x.durationSeconds > 0 ? Math.round((ops / x.durationSeconds) * 100) / 100 : 0,
    timings: x.timings,
    groups,
    faults: x.faults.map((f) => ({ spec: f.text, applied: f.status !== 'scheduled', atSeconds: f.appliedAt === undefined ? null : Math.round(f.appliedAt * 10) / 10 })),
    faultsSeen: faultsSeen(x.sup, groups),
    problems,
    dataDir: x.useTemp && !x.opts.keep ? null : x.root,
  }
}

export function humanSummary(s: Summary): string {
  const lines = [
    '',
    `kv-demo summary: ${s.ok ? 'OK — all invariants held' : 'FAILED'}`,
    `  transfers        ${s.ops} of ${s.opsRequested} in ${s.durationSeconds} s (${s.transfersPerSecond}/s)`,
    `  calls            ${s.calls.sync} synchronous, ${s.calls.async} asynchronous; bank→kv call latency p50 ${s.calls.latencyMsP50 ?? '–'} ms, p99 ${s.calls.latencyMsP99 ?? '–'} ms`,
    `  audits           ${s.audits.runs} run, ${s.audits.ok} ok, ${s.audits.failed} failed; total expected ${s.totals.expected ?? '–'}, in the KV ${s.totals.kv ?? '–'}`,
    `  writes           ${s.acknowledgedWrites} acknowledged, ${s.lostAcknowledgedWrites} lost`,
    `  time             ${s.timings.total} s: replicas up in ${s.timings.start} s, workload ${s.timings.workload} s, verification ${s.timings.verify} s, stop ${s.timings.stop} s`,
  ]
  for (const [name, g] of Object.entries(s.groups)) {
    lines.push(`  group ${name.padEnd(10)} n=${g.n} f=${g.f} view ${g.view}: ${g.agree ? `all correct replicas agree at seq ${g.lastExecuted}, digest ${g.digest?.slice(0, 16)}` : 'NO AGREEMENT'}`)
    for (const p of g.replicas) lines.push(`    ${p.id.padEnd(8)} ${p.role.padEnd(24)} ${p.end}${p.restarts > 0 ? ` (restarted ${p.restarts}×)` : ''} seq ${p.lastExecuted ?? '–'} view ${p.view ?? '–'} ${p.digest?.slice(0, 16) ?? ''}`)
  }
  if (s.faults.length > 0) lines.push(`  faults           ${s.faults.map((f) => `${f.spec}${f.applied ? '' : ' (not applied)'}`).join(', ')}`)
  lines.push(`  faults seen      ${s.faultsSeen.badMessagesRefused} bad messages refused by correct replicas, ${s.faultsSeen.viewChanges} view changes, ${s.faultsSeen.stateTransfers} state transfers`)
  for (const p of s.problems) lines.push(`  problem: ${p}`)
  if (s.dataDir !== null) lines.push(`  data             ${s.dataDir}`)
  return `${lines.join('\n')}\n`
}
