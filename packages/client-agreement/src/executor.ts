/**
 * The executor of a group replica: the application plus the inter-group state the voter needs,
 * all of it deterministic and all of it in the checkpoint (call counters, outstanding calls,
 * per-caller exactly-once tables and reply caches, timers, workflow histories).
 *
 * It runs inside core-agreement's execution (synchronously, in order) and leaves what the voter
 * must do outside the order (sign and send shares) in `effects`, which the voter drains.
 */
import type { BatchContext, ExecutionContext, Executor } from '@bftrc/core-agreement'
import { DecodeError, type Value, asArray, asBool, asBytes, asMap, asString, asUint, decode, encode, sha256 } from '@bftrc/crypto'
import { type AppContext, type CallContext, type CallRef, type Deferred, type GroupApp, errorResult } from './app.js'
import { type GroupEvent, decodeEvent } from './events.js'
import { OrderRandom } from './random.js'
import { type AppVersion, type UpgradeRequest, localCodeCheck, upgradeId, upgradeVerdict } from './upgrade.js'
import { Workflows } from './workflow.js'

export interface ExecutorLimits {
  /** W: calls outstanding per callee (caller side) and admitted per caller (callee side). */
  readonly callWindow: number
  /** Calls the app may queue locally beyond the window, per callee. */
  readonly maxQueuedCalls: number
  readonly maxTimers: number
  readonly maxWorkflows: number
  readonly maxOpBytes: number
}

export type Effect =
  | { readonly kind: 'send-call'; readonly callee: string; readonly k: number; readonly op: Uint8Array }
  /** `route`: the caller's view to send the reply to (from the ordered call), when known. */
  | { readonly kind: 'send-reply'; readonly caller: string; readonly k: number; readonly result: Uint8Array; readonly route?: number }
  | { readonly kind: 'call-delivered'; readonly callee: string; readonly k: number; readonly result: Uint8Array }
  | { readonly kind: 'call-executed'; readonly caller: string; readonly k: number }
  /** An ordered event that changed nothing, or an application handler that failed: `code` is one of a fixed set (counters), `detail` says more. */
  | { readonly kind: 'rejected'; readonly code: RejectionCode; readonly detail: string; readonly key: string }
  | { readonly kind: 'upgraded'; readonly from: string; readonly to: string; readonly seq: number }
  | { readonly kind: 'halted'; readonly reason: string; readonly seq: number }

/** Why an ordered event was refused or an application handler failed (a bounded set, for counters). */
export type RejectionCode =
  | 'duplicate-call'
  | 'call-outside-window'
  | 'reply-not-outstanding'
  | 'upgrade-refused'
  | 'upgrade-migration-failed'
  | 'handler-threw'
  | 'handler-result'

/** A timer may be set at most this far ahead (ms, about 35 years): agreed time plus it stays an exact integer. */
export const MAX_TIMER_DELAY = 2 ** 40
/** Longest timer tag: it is part of the checkpointed state. */
export const MAX_TIMER_TAG = 1024
/** A lone surrogate has no UTF-8 form, so a tag with one could not be checkpointed. */
const LONE_SURROGATE = /\p{Cs}/u

interface Outstanding {
  readonly op: Uint8Array
  /** 0 for the app's asynchronous calls, else the workflow waiting for it. */
  readonly workflow: number
}

interface CalleeState {
  nextK: number
  readonly outstanding: Map<number, Outstanding>
  readonly queued: Array<{ op: Uint8Array; workflow: number }>
  /** Every k at or below this has been delivered. */
  deliveredLow: number
  readonly deliveredAbove: Set<number>
}

interface CallerState {
  /** Every k at or below this has been executed. */
  executedLow: number
  readonly executedAbove: Set<number>
  readonly replies: Map<number, { result: Uint8Array; digest: Uint8Array }>
  readonly deferred: Set<number>
}

