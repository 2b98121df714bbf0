/** What a benchmark process reports, and the transport totals it sums. */
import type { Libp2pTransport } from '@bftrc/libp2p-transport'

export interface TransportTotals {
  framesOut: number
  bytesOut: number
  framesIn: number
  bytesIn: number
  dropped: number
}

export interface NodeStatus {
  readonly t: 'status'
  readonly id: string
  readonly cpuMicros: number
  /** Of which system (kernel) time. */
  readonly cpuSystemMicros: number
  readonly rssBytes: number
  readonly transport: TransportTotals
  readonly workload?: unknown
  readonly samples?: number[]
  readonly host?: { writeP50: number; writeP99: number; view: number; lastExecuted: number; viewChanges: number; framesInDropped: number; writes: number; executedBatches: number }
}

export function totals(t: Libp2pTransport): TransportTotals {
  const m = t.metrics()
  const out: TransportTotals = { framesOut: 0, bytesOut: 0, framesIn: 0, bytesIn: 0, dropped: 0 }
  for (const p of Object.values(m.peers)) {
    out.framesOut += p.framesOut
    out.bytesOut += p.bytesOut
    out.framesIn += p.framesIn
    out.bytesIn += p.bytesIn
    out.dropped += p.dropped
  }
  return out
}

