import { decode, encode, asMap, asUint } from '@bftrc/crypto'
import { describe, expect, it } from 'vitest'
import { type AppContext, type CallContext, type CallRef, type Deferred, type Effect, GroupExecutor, type GroupApp, type WorkflowContext, encodeEvent } from '../src/index.js'

const LIMITS = { callWindow: 4, maxQueuedCalls: 8, maxTimers: 16, maxWorkflows: 4, maxOpBytes: 1024 }
const NO_CERT = { group: 'x', digest: new Uint8Array(32), shares: [] }
const bytes = (s: string) => new TextEncoder().encode(s)
const text = (b: Uint8Array) => new TextDecoder().decode(b)

/** An app that records what it sees, can call, defer, set timers and run a workflow. */
class Probe implements GroupApp {
  log: string[] = []
  deferred: Deferred[] = []
  deferCalls = false
  readonly workflows = {
    steps: function* (w: WorkflowContext, input: Uint8Array) {
      const a: Uint8Array = yield w.invoke('server', input)
      yield w.emit(a)
      yield w.sleep(100)
      const b: Uint8Array = yield w.invoke('server', bytes(`${text(a)}+`))
      if (text(input) === 'again') return b
      yield w.continueAsNew(bytes('again'))
      return undefined
    },
  }
  init(ctx: AppContext) {
    this.log.push(`init@${ctx.now}`)
  }
  onCall(ctx: CallContext, caller: string, op: Uint8Array): Uint8Array | Deferred {
    this.log.push(`call ${caller}:${ctx.k} ${text(op)}`)
    if (this.deferCalls) {
      const d = ctx.defer()
      this.deferred.push(d)
      return d
    }
    return bytes(`r(${text(op)})`)
  }
  onReply(ctx: AppContext, call: CallRef, result: Uint8Array) {
    this.log.push(`reply ${call.callee}:${call.k} ${text(result)}@${ctx.now}`)
  }
  onTimer(ctx: AppContext, id: number, tag: string) {
    this.log.push(`timer ${id} ${tag}@${ctx.now}`)
  }
  onWorkflowEvent(_ctx: AppContext, id: number, event: Uint8Array) {
    this.log.push(`wf ${id} event ${text(event)}`)
  }
  onWorkflowDone(_ctx: AppContext, id: number, result: Uint8Array | undefined) {
    this.log.push(`wf ${id} done ${result === undefined ? '-' : text(result)}`)
  }
  snapshot() {
    return encode({ log: this.log.join('\n') })
  }
  restore(state: Uint8Array) {
    const m = asMap(decode(state))
    this.log = String(m.log).split('\n').filter((l) => l !== '')
  }
}

function drain(x: GroupExecutor): Effect[] {
  const e = x.effects
  x.effects = []
  return e
}

function call(x: GroupExecutor, caller: string, k: number, op: string, seq = 1, stamp = 10) {
  x.beginBatch({ seq, stamp })
  x.executeProposal(encodeEvent({ e: 'call', caller, k, op: bytes(op), cert: NO_CERT }), { seq, stamp })
}

function reply(x: GroupExecutor, callee: string, k: number, result: string, seq = 1, stamp = 10) {
  x.beginBatch({ seq, stamp })
  x.executeProposal(encodeEvent({ e: 'reply', callee, k, result: bytes(result), cert: NO_CERT }), { seq, stamp })
}