interface Timer {
  readonly at: number
  readonly tag: string
  /** 0 for the app's timers, else the sleeping workflow. */
  readonly workflow: number
}

/** Which application versions a replica can run, and the one it starts with. */
export interface Versioning {
  /** Version of the app passed to the constructor (the genesis version). */
  readonly version: string
  /** Every version this replica holds code for (the genesis one may be listed too). */
  readonly versions: readonly AppVersion[]
}

export const DEFAULT_VERSION = '1'

export class GroupExecutor implements Executor {
  effects: Effect[] = []
  private started = false
  private app: GroupApp
  private version: string
  private readonly applied = new Set<string>()
  private readonly versions: AppVersion[]
  /** Why execution stopped (an ordered upgrade needs code we lack), and the state to resume from if known. */
  private halt: { reason: string; pendingState: Uint8Array | undefined } | undefined
  private readonly callees = new Map<string, CalleeState>()
  private readonly callers = new Map<string, CallerState>()
  private readonly timers = new Map<number, Timer>()
  private nextTimerId = 1
  private workflows: Workflows
  private batch: BatchContext = { seq: 0, stamp: 0 }
  private eventIndex = 0
  private readonly groups: Pick<ReadonlySet<string>, 'has'>

  constructor(
    readonly group: string,
    app: GroupApp,
    private readonly limits: ExecutorLimits,
    versioning: Versioning = { version: DEFAULT_VERSION, versions: [] },
    /** The groups of the membership: a call to any other name is refused when it is made. Default: any. */
    groups?: ReadonlySet<string>,
  ) {
    this.groups = groups ?? { has: () => true }
    this.app = app
    this.version = versioning.version
    this.versions = [...versioning.versions]
    this.workflows = this.newWorkflows(app)
  }

  private newWorkflows(app: GroupApp): Workflows {
    return new Workflows(app.workflows ?? {}, this.limits.maxWorkflows, {
      invoke: (id, group, op) => this.issueCall(group, op, id),
      sleep: (id, ms) => this.addTimer(ms, 'workflow-sleep', id),
      emit: (id, event) => this.guard('onWorkflowEvent', () => this.app.onWorkflowEvent?.(this.context(), id, event)),
      done: (id, result) => this.guard('onWorkflowDone', () => this.app.onWorkflowDone?.(this.context(), id, result)),
    })
  }

  // ---------------------------------------------------------------- versions

  get currentVersion(): string {
    return this.version
  }

  /** The application instance running now (an upgrade replaces it). */
  get currentApp(): GroupApp {
    return this.app
  }

  halted(): string | undefined {
    return this.halt?.reason
  }

  hasApplied(r: UpgradeRequest): boolean {
    return this.applied.has(upgradeId(r))
  }

  appliedUpgrades(): ReadonlySet<string> {
    return this.applied
  }

  installedVersions(): readonly AppVersion[] {
    return this.versions
  }

  /**
   * Installs the code of a version. If execution had stopped for lack of it and the state to
   * resume from is known (a checkpoint restored while the code was missing), it resumes.
   */
  install(v: AppVersion): void {
    const i = this.versions.findIndex((x) => x.version === v.version)
    if (i >= 0) this.versions.splice(i, 1)
    this.versions.push(v)
    const pending = this.halt?.pendingState
    if (pending !== undefined) this.restore(pending)
  }

