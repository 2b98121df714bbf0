/**
 * Verification through the protocol, shared by `demo` and `chaos`: the bank's report and the
 * KV's contents read with ordered requests (f+1 replicas vouch for each answer), the
 * acknowledged writes checked against the KV, and agreement of the correct replicas' state
 * digests (live, then from the final status each replica writes when it stops).
 */
import type { ClientHost } from '@bftrc/client-agreement/node-host'
import { type Membership, decode, encode } from '@bftrc/crypto'
import { BANK_GROUP, KV_GROUP } from './args.js'
import { ACCOUNT_PREFIX, type BankReport, parseAccount } from './bank-app.js'
import { type KvEntry, decodeKvResult, kv } from './kv-app.js'
import type { ReplicaStatusJson } from './status.js'
import { type Supervisor, sleep } from './supervisor.js'

export interface GroupSummary {
  readonly f: number
  readonly n: number
  readonly agree: boolean
  readonly digest: string | null
  readonly lastExecuted: number | null
  readonly view: number
  readonly replicas: ReadonlyArray<{
    readonly id: string
    readonly role: string
    readonly end: string
    readonly restarts: number
    readonly lastExecuted: number | null
    readonly view: number | null
    readonly digest: string | null
  }>
}

/** The bank's full report, with an ordered request (f+1 bank replicas vouch for it). */
export async function readBankReport(client: ClientHost, timeoutMs: number): Promise<BankReport> {
  const rep = decode((await client.invoke(BANK_GROUP, encode({ op: 'report' }), { timeoutMs })).result) as Record<string, unknown>
  if (rep.ok !== true) throw new Error(`the bank refused the report: ${String(rep.error)}`)
  return JSON.parse(String(rep.report)) as BankReport
}

/** The bank's progress (BankApp.progress) as the furthest correct, live bank replica reports it (for display). */
export function latestBankProgress(sup: Supervisor): Record<string, unknown> | undefined {
  const reports = sup.slots.filter((s) => s.group === BANK_GROUP && s.state === 'up' && s.byzantine === undefined && s.status?.appSummary !== undefined).map((s) => s.status!.appSummary as Record<string, unknown>)
  const completed = (p: Record<string, unknown>) => (typeof p.completed === 'number' ? p.completed : 0)
  return reports.sort((a, b) => completed(b) - completed(a))[0]
}

/** f+1 correct bank replicas report the workload done with this target (its final check made). */
export function bankFinished(sup: Supervisor, target: number): boolean {
  const done = sup.slots.filter((s) => s.group === BANK_GROUP && s.state === 'up' && s.byzantine === undefined && s.status?.appSummary?.phase === 'done' && s.status.appSummary.target === target)
  return done.length >= sup.membership.group(BANK_GROUP)!.weakQuorum
}

/** Every entry under `prefix`, page by page, with ordered scans. */
export async function scanAll(client: ClientHost, prefix: string, timeoutMs = 20_000): Promise<KvEntry[]> {
  const out: KvEntry[] = []
  let after: string | undefined
  for (let page = 0; page < 10_000; page++) {
    const r = decodeKvResult((await client.invoke(KV_GROUP, kv.scan(prefix, after, 1000), { timeoutMs })).result)
    if (!r.ok) throw new Error(r.error)
    if (r.op !== 'scan') throw new Error(`unexpected ${r.op} result`)
    out.push(...r.entries)
    if (!r.more || r.next === undefined) return out
    after = r.next
  }
  throw new Error('scan did not end')
}

export interface WriteCheck {
  /** Acknowledged values missing from the KV or different there (0 when unknown). */
  readonly lost: number
  /** The accounts' total in the KV, when it was read. */
  readonly kvTotal: number | null
}

/** The bank's acknowledged writes against what the KV holds. */
export function checkAcknowledgedWrites(report: BankReport | undefined, kvEntries: readonly KvEntry[] | undefined): WriteCheck {
  if (kvEntries === undefined) return { lost: 0, kvTotal: null }
  const store = new Map(kvEntries.map((e) => [e[0], e[1]]))
  const kvTotal = kvEntries.filter((e) => e[0].startsWith(ACCOUNT_PREFIX)).reduce((sum, e) => sum + (parseAccount(e[1])?.balance ?? 0), 0)
  let lost = 0
  if (report !== undefined) {
    if ((report as { expectedOmitted?: boolean }).expectedOmitted === true) lost = report.final?.lost ?? 0
    else for (const [k, v] of report.expected) if (store.get(k) !== v) lost++
  }
  return { lost, kvTotal }
}

export interface ReportChecks {
  /** The workload ended: its final state can be judged (otherwise only what already went wrong counts). */
  readonly verified: boolean
  /** The report must exist (a workload was requested). */
  readonly requireReport: boolean
  /** The bank must have completed this many transfers and finished its final check. */
  readonly target: number | undefined
}