describe('GroupExecutor, callee side', () => {
  it('executes each call once and answers duplicates from nothing (exactly once)', () => {
    const app = new Probe()
    const x = new GroupExecutor('server', app, LIMITS)
    call(x, 'client', 1, 'a')
    expect(drain(x).map((e) => e.kind)).toEqual(['call-executed', 'send-reply'])
    call(x, 'client', 1, 'a', 2)
    const again = drain(x)
    expect(again).toEqual([{ kind: 'rejected', code: 'duplicate-call', detail: 'the call was executed before', key: 'call:client:1' }])
    expect(app.log.filter((l) => l.startsWith('call')).length).toBe(1)
    expect(x.callExecuted('client', 1)).toBe(true)
    expect(text(x.cachedReply('client', 1)?.result ?? new Uint8Array())).toBe('r(a)')
  })

  it('admits only calls inside the window W above the executed prefix, and drops old cached replies', () => {
    const x = new GroupExecutor('server', new Probe(), LIMITS)
    call(x, 'client', 5, 'too far')
    expect(drain(x)[0]).toMatchObject({ kind: 'rejected', code: 'call-outside-window' })
    for (let k = 1; k <= 10; k++) call(x, 'client', k, `op${k}`, k)
    expect(x.admits('client', 11)).toBe(true)
    expect(x.admits('client', 15)).toBe(false)
    expect(x.cachedReply('client', 1)).toBeUndefined()
    expect(x.cachedReply('client', 10)).toBeDefined()
    expect(x.sizes().replies).toBeLessThanOrEqual(LIMITS.callWindow)
  })

  it('answers a deferred call when the handler responds later', () => {
    const app = new Probe()
    app.deferCalls = true
    const x = new GroupExecutor('server', app, LIMITS)
    call(x, 'client', 1, 'slow')
    expect(drain(x).map((e) => e.kind)).toEqual(['call-executed'])
    expect(x.cachedReply('client', 1)).toBeUndefined()
    const ctx = (x as unknown as { context(): AppContext }).context()
    ctx.respond(app.deferred[0] as Deferred, bytes('late'))
    expect(drain(x)).toEqual([{ kind: 'send-reply', caller: 'client', k: 1, result: bytes('late') }])
    expect(() => ctx.respond(app.deferred[0] as Deferred, bytes('twice'))).toThrow()
  })
})

describe('GroupExecutor, caller side', () => {
  it('numbers calls per callee, queues beyond the window, and delivers each reply once', () => {
    const app = new Probe()
    const x = new GroupExecutor('client', app, LIMITS)
    x.beginBatch({ seq: 1, stamp: 5 })
    const ctx = (x as unknown as { context(): AppContext }).context()
    const refs = Array.from({ length: 6 }, (_, i) => ctx.call('server', bytes(`c${i}`)))
    expect(refs.map((r) => r.k)).toEqual([1, 2, 3, 4, 5, 6])
    expect(drain(x).filter((e) => e.kind === 'send-call').length).toBe(4)
    expect(x.sizes()).toMatchObject({ outstanding: 4, queued: 2 })
    // Call 2 answers first: the window spans numbers 1..4 while call 1 is undelivered, so
    // nothing new goes out (a callee keeps replies only W numbers back: call 1's must stay).
    reply(x, 'server', 2, 'two', 2, 6)
    expect(drain(x).map((e) => e.kind)).toEqual(['call-delivered'])
    reply(x, 'server', 2, 'two again', 3, 7)
    expect(drain(x)[0]).toMatchObject({ kind: 'rejected', code: 'reply-not-outstanding' })
    // Call 1 answers: the window moves past 1 and 2, and both queued calls go out.
    reply(x, 'server', 1, 'one', 4, 8)
    const effects = drain(x)
    expect(effects.map((e) => e.kind)).toEqual(['call-delivered', 'send-call', 'send-call'])
    expect(effects.slice(1)).toMatchObject([
      { callee: 'server', k: 5 },
      { callee: 'server', k: 6 },
    ])
    expect(app.log.filter((l) => l.startsWith('reply'))).toEqual(['reply server:2 two@6', 'reply server:1 one@8'])
  })

  it('never issues a call W numbers past one still undelivered, however many others complete', () => {
    const app = new Probe()
    const x = new GroupExecutor('client', app, LIMITS)
    x.beginBatch({ seq: 1, stamp: 5 })
    const ctx = (x as unknown as { context(): AppContext }).context()
    for (let i = 0; i < 12; i++) ctx.call('server', bytes(`c${i}`))
    let seq = 2
    const sent = () => drain(x).filter((e) => e.kind === 'send-call').map((e) => (e as { k: number }).k)
    expect(sent()).toEqual([1, 2, 3, 4])
    // Every call but the first is answered, again and again: the window stays at 1..4.
    for (const k of [2, 3, 4]) reply(x, 'server', k, `r${k}`, seq++, 10 + seq)
    expect(sent()).toEqual([])
    expect(x.sizes()).toMatchObject({ outstanding: 1, queued: 8 })
  })

  it('fires timers in agreed-time order at the first batch that reaches them', () => {
    const app = new Probe()
    const x = new GroupExecutor('client', app, LIMITS)
    x.beginBatch({ seq: 1, stamp: 100 })
    const ctx = (x as unknown as { context(): AppContext }).context()
    ctx.setTimer(50, 'b')
    ctx.setTimer(20, 'a')
    const c = ctx.setTimer(30, 'cancelled')
    ctx.cancelTimer(c)
    expect(x.nextTimerAt()).toBe(120)
    x.beginBatch({ seq: 2, stamp: 119 })
    expect(app.log.filter((l) => l.startsWith('timer'))).toEqual([])
    x.beginBatch({ seq: 3, stamp: 200 })
    expect(app.log.filter((l) => l.startsWith('timer'))).toEqual(['timer 2 a@200', 'timer 1 b@200'])
    expect(x.nextTimerAt()).toBeUndefined()
  })
})

