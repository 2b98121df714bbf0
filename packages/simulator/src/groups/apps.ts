/**
 * Deterministic applications for multi-group simulations. Each folds everything it sees into a
 * hash chain, so any divergence between replicas shows in the state digest.
 */
import type { AppContext, CallContext, CallRef, Deferred, GroupApp, WorkflowContext } from '@bftrc/client-agreement'
import { asArray, asBool, asBytes, asMap, asString, asUint, decode, encode, sha256 } from '@bftrc/crypto'

function fold(chain: Uint8Array, ...parts: Array<Uint8Array | string | number>): Uint8Array {
  return sha256(encode({ chain, parts: parts.map((p) => (typeof p === 'number' ? p : p)) }))
}

/** A server: every call or request advances a counter and a chain; the result is both. */
export class RegisterApp implements GroupApp {
  count = 0
  chain: Uint8Array = new Uint8Array(32)

  onCall(ctx: CallContext, caller: string, op: Uint8Array): Uint8Array {
    return this.apply(ctx, caller, op)
  }

  onRequest(ctx: AppContext, client: string, op: Uint8Array): Uint8Array {
    return this.apply(ctx, client, op)
  }

  onQuery(): Uint8Array {
    return encode({ count: this.count, chain: this.chain })
  }

  private apply(ctx: AppContext, who: string, op: Uint8Array): Uint8Array {
    this.count++
    this.chain = fold(this.chain, who, op, ctx.now)
    return encode({ count: this.count, chain: this.chain })
  }

  snapshot(): Uint8Array {
    return encode({ count: this.count, chain: this.chain })
  }

  restore(state: Uint8Array): void {
    const m = asMap(decode(state))
    this.count = asUint(m.count, 'count')
    this.chain = asBytes(m.chain, 'chain', 32)
  }
}

/** Version 2 of the register: folds a version marker into every result's chain; migrates v1 state as it is. */
export class RegisterAppV2 extends RegisterApp {
  override onCall(ctx: CallContext, caller: string, op: Uint8Array): Uint8Array {
    this.chain = sha256(encode({ v2: this.chain }))
    return super.onCall(ctx, caller, op)
  }

  override onRequest(ctx: AppContext, client: string, op: Uint8Array): Uint8Array {
    this.chain = sha256(encode({ v2: this.chain }))
    return super.onRequest(ctx, client, op)
  }

  static migrate(_from: string, old: Uint8Array): Uint8Array {
    return old
  }
}

/** A middle tier: answers each call only after its own call to `backend` returns (deferred replies, nested calls). */
export class RelayApp implements GroupApp {
  chain: Uint8Array = new Uint8Array(32)
  readonly waiting = new Map<number, Deferred>()

  constructor(readonly backend: string) {}

  onCall(ctx: CallContext, caller: string, op: Uint8Array): Deferred {
    const ref = ctx.call(this.backend, encode({ relayed: op, caller }))
    const d = ctx.defer()
    this.waiting.set(ref.k, d)
    return d
  }

  onReply(ctx: AppContext, call: CallRef, result: Uint8Array): void {
    const d = this.waiting.get(call.k)
    if (d === undefined) return
    this.waiting.delete(call.k)
    this.chain = fold(this.chain, result, ctx.now)
    ctx.respond(d, encode({ relay: this.chain, backend: result }))
  }

  snapshot(): Uint8Array {
    return encode({ chain: this.chain, waiting: [...this.waiting].map(([k, d]) => [k, d.caller, d.k]) })
  }

  restore(state: Uint8Array): void {
    const m = asMap(decode(state))
    this.chain = asBytes(m.chain, 'chain', 32)
    this.waiting.clear()
    for (const row of asArray(m.waiting, 'waiting')) {
      const r = asArray(row, 'row')
      this.waiting.set(asUint(r[0], 'k'), { caller: asString(r[1], 'caller'), k: asUint(r[2], 'dk') })
    }
  }
}

export type DriverMode = 'async' | 'pipelined' | 'sync' | 'timer'

/**
 * A long-running replicated client: issues `calls` calls to `target`, asynchronously one at a
 * time, pipelined `window` at a time, from a workflow with synchronous invocations, or paced by
 * timers. Results fold into its chain.
 */
export class DriverApp implements GroupApp {
  issued = 0
  delivered = 0
  chain: Uint8Array = new Uint8Array(32)
  workflowDone = false

