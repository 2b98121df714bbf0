/**
 * `kv-demo chaos`: the bank's workload for `--duration` seconds while replicas are killed (-9)
 * and restarted from disk, partitioned away and paused, at most f per group at once, on a
 * schedule drawn from `--seed` (chaos-schedule.ts, applied by chaos-faults.ts). Then, with
 * transfers still in flight, every replica is killed at once and all restart from disk; the run
 * waits for both groups to order requests again (a stop of the workload, a KV write), lets the
 * transfers in flight finish, and verifies through the protocol (verify.ts): every acknowledged
 * write present, every audit of the bank's invariant passed, the correct replicas of each group
 * at one sequence number with one state digest, no replica died on its own.
 */
import { randomInt } from 'node:crypto'
import type { ClientHost } from '@bftrc/client-agreement/node-host'
import { decode, encode } from '@bftrc/crypto'
import { BANK_GROUP, type ChaosOptions, KV_GROUP, MAX_SEED } from './args.js'
import { BANK_PREFIX, type BankReport } from './bank-app.js'
import { FaultInjector, type FaultRecord, downOrCutNow } from './chaos-faults.js'
import { type ChaosEpisode, chaosPlan } from './chaos-schedule.js'
import { decodeKvResult, kv } from './kv-app.js'
import { type Io, type OpenedDataDir, closeDataDir, eventPrinter, openDataDir, startSupervisorClient, trapInterrupts } from './session.js'
import { Supervisor, sleep } from './supervisor.js'
import { type GroupSummary, bankFinished, checkAcknowledgedWrites, faultsSeen, groupSummaries, latestBankProgress, readBankReport, reportProblems, scanAll, waitForAgreement } from './verify.js'

/** Transfers per workflow incarnation of a fresh chaos bank: a stop takes effect within 2 × 2 per lane. */
export const CHAOS_CHUNK = 2
/** The workload asks for more transfers than any run completes, and is stopped. */
const WORKLOAD_TRANSFERS = 1_000_000
/** After the kill-all, replicas wait this long for their group's peers before they tick. */
const RESTART_WAIT_PEERS_MS = 60_000
/** Each group must order a request within this long of the restart. */
const RECOVERY_TIMEOUT_MS = 120_000
/** The transfers in flight must finish, and the bank's final check, within this long. */
const DRAIN_TIMEOUT_MS = 120_000
const VERIFY_TIMEOUT_MS = 30_000
/** A KV key outside the bank's, written after the restart and read back at the end. */
export const MARKER_KEY = 'chaos/recovered'

export interface ChaosSummary {
  ok: boolean
  /** The run reached verification (false after Ctrl-C or a failure before it: then only `problems` counts). */
  verified: boolean
  seed: number
  /** The command line that replays this schedule. */
  replay: string
  /** Seconds of workload under faults, as requested. */
  durationSeconds: number
  transfers: number
  transfersPerSecond: number
  acknowledgedWrites: number
  lostAcknowledgedWrites: number
  /** Replica processes started again from disk: one per crash, plus every replica after the kill-all. */
  restarts: number
  crashes: number
  partitions: number
  pauses: number
  skippedFaults: number
  /** The most replicas of each group down, paused or cut off at once during the workload (≤ f). */
  maxFaultyAtOnce: Record<string, number>
  /** Every group's correct replicas ended at one sequence number with one state digest. */
  agree: boolean
  groups: Record<string, GroupSummary>
  audits: { runs: number; ok: number; failed: number; failures: readonly string[] }
  totals: { expected: number | null; kv: number | null }
  /** Seconds from the kill of every replica (null when not reached). */
  recovery: { replicasUp: number | null; kvOrdered: number | null; bankOrdered: number | null; drained: number | null; transfersAfterRestart: number | null }
  faults: FaultRecord[]
  faultsSeen: { badMessagesRefused: number; viewChanges: number; stateTransfers: number }
  timings: { start: number; workload: number; restart: number; verify: number; stop: number; total: number }
  problems: string[]
  dataDir: string | null
}

const secondsSince = (t: number) => Math.round((Date.now() - t) / 100) / 10