  private onUpgradeEvent(r: UpgradeRequest): void {
    const key = `upgrade:${upgradeId(r)}`
    const verdict = upgradeVerdict(this.version, this.applied, r)
    if (verdict !== undefined) {
      this.effects.push({ kind: 'rejected', code: 'upgrade-refused', detail: `${verdict.code}: ${verdict.message}`, key })
      return
    }
    const local = localCodeCheck(this.versions, r)
    if (!('create' in local)) {
      // Every correct replica that holds the code switches here; this one cannot, so it stops
      // executing (it still votes) until a state transfer brings it a state it can run.
      this.halt = { reason: `cannot upgrade to ${r.version}: ${local.message}`, pendingState: undefined }
      this.effects.push({ kind: 'halted', reason: this.halt.reason, seq: this.batch.seq })
      return
    }
    let next: GroupApp
    let workflows: Workflows
    try {
      const old = this.app.snapshot()
      next = local.create()
      next.restore(local.migrate === undefined ? old : local.migrate(this.version, old))
      // Running workflows carry on under the new code: it must replay their histories.
      workflows = this.newWorkflows(next)
      workflows.restore(this.workflows.toValue())
    } catch (err) {
      // Deterministic: every correct replica holding this code fails alike and keeps the old version.
      this.effects.push({ kind: 'rejected', code: 'upgrade-migration-failed', detail: describeError(err), key })
      return
    }
    const from = this.version
    this.app = next
    this.workflows = workflows
    this.version = r.version
    this.applied.add(upgradeId(r))
    this.effects.push({ kind: 'upgraded', from, to: r.version, seq: this.batch.seq })
  }

  // ---------------------------------------------------------------- what the voter reads

  /** Earliest pending timer, so the voter can ask the group to order a tick in time. */
  nextTimerAt(): number | undefined {
    let min: number | undefined
    for (const t of this.timers.values()) if (min === undefined || t.at < min) min = t.at
    return min
  }

  get isStarted(): boolean {
    return this.started
  }

  callExecuted(caller: string, k: number): boolean {
    const c = this.callers.get(caller)
    return c !== undefined && (k <= c.executedLow || c.executedAbove.has(k))
  }

  /** The cached answer to an executed call (undefined while deferred or collected as garbage). */
  cachedReply(caller: string, k: number): { result: Uint8Array; digest: Uint8Array } | undefined {
    return this.callers.get(caller)?.replies.get(k)
  }

  /** Whether a call from `caller` numbered k is inside our admission window. */
  admits(caller: string, k: number): boolean {
    const low = this.callers.get(caller)?.executedLow ?? 0
    return k > low && k <= low + this.limits.callWindow
  }

  isOutstanding(callee: string, k: number): boolean {
    return this.callees.get(callee)?.outstanding.has(k) === true
  }

  outstandingCalls(): Array<{ callee: string; k: number; op: Uint8Array }> {
    const out: Array<{ callee: string; k: number; op: Uint8Array }> = []
    for (const [callee, s] of this.callees) for (const [k, o] of s.outstanding) out.push({ callee, k, op: o.op })
    return out
  }

  /** Counts for status displays and memory checks. */
  sizes(): Record<string, number> {
    let outstanding = 0
    let queued = 0
    let replies = 0
    let executedAbove = 0
    for (const s of this.callees.values()) {
      outstanding += s.outstanding.size
      queued += s.queued.length
    }
    for (const c of this.callers.values()) {
      replies += c.replies.size
      executedAbove += c.executedAbove.size
    }
    return { outstanding, queued, replies, executedAbove, timers: this.timers.size, workflows: this.workflows.size, history: this.workflows.historyLength() }
  }

  // ---------------------------------------------------------------- Executor

  beginBatch(ctx: BatchContext): void {
    this.batch = ctx
    this.eventIndex = 0
    if (!this.started) {
      this.started = true
      this.guard('init', () => this.app.init?.(this.context()))
    }
    // Timers due at this agreed time fire first, in (time, id) order.
    const due = [...this.timers.entries()].filter(([, t]) => t.at <= ctx.stamp).sort((a, b) => a[1].at - b[1].at || a[0] - b[0])
    for (const [id, t] of due) {
      this.timers.delete(id)
      this.eventIndex++
      if (t.workflow !== 0) this.workflows.resume(t.workflow, new Uint8Array(0), ctx.stamp)
      else this.guard('onTimer', () => this.app.onTimer?.(this.context(), id, t.tag))
    }
  }