  readonly workflows = {
    loop: function* (w: WorkflowContext, input: Uint8Array) {
      const m = asMap(decode(input))
      const target = asString(m.target, 'target')
      const n = asUint(m.n, 'n')
      for (let i = 1; i <= n; i++) {
        const r: Uint8Array = yield w.invoke(target, encode({ i, sync: true, r: Math.floor(w.random() * 1000) }))
        yield w.emit(r)
        if (i % 5 === 0) yield w.sleep(20)
      }
      return encode({ done: n })
    },
  }

  constructor(
    readonly target: string,
    public calls: number,
    readonly mode: DriverMode,
    readonly window = 8,
  ) {}

  get done(): boolean {
    return this.delivered >= this.calls
  }

  init(ctx: AppContext): void {
    if (this.mode === 'sync') {
      ctx.startWorkflow('loop', encode({ target: this.target, n: this.calls }))
      return
    }
    this.start(ctx)
  }

  /** Starts issuing calls (the first of a timer-paced run, or the first window of calls). */
  private start(ctx: AppContext): void {
    if (this.mode === 'timer') {
      ctx.setTimer(30, 'next')
      return
    }
    const first = this.mode === 'pipelined' ? this.window : 1
    for (let i = 0; i < first && this.issued < this.calls; i++) this.issue(ctx)
  }

  private issue(ctx: AppContext): void {
    this.issued++
    ctx.call(this.target, encode({ i: this.issued, r: Math.floor(ctx.random() * 1000) }))
  }

  /**
   * A plain client's request: `{go: n}` asks for n more calls (started as at init), anything else
   * is folded into the chain; the answer is the counts and the chain.
   */
  onRequest(ctx: AppContext, client: string, op: Uint8Array): Uint8Array {
    const m = asMap(decode(op))
    if (m.go !== undefined) {
      const more = asUint(m.go, 'go', 10_000)
      const idle = this.issued === this.calls
      this.calls += more
      if (this.mode === 'sync') ctx.startWorkflow('loop', encode({ target: this.target, n: more }))
      else if (idle) this.start(ctx)
    } else this.chain = fold(this.chain, client, op, ctx.now)
    return encode({ issued: this.issued, delivered: this.delivered, chain: this.chain })
  }

  onReply(ctx: AppContext, call: CallRef, result: Uint8Array): void {
    this.delivered++
    this.chain = fold(this.chain, call.k, result, ctx.now)
    if (this.issued >= this.calls) return
    if (this.mode === 'timer') ctx.setTimer(30, 'next')
    else this.issue(ctx)
  }

  onTimer(ctx: AppContext, _id: number, tag: string): void {
    if (tag === 'next' && this.issued < this.calls) this.issue(ctx)
  }

  onWorkflowEvent(ctx: AppContext, _workflow: number, event: Uint8Array): void {
    this.delivered++
    this.chain = fold(this.chain, event, ctx.now)
  }

  onWorkflowDone(): void {
    this.workflowDone = true
  }

  snapshot(): Uint8Array {
    return encode({ calls: this.calls, issued: this.issued, delivered: this.delivered, chain: this.chain, workflowDone: this.workflowDone })
  }

  restore(state: Uint8Array): void {
    const m = asMap(decode(state))
    this.issued = asUint(m.issued, 'issued')
    this.delivered = asUint(m.delivered, 'delivered')
    this.chain = asBytes(m.chain, 'chain', 32)
    this.workflowDone = asBool(m.workflowDone, 'workflowDone')
    this.calls = asUint(m.calls, 'calls')
  }
}

/** Version 2 of the driver: folds a version marker into its chain; migrates v1 state by adding a field. */
export class DriverAppV2 extends DriverApp {
  migratedFrom = ''

  override onReply(ctx: AppContext, call: CallRef, result: Uint8Array): void {
    this.chain = sha256(encode({ v2: this.chain }))
    super.onReply(ctx, call, result)
  }

  override snapshot(): Uint8Array {
    const m = asMap(decode(super.snapshot()))
    return encode({ ...m, migratedFrom: this.migratedFrom })
  }

  override restore(state: Uint8Array): void {
    super.restore(state)
    const m = asMap(decode(state))
    this.migratedFrom = m.migratedFrom === undefined ? '' : asString(m.migratedFrom, 'migratedFrom')
  }

  /** The deterministic migration from a v1 snapshot. */
  static migrate(from: string, old: Uint8Array): Uint8Array {
    return encode({ ...asMap(decode(old)), migratedFrom: from })
  }
}
