/**
 * Persist ops for storage tests: structurally valid pre-prepares and certificates (the storage
 * checks shapes, not signatures), deterministic from small inputs, plus temp-folder helpers.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type QuorumCertificate, encode, sha256 } from '@bftrc/crypto'
import { type PersistOp, type PersistedCheckpoint, type PersistedEntry, type PrePrepare, stateRoot } from '../../src/index.js'

/** 64 bytes derived from a label: stands in for a signature. */
export function fakeSignature(label: string): Uint8Array {
  const a = sha256(encode({ sig: label, half: 0 }))
  const b = sha256(encode({ sig: label, half: 1 }))
  const out = new Uint8Array(64)
  out.set(a, 0)
  out.set(b, 32)
  return out
}

export function fakePrePrepare(seq: number, view: number, tag: number, requests = 1, opBytes = 16): PrePrepare {
  return {
    t: 'pre-prepare',
    view,
    seq,
    batch: {
      stamp: tag,
      requests: Array.from({ length: requests }, (_, i) => ({
        client: `c${i}`,
        timestamp: tag * 1000 + i + 1,
        op: new Uint8Array(opBytes).fill((seq + i) & 0xff),
        readOnly: false,
        signature: fakeSignature(`req/${seq}/${tag}/${i}`),
      })),
    },
    signature: fakeSignature(`pp/${seq}/${view}/${tag}`),
  }
}

export function fakeCertificate(label: string, signers: readonly number[] = [0, 1, 2]): QuorumCertificate {
  return { group: 'g', digest: sha256(encode({ cert: label })), shares: signers.map((signer) => ({ signer, signature: fakeSignature(`${label}/${signer}`) })) }
}

export function entry(seq: number, view: number, tag: number, options: { prepared?: boolean; committed?: boolean; requests?: number; opBytes?: number } = {}): PersistedEntry {
  const prepared = options.prepared ?? true
  return {
    seq,
    view,
    prePrepare: fakePrePrepare(seq, view, tag, options.requests ?? 1, options.opBytes ?? 16),
    prepared,
    committed: options.committed ?? false,
    ...(prepared ? { prepares: fakeCertificate(`prepares/${seq}/${view}`, [1, 2]) } : {}),
  }
}

export function checkpoint(seq: number, state: Uint8Array = encode({ state: seq }), certified = seq > 0): PersistedCheckpoint {
  return { seq, digest: stateRoot(state), ...(certified ? { certificate: fakeCertificate(`checkpoint/${seq}`) } : {}), state }
}

export const viewOp = (view: number): PersistOp => ({ op: 'view', view })
export const entryOp = (e: PersistedEntry): PersistOp => ({ op: 'entry', entry: e })
export const checkpointOp = (cp: PersistedCheckpoint): PersistOp => ({ op: 'checkpoint', checkpoint: cp })

/**
 * Batch `i` of the crash test: recognisable by its view (= i) and the stamps (= i) of its entries.
 * Batch 0 stores the genesis checkpoint; batch i ≥ 1 writes entries 3i-2 … 3i, and every fourth
 * batch also a checkpoint at 3(i-1) that deletes the entries of the batches before it.
 */
export function crashBatch(i: number): PersistOp[] {
  if (i === 0) return [checkpointOp(checkpoint(0)), viewOp(0)]
  const ops: PersistOp[] = [viewOp(i)]
  for (let seq = 3 * i - 2; seq <= 3 * i; seq++) ops.push(entryOp(entry(seq, i, i, { committed: seq % 2 === 0, requests: 4, opBytes: 256 })))
  if (i % 4 === 0) ops.push(checkpointOp(checkpoint(3 * (i - 1), new Uint8Array(8192).fill(i & 0xff))))
  return ops
}

/** A fresh folder under the OS temp dir, and its removal. */
export function tempDir(prefix = 'bftrc-storage-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
}
