/**
 * The long-running replicated client: a bank whose accounts live in the KV group.
 *
 * Workload. Accounts are split into lanes (default 4 lanes of 4 accounts). Each lane runs a
 * generator workflow that performs transfers one after another with *synchronous* invocations:
 * read both balances (`get`), then compare-and-set the source, then the destination. Each
 * account value records the transfer that wrote it last (`tx`, `from`, `to`, `amount`).
 * Alongside, the app makes *asynchronous* calls: after each transfer a log record is written
 * (`put bank/log/<lane>/<slot>`, a ring of slots), and a *timer* fires a periodic audit that
 * scans every account (one `scan`, atomic at the KV) and checks that the total never changes.
 *
 * Why the audit can be exact while transfers run: a lane has at most one transfer in flight and
 * writes its source before its destination, so in any scan at most one transfer per lane (the
 * highest `tx` seen in that lane) can be half done; it is half done exactly when only its source
 * carries its tag, and then the total is short by its amount. Nothing else can make the total
 * differ, unless a write was lost or someone else wrote the accounts.
 *
 * Acknowledged writes: every write whose result reached the bank (a cas that swapped, a put
 * answered ok) is recorded as the key's last acknowledged value. At the end the bank scans
 * `bank/` and counts acknowledged values that are missing or different: `lostAcknowledgedWrites`.
 *
 * Driven by plain-client requests (ordered, so every replica starts the same work at the same
 * point): `{ op: 'run', transfers, lanes?, accountsPerLane?, chunk? }` adds transfers to the
 * target (the optional fields fix the bank's configuration at its first run); `{ op: 'stop' }`
 * gives up the transfers not yet handed to a lane (a lane is handed at most two workflow
 * incarnations' worth, 2 × chunk, at a time, so a stop takes effect within that); `{ op:
 * 'report' }` answers the full report (the supervisor's source of truth, vouched for by f+1
 * replicas). Read-only `{ op: 'progress' }` answers a short summary.
 *
 * Everything here is deterministic: randomness from the workflow context, time from the agreed
 * batch stamps, state (with the workflows' recorded histories) in the snapshot.
 */
import type { AppContext, CallRef, GroupApp, WorkflowContext } from '@bftrc/client-agreement'
import { DecodeError, type Value, type ValueMap, asArray, asMap, asString, asUint, decode, encode } from '@bftrc/crypto'
import { type KvResult, decodeKvResult, kv } from './kv-app.js'

export const ACCOUNT_PREFIX = 'bank/acct/'
export const LOG_PREFIX = 'bank/log/'
export const BANK_PREFIX = 'bank/'

export interface BankConfig {
  readonly lanes: number
  readonly accountsPerLane: number
  readonly initialBalance: number
  /** Agreed milliseconds between audits. */
  readonly auditIntervalMs: number
  /** Log slots per lane (a ring: slot = tx mod logRing). */
  readonly logRing: number
  readonly maxAmount: number
  /** Transfers per workflow incarnation before continueAsNew (bounds the recorded history). */
  readonly chunk: number
}

export const DEFAULT_BANK_CONFIG: BankConfig = { lanes: 4, accountsPerLane: 4, initialBalance: 1000, auditIntervalMs: 500, logRing: 16, maxAmount: 50, chunk: 16 }
export const MAX_LANES = 8
export const MAX_ACCOUNTS_PER_LANE = 16
export const MAX_CHUNK = 64
const MAX_FAILURES_KEPT = 10
const MAX_CAS_RETRIES = 8

/** An account's value in the KV: its balance and the transfer that wrote it last. */
export interface AccountValue {
  readonly balance: number
  readonly tx: number
  readonly from?: string
  readonly to?: string
  readonly amount?: number
}

export function accountKey(lane: number, i: number): string {
  return `${ACCOUNT_PREFIX}${lane}/${String(i).padStart(2, '0')}`
}

export function laneOf(key: string): number | undefined {
  if (!key.startsWith(ACCOUNT_PREFIX)) return undefined
  const m = /^(\d+)\/\d+$/.exec(key.slice(ACCOUNT_PREFIX.length))
  return m === null ? undefined : Number(m[1])
}

export function formatAccount(v: AccountValue): string {
  // A fixed field order: the text is what compare-and-set compares.
  return JSON.stringify(v.tx === 0 ? { balance: v.balance, tx: 0 } : { balance: v.balance, tx: v.tx, from: v.from, to: v.to, amount: v.amount })
}

