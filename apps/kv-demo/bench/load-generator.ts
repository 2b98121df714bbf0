/**
 * The open-loop generator of `pnpm load`: requests leave on a fixed schedule, whatever the
 * group answers. Each client identity (a plain core-agreement Client, one request outstanding)
 * takes one request at a time; an arrival that finds no free identity is shed at once and
 * counted, never queued. Each request has a deadline from its scheduled arrival; past it, it
 * counts as timed out, and its identity stays busy until the group answers it (the protocol has
 * no cancel: the Client keeps retransmitting) — so the identities bound what is outstanding.
 */
import { ClientTimeoutError } from '@bftrc/client-agreement/node-host'
import { type ClientSide, type StepCounts, emptyCounts } from './load-report.js'
import { addTotals, emptyTotals, totals } from './metrics.js'
import type { ClientEndpoint } from './processes.js'

export interface GeneratorInit {
  readonly endpoints: readonly ClientEndpoint[]
  readonly group: string
  readonly timeoutMs: number
  /** The operation of the n-th request. */
  readonly op: (n: number) => Uint8Array
}

/** Longest pause of the scheduling loop; arrivals are issued when the loop wakes (late ones count as issue lag). */
const MAX_SLEEP_MS = 5

export class OpenLoopGenerator {
  private readonly free: ClientEndpoint[]
  /** Identities whose request timed out but is still outstanding in their Client. */
  private readonly stuck = new Set<ClientEndpoint>()
  private counts: StepCounts = emptyCounts()
  private sent = 0

  constructor(private readonly init: GeneratorInit) {
    this.free = [...init.endpoints]
  }

  /** Counters of the identities' hosts and transports, summed (cumulative). */
  clientSide(): ClientSide {
    const t = emptyTotals()
    let sendRefused = 0
    let lateAnswers = 0
    let retransmits = 0
    for (const ep of this.init.endpoints) {
      addTotals(t, totals(ep.transport))
      sendRefused += ep.host.counters.refused
      lateAnswers += ep.host.counters.lateCompletions
      retransmits += ep.host.clientCounters().retransmit ?? 0
    }
    return { retransmits, reconnects: t.reconnects, dialFailures: t.dialFailures, transportDrops: t.dropped, sendRefused, lateAnswers }
  }

  /** Requests outstanding now (answered neither in time nor late). */
  get outstanding(): number {
    return this.init.endpoints.length - this.free.length
  }

  /**
   * Runs one step: issues an arrival at each offset (ms from now) and returns what happened in
   * the window of `windowMs`. Answers and deadlines of earlier steps that fall in this window
   * count here.
   */
  runStep(offsets: readonly number[], windowMs: number): Promise<StepCounts> {
    const counts = emptyCounts()
    this.counts = counts
    const t0 = performance.now()
    const cpu0 = process.cpuUsage()
    let next = 0
    return new Promise((resolve) => {
      const wake = () => {
        const now = performance.now() - t0
        this.reclaim()
        while (next < offsets.length && (offsets[next] as number) <= now) this.arrive(t0 + (offsets[next++] as number), counts)
        if (now >= windowMs) {
          const cpu = process.cpuUsage(cpu0)
          counts.generatorCpuMs = (cpu.user + cpu.system) / 1000
          this.counts = emptyCounts() // what happens until the next step is not counted
          resolve(counts)
          return
        }
        const due = next < offsets.length ? (offsets[next] as number) : windowMs
        setTimeout(wake, Math.max(0, Math.min(MAX_SLEEP_MS, due - now)))
      }
      wake()
    })
  }

  /** Waits (without issuing) until nothing is outstanding or `maxMs` passed; counts what happened. */
  async drain(maxMs: number): Promise<StepCounts> {
    const counts = emptyCounts()
    this.counts = counts
    const end = performance.now() + maxMs
    while (this.outstanding > 0 && performance.now() < end) {
      await new Promise((r) => setTimeout(r, 20))
      this.reclaim()
    }
    return counts
  }

  private arrive(scheduledAt: number, counts: StepCounts): void {
    counts.arrivals++
    const ep = this.free.pop()
    if (ep === undefined) {
      counts.shedAtClient++
      return
    }
    counts.issued++
    const lag = performance.now() - scheduledAt
    counts.issueLagMs.push(lag)
    ep.host.invoke(this.init.group, this.init.op(this.sent++), { timeoutMs: Math.max(1, this.init.timeoutMs - lag) }).then(
      () => {
        this.counts.completed++
        this.counts.latenciesMs.push(performance.now() - scheduledAt)
        this.free.push(ep)
      },
      (err: unknown) => {
        if (err instanceof ClientTimeoutError) this.counts.timedOut++
        else this.counts.failed++
        this.stuck.add(ep)
        this.reclaim()
      },
    )
  }

  /** Identities whose late request the group has answered meanwhile are free again. */
  private reclaim(): void {
    for (const ep of this.stuck) {
      if (ep.host.queued(this.init.group) === 0) {
        this.stuck.delete(ep)
        this.free.push(ep)
      }
    }
  }
}