  execute(op: Uint8Array, ctx: ExecutionContext): Uint8Array {
    this.eventIndex++
    let result: Uint8Array = errorResult('this group serves no plain clients')
    if (this.app.onRequest !== undefined) {
      const onRequest = this.app.onRequest.bind(this.app)
      result = this.guard('onRequest', () => onRequest(this.context(), ctx.client, op)) ?? errorResult('handler failed')
    }
    return result
  }

  executeReadOnly(op: Uint8Array, ctx: ExecutionContext): Uint8Array {
    if (this.app.onQuery === undefined) return errorResult('this group answers no queries')
    try {
      return this.app.onQuery(ctx.client, op)
    } catch (err) {
      return errorResult((err as Error).message)
    }
  }

  executeProposal(payload: Uint8Array, ctx: BatchContext): void {
    this.batch = ctx
    this.eventIndex++
    let ev: GroupEvent
    try {
      ev = decodeEvent(payload, this.limits.maxOpBytes)
    } catch {
      // The validator accepted it, so this cannot happen on a correct replica.
      throw new Error('an ordered proposal does not decode')
    }
    if (ev.e === 'call') this.onCallEvent(ev.caller, ev.k, ev.op, ev.route)
    else if (ev.e === 'reply') this.onReplyEvent(ev.callee, ev.k, ev.result)
    else if (ev.e === 'upgrade') this.onUpgradeEvent(ev.request)
    // A tick only advances agreed time; due timers fired in beginBatch.
  }

  // ---------------------------------------------------------------- callee side

  private callerState(caller: string): CallerState {
    let c = this.callers.get(caller)
    if (c === undefined) {
      c = { executedLow: 0, executedAbove: new Set(), replies: new Map(), deferred: new Set() }
      this.callers.set(caller, c)
    }
    return c
  }

  private onCallEvent(caller: string, k: number, op: Uint8Array, route: number | undefined): void {
    const c = this.callerState(caller)
    if (k <= c.executedLow || c.executedAbove.has(k)) {
      this.effects.push({ kind: 'rejected', code: 'duplicate-call', detail: 'the call was executed before', key: `call:${caller}:${k}` })
      return
    }
    if (!this.admits(caller, k)) {
      this.effects.push({ kind: 'rejected', code: 'call-outside-window', detail: 'the call is outside the admission window', key: `call:${caller}:${k}` })
      return
    }
    c.executedAbove.add(k)
    while (c.executedAbove.has(c.executedLow + 1)) {
      c.executedAbove.delete(c.executedLow + 1)
      c.executedLow++
    }
    // Replies older than the window can no longer be asked for by a correct caller.
    for (const old of c.replies.keys()) if (old <= c.executedLow - this.limits.callWindow) c.replies.delete(old)
    this.effects.push({ kind: 'call-executed', caller, k })
    let deferred = false
    const ctx: CallContext = {
      ...this.contextFields(),
      caller,
      k,
      defer: () => {
        deferred = true
        return { caller, k }
      },
    }
    let answer: Uint8Array | Deferred | undefined = errorResult('this group serves no calls')
    if (this.app.onCall !== undefined) {
      const onCall = this.app.onCall.bind(this.app)
      answer = this.guard('onCall', () => onCall(ctx, caller, op))
    }
    // Answered later only when the handler asked to (ctx.defer()) and returned normally; a handler
    // that threw or returned something else answers now, with an error, so the call never hangs.
    if (deferred && answer !== undefined && !(answer instanceof Uint8Array)) c.deferred.add(k)
    else if (answer instanceof Uint8Array) this.answer(caller, k, answer, route)
    else this.answer(caller, k, errorResult(answer === undefined ? 'the handler failed' : 'the handler returned neither bytes nor ctx.defer()'), route)
  }

