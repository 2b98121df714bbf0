/**
 * `LevelStorage`: the durable `Storage` of a real replica host, on LevelDB (`classic-level`).
 *
 * This module does I/O and lives outside the deterministic core: the state machine never imports
 * it (it is published under the `@bftrc/core-agreement/level-storage` subpath, not from the
 * package index). One LevelDB folder per replica; LevelDB's LOCK file keeps a second process out.
 *
 * Durability: every `apply` is written as part of ONE atomic `db.batch(…, { sync: true })`, which
 * resolves only after LevelDB's own fdatasync, so what `apply` acknowledged is on disk and a crash
 * leaves each `apply` either wholly present or wholly absent. Calls made while a write is in
 * flight are coalesced into the next batch (group commit); promises resolve in call order, and
 * each resolution means every earlier call is durable too.
 *
 * Semantics are those of `MemoryStorage` (the reference): `entry` upserts by seq unless the seq is
 * at or below the stored checkpoint; `checkpoint` is taken when its seq is at least the stored
 * one's, and deletes the entries at or below it in the same batch (an in-memory index of stored
 * seqs finds them without a scan). See records.ts for the key layout.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { DEFAULT_LIMITS, type MessageLimits } from '../limits.js'
import { stateRoot } from '../merkle.js'
import { encodeMessage } from '../messages.js'
import type { PersistOp, PersistedCheckpoint, PersistedEntry, PersistedState, Storage } from '../storage.js'
import { StorageClosedError, StorageCorruptError, StorageLockedError, StorageWriteError } from './errors.js'
import {
  CHECKPOINT_KEY,
  CHECKPOINT_STATE_KEY,
  ENTRY_END,
  ENTRY_FIRST,
  META_KEY,
  POISON_KEY,
  VIEW_KEY,
  type CheckpointHeader,
  checkMeta,
  decodeCheckpointHeader,
  decodeEntry,
  decodePoison,
  decodeView,
  encodeCheckpointHeader,
  encodeEntry,
  encodeMeta,
  encodePoison,
  encodeView,
  entryKey,
  entrySeqOf,
  keyName,
  plain,
} from './records.js'

export { StorageClosedError, StorageCorruptError, StorageLockedError, StorageWriteError } from './errors.js'

export interface LevelStorageOptions {
  /**
   * Limits that stored pre-prepares are validated against on load: pass the replica's
   * `config.limits` (what the replica accepted under its limits must read back under them).
   */
  readonly limits?: MessageLimits
}

type Db = ClassicLevel<Uint8Array, Uint8Array>
type BatchOp = { type: 'put'; key: Uint8Array; value: Uint8Array } | { type: 'del'; key: Uint8Array }

/** A PersistOp checked and encoded at `apply` time, so the write path cannot fail on bad input. */
type Encoded =
  | { readonly op: 'view'; readonly value: Uint8Array }
  | { readonly op: 'entry'; readonly seq: number; readonly value: Uint8Array }
  | { readonly op: 'checkpoint'; readonly seq: number; readonly header: Uint8Array; readonly state: Uint8Array }
  | { readonly op: 'forget'; readonly seq: number }

interface Waiter {
  readonly ops: readonly Encoded[]
  readonly resolve: () => void
  readonly reject: (err: unknown) => void
}

/** Most ops coalesced into one batch (calls are never split). */
const MAX_GROUP_OPS = 4096

function isLocked(err: unknown): boolean {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e !== undefined && e !== null && depth < 4; e = e.cause as never, depth++) {
    if (e.code === 'LEVEL_LOCKED') return true
  }
  return false
}

/**
 * What LevelDB's info log (`LOG`, rewritten at every open) says it dropped while replaying its
 * write-ahead log: classic-level cannot turn on `paranoid_checks`, so a damaged record in the
 * middle of the log is skipped with only this line to show for it, and the records after it are
 * applied. (A torn or zero-filled tail, as a crash leaves it, is skipped without such a line.)
 */