export async function runChaos(opts: ChaosOptions, io: Io): Promise<number> {
  const seed = opts.seed ?? randomInt(0, MAX_SEED + 1)
  const dir = await openDataDir(opts, io)
  if (typeof dir === 'number') return dir
  const run = new ChaosRun(opts, seed, dir, io)
  let ok = false
  try {
    const summary = await run.execute()
    ok = summary.ok
    io.stdout(opts.json ? `${JSON.stringify(summary)}\n` : humanChaosSummary(summary))
    return summary.ok ? 0 : 1
  } finally {
    // A failed run keeps its folder: the replicas' logs (run/<id>.log) say what happened.
    closeDataDir(dir, opts.keep || !ok, run.quiet, io)
  }
}

class ChaosRun {
  readonly quiet: boolean
  private readonly sup: Supervisor
  private readonly plan: ChaosEpisode[]
  private readonly started = Date.now()
  private client: ClientHost | undefined
  private injector: FaultInjector | undefined
  private interrupted = false
  private wake: () => void = () => undefined
  private readonly problems: string[] = []
  private readonly maxFaulty: Record<string, number> = {}
  private report: BankReport | undefined
  private totalsInKv: number | null = null
  private lost = 0
  private target = 0
  private completedBefore = 0
  private completedAtKill: number | null = null
  private workloadSeconds = 0
  private readonly recovery: ChaosSummary['recovery'] = { replicasUp: null, kvOrdered: null, bankOrdered: null, drained: null, transfersAfterRestart: null }
  private readonly timings: ChaosSummary['timings'] = { start: 0, workload: 0, restart: 0, verify: 0, stop: 0, total: 0 }
  private lastLine = 0

  constructor(
    private readonly opts: ChaosOptions,
    private readonly seed: number,
    private readonly dir: OpenedDataDir,
    private readonly io: Io,
  ) {
    this.quiet = opts.json && !io.isTTY
    const membership = dir.cluster.membership
    // A Byzantine replica is one of its group's f faults for the whole run: chaos faults only
    // the others, and never more than the f slots left.
    const groups = [...membership.groups.values()].map((g) => {
      const liars = g.members.filter((m) => opts.byzantine.has(m.id)).length
      return { name: g.name, members: g.members.map((m) => m.id).filter((id) => !opts.byzantine.has(id)), maxFaulty: Math.max(0, g.f - liars) }
    })
    this.plan = chaosPlan({ seed, durationSeconds: opts.durationSeconds, groups })
    this.sup = new Supervisor(dir.cluster.layout, membership, opts.byzantine, eventPrinter(io, this.started, this.quiet))
    for (const g of membership.groups.keys()) this.maxFaulty[g] = 0
  }

  private say(text: string): void {
    if (!this.quiet) this.io.stderr(`kv-demo chaos: ${text}\n`)
  }

  replayCommand(): string {
    const sizes = this.opts.explicitSizes ? ` --servers ${this.opts.servers} --clients ${this.opts.clients}` : ''
    const liars = [...this.opts.byzantine].map(([id, b]) => ` --fault byzantine:${id}=${b}`).join('')
    return `kv-demo chaos --seed ${this.seed} --duration ${this.opts.durationSeconds}${sizes}${this.opts.lanes !== 4 ? ` --lanes ${this.opts.lanes}` : ''}${liars}`
  }

  async execute(): Promise<ChaosSummary> {
    const untrap = trapInterrupts(this.sup, () => {
      this.interrupted = true
      this.injector?.stop()
      this.wake()
    })
    this.say(`seed ${this.seed}: ${this.plan.length} faults planned over ${this.opts.durationSeconds} s (replay: ${this.replayCommand()}); data ${this.dir.root}`)
    let verified = false
    try {
      verified = await this.phases()
    } catch (err) {
      this.problems.push((err as Error).message)
    } finally {
      untrap()
      this.injector?.stop()
      const stopAt = Date.now()
      await this.client?.stop().catch(() => undefined)
      if (this.sup.slots.some((s) => s.proc !== undefined)) await this.sup.stopAll(10_000)
      this.timings.stop = secondsSince(stopAt)
      this.timings.total = secondsSince(this.started)
    }
    return this.summary(verified)
  }

  /** Every phase in order; false when the run stopped before verification. */
  private async phases(): Promise<boolean> {
    await this.sup.startAll(90_000)
    this.client = await startSupervisorClient(this.dir.cluster.layout, this.dir.cluster.membership)
    this.timings.start = secondsSince(this.started)
    await this.workload()
    if (this.interrupted) this.problems.push('interrupted')
    if (this.interrupted || this.sup.failures.length > 0) return false
    const killedAt = await this.killAllAndRestart()
    if (!(await this.recover(killedAt))) return false
    const verifyAt = Date.now()
    await this.verify()
    this.timings.verify = secondsSince(verifyAt)
    return true
  }

