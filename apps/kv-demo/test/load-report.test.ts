import { describe, expect, it } from 'vitest'
import { type ClientSide, type StepCounts, type StepSummary, clientSideDelta, emptyCounts, findSaturation, judgeMemory, judgeRetainedHeap, stepTable, summariseStep } from '../bench/load-report.js'
import type { CorrectnessReport } from '../bench/load-checks.js'
import { type Measured, buildReport, renderReport } from '../bench/load-output.js'
import { parseLoadArgs } from '../bench/load-plan.js'
import type { HostFigures, NodeStatus } from '../bench/metrics.js'
import { max } from '../bench/stats.js'

const MiB = 2 ** 20
const noClientTrouble: ClientSide = { retransmits: 0, reconnects: 0, dialFailures: 0, transportDrops: 0, sendRefused: 0, lateAnswers: 0 }

function host(over: Partial<HostFigures>): HostFigures {
  return { writeP50: 1, writeP99: 2, view: 0, lastExecuted: 0, stateDigest: 'aa', viewChanges: 0, framesInDropped: 0, writes: 0, executedBatches: 0, queuedInputs: 0, pendingWrites: 0, queueFull: 0, pendingFull: 0, sizes: {}, ...over }
}

function status(id: string, rssMiB: number, heapMiB: number, h: Partial<HostFigures>, transportDropped = 0): NodeStatus {
  return {
    t: 'status',
    id,
    cpuMicros: 0,
    cpuSystemMicros: 0,
    rssBytes: rssMiB * MiB,
    heapUsedBytes: heapMiB * MiB,
    transport: { framesOut: 0, bytesOut: 0, framesIn: 0, bytesIn: 0, dropped: transportDropped, reconnects: 0, dialFailures: 0 },
    host: host(h),
  }
}

function counts(over: Partial<StepCounts>): StepCounts {
  return { ...emptyCounts(), ...over }
}

/** A step summary with only what saturation and memory judge set. */
function step(rate: number, throughput: number, rssMaxMiB: number): StepSummary {
  const c = counts({ arrivals: rate * 10, completed: Math.round(throughput * 10) })
  const s = status('kv/0', rssMaxMiB, 10, {})
  return summariseStep(rate, 10, c, { before: [s], after: [s], samples: [] }, noClientTrouble)
}

describe('load step summary', () => {
  it('turns a window into rates, latency quantiles, drop deltas summed over replicas, maxima and view changes', () => {
    const before = [status('kv/0', 100, 20, { queueFull: 5, framesInDropped: 1, viewChanges: 1 }, 2), status('kv/1', 100, 20, { pendingFull: 3 })]
    const after = [status('kv/0', 120, 30, { queueFull: 9, framesInDropped: 4, viewChanges: 3, sizes: { queue: 40, pending: 0, log: 64 } }, 7), status('kv/1', 110, 25, { pendingFull: 10, viewChanges: 2 })]
    const samples = [status('kv/1', 150, 45, { queuedInputs: 12, pendingWrites: 200, sizes: { queue: 0, pending: 77, log: 70 } })]
    const c = counts({ arrivals: 400, issued: 300, shedAtClient: 100, completed: 250, timedOut: 20, latenciesMs: Array.from({ length: 100 }, (_, i) => i + 1), issueLagMs: [1, 2, 30], generatorCpuMs: 3000 })
    const s = summariseStep(100, 4, c, { before, after, samples }, { ...noClientTrouble, retransmits: 9, reconnects: 2 })
    expect(s).toMatchObject({
      rate: 100,
      offered: 100,
      throughput: 62.5,
      p50Ms: 50,
      p99Ms: 99,
      completed: 250,
      timedOut: 20,
      shedAtClient: 100,
      issueLagP99Ms: 30,
      generatorCpuMsPerSec: 750,
      replicaDrops: { queueFull: 4, pendingFull: 7, hostInput: 3, transport: 5 },
      rssMaxMiB: 150,
      heapMaxMiB: 45,
      sizesMax: { queue: 40, pending: 77, log: 70, queuedInputs: 12, pendingWrites: 200 },
      viewChanges: 2,
      clientSide: { retransmits: 9, reconnects: 2 },
      follows: false,
    })
    // 90 % of the offered rate still follows; below does not.
    expect(summariseStep(100, 10, counts({ arrivals: 1000, completed: 900 }), { before: [], after: [], samples: [] }, noClientTrouble).follows).toBe(true)
    expect(summariseStep(100, 10, counts({ arrivals: 1000, completed: 899 }), { before: [], after: [], samples: [] }, noClientTrouble).follows).toBe(false)
  })

  it('subtracts client-side counters', () => {
    expect(clientSideDelta({ retransmits: 10, reconnects: 1, dialFailures: 2, transportDrops: 3, sendRefused: 4, lateAnswers: 5 }, { retransmits: 30, reconnects: 4, dialFailures: 2, transportDrops: 9, sendRefused: 4, lateAnswers: 15 })).toEqual({ retransmits: 20, reconnects: 3, dialFailures: 0, transportDrops: 6, sendRefused: 0, lateAnswers: 10 })
  })

  it('tabulates every step and marks the ones that did not follow', () => {
    const t = stepTable([step(50, 50, 100), step(100, 60, 110)]).split('\n')
    expect(t).toHaveLength(4)
    expect(t[2]).toMatch(/^\| 50 \(50\) \| 50 \| /)
    expect(t[3]).toMatch(/^\| 100 \(100\) \| 60 \* \| /)
    expect(t[3]).toContain('| – | – |') // no latency samples
  })
})

