/**
 * Workflows: generator functions resumed at the point of the order where what they wait for is
 * delivered. A suspended generator cannot be snapshotted, so the checkpoint keeps each workflow's
 * name, input and history (what every `yield` returned, and the agreed time then); after a restart
 * or a state transfer the workflow is rebuilt by replaying its history, in the manner of durable
 * execution engines. `continueAsNew` starts it afresh from explicit input, so history stays bounded.
 */
import { DecodeError, type Value, asArray, asBytes, asMap, asString, asUint } from '@bftrc/crypto'
import type { WorkflowCommand, WorkflowContext, WorkflowFn } from './app.js'
import { errorResult } from '@bftrc/core-agreement'
import { OrderRandom } from './random.js'

export const MAX_HISTORY = 10_000

interface HistoryEntry {
  readonly kind: WorkflowCommand['kind']
  readonly value: Uint8Array
  readonly now: number
}

interface WorkflowState {
  readonly id: number
  readonly name: string
  input: Uint8Array
  startedAt: number
  seed: number
  history: HistoryEntry[]
  generator: Generator<WorkflowCommand, Uint8Array | undefined, Uint8Array> | undefined
  context: { now: number; steps: number }
  /** The command it waits on (an invoke or a sleep), once it waits. */
  waiting: WorkflowCommand['kind'] | undefined
}

export interface WorkflowHost {
  invoke(workflow: number, group: string, op: Uint8Array): void
  sleep(workflow: number, ms: number): void
  emit(workflow: number, event: Uint8Array): void
  done(workflow: number, result: Uint8Array | undefined): void
}

export class WorkflowError extends Error {
  override readonly name = 'WorkflowError'
}

const EMPTY = new Uint8Array(0)

/** A workflow's result when it fails: the same error bytes on every correct replica. */
function failure(reason: unknown): Uint8Array {
  const message = typeof reason === 'string' ? reason : reason instanceof Error ? reason.message : String(reason)
  return errorResult(message.slice(0, 200))
}

export class Workflows {
  private readonly live = new Map<number, WorkflowState>()
  private nextId = 1

  constructor(
    private readonly registry: Readonly<Record<string, WorkflowFn>>,
    private readonly max: number,
    private readonly host: WorkflowHost,
  ) {}

  get size(): number {
    return this.live.size
  }

  historyLength(): number {
    let n = 0
    for (const w of this.live.values()) n += w.history.length
    return n
  }

  start(name: string, input: Uint8Array, now: number, seq: number, index: number): number {
    if (this.registry[name] === undefined) throw new WorkflowError(`no workflow named ${name}`)
    if (this.live.size >= this.max) throw new RangeError(`more than ${this.max} workflows`)
    const id = this.nextId++
    const seed = new OrderRandom(seq, now, index, id).next() * 4294967296
    const w: WorkflowState = { id, name, input, startedAt: now, seed, history: [], generator: undefined, context: { now, steps: 0 }, waiting: undefined }
    this.live.set(id, w)
    this.begin(w)
    this.run(w, { done: false, value: undefined as unknown as WorkflowCommand }, true)
    return id
  }

  /** Delivers what a waiting workflow waited for, at agreed time `now`, and runs it on. */
  resume(id: number, value: Uint8Array, now: number): void {
    const w = this.live.get(id)
    if (w === undefined || w.generator === undefined || w.waiting === undefined) return
    w.history.push({ kind: w.waiting, value, now })
    w.waiting = undefined
    w.context.now = now
    this.step(w, value)
  }

  private begin(w: WorkflowState): void {
    const fn = this.registry[w.name] as WorkflowFn
    const ctx = w.context
    const random = () => new OrderRandom(w.seed, w.startedAt, ctx.steps++, w.id).next()
    const wctx: WorkflowContext = {
      id: w.id,
      get now() {
        return ctx.now
      },
      random,
      invoke: (group, op) => ({ kind: 'invoke', group, op }),
      sleep: (ms) => ({ kind: 'sleep', ms }),
      emit: (event) => ({ kind: 'emit', event }),
      continueAsNew: (input) => ({ kind: 'continue-as-new', input }),
    }
    w.context.now = w.startedAt
    w.context.steps = 0
    w.generator = fn(wctx, w.input)
  }

  private step(w: WorkflowState, value: Uint8Array): void {
    let next: IteratorResult<WorkflowCommand, Uint8Array | undefined>
    try {
      next = (w.generator as Generator<WorkflowCommand, Uint8Array | undefined, Uint8Array>).next(value)
    } catch (err) {
      this.finish(w, failure(err))
      return
    }
    this.run(w, next, false)
  }