  private async workload(): Promise<void> {
    const client = this.client as ClientHost
    const r = decode((await client.invoke(BANK_GROUP, encode({ op: 'run', transfers: WORKLOAD_TRANSFERS, lanes: this.opts.lanes, chunk: CHAOS_CHUNK }), { timeoutMs: 60_000 })).result) as Record<string, unknown>
    if (r.ok !== true) throw new Error(`the bank refused the workload: ${String(r.error)}`)
    this.completedBefore = typeof r.completed === 'number' ? r.completed : 0
    const startedAt = Date.now()
    const deadline = startedAt + this.opts.durationSeconds * 1000
    this.sup.event(`workload started; faults for ${this.opts.durationSeconds} s`)
    this.injector = new FaultInjector(this.sup, this.plan, startedAt, deadline)
    const injecting = this.injector.run()
    while (Date.now() < deadline && !this.interrupted && this.sup.failures.length === 0) {
      await this.sup.poll()
      const now = downOrCutNow(this.sup)
      for (const [g, n] of Object.entries(now)) this.maxFaulty[g] = Math.max(this.maxFaulty[g] ?? 0, n)
      this.showProgress(startedAt, now)
      await new Promise<void>((resolve) => {
        this.wake = resolve
        setTimeout(resolve, 300)
      })
    }
    if (Date.now() < deadline) this.injector.stop()
    await injecting
    this.problems.push(...this.injector.problems)
    const progress = latestBankProgress(this.sup)
    this.completedAtKill = typeof progress?.completed === 'number' ? progress.completed : null
    this.workloadSeconds = secondsSince(startedAt)
    this.timings.workload = this.workloadSeconds
  }

  private showProgress(startedAt: number, faultyNow: Record<string, number>): void {
    if (this.quiet || (!this.io.isTTY && Date.now() - this.lastLine < 5_000)) return
    this.lastLine = Date.now()
    const p = latestBankProgress(this.sup) ?? {}
    const group = (g: string) => {
      const up = this.sup.slots.filter((s) => s.group === g && s.state === 'up' && s.status !== undefined)
      const seq = Math.max(0, ...up.map((s) => s.status!.lastExecuted))
      const view = Math.max(0, ...up.map((s) => s.status!.view))
      return `${g} v${view} seq ${seq}${(faultyNow[g] ?? 0) > 0 ? ` (${faultyNow[g]} faulty)` : ''}`
    }
    const applied = this.injector?.records.filter((r) => r.outcome === 'applied').length ?? 0
    const line = `[${secondsSince(this.started).toFixed(1)}s] chaos ${secondsSince(startedAt).toFixed(0)}/${this.opts.durationSeconds} s: transfers ${Number(p.completed ?? 0) - this.completedBefore} · acked writes ${p.ackedWrites ?? 0} · audits ${p.audits ?? 0}${Number(p.auditsFailed ?? 0) > 0 ? ` (${p.auditsFailed} FAILED)` : ''} · ${group(KV_GROUP)} · ${group(BANK_GROUP)} · faults ${applied}/${this.plan.length}`
    this.io.stderr(this.io.isTTY ? `\r\x1b[2K${line}` : `${line}\n`)
  }

  /** SIGKILL every replica at once and start them all again from disk; returns the time of the kill. */
  private async killAllAndRestart(): Promise<number> {
    if (this.io.isTTY && !this.quiet) this.io.stderr('\n')
    const killedAt = Date.now()
    this.sup.crashAll()
    // Each new process starts once the killed one is gone (its LevelDB lock released).
    await Promise.all(this.sup.slots.map((s) => this.sup.restart(s.id, RESTART_WAIT_PEERS_MS)))
    await this.sup.waitUp(this.sup.slots, 90_000)
    this.recovery.replicasUp = secondsSince(killedAt)
    this.timings.restart = this.recovery.replicasUp
    return killedAt
  }

