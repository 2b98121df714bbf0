/**
 * Hard limits on what one message may carry. Every decoder enforces them, so hostile input can
 * never make a replica allocate or loop beyond these bounds.
 */
export interface MessageLimits {
  /** Largest encoded message accepted from the network. */
  readonly maxMessageBytes: number
  /** Largest operation or result payload. */
  readonly maxOpBytes: number
  /** Most requests in one pre-prepare. */
  readonly maxBatchRequests: number
  /** Most proposals (upper-layer events) in one pre-prepare. */
  readonly maxBatchProposals: number
  /** Largest proposal payload (an event with its certificate). */
  readonly maxProposalBytes: number
  /** Longest client id. */
  readonly maxClientIdLength: number
  /** Most prepared entries one view-change may carry (= the log window). */
  readonly maxViewChangeEntries: number
  /** Largest chunk of a snapshot in state transfer. */
  readonly maxChunkBytes: number
}

export const DEFAULT_LIMITS: MessageLimits = {
  maxMessageBytes: 16 * 1024 * 1024,
  maxOpBytes: 64 * 1024,
  maxBatchRequests: 1024,
  maxBatchProposals: 1024,
  maxProposalBytes: 256 * 1024,
  maxClientIdLength: 128,
  maxViewChangeEntries: 1024,
  maxChunkBytes: 1024 * 1024,
}
