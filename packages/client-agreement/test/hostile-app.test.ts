/**
 * Application code that misbehaves does so alike on every correct replica. Whatever it does
 * (throw from any handler, return a result over the limit or not bytes, fill the call queue or
 * the timer table from a workflow, fail to snapshot), the executor turns it into the same
 * deterministic outcome on all of them and keeps running: it never throws out of the batch (which
 * used to stop every correct replica at one batch, and again on replay after a restart).
 */
import { encode, generateCluster } from '@bftrc/crypto'
import { describe, expect, it } from 'vitest'
import { type AppContext, type Effect, GroupExecutor, type GroupApp, Voter, type WorkflowContext } from '../src/index.js'

const LIMITS = { callWindow: 4, maxQueuedCalls: 2, maxTimers: 2, maxWorkflows: 16, maxOpBytes: 1024 }
const bytes = (s: string) => new TextEncoder().encode(s)
const text = (b: Uint8Array | undefined) => (b === undefined ? '-' : new TextDecoder().decode(b))
const GROUPS = new Set(['client', 'server'])

/** A workflow per way of failing; `log` records what reached the app. */
class Breaker implements GroupApp {
  log: string[] = []
  init?: (ctx: AppContext) => void
  throwOnEvent = false
  throwOnDone = false
  snapshotFails = false
  readonly workflows = {
    hugeCall: function* (w: WorkflowContext) {
      yield w.invoke('server', new Uint8Array(LIMITS.maxOpBytes + 1))
      return bytes('unreachable')
    },
    unknownGroup: function* (w: WorkflowContext) {
      yield w.invoke('nobody', bytes('x'))
      return bytes('unreachable')
    },
    manyCalls: function* (w: WorkflowContext) {
      // One workflow waits on one call at a time, so fill the queue from several workflows.
      yield w.invoke('server', bytes('one'))
      return bytes('done')
    },
    manySleeps: function* (w: WorkflowContext) {
      yield w.sleep(1_000)
      return bytes('slept')
    },
    badSleep: function* (w: WorkflowContext) {
      yield w.sleep(Number.NaN)
      return bytes('unreachable')
    },
    notACommand: function* () {
      yield 42 as never
      return bytes('unreachable')
    },
    emits: function* (w: WorkflowContext) {
      yield w.emit(bytes('hello'))
      return bytes('emitted')
    },
  }
  onWorkflowEvent(_ctx: AppContext, id: number, event: Uint8Array) {
    if (this.throwOnEvent) throw new Error(`event handler broke on ${text(event)} (${id})`)
    this.log.push(`event ${id} ${text(event)}`)
  }
  onWorkflowDone(_ctx: AppContext, id: number, result: Uint8Array | undefined) {
    if (this.throwOnDone) throw new Error(`done handler broke (${id})`)
    this.log.push(`done ${id} ${text(result)}`)
  }
  onTimer(ctx: AppContext, _id: number, tag: string) {
    if (tag === 'far') ctx.setTimer(2 ** 60, 'too far')
  }
  snapshot() {
    if (this.snapshotFails) throw new Error('cannot snapshot')
    return encode({ log: this.log.join('\n') })
  }
  restore() {}
}

/** A fresh executor whose first batch runs `body` as the app's init (where it may start workflows and timers). */
function run(app: Breaker, body: (ctx: AppContext) => void): { x: GroupExecutor; effects: Effect[] } {
  app.init = body
  const x = new GroupExecutor('client', app, LIMITS, undefined, GROUPS)
  x.beginBatch({ seq: 1, stamp: 10 })
  const effects = x.effects
  x.effects = []
  return { x, effects }
}