describe('saturation', () => {
  it('is the first step whose throughput stops following the offered rate', () => {
    const steps = [step(25, 25, 100), step(50, 49, 100), step(100, 80, 100), step(200, 95, 100), step(400, 70, 100)]
    expect(findSaturation(steps)).toEqual({ index: 2, lastFollowedRate: 50, peakThroughput: 95, peakAtRate: 200 })
  })

  it('may not be reached, or be reached at once', () => {
    expect(findSaturation([step(10, 10, 1), step(20, 19, 1)])).toEqual({ index: undefined, lastFollowedRate: 20, peakThroughput: 19, peakAtRate: 20 })
    expect(findSaturation([step(500, 90, 1), step(1000, 92, 1)])).toMatchObject({ index: 0, lastFollowedRate: undefined, peakThroughput: 92 })
    expect(findSaturation([])).toMatchObject({ index: undefined, peakThroughput: 0 })
  })
})

describe('memory past saturation', () => {
  it('is bounded when the last overload step holds at most 25 % + 32 MiB more than the first', () => {
    const steps = [step(50, 50, 90), step(100, 70, 120), step(200, 72, 150), step(400, 71, 182)]
    const v = judgeMemory(steps, 1)
    expect(v).toMatchObject({ judged: true, ok: true, firstRssMiB: 120, lastRssMiB: 182, boundMiB: 182, overloadSteps: 3 })
    expect(v.message).toContain('bounded')
  })

  it('fails when it keeps growing', () => {
    const v = judgeMemory([step(50, 50, 90), step(100, 70, 120), step(200, 72, 160), step(400, 71, 182.1)], 1)
    expect(v).toMatchObject({ judged: true, ok: false, lastRssMiB: 182.1 })
    expect(v.message).toContain('GREW')
  })

  it('is not judged with fewer than two steps past saturation', () => {
    expect(judgeMemory([step(50, 50, 90), step(100, 70, 500)], 1)).toMatchObject({ judged: false, ok: false, overloadSteps: 1 })
    expect(judgeMemory([step(50, 50, 90)], undefined).message).toMatch(/not judged: 0 step/)
  })
})

