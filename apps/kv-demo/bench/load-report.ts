/**
 * `pnpm load`: what one step measured, where the group saturated, whether memory stayed
 * bounded, and the table. Pure (no I/O, no clock), tested by test/load-report.test.ts.
 */
import type { NodeStatus } from './metrics.js'
import { max, quantile, round } from './stats.js'

/** What the generator counted during one step's window. */
export interface StepCounts {
  /** Arrivals scheduled in the window, and the ones that found a free client identity. */
  arrivals: number
  issued: number
  /** Arrivals that found every client identity busy: refused at once, never queued. */
  shedAtClient: number
  /** Answers received in the window, and their latencies from the scheduled arrival (ms). */
  completed: number
  readonly latenciesMs: number[]
  /** Deadlines that passed in the window. */
  timedOut: number
  /** Other failures (the client host refused or stopped). */
  failed: number
  /** How late arrivals were issued behind their schedule (ms): the generator's own lag. */
  readonly issueLagMs: number[]
  /** CPU time the generator process used in the window (ms, user + system). */
  generatorCpuMs: number
}

export function emptyCounts(): StepCounts {
  return { arrivals: 0, issued: 0, shedAtClient: 0, completed: 0, latenciesMs: [], timedOut: 0, failed: 0, issueLagMs: [], generatorCpuMs: 0 }
}

/** The generator's client identities, summed: retransmissions (to every replica), connections re-established, failed dials, frames their transports dropped, sends refused, answers after the deadline. */
export interface ClientSide {
  readonly retransmits: number
  readonly reconnects: number
  readonly dialFailures: number
  readonly transportDrops: number
  readonly sendRefused: number
  readonly lateAnswers: number
}

export function clientSideDelta(before: ClientSide, after: ClientSide): ClientSide {
  return {
    retransmits: after.retransmits - before.retransmits,
    reconnects: after.reconnects - before.reconnects,
    dialFailures: after.dialFailures - before.dialFailures,
    transportDrops: after.transportDrops - before.transportDrops,
    sendRefused: after.sendRefused - before.sendRefused,
    lateAnswers: after.lateAnswers - before.lateAnswers,
  }
}

/** The replicas' figures over one step: statuses at its start and end, and samples in between. */
export interface ReplicaWindow {
  readonly before: readonly NodeStatus[]
  readonly after: readonly NodeStatus[]
  readonly samples: readonly NodeStatus[]
}

export interface StepSummary {
  /** The step's offered rate (ops/s), and the arrivals actually scheduled per second. */
  readonly rate: number
  readonly offered: number
  /** Completions per second in the window. */
  readonly throughput: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly completed: number
  readonly timedOut: number
  readonly shedAtClient: number
  readonly failed: number
  readonly issueLagP99Ms: number
  /** The generator's CPU use in the step, in milliseconds per second (1000 = one core). */
  readonly generatorCpuMsPerSec: number
  /** Requests the replicas refused (deltas summed over replicas): primary queue full, backup relay table full, host input queue full, transport send queue full. */
  readonly replicaDrops: { readonly queueFull: number; readonly pendingFull: number; readonly hostInput: number; readonly transport: number }
  /** Largest replica RSS and V8 heap seen in the step (MiB). */
  readonly rssMaxMiB: number
  readonly heapMaxMiB: number
  /** Largest sizes seen in the step, over replicas: the request queue and backup relays of the core replica, its log, the host's input queue and writes waiting. */
  readonly sizesMax: { readonly queue: number; readonly pending: number; readonly log: number; readonly queuedInputs: number; readonly pendingWrites: number }
  /** View changes the group went through in the step (the most any replica counted). */
  readonly viewChanges: number
  /** The generator's side in the step (deltas). */
  readonly clientSide: ClientSide
  /** Throughput kept up with the offered rate (see `follows`). */
  readonly follows: boolean
}

const MiB = 2 ** 20

/** Achieved throughput "follows" the offered rate while it stays within this share of it. */
export const FOLLOW_SHARE = 0.9

export function follows(offered: number, throughput: number): boolean {
  return throughput >= FOLLOW_SHARE * offered
}

function sumDelta(w: ReplicaWindow, pick: (s: NodeStatus) => number): number {
  let total = 0
  for (const a of w.after) {
    const b = w.before.find((x) => x.id === a.id)
    total += pick(a) - (b === undefined ? 0 : pick(b))
  }
  return total
}