describe('a workflow whose command is refused ends with an error result, on every replica alike (was: the exception escaped the batch)', () => {
  it.each([
    ['hugeCall', /invoke refused: operation exceeds 1024 bytes/],
    ['unknownGroup', /invoke refused: no group nobody/],
    ['badSleep', /sleep refused: a timer delay is a number/],
    ['notACommand', /not a workflow command/],
  ])('%s', (name, expected) => {
    const app = new Breaker()
    const { effects } = run(app, (ctx) => ctx.startWorkflow(name, new Uint8Array(0)))
    expect(app.log).toHaveLength(1)
    expect(app.log[0]).toMatch(/^done 1 error: /)
    expect(app.log[0]).toMatch(expected)
    expect(effects.filter((e) => e.kind === 'send-call')).toEqual([])
  })

  it('a full call queue and a full timer table end the workflows that overflow them, the others go on', () => {
    const app = new Breaker()
    run(app, (ctx) => {
      // callWindow 4 + maxQueuedCalls 2: the seventh call overflows.
      for (let i = 0; i < 7; i++) ctx.startWorkflow('manyCalls', new Uint8Array(0))
      // maxTimers 2: the third sleep overflows.
      for (let i = 0; i < 3; i++) ctx.startWorkflow('manySleeps', new Uint8Array(0))
    })
    expect(app.log).toEqual(['done 7 error: invoke refused: more than 2 calls queued for server', 'done 10 error: sleep refused: more than 2 timers'])
  })
})

describe('application handlers that throw become rejections with a bounded code', () => {
  it('a throwing onWorkflowEvent or onWorkflowDone is contained (was: it escaped Voter.step on every replica)', () => {
    const app = new Breaker()
    app.throwOnEvent = true
    app.throwOnDone = true
    const { effects } = run(app, (ctx) => ctx.startWorkflow('emits', new Uint8Array(0)))
    const rejected = effects.filter((e): e is Extract<Effect, { kind: 'rejected' }> => e.kind === 'rejected')
    expect(rejected.map((e) => e.code)).toEqual(['handler-threw', 'handler-threw'])
    expect(rejected.map((e) => e.detail)).toEqual(['onWorkflowEvent: event handler broke on hello (1)', 'onWorkflowDone: done handler broke (1)'])
  })

  it('a timer too far in the future is refused when it is set, not when the checkpoint cannot encode it', () => {
    const app = new Breaker()
    const { x } = run(app, (ctx) => ctx.setTimer(5, 'far'))
    x.beginBatch({ seq: 2, stamp: 20 })
    const rejected = x.effects.filter((e): e is Extract<Effect, { kind: 'rejected' }> => e.kind === 'rejected')
    expect(rejected.map((e) => e.code)).toEqual(['handler-threw'])
    expect(() => x.snapshot()).not.toThrow()
  })

  it('an application whose snapshot throws halts execution, with the reason, instead of throwing at every checkpoint', () => {
    const app = new Breaker()
    const { x } = run(app, () => {})
    app.snapshotFails = true
    expect(() => x.snapshot()).not.toThrow()
    expect(x.halted()).toMatch(/the application's snapshot failed: cannot snapshot/)
  })

  it('counters of rejections are keyed by a fixed set of codes, however many different messages the application throws (was: one counter per exception message)', () => {
    const cluster = generateCluster({ groups: [{ name: 'client', f: 1 }, { name: 'server', f: 1 }], seed: new Uint8Array(32).fill(4) })
    let n = 0
    const app: GroupApp = {
      onTimer: () => {
        throw new Error(`failure number ${n++}`)
      },
      init: (ctx) => {
        for (let i = 0; i < 200; i++) ctx.setTimer(i, `t${i}`)
      },
      snapshot: () => new Uint8Array(0),
      restore: () => {},
    }
    const voter = new Voter({ membership: cluster.membership, self: 'client/0', keyPair: cluster.keys.get('client/0')!, app, config: { maxTimers: 1000 } })
    // Execute ordered batches directly through the voter's executor (the order is not the point here).
    voter.executor.beginBatch({ seq: 1, stamp: 0 })
    voter.executor.beginBatch({ seq: 2, stamp: 1_000 })
    ;(voter as unknown as { drain(): void }).drain()
    const rejectedKeys = [...voter.counters.keys()].filter((k) => k.startsWith('rejected.'))
    expect(n).toBe(200)
    expect(rejectedKeys).toEqual(['rejected.handler-threw'])
    expect(voter.counters.get('rejected.handler-threw')).toBe(200)
  })
})
