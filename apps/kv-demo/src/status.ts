/** What a replica's control endpoint (`GET /status`) and its final file hold, and how to read it. */
import type { VoterHostStatus } from '@bftrc/client-agreement/node-host'
import type { PartitionStatus } from './partition.js'

export interface ReplicaStatusJson extends VoterHostStatus {
  readonly pid: number
  readonly byzantine: string | null
  readonly restored: boolean
  readonly app: 'kv' | 'bank'
  readonly appSummary: Record<string, unknown> | undefined
  /** The transport-level partition switch (POST /partition). */
  readonly partition: PartitionStatus
  /** CPU time the process used so far (user + system), and its resident memory. */
  readonly cpuMs: number
  readonly rssBytes: number
  /** Final files only. */
  readonly stoppedAt?: number
  readonly why?: string
}

export interface RunFile {
  readonly id: string
  readonly pid: number
  readonly controlPort: number
  readonly startedAt: number
  readonly byzantine: string | null
}

/** GET http://127.0.0.1:<port>/status, or undefined when the replica does not answer in time. */
export async function fetchStatus(port: number, timeoutMs = 1000): Promise<ReplicaStatusJson | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/status`, { signal: AbortSignal.timeout(timeoutMs) })
    if (!res.ok) return undefined
    return (await res.json()) as ReplicaStatusJson
  } catch {
    return undefined
  }
}

export type Health = 'ok' | 'view-change' | 'state-transfer' | 'halted' | 'behind' | 'stopped' | 'down' | 'starting' | 'died'

/** A one-word health of a replica, given the highest sequence number executed in its group. */
export function healthOf(s: ReplicaStatusJson | undefined, groupMaxExecuted: number, checkpointInterval = 64): Health {
  if (s === undefined) return 'down'
  if (s.fatal !== undefined && s.fatal !== null) return 'died'
  if (s.halted !== undefined && s.halted !== null) return 'halted'
  if (s.transferring) return 'state-transfer'
  if (!s.active) return 'view-change'
  if (s.lastExecuted + checkpointInterval < groupMaxExecuted) return 'behind'
  return 'ok'
}
