/** A FIFO of frames that tracks its byte total; amortised O(1) push and shift. */
export class FrameQueue {
  private items: Uint8Array[] = []
  private head = 0
  /** Sum of the queued frames' lengths (payload bytes, without prefixes). */
  bytes = 0

  get length(): number {
    return this.items.length - this.head
  }

  push(frame: Uint8Array): void {
    this.items.push(frame)
    this.bytes += frame.byteLength
  }

  /** The i-th queued frame (0 = oldest). */
  at(i: number): Uint8Array {
    return this.items[this.head + i]!
  }

  /** Removes the `n` oldest frames; returns them in order. */
  take(n: number): Uint8Array[] {
    const out = this.items.slice(this.head, this.head + n)
    this.head += out.length
    for (const f of out) this.bytes -= f.byteLength
    if (this.head === this.items.length) {
      this.items = []
      this.head = 0
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return out
  }

  /** Empties the queue; returns how many frames were discarded. */
  clear(): number {
    const n = this.length
    this.items = []
    this.head = 0
    this.bytes = 0
    return n
  }
}
