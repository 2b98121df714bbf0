/** A min-heap of timed events; ties run in insertion order, so runs are deterministic. */
export interface TimedEvent {
  readonly at: number
  readonly order: number
  readonly run: () => void
}

export class EventQueue {
  private heap: TimedEvent[] = []
  private counter = 0

  get size(): number {
    return this.heap.length
  }

  push(at: number, run: () => void): void {
    const e: TimedEvent = { at, order: this.counter++, run }
    const h = this.heap
    h.push(e)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.less(e, h[p] as TimedEvent)) break
      h[i] = h[p] as TimedEvent
      i = p
    }
    h[i] = e
  }

  peekTime(): number | undefined {
    return this.heap[0]?.at
  }

  pop(): TimedEvent | undefined {
    const h = this.heap
    const top = h[0]
    if (top === undefined) return undefined
    const last = h.pop() as TimedEvent
    if (h.length > 0) {
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = -1
        let best = last
        if (l < h.length && this.less(h[l] as TimedEvent, best)) {
          m = l
          best = h[l] as TimedEvent
        }
        if (r < h.length && this.less(h[r] as TimedEvent, best)) {
          m = r
          best = h[r] as TimedEvent
        }
        if (m < 0) break
        h[i] = best
        i = m
      }
      h[i] = last
    }
    return top
  }

  private less(a: TimedEvent, b: TimedEvent): boolean {
    return a.at < b.at || (a.at === b.at && a.order < b.order)
  }
}
