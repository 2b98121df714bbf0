/**
 * The benchmark's client group application: on a plain client's request it runs one workload of
 * calls to the KV group, either synchronous (a workflow: `yield w.invoke` one call after the other)
 * or pipelined asynchronous (`ctx.call` with up to `window` calls outstanding, a new call from
 * `onReply`). Its replicated state says how far the workload is (agreed time of start and end);
 * per-call latencies are measured outside the order by the replica process (host clock).
 *
 * Request: canonical map { cmd: 'start', mode: 'sync'|'async', n, window, run }
 *   → { ok: true } or { ok: false, error }
 */
import type { AppContext, CallRef, GroupApp, WorkflowCommand, WorkflowContext } from '@bftrc/client-agreement'
import { type ValueMap, asMap, asString, asUint, decode, encode } from '@bftrc/crypto'
import { kv } from '../src/kv-app.js'

export const KV = 'kv'
/** Calls per workflow incarnation before `continueAsNew` (bounds the recorded history). */
const CHUNK = 50

export interface WorkloadState {
  run: number
  mode: string
  n: number
  window: number
  issued: number
  delivered: number
  startedAt: number
  finishedAt: number
  active: boolean
  errors: number
}

function putOp(run: number, i: number): Uint8Array {
  return kv.put(`bench-${i % 256}`, `run ${run} call ${i} ${'x'.repeat(16)}`)
}

function* syncWorkflow(w: WorkflowContext, input: Uint8Array): Generator<WorkflowCommand, Uint8Array | undefined, Uint8Array> {
  const m = asMap(decode(input), 'input')
  const run = asUint(m.run, 'run')
  const first = asUint(m.first, 'first')
  const n = asUint(m.n, 'n')
  const end = Math.min(n, first + CHUNK)
  for (let i = first; i < end; i++) {
    const r = yield w.invoke(KV, putOp(run, i))
    yield w.emit(r.length > 0 ? new Uint8Array([1]) : new Uint8Array([0]))
  }
  if (end < n) yield w.continueAsNew(encode({ run, first: end, n }))
  return undefined
}

export class BenchCallerApp implements GroupApp {
  readonly state: WorkloadState = { run: 0, mode: '', n: 0, window: 0, issued: 0, delivered: 0, startedAt: 0, finishedAt: 0, active: false, errors: 0 }
  readonly workflows = { sync: syncWorkflow }

  onRequest(ctx: AppContext, _client: string, op: Uint8Array): Uint8Array {
    try {
      const m = asMap(decode(op), 'request')
      if (asString(m.cmd, 'cmd') !== 'start') return encode({ ok: false, error: 'unknown cmd' })
      if (this.state.active) return encode({ ok: false, error: 'a workload is running' })
      const mode = asString(m.mode, 'mode')
      const n = asUint(m.n, 'n')
      const window = Math.max(1, asUint(m.window, 'window'))
      const run = asUint(m.run, 'run')
      if (mode !== 'sync' && mode !== 'async') return encode({ ok: false, error: 'mode' })
      Object.assign(this.state, { run, mode, n, window, issued: 0, delivered: 0, startedAt: ctx.now, finishedAt: 0, active: n > 0, errors: 0 })
      if (n === 0) return encode({ ok: true })
      if (mode === 'sync') {
        this.state.issued = n
        ctx.startWorkflow('sync', encode({ run, first: 0, n }))
      } else {
        while (this.state.issued < Math.min(n, window)) ctx.call(KV, putOp(run, this.state.issued++))
      }
      return encode({ ok: true })
    } catch (err) {
      return encode({ ok: false, error: String((err as Error).message ?? err) })
    }
  }

  onReply(ctx: AppContext, _call: CallRef, _result: Uint8Array): void {
    if (!this.state.active || this.state.mode !== 'async') return
    this.state.delivered++
    if (this.state.issued < this.state.n) ctx.call(KV, putOp(this.state.run, this.state.issued++))
    else if (this.state.delivered >= this.state.n) this.finish(ctx)
  }

  onWorkflowEvent(ctx: AppContext, _workflow: number, event: Uint8Array): void {
    this.state.delivered++
    if (event[0] !== 1) this.state.errors++
    if (this.state.delivered >= this.state.n) this.finish(ctx)
  }

  private finish(ctx: AppContext): void {
    this.state.active = false
    this.state.finishedAt = ctx.now
  }

  snapshot(): Uint8Array {
    return encode({ ...this.state } as unknown as ValueMap)
  }

  restore(bytes: Uint8Array): void {
    const m = asMap(decode(bytes), 'state')
    Object.assign(this.state, {
      run: asUint(m.run, 'run'),
      mode: asString(m.mode, 'mode'),
      n: asUint(m.n, 'n'),
      window: asUint(m.window, 'window'),
      issued: asUint(m.issued, 'issued'),
      delivered: asUint(m.delivered, 'delivered'),
      startedAt: asUint(m.startedAt, 'startedAt'),
      finishedAt: asUint(m.finishedAt, 'finishedAt'),
      active: m.active === true,
      errors: asUint(m.errors, 'errors'),
    })
  }
}
