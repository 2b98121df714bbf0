/**
 * Opens a replica's folder and builds its Voter and host: LevelStorage (durable, locked),
 * `load()` for a restart, a Voter with the host clock.
 */
import { LevelStorage } from '@bftrc/core-agreement/level-storage'
import { DEFAULT_LIMITS } from '@bftrc/core-agreement'
import type { KeyPair, Membership, Transport } from '@bftrc/crypto'
import type { GroupApp } from '../app.js'
import { Voter, type VoterConfig } from '../voter.js'
import { VoterHost, type VoterHostInit } from './voter-host.js'

export interface OpenVoterHostInit extends Omit<VoterHostInit, 'voter' | 'storage' | 'transport'> {
  readonly membership: Membership
  readonly self: string
  readonly keyPair: KeyPair
  readonly app: GroupApp
  /** The replica's own folder (LevelDB); created when missing, locked while open. */
  readonly dataDir: string
  readonly transport: Transport
  readonly config?: Partial<VoterConfig>
}

export interface OpenedVoterHost {
  readonly host: VoterHost
  readonly storage: LevelStorage
  /** True when the replica restarted from what its folder held. */
  readonly restored: boolean
}

/**
 * Opens the store (StorageLockedError if another process holds it, StorageCorruptError on
 * damage), loads what it holds and builds the Voter on it. The caller starts the host.
 */
export async function openVoterHost(init: OpenVoterHostInit): Promise<OpenedVoterHost> {
  const limits = { ...DEFAULT_LIMITS, ...init.config?.core?.limits }
  const storage = await LevelStorage.open(init.dataDir, { limits })
  try {
    const restored = await storage.load()
    const clock = init.clock ?? Date.now
    const voter = new Voter({
      membership: init.membership,
      self: init.self,
      keyPair: init.keyPair,
      app: init.app,
      now: clock(),
      ...(init.config !== undefined ? { config: init.config } : {}),
      ...(restored !== undefined ? { restored } : {}),
    })
    const { membership: _m, self: _s, keyPair: _k, app: _a, dataDir: _d, config: _c, ...hostInit } = init
    const host = new VoterHost({ ...hostInit, voter, storage, transport: init.transport })
    return { host, storage, restored: restored !== undefined }
  } catch (err) {
    await storage.close()
    throw err
  }
}
