import { DEFAULT_LIMITS, type MessageLimits } from './limits.js'

/** Protocol parameters of a replica. All times are in the host clock's milliseconds. */
export interface ReplicaConfig {
  /** K: a checkpoint every K sequence numbers. */
  readonly checkpointInterval: number
  /** L: sequence numbers accepted above the low watermark (the stable checkpoint). A multiple of K. */
  readonly logWindow: number
  /** Most requests the primary puts in one pre-prepare. */
  readonly maxBatchRequests: number
  /** Most bytes of operations in one pre-prepare. */
  readonly maxBatchBytes: number
  /** Batches the primary keeps in flight before it waits (adaptive batching: requests queue meanwhile). */
  readonly pipelineDepth: number
  /** Requests queued at the primary, or waiting at a backup, before new ones are shed. */
  readonly maxPendingRequests: number
  /**
   * Entries one source may have waiting at the primary: requests a replica relays, events a
   * replica proposes (a client has one request waiting at most). Batches serve the sources in turn.
   */
  readonly maxQueuedPerSource: number
  /** Open clients (not listed in the membership) remembered in the exactly-once table at once. */
  readonly maxOpenClients: number
  /**
   * How far below agreed time an open client's timestamp (its clock, in microseconds) may lie and
   * still execute, in ms. Rows older than this may be reused, so it also bounds how long a table
   * full of live open clients refuses new ones.
   */
  readonly openClientWindow: number
  /** A replica that has waited this long for progress asks its peers to resend (STATUS). */
  readonly statusInterval: number
  /** STATUS heartbeat while idle, so a replica that missed the last batches catches up anyway. */
  readonly idleStatusInterval: number
  /** How far a batch stamp may lead the backup's clock, and (for fresh batches) lag it. */
  readonly maxClockSkew: number
  /**
   * The fixed part of the time a backup gives the primary to order what the backup saw (the rest
   * is four measured prepare rounds; see OrderingMonitor). A primary that takes longer, twice in a
   * row for one request, while it had room to order, is replaced.
   */
  readonly orderingSlack: number
  /** First view-change timeout; doubles with each successive view change. */
  readonly viewChangeTimeout: number
  /** Upper bound of the doubled view-change timeout. */
  readonly maxViewChangeTimeout: number
  /**
   * Bytes a replica sends any one peer or client in answer to its asking (STATUS, state chunks,
   * NEW-VIEW resends, cached and read-only replies), per second; unused allowance accumulates up
   * to one second's worth.
   */
  readonly answerBytesPerSecond: number
  /** Time to wait for a state chunk before asking another replica. */
  readonly stateTransferTimeout: number
  readonly limits: MessageLimits
}

export const DEFAULT_CONFIG: ReplicaConfig = {
  checkpointInterval: 64,
  logWindow: 128,
  maxBatchRequests: 256,
  maxBatchBytes: 1024 * 1024,
  pipelineDepth: 4,
  maxPendingRequests: 10_000,
  maxQueuedPerSource: 1_024,
  maxOpenClients: 10_000,
  openClientWindow: 10 * 60_000,
  statusInterval: 150,
  idleStatusInterval: 2_000,
  maxClockSkew: 10_000,
  orderingSlack: 50,
  viewChangeTimeout: 1_000,
  maxViewChangeTimeout: 30_000,
  stateTransferTimeout: 500,
  answerBytesPerSecond: 16 * 1024 * 1024,
  limits: DEFAULT_LIMITS,
}

export class ConfigurationError extends Error {
  override readonly name = 'ConfigurationError'
}

export function resolveConfig(partial: Partial<ReplicaConfig> = {}): ReplicaConfig {
  const c: ReplicaConfig = { ...DEFAULT_CONFIG, ...partial, limits: { ...DEFAULT_LIMITS, ...partial.limits } }
  const positive = (name: keyof ReplicaConfig) => {
    const v = c[name]
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw new ConfigurationError(`${name} must be a positive integer`)
  }
  for (const name of Object.keys(DEFAULT_CONFIG) as Array<keyof ReplicaConfig>) if (name !== 'limits') positive(name)
  if (c.logWindow % c.checkpointInterval !== 0) throw new ConfigurationError('logWindow must be a multiple of checkpointInterval')
  if (c.logWindow < 2 * c.checkpointInterval) throw new ConfigurationError('logWindow must be at least 2 × checkpointInterval')
  if (c.maxBatchRequests > c.limits.maxBatchRequests) throw new ConfigurationError('maxBatchRequests exceeds limits.maxBatchRequests')
  if (c.logWindow > c.limits.maxViewChangeEntries) throw new ConfigurationError('logWindow exceeds limits.maxViewChangeEntries')
  return c
}
