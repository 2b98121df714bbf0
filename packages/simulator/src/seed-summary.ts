/**
 * What one seed of a group scenario leaves for a campaign's report, small enough to pass between
 * threads: its violations and the figures the closing note and SAFETY.md quote.
 */
import type { Violation } from './checkers.js'
import type { SeedOutcome } from './paired.js'

export interface SeedFigures {
  readonly calls: number
  readonly expectedCalls: number
  readonly requests: number
  readonly expectedRequests: number
  readonly viewChanges: number
  readonly stateTransfers: number
  readonly virtualMs: number
  /** The measured workload (virtual ms) with and without the adversaries, and its mean request latency. */
  readonly measured: { readonly with: number; readonly without: number; readonly latencyWith: number; readonly latencyWithout: number } | undefined
  /** The costliest input any correct replica took: signature checks and frames out. */
  readonly worstVerifications: number
  readonly worstFrames: number
  readonly worstKinds: readonly string[]
  readonly maxSizes: Readonly<Record<string, number>>
  /** Over every adversary: bytes drawn beyond honest traffic, and bytes it sent. */
  readonly extraBytesOut: number
  readonly bytesIn: number
  readonly generatedFrames: number
}

export interface SeedSummary {
  readonly seed: number
  readonly violations: readonly Violation[]
  /** Absent when the seed hung (no result came back). */
  readonly figures: SeedFigures | undefined
}

export function summarize(o: SeedOutcome): SeedSummary {
  const r = o.result
  let extra = 0
  let from = 0
  for (const [id, t] of Object.entries(r.adversaryTraffic)) {
    extra += Math.max(0, t.to - (o.honestTraffic[id]?.to ?? 0))
    from += t.from
  }
  return {
    seed: o.seed,
    violations: o.violations,
    figures: {
      calls: r.calls,
      expectedCalls: r.expectedCalls,
      requests: r.completedRequests,
      expectedRequests: r.expectedRequests,
      viewChanges: r.viewChanges,
      stateTransfers: r.stateTransfers,
      virtualMs: r.finalTime,
      measured:
        r.measured === undefined || o.baseline?.measured === undefined
          ? undefined
          : { with: r.measured.durationMs, without: o.baseline.measured.durationMs, latencyWith: r.measured.meanRequestLatency, latencyWithout: o.baseline.measured.meanRequestLatency },
      worstVerifications: r.worstInputs.verifications.cost,
      worstFrames: r.worstInputs.frames.cost,
      worstKinds: [r.worstInputs.verifications.kind, r.worstInputs.frames.kind],
      maxSizes: r.maxSizes,
      extraBytesOut: extra,
      bytesIn: from,
      generatedFrames: Object.values(r.generated).reduce((a, b) => a + b, 0),
    },
  }
}
