/**
 * Invariant checkers, run on every step of every simulated run. They watch only the correct
 * replicas (faulty ones may do anything) and report each violation with enough detail to debug
 * the replayed seed.
 *
 * - agreement: no two correct replicas execute different batches at one sequence number;
 * - exactly-once: a correct replica executes each (client, timestamp) at most once;
 * - validity: a client accepts only the result correct replicas computed for its request;
 * - convergence (at the end): correct replicas at the same point have the same state digest.
 */
import type { CompletedRequest, ExecutedBatch } from '@bftrc/core-agreement'

export interface Violation {
  readonly invariant: 'agreement' | 'exactly-once' | 'validity' | 'convergence' | 'liveness' | 'durability' | 'monotonic-time' | 'crash' | 'work' | 'memory' | 'amplification' | 'isolation' | 'hang'
  readonly detail: string
  readonly at: number
}

function hex(d: Uint8Array): string {
  return Buffer.from(d).toString('hex').slice(0, 16)
}

export class Checkers {
  readonly violations: Violation[] = []
  /** seq → batch digest first executed by a correct replica (pruned below every replica's progress). */
  private readonly executedAt = new Map<number, { digest: string; by: string }>()
  /** replica → client → last executed timestamp. */
  private readonly lastTimestamp = new Map<string, Map<string, number>>()
  /** `${client}:${timestamp}` → result digest computed by correct replicas, until the client accepts. */
  private readonly results = new Map<string, string>()
  private readonly lastStamp = new Map<string, number>()
  private static readonly MAX_VIOLATIONS = 50

  constructor(private readonly now: () => number) {}

  private violate(invariant: Violation['invariant'], detail: string): void {
    if (this.violations.length < Checkers.MAX_VIOLATIONS) this.violations.push({ invariant, detail, at: this.now() })
  }

  onExecuted(replica: string, batch: ExecutedBatch): void {
    const digest = hex(batch.digest)
    const first = this.executedAt.get(batch.seq)
    if (first === undefined) this.executedAt.set(batch.seq, { digest, by: replica })
    else if (first.digest !== digest) this.violate('agreement', `seq ${batch.seq}: ${first.by} executed ${first.digest}, ${replica} executed ${digest}`)
    const stamp = this.lastStamp.get(replica) ?? 0
    if (batch.stamp < stamp) this.violate('monotonic-time', `${replica} seq ${batch.seq}: stamp ${batch.stamp} < ${stamp}`)
    this.lastStamp.set(replica, batch.stamp)
    let table = this.lastTimestamp.get(replica)
    if (table === undefined) {
      table = new Map()
      this.lastTimestamp.set(replica, table)
    }
    // A refused request (an open client outside its window, or no row free) executed nothing,
    // but its error result is what the client may accept: the correct replicas must agree on it.
    for (const r of batch.refused) this.expectResult(`${r.client}:${r.timestamp}#refused`, Buffer.from(r.resultDigest).toString('hex'), replica)
    for (const r of batch.requests) {
      const last = table.get(r.client) ?? -1
      if (r.timestamp <= last) this.violate('exactly-once', `${replica} executed ${r.client}:${r.timestamp} after ${r.client}:${last}`)
      table.set(r.client, r.timestamp)
      this.expectResult(`${r.client}:${r.timestamp}`, Buffer.from(r.resultDigest).toString('hex'), replica)
    }
  }

  private expectResult(key: string, digest: string, replica: string): void {
    const known = this.results.get(key)
    if (known === undefined) this.results.set(key, digest)
    else if (known !== digest) this.violate('agreement', `${key}: results differ between correct replicas (${replica})`)
  }

  /** A replica restored older state (restart or state transfer): its per-client history restarts there. */
  onRewind(replica: string): void {
    this.lastTimestamp.delete(replica)
    this.lastStamp.delete(replica)
  }

  onAccepted(client: string, c: CompletedRequest, resultDigest: string): void {
    if (c.readOnly) return
    const key = `${client}:${c.timestamp}`
    const expected = this.results.get(key)
    const refused = this.results.get(`${key}#refused`)
    if (expected === undefined && refused === undefined) this.violate('validity', `${key}: accepted a result no correct replica computed`)
    else if (expected !== resultDigest && refused !== resultDigest) this.violate('validity', `${key}: accepted result differs from the correct replicas'`)
    this.results.delete(key)
    this.results.delete(`${key}#refused`)
  }

  /** Forgets per-seq history every correct replica has passed, so long runs keep flat memory. */
  prune(belowSeq: number): void {
    for (const seq of this.executedAt.keys()) if (seq < belowSeq) this.executedAt.delete(seq)
  }

  fail(invariant: Violation['invariant'], detail: string): void {
    this.violate(invariant, detail)
  }
}
