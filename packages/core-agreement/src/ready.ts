import type { Message } from './messages.js'
import type { PersistOp } from './storage.js'

export interface Outbound {
  /** A replica id of the group or a client id. */
  readonly to: string
  /** Shared between the recipients of a broadcast, so a host can encode it once. */
  readonly message: Message
}

export interface ExecutedRequest {
  readonly client: string
  readonly timestamp: number
  readonly resultDigest: Uint8Array
}

export interface ExecutedBatch {
  readonly seq: number
  readonly view: number
  readonly digest: Uint8Array
  readonly stamp: number
  /** Requests executed (duplicates skipped by the exactly-once table are not listed). */
  readonly requests: readonly ExecutedRequest[]
  /**
   * Requests of open clients refused without executing (timestamp outside the client's window, or
   * no row free in the exactly-once table): each got an error result, nothing changed.
   */
  readonly refused: readonly ExecutedRequest[]
  /** Keys of the proposals executed, as the ProposalValidator named them. */
  readonly proposals: readonly string[]
}

export type ReplicaEvent =
  | { readonly kind: 'view-change-started'; readonly view: number }
  | { readonly kind: 'new-view'; readonly view: number; readonly primary: number }
  | { readonly kind: 'stable-checkpoint'; readonly seq: number }
  | { readonly kind: 'state-transfer-started'; readonly seq: number; readonly source: number }
  | { readonly kind: 'state-transferred'; readonly seq: number }
  | { readonly kind: 'faulty-primary'; readonly view: number; readonly reason: string }
  | { readonly kind: 'lying-state'; readonly source: number; readonly seq: number }
  | { readonly kind: 'halted'; readonly seq: number; readonly reason: string }

/**
 * What the host must do after `step`/`tick`, in this order: persist `persist` durably, then send
 * `messages`. `executed` and `events` are for observers (metrics, tests, the upper layer).
 */
export interface Ready {
  readonly persist: readonly PersistOp[]
  readonly messages: readonly Outbound[]
  readonly executed: readonly ExecutedBatch[]
  readonly events: readonly ReplicaEvent[]
}
