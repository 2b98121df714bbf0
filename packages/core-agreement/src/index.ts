/**
 * @packageDocumentation
 * CLBFT (Castro–Liskov PBFT) inside one group, as an I/O-free state machine in the manner of
 * etcd-io/raft: `Replica` and `Client` take `step(from, bytes)` and `tick(now)` and hand their
 * effects out through `ready()`. Hosts (the simulator, the libp2p runtime) carry them out.
 */
export { Replica, type ReplicaInit, type ReplicaStatus } from './replica.js'
export {
  STATE_CHUNK_BYTES,
  MAX_STATE_BYTES,
  MAX_STATE_CHUNKS,
  MAX_PROOF_HASHES,
  STATE_LAYOUT,
  type ChunkLayout,
  StateTree,
  stateRoot,
  verifyChunk,
  chunkCount,
} from './merkle.js'
export { Client, type ClientInit, type ClientConfig, type CompletedRequest, ClientBusyError, DEFAULT_CLIENT_CONFIG } from './client.js'
export { type ReplicaConfig, DEFAULT_CONFIG, resolveConfig, ConfigurationError } from './config.js'
export { OrderingMonitor, ROUND_FACTOR } from './ordering-monitor.js'
export { type MessageLimits, DEFAULT_LIMITS } from './limits.js'
export { type Executor, type ExecutionContext, type BatchContext, type ProposalValidator, errorResult, FULL_RESULT_BYTES } from './executor.js'
export { type Storage, type PersistOp, type PersistedState, type PersistedEntry, type PersistedCheckpoint, MemoryStorage } from './storage.js'
export type { Ready, Outbound, ExecutedBatch, ExecutedRequest, ReplicaEvent } from './ready.js'
export {
  type Message,
  type MessageType,
  type Request,
  type ProposalMessage,
  type Batch,
  type PrePrepare,
  type Prepare,
  type Commit,
  type Checkpoint,
  type Reply,
  type Status,
  type ViewChange,
  type NewView,
  type CheckpointProof,
  type PreparedProof,
  encodeMessage,
  encodeMessageOnce,
  decodeMessage,
  tryDecodeMessage,
  requestDigest,
  proposalDigest,
  prePrepareStatement,
  prepareStatement,
  checkpointStatement,
  executedStatement,
  type Executed,
  viewChangeStatement,
  newViewStatement,
  type StatementScope,
  MAX_VIEW,
  MAX_SEQ,
} from './messages.js'
export { digestOfBatch, primaryOf, scopeOf, selectNewView } from './proofs.js'
export { AnswerBudget } from './answer-budget.js'
export { FairQueue, type EnqueueOutcome } from './fair-queue.js'
export { type ClientRefusal, refusalResult } from './client-table.js'
