/** The figures of a pooled campaign (see campaign-pool.ts), summed over its seeds, and their text form. */
import type { PoolReport } from './campaign-pool.js'

export interface PoolFigures {
  readonly hangs: number
  readonly calls: string
  readonly requests: string
  readonly viewChanges: number
  readonly stateTransfers: number
  readonly generatedFrames: number
  /** Measured workload with/without adversaries: the worst ratio over seeds, and the median one. */
  readonly isolation: { readonly worstDuration: number; readonly medianDuration: number; readonly worstLatency: number } | undefined
  readonly worstVerificationsPerInput: number
  readonly worstFramesPerInput: number
  readonly worstInputKinds: readonly string[]
  readonly maxSizes: Readonly<Record<string, number>>
  /** Bytes the correct replicas sent the adversaries beyond honest traffic, per byte the adversaries sent them. */
  readonly amplification: { readonly overall: number; readonly worstSeed: number }
}

function ratio(a: number, b: number): number {
  return Math.round((a / Math.max(1, b)) * 100) / 100
}

export function poolFigures(report: PoolReport): PoolFigures {
  const figs = report.summaries.flatMap((s) => (s.figures === undefined ? [] : [s.figures]))
  const sum = (f: (x: (typeof figs)[number]) => number) => figs.reduce((n, x) => n + f(x), 0)
  const durations = figs.flatMap((x) => (x.measured === undefined ? [] : [ratio(x.measured.with, x.measured.without)])).sort((a, b) => a - b)
  const latencies = figs.flatMap((x) => (x.measured === undefined ? [] : [ratio(x.measured.latencyWith, x.measured.latencyWithout)]))
  const maxSizes: Record<string, number> = {}
  for (const x of figs) for (const [k, v] of Object.entries(x.maxSizes)) maxSizes[k] = Math.max(maxSizes[k] ?? 0, v)
  const worstV = figs.reduce((best, x) => (x.worstVerifications > best.worstVerifications ? x : best), figs[0] ?? { worstVerifications: 0, worstKinds: [] as readonly string[] })
  const worstF = figs.reduce((best, x) => (x.worstFrames > best.worstFrames ? x : best), figs[0] ?? { worstFrames: 0, worstKinds: [] as readonly string[] })
  return {
    hangs: report.violations.filter((v) => v.invariant === 'hang').length,
    calls: `${sum((x) => x.calls)}/${sum((x) => x.expectedCalls)}`,
    requests: `${sum((x) => x.requests)}/${sum((x) => x.expectedRequests)}`,
    viewChanges: sum((x) => x.viewChanges),
    stateTransfers: sum((x) => x.stateTransfers),
    generatedFrames: sum((x) => x.generatedFrames),
    isolation: durations.length === 0 ? undefined : { worstDuration: durations[durations.length - 1] as number, medianDuration: durations[Math.floor(durations.length / 2)] as number, worstLatency: Math.max(...latencies) },
    worstVerificationsPerInput: 'worstVerifications' in worstV ? worstV.worstVerifications : 0,
    worstFramesPerInput: 'worstFrames' in worstF ? worstF.worstFrames : 0,
    worstInputKinds: [...new Set([worstV.worstKinds[0] ?? '', worstF.worstKinds[1] ?? ''])],
    maxSizes,
    amplification: { overall: ratio(sum((x) => x.extraBytesOut), sum((x) => x.bytesIn)), worstSeed: Math.max(0, ...figs.map((x) => ratio(x.extraBytesOut, x.bytesIn))) },
  }
}

export function describePool(p: PoolFigures): string[] {
  return [
    `calls completed ${p.calls}, plain requests ${p.requests}, view changes ${p.viewChanges}, state transfers ${p.stateTransfers}, hangs ${p.hangs}`,
    `adversary frames generated ${p.generatedFrames}; bytes drawn beyond honest traffic per byte sent: ${p.amplification.overall} overall, ${p.amplification.worstSeed} in the worst seed`,
    p.isolation === undefined
      ? 'performance isolation: no measured workload'
      : `performance isolation (measured workload with/without adversaries): duration x${p.isolation.medianDuration} median, x${p.isolation.worstDuration} worst; request latency x${p.isolation.worstLatency} worst`,
    `work per input: at most ${p.worstVerificationsPerInput} signature checks and ${p.worstFramesPerInput} frames out (${p.worstInputKinds.join(', ')})`,
    `largest bounded structures ${JSON.stringify(p.maxSizes)}`,
  ]
}