  /**
   * Both groups order a request again (the bank's stop, a KV write), then the transfers in
   * flight at the kill finish and the bank makes its final check. False when they do not in time.
   */
  private async recover(killedAt: number): Promise<boolean> {
    const client = this.client as ClientHost
    const ordered = async (group: string, op: Uint8Array): Promise<Uint8Array | undefined> => {
      try {
        const res = (await client.invoke(group, op, { timeoutMs: RECOVERY_TIMEOUT_MS })).result
        if (group === KV_GROUP) this.recovery.kvOrdered = secondsSince(killedAt)
        else this.recovery.bankOrdered = secondsSince(killedAt)
        return res
      } catch (err) {
        this.problems.push(`group ${group} did not order a request within ${RECOVERY_TIMEOUT_MS / 1000} s of the restart of every replica: ${(err as Error).message}`)
        return undefined
      }
    }
    const [stop, marker] = await Promise.all([ordered(BANK_GROUP, encode({ op: 'stop' })), ordered(KV_GROUP, kv.put(MARKER_KEY, this.markerValue()))])
    if (stop === undefined || marker === undefined) return false
    const stopped = decode(stop) as Record<string, unknown>
    const put = decodeKvResult(marker)
    if (stopped.ok !== true) this.problems.push(`the bank refused to stop: ${String(stopped.error)}`)
    if (!put.ok) this.problems.push(`the KV refused the marker write: ${put.error}`)
    if (stopped.ok !== true || !put.ok) return false
    this.target = Number(stopped.target)
    this.sup.event(`both groups order requests again; the bank stops at ${this.target} transfers`)
    const until = Date.now() + DRAIN_TIMEOUT_MS
    while (!bankFinished(this.sup, this.target)) {
      if (this.interrupted) {
        this.problems.push('interrupted')
        return false
      }
      if (this.sup.failures.length > 0) return false
      if (Date.now() > until) {
        this.problems.push(`the bank did not finish its transfers in flight and its final check within ${DRAIN_TIMEOUT_MS / 1000} s of the stop`)
        return false
      }
      await sleep(300)
      await this.sup.poll()
    }
    this.recovery.drained = secondsSince(killedAt)
    if (this.completedAtKill !== null) this.recovery.transfersAfterRestart = this.target - this.completedAtKill
    return true
  }

  private markerValue(): string {
    return JSON.stringify({ seed: this.seed, durationSeconds: this.opts.durationSeconds })
  }

  /** The checks through the protocol, then agreement from the final statuses. */
  private async verify(): Promise<void> {
    const client = this.client as ClientHost
    this.report = await readBankReport(client, VERIFY_TIMEOUT_MS)
    const entries = await scanAll(client, BANK_PREFIX, VERIFY_TIMEOUT_MS)
    const writes = checkAcknowledgedWrites(this.report, entries)
    this.problems.push(...reportProblems(this.report, writes, { verified: true, requireReport: true, target: this.target }))
    const marker = decodeKvResult((await client.invoke(KV_GROUP, kv.get(MARKER_KEY), { timeoutMs: VERIFY_TIMEOUT_MS })).result)
    if (!marker.ok || marker.op !== 'get' || marker.value !== this.markerValue()) this.problems.push(`the KV write made after the restart (${MARKER_KEY}) is not there`)
    this.totalsInKv = writes.kvTotal
    this.lost = writes.lost
    if (!(await waitForAgreement(this.sup, this.dir.cluster.membership, VERIFY_TIMEOUT_MS))) this.problems.push(`the correct replicas did not reach the same state within ${VERIFY_TIMEOUT_MS / 1000} s`)
  }

  private summary(verified: boolean): ChaosSummary {
    const problems = [...this.problems, ...this.sup.failures]
    const { groups, problems: disagreements } = groupSummaries(this.sup, this.dir.cluster.membership)
    if (verified) problems.push(...disagreements)
    for (const [g, n] of Object.entries(this.maxFaulty)) {
      const f = this.dir.cluster.membership.group(g)!.f
      if (n > f) problems.push(`${n} replicas of ${g} were faulty at once (f = ${f}): the chaos harness broke its own bound`)
    }
    const r = this.report
    const records = this.injector?.records ?? []
    const applied = (kind: string) => records.filter((x) => x.kind === kind && x.outcome === 'applied').length
    const transfers = r === undefined ? 0 : r.completed - this.completedBefore
    const ok = verified && problems.length === 0
    return {
      ok,
      verified,
      seed: this.seed,
      replay: this.replayCommand(),
      durationSeconds: this.opts.durationSeconds,
      transfers,
      transfersPerSecond: this.workloadSeconds > 0 ? Math.round((transfers / this.workloadSeconds) * 100) / 100 : 0,
      acknowledgedWrites: r?.ackedWrites ?? 0,
      lostAcknowledgedWrites: this.lost,
      restarts: this.sup.slots.reduce((n, s) => n + s.restarts, 0),
      crashes: applied('crash'),
      partitions: applied('partition'),
      pauses: applied('pause'),
      skippedFaults: records.filter((x) => x.outcome === 'skipped').length,
      maxFaultyAtOnce: { ...this.maxFaulty },
      agree: verified && Object.values(groups).every((g) => g.agree),
      groups,
      audits: { runs: r?.audits.runs ?? 0, ok: r?.audits.ok ?? 0, failed: r?.audits.failed ?? 0, failures: r?.audits.failures ?? [] },
      totals: { expected: r?.expectedTotal ?? null, kv: this.totalsInKv },
      recovery: { ...this.recovery },
      faults: records,
      faultsSeen: faultsSeen(this.sup, groups),
      timings: { ...this.timings },
      problems,
      // Kept with --keep, with --data-dir, or when the run failed.
      dataDir: this.dir.useTemp && !this.opts.keep && ok ? null : this.dir.root,
    }
  }
}

