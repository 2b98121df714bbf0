/**
 * Applies a chaos plan (chaos-schedule.ts) to a running cluster: each of a group's fault slots
 * runs its episodes one after another — kill -9 then restart from disk, partition then
 * reconnect, SIGSTOP then SIGCONT — and waits for the replica to catch up before the slot's
 * next episode. An episode starts only when its group can take one more fault (at most f of a
 * group are ever down, cut off, paused, or catching up after one of these, at once) and only if
 * it can end before the workload does; otherwise it starts late or is skipped, and the record
 * says why.
 */
import { type ChaosEpisode, type EpisodeKind, TIMING } from './chaos-schedule.js'
import { type ReplicaSlot, type Supervisor, sleep } from './supervisor.js'

export interface FaultRecord {
  readonly kind: EpisodeKind
  readonly group: string
  readonly replica: string
  /** Seconds after the workload started: planned, and actual (null unless applied). */
  readonly plannedAt: number
  at: number | null
  readonly length: number
  healedAt: number | null
  /**
   * Seconds from the heal until the replica was up, connected, out of any view change or state
   * transfer, and had executed what its group had at the heal.
   */
  caughtUpSeconds: number | null
  /**
   * Seconds from the heal until the replica voted again: active in the view its group's active
   * replicas are in (null: not before the workload ended, or it was faulted again first).
   */
  votingAgainSeconds: number | null
  /** Partitions: frames the replica dropped to and from other replicas while cut off. */
  framesDropped: number | null
  outcome: 'planned' | 'applied' | 'skipped'
  note: string | null
}

/** A status older than this says nothing about the replica now. */
const FRESH_STATUS_MS = 2_500
/** A healed replica gets this long to catch up before the slot moves on regardless. */
const CATCH_UP_LIMIT_MS = 60_000
const HEAL_ATTEMPTS = 5
const PREVIOUS_RAN_LATE = "the slot's previous episode and its catch-up ran past the planned start"

function addNote(r: FaultRecord, text: string): void {
  r.note = r.note === null ? text : `${r.note}; ${text}`
}

/** The value most of `values` have (the lowest of equally common ones), or undefined. */
function mostCommon(values: readonly number[]): number | undefined {
  const counts = new Map<number, number>()
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1)
  let best: number | undefined
  let bestCount = 0
  for (const [v, n] of counts) {
    if (n > bestCount || (n === bestCount && v < (best as number))) {
      best = v
      bestCount = n
    }
  }
  return best
}

/** Down (crashed, restarting, died), paused or cut off: what counts against f at any moment. */
export function isDownOrCut(s: ReplicaSlot): boolean {
  return s.state !== 'up' || s.paused || s.partitioned
}

export class FaultInjector {
  readonly records: FaultRecord[]
  /** Harness failures: a partition that could not be switched off. */
  readonly problems: string[] = []
  private stopping = false
  private readonly slots: FaultRecord[][]
  private readonly dropsBefore = new Map<FaultRecord, number>()
  /** Replicas healed and not yet caught up: they count against f like the faulty ones. */
  private readonly recovering = new Set<string>()
  /** Episodes healed whose replica does not vote yet, with the time of the heal. */
  private readonly notVotingSince = new Map<FaultRecord, number>()

  constructor(
    private readonly sup: Supervisor,
    plan: readonly ChaosEpisode[],
    /** Epoch ms of the workload's start and of its end. */
    private readonly startedAt: number,
    private readonly deadline: number,
  ) {
    this.records = plan.map((e) => ({ kind: e.kind, group: e.group, replica: e.replica, plannedAt: e.at, at: null, length: e.length, healedAt: null, caughtUpSeconds: null, votingAgainSeconds: null, framesDropped: null, outcome: 'planned', note: null }))
    const bySlot = new Map<string, FaultRecord[]>()
    plan.forEach((e, i) => {
      const key = `${e.group}#${e.slot}`
      bySlot.set(key, [...(bySlot.get(key) ?? []), this.records[i] as FaultRecord])
    })
    this.slots = [...bySlot.values()]
  }

