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

/** Where an ordered proposal executes: its batch's sequence number and agreed time. */
export interface BatchContext {
  readonly seq: number
  readonly stamp: number
}

export interface Executor {
  /** Called before the entries of each batch (an upper layer fires due timers here). */
  beginBatch?(ctx: BatchContext): void
  /** Executes an ordered proposal of the upper layer (see ProposalValidator). */
  executeProposal?(payload: Uint8Array, ctx: BatchContext): void
  /** Executes one ordered operation and returns its result. */
  execute(op: Uint8Array, ctx: ExecutionContext): Uint8Array
  /** Executes an operation that must not change state (the read-only optimisation). */
  executeReadOnly(op: Uint8Array, ctx: ExecutionContext): Uint8Array
  /** Deterministic bytes of the whole state: equal states give equal bytes. */
  snapshot(): Uint8Array
  /** Replaces the state with a snapshot taken by `snapshot()` (after state transfer or restart). */
  restore(snapshot: Uint8Array): void
  /**
   * Why the executor cannot execute (it lacks the code of an ordered upgrade), or undefined.
   * While halted the replica keeps voting but executes nothing and takes no checkpoints.
   */
  halted?(): string | undefined
}

/**
 * The upper layer's check of a proposal, run by every replica before it votes for a batch that
 * carries it. Must be deterministic and depend only on the payload (signatures, certificates,
 * shape); state-dependent checks (duplicates, windows) belong in `executeProposal`, where every
 * replica sees the same state. Returns a key that identifies the proposal (for de-duplication
 * while it waits), or undefined when it is invalid.
 */
export interface ProposalValidator {
  validate(payload: Uint8Array): string | undefined
  /**
   * For proposals that cost their proposer nothing (a timer tick carries no certificate): the
   * primary accepts one with this key from one replica at most once per this many ms.
   */
  minInterval?(key: string): number | undefined
}

/**
 * The result of an operation that failed deterministically: the application threw, returned
 * something that is not bytes or is over the size limit, or the request was refused. Every
 * correct replica fails alike, so every one answers these same bytes and the group goes on.
 */
export function errorResult(message: string): Uint8Array {
  return new TextEncoder().encode(`error: ${message}`)
}

/**
 * Results up to this many bytes go in full in every replica's reply; larger ones in full from one
 * designated replica only (the others send the digest), as PBFT's digest replies do. A digest
 * saves nothing on a small result, and a full one from everyone means a faulty or lagging
 * designated replica costs the client nothing.
 */
export const FULL_RESULT_BYTES = 1024