  private answer(caller: string, k: number, result: Uint8Array, route?: number): void {
    const c = this.callerState(caller)
    if (!(result instanceof Uint8Array)) result = errorResult('the result is not bytes')
    else if (result.length > this.limits.maxOpBytes) result = errorResult('result too large')
    c.deferred.delete(k)
    c.replies.set(k, { result, digest: sha256(result) })
    this.effects.push({ kind: 'send-reply', caller, k, result, ...(route !== undefined ? { route } : {}) })
  }

  // ---------------------------------------------------------------- caller side

  private calleeState(callee: string): CalleeState {
    let s = this.callees.get(callee)
    if (s === undefined) {
      s = { nextK: 1, outstanding: new Map(), queued: [], deliveredLow: 0, deliveredAbove: new Set() }
      this.callees.set(callee, s)
    }
    return s
  }

  /** Whether call number `nextK` is inside the window: at most W past the lowest undelivered call. */
  private mayIssue(s: CalleeState): boolean {
    return s.nextK <= s.deliveredLow + this.limits.callWindow
  }

  /** Issues a call now if the window allows, else queues it (deterministically) behind the others. */
  private issueCall(callee: string, op: Uint8Array, workflow: number): CallRef {
    if (callee === this.group) throw new Error('a group cannot call itself')
    if (!this.groups.has(callee)) throw new RangeError(`no group ${String(callee).slice(0, 64)} in the membership`)
    if (!(op instanceof Uint8Array)) throw new TypeError('an operation is bytes (a Uint8Array)')
    if (op.length > this.limits.maxOpBytes) throw new RangeError(`operation exceeds ${this.limits.maxOpBytes} bytes`)
    const s = this.calleeState(callee)
    // The window bounds the span of call numbers, not only their count: a callee keeps a reply
    // until its executed calls run W past it, so a call still undelivered here must never be
    // W behind the newest one we issue, or its reply could be gone when we ask for it again.
    if (s.queued.length > 0 || !this.mayIssue(s)) {
      if (s.queued.length >= this.limits.maxQueuedCalls) throw new RangeError(`more than ${this.limits.maxQueuedCalls} calls queued for ${callee}`)
      s.queued.push({ op, workflow })
      // Queued calls take their number when they leave the queue, in order.
      return { callee, k: s.nextK + s.queued.length - 1 }
    }
    const k = s.nextK++
    s.outstanding.set(k, { op, workflow })
    this.effects.push({ kind: 'send-call', callee, k, op })
    return { callee, k }
  }

  private onReplyEvent(callee: string, k: number, result: Uint8Array): void {
    const s = this.callees.get(callee)
    const o = s?.outstanding.get(k)
    if (s === undefined || o === undefined) {
      this.effects.push({ kind: 'rejected', code: 'reply-not-outstanding', detail: 'reply to no outstanding call', key: `reply:${callee}:${k}` })
      return
    }
    s.outstanding.delete(k)
    s.deliveredAbove.add(k)
    while (s.deliveredAbove.has(s.deliveredLow + 1)) {
      s.deliveredAbove.delete(s.deliveredLow + 1)
      s.deliveredLow++
    }
    this.effects.push({ kind: 'call-delivered', callee, k, result })
    while (s.queued.length > 0 && this.mayIssue(s)) {
      const next = s.queued.shift() as { op: Uint8Array; workflow: number }
      const nk = s.nextK++
      s.outstanding.set(nk, next)
      this.effects.push({ kind: 'send-call', callee, k: nk, op: next.op })
    }
    if (o.workflow !== 0) this.workflows.resume(o.workflow, result, this.batch.stamp)
    else this.guard('onReply', () => this.app.onReply?.(this.context(), { callee, k }, result))
  }

  // ---------------------------------------------------------------- context