  /** Runs every slot; resolves once each has ended (by the deadline, or soon after `stop`). */
  async run(): Promise<void> {
    let done = false
    const slots = Promise.all(this.slots.map((records) => this.runSlot(records))).finally(() => {
      done = true
    })
    while (!done) {
      this.noteVoting()
      await sleep(250)
    }
    await slots
    this.noteVoting()
  }

  /** Records when healed replicas vote again. */
  private noteVoting(): void {
    for (const [r, healed] of this.notVotingSince) {
      if (!this.voting(this.sup.slot(r.replica))) continue
      r.votingAgainSeconds = Math.round((Date.now() - healed) / 100) / 10
      this.notVotingSince.delete(r)
    }
  }

  /** Active, in the view most of the group's other connected, active replicas are in. */
  private voting(slot: ReplicaSlot): boolean {
    if (isDownOrCut(slot) || slot.status === undefined || !slot.status.active) return false
    const peers = this.sup.slots.filter((s) => s.group === slot.group && s !== slot && !isDownOrCut(s) && s.status?.active === true)
    const view = mostCommon(peers.map((s) => (s.status as NonNullable<ReplicaSlot['status']>).view))
    return view === undefined || slot.status.view === view
  }

  /** Starts nothing more and heals the faults under way at once. */
  stop(): void {
    this.stopping = true
  }

  private seconds(at: number): number {
    return Math.round((at - this.startedAt) / 100) / 10
  }

  private async runSlot(records: readonly FaultRecord[]): Promise<void> {
    let notBefore = 0
    for (const r of records) {
      await this.waitUntil(Math.max(this.startedAt + r.plannedAt * 1000, notBefore))
      const blocked = await this.waitForRoom(r)
      if (blocked !== undefined) {
        r.outcome = 'skipped'
        r.note = blocked
        continue
      }
      if (!(await this.apply(r))) {
        r.outcome = 'skipped'
        r.note = `${r.replica} did not take the fault (not running or its control endpoint did not answer)`
        continue
      }
      r.outcome = 'applied'
      r.at = this.seconds(Date.now())
      // An earlier episode's replica faulted again before it voted: that wait ends unmeasured.
      for (const earlier of this.notVotingSince.keys()) if (earlier.replica === r.replica) this.notVotingSince.delete(earlier)
      await this.waitUntil(Date.now() + r.length * 1000)
      await this.heal(r)
      const healed = Date.now()
      r.healedAt = this.seconds(healed)
      const caughtUp = await this.waitForCatchUp(r, healed, Math.min(healed + CATCH_UP_LIMIT_MS, this.deadline))
      r.caughtUpSeconds = caughtUp ? Math.round((Date.now() - healed) / 100) / 10 : null
      this.notVotingSince.set(r, healed)
      this.noteVoting()
      if (!caughtUp && !this.stopping && Date.now() < this.deadline) addNote(r, `${r.replica} had not caught up ${CATCH_UP_LIMIT_MS / 1000} s after the heal`)
      notBefore = Date.now() + TIMING.gap[0] * 1000
    }
  }

  /** Waits until the group can take this fault; undefined then, else why it could not. */
  private async waitForRoom(r: FaultRecord): Promise<string | undefined> {
    let waited: string | undefined
    for (;;) {
      if (this.stopping) return 'the run stopped first'
      const why = this.notReady(r)
      if (Date.now() + r.length * 1000 > this.deadline) return `no time left before the end of the workload (${why ?? PREVIOUS_RAN_LATE})`
      if (why === undefined) break
      waited = why
      await this.waitUntil(Date.now() + 250)
    }
    const late = this.seconds(Date.now()) - r.plannedAt
    if (late >= 1) addNote(r, `started ${late.toFixed(1)} s late: ${waited ?? PREVIOUS_RAN_LATE}`)
    return undefined
  }

