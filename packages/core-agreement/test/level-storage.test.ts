import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { encode, sha256 } from '@bftrc/crypto'
import { ClassicLevel } from 'classic-level'
import fc from 'fast-check'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { MemoryStorage, type PersistOp } from '../src/index.js'
import { LevelStorage, StorageClosedError, StorageCorruptError, StorageLockedError, StorageWriteError } from '../src/storage/level-storage.js'
import { FORMAT, encodeEntry, entryKey } from '../src/storage/records.js'
import { checkpoint, checkpointOp, crashBatch, entry, entryOp, fakeCertificate, fakePrePrepare, removeDir, tempDir, viewOp } from './helpers/storage-ops.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/storage-child.ts', import.meta.url))
const PKG = fileURLToPath(new URL('..', import.meta.url))

const dirs: string[] = []
const children: ChildProcess[] = []
function dir(): string {
  const d = tempDir()
  dirs.push(d)
  return d
}
afterEach(() => {
  vi.restoreAllMocks()
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  for (const d of dirs.splice(0)) removeDir(d)
})

type RawDb = ClassicLevel<Uint8Array, Uint8Array>
/** Opens the folder with plain classic-level, outside LevelStorage, to look at or damage the disk. */
async function raw<T>(location: string, fn: (db: RawDb) => Promise<T>): Promise<T> {
  const db: RawDb = new ClassicLevel<Uint8Array, Uint8Array>(location, { keyEncoding: 'view', valueEncoding: 'view' })
  await db.open()
  try {
    return await fn(db)
  } finally {
    await db.close()
  }
}

async function keysOnDisk(location: string): Promise<number[][]> {
  return raw(location, async (db) => (await db.keys().all()).map((k) => [...k]))
}

function entryKeysOf(keys: number[][]): number[] {
  return keys.filter((k) => k[0] === 0x10).map((k) => Buffer.from(k).readUIntBE(3, 6))
}

async function applyAll(storage: { apply(ops: readonly PersistOp[]): Promise<void> }, batches: readonly PersistOp[][]): Promise<void> {
  for (const b of batches) await storage.apply(b)
}

function reference(batches: readonly PersistOp[][]): MemoryStorage {
  const mem = new MemoryStorage()
  for (const b of batches) mem.applySync(b)
  return mem
}

// ---- arbitraries ----

const opArb: fc.Arbitrary<PersistOp> = fc.oneof(
  fc.nat(6).map(viewOp),
  fc
    .record({
      seq: fc.integer({ min: 1, max: 24 }),
      view: fc.nat(3),
      tag: fc.nat(1000),
      prepared: fc.boolean(),
      committed: fc.boolean(),
      withCert: fc.boolean(),
      // The certificate is for an older pre-prepare of the slot (re-issued or learned since).
      certifiesOlder: fc.boolean(),
      requests: fc.nat(3),
    })
    .map(({ seq, view, tag, prepared, committed, withCert, certifiesOlder, requests }) =>
      entryOp({
        seq,
        view: view + 1,
        prePrepare: fakePrePrepare(seq, view + 1, tag, requests),
        prepared,
        committed,
        ...(withCert ? { prepares: fakeCertificate(`p/${seq}/${tag}`, [1, 3]) } : {}),
        ...(withCert && certifiesOlder ? { preparedPrePrepare: fakePrePrepare(seq, view, tag + 1, requests) } : {}),
      }),
    ),
  fc.record({ seq: fc.nat(24), state: fc.uint8Array({ maxLength: 48 }), certified: fc.boolean() }).map(({ seq, state, certified }) => checkpointOp(checkpoint(seq, state, certified))),
  fc.integer({ min: 1, max: 24 }).map((seq): PersistOp => ({ op: 'forget', seq })),
)
const batchesArb = fc.array(fc.array(opArb, { maxLength: 6 }), { maxLength: 8 })

