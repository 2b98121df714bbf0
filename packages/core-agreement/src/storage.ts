/**
 * What a replica must find again after a crash, and the small interface a host persists it with.
 *
 * The replica emits `PersistOp`s in `Ready.persist`; the host applies them durably *before* it
 * sends the messages of the same Ready (persist before you send, as in etcd-io/raft). On restart
 * the host loads a `PersistedState` and hands it to the new replica, which restores the stable
 * checkpoint's state and re-executes the committed entries above it.
 */
import type { QuorumCertificate } from '@bftrc/crypto'
import type { PrePrepare } from './messages.js'

export interface PersistedEntry {
  readonly seq: number
  readonly view: number
  readonly prePrepare: PrePrepare
  /** A prepared certificate was collected (so a commit was sent) in `view`. */
  readonly prepared: boolean
  /**
   * Committed-local: the batch may be executed. Written lazily (with the replica's next write or
   * tick, or `persistHeldWrites`), so a prepared entry may have committed before a crash.
   */
  readonly committed: boolean
  /**
   * The replica's prepared certificate for this slot (2f prepare signatures), for view-change
   * proofs after a restart. It may be from an earlier view than `prePrepare`: a replica keeps
   * its last prepared certificate until it prepares again.
   */
  readonly prepares?: QuorumCertificate
  /** The pre-prepare `prepares` certifies, when it is not `prePrepare` itself. */
  readonly preparedPrePrepare?: PrePrepare
}

export interface PersistedCheckpoint {
  readonly seq: number
  readonly digest: Uint8Array
  /** 2f+1 signatures; absent for the genesis checkpoint. */
  readonly certificate?: QuorumCertificate
  /** The checkpoint state (application snapshot + exactly-once table); `digest` is its `stateRoot`. */
  readonly state: Uint8Array
}

export type PersistOp =
  | { readonly op: 'view'; readonly view: number }
  | { readonly op: 'entry'; readonly entry: PersistedEntry }
  /** A new stable checkpoint: store it, drop entries at or below its seq and older checkpoints. */
  | { readonly op: 'checkpoint'; readonly checkpoint: PersistedCheckpoint }
  /** A slot a NEW-VIEW did not re-issue (never executed here): forget it. */
  | { readonly op: 'forget'; readonly seq: number }

export interface PersistedState {
  readonly view: number
  readonly checkpoint: PersistedCheckpoint
  readonly entries: readonly PersistedEntry[]
}

export interface Storage {
  /** The state to restart from, or undefined for a fresh replica. */
  load(): Promise<PersistedState | undefined>
  /** Applies ops in order, durably, before resolving. */
  apply(ops: readonly PersistOp[]): Promise<void>
  close(): Promise<void>
}

/** In-memory storage: the reference implementation, for tests and the simulator. */
export class MemoryStorage implements Storage {
  private view = 0
  private checkpoint: PersistedCheckpoint | undefined
  private readonly entries = new Map<number, PersistedEntry>()

  async load(): Promise<PersistedState | undefined> {
    return this.loadSync()
  }

  loadSync(): PersistedState | undefined {
    if (this.checkpoint === undefined) return undefined
    return { view: this.view, checkpoint: this.checkpoint, entries: [...this.entries.values()].sort((a, b) => a.seq - b.seq) }
  }

  async apply(ops: readonly PersistOp[]): Promise<void> {
    this.applySync(ops)
  }

  applySync(ops: readonly PersistOp[]): void {
    for (const op of ops) {
      switch (op.op) {
        case 'view':
          this.view = op.view
          break
        case 'entry':
          if (this.checkpoint === undefined || op.entry.seq > this.checkpoint.seq) this.entries.set(op.entry.seq, op.entry)
          break
        case 'forget':
          this.entries.delete(op.seq)
          break
        case 'checkpoint':
          if (this.checkpoint === undefined || op.checkpoint.seq >= this.checkpoint.seq) {
            this.checkpoint = op.checkpoint
            for (const seq of this.entries.keys()) if (seq <= op.checkpoint.seq) this.entries.delete(seq)
          }
          break
      }
    }
  }

  async close(): Promise<void> {}

  /** Entries held: for tests that check garbage collection reaches the disk too. */
  get entryCount(): number {
    return this.entries.size
  }
}
