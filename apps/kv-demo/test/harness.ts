/**
 * A deterministic two-group harness for the apps' unit tests: the bank's and the KV's
 * GroupExecutors (client-agreement's real executor, workflows included) joined by a queue of
 * certified calls and replies delivered in a seeded random order, with agreed time advancing.
 * No agreement, no network: it checks the applications, not the protocol.
 */
import { type Effect, GroupExecutor, encodeEvent } from '@bftrc/client-agreement'
import { decode, encode } from '@bftrc/crypto'
import { BankApp } from '../src/bank-app.js'
import { KvApp } from '../src/kv-app.js'
import { Rng } from '../src/rng.js'

const LIMITS = { callWindow: 64, maxQueuedCalls: 10_000, maxTimers: 1000, maxWorkflows: 100, maxOpBytes: 64 * 1024 }
const NO_CERT = { group: 'x', digest: new Uint8Array(32), shares: [] }

interface Delivery {
  readonly to: 'kv' | 'bank'
  readonly payload: Uint8Array
}

export class Harness {
  bank = new BankApp()
  kv = new KvApp()
  bankX = new GroupExecutor('bank', this.bank, LIMITS)
  kvX = new GroupExecutor('kv', this.kv, LIMITS)
  now = 1_000
  private seqs = { kv: 0, bank: 0 }
  private readonly queue: Delivery[] = []
  readonly rng: Rng
  steps = 0
  private timestamp = 1

  constructor(
    seed: number,
    readonly maxDelay = 20,
  ) {
    this.rng = new Rng(seed)
  }

  private batch(group: 'kv' | 'bank') {
    const ctx = { seq: ++this.seqs[group], stamp: this.now }
    const x = group === 'kv' ? this.kvX : this.bankX
    x.beginBatch(ctx)
    return { x, ctx }
  }

  /** An ordered plain-client request, in a batch of its own. */
  request(group: 'kv' | 'bank', op: Uint8Array): Uint8Array {
    const { x, ctx } = this.batch(group)
    const r = x.execute(op, { ...ctx, client: 'tester', timestamp: this.timestamp++ })
    this.collect()
    return r
  }

  requestJson(group: 'kv' | 'bank', op: Record<string, unknown>): Record<string, unknown> {
    return decode(this.request(group, encode(op as never))) as Record<string, unknown>
  }

  private collect(): void {
    for (const [from, x] of [
      ['bank', this.bankX],
      ['kv', this.kvX],
    ] as const) {
      const effects: Effect[] = x.effects
      x.effects = []
      for (const e of effects) {
        if (e.kind === 'send-call') this.queue.push({ to: e.callee as 'kv', payload: encodeEvent({ e: 'call', caller: from, k: e.k, op: e.op, cert: NO_CERT }) })
        else if (e.kind === 'send-reply') this.queue.push({ to: e.caller as 'bank', payload: encodeEvent({ e: 'reply', callee: from, k: e.k, result: e.result, cert: NO_CERT }) })
        else if (e.kind === 'rejected') throw new Error(`${from} rejected: ${e.code}: ${e.detail}`)
      }
    }
  }

  /** Delivers one queued event (chosen at random), or fires the next timer. False when idle. */
  step(): boolean {
    this.steps++
    this.now += this.rng.int(1, this.maxDelay)
    if (this.queue.length > 0) {
      const i = this.rng.int(0, this.queue.length - 1)
      const d = this.queue.splice(i, 1)[0] as Delivery
      const { x, ctx } = this.batch(d.to)
      x.executeProposal(d.payload, ctx)
      this.collect()
      return true
    }
    const at = this.bankX.nextTimerAt()
    if (at === undefined) return false
    if (this.now < at) this.now = at
    const { x, ctx } = this.batch('bank')
    x.executeProposal(encodeEvent({ e: 'tick', at: this.now }), ctx)
    this.collect()
    return true
  }

  runUntilIdle(maxSteps = 1_000_000): void {
    for (let i = 0; i < maxSteps; i++) if (!this.step()) return
    throw new Error('harness did not go idle')
  }

  /** Replaces both executors by fresh ones restored from their snapshots (a restart). */
  restart(): void {
    const bankState = this.bankX.snapshot()
    const kvState = this.kvX.snapshot()
    this.bank = new BankApp()
    this.kv = new KvApp()
    this.bankX = new GroupExecutor('bank', this.bank, LIMITS)
    this.kvX = new GroupExecutor('kv', this.kv, LIMITS)
    this.bankX.restore(bankState)
    this.kvX.restore(kvState)
  }
}