describe('heap retained after the drain', () => {
  it('is released when it exceeds the heap before the steps by at most 16 MiB, with the growth per request', () => {
    expect(judgeRetainedHeap(20 * MiB, 36 * MiB, 1024)).toMatchObject({ ok: true, beforeMiB: 20, afterMiB: 36, bytesPerRequest: 16 * 1024 })
    const v = judgeRetainedHeap(20 * MiB, 36 * MiB + 1, 1000)
    expect(v).toMatchObject({ ok: false })
    expect(v.message).toContain('RETAINED')
    expect(judgeRetainedHeap(30 * MiB, 20 * MiB, 0)).toMatchObject({ ok: true, bytesPerRequest: Number.NaN })
    expect(judgeRetainedHeap(Number.NaN, 20 * MiB, 10)).toMatchObject({ ok: false, message: 'replica heap not measured: no replica answered' })
  })
})

describe('max', () => {
  it('ignores NaN and is NaN for nothing', () => {
    expect(max([3, Number.NaN, 7, 1])).toBe(7)
    expect(max([])).toBeNaN()
    expect(max([Number.NaN])).toBeNaN()
  })
})

describe('the final report', () => {
  const agreed = { agree: true, silent: [], lastExecuted: [9, 9, 9, 9], digests: ['ab', 'ab', 'ab', 'ab'], views: [0, 0, 0, 0], seconds: 0 }
  const correct: CorrectnessReport = { afterDrain: agreed, live: true, writeReadMs: 50, afterWrite: agreed, problems: [], summary: 'all 4 at seq 9' }
  const measured = (over: Partial<Measured>): Measured => ({
    started: 0,
    machineBefore: { nproc: 2, node: 'v20', loadavg: [1, 1, 1] },
    machineAfter: { loadavg: [2, 1, 1] },
    busyShare: 0.5,
    baseline: [status('kv/0', 100, 20, {})],
    final: [status('kv/0', 120, 21, {})],
    steps: [step(50, 50, 100), step(100, 70, 110), step(200, 72, 115)],
    drain: emptyCounts(),
    stillOutstanding: 0,
    correctness: correct,
    ...over,
  })
  const o = parseLoadArgs(['--json', 'x.json'], '/', '/tmp')

  it('is ok when agreement, liveness and both memory rules held, and leaves the JSON path out', () => {
    const r = buildReport(o, measured({}), 300 * MiB, 65_000)
    expect(r).toMatchObject({ ok: true, problems: [], warnings: [], seconds: 65, saturation: { index: 1 }, memory: { judged: true, ok: true }, retainedHeap: { ok: true }, generatorRssMiB: 300, replicaRss: { baselineMiB: 100, finalMiB: 120 } })
    expect(r.options.json).toBeUndefined()
    const text = renderReport(r)
    expect(text).toContain('throughput stopped following at 100 ops/s offered (last followed: 50)')
    expect(text.split('\n').at(-1)).toBe('load: OK — agreement, liveness and bounded memory held')
  })

  it('fails on a correctness problem, on memory that grew or was retained, and when saturation was not reached', () => {
    const lost = buildReport(o, measured({ correctness: { ...correct, live: false, problems: ['not live: no answer'] } }), 0, 0)
    expect(lost).toMatchObject({ ok: false, problems: ['not live: no answer'] })
    expect(renderReport(lost)).toContain('load: FAILED — not live: no answer')
    expect(buildReport(o, measured({ steps: [step(50, 50, 100), step(100, 70, 110), step(200, 72, 300)] }), 0, 0).problems[0]).toContain('GREW')
    expect(buildReport(o, measured({ final: [status('kv/0', 120, 40, {})] }), 0, 0).problems[0]).toContain('RETAINED')
    expect(buildReport(o, measured({ steps: [step(50, 50, 100), step(100, 99, 100)] }), 0, 0).problems).toEqual(['the group never saturated: nothing was tested past saturation (raise --steps)'])
  })

  it('warns, without failing, when only one step went past saturation', () => {
    const r = buildReport(o, measured({ steps: [step(50, 50, 100), step(100, 99, 100), step(200, 120, 400)] }), 0, 0)
    expect(r).toMatchObject({ ok: true, problems: [], memory: { judged: false } })
    expect(r.warnings).toEqual(['memory growth not judged: 1 step(s) past saturation, 2 needed (raise --steps)'])
    expect(renderReport(r)).toContain('warning: memory growth not judged')
  })
})