export function parseAccount(text: string): AccountValue | undefined {
  try {
    const o = JSON.parse(text) as Record<string, unknown>
    const int = (x: unknown) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0
    if (!int(o.balance) || !int(o.tx)) return undefined
    if (o.tx === 0) return { balance: o.balance as number, tx: 0 }
    if (typeof o.from !== 'string' || typeof o.to !== 'string' || !int(o.amount)) return undefined
    return { balance: o.balance as number, tx: o.tx as number, from: o.from, to: o.to, amount: o.amount as number }
  } catch {
    return undefined
  }
}

export function logKey(lane: number, tx: number, ring: number): string {
  return `${LOG_PREFIX}${lane}/${String(tx % ring).padStart(2, '0')}`
}

export type AuditOutcome = { readonly ok: true; readonly total: number; readonly inFlight: number } | { readonly ok: false; readonly total: number; readonly reason: string }

/**
 * Checks one scan of the accounts against the expected total, allowing for the one transfer per
 * lane that may be half done (see the module comment). Pure, so tests can feed it anything.
 */
export function auditAccounts(entries: ReadonlyArray<readonly [string, string]>, expectedAccounts: readonly string[], expectedTotal: number): AuditOutcome {
  const values = new Map<string, AccountValue>()
  for (const [key, text] of entries) {
    const v = parseAccount(text)
    if (v === undefined) return { ok: false, total: 0, reason: `${key} holds an unreadable value` }
    values.set(key, v)
  }
  for (const key of expectedAccounts) if (!values.has(key)) return { ok: false, total: 0, reason: `account ${key} is missing` }
  let total = 0
  for (const key of expectedAccounts) total += (values.get(key) as AccountValue).balance
  // Per lane: the highest transfer seen; half done iff only its source carries its tag.
  let adjustment = 0
  let inFlight = 0
  const lanes = new Map<number, string[]>()
  for (const key of expectedAccounts) {
    const lane = laneOf(key) as number
    lanes.set(lane, [...(lanes.get(lane) ?? []), key])
  }
  for (const keys of lanes.values()) {
    let top: AccountValue | undefined
    for (const k of keys) {
      const v = values.get(k) as AccountValue
      if (top === undefined || v.tx > top.tx) top = v
    }
    if (top === undefined || top.tx === 0) continue
    const src = values.get(top.from as string)
    const dst = values.get(top.to as string)
    if (src === undefined || dst === undefined) return { ok: false, total, reason: `transfer ${top.tx} names accounts outside its lane` }
    if (src.tx === top.tx && dst.tx !== top.tx) {
      adjustment += top.amount as number
      inFlight++
    } else if (src.tx !== top.tx && dst.tx === top.tx) {
      return { ok: false, total, reason: `transfer ${top.tx} reached ${top.to} without leaving ${top.from}` }
    }
  }
  if (total + adjustment !== expectedTotal) {
    return { ok: false, total, reason: `total ${total}${adjustment > 0 ? ` + ${adjustment} in flight` : ''} ≠ ${expectedTotal}` }
  }
  return { ok: true, total, inFlight }
}

// ---------------------------------------------------------------- workflow events

type LaneEvent =
  | { readonly t: 'ack'; readonly key: string; readonly value: string }
  | { readonly t: 'found'; readonly key: string; readonly value: string }
  | { readonly t: 'done'; readonly lane: number; readonly tx: number; readonly from: string; readonly to: string; readonly amount: number; readonly calls: number }
  | { readonly t: 'skip'; readonly lane: number; readonly tx: number; readonly reason: string; readonly calls: number }
  | { readonly t: 'conflict'; readonly key: string }
  | { readonly t: 'broken'; readonly reason: string }

function ev(e: LaneEvent): Uint8Array {
  return encode(e as unknown as ValueMap)
}

function result(bytes: Uint8Array): KvResult {
  return decodeKvResult(bytes)
}

function accountOf(r: KvResult, key: string): { raw: string | null; value: AccountValue | undefined } {
  if (!r.ok || r.op !== 'get') throw new Error(`get ${key} failed: ${r.ok ? r.op : r.error}`)
  if (!r.found || r.value === undefined) return { raw: null, value: undefined }
  return { raw: r.value, value: parseAccount(r.value) }
}

