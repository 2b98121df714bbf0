/**
 * The fault schedule of `kv-demo chaos`, drawn from a seed so a failing run can be replayed.
 *
 * Each group gets `maxFaulty` fault *slots* (its f); a slot runs one fault episode at a time,
 * so no more than f replicas of a group are ever faulty at once. An episode is one of:
 *
 *  - crash:     kill -9 the replica, start it again from its folder `length` seconds later;
 *  - partition: cut it off from every other replica (transport switch) for `length` seconds;
 *  - pause:     SIGSTOP it, SIGCONT `length` seconds later.
 *
 * Between two episodes of a slot there is a gap (the replica catches up). Every episode ends
 * before the workload does (the run then kills every replica at once and restarts them all).
 * The first two episodes drawn are a crash and a partition, so a run of 20 s or more has both
 * (each of the two groups' first slot fits one episode of any kind in 20 s). The plan is pure: the runner (chaos.ts) applies it, later than planned when a group is
 * not healthy yet, and reports what it actually applied.
 */
import { Rng } from './rng.js'

export const EPISODE_KINDS = ['crash', 'partition', 'pause'] as const
export type EpisodeKind = (typeof EPISODE_KINDS)[number]

export interface ChaosGroup {
  readonly name: string
  /** The replicas that may be faulted, in index order. */
  readonly members: readonly string[]
  /** How many may be faulty at once: the group's f. */
  readonly maxFaulty: number
}

export interface ChaosEpisode {
  readonly kind: EpisodeKind
  readonly group: string
  readonly replica: string
  /** Which of the group's f slots runs it (0..f-1). */
  readonly slot: number
  /** Seconds after the workload starts, and how long the fault lasts. */
  readonly at: number
  readonly length: number
}

export interface ChaosPlanInput {
  readonly seed: number
  readonly durationSeconds: number
  readonly groups: readonly ChaosGroup[]
}

/** Seconds: [min, max) of each draw. */
export const TIMING = {
  /** The first episode of a slot: after the bank has created its accounts. */
  firstStart: [3, 7],
  /** Between the end of an episode and the start of the slot's next one. */
  gap: [4, 10],
  crash: [1, 6],
  partition: [3, 10],
  pause: [1, 4],
  /** Every episode ends at least this long before the workload does. */
  endMargin: 2,
} as const

/** Relative weights of the kinds after the first two episodes. */
const WEIGHTS: Readonly<Record<EpisodeKind, number>> = { crash: 0.45, partition: 0.35, pause: 0.2 }

const round = (x: number) => Math.round(x * 10) / 10

/** A duration in [min, max), to a tenth of a second. */
function draw(rng: Rng, range: readonly [number, number]): number {
  return round(rng.between(range[0], range[1]))
}

/** The episodes of a run, in order of start; deterministic for a seed and input. */
export function chaosPlan(input: ChaosPlanInput): ChaosEpisode[] {
  const rng = new Rng(input.seed)
  const end = input.durationSeconds - TIMING.endMargin
  // The first episodes the slots draw are one crash and one partition (in an order the seed picks).
  const forced: EpisodeKind[] = rng.next() < 0.5 ? ['crash', 'partition'] : ['partition', 'crash']
  const drawKind = (): EpisodeKind => {
    let x = rng.next()
    for (const k of EPISODE_KINDS) {
      if (x < WEIGHTS[k]) return k
      x -= WEIGHTS[k]
    }
    return 'crash'
  }
  // 1. Each slot's episodes, one after another with gaps, all ending by `end`.
  const timed: Array<{ group: ChaosGroup; slot: number; at: number; length: number; kind: EpisodeKind }> = []
  for (const group of input.groups) {
    for (let slot = 0; slot < group.maxFaulty; slot++) {
      let t = draw(rng, TIMING.firstStart)
      for (;;) {
        const kind = forced[0] ?? drawKind()
        const length = draw(rng, TIMING[kind])
        if (t + length > end) break
        if (kind === forced[0]) forced.shift()
        timed.push({ group, slot, at: t, length, kind })
        t = round(t + length + draw(rng, TIMING.gap))
      }
    }
  }
  timed.sort((a, b) => a.at - b.at || a.group.name.localeCompare(b.group.name) || a.slot - b.slot)
  // 2. Which replica: any member the group's other slots do not hold at that time.
  const out: ChaosEpisode[] = []
  for (const e of timed) {
    const busy = new Set(out.filter((o) => o.group === e.group.name && overlaps(o, e)).map((o) => o.replica))
    const free = e.group.members.filter((m) => !busy.has(m))
    out.push({ kind: e.kind, group: e.group.name, replica: rng.pick(free), slot: e.slot, at: e.at, length: e.length })
  }
  return out
}

function overlaps(a: { at: number; length: number }, b: { at: number; length: number }): boolean {
  return a.at < b.at + b.length && b.at < a.at + a.length
}

/** The most episodes of `group` under way at one time: the replicas faulty at once. */
export function maxFaultyAtOnce(plan: readonly ChaosEpisode[], group: string): number {
  const eps = plan.filter((e) => e.group === group)
  // The count is highest at some episode's start.
  return Math.max(0, ...eps.map((e) => eps.filter((o) => o.at <= e.at && e.at < o.at + o.length).length))
}
