/**
 * What a backup expects of its primary's timing. A primary that is merely slow (Aardvark's attack:
 * it orders everything, only late, just below every timeout) is as harmful as a silent one, so
 * each backup watches the requests it saw (clients send every request to every replica) and the
 * events it proposed, and expects the primary to order each within an allowance derived from
 * what it measures of its peers, not from anything the primary controls:
 *
 *   allowance = orderingSlack + ROUND_FACTOR × round
 *
 * where `round` is the smoothed time from accepting a pre-prepare to holding its prepared
 * certificate, one exchange among the backups (Prime's "acceptable turnaround" has the same
 * shape: a multiple of the measured network latency plus a constant). The clock runs only while
 * the primary has room to order: fewer than `pipelineDepth` of its batches unexecuted here and
 * space in the log window. A busy primary is not a slow one.
 *
 * Halfway through the allowance the backup hands the entry to the primary itself (the primary may
 * have lost the client's copy, or shed it when its queue was full, or a faulty client sent it to
 * this backup alone). From then on the backup knows the primary has it, so the primary gets a
 * whole allowance more, counted from the reminder: only then is it slow, and the backup asks for a
 * view change. (Half an allowance was too little: the reminder and the pre-prepare each cross the
 * network once, and a primary with a full pipeline waits for room; on a lossy network with 1–10 ms
 * delays correct primaries were suspected.) f+1 backups doing so move everyone (see
 * Replica.onViewChange). So a primary delays a request by less than one and a half allowances or
 * loses its view, where before it could delay it by a view-change timeout plus a client's
 * retransmission timeout.
 *
 * Pure bookkeeping: the replica says what it saw, what got ordered, and whether the primary has
 * room; this class says what is due.
 */

/** The allowance is this many prepare rounds, plus the configured slack. */
export const ROUND_FACTOR = 4
/** Weight of a new round sample in the smoothed round (as TCP's smoothed RTT). */
const ROUND_WEIGHT = 1 / 8
/** Reminders sent per check at most (the rest are due at the next tick). */
export const REMINDERS_PER_CHECK = 256

interface Watch {
  /** When we saw it (or when a new view gave the new primary a fresh start). */
  readonly since: number
  /** When we reminded the primary of it, if we did. */
  remindedAt: number | undefined
}

export interface Due {
  /** Entries to hand to the primary (half their allowance has passed). */
  readonly remind: string[]
  /** An entry that waited a whole allowance since its reminder, with the primary free to order it. */
  readonly late: string | undefined
}

export class OrderingMonitor {
  /** Smoothed prepare round in ms; undefined until the first sample. */
  private round: number | undefined
  /**
   * Since when the primary has had room to order, as of the last check; undefined if it had none
   * then. Room is assumed until a check finds none, so an entry's clock starts when we saw it.
   */
  private roomSince: number | undefined = Number.NEGATIVE_INFINITY
  /** Watched entries in the order their clocks started (so the oldest comes first). */
  private readonly watched = new Map<string, Watch>()

  /**
   * @param slack fixed part of the allowance (the primary's own work: a durable write, a busy
   *   event loop)
   * @param cap the allowance never exceeds this (the view-change timeout: beyond it the ordinary
   *   timer acts anyway)
   */
  constructor(
    private readonly slack: number,
    private readonly cap: number,
  ) {}

  allowance(): number {
    // Before anything was measured: the cap, so nothing is late before the ordinary timer fires.
    if (this.round === undefined) return this.cap
    return Math.min(this.cap, Math.ceil(this.slack + ROUND_FACTOR * this.round))
  }

  /** One prepare round measured here. */
  sampleRound(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return
    this.round = this.round === undefined ? ms : this.round + (ms - this.round) * ROUND_WEIGHT
  }

  smoothedRound(): number | undefined {
    return this.round
  }

  /** Starts (or, for a replaced entry, restarts) the clock of `key`. */
  watch(key: string, now: number): void {
    this.watched.delete(key)
    this.watched.set(key, { since: now, remindedAt: undefined })
  }

  unwatch(key: string): void {
    this.watched.delete(key)
  }

  /** A new view or a new role: nothing is watched until the replica says so again. */
  clear(): void {
    this.watched.clear()
    this.roomSince = Number.NEGATIVE_INFINITY
  }

  get size(): number {
    return this.watched.size
  }

  /**
   * What is due at `now`. `room`: whether the primary has room to order (see the class comment).
   * `waiting(key)` confirms that an entry still waits (entries whose wait ended some other way
   * are dropped here rather than tracked at every place a wait can end).
   */
  check(now: number, room: boolean, waiting: (key: string) => boolean): Due {
    if (!room) {
      this.roomSince = undefined
      return { remind: [], late: undefined }
    }
    this.roomSince ??= now
    const allowance = this.allowance()
    const half = Math.ceil(allowance / 2)
    const remind: string[] = []
    let late: string | undefined
    for (const [key, w] of this.watched) {
      const waited = now - Math.max(w.since, this.roomSince)
      // Clocks start in insertion order, so once one is not due, none after it is.
      if (waited < half) break
      if (w.remindedAt !== undefined && now - Math.max(w.remindedAt, this.roomSince) < allowance) continue
      if (!waiting(key)) {
        this.watched.delete(key)
        continue
      }
      if (w.remindedAt !== undefined) {
        late = key
        break
      }
      if (remind.length >= REMINDERS_PER_CHECK) break
      w.remindedAt = now
      remind.push(key)
    }
    return { remind, late }
  }

}