/** The workflows, as generator functions (see client-agreement's app.ts). */
export function* initWorkflow(w: WorkflowContext, input: Uint8Array): Generator<ReturnType<WorkflowContext['invoke']>, Uint8Array | undefined, Uint8Array> {
  const m = asMap(decode(input))
  const accounts = asArray(m.accounts, 'accounts').map((a) => asString(a, 'account'))
  const initial = asUint(m.initial, 'initial')
  const value = formatAccount({ balance: initial, tx: 0 })
  for (const key of accounts) {
    const r = result(yield w.invoke('kv', kv.cas(key, null, value)))
    if (!r.ok || r.op !== 'cas') throw new Error(`creating ${key} failed: ${r.ok ? r.op : r.error}`)
    if (r.swapped) yield w.emit(ev({ t: 'ack', key, value }))
    else yield w.emit(ev({ t: 'found', key, value: r.current ?? '' }))
  }
  return encode({ init: accounts.length })
}

export function* laneWorkflow(w: WorkflowContext, input: Uint8Array): Generator<ReturnType<WorkflowContext['invoke']>, Uint8Array | undefined, Uint8Array> {
  const m = asMap(decode(input))
  const lane = asUint(m.lane, 'lane')
  const accounts = asArray(m.accounts, 'accounts').map((a) => asString(a, 'account'))
  const first = asUint(m.first, 'first')
  const count = asUint(m.count, 'count')
  const chunk = asUint(m.chunk, 'chunk')
  const maxAmount = asUint(m.maxAmount, 'maxAmount')
  let done = 0
  for (; done < count && done < chunk; done++) {
    const tx = first + done
    let calls = 0
    let a = Math.floor(w.random() * accounts.length)
    let b = (a + 1 + Math.floor(w.random() * (accounts.length - 1))) % accounts.length
    let attempt = 0
    for (;;) {
      attempt++
      let from = accounts[a] as string
      let to = accounts[b] as string
      // Synchronous invocations: the workflow resumes with each result at its point in the order.
      let src = accountOf(result(yield w.invoke('kv', kv.get(from))), from)
      let dst = accountOf(result(yield w.invoke('kv', kv.get(to))), to)
      calls += 2
      if (src.value === undefined || dst.value === undefined) {
        yield w.emit(ev({ t: 'broken', reason: `account ${src.value === undefined ? from : to} is missing or unreadable` }))
        yield w.emit(ev({ t: 'skip', lane, tx, reason: 'missing account', calls }))
        break
      }
      if (src.value.balance === 0) {
        // Nothing to move from there: move the other way.
        ;[a, b] = [b, a]
        ;[from, to] = [to, from]
        ;[src, dst] = [dst, src]
      }
      const srcValue = src.value as AccountValue
      const dstValue = dst.value as AccountValue
      if (srcValue.balance === 0) {
        yield w.emit(ev({ t: 'skip', lane, tx, reason: 'both balances are 0', calls }))
        break
      }
      const amount = 1 + Math.floor(w.random() * Math.min(maxAmount, srcValue.balance))
      const newSrc = formatAccount({ balance: srcValue.balance - amount, tx, from, to, amount })
      const r1 = result(yield w.invoke('kv', kv.cas(from, src.raw, newSrc)))
      calls++
      if (!r1.ok || r1.op !== 'cas') throw new Error(`cas ${from} failed: ${r1.ok ? r1.op : r1.error}`)
      if (!r1.swapped) {
        // Someone else wrote the source: read again (bounded).
        yield w.emit(ev({ t: 'conflict', key: from }))
        if (attempt >= MAX_CAS_RETRIES) {
          yield w.emit(ev({ t: 'skip', lane, tx, reason: 'source kept changing', calls }))
          break
        }
        continue
      }
      yield w.emit(ev({ t: 'ack', key: from, value: newSrc }))
      // The destination: normally one cas; if someone else wrote it, read it again and retry.
      let expect = dst.raw
      let base = dstValue.balance
      let landed = false
      for (let i = 0; i < MAX_CAS_RETRIES && !landed; i++) {
        const newDst = formatAccount({ balance: base + amount, tx, from, to, amount })
        const r2 = result(yield w.invoke('kv', kv.cas(to, expect, newDst)))
        calls++
        if (!r2.ok || r2.op !== 'cas') throw new Error(`cas ${to} failed: ${r2.ok ? r2.op : r2.error}`)
        if (r2.swapped) {
          landed = true
          yield w.emit(ev({ t: 'ack', key: to, value: newDst }))
          break
        }
        yield w.emit(ev({ t: 'conflict', key: to }))
        const again = accountOf(result(yield w.invoke('kv', kv.get(to))), to)
        calls++
        if (again.value === undefined) break
        expect = again.raw
        base = again.value.balance
      }
      if (!landed) yield w.emit(ev({ t: 'broken', reason: `transfer ${tx} left ${from} but could not reach ${to}` }))
      yield w.emit(ev({ t: 'done', lane, tx, from, to, amount, calls }))
      break
    }
  }
  if (done < count) {
    // Bounded history: start afresh from explicit state.
    yield w.continueAsNew(encode({ lane, accounts, first: first + done, count: count - done, chunk, maxAmount }))
  }
  return encode({ lane, next: first + done })
}

