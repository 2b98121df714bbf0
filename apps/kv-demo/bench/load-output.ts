/**
 * `pnpm load`: the final report (JSON with --json) and its text, from what a run measured.
 * The verdicts themselves are in load-report.ts.
 */
import type { CorrectnessReport } from './load-checks.js'
import type { LoadOptions } from './load-plan.js'
import { type MemoryVerdict, type RetainedHeapVerdict, type Saturation, type StepCounts, type StepSummary, findSaturation, judgeMemory, judgeRetainedHeap, stepTable } from './load-report.js'
import type { NodeStatus } from './metrics.js'
import { max, round } from './stats.js'

const MiB = 2 ** 20

/** What one run measured. */
export interface Measured {
  readonly started: number
  readonly machineBefore: Record<string, unknown>
  readonly machineAfter: Record<string, unknown>
  readonly busyShare: number
  /** Replica statuses after a full GC, before the steps and after the checks. */
  readonly baseline: readonly NodeStatus[]
  readonly final: readonly NodeStatus[]
  readonly steps: readonly StepSummary[]
  readonly drain: StepCounts
  readonly stillOutstanding: number
  readonly correctness: CorrectnessReport
}

export interface LoadReport {
  readonly when: string
  readonly ok: boolean
  readonly problems: readonly string[]
  /** Growth past saturation could not be judged (fewer than two steps past it): said, not failed. */
  readonly warnings: readonly string[]
  readonly seconds: number
  readonly options: LoadOptions
  readonly machine: { readonly before: Record<string, unknown>; readonly after: Record<string, unknown>; readonly busyShareDuringRun: number }
  readonly steps: readonly StepSummary[]
  readonly saturation: Saturation
  readonly memory: MemoryVerdict
  readonly retainedHeap: RetainedHeapVerdict
  readonly replicaRss: { readonly baselineMiB: number; readonly finalMiB: number; readonly note: string }
  readonly generatorRssMiB: number
  readonly drain: { readonly completed: number; readonly timedOut: number; readonly stillOutstanding: number }
  readonly correctness: CorrectnessReport
}

/**
 * Judges a run: agreement and liveness (the checks), saturation reached, memory growth past it
 * (when at least two steps are past it; a warning otherwise), heap retained after the drain.
 */
export function buildReport(o: LoadOptions, m: Measured, generatorRssBytes: number, now: number): LoadReport {
  const saturation = findSaturation(m.steps)
  const memory = judgeMemory(m.steps, saturation.index)
  const answered = m.steps.reduce((n, s) => n + s.completed, m.drain.completed)
  const heap = (s: readonly NodeStatus[]) => max(s.map((x) => x.heapUsedBytes))
  const rss = (s: readonly NodeStatus[]) => round(max(s.map((x) => x.rssBytes)) / MiB, 1)
  const retainedHeap = judgeRetainedHeap(heap(m.baseline), heap(m.final), answered)
  const problems = [
    ...m.correctness.problems,
    ...(saturation.index === undefined ? ['the group never saturated: nothing was tested past saturation (raise --steps)'] : []),
    ...(memory.judged && !memory.ok ? [memory.message] : []),
    ...(retainedHeap.ok ? [] : [retainedHeap.message]),
  ]
  return {
    when: new Date(m.started).toISOString(),
    ok: problems.length === 0,
    problems,
    warnings: saturation.index !== undefined && !memory.judged ? [`memory growth ${memory.message}`] : [],
    seconds: round((now - m.started) / 1000, 1),
    options: { ...o, json: undefined },
    machine: { before: m.machineBefore, after: m.machineAfter, busyShareDuringRun: m.busyShare },
    steps: m.steps,
    saturation,
    memory,
    retainedHeap,
    replicaRss: { baselineMiB: rss(m.baseline), finalMiB: rss(m.final), note: 'max over replicas, after a full GC' },
    generatorRssMiB: round(generatorRssBytes / MiB, 1),
    drain: { completed: m.drain.completed, timedOut: m.drain.timedOut, stillOutstanding: m.stillOutstanding },
    correctness: m.correctness,
  }
}

export function renderReport(r: LoadReport): string {
  const o = r.options
  const load = (x: Record<string, unknown>) => JSON.stringify(x.loadavg)
  const sat = r.saturation
  return [
    `bftrc load (${o.quick ? 'quick' : 'full'}), ${r.seconds} s, ${String(r.machine.before.nproc)} cores, node ${String(r.machine.before.node)}, load average ${load(r.machine.before)} → ${load(r.machine.after)}, CPUs busy ${Math.round(r.machine.busyShareDuringRun * 100)} % of the run`,
    `4 KV replicas (f = 1, LevelDB, libp2p on 127.0.0.1${o.maxPending !== undefined ? `, maxPendingRequests ${o.maxPending}` : ''}), ${o.clients} client identities, deadline ${o.timeoutMs} ms, ${o.arrivals} arrivals, ${o.stepSeconds} s per step; * = throughput below 90 % of offered`,
    '',
    stepTable(r.steps),
    '',
    `saturation: ${sat.index === undefined ? 'not reached' : `throughput stopped following at ${r.steps[sat.index]?.rate} ops/s offered (last followed: ${sat.lastFollowedRate ?? 'none'})`}; peak ${sat.peakThroughput} ops/s at ${sat.peakAtRate} offered`,
    `memory: ${r.memory.message}`,
    `retained: ${r.retainedHeap.message}; replica RSS after a full GC ${r.replicaRss.baselineMiB} → ${r.replicaRss.finalMiB} MiB (max over replicas); generator RSS ${r.generatorRssMiB} MiB`,
    `drain: ${r.drain.completed} answered, ${r.drain.timedOut} timed out, ${r.drain.stillOutstanding} still outstanding`,
    `correctness: ${r.correctness.summary}`,
    ...r.warnings.map((w) => `warning: ${w}`),
    r.ok ? 'load: OK — agreement, liveness and bounded memory held' : `load: FAILED — ${r.problems.join('; ')}`,
  ].join('\n')
}
