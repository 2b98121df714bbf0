/**
 * The application as the agreement layer sees it: a deterministic state machine. Same operations
 * in the same order with the same contexts give the same results and the same snapshot bytes on
 * every correct replica. It must read time only from `ctx.stamp` and do no I/O of its own.
 */
export interface ExecutionContext {
  /** Sequence number of the batch. */
  readonly seq: number
  /** Agreed time of the batch (the primary's stamp, clamped to be monotonic), milliseconds. */
  readonly stamp: number
  readonly client: string
  readonly timestamp: number
}

export interface Executor {
  /** Executes one ordered operation and returns its result. */
  execute(op: Uint8Array, ctx: ExecutionContext): Uint8Array
  /** Executes an operation that must not change state (the read-only optimisation). */
  executeReadOnly(op: Uint8Array, ctx: ExecutionContext): Uint8Array
  /** Deterministic bytes of the whole state: equal states give equal bytes. */
  snapshot(): Uint8Array
  /** Replaces the state with a snapshot taken by `snapshot()` (after state transfer or restart). */
  restore(snapshot: Uint8Array): void
}
