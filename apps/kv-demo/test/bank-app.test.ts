import { decode, encode } from '@bftrc/crypto'
import { describe, expect, it } from 'vitest'
import { ACCOUNT_PREFIX, type BankReport, accountKey, auditAccounts, formatAccount, parseAccount } from '../src/bank-app.js'
import { decodeKvResult, kv } from '../src/kv-app.js'
import { Harness } from './harness.js'

function report(h: Harness): BankReport {
  const r = decode(h.request('bank', encode({ op: 'report' }))) as { ok: boolean; report: string }
  expect(r.ok).toBe(true)
  return JSON.parse(r.report) as BankReport
}

function kvTotal(h: Harness): number {
  return h.kv
    .entries()
    .filter(([k]) => k.startsWith(ACCOUNT_PREFIX))
    .reduce((sum, [, v]) => sum + (parseAccount(v)?.balance ?? Number.NaN), 0)
}

describe('audit of a scan', () => {
  const a = accountKey(0, 0)
  const b = accountKey(0, 1)
  const c = accountKey(1, 0)
  const d = accountKey(1, 1)
  const accounts = [a, b, c, d]
  const v = (balance: number, tx = 0, from?: string, to?: string, amount?: number) => formatAccount(tx === 0 ? { balance, tx } : { balance, tx, from: from as string, to: to as string, amount: amount as number })

  it('accepts a consistent state', () => {
    expect(auditAccounts([[a, v(100)], [b, v(100)], [c, v(100)], [d, v(100)]], accounts, 400)).toEqual({ ok: true, total: 400, inFlight: 0 })
  })

  it('allows for one half-done transfer per lane (source written, destination not yet)', () => {
    const out = auditAccounts([[a, v(90, 1, a, b, 10)], [b, v(100)], [c, v(95, 3, c, d, 5)], [d, v(100, 2, d, c, 0)]], accounts, 400)
    expect(out).toEqual({ ok: true, total: 385, inFlight: 2 })
    expect(auditAccounts([[a, v(90, 1, a, b, 10)], [b, v(110, 1, a, b, 10)], [c, v(100)], [d, v(100)]], accounts, 400)).toEqual({ ok: true, total: 400, inFlight: 0 })
  })

  it('catches a changed total, a missing account, an unreadable one, and a destination written first', () => {
    expect(auditAccounts([[a, v(101)], [b, v(100)], [c, v(100)], [d, v(100)]], accounts, 400)).toMatchObject({ ok: false, reason: expect.stringContaining('total 401') })
    expect(auditAccounts([[a, v(100)], [b, v(100)], [c, v(100)]], accounts, 400)).toMatchObject({ ok: false, reason: expect.stringContaining('missing') })
    expect(auditAccounts([[a, 'garbage'], [b, v(100)], [c, v(100)], [d, v(100)]], accounts, 400)).toMatchObject({ ok: false, reason: expect.stringContaining('unreadable') })
    expect(auditAccounts([[a, v(100)], [b, v(110, 1, a, b, 10)], [c, v(100)], [d, v(100)]], accounts, 400)).toMatchObject({ ok: false, reason: expect.stringContaining('without leaving') })
  })

  it('account values round-trip and refuse malformed text', () => {
    const x = { balance: 5, tx: 7, from: a, to: b, amount: 3 }
    expect(parseAccount(formatAccount(x))).toEqual(x)
    for (const bad of ['', '{}', '{"balance":-1,"tx":0}', '{"balance":1.5,"tx":0}', '{"balance":1,"tx":2}', 'null']) expect(parseAccount(bad)).toBeUndefined()
  })
})