describe('workflows', () => {
  function runWorkflow(restoreAt?: number): { x: GroupExecutor; app: Probe } {
    const app = new Probe()
    let cur = { x: new GroupExecutor('client', app, LIMITS), app }
    cur.x.beginBatch({ seq: 1, stamp: 0 })
    ;(cur.x as unknown as { context(): AppContext }).context().startWorkflow('steps', bytes('first'))
    let seq = 2
    for (let step = 0; step < 20; step++) {
      const pending = cur.x.outstandingCalls()
      if (restoreAt === step) {
        const snap = cur.x.snapshot()
        const app2 = new Probe()
        const x2 = new GroupExecutor('client', app2, LIMITS)
        x2.restore(snap)
        expect(x2.snapshot()).toEqual(snap)
        cur = { x: x2, app: app2 }
      }
      if (pending.length > 0) {
        const c = pending[0] as { callee: string; k: number; op: Uint8Array }
        reply(cur.x, c.callee, c.k, `${text(c.op)}!`, seq++, seq * 100)
      } else if (cur.x.nextTimerAt() !== undefined) {
        cur.x.beginBatch({ seq: seq++, stamp: cur.x.nextTimerAt() as number })
      } else break
    }
    return cur
  }

  it('runs a generator workflow through invokes, emits, sleeps and continue-as-new', () => {
    const { app } = runWorkflow()
    const wf = app.log.filter((l) => l.startsWith('wf'))
    expect(wf).toEqual(['wf 1 event first!', 'wf 1 event again!', 'wf 1 done again!+!'])
  })

  it('rebuilds a suspended workflow by replay after snapshot and restore, and ends the same', () => {
    const straight = runWorkflow()
    for (const at of [1, 2, 3, 4]) {
      const restored = runWorkflow(at)
      expect(restored.x.snapshot()).toEqual(straight.x.snapshot())
    }
  })
})

describe('determinism', () => {
  it('gives byte-identical snapshots for identical event sequences', () => {
    const run = () => {
      const x = new GroupExecutor('server', new Probe(), LIMITS)
      for (let k = 1; k <= 6; k++) call(x, k % 2 === 0 ? 'a' : 'b', Math.ceil(k / 2), `op${k}`, k, k * 10)
      return x.snapshot()
    }
    expect(run()).toEqual(run())
    const m = asMap(decode(run()))
    expect(asUint(m.nextTimerId, 'nextTimerId')).toBe(1)
  })
})