  private addTimer(delay: number, tag: string, workflow: number): number {
    if (typeof delay !== 'number' || !Number.isFinite(delay) || delay > MAX_TIMER_DELAY) throw new RangeError(`a timer delay is a number of ms up to ${MAX_TIMER_DELAY}`)
    if (typeof tag !== 'string' || tag.length > MAX_TIMER_TAG || LONE_SURROGATE.test(tag)) throw new RangeError(`a timer tag is a well-formed string of at most ${MAX_TIMER_TAG} characters`)
    if (this.timers.size >= this.limits.maxTimers) throw new RangeError(`more than ${this.limits.maxTimers} timers`)
    const at = this.batch.stamp + Math.max(0, Math.floor(delay))
    const id = this.nextTimerId++
    this.timers.set(id, { at, tag, workflow })
    return id
  }

  private contextFields(): AppContext {
    const random = new OrderRandom(this.batch.seq, this.batch.stamp, this.eventIndex)
    return {
      group: this.group,
      seq: this.batch.seq,
      now: this.batch.stamp,
      random: () => random.next(),
      call: (group, op) => this.issueCall(group, op, 0),
      setTimer: (delay, tag) => this.addTimer(delay, tag, 0),
      cancelTimer: (id) => {
        const t = this.timers.get(id)
        if (t !== undefined && t.workflow === 0) this.timers.delete(id)
      },
      startWorkflow: (name, input) => {
        if (!(input instanceof Uint8Array) || input.length > this.limits.maxOpBytes) throw new RangeError(`a workflow input is bytes, at most ${this.limits.maxOpBytes}`)
        return this.workflows.start(name, input, this.batch.stamp, this.batch.seq, this.eventIndex)
      },
      respond: (d, result) => {
        const c = this.callers.get(d.caller)
        if (c === undefined || !c.deferred.has(d.k)) throw new Error(`no deferred call ${d.caller}:${d.k}`)
        this.answer(d.caller, d.k, result)
      },
    }
  }

  private context(): AppContext {
    return this.contextFields()
  }

  /**
   * Runs an application handler. A handler that throws is a deterministic bug of the app: every
   * correct replica throws alike, so the event is treated as answered with an error and the
   * replica keeps running.
   */
  private guard<T>(what: string, fn: () => T): T | undefined {
    try {
      return fn()
    } catch (err) {
      this.effects.push({ kind: 'rejected', code: 'handler-threw', detail: `${what}: ${describeError(err)}`, key: what })
      return undefined
    }
  }

  // ---------------------------------------------------------------- snapshot

  /**
   * The application's snapshot. One that throws or returns something other than bytes does so on
   * every correct replica alike: execution stops there (`halted` says why), with an empty
   * application state in the checkpoint, instead of an exception in every replica at once.
   */
  private appSnapshot(): Uint8Array {
    let state: unknown
    try {
      state = this.app.snapshot()
    } catch (err) {
      state = err instanceof Error ? err : new Error(String(err))
    }
    if (state instanceof Uint8Array) return state
    this.halt ??= { reason: `the application's snapshot failed: ${describeError(state instanceof Error ? state : 'not bytes')}`, pendingState: undefined }
    return new Uint8Array(0)
  }

  snapshot(): Uint8Array {
    const callees: Value[] = [...this.callees].map(([name, s]) => [
      name,
      s.nextK,
      [...s.outstanding].map(([k, o]) => [k, o.op, o.workflow]),
      s.queued.map((q) => [q.op, q.workflow]),
      s.deliveredLow,
      [...s.deliveredAbove].sort((a, b) => a - b),
    ])
    const callers: Value[] = [...this.callers].map(([name, c]) => [
      name,
      c.executedLow,
      [...c.executedAbove].sort((a, b) => a - b),
      [...c.replies].map(([k, r]) => [k, r.result]),
      [...c.deferred].sort((a, b) => a - b),
    ])
    const timers: Value[] = [...this.timers].map(([id, t]) => [id, t.at, t.tag, t.workflow])
    if (this.halt?.pendingState !== undefined) return this.halt.pendingState
    return encode({
      version: this.version,
      applied: [...this.applied].sort(),
      app: this.appSnapshot(),
      started: this.started,
      callees,
      callers,
      timers,
      nextTimerId: this.nextTimerId,
      workflows: this.workflows.toValue(),
    })
  }

