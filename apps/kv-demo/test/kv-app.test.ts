import { encode } from '@bftrc/crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { KvApp, KvError, type KvOp, type KvResult, MAX_KEY_BYTES, MAX_SCAN_RESULT_BYTES, MAX_VALUE_BYTES, decodeKvOp, decodeKvResult, encodeKvOp, kv } from '../src/kv-app.js'

function run(app: KvApp, op: Uint8Array, readOnly = false): KvResult {
  return decodeKvResult(app.execute(op, readOnly))
}

describe('KV operations', () => {
  it('get, put, del', () => {
    const app = new KvApp()
    expect(run(app, kv.get('a'))).toEqual({ ok: true, op: 'get', found: false })
    expect(run(app, kv.put('a', '1'))).toEqual({ ok: true, op: 'put', rev: 1 })
    expect(run(app, kv.get('a'))).toEqual({ ok: true, op: 'get', found: true, value: '1', rev: 1 })
    expect(run(app, kv.put('a', '2'))).toEqual({ ok: true, op: 'put', rev: 2 })
    expect(run(app, kv.del('a'))).toEqual({ ok: true, op: 'del', found: true, rev: 3 })
    expect(run(app, kv.del('a'))).toEqual({ ok: true, op: 'del', found: false, rev: 3 })
    expect(run(app, kv.get('a'))).toEqual({ ok: true, op: 'get', found: false })
    expect(app.size).toBe(0)
  })

  it('compare-and-set: absent, present, mismatch, delete', () => {
    const app = new KvApp()
    expect(run(app, kv.cas('k', 'x', 'y'))).toEqual({ ok: true, op: 'cas', swapped: false, current: null, rev: 0 })
    expect(run(app, kv.cas('k', null, 'v1'))).toEqual({ ok: true, op: 'cas', swapped: true, current: 'v1', rev: 1 })
    expect(run(app, kv.cas('k', null, 'v2'))).toEqual({ ok: true, op: 'cas', swapped: false, current: 'v1', rev: 1 })
    expect(run(app, kv.cas('k', 'v0', 'v2'))).toEqual({ ok: true, op: 'cas', swapped: false, current: 'v1', rev: 1 })
    expect(run(app, kv.cas('k', 'v1', 'v2'))).toEqual({ ok: true, op: 'cas', swapped: true, current: 'v2', rev: 2 })
    expect(run(app, kv.cas('k', 'v2', null))).toEqual({ ok: true, op: 'cas', swapped: true, current: null, rev: 3 })
    expect(run(app, kv.get('k'))).toMatchObject({ found: false })
    // absent → absent is a swap that writes nothing
    expect(run(app, kv.cas('k', null, null))).toEqual({ ok: true, op: 'cas', swapped: true, current: null, rev: 3 })
    // the empty string is a value, not absence
    expect(run(app, kv.cas('e', null, ''))).toMatchObject({ swapped: true })
    expect(run(app, kv.cas('e', null, 'x'))).toMatchObject({ swapped: false, current: '' })
    expect(run(app, kv.cas('e', '', 'x'))).toMatchObject({ swapped: true })
  })

  it('prefix scan in key order, with after, limit and paging', () => {
    const app = new KvApp()
    for (const k of ['b/2', 'a/1', 'b/1', 'b/10', 'c', 'b/3', 'b']) run(app, kv.put(k, k.toUpperCase()))
    const keys = (r: KvResult) => (r.ok && r.op === 'scan' ? r.entries.map((e) => e[0]) : [])
    expect(keys(run(app, kv.scan('b/')))).toEqual(['b/1', 'b/10', 'b/2', 'b/3'])
    expect(keys(run(app, kv.scan('')))).toEqual(['a/1', 'b', 'b/1', 'b/10', 'b/2', 'b/3', 'c'])
    expect(keys(run(app, kv.scan('b/', 'b/10')))).toEqual(['b/2', 'b/3'])
    expect(keys(run(app, kv.scan('b/', 'a')))).toEqual(['b/1', 'b/10', 'b/2', 'b/3'])
    const page = run(app, kv.scan('b/', undefined, 2))
    expect(page).toMatchObject({ ok: true, more: true, next: 'b/10' })
    expect(keys(page)).toEqual(['b/1', 'b/10'])
    expect(run(app, kv.scan('b/', 'b/10', 2))).toMatchObject({ more: false })
    expect(keys(run(app, kv.scan('zz')))).toEqual([])
  })

  it('a scan result stays under the result cap, whatever the values', () => {
    const app = new KvApp()
    const big = 'x'.repeat(MAX_VALUE_BYTES)
    for (let i = 0; i < 20; i++) run(app, kv.put(`k${String(i).padStart(2, '0')}`, big))
    let after: string | undefined
    let seen = 0
    for (;;) {
      const bytes = app.execute(kv.scan('k', after, 1000), true)
      expect(bytes.length).toBeLessThan(MAX_SCAN_RESULT_BYTES + 2048)
      const r = decodeKvResult(bytes)
      if (!r.ok || r.op !== 'scan') throw new Error('scan failed')
      expect(r.entries.length).toBeGreaterThan(0)
      seen += r.entries.length
      if (!r.more) break
      after = r.next
    }
    expect(seen).toBe(20)
  })

  it('refuses malformed operations with a clear error and changes nothing', () => {
    const app = new KvApp()
    run(app, kv.put('a', '1'))
    const before = Buffer.from(app.snapshot())
    const bad: unknown[] = [
      { op: 'get' },
      { op: 'get', key: '' },
      { op: 'get', key: 'x'.repeat(MAX_KEY_BYTES + 1) },
      { op: 'put', key: 'a' },
      { op: 'put', key: 'a', value: 1 },
      { op: 'put', key: 'a', value: 'x'.repeat(MAX_VALUE_BYTES + 1) },
      { op: 'cas', key: 'a', value: 'x' },
      { op: 'scan', prefix: 'a', limit: 0 },
      { op: 'scan', prefix: 'a', limit: 5000 },
      { op: 'put', key: 'a', value: 'b', extra: 1 },
      { op: 'drop-table' },
      { nothing: true },
    ]
    for (const op of bad) {
      const r = run(app, encode(op as never))
      expect(r.ok, JSON.stringify(op)).toBe(false)
      expect(() => encodeKvOp(op as KvOp)).toThrow()
    }
    expect(run(app, new Uint8Array([0xff, 0, 1]))).toMatchObject({ ok: false })
    expect(run(app, new Uint8Array(0))).toMatchObject({ ok: false })
    expect(Buffer.from(app.snapshot()).equals(before)).toBe(true)
  })

  it('read-only execution answers reads and refuses writes', () => {
    const app = new KvApp()
    run(app, kv.put('a', '1'))
    expect(run(app, kv.get('a'), true)).toMatchObject({ ok: true, found: true, value: '1' })
    expect(run(app, kv.scan(''), true)).toMatchObject({ ok: true })
    expect(run(app, kv.put('a', '2'), true)).toMatchObject({ ok: false, error: 'put is not read-only' })
    expect(run(app, kv.get('a'))).toMatchObject({ value: '1' })
  })

  it('decodeKvOp names the problem', () => {
    expect(() => decodeKvOp(encode({ op: 'cas', key: 'a', value: null }))).toThrow(KvError)
    expect(() => decodeKvOp(encode({ op: 'frobnicate' }))).toThrow(/unknown operation/)
  })
})