function maxDelta(w: ReplicaWindow, pick: (s: NodeStatus) => number): number {
  let most = 0
  for (const a of w.after) {
    const b = w.before.find((x) => x.id === a.id)
    most = Math.max(most, pick(a) - (b === undefined ? 0 : pick(b)))
  }
  return most
}

export function summariseStep(rate: number, seconds: number, c: StepCounts, w: ReplicaWindow, clientSide: ClientSide): StepSummary {
  const all = [...w.samples, ...w.after]
  const hostMax = (pick: (h: NonNullable<NodeStatus['host']>) => number) => max(all.map((s) => (s.host === undefined ? 0 : pick(s.host))))
  const offered = round(c.arrivals / seconds, 1)
  const throughput = round(c.completed / seconds, 1)
  return {
    rate,
    offered,
    throughput,
    p50Ms: round(quantile(c.latenciesMs, 0.5), 1),
    p99Ms: round(quantile(c.latenciesMs, 0.99), 1),
    completed: c.completed,
    timedOut: c.timedOut,
    shedAtClient: c.shedAtClient,
    failed: c.failed,
    issueLagP99Ms: round(quantile(c.issueLagMs, 0.99), 1),
    generatorCpuMsPerSec: round(c.generatorCpuMs / seconds, 0),
    replicaDrops: {
      queueFull: sumDelta(w, (s) => s.host?.queueFull ?? 0),
      pendingFull: sumDelta(w, (s) => s.host?.pendingFull ?? 0),
      hostInput: sumDelta(w, (s) => s.host?.framesInDropped ?? 0),
      transport: sumDelta(w, (s) => s.transport.dropped),
    },
    rssMaxMiB: round(max(all.map((s) => s.rssBytes)) / MiB, 1),
    heapMaxMiB: round(max(all.map((s) => s.heapUsedBytes)) / MiB, 1),
    sizesMax: {
      queue: hostMax((h) => h.sizes.queue ?? 0),
      pending: hostMax((h) => h.sizes.pending ?? 0),
      log: hostMax((h) => h.sizes.log ?? 0),
      queuedInputs: hostMax((h) => h.queuedInputs),
      pendingWrites: hostMax((h) => h.pendingWrites),
    },
    viewChanges: maxDelta(w, (s) => s.host?.viewChanges ?? 0),
    clientSide,
    follows: follows(offered, throughput),
  }
}

export interface Saturation {
  /** Index of the first step whose throughput did not follow the offered rate; undefined if none. */
  readonly index: number | undefined
  /** The highest offered rate that was still followed (before `index`); undefined if the first step already failed to. */
  readonly lastFollowedRate: number | undefined
  /** The highest throughput of any step, and the offered rate of that step. */
  readonly peakThroughput: number
  readonly peakAtRate: number
}

/** Where throughput stopped following the offered rate (steps in increasing rate). */
export function findSaturation(steps: readonly StepSummary[]): Saturation {
  const index = steps.findIndex((s) => !s.follows)
  let peak = steps[0]
  for (const s of steps) if (peak === undefined || s.throughput > peak.throughput) peak = s
  return {
    index: index < 0 ? undefined : index,
    lastFollowedRate: index < 0 ? steps[steps.length - 1]?.rate : index === 0 ? undefined : steps[index - 1]?.rate,
    peakThroughput: peak?.throughput ?? 0,
    peakAtRate: peak?.rate ?? 0,
  }
}

/**
 * Memory past saturation is judged bounded when, over the overload steps (from the saturation
 * step on; at least two are needed), the largest replica RSS of the last step exceeds that of
 * the first by no more than `growth` (a share) plus `slackMiB`. Doubling the offered load over
 * several steps must not keep growing what the replicas hold.
 */
export const MEMORY_RULE = { growth: 0.25, slackMiB: 32, minOverloadSteps: 2 } as const

export interface MemoryVerdict {
  readonly judged: boolean
  readonly ok: boolean
  readonly firstRssMiB: number
  readonly lastRssMiB: number
  readonly boundMiB: number
  readonly overloadSteps: number
  readonly message: string
}

