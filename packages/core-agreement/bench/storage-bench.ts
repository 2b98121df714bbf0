/**
 * Durable write rate of LevelStorage (a benchmark, not a test): `pnpm bench:storage`.
 *
 * A typical Ready.persist of a replica in the normal case is one `entry` op (the slot's
 * pre-prepare, then again when it prepares and when it commits). Here: a pre-prepare of 16
 * requests of 128 B plus a 2f prepare certificate, ~3.5 KB encoded. Printed, medians of 3 runs:
 *   - awaited one at a time (the latency-bound rate of a host that waits for each apply);
 *   - 8 callers at once (group commit coalesces what arrives during a write);
 *   - a checkpoint op with a 64 KiB state that also deletes the 4 entries below it (its latency);
 *   - the same pre-encoded entry with classic-level directly, sync on and off.
 * Options: BENCH_SECONDS (per run, default 1.5), BENCH_DIR (default the OS temp dir).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { type QuorumCertificate, encode, sha256 } from '@bftrc/crypto'
import { ClassicLevel } from 'classic-level'
import type { PersistOp, PersistedEntry, PrePrepare } from '../src/index.js'
import { LevelStorage } from '../src/storage/level-storage.js'
import { encodeEntry, entryKey } from '../src/storage/records.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? '1.5')
const BASE = process.env.BENCH_DIR ?? tmpdir()
const RUNS = 3

function sig(label: string): Uint8Array {
  const out = new Uint8Array(64)
  out.set(sha256(encode({ label, i: 0 })), 0)
  out.set(sha256(encode({ label, i: 1 })), 32)
  return out
}

function prePrepare(seq: number): PrePrepare {
  return {
    t: 'pre-prepare',
    view: 0,
    seq,
    batch: {
      stamp: 1_700_000_000_000 + seq,
      requests: Array.from({ length: 16 }, (_, i) => ({ client: `client-${i}`, timestamp: seq * 16 + i, op: new Uint8Array(128).fill(i), readOnly: false, signature: sig(`r${seq}/${i}`) })),
    },
    signature: sig(`pp${seq}`),
  }
}

const CERT: QuorumCertificate = { group: 'g', digest: sha256(encode({ c: 1 })), shares: [1, 2].map((signer) => ({ signer, signature: sig(`s${signer}`) })) }

function entryAt(seq: number): PersistedEntry {
  return { seq, view: 0, prePrepare: prePrepare(seq), prepared: true, committed: seq % 3 === 0, prepares: CERT }
}

const ENTRY_BYTES = encodeEntry(entryAt(1)).length

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

/** Runs `body` for SECONDS in a fresh folder; body returns the number of operations it completed. */
async function timed(body: (dir: string, until: number) => Promise<number>): Promise<number> {
  const rates: number[] = []
  for (let r = 0; r < RUNS; r++) {
    const dir = mkdtempSync(join(BASE, 'bftrc-bench-'))
    try {
      const start = performance.now()
      const n = await body(dir, start + SECONDS * 1000)
      rates.push(n / ((performance.now() - start) / 1000))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
  return median(rates)
}

async function withStorage(dir: string, fn: (s: LevelStorage) => Promise<number>): Promise<number> {
  const s = await LevelStorage.open(dir)
  await s.apply([{ op: 'checkpoint', checkpoint: { seq: 0, digest: sha256(new Uint8Array(0)), state: new Uint8Array(0) } }])
  try {
    return await fn(s)
  } finally {
    await s.close()
  }
}

// Entries are pre-built so the figures measure the store, not the generator.
const POOL = Array.from({ length: 512 }, (_, i) => entryAt(i + 1))
const op = (seq: number): PersistOp => ({ op: 'entry', entry: { ...(POOL[seq % POOL.length] as PersistedEntry), seq, prePrepare: { ...(POOL[seq % POOL.length] as PersistedEntry).prePrepare, seq } } })

const awaited = await timed((dir, until) =>
  withStorage(dir, async (s) => {
    let n = 0
    while (performance.now() < until) await s.apply([op(++n)])
    return n
  }),
)

let concurrentWrites = 0
const concurrent = await timed((dir, until) =>
  withStorage(dir, async (s) => {
    let n = 0
    const db = (s as unknown as { db: ClassicLevel<Uint8Array, Uint8Array> }).db
    const batch = db.batch.bind(db)
    let writes = 0
    ;(db as unknown as { batch: typeof batch }).batch = ((...args: Parameters<typeof batch>) => {
      writes++
      return batch(...args)
    }) as typeof batch
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (performance.now() < until) await s.apply([op(++n)])
      }),
    )
    concurrentWrites = Math.max(concurrentWrites, n / Math.max(writes, 1))
    return n
  }),
)

/** Milliseconds of one checkpoint apply (64 KiB state, deleting the 4 entries written before it). */
const checkpointMs: number[] = []
await timed((dir, until) =>
  withStorage(dir, async (s) => {
    let n = 0
    let seq = 0
    while (performance.now() < until) {
      for (let i = 0; i < 4; i++) await s.apply([op(++seq)])
      const state = new Uint8Array(64 * 1024).fill(n & 0xff)
      const cp: PersistOp = { op: 'checkpoint', checkpoint: { seq, digest: sha256(state), state, certificate: CERT } }
      const t = performance.now()
      await s.apply([cp])
      checkpointMs.push(performance.now() - t)
      n++
    }
    return n
  }),
)

async function raw(sync: boolean): Promise<number> {
  return timed(async (dir, until) => {
    const db = new ClassicLevel<Uint8Array, Uint8Array>(dir, { keyEncoding: 'view', valueEncoding: 'view' })
    await db.open()
    const value = encodeEntry(entryAt(1))
    let n = 0
    while (performance.now() < until) await db.batch([{ type: 'put', key: entryKey(++n), value }], { sync })
    await db.close()
    return n
  })
}
const rawSync = await raw(true)
const rawNoSync = await raw(false)

const row = (name: string, rate: number, note = '') => console.log(`${name.padEnd(58)} ${rate.toFixed(0).padStart(8)} /s  ${note}`)
console.log(`LevelStorage on ${BASE}, Node ${process.version}, entry record ${ENTRY_BYTES} B, median of ${RUNS} runs of ${SECONDS} s`)
row('apply([entry]) awaited one at a time', awaited, 'durable batches/s')
row('apply([entry]) from 8 callers at once', concurrent, `durable applies/s (≈${concurrentWrites.toFixed(1)} applies per synced write)`)
row('apply([checkpoint 64 KiB state, GC of 4 entries])', 1000 / median(checkpointMs), `checkpoint batches/s (median ${median(checkpointMs).toFixed(2)} ms each)`)
row('classic-level db.batch([put]) sync: true, pre-encoded', rawSync, 'the store alone: LevelStorage minus encoding')
row('classic-level db.batch([put]) sync: false, pre-encoded', rawNoSync, 'not durable: what the fdatasync costs')