const opArb = fc.oneof(
  fc.record({ op: fc.constant('get' as const), key: fc.constantFrom('a', 'b', 'ab', 'b/1', 'c') }),
  fc.record({ op: fc.constant('put' as const), key: fc.constantFrom('a', 'b', 'ab', 'b/1', 'c'), value: fc.string({ maxLength: 8 }) }),
  fc.record({ op: fc.constant('del' as const), key: fc.constantFrom('a', 'b', 'ab', 'b/1', 'c') }),
  fc.record({ op: fc.constant('cas' as const), key: fc.constantFrom('a', 'b', 'c'), expect: fc.option(fc.constantFrom('', 'x', 'y'), { nil: null }), value: fc.option(fc.constantFrom('', 'x', 'y'), { nil: null }) }),
  fc.record({ op: fc.constant('scan' as const), prefix: fc.constantFrom('', 'a', 'b', 'b/') }),
)

describe('KV determinism', () => {
  it('equal operation sequences give equal results and byte-identical snapshots; restore continues identically', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 60 }), fc.nat(60), (ops, cut) => {
        const a = new KvApp()
        const b = new KvApp()
        const encoded = ops.map((o) => encodeKvOp(o as KvOp))
        const k = Math.min(cut, encoded.length)
        for (const op of encoded.slice(0, k)) expect(Buffer.from(a.execute(op, false))).toEqual(Buffer.from(b.execute(op, false)))
        // b restarts from a's snapshot into a fresh app
        const c = new KvApp()
        c.restore(b.snapshot())
        expect(Buffer.from(c.snapshot())).toEqual(Buffer.from(a.snapshot()))
        for (const op of encoded.slice(k)) expect(Buffer.from(c.execute(op, false))).toEqual(Buffer.from(a.execute(op, false)))
        expect(Buffer.from(c.snapshot())).toEqual(Buffer.from(a.snapshot()))
        expect(c.contentDigest()).toBe(a.contentDigest())
      }),
      { numRuns: 200 },
    )
  })

  it('a reference model agrees with the app', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 80 }), (ops) => {
        const app = new KvApp()
        const model = new Map<string, string>()
        for (const o of ops as KvOp[]) {
          const r = run(app, encodeKvOp(o))
          if (!r.ok) throw new Error(r.error)
          if (o.op === 'put') model.set(o.key, o.value)
          if (o.op === 'del') model.delete(o.key)
          if (o.op === 'get') expect(r.op === 'get' && r.found ? r.value : undefined).toBe(model.get(o.key))
          if (o.op === 'cas') {
            const cur = model.get(o.key) ?? null
            expect(r.op === 'cas' && r.swapped).toBe(cur === o.expect)
            if (cur === o.expect) {
              if (o.value === null) model.delete(o.key)
              else model.set(o.key, o.value)
            }
          }
          if (o.op === 'scan') {
            const want = [...model.keys()].filter((k) => k.startsWith(o.prefix)).sort()
            expect(r.op === 'scan' ? r.entries.map((e) => e[0]) : []).toEqual(want)
          }
        }
      }),
      { numRuns: 200 },
    )
  })

  it('restore refuses a damaged state', () => {
    const app = new KvApp()
    expect(() => app.restore(encode({ v: 1, rev: 2, ops: 2, entries: [['b', '1', 1], ['a', '2', 2]] }))).toThrow(/out of order/)
    expect(() => app.restore(encode({ v: 2, rev: 0, ops: 0, entries: [] }))).toThrow(KvError)
    expect(() => app.restore(new Uint8Array([1, 2, 3]))).toThrow(KvError)
  })
})
