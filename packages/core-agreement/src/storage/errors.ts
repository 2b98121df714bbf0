/** Typed failures of the on-disk storage, so a host can tell a bad disk from a busy folder. */

/** A record read from disk is malformed, inconsistent or fails its digest. Never silently accepted. */
export class StorageCorruptError extends Error {
  override readonly name = 'StorageCorruptError'
  constructor(
    /** The record's key: `meta`, `view`, `checkpoint`, `checkpoint-state`, `entry/<seq>`, `leveldb-log` (LevelDB dropped damaged log records), or hex. */
    readonly key: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`storage record ${key} is corrupt: ${reason}`, options)
  }
}

/** The folder is held by another process (or another open store in this one): LevelDB's LOCK. */
export class StorageLockedError extends Error {
  override readonly name = 'StorageLockedError'
  constructor(
    readonly location: string,
    options?: { cause?: unknown },
  ) {
    super(`storage folder ${location} is locked by another process or open store`, options)
  }
}

/**
 * A durable write failed. The store refuses every later write: after a failed sync nobody can say
 * what reached the disk, so the replica must stop and restart from what `load()` finds.
 */
export class StorageWriteError extends Error {
  override readonly name = 'StorageWriteError'
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
  }
}

/** `apply` or `load` after `close()`. */
export class StorageClosedError extends Error {
  override readonly name = 'StorageClosedError'
}
