/**
 * The programming model of a replicated group's application: deterministic handlers for the
 * ordered events, a context for calls to other groups, timers, agreed time and randomness, and
 * workflows written as generator functions.
 *
 * Why generators and not `async` functions: a resumed `async` function continues in a microtask,
 * after the synchronous state machine has already executed whatever else was ordered in the same
 * batch, so its next call would get a different call number on different replicas. A generator is
 * resumed synchronously at the exact point of the order where its result is delivered. It reads
 * like async code with `yield` in place of `await`:
 *
 *   function* transfer(w, input) {
 *     const balance = yield w.invoke('kv', get('alice'))
 *     yield w.sleep(1_000)
 *     return yield w.invoke('kv', put('alice', balance - 10))
 *   }
 */

/** A call this group issued: `(caller = us, callee, k)`. */
export interface CallRef {
  readonly callee: string
  readonly k: number
}

/** A call from another group whose answer the handler put off (see `CallContext.defer`). */
export interface Deferred {
  readonly caller: string
  readonly k: number
}

export interface AppContext {
  readonly group: string
  /** Sequence number of the batch being executed. */
  readonly seq: number
  /** Agreed time: the batch's stamp, milliseconds, the same on every replica. */
  readonly now: number
  /** Deterministic randomness in [0, 1): seeded from the order, the same on every replica. */
  random(): number
  /** Calls another group; the result comes back later as `onReply`, in order with everything else. */
  call(group: string, op: Uint8Array): CallRef
  /** Fires `onTimer` once agreed time reaches now + delay. */
  setTimer(delay: number, tag: string): number
  cancelTimer(id: number): void
  /** Starts a workflow (a generator registered in `GroupApp.workflows`). */
  startWorkflow(name: string, input: Uint8Array): number
  /** Answers a call whose handler deferred it. */
  respond(deferred: Deferred, result: Uint8Array): void
}

export interface CallContext extends AppContext {
  readonly caller: string
  readonly k: number
  /** Answer later: return this from `onCall` and pass it to `respond` when the result is known. */
  defer(): Deferred
}

export type WorkflowCommand =
  | { readonly kind: 'invoke'; readonly group: string; readonly op: Uint8Array }
  | { readonly kind: 'sleep'; readonly ms: number }
  | { readonly kind: 'emit'; readonly event: Uint8Array }
  | { readonly kind: 'continue-as-new'; readonly input: Uint8Array }

export interface WorkflowContext {
  readonly id: number
  /** Agreed time when the workflow last resumed. */
  readonly now: number
  random(): number
  /** `const result = yield w.invoke(group, op)`: a synchronous call as seen by the workflow. */
  invoke(group: string, op: Uint8Array): WorkflowCommand
  /** `yield w.sleep(ms)`: resume once agreed time has advanced by `ms`. */
  sleep(ms: number): WorkflowCommand
  /** `yield w.emit(bytes)`: hand an event to the app's `onWorkflowEvent`, exactly once. */
  emit(event: Uint8Array): WorkflowCommand
  /** `yield w.continueAsNew(input)`: restart with fresh input and empty history (bounds history). */
  continueAsNew(input: Uint8Array): WorkflowCommand
}

export type WorkflowFn = (w: WorkflowContext, input: Uint8Array) => Generator<WorkflowCommand, Uint8Array | undefined, Uint8Array>

export interface GroupApp {
  /** Once, at the first batch the group orders (agreed time known, calls allowed). */
  init?(ctx: AppContext): void
  /** An ordered request of a plain client. */
  onRequest?(ctx: AppContext, client: string, op: Uint8Array): Uint8Array
  /** A read-only request of a plain client: must not change state. */
  onQuery?(client: string, op: Uint8Array): Uint8Array
  /** A call from another group: the result, or `ctx.defer()` to answer later. */
  onCall?(ctx: CallContext, caller: string, op: Uint8Array): Uint8Array | Deferred
  /** The result of one of our asynchronous calls. */
  onReply?(ctx: AppContext, call: CallRef, result: Uint8Array): void
  onTimer?(ctx: AppContext, id: number, tag: string): void
  onWorkflowEvent?(ctx: AppContext, workflow: number, event: Uint8Array): void
  onWorkflowDone?(ctx: AppContext, workflow: number, result: Uint8Array | undefined): void
  readonly workflows?: Readonly<Record<string, WorkflowFn>>
  /** Deterministic bytes of the application's state (workflow and call state is kept for it). */
  snapshot(): Uint8Array
  restore(state: Uint8Array): void
}

/** What a handler that throws answers: all correct replicas throw alike, so all answer alike. */
export { errorResult } from '@bftrc/core-agreement'
