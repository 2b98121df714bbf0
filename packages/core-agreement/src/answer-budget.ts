/**
 * Bytes a replica may still send each recipient in answer to its asking: a token bucket per
 * recipient, `bytesPerSecond` refilled with the host's time, holding at most one second's worth.
 * An answer goes out while the bucket holds anything at all, and may take it below zero (a debt
 * repaid before the next answer), so one message larger than a second's allowance is still
 * answered, and over any stretch of time a recipient gets back at most `bytesPerSecond` per
 * second plus one message, however often and however cheaply it asks. Pure: time comes in as an
 * argument.
 */
export class AnswerBudget {
  private readonly buckets = new Map<string, { bytes: number; at: number }>()

  constructor(
    private readonly bytesPerSecond: number,
    /** Recipients remembered at once; past it the oldest bucket makes room (it starts full again). */
    private readonly maxRecipients = 4096,
  ) {}

  /** Takes `size` bytes from `to`'s allowance at time `now` (ms); false (nothing taken) while it is spent. */
  take(to: string, size: number, now: number): boolean {
    let bucket = this.buckets.get(to)
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxRecipients) this.buckets.delete(this.buckets.keys().next().value as string)
      bucket = { bytes: this.bytesPerSecond, at: now }
      this.buckets.set(to, bucket)
    } else if (now > bucket.at) {
      bucket.bytes = Math.min(this.bytesPerSecond, bucket.bytes + ((now - bucket.at) * this.bytesPerSecond) / 1000)
      bucket.at = now
    }
    if (bucket.bytes <= 0) return false
    bucket.bytes -= size
    return true
  }

  get size(): number {
    return this.buckets.size
  }
}