  /** Why the group cannot take a fault of `r.replica` now, or undefined. */
  private notReady(r: FaultRecord): string | undefined {
    const target = this.sup.slot(r.replica)
    if (isDownOrCut(target) || target.status === undefined || Date.now() - target.statusAt > FRESH_STATUS_MS) return `${r.replica} is not up`
    if (this.recovering.has(r.replica)) return `${r.replica} is catching up`
    const faulty = this.sup.slots.filter((s) => s.group === r.group && (isDownOrCut(s) || this.recovering.has(s.id)))
    const f = this.sup.membership.group(r.group)!.f
    if (faulty.length + 1 > f) return `${faulty.map((s) => s.id).join(', ')} ${faulty.length === 1 ? 'is' : 'are'} down, cut off or catching up`
    return undefined
  }

  /**
   * Waits until the healed replica runs, connected, out of any state transfer, and has executed
   * what the rest of its group had at the heal (by a status taken after the heal). Notes when it
   * then does not vote yet: in another view than its group, or with a view change unfinished (a
   * replica whose timer fired while it was cut off waits for its group's next view change).
   */
  private async waitForCatchUp(r: FaultRecord, healed: number, until: number): Promise<boolean> {
    const slot = this.sup.slot(r.replica)
    const others = () => this.sup.slots.filter((s) => s.group === r.group && s !== slot && s.status !== undefined && !isDownOrCut(s))
    const groupAt = Math.max(0, ...others().map((s) => s.status!.lastExecuted))
    const caughtUp = () => !isDownOrCut(slot) && slot.status !== undefined && slot.statusAt > healed && !slot.status.transferring && slot.status.lastExecuted >= groupAt
    this.recovering.add(r.replica)
    try {
      while (Date.now() < until && !this.stopping && !caughtUp()) await sleep(200)
      if (!caughtUp()) return false
      const groupView = mostCommon(others().map((s) => s.status!.view))
      const st = slot.status as NonNullable<ReplicaSlot['status']>
      if (groupView !== undefined && (st.view !== groupView || !st.active)) addNote(r, `caught up but not voting yet: in view ${st.view}${st.active ? '' : ' with its view change unfinished'}, its group in view ${groupView}`)
      return true
    } finally {
      this.recovering.delete(r.replica)
    }
  }

  private async apply(r: FaultRecord): Promise<boolean> {
    switch (r.kind) {
      case 'crash':
        if (this.sup.slot(r.replica).state !== 'up') return false
        this.sup.crash(r.replica)
        return true
      case 'pause':
        return this.sup.pause(r.replica)
      case 'partition': {
        const st = await this.sup.partition(r.replica, true)
        if (st?.partitioned !== true) return false
        // The process counts drops since it started: this episode's are the difference at the heal.
        this.dropsBefore.set(r, st.droppedIn + st.droppedOut)
        return true
      }
    }
  }

  private async heal(r: FaultRecord): Promise<void> {
    switch (r.kind) {
      case 'crash':
        await this.sup.restart(r.replica)
        return
      case 'pause':
        this.sup.resume(r.replica)
        return
      case 'partition':
        for (let i = 0; i < HEAL_ATTEMPTS; i++) {
          const st = await this.sup.partition(r.replica, false)
          if (st?.partitioned === false) {
            r.framesDropped = st.droppedIn + st.droppedOut - (this.dropsBefore.get(r) ?? 0)
            return
          }
          if (this.sup.slot(r.replica).state !== 'up') return // it died: the supervisor reports that
          await sleep(1_000)
        }
        this.problems.push(`${r.replica} could not be reconnected: its control endpoint did not answer ${HEAL_ATTEMPTS} times`)
        return
    }
  }

  /** Sleeps until `at`, or until `stop`. */
  private async waitUntil(at: number): Promise<void> {
    while (!this.stopping && Date.now() < at) await sleep(Math.min(200, at - Date.now()))
  }
}

/** Replicas of each group down, paused or cut off right now. */
export function downOrCutNow(sup: Supervisor): Record<string, number> {
  const out: Record<string, number> = {}
  for (const g of sup.membership.groups.keys()) out[g] = sup.slots.filter((s) => s.group === g && isDownOrCut(s)).length
  return out
}