  /** Carries out commands until the workflow waits or ends. `first` starts the generator. */
  private run(w: WorkflowState, from: IteratorResult<WorkflowCommand, Uint8Array | undefined>, first: boolean): void {
    let next = from
    if (first) {
      try {
        next = (w.generator as Generator<WorkflowCommand, Uint8Array | undefined, Uint8Array>).next(EMPTY)
      } catch (err) {
        this.finish(w, failure(err))
        return
      }
    }
    for (;;) {
      if (next.done === true) return this.finish(w, next.value)
      const cmd = next.value as WorkflowCommand | undefined
      if (w.history.length >= MAX_HISTORY) return this.finish(w, failure(`history exceeds ${MAX_HISTORY}; use continueAsNew`))
      switch (cmd?.kind) {
        case 'invoke':
        case 'sleep':
          w.waiting = cmd.kind
          try {
            if (cmd.kind === 'invoke') this.host.invoke(w.id, cmd.group, cmd.op)
            else this.host.sleep(w.id, cmd.ms)
          } catch (err) {
            // The call or the timer was refused (a bad group, an operation too large, a full
            // queue or timer table): every correct replica refuses alike, and the workflow ends
            // with that error rather than wait for ever or escape the executor.
            return this.finish(w, failure(`${cmd.kind} refused: ${err instanceof Error ? err.message.slice(0, 200) : 'invalid'}`))
          }
          return
        case 'emit':
          w.history.push({ kind: 'emit', value: EMPTY, now: w.context.now })
          this.host.emit(w.id, cmd.event)
          break
        case 'continue-as-new':
          if (!(cmd.input instanceof Uint8Array)) return this.finish(w, failure('continueAsNew needs bytes'))
          w.input = cmd.input
          w.history = []
          w.startedAt = w.context.now
          this.begin(w)
          next = { done: false, value: undefined as unknown as WorkflowCommand }
          try {
            next = (w.generator as Generator<WorkflowCommand, Uint8Array | undefined, Uint8Array>).next(EMPTY)
          } catch (err) {
            return this.finish(w, failure(err))
          }
          continue
        default:
          return this.finish(w, failure('yielded something that is not a workflow command'))
      }
      try {
        next = (w.generator as Generator<WorkflowCommand, Uint8Array | undefined, Uint8Array>).next(EMPTY)
      } catch (err) {
        return this.finish(w, failure(err))
      }
    }
  }

  private finish(w: WorkflowState, result: Uint8Array | undefined): void {
    this.live.delete(w.id)
    this.host.done(w.id, result)
  }

  toValue(): Value {
    return {
      nextId: this.nextId,
      live: [...this.live.values()].map((w) => [w.id, w.name, w.input, w.startedAt, w.seed, w.history.map((h) => [h.kind, h.value, h.now]), w.waiting ?? null]),
    }
  }

  /**
   * Rebuilds every workflow by replaying its history against a fresh generator. Commands met
   * during replay are not carried out again (their effects are in the restored state); a
   * command that differs from the recorded one means the workflow code is not deterministic.
   */
  restore(v: Value | null): void {
    this.live.clear()
    const m = asMap(v ?? undefined, 'workflows')
    this.nextId = asUint(m.nextId, 'nextId')
    for (const row of asArray(m.live, 'live')) {
      const r = asArray(row, 'workflow')
      const kinds = new Set(['invoke', 'sleep', 'emit'])
      const history = asArray(r[5], 'history').map((h) => {
        const hh = asArray(h, 'history[]')
        const kind = asString(hh[0], 'kind', 16)
        if (!kinds.has(kind)) throw new DecodeError('wrong-type', `history kind ${kind}`)
        return { kind: kind as HistoryEntry['kind'], value: asBytes(hh[1], 'value'), now: asUint(hh[2], 'now') }
      })
      const waiting = r[6] === null ? undefined : (asString(r[6], 'waiting', 16) as WorkflowCommand['kind'])
      const w: WorkflowState = {
        id: asUint(r[0], 'id'),
        name: asString(r[1], 'name', 256),
        input: asBytes(r[2], 'input'),
        startedAt: asUint(r[3], 'startedAt'),
        seed: asUint(r[4], 'seed'),
        history,
        generator: undefined,
        context: { now: 0, steps: 0 },
        waiting,
      }
      if (this.registry[w.name] === undefined) throw new WorkflowError(`restored workflow ${w.name} is not registered`)
      this.begin(w)
      this.replay(w)
      this.live.set(w.id, w)
    }
  }

  private replay(w: WorkflowState): void {
    const gen = w.generator as Generator<WorkflowCommand, Uint8Array | undefined, Uint8Array>
    let next = gen.next(EMPTY)
    for (const h of w.history) {
      if (next.done === true || next.value.kind !== h.kind) throw new WorkflowError(`workflow ${w.name}#${w.id} did not replay deterministically`)
      w.context.now = h.now
      next = gen.next(h.value)
    }
    if (w.waiting !== undefined && (next.done === true || next.value.kind !== w.waiting)) {
      throw new WorkflowError(`workflow ${w.name}#${w.id} did not replay to the command it waits on`)
    }
  }
}
