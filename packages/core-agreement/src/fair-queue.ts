/**
 * The primary's waiting room, served fairly: every entry belongs to the source that brought it
 * (a client, a replica relaying for clients, a replica proposing events), each source may hold
 * at most `perSource` entries, and batches take entries round-robin across sources. So one
 * source, however much it sends, fills only its own share and gets only its own turn: a correct
 * client or replica is never crowded out (Aardvark's separate, fairly served queues).
 */
export type EnqueueOutcome = 'added' | 'replaced' | 'source-full' | 'full'

export class FairQueue<V> {
  /** Per source, its entries by key, oldest first. */
  private readonly bySource = new Map<string, Map<string, V>>()
  /** Key → source, for de-duplication across sources. */
  private readonly sourceOf = new Map<string, string>()
  /**
   * Where the next `take` starts among the sources: where the last one stopped because its batch
   * was full (that source is served first next time), or at the oldest source when it drained all.
   */
  private turn = 0

  constructor(
    private readonly perSource: number,
    private readonly total: number,
  ) {}

  get size(): number {
    return this.sourceOf.size
  }

  has(key: string): boolean {
    return this.sourceOf.has(key)
  }

  get(key: string): V | undefined {
    const source = this.sourceOf.get(key)
    return source === undefined ? undefined : this.bySource.get(source)?.get(key)
  }

  /** Entries held by one source. */
  heldBy(source: string): number {
    return this.bySource.get(source)?.size ?? 0
  }

  /**
   * Adds `value` under `key` for `source`. A key already waiting takes the new value (a client's
   * newer request replaces its older one) and keeps its place, unless `source` holds fewer
   * entries than the source it waits with: then it moves to `source`. So an entry that several
   * sources bring (a client's request relayed by a flooding replica and sent by the client
   * itself) waits in the shortest of their lines, never behind a flood it did not cause.
   */
  add(source: string, key: string, value: V): EnqueueOutcome {
    const owner = this.sourceOf.get(key)
    if (owner !== undefined) {
      if (owner === source || this.heldBy(source) + 1 >= this.heldBy(owner)) {
        ;(this.bySource.get(owner) as Map<string, V>).set(key, value)
        return 'replaced'
      }
      this.delete(key)
      this.insert(source, key, value)
      return 'replaced'
    }
    if (this.heldBy(source) >= this.perSource) return 'source-full'
    if (this.sourceOf.size >= this.total) return 'full'
    this.insert(source, key, value)
    return 'added'
  }

  private insert(source: string, key: string, value: V): void {
    let entries = this.bySource.get(source)
    if (entries === undefined) {
      entries = new Map()
      this.bySource.set(source, entries)
    }
    entries.set(key, value)
    this.sourceOf.set(key, source)
  }

  delete(key: string): boolean {
    const source = this.sourceOf.get(key)
    if (source === undefined) return false
    this.sourceOf.delete(key)
    const entries = this.bySource.get(source) as Map<string, V>
    entries.delete(key)
    if (entries.size === 0) this.bySource.delete(source)
    return true
  }

  /**
   * Removes and returns entries round-robin across sources, one per source per round, while
   * `accept` takes them (it returns false to stop: the batch is full). Skipped entries (`accept`
   * returning 'skip') are removed and not returned.
   */
  take(accept: (key: string, value: V) => boolean | 'skip'): Array<[string, V]> {
    const out: Array<[string, V]> = []
    const sources = [...this.bySource.keys()]
    if (sources.length === 0) return out
    const start = this.turn % sources.length
    for (;;) {
      let progressed = false
      for (let i = 0; i < sources.length; i++) {
        const source = sources[(start + i) % sources.length] as string
        const entries = this.bySource.get(source)
        const first = entries?.entries().next()
        if (first === undefined || first.done === true) continue
        const [key, value] = first.value
        const verdict = accept(key, value)
        if (verdict === false) {
          this.turn = (start + i) % sources.length
          return out
        }
        this.delete(key)
        if (verdict === true) out.push([key, value])
        progressed = true
      }
      if (!progressed) break
    }
    this.turn = 0
    return out
  }

  values(): IterableIterator<V> {
    return (function* (bySource: Map<string, Map<string, V>>) {
      for (const entries of bySource.values()) yield* entries.values()
    })(this.bySource)
  }

  clear(): void {
    this.bySource.clear()
    this.sourceOf.clear()
  }
}