// ---------------------------------------------------------------- the app

type Phase = 'idle' | 'init' | 'running' | 'final-audit' | 'done'

type Pending = { readonly kind: 'log'; readonly key: string; readonly value: string } | { readonly kind: 'audit' } | { readonly kind: 'final'; readonly after: string }

export interface BankReport {
  readonly phase: Phase
  readonly config: BankConfig | null
  readonly target: number
  readonly completed: number
  readonly skipped: number
  readonly conflicts: number
  readonly expectedTotal: number
  readonly ackedWrites: number
  readonly syncCalls: number
  readonly asyncCalls: number
  readonly audits: { readonly runs: number; readonly ok: number; readonly failed: number; readonly lastTotal: number; readonly lastInFlight: number; readonly failures: readonly string[] }
  readonly broken: readonly string[]
  readonly workflowErrors: readonly string[]
  readonly final: { readonly total: number; readonly checked: number; readonly lost: number; readonly ok: boolean } | null
  /** Every key the bank wrote, with its last acknowledged value. */
  readonly expected: ReadonlyArray<readonly [string, string]>
}

function sortedEntries<V>(m: ReadonlyMap<string, V>): Array<[string, V]> {
  return [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}

export class BankApp implements GroupApp {
  private config: BankConfig | undefined
  private phase: Phase = 'idle'
  private expectedTotal = 0
  private target = 0
  private assigned = 0
  private completed = 0
  private skipped = 0
  private conflicts = 0
  private syncCalls = 0
  private asyncCalls = 0
  private ackedWrites = 0
  /** Last acknowledged value of every key written. */
  private readonly acked = new Map<string, string>()
  /** Next transfer number per lane. */
  private nextTx: number[] = []
  /** Workflow running per lane (0: none); the init workflow's id. */
  private laneWorkflows: number[] = []
  private initWorkflow = 0
  /** Our asynchronous calls in flight, by call number. */
  private readonly pending = new Map<number, Pending>()
  /** Log records waiting for an earlier write of the same slot to be answered. */
  private readonly waitingLog = new Map<string, string>()
  private auditTimer = 0
  private auditRuns = 0
  private auditOk = 0
  private auditFailed = 0
  private lastTotal = 0
  private lastInFlight = 0
  private failures: string[] = []
  private broken: string[] = []
  private workflowErrors: string[] = []
  private final: { total: number; checked: number; matched: number; lost: number; ok: boolean } | undefined

  readonly workflows = { init: initWorkflow, lane: laneWorkflow }

  // ---------------------------------------------------------------- plain-client requests

  onRequest(ctx: AppContext, _client: string, op: Uint8Array): Uint8Array {
    let m: ValueMap
    try {
      m = asMap(decode(op, 4096), 'request')
    } catch (err) {
      return encode({ ok: false, error: (err as Error).message })
    }
    if (m.op === 'report') return this.encodeReport()
    if (m.op === 'progress') return encode(this.progress() as unknown as ValueMap)
    if (m.op === 'stop') return this.stop(ctx)
    if (m.op !== 'run') return encode({ ok: false, error: `unknown request ${JSON.stringify(m.op)} (run, stop, report, progress)` })
    try {
      const transfers = asUint(m.transfers, 'transfers', 10_000_000)
      if (this.config === undefined) {
        const lanes = m.lanes === undefined ? DEFAULT_BANK_CONFIG.lanes : asUint(m.lanes, 'lanes', MAX_LANES)
        const accountsPerLane = m.accountsPerLane === undefined ? DEFAULT_BANK_CONFIG.accountsPerLane : asUint(m.accountsPerLane, 'accountsPerLane', MAX_ACCOUNTS_PER_LANE)
        const chunk = m.chunk === undefined ? DEFAULT_BANK_CONFIG.chunk : asUint(m.chunk, 'chunk', MAX_CHUNK)
        if (lanes < 1 || accountsPerLane < 2) return encode({ ok: false, error: 'at least 1 lane of 2 accounts' })
        if (chunk < 1) return encode({ ok: false, error: 'chunk: at least 1 transfer per workflow incarnation' })
        this.config = { ...DEFAULT_BANK_CONFIG, lanes, accountsPerLane, chunk }
        this.nextTx = Array.from({ length: lanes }, () => 1)
        this.laneWorkflows = Array.from({ length: lanes }, () => 0)
      }
      this.target += transfers
      if (this.phase === 'idle') {
        this.phase = 'init'
        this.initWorkflow = ctx.startWorkflow('init', encode({ accounts: this.allAccounts(), initial: this.config.initialBalance }))
      } else if (this.phase === 'done' || this.phase === 'final-audit') {
        this.phase = 'running'
        this.final = undefined
        this.startLanes(ctx)
      } else if (this.phase === 'running') {
        this.startLanes(ctx)
      }
      this.armAudit(ctx)
      return encode({ ok: true, target: this.target, completed: this.completed, phase: this.phase })
    } catch (err) {
      return encode({ ok: false, error: (err as Error).message })
    }
  }

  /** Gives up the transfers not yet handed to a lane; the ones in flight complete. */
  private stop(ctx: AppContext): Uint8Array {
    const dropped = this.target - this.assigned
    this.target = this.assigned
    this.maybeFinish(ctx)
    return encode({ ok: true, target: this.target, completed: this.completed, dropped, phase: this.phase })
  }

  onQuery(_client: string, _op: Uint8Array): Uint8Array {
    return encode(this.progress() as unknown as ValueMap)
  }

  // ---------------------------------------------------------------- workflows

  private allAccounts(): string[] {
    const c = this.config as BankConfig
    const out: string[] = []
    for (let l = 0; l < c.lanes; l++) for (let i = 0; i < c.accountsPerLane; i++) out.push(accountKey(l, i))
    return out
  }

  private laneAccounts(lane: number): string[] {
    const c = this.config as BankConfig
    return Array.from({ length: c.accountsPerLane }, (_, i) => accountKey(lane, i))
  }

  /**
   * Hands the transfers not yet assigned to idle lanes, split evenly, at most two incarnations'
   * worth (2 × chunk) to a lane at a time: the rest waits for the next lane to finish, so a
   * `stop` request can still give it up.
   */
  private startLanes(ctx: AppContext): void {
    const c = this.config as BankConfig
    const idle = this.laneWorkflows.map((id, lane) => (id === 0 ? lane : -1)).filter((l) => l >= 0)
    let left = Math.min(this.target - this.assigned, idle.length * 2 * c.chunk)
    if (left <= 0 || idle.length === 0) return
    const share = Math.floor(left / idle.length)
    let extra = left % idle.length
    for (const lane of idle) {
      const count = share + (extra > 0 ? 1 : 0)
      if (extra > 0) extra--
      if (count === 0) continue
      left -= count
      this.assigned += count
      const first = this.nextTx[lane] as number
      this.nextTx[lane] = first + count
      this.laneWorkflows[lane] = ctx.startWorkflow('lane', encode({ lane, accounts: this.laneAccounts(lane), first, count, chunk: c.chunk, maxAmount: c.maxAmount }))
    }
  }

  onWorkflowEvent(ctx: AppContext, _workflow: number, event: Uint8Array): void {
    const e = asMap(decode(event)) as unknown as LaneEvent
    switch (e.t) {
      case 'ack':
        this.acked.set(e.key, e.value)
        this.ackedWrites++
        return
      case 'found': {
        // The account existed already (a bank restarted without its own state): take it as is,
        // and number this lane's transfers above the ones it carries.
        this.acked.set(e.key, e.value)
        const v = parseAccount(e.value)
        const lane = laneOf(e.key)
        if (v !== undefined && lane !== undefined && v.tx >= (this.nextTx[lane] ?? 1)) this.nextTx[lane] = v.tx + 1
        return
      }
      case 'done': {
        this.completed++
        this.syncCalls += e.calls
        const c = this.config as BankConfig
        const key = logKey(e.lane, e.tx, c.logRing)
        const value = JSON.stringify({ tx: e.tx, from: e.from, to: e.to, amount: e.amount, at: ctx.now })
        this.writeLog(ctx, key, value)
        return
      }
      case 'skip':
        this.skipped++
        this.completed++
        this.syncCalls += e.calls
        return
      case 'conflict':
        this.conflicts++
        return
      case 'broken':
        if (this.broken.length < MAX_FAILURES_KEPT) this.broken.push(e.reason)
        return
    }
  }

  onWorkflowDone(ctx: AppContext, workflow: number, res: Uint8Array | undefined): void {
    const text = res === undefined ? '' : new TextDecoder().decode(res)
    if (text.startsWith('error: ') && this.workflowErrors.length < MAX_FAILURES_KEPT) this.workflowErrors.push(text.slice(7))
    if (workflow === this.initWorkflow) {
      this.initWorkflow = 0
      // The total the audits hold the bank to: what the accounts held when it started.
      let total = 0
      for (const key of this.allAccounts()) total += parseAccount(this.acked.get(key) ?? '')?.balance ?? 0
      this.expectedTotal = total
      this.syncCalls += this.allAccounts().length
      this.phase = 'running'
      this.startLanes(ctx)
      this.maybeFinish(ctx)
      return
    }
    const lane = this.laneWorkflows.indexOf(workflow)
    if (lane >= 0) this.laneWorkflows[lane] = 0
    // A lane that failed gives the transfers not yet assigned up, so the run can still end
    // (and the report shows fewer completed than requested).
    if (text.startsWith('error: ')) this.target = Math.min(this.target, this.assigned)
    this.startLanes(ctx)
    this.maybeFinish(ctx)
  }

  // ---------------------------------------------------------------- asynchronous calls

  private writeLog(ctx: AppContext, key: string, value: string): void {
    for (const p of this.pending.values()) {
      if (p.kind === 'log' && p.key === key) {
        // One write per slot in flight, so the last acknowledged one is the last one made.
        this.waitingLog.set(key, value)
        return
      }
    }
    const ref = ctx.call('kv', kv.put(key, value))
    this.pending.set(ref.k, { kind: 'log', key, value })
  }

  onReply(ctx: AppContext, call: CallRef, res: Uint8Array): void {
    const p = this.pending.get(call.k)
    if (p === undefined || call.callee !== 'kv') return
    this.pending.delete(call.k)
    this.asyncCalls++
    let r: KvResult
    try {
      r = decodeKvResult(res)
    } catch (err) {
      this.fail(`unreadable result of ${p.kind}: ${(err as Error).message}`)
      this.maybeFinish(ctx)
      return
    }
    if (p.kind === 'log') {
      if (r.ok && r.op === 'put') {
        this.acked.set(p.key, p.value)
        this.ackedWrites++
      } else this.fail(`log write ${p.key} failed: ${r.ok ? r.op : r.error}`)
      const next = this.waitingLog.get(p.key)
      if (next !== undefined) {
        this.waitingLog.delete(p.key)
        this.writeLog(ctx, p.key, next)
      }
    } else if (p.kind === 'audit') {
      this.onAudit(r)
    } else {
      this.onFinalPage(ctx, r)
    }
    this.maybeFinish(ctx)
  }

  // ---------------------------------------------------------------- audits

  private armAudit(ctx: AppContext): void {
    if (this.auditTimer !== 0) return
    this.auditTimer = ctx.setTimer((this.config as BankConfig).auditIntervalMs, 'audit')
  }

  onTimer(ctx: AppContext, id: number, tag: string): void {
    if (tag !== 'audit' || id !== this.auditTimer) return
    this.auditTimer = 0
    if (this.phase === 'done' || this.phase === 'idle') return
    const busy = [...this.pending.values()].some((p) => p.kind === 'audit')
    if (this.phase === 'running' && !busy) {
      const ref = ctx.call('kv', kv.scan(ACCOUNT_PREFIX, undefined, 1000))
      this.pending.set(ref.k, { kind: 'audit' })
    }
    this.armAudit(ctx)
  }

  private onAudit(r: KvResult): void {
    this.auditRuns++
    if (!r.ok || r.op !== 'scan') return this.auditFailure(`audit scan failed: ${r.ok ? r.op : r.error}`, 0)
    const outcome = auditAccounts(
      r.entries.map(([k, v]) => [k, v] as const),
      this.allAccounts(),
      this.expectedTotal,
    )
    if (outcome.ok) {
      this.auditOk++
      this.lastTotal = outcome.total
      this.lastInFlight = outcome.inFlight
    } else this.auditFailure(outcome.reason, outcome.total)
  }

  private auditFailure(reason: string, total: number): void {
    this.auditFailed++
    this.lastTotal = total
    this.fail(`audit: ${reason}`)
  }

  private fail(reason: string): void {
    if (this.failures.length < MAX_FAILURES_KEPT) this.failures.push(reason)
  }

  /** Once every lane is idle and every write answered: the final audit, page by page. */
  private maybeFinish(ctx: AppContext): void {
    if (this.phase !== 'running') return
    if (this.laneWorkflows.some((w) => w !== 0) || this.initWorkflow !== 0 || this.assigned < this.target) return
    if ([...this.pending.values()].some((p) => p.kind !== 'audit') || this.waitingLog.size > 0) return
    this.phase = 'final-audit'
    this.final = { total: 0, checked: 0, matched: 0, lost: 0, ok: false }
    this.finalPage(ctx, undefined)
  }

  private finalPage(ctx: AppContext, after: string | undefined): void {
    const ref = ctx.call('kv', kv.scan(BANK_PREFIX, after, 500))
    this.pending.set(ref.k, { kind: 'final', after: after ?? '' })
  }

  private onFinalPage(ctx: AppContext, r: KvResult): void {
    const f = this.final
    if (f === undefined) return
    if (!r.ok || r.op !== 'scan') {
      this.fail(`final scan failed: ${r.ok ? r.op : r.error}`)
      this.finish(ctx)
      return
    }
    for (const [key, value] of r.entries) {
      f.checked++
      const acked = this.acked.get(key)
      if (acked !== undefined && acked === value) f.matched++
      const acct = key.startsWith(ACCOUNT_PREFIX) ? parseAccount(value) : undefined
      if (acct !== undefined) f.total += acct.balance
    }
    if (r.more && r.next !== undefined) this.finalPage(ctx, r.next)
    else this.finish(ctx)
  }

  private finish(ctx: AppContext): void {
    const f = this.final as NonNullable<BankApp['final']>
    f.lost = this.acked.size - f.matched
    f.ok = f.lost === 0 && f.total === this.expectedTotal
    if (f.total !== this.expectedTotal) this.fail(`final total ${f.total} ≠ ${this.expectedTotal}`)
    this.phase = 'done'
    if (this.auditTimer !== 0) {
      ctx.cancelTimer(this.auditTimer)
      this.auditTimer = 0
    }
  }

  // ---------------------------------------------------------------- reports

  progress(): Record<string, Value> {
    return {
      phase: this.phase,
      target: this.target,
      completed: this.completed,
      ackedWrites: this.ackedWrites,
      syncCalls: this.syncCalls,
      asyncCalls: this.asyncCalls,
      audits: this.auditRuns,
      auditsFailed: this.auditFailed,
      pendingAsync: this.pending.size,
    }
  }

  report(): BankReport {
    const f = this.final
    return {
      phase: this.phase,
      config: this.config ?? null,
      target: this.target,
      completed: this.completed,
      skipped: this.skipped,
      conflicts: this.conflicts,
      expectedTotal: this.expectedTotal,
      ackedWrites: this.ackedWrites,
      syncCalls: this.syncCalls,
      asyncCalls: this.asyncCalls,
      audits: { runs: this.auditRuns, ok: this.auditOk, failed: this.auditFailed, lastTotal: this.lastTotal, lastInFlight: this.lastInFlight, failures: [...this.failures] },
      broken: [...this.broken],
      workflowErrors: [...this.workflowErrors],
      final: f === undefined ? null : { total: f.total, checked: f.checked, lost: f.lost, ok: f.ok },
      expected: sortedEntries(this.acked),
    }
  }

  encodeReport(): Uint8Array {
    const full = encode({ ok: true, report: JSON.stringify(this.report()) })
    // A result must stay under 64 KiB; the expected values are left out if they would not fit.
    if (full.length <= 60_000) return full
    return encode({ ok: true, report: JSON.stringify({ ...this.report(), expected: [], expectedOmitted: true }) })
  }

  // ---------------------------------------------------------------- snapshot

  snapshot(): Uint8Array {
    const f = this.final
    return encode({
      v: 1,
      config: this.config === undefined ? null : (this.config as unknown as ValueMap),
      phase: this.phase,
      expectedTotal: this.expectedTotal,
      counts: [this.target, this.assigned, this.completed, this.skipped, this.conflicts, this.syncCalls, this.asyncCalls, this.ackedWrites],
      acked: sortedEntries(this.acked),
      nextTx: this.nextTx,
      laneWorkflows: this.laneWorkflows,
      initWorkflow: this.initWorkflow,
      pending: [...this.pending].sort((a, b) => a[0] - b[0]).map(([k, p]) => [k, p.kind, p.kind === 'log' ? p.key : p.kind === 'final' ? p.after : '', p.kind === 'log' ? p.value : '']),
      waitingLog: sortedEntries(this.waitingLog),
      audit: [this.auditTimer, this.auditRuns, this.auditOk, this.auditFailed, this.lastTotal, this.lastInFlight],
      failures: this.failures,
      broken: this.broken,
      workflowErrors: this.workflowErrors,
      final: f === undefined ? null : [f.total, f.checked, f.matched, f.lost, f.ok],
    })
  }

  restore(state: Uint8Array): void {
    try {
      const m = asMap(decode(state), 'bank state')
      if (m.v !== 1) throw new Error('bank state: unknown version')
      if (m.config === null) this.config = undefined
      else {
        const c = asMap(m.config, 'config')
        const n = (k: keyof BankConfig) => asUint(c[k], `config.${k}`)
        this.config = { lanes: n('lanes'), accountsPerLane: n('accountsPerLane'), initialBalance: n('initialBalance'), auditIntervalMs: n('auditIntervalMs'), logRing: n('logRing'), maxAmount: n('maxAmount'), chunk: n('chunk') }
      }
      const phase = asString(m.phase, 'phase', 16)
      if (!['idle', 'init', 'running', 'final-audit', 'done'].includes(phase)) throw new Error(`bank state: phase ${phase}`)
      this.phase = phase as Phase
      this.expectedTotal = asUint(m.expectedTotal, 'expectedTotal')
      const counts = asArray(m.counts, 'counts', 8).map((x) => asUint(x, 'count'))
      ;[this.target, this.assigned, this.completed, this.skipped, this.conflicts, this.syncCalls, this.asyncCalls, this.ackedWrites] = counts as [number, number, number, number, number, number, number, number]
      this.acked.clear()
      for (const row of asArray(m.acked, 'acked')) {
        const r = asArray(row, 'acked[]', 2)
        this.acked.set(asString(r[0], 'key'), asString(r[1], 'value', 1 << 16))
      }
      this.nextTx = asArray(m.nextTx, 'nextTx', MAX_LANES).map((x) => asUint(x, 'nextTx'))
      this.laneWorkflows = asArray(m.laneWorkflows, 'laneWorkflows', MAX_LANES).map((x) => asUint(x, 'laneWorkflow'))
      this.initWorkflow = asUint(m.initWorkflow, 'initWorkflow')
      this.pending.clear()
      for (const row of asArray(m.pending, 'pending')) {
        const r = asArray(row, 'pending[]', 4)
        const k = asUint(r[0], 'k')
        const kind = asString(r[1], 'kind', 8)
        if (kind === 'log') this.pending.set(k, { kind, key: asString(r[2], 'key'), value: asString(r[3], 'value', 1 << 16) })
        else if (kind === 'audit') this.pending.set(k, { kind })
        else if (kind === 'final') this.pending.set(k, { kind, after: asString(r[2], 'after') })
        else throw new Error(`bank state: pending kind ${kind}`)
      }
      this.waitingLog.clear()
      for (const row of asArray(m.waitingLog, 'waitingLog')) {
        const r = asArray(row, 'waitingLog[]', 2)
        this.waitingLog.set(asString(r[0], 'key'), asString(r[1], 'value', 1 << 16))
      }
      const a = asArray(m.audit, 'audit', 6).map((x) => asUint(x, 'audit'))
      ;[this.auditTimer, this.auditRuns, this.auditOk, this.auditFailed, this.lastTotal, this.lastInFlight] = a as [number, number, number, number, number, number]
      const strings = (v: Value | undefined, field: string) => asArray(v, field, MAX_FAILURES_KEPT).map((x) => asString(x, field, 4096))
      this.failures = strings(m.failures, 'failures')
      this.broken = strings(m.broken, 'broken')
      this.workflowErrors = strings(m.workflowErrors, 'workflowErrors')
      if (m.final === null) this.final = undefined
      else {
        const f = asArray(m.final, 'final', 5)
        this.final = { total: asUint(f[0], 'total'), checked: asUint(f[1], 'checked'), matched: asUint(f[2], 'matched'), lost: asUint(f[3], 'lost'), ok: f[4] === true }
      }
    } catch (err) {
      if (err instanceof DecodeError) throw new Error(`bank state: ${err.message}`)
      throw err
    }
  }
}