function droppedOnRecovery(location: string): string | undefined {
  let log: string
  try {
    log = readFileSync(join(location, 'LOG'), 'utf8')
  } catch {
    return undefined
  }
  return log.split('\n').find((line) => /\bdropping \d+ bytes\b|\bCorruption:/.test(line))
}

function isUint(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

export class LevelStorage implements Storage {
  private closed = false
  private failure: StorageWriteError | undefined
  private readonly waiting: Waiter[] = []
  private writing = false
  private drained: Promise<void> = Promise.resolve()

  private constructor(
    /** The LevelDB folder. */
    readonly location: string,
    private readonly db: Db,
    private readonly limits: MessageLimits,
    /** Seq of the stored checkpoint; undefined before the first one. */
    private checkpointSeq: number | undefined,
    /** Seqs of the stored entries (the index that garbage collection deletes by). */
    private entrySeqs: Set<number>,
  ) {}

  /**
   * Opens (creating if missing) the replica's store in `location`. Throws StorageLockedError if
   * another process holds the folder, StorageCorruptError if LevelDB reports (now or at an earlier
   * open) that it dropped damaged records of its log, or if the format marker, checkpoint header or
   * entry keys are unreadable. Record bodies are validated by `load()`.
   */
  static async open(location: string, options: LevelStorageOptions = {}): Promise<LevelStorage> {
    const db: Db = new ClassicLevel<Uint8Array, Uint8Array>(location, { keyEncoding: 'view', valueEncoding: 'view', createIfMissing: true })
    try {
      await db.open()
    } catch (err) {
      if (isLocked(err)) throw new StorageLockedError(location, { cause: err })
      throw err
    }
    try {
      // A damaged write-ahead log: LevelDB has already dropped the bad records and rewritten the
      // rest, so this open is the only one that can tell. Mark the store, so every later open
      // refuses it too: its contents are no longer what was acknowledged.
      const dropped = droppedOnRecovery(location)
      if (dropped !== undefined) await db.put(POISON_KEY, encodePoison(dropped.trim()), { sync: true })
      const poison = await db.get(POISON_KEY)
      if (poison !== undefined) throw new StorageCorruptError('leveldb-log', `LevelDB dropped damaged records of its log: ${decodePoison(poison)}`)
      const meta = await db.get(META_KEY)
      if (meta === undefined) {
        const [first] = await db.keys({ limit: 1 }).all()
        if (first !== undefined) throw new StorageCorruptError('meta', `missing, yet the folder holds ${keyName(plain(first))}`)
        await db.put(META_KEY, encodeMeta(), { sync: true })
      } else {
        checkMeta(meta)
      }
      const header = await db.get(CHECKPOINT_KEY)
      const checkpointSeq = header === undefined ? undefined : decodeCheckpointHeader(header).seq
      const seqs = new Set<number>()
      for await (const raw of db.keys({ gte: ENTRY_FIRST, lt: ENTRY_END })) {
        const key = plain(raw)
        const seq = entrySeqOf(key)
        if (seq === undefined) throw new StorageCorruptError(keyName(key), 'not a well-formed entry key')
        seqs.add(seq)
      }
      return new LevelStorage(location, db, options.limits ?? DEFAULT_LIMITS, checkpointSeq, seqs)
    } catch (err) {
      await db.close()
      throw err
    }
  }

  /** Entries held on disk (per the index): for tests that check garbage collection. */
  get entryCount(): number {
    return this.entrySeqs.size
  }

  /**
   * Reads and validates everything in the folder, in one LevelDB snapshot taken after the writes
   * already submitted have finished. Throws StorageCorruptError naming the first bad record.
   */
  async load(): Promise<PersistedState | undefined> {
    if (this.closed) throw new StorageClosedError(`storage ${this.location} is closed`)
    await this.drained
    let meta = false
    let view: number | undefined
    let header: CheckpointHeader | undefined
    let state: Uint8Array | undefined
    const entries: PersistedEntry[] = []
    for await (const [rawKey, rawValue] of this.db.iterator()) {
      const key = plain(rawKey)
      const value = plain(rawValue)
      if (equalBytes(key, META_KEY)) {
        checkMeta(value)
        meta = true
      } else if (equalBytes(key, VIEW_KEY)) view = decodeView(value)
      else if (equalBytes(key, CHECKPOINT_KEY)) header = decodeCheckpointHeader(value)
      else if (equalBytes(key, CHECKPOINT_STATE_KEY)) state = value.slice()
      else if (entrySeqOf(key) !== undefined) entries.push(decodeEntry(key, value, this.limits))
      else if (equalBytes(key, POISON_KEY)) throw new StorageCorruptError('leveldb-log', `LevelDB dropped damaged records of its log: ${decodePoison(value)}`)
      else throw new StorageCorruptError(keyName(key), 'unknown key')
    }
    if (!meta) throw new StorageCorruptError('meta', 'missing')
    if (header === undefined) {
      if (state !== undefined) throw new StorageCorruptError('checkpoint', 'missing, yet a checkpoint state is stored')
      return undefined
    }
    if (state === undefined) throw new StorageCorruptError('checkpoint-state', 'missing')
    if (state.length !== header.stateLength) throw new StorageCorruptError('checkpoint-state', `${state.length} bytes, the header says ${header.stateLength}`)
    if (!equalBytes(stateRoot(state), header.digest)) throw new StorageCorruptError('checkpoint-state', 'its chunk-tree root differs from the checkpoint digest')
    for (const e of entries) {
      if (e.seq <= header.seq) throw new StorageCorruptError(`entry/${e.seq}`, `at or below the stored checkpoint ${header.seq} (garbage collection deletes those atomically)`)
    }
    const checkpoint: PersistedCheckpoint = {
      seq: header.seq,
      digest: header.digest,
      ...(header.certificate !== undefined ? { certificate: header.certificate } : {}),
      state,
    }
    return { view: view ?? 0, checkpoint, entries }
  }

  /**
   * Applies `ops` in order, durably: resolves once they (and every earlier call) are synced to
   * disk in one atomic batch. Throws RangeError, before writing anything, on an op that could not
   * be read back; after a failed write every call rejects with that StorageWriteError.
   */
  apply(ops: readonly PersistOp[]): Promise<void> {
    if (this.closed) return Promise.reject(new StorageClosedError(`storage ${this.location} is closed`))
    if (this.failure !== undefined) return Promise.reject(this.failure)
    let encoded: Encoded[]
    try {
      encoded = ops.map((op) => this.encodeOp(op))
    } catch (err) {
      return Promise.reject(err)
    }
    if (encoded.length === 0 && !this.writing) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ ops: encoded, resolve, reject })
      if (!this.writing) {
        this.writing = true
        this.drained = this.flush()
      }
    })
  }

  /** Waits for submitted writes, then closes the database. Later calls reject with StorageClosedError. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.drained
    await this.db.close()
  }

  private encodeOp(op: PersistOp): Encoded {
    switch (op.op) {
      case 'view':
        if (!isUint(op.view)) throw new RangeError(`view ${op.view} is not a safe unsigned integer`)
        return { op: 'view', value: encodeView(op.view) }
      case 'entry': {
        const e = op.entry
        if (!isUint(e.seq) || !isUint(e.view)) throw new RangeError(`entry seq ${e.seq} / view ${e.view} is not a safe unsigned integer`)
        if (e.prePrepare.t !== 'pre-prepare' || e.prePrepare.seq !== e.seq) throw new RangeError(`entry ${e.seq} holds a pre-prepare for seq ${e.prePrepare.seq}`)
        const ppBytes = encodeMessage(e.prePrepare)
        if (ppBytes.length > this.limits.maxMessageBytes) throw new RangeError(`entry ${e.seq}: pre-prepare of ${ppBytes.length} bytes exceeds limits.maxMessageBytes`)
        return { op: 'entry', seq: e.seq, value: encodeEntry(e, ppBytes) }
      }
      case 'checkpoint': {
        const cp = op.checkpoint
        if (!isUint(cp.seq)) throw new RangeError(`checkpoint seq ${cp.seq} is not a safe unsigned integer`)
        if (!equalBytes(stateRoot(cp.state), cp.digest)) throw new RangeError(`checkpoint ${cp.seq}: the chunk-tree root of its state differs from its digest`)
        return { op: 'checkpoint', seq: cp.seq, header: encodeCheckpointHeader(cp), state: cp.state }
      }
      case 'forget':
        if (!isUint(op.seq)) throw new RangeError(`forget seq ${op.seq} is not a safe unsigned integer`)
        return { op: 'forget', seq: op.seq }
      default:
        throw new RangeError(`unknown persist op ${(op as { op: unknown }).op}`)
    }
  }

  /** Writes the waiting calls, a group at a time, until none is left. Never throws. */
  private async flush(): Promise<void> {
    try {
      while (this.waiting.length > 0) {
        let count = 0
        let take = 0
        while (take < this.waiting.length && (take === 0 || count + (this.waiting[take] as Waiter).ops.length <= MAX_GROUP_OPS)) {
          count += (this.waiting[take] as Waiter).ops.length
          take++
        }
        const group = this.waiting.splice(0, take)
        const plan = this.plan(group)
        try {
          if (plan.batch.length > 0) await this.db.batch(plan.batch, { sync: true })
        } catch (err) {
          this.failure = new StorageWriteError(`durable write to ${this.location} failed; the store refuses further writes`, { cause: err })
          for (const w of group) w.reject(this.failure)
          for (const w of this.waiting.splice(0)) w.reject(this.failure)
          return
        }
        this.checkpointSeq = plan.checkpointSeq
        this.entrySeqs = plan.entrySeqs
        for (const w of group) w.resolve()
      }
    } finally {
      this.writing = false
    }
  }

  /** The batch for a group of calls, and the index as it will be once the batch is written. */
  private plan(group: readonly Waiter[]): { batch: BatchOp[]; checkpointSeq: number | undefined; entrySeqs: Set<number> } {
    const batch: BatchOp[] = []
    let checkpointSeq = this.checkpointSeq
    let entrySeqs = this.entrySeqs
    let copied = false
    const own = (): Set<number> => {
      if (!copied) {
        entrySeqs = new Set(entrySeqs)
        copied = true
      }
      return entrySeqs
    }
    for (const w of group) {
      for (const op of w.ops) {
        switch (op.op) {
          case 'view':
            batch.push({ type: 'put', key: VIEW_KEY, value: op.value })
            break
          case 'entry':
            if (checkpointSeq === undefined || op.seq > checkpointSeq) {
              batch.push({ type: 'put', key: entryKey(op.seq), value: op.value })
              own().add(op.seq)
            }
            break
          case 'checkpoint':
            if (checkpointSeq === undefined || op.seq >= checkpointSeq) {
              checkpointSeq = op.seq
              batch.push({ type: 'put', key: CHECKPOINT_KEY, value: op.header })
              batch.push({ type: 'put', key: CHECKPOINT_STATE_KEY, value: op.state })
              for (const seq of [...entrySeqs]) {
                if (seq <= op.seq) {
                  batch.push({ type: 'del', key: entryKey(seq) })
                  own().delete(seq)
                }
              }
            }
            break
          case 'forget':
            if (entrySeqs.has(op.seq)) {
              batch.push({ type: 'del', key: entryKey(op.seq) })
              own().delete(op.seq)
            }
            break
        }
      }
    }
    return { batch, checkpointSeq, entrySeqs }
  }
}