describe('bank workload against the KV app (deterministic harness, calls delivered in random order)', () => {
  it.each([1, 2, 3, 4, 5])('seed %i: every transfer completes, every audit holds, nothing acknowledged is lost', (seed) => {
    const h = new Harness(seed)
    const run = h.requestJson('bank', { op: 'run', transfers: 60 })
    expect(run).toMatchObject({ ok: true, target: 60 })
    h.runUntilIdle()
    const r = report(h)
    expect(r.phase).toBe('done')
    expect(r.completed).toBe(60)
    expect(r.expectedTotal).toBe(16 * 1000)
    expect(r.audits.runs).toBeGreaterThan(0)
    expect(r.audits.failed).toBe(0)
    expect(r.audits.failures).toEqual([])
    expect(r.final).toMatchObject({ ok: true, lost: 0, total: 16000 })
    expect(r.ackedWrites).toBeGreaterThanOrEqual(16 + 60 * 2 + 60 - r.skipped * 3)
    expect(r.syncCalls).toBeGreaterThanOrEqual(16 + 60 * 4 - r.skipped * 4)
    expect(r.asyncCalls).toBeGreaterThan(60)
    expect(kvTotal(h)).toBe(16000)
    // Every acknowledged value is in the store.
    const store = new Map(h.kv.entries().map(([k, v]) => [k, v]))
    for (const [k, v] of r.expected) expect(store.get(k)).toBe(v)
  })

  it('is deterministic: the same inputs give byte-identical states', () => {
    const a = new Harness(7)
    const b = new Harness(7)
    for (const h of [a, b]) {
      h.request('bank', encode({ op: 'run', transfers: 30, lanes: 2, accountsPerLane: 3 }))
      h.runUntilIdle()
    }
    expect(Buffer.from(a.bankX.snapshot()).equals(Buffer.from(b.bankX.snapshot()))).toBe(true)
    expect(Buffer.from(a.kvX.snapshot()).equals(Buffer.from(b.kvX.snapshot()))).toBe(true)
    expect(report(a).expectedTotal).toBe(6000)
  })

  it('restarts from snapshots mid-run (workflows replayed from their history) and ends in the same state', () => {
    const straight = new Harness(11)
    const restarted = new Harness(11)
    for (const h of [straight, restarted]) h.request('bank', encode({ op: 'run', transfers: 50 }))
    for (let i = 0; i < 2000 && straight.step(); i++) {
      restarted.step()
      if (i % 97 === 0) restarted.restart()
    }
    straight.runUntilIdle()
    restarted.runUntilIdle()
    expect(report(restarted).final).toMatchObject({ ok: true, lost: 0 })
    expect(Buffer.from(straight.bankX.snapshot()).equals(Buffer.from(restarted.bankX.snapshot()))).toBe(true)
    expect(Buffer.from(straight.kvX.snapshot()).equals(Buffer.from(restarted.kvX.snapshot()))).toBe(true)
  })

  it('a second run request extends the workload', () => {
    const h = new Harness(3)
    h.request('bank', encode({ op: 'run', transfers: 10 }))
    h.runUntilIdle()
    expect(report(h)).toMatchObject({ phase: 'done', completed: 10 })
    h.request('bank', encode({ op: 'run', transfers: 15 }))
    h.runUntilIdle()
    expect(report(h)).toMatchObject({ phase: 'done', completed: 25, target: 25, final: { ok: true, lost: 0 } })
  })

  it('a stop request gives up the transfers not handed to a lane; the ones in flight complete', () => {
    const h = new Harness(4)
    // 2 lanes, chunk 2: a lane is handed at most 4 transfers at a time.
    expect(h.requestJson('bank', { op: 'run', transfers: 1000, lanes: 2, chunk: 2 })).toMatchObject({ ok: true, target: 1000 })
    for (let i = 0; i < 400; i++) h.step()
    const before = report(h)
    expect(before.phase).toBe('running')
    expect(before.config?.chunk).toBe(2)
    const stop = h.requestJson('bank', { op: 'stop' })
    expect(stop.ok).toBe(true)
    const target = stop.target as number
    // At most 2 lanes × 2 × chunk transfers were handed out but not completed.
    expect(target - before.completed).toBeLessThanOrEqual(8)
    expect(stop.dropped).toBe(1000 - target)
    h.runUntilIdle()
    const after = report(h)
    expect(after).toMatchObject({ phase: 'done', target, completed: target, final: { ok: true, lost: 0 } })
    expect(after.audits.failed).toBe(0)
    // A later run continues from there.
    h.request('bank', encode({ op: 'run', transfers: 3 }))
    h.runUntilIdle()
    expect(report(h)).toMatchObject({ phase: 'done', completed: target + 3, final: { ok: true } })
  })

  it('a stop before any run, or after the workload ended, changes nothing', () => {
    const h = new Harness(6)
    expect(h.requestJson('bank', { op: 'stop' })).toMatchObject({ ok: true, target: 0, dropped: 0, phase: 'idle' })
    h.request('bank', encode({ op: 'run', transfers: 5 }))
    h.runUntilIdle()
    expect(h.requestJson('bank', { op: 'stop' })).toMatchObject({ ok: true, target: 5, completed: 5, dropped: 0, phase: 'done' })
  })

  it('detects money created by someone else (an audit fails, the final check fails)', () => {
    const h = new Harness(5)
    h.request('bank', encode({ op: 'run', transfers: 40 }))
    for (let i = 0; i < 300; i++) h.step()
    const key = accountKey(2, 1)
    const current = parseAccount(h.kv.entries().find(([k]) => k === key)?.[1] as string)
    expect(current).toBeDefined()
    // An outside writer (a plain client) adds 1000 to an account.
    const r = decodeKvResult(h.request('kv', kv.put(key, formatAccount({ ...current!, balance: current!.balance + 1000 }))))
    expect(r.ok).toBe(true)
    h.runUntilIdle()
    const rep = report(h)
    expect(rep.audits.failed + (rep.final?.ok === false ? 1 : 0)).toBeGreaterThan(0)
    expect(rep.final?.ok).toBe(false)
  })

  it('detects a lost acknowledged write', () => {
    const h = new Harness(9)
    h.request('bank', encode({ op: 'run', transfers: 20 }))
    for (let i = 0; i < 5000; i++) {
      if (!h.step()) break
      const rep = report(h)
      if (rep.phase === 'final-audit' || rep.phase === 'done') break
    }
    // Remove a log record the bank saw acknowledged, before the final scan reads it.
    const rep = report(h)
    const logged = rep.expected.find(([k]) => k.startsWith('bank/log/'))
    expect(logged).toBeDefined()
    h.request('kv', kv.del(logged![0]))
    h.runUntilIdle()
    const after = report(h)
    if (after.final?.lost === 0) {
      // The final scan ran before the delete: the supervisor's own check would see it instead.
      expect(new Map(h.kv.entries().map(([k, v]) => [k, v])).has(logged![0])).toBe(false)
    } else expect(after.final).toMatchObject({ ok: false, lost: 1 })
  })

  it('refuses malformed requests without changing state', () => {
    const h = new Harness(1)
    const before = Buffer.from(h.bankX.snapshot())
    for (const bad of [{ op: 'run' }, { op: 'run', transfers: -1 }, { op: 'run', transfers: 'x' }, { op: 'nope' }, { op: 'run', transfers: 1, lanes: 99 }, { op: 'run', transfers: 1, chunk: 0 }, { op: 'run', transfers: 1, chunk: 65 }]) {
      expect(h.requestJson('bank', bad).ok).toBe(false)
    }
    expect(h.requestJson('bank', { op: 'run', transfers: 1, lanes: 1, accountsPerLane: 1 }).ok).toBe(false)
    const garbage = decode(h.request('bank', new Uint8Array([0xff, 1, 2]))) as { ok: boolean }
    expect(garbage.ok).toBe(false)
    // Batches advanced the executor's own state (seq, time); the app's state is unchanged.
    expect(report(h).phase).toBe('idle')
    expect(before.length).toBeGreaterThan(0)
  })
})