describe('LevelStorage', () => {
  it('round trip: after close and reopen, load() equals what MemoryStorage holds for the same ops', async () => {
    const location = dir()
    const batches: PersistOp[][] = [
      [checkpointOp(checkpoint(0)), viewOp(0)],
      [entryOp(entry(1, 0, 1)), entryOp(entry(2, 0, 1, { prepared: false }))],
      [entryOp(entry(1, 0, 1, { committed: true })), viewOp(2), entryOp(entry(3, 2, 5, { requests: 3 }))],
    ]
    const storage = await LevelStorage.open(location)
    expect(await storage.load()).toBeUndefined()
    await applyAll(storage, batches)
    await storage.close()
    const reopened = await LevelStorage.open(location)
    const loaded = await reopened.load()
    expect(loaded).toEqual(reference(batches).loadSync())
    expect(loaded?.entries.map((e) => e.seq)).toEqual([1, 2, 3])
    expect(loaded?.entries[0]?.committed).toBe(true)
    expect(reopened.entryCount).toBe(3)
    await reopened.close()
  })

  it('property: any op sequence, applied one call at a time or all at once, loads like MemoryStorage', async () => {
    await fc.assert(
      fc.asyncProperty(batchesArb, fc.boolean(), async (batches, concurrent) => {
        const location = tempDir()
        try {
          const mem = reference(batches)
          const storage = await LevelStorage.open(location)
          if (concurrent) await Promise.all(batches.map((b) => storage.apply(b)))
          else await applyAll(storage, batches)
          expect(await storage.load()).toEqual(mem.loadSync())
          expect(storage.entryCount).toBe(mem.entryCount)
          await storage.close()
          const reopened = await LevelStorage.open(location)
          expect(await reopened.load()).toEqual(mem.loadSync())
          expect(reopened.entryCount).toBe(mem.entryCount)
          await reopened.close()
          expect(entryKeysOf(await keysOnDisk(location))).toHaveLength(mem.entryCount)
        } finally {
          removeDir(location)
        }
      }),
      { numRuns: 25 },
    )
  })

  it('garbage collection: a checkpoint deletes the entries at or below it from disk, in the same batch', async () => {
    const location = dir()
    const storage = await LevelStorage.open(location)
    await storage.apply([checkpointOp(checkpoint(0))])
    for (let seq = 1; seq <= 10; seq++) await storage.apply([entryOp(entry(seq, 0, seq, { committed: true }))])
    await storage.apply([checkpointOp(checkpoint(6)), entryOp(entry(5, 0, 99))]) // 5 arrives after the checkpoint: ignored
    expect(storage.entryCount).toBe(4)
    await storage.close()
    let keys = await keysOnDisk(location)
    expect(entryKeysOf(keys)).toEqual([7, 8, 9, 10])
    expect(keys.filter((k) => k.length === 1).map((k) => k[0])).toEqual([0x00, 0x02, 0x03]) // meta, one checkpoint header, its state

    const again = await LevelStorage.open(location)
    expect(again.entryCount).toBe(4)
    await again.apply([checkpointOp(checkpoint(10))])
    await again.apply([checkpointOp(checkpoint(8))]) // older than the stored one: ignored, like MemoryStorage
    expect((await again.load())?.checkpoint.seq).toBe(10)
    await again.close()
    keys = await keysOnDisk(location)
    expect(entryKeysOf(keys)).toEqual([])
    expect(keys).toHaveLength(3)
  })

  describe('corruption is reported, never accepted', () => {
    async function stored(): Promise<string> {
      const location = dir()
      const storage = await LevelStorage.open(location)
      await storage.apply([checkpointOp(checkpoint(4, new Uint8Array(300).fill(7))), viewOp(1)])
      await storage.apply([entryOp(entry(5, 1, 5)), entryOp(entry(6, 1, 6))])
      await storage.close()
      return location
    }

    async function loadError(location: string): Promise<StorageCorruptError> {
      let storage: LevelStorage | undefined
      try {
        storage = await LevelStorage.open(location)
        await storage.load()
      } catch (err) {
        expect(err).toBeInstanceOf(StorageCorruptError)
        return err as StorageCorruptError
      } finally {
        await storage?.close()
      }
      throw new Error('loaded a damaged store without an error')
    }

    const cases: Array<[string, string, (db: RawDb) => Promise<void>]> = [
      ['garbage under an entry key', 'entry/5', (db) => db.put(entryKey(5), Uint8Array.of(0xde, 0xad, 0xbe, 0xef))],
      ['an empty entry value', 'entry/6', (db) => db.put(entryKey(6), new Uint8Array(0))],
      ['an entry record stored under another seq', 'entry/6', (db) => db.put(entryKey(6), encodeEntry(entry(7, 1, 7)))],
      ['an entry at or below the checkpoint', 'entry/3', (db) => db.put(entryKey(3), encodeEntry(entry(3, 1, 3)))],
      ['an entry whose pre-prepare is not one', 'entry/5', (db) => db.put(entryKey(5), encode({ seq: 5, view: 1, prePrepare: encode({ t: 'commit' }), prepared: false, committed: false }))],
      [
        'a flipped byte in the checkpoint state',
        'checkpoint-state',
        async (db) => {
          const state = (await db.get(Uint8Array.of(0x03))) as Uint8Array
          const flipped = Uint8Array.from(state)
          flipped[123] = (flipped[123] as number) ^ 0x01
          await db.put(Uint8Array.of(0x03), flipped)
        },
      ],
      ['a truncated checkpoint state', 'checkpoint-state', async (db) => db.put(Uint8Array.of(0x03), new Uint8Array(299).fill(7))],
      ['a missing checkpoint state', 'checkpoint-state', (db) => db.del(Uint8Array.of(0x03))],
      ['a view that is not a number', 'view', (db) => db.put(Uint8Array.of(0x01), encode({ view: 'two' }))],
      ['an unknown key', '0x7f01', (db) => db.put(Uint8Array.of(0x7f, 0x01), Uint8Array.of(1))],
      ['a malformed entry key', '0x1001', (db) => db.put(Uint8Array.of(0x10, 0x01), Uint8Array.of(1))],
      ['a checkpoint header that does not decode', 'checkpoint', (db) => db.put(Uint8Array.of(0x02), Uint8Array.of(8, 1))],
      ['a meta record of another format', 'meta', (db) => db.put(Uint8Array.of(0x00), encode({ format: 'something-else', version: 1 }))],
      ['a meta record of format version 1 (checkpoint digests were sha256 of the state)', 'meta', (db) => db.put(Uint8Array.of(0x00), encode({ format: FORMAT, version: 1 }))],
      ['a missing meta record', 'meta', (db) => db.del(Uint8Array.of(0x00))],
    ]
    it.each(cases)('%s → StorageCorruptError naming %s', async (_name, key, damage) => {
      const location = await stored()
      await raw(location, damage)
      const err = await loadError(location)
      expect(err.key).toBe(key)
      expect(err.message).toContain(key)
    })

    it('a damaged record in the middle of LevelDB\'s write-ahead log → StorageCorruptError at this open and every later one', async () => {
      const location = dir()
      const storage = await LevelStorage.open(location)
      for (let i = 0; i < 10; i++) await storage.apply(crashBatch(i))
      await storage.close()
      const log = readdirSync(location).find((f) => f.endsWith('.log')) as string
      const bytes = readFileSync(join(location, log))
      expect(bytes.length).toBeGreaterThan(20_000)
      const at = Math.floor(bytes.length / 2)
      bytes[at] = (bytes[at] as number) ^ 0xff
      writeFileSync(join(location, log), bytes)
      // LevelDB skips the damaged records, replays the others and rewrites its log: only this open can see it.
      for (let open = 0; open < 2; open++) {
        const err = await LevelStorage.open(location).then(
          async (s) => {
            await s.close()
            return undefined
          },
          (e: unknown) => e,
        )
        expect(err).toBeInstanceOf(StorageCorruptError)
        expect((err as StorageCorruptError).key).toBe('leveldb-log')
      }
    })

    it('an undamaged store loads', async () => {
      const location = await stored()
      const storage = await LevelStorage.open(location)
      const state = await storage.load()
      expect(state?.entries.map((e) => e.seq)).toEqual([5, 6])
      expect(state?.view).toBe(1)
      await storage.close()
    })
  })

  it('refuses ops that could not be read back, before writing anything', async () => {
    const storage = await LevelStorage.open(dir())
    const bad = checkpoint(4)
    await expect(storage.apply([viewOp(3), checkpointOp({ ...bad, digest: sha256(Uint8Array.of(1)) })])).rejects.toThrow(RangeError)
    // The digest is the chunk-tree root of the state, not its plain sha256.
    await expect(storage.apply([viewOp(3), checkpointOp({ ...bad, digest: sha256(bad.state) })])).rejects.toThrow(RangeError)
    await expect(storage.apply([entryOp({ ...entry(5, 0, 5), prePrepare: fakePrePrepare(6, 0, 5) })])).rejects.toThrow(RangeError)
    await expect(storage.apply([viewOp(-1)])).rejects.toThrow(RangeError)
    await expect(storage.apply([viewOp(1.5)])).rejects.toThrow(RangeError)
    expect(await storage.load()).toBeUndefined()
    await storage.apply([checkpointOp(checkpoint(0))])
    expect((await storage.load())?.view).toBe(0) // the refused view 3 was not written
    await storage.close()
  })

  it('durability: every write is a db.batch (or put) with sync: true, one batch per awaited apply', async () => {
    const batch = vi.spyOn(ClassicLevel.prototype, 'batch')
    const put = vi.spyOn(ClassicLevel.prototype, 'put')
    const storage = await LevelStorage.open(dir())
    for (let i = 0; i < 6; i++) await storage.apply(crashBatch(i))
    await storage.close()
    expect(batch).toHaveBeenCalledTimes(6)
    for (const call of batch.mock.calls as unknown[][]) expect(call[1]).toMatchObject({ sync: true })
    expect(put).toHaveBeenCalledTimes(1) // the format marker of a new folder
    for (const call of put.mock.calls as unknown[][]) expect(call[2]).toMatchObject({ sync: true })
  })

  // Only where strace exists and may trace (ptrace can be forbidden in containers).
  const strace = spawnSync('strace', ['-f', '-qq', '-e', 'trace=fdatasync', 'true'], { encoding: 'utf8' }).status === 0
  if (!strace) console.warn('skipping the strace durability check: strace is missing or cannot trace here')
  it.skipIf(!strace)('durability: the kernel sees an fdatasync per apply (strace)', async () => {
    const location = dir()
    const n = 10
    const r = spawnSync('strace', ['-f', '-qq', '-e', 'trace=fdatasync,fsync', process.execPath, '--import', 'tsx', FIXTURE, 'sync', location, String(n)], {
      cwd: PKG,
      encoding: 'utf8',
      timeout: 20_000,
    })
    expect(r.stdout).toContain('done')
    const syncs = r.stderr.split('\n').filter((l) => /\b(fdatasync|fsync)\(/.test(l) && !l.includes('unfinished')).length
    // One per apply at least (LevelDB also syncs its MANIFEST and the format marker's put).
    expect(syncs).toBeGreaterThanOrEqual(n)
  })

  it('coalesces calls made while a write is in flight; promises resolve in call order', async () => {
    const batch = vi.spyOn(ClassicLevel.prototype, 'batch')
    const storage = await LevelStorage.open(dir())
    const batches = Array.from({ length: 40 }, (_, i) => crashBatch(i))
    const order: number[] = []
    await Promise.all(batches.map((b, i) => storage.apply(b).then(() => order.push(i))))
    expect(order).toEqual(batches.map((_, i) => i))
    expect(batch.mock.calls.length).toBeLessThan(40)
    expect(await storage.load()).toEqual(reference(batches).loadSync())
    await storage.close()
  })

  it('after a failed write it refuses every later one (StorageWriteError)', async () => {
    const storage = await LevelStorage.open(dir())
    await storage.apply(crashBatch(0))
    const batch = vi.spyOn(ClassicLevel.prototype, 'batch').mockRejectedValueOnce(new Error('EIO'))
    const failed = storage.apply(crashBatch(1))
    const queued = storage.apply(crashBatch(2))
    await expect(failed).rejects.toBeInstanceOf(StorageWriteError)
    await expect(queued).rejects.toBeInstanceOf(StorageWriteError)
    await expect(storage.apply(crashBatch(3))).rejects.toBeInstanceOf(StorageWriteError)
    expect(batch).toHaveBeenCalledTimes(1)
    await storage.close()
  })

  it('rejects use after close', async () => {
    const storage = await LevelStorage.open(dir())
    await storage.close()
    await storage.close()
    await expect(storage.apply([viewOp(1)])).rejects.toBeInstanceOf(StorageClosedError)
    await expect(storage.load()).rejects.toBeInstanceOf(StorageClosedError)
  })

  it('a folder held by another open store in this process is refused (StorageLockedError)', async () => {
    const location = dir()
    const first = await LevelStorage.open(location)
    await expect(LevelStorage.open(location)).rejects.toBeInstanceOf(StorageLockedError)
    await first.close()
    const second = await LevelStorage.open(location)
    await second.close()
  })

  it('a folder held by another process is refused (StorageLockedError) until that process dies', async () => {
    const location = dir()
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, 'hold', location], { cwd: PKG, stdio: ['ignore', 'pipe', 'inherit'] })
    children.push(child)
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (d: Buffer) => d.toString().includes('ready') && resolve())
      child.on('exit', (code) => reject(new Error(`holder exited with ${code}`)))
    })
    const err = await LevelStorage.open(location).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(StorageLockedError)
    expect((err as StorageLockedError).location).toBe(location)
    const exited = new Promise((resolve) => child.on('exit', resolve))
    child.kill('SIGKILL')
    await exited
    const storage = await LevelStorage.open(location)
    expect(await storage.load()).toBeUndefined()
    await storage.close()
  })
})