export function humanChaosSummary(s: ChaosSummary): string {
  const sec = (x: number | null) => (x === null ? '–' : `${x} s`)
  const lines = [
    '',
    `kv-demo chaos summary: ${s.ok ? 'OK — all invariants held' : 'FAILED'} (seed ${s.seed})`,
    `  workload       ${s.durationSeconds} s under faults: ${s.transfers} transfers (${s.transfersPerSecond}/s), ${s.acknowledgedWrites} writes acknowledged, ${s.lostAcknowledgedWrites} lost`,
    `  audits         ${s.audits.runs} run, ${s.audits.ok} ok, ${s.audits.failed} failed; total expected ${s.totals.expected ?? '–'}, in the KV ${s.totals.kv ?? '–'}`,
    `  faults         ${s.crashes} kill -9 + restart, ${s.partitions} partitions, ${s.pauses} pauses, ${s.skippedFaults} skipped; at most ${Object.entries(s.maxFaultyAtOnce)
      .map(([g, n]) => `${n} of ${g}`)
      .join(' and ')} faulty at once`,
  ]
  for (const f of s.faults) {
    const dropped = f.framesDropped === null ? '' : `, ${f.framesDropped} frames dropped`
    const what = f.outcome === 'applied' ? `at ${f.at} s for ${f.length} s${dropped}; after the heal caught up in ${sec(f.caughtUpSeconds)}, voting in ${sec(f.votingAgainSeconds)}` : f.outcome
    lines.push(`    ${f.kind.padEnd(9)} ${f.replica.padEnd(7)} planned ${String(f.plannedAt).padStart(5)} s: ${what}${f.note === null ? '' : ` (${f.note})`}`)
  }
  lines.push(
    `  kill-all       every replica killed at once, all up again ${sec(s.recovery.replicasUp)} later; ordering again after: kv ${sec(s.recovery.kvOrdered)}, bank ${sec(s.recovery.bankOrdered)}; transfers in flight done and checked ${sec(s.recovery.drained)} (${s.recovery.transfersAfterRestart ?? '–'} transfers after the restart)`,
  )
  for (const [name, g] of Object.entries(s.groups)) {
    lines.push(`  group ${name.padEnd(8)} n=${g.n} f=${g.f} view ${g.view}: ${g.agree ? `all correct replicas agree at seq ${g.lastExecuted}, digest ${g.digest?.slice(0, 16)}` : 'NO AGREEMENT'}`)
    for (const p of g.replicas) lines.push(`    ${p.id.padEnd(8)} ${p.end}, restarted ${p.restarts}× seq ${p.lastExecuted ?? '–'} view ${p.view ?? '–'} ${p.digest?.slice(0, 16) ?? ''}`)
  }
  lines.push(`  faults seen    ${s.faultsSeen.viewChanges} view changes, ${s.faultsSeen.stateTransfers} state transfers, ${s.faultsSeen.badMessagesRefused} bad messages refused`)
  lines.push(`  time           ${s.timings.total} s: replicas up in ${s.timings.start} s, workload ${s.timings.workload} s, kill-all to all up ${s.timings.restart} s, verification ${s.timings.verify} s, stop ${s.timings.stop} s`)
  lines.push(`  replay         ${s.replay}`)
  for (const p of s.problems) lines.push(`  problem: ${p}`)
  if (s.dataDir !== null) lines.push(`  data           ${s.dataDir}`)
  return `${lines.join('\n')}\n`
}
