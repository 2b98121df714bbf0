/** What a benchmark process reports, and the transport totals it sums. */
import type { Libp2pTransport } from '@bftrc/libp2p-transport'

export interface TransportTotals {
  framesOut: number
  bytesOut: number
  framesIn: number
  bytesIn: number
  dropped: number
  /** Streams re-established after the first, and failed dials: connections that broke. */
  reconnects: number
  dialFailures: number
}

export function emptyTotals(): TransportTotals {
  return { framesOut: 0, bytesOut: 0, framesIn: 0, bytesIn: 0, dropped: 0, reconnects: 0, dialFailures: 0 }
}

/** Adds `x` into `into`, field by field. */
export function addTotals(into: TransportTotals, x: TransportTotals): TransportTotals {
  for (const k of Object.keys(into) as Array<keyof TransportTotals>) into[k] += x[k]
  return into
}

export interface NodeStatus {
  readonly t: 'status'
  readonly id: string
  readonly cpuMicros: number
  /** Of which system (kernel) time. */
  readonly cpuSystemMicros: number
  readonly rssBytes: number
  /** V8 heap in use (after a full collection when the status request asked for one). */
  readonly heapUsedBytes: number
  readonly transport: TransportTotals
  readonly workload?: unknown
  readonly samples?: number[]
  readonly host?: HostFigures
}

/** What a replica's VoterHost reports (a subset of its status()). */
export interface HostFigures {
  readonly writeP50: number
  readonly writeP99: number
  readonly view: number
  readonly lastExecuted: number
  readonly stateDigest: string
  readonly viewChanges: number
  readonly framesInDropped: number
  readonly writes: number
  readonly executedBatches: number
  /** Inputs waiting in the host's queue and Readies waiting for the disk, now. */
  readonly queuedInputs: number
  readonly pendingWrites: number
  /** The core replica's shedding counters: `dropped.queue-full` and `dropped.pending-full`. */
  readonly queueFull: number
  readonly pendingFull: number
  /** Sizes of the voter's bounded structures (log, queue, pending, clients, …). */
  readonly sizes: Readonly<Record<string, number>>
}

export function totals(t: Libp2pTransport): TransportTotals {
  const out = emptyTotals()
  for (const p of Object.values(t.metrics().peers)) {
    addTotals(out, { framesOut: p.framesOut, bytesOut: p.bytesOut, framesIn: p.framesIn, bytesIn: p.bytesIn, dropped: p.dropped, reconnects: p.reconnects, dialFailures: p.dialFailures })
  }
  return out
}