/** What the bank's report and the write check say went wrong. */
export function reportProblems(r: BankReport | undefined, writes: WriteCheck, c: ReportChecks): string[] {
  const problems: string[] = []
  if (r !== undefined) {
    // Audits run during the workload: a failed one counts whenever it happened.
    if (r.audits.failed > 0) problems.push(`${r.audits.failed} audits failed: ${r.audits.failures.join('; ')}`)
    if (r.broken.length > 0) problems.push(`broken transfers: ${r.broken.join('; ')}`)
    if (r.workflowErrors.length > 0) problems.push(`workflow errors: ${r.workflowErrors.join('; ')}`)
    if (c.verified) {
      if (c.target !== undefined && (r.phase !== 'done' || r.completed < c.target)) problems.push(`workload incomplete: ${r.completed}/${c.target} transfers, phase ${r.phase}`)
      if (r.final !== null && !r.final.ok) problems.push(`the bank's own final check failed (total ${r.final.total}, ${r.final.lost} lost)`)
      if (writes.kvTotal !== null && r.config !== null && writes.kvTotal !== r.expectedTotal) problems.push(`accounts total ${writes.kvTotal} in the KV ≠ ${r.expectedTotal}`)
    }
  } else if (c.verified && c.requireReport) problems.push('no bank report')
  if (c.verified && writes.lost > 0) problems.push(`${writes.lost} acknowledged writes lost`)
  return problems
}

/** Waits until, in each group, every live correct replica has the same sequence number and digest. */
export async function waitForAgreement(sup: Supervisor, membership: Membership, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  let stableSince = 0
  for (;;) {
    await sup.poll()
    let same = true
    for (const g of membership.groups.values()) {
      const live = sup.slots.filter((s) => s.group === g.name && s.byzantine === undefined && (s.state === 'up' || s.state === 'starting'))
      if (live.some((s) => s.state === 'starting' || s.status === undefined)) same = false
      const keys = new Set(live.map((s) => `${s.status?.lastExecuted}:${s.status?.stateDigest}`))
      if (keys.size > 1) same = false
    }
    if (same) {
      // Two polls in a row, so nothing was still being ordered.
      if (stableSince !== 0 && Date.now() - stableSince >= 300) return true
      if (stableSince === 0) stableSince = Date.now()
    } else stableSince = 0
    if (Date.now() > deadline) return false
    await sleep(150)
  }
}

/**
 * Each group from the final statuses its replicas wrote when they stopped: `agree` when every
 * correct replica (not Byzantine, not crashed at the end) ended at the same sequence number with
 * the same state digest. Returns the disagreements as problems.
 */
export function groupSummaries(sup: Supervisor, membership: Membership): { groups: Record<string, GroupSummary>; problems: string[] } {
  const groups: Record<string, GroupSummary> = {}
  const problems: string[] = []
  for (const g of membership.groups.values()) {
    const slots = sup.slots.filter((s) => s.group === g.name)
    const replicas = slots.map((s) => {
      const fin = sup.finalStatus(s.id)
      const end = s.state === 'crashed' ? 'crashed' : s.state === 'died' ? 'died' : fin !== undefined ? 'stopped' : 'no final status'
      return { id: s.id, role: s.byzantine === undefined ? 'correct' : `byzantine:${s.byzantine}`, end, restarts: s.restarts, lastExecuted: fin?.lastExecuted ?? null, view: fin?.view ?? null, digest: fin?.stateDigest ?? null }
    })
    const correct = replicas.filter((p) => p.role === 'correct' && p.end !== 'crashed')
    const keys = new Set(correct.map((p) => `${p.lastExecuted}:${p.digest}`))
    const agree = correct.length > 0 && correct.every((p) => p.digest !== null) && keys.size === 1
    if (!agree) problems.push(`group ${g.name}: correct replicas ended in different states (${correct.map((p) => `${p.id}@${p.lastExecuted}:${p.digest?.slice(0, 8)}`).join(', ')})`)
    const first = correct.find((p) => p.digest !== null)
    groups[g.name] = {
      f: g.f,
      n: g.n,
      agree,
      digest: agree ? (first?.digest ?? null) : null,
      lastExecuted: agree ? (first?.lastExecuted ?? null) : null,
      view: Math.max(0, ...replicas.filter((p) => p.role === 'correct').map((p) => p.view ?? 0)),
      replicas,
    }
  }
  return { groups, problems }
}

/**
 * Messages the correct replicas refused as evidence of a fault: forged or wrong signatures,
 * malformed frames, equivocation, lying checkpoints and states, wrong results (not the drops a
 * busy failure-free run has too: duplicates, stale or early messages, full buffers).
 */
const FAULT_EVIDENCE = /^dropped\.(bad-|malformed|equivocation|lying-state|impersonation|fetch-bad-chunk|undecodable-state|misaddressed|not-a-member|not-a-peer|not-a-replica|prepare-from-primary)/

export function faultEvidence(status: ReplicaStatusJson): number {
  let n = 0
  for (const counters of [status.replicaCounters, status.voterCounters]) for (const [k, v] of Object.entries(counters)) if (FAULT_EVIDENCE.test(k)) n += v
  return n
}

/** Bad messages refused by the correct replicas, from their latest live status. */
export function badMessagesSeen(sup: Supervisor): number {
  let n = 0
  for (const sl of sup.slots) if (sl.byzantine === undefined && sl.status !== undefined) n += faultEvidence(sl.status)
  return n
}

/** What the correct replicas saw of the faults, from their final (else latest) status. */
export function faultsSeen(sup: Supervisor, groups: Readonly<Record<string, GroupSummary>>): { badMessagesRefused: number; viewChanges: number; stateTransfers: number } {
  let refused = 0
  let transfers = 0
  for (const sl of sup.slots) {
    if (sl.byzantine !== undefined) continue
    const fin = sup.finalStatus(sl.id) ?? sl.status
    if (fin === undefined) continue
    transfers += fin.counters.stateTransfers
    refused += faultEvidence(fin)
  }
  return { badMessagesRefused: refused, viewChanges: Object.values(groups).reduce((n, g) => n + g.view, 0), stateTransfers: transfers }
}