  restore(snapshot: Uint8Array): void {
    try {
      const m = asMap(decode(snapshot), 'state')
      const version = asString(m.version, 'version', 64)
      if (version !== this.version) {
        const code = this.versions.find((v) => v.version === version)
        if (code === undefined) {
          // A state of a version whose code is not installed: keep it, stop executing, resume on install.
          this.halt = { reason: `state is at version ${version}, whose code is not installed`, pendingState: snapshot }
          return
        }
        this.app = code.create()
        this.version = version
      }
      this.halt = undefined
      this.applied.clear()
      for (const id of asArray(m.applied, 'applied')) this.applied.add(asString(id, 'applied[]', 256))
      const appState = asBytes(m.app, 'app')
      try {
        this.app.restore(appState)
      } catch (err) {
        // A state the group agreed on that this application cannot read: every correct replica
        // with the same code fails alike. Stop executing (as for missing code) rather than crash.
        this.halt = { reason: `the application cannot restore its state: ${describeError(err)}`, pendingState: undefined }
        return
      }
      this.workflows = this.newWorkflows(this.app)
      this.started = asBool(m.started, 'started')
      this.callees.clear()
      for (const row of asArray(m.callees, 'callees')) {
        const r = asArray(row, 'callee')
        const s: CalleeState = { nextK: asUint(r[1], 'nextK'), outstanding: new Map(), queued: [], deliveredLow: asUint(r[4], 'deliveredLow'), deliveredAbove: new Set() }
        for (const o of asArray(r[2], 'outstanding')) {
          const oo = asArray(o, 'outstanding[]')
          s.outstanding.set(asUint(oo[0], 'k'), { op: asBytes(oo[1], 'op'), workflow: asUint(oo[2], 'workflow') })
        }
        for (const q of asArray(r[3], 'queued')) {
          const qq = asArray(q, 'queued[]')
          s.queued.push({ op: asBytes(qq[0], 'op'), workflow: asUint(qq[1], 'workflow') })
        }
        for (const k of asArray(r[5], 'deliveredAbove')) s.deliveredAbove.add(asUint(k, 'k'))
        this.callees.set(asString(r[0], 'callee'), s)
      }
      this.callers.clear()
      for (const row of asArray(m.callers, 'callers')) {
        const r = asArray(row, 'caller')
        const c: CallerState = { executedLow: asUint(r[1], 'executedLow'), executedAbove: new Set(), replies: new Map(), deferred: new Set() }
        for (const k of asArray(r[2], 'executedAbove')) c.executedAbove.add(asUint(k, 'k'))
        for (const rep of asArray(r[3], 'replies')) {
          const rr = asArray(rep, 'reply')
          const result = asBytes(rr[1], 'result')
          c.replies.set(asUint(rr[0], 'k'), { result, digest: sha256(result) })
        }
        for (const k of asArray(r[4], 'deferred')) c.deferred.add(asUint(k, 'k'))
        this.callers.set(asString(r[0], 'caller'), c)
      }
      this.timers.clear()
      for (const row of asArray(m.timers, 'timers')) {
        const r = asArray(row, 'timer')
        this.timers.set(asUint(r[0], 'id'), { at: asUint(r[1], 'at'), tag: asString(r[2], 'tag', 1024), workflow: asUint(r[3], 'workflow') })
      }
      this.nextTimerId = asUint(m.nextTimerId, 'nextTimerId')
      this.workflows.restore(m.workflows ?? null)
    } catch (err) {
      if (err instanceof DecodeError) throw new Error(`GroupExecutor.restore: ${err.message}`)
      throw err
    }
  }
}

/** An exception's message for a rejection's detail, bounded (an application may throw anything). */
function describeError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  return message.slice(0, 200)
}