export function judgeMemory(steps: readonly StepSummary[], saturationIndex: number | undefined, rule = MEMORY_RULE): MemoryVerdict {
  const overload = saturationIndex === undefined ? [] : steps.slice(saturationIndex)
  const first = overload[0]
  const last = overload[overload.length - 1]
  if (first === undefined || last === undefined || overload.length < rule.minOverloadSteps) {
    return { judged: false, ok: false, firstRssMiB: Number.NaN, lastRssMiB: Number.NaN, boundMiB: Number.NaN, overloadSteps: overload.length, message: `not judged: ${overload.length} step(s) past saturation, ${rule.minOverloadSteps} needed (raise --steps)` }
  }
  const bound = round(first.rssMaxMiB * (1 + rule.growth) + rule.slackMiB, 1)
  const ok = last.rssMaxMiB <= bound
  return {
    judged: true,
    ok,
    firstRssMiB: first.rssMaxMiB,
    lastRssMiB: last.rssMaxMiB,
    boundMiB: bound,
    overloadSteps: overload.length,
    message: `replica RSS max ${first.rssMaxMiB} MiB at ${first.rate} ops/s → ${last.rssMaxMiB} MiB at ${last.rate} ops/s (${overload.length} steps past saturation); bound ${bound} MiB (+${rule.growth * 100} % + ${rule.slackMiB} MiB): ${ok ? 'bounded' : 'GREW'}`,
  }
}

/**
 * What the replicas still hold once the load is over: the V8 heap after a full collection, after
 * the drain, must exceed the one before the steps (same measure) by at most `slackMiB`. Queues
 * that were bounded empty out; something kept per request would remain.
 */
export const RETAINED_HEAP_RULE = { slackMiB: 16 } as const

export interface RetainedHeapVerdict {
  readonly ok: boolean
  readonly beforeMiB: number
  readonly afterMiB: number
  /** Growth per request answered over the run, in bytes (what a leak per request would cost). */
  readonly bytesPerRequest: number
  readonly message: string
}

export function judgeRetainedHeap(beforeBytes: number, afterBytes: number, requests: number, rule = RETAINED_HEAP_RULE): RetainedHeapVerdict {
  const beforeMiB = round(beforeBytes / MiB, 1)
  const afterMiB = round(afterBytes / MiB, 1)
  if (!(Number.isFinite(beforeBytes) && Number.isFinite(afterBytes))) return { ok: false, beforeMiB, afterMiB, bytesPerRequest: Number.NaN, message: 'replica heap not measured: no replica answered' }
  const ok = afterBytes <= beforeBytes + rule.slackMiB * MiB
  const bytesPerRequest = requests > 0 ? Math.round((afterBytes - beforeBytes) / requests) : Number.NaN
  return { ok, beforeMiB, afterMiB, bytesPerRequest, message: `replica heap after a full GC ${beforeMiB} MiB before the steps → ${afterMiB} MiB after the drain (${bytesPerRequest} B per request answered; bound +${rule.slackMiB} MiB): ${ok ? 'released' : 'RETAINED'}` }
}

export function stepTable(steps: readonly StepSummary[]): string {
  const head = '| offered (ops/s) | throughput (ops/s) | p50 (ms) | p99 (ms) | timed out | shed at client | issue lag p99 (ms) | generator CPU (ms/s) | replica drops (queue/pending/input/transport) | client retransmits / reconnects | view changes | RSS max (MiB) | heap max (MiB) | max queue / pending / log / host input / writes waiting |'
  const sep = '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|'
  const fmt = (x: number) => (Number.isNaN(x) ? '–' : String(x))
  const rows = steps.map((s) => {
    const d = s.replicaDrops
    const z = s.sizesMax
    return `| ${s.rate} (${s.offered}) | ${s.throughput}${s.follows ? '' : ' *'} | ${fmt(s.p50Ms)} | ${fmt(s.p99Ms)} | ${s.timedOut} | ${s.shedAtClient} | ${fmt(s.issueLagP99Ms)} | ${s.generatorCpuMsPerSec} | ${d.queueFull}/${d.pendingFull}/${d.hostInput}/${d.transport} | ${s.clientSide.retransmits} / ${s.clientSide.reconnects} | ${s.viewChanges} | ${s.rssMaxMiB} | ${s.heapMaxMiB} | ${z.queue} / ${z.pending} / ${z.log} / ${z.queuedInputs} / ${z.pendingWrites} |`
  })
  return [head, sep, ...rows].join('\n')
}
