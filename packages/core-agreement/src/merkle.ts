/**
 * The checkpoint digest: the root of a Merkle tree over the checkpoint state cut into chunks, so
 * that state transfer can check every chunk on arrival against the digest 2f+1 replicas signed.
 *
 * Construction (H = SHA-256, C = the chunk size, STATE_CHUNK_BYTES in the protocol):
 *
 * - A state S of L bytes is cut into n = max(1, ⌈L / C⌉) chunks, chunk i = S[i·C, min(L, (i+1)·C)).
 *   The empty state is one empty chunk.
 * - leaf(i)    = H(0x00 ‖ chunk i)
 * - node(a, b) = H(0x01 ‖ a ‖ b)                     (a, b: 32-byte hashes)
 * - Level 0 is the n leaves in order. Level k+1 pairs the nodes of level k as (0,1), (2,3), …;
 *   when level k has an odd count, its last node is promoted to level k+1 unchanged (it is never
 *   paired with itself nor duplicated). The top level's single node is the tree root (leaf(0)
 *   itself when n = 1). This is the shape of RFC 6962's Merkle tree hash.
 * - root = H(0x02 ‖ uint64be(L) ‖ uint32be(C) ‖ tree root): the checkpoint digest.
 *
 * The one-byte tags keep leaves, inner nodes and the root apart, so no leaf can pass for a node (or
 * a node for a leaf: no second preimage across levels). L in the root fixes n and every chunk's
 * length, so a chunk whose proof verifies against the root also proves L; C in the root keeps
 * trees cut differently apart.
 *
 * The proof of chunk i is the list of sibling hashes on the path from leaf(i) to the tree root,
 * lowest first, skipping the levels where the path's node is promoted (it has no sibling there).
 * Its length is fixed by (i, n) and at most ⌈log2 n⌉; a verifier refuses any other length.
 *
 * Pure functions over SHA-256: no I/O, no clock, no randomness.
 */
import { DIGEST_BYTES, bytesEqual, sha256Parts } from '@bftrc/crypto'

/** Chunk size of state transfer: a protocol constant, so every replica cuts a state alike. */
export const STATE_CHUNK_BYTES = 256 * 1024
/** Largest checkpoint state a replica will fetch. */
export const MAX_STATE_BYTES = 1024 * 1024 * 1024

/** How a state is cut and how large it may be: the protocol's, or a smaller one in tests. */
export interface ChunkLayout {
  readonly chunkBytes: number
  readonly maxBytes: number
}

export const STATE_LAYOUT: ChunkLayout = { chunkBytes: STATE_CHUNK_BYTES, maxBytes: MAX_STATE_BYTES }

const LEAF = Uint8Array.of(0x00)
const NODE = Uint8Array.of(0x01)
const ROOT = Uint8Array.of(0x02)

/** Chunks of a state of `length` bytes: at least one (the empty state is one empty chunk). */
export function chunkCount(length: number, chunkBytes = STATE_CHUNK_BYTES): number {
  return Math.max(1, Math.ceil(length / chunkBytes))
}

/** ⌈log2 n⌉: the longest proof in a tree of n leaves. */
export function proofDepth(n: number): number {
  let d = 0
  while (2 ** d < n) d++
  return d
}

/** Most chunks a fetched state may have (4096). */
export const MAX_STATE_CHUNKS = chunkCount(MAX_STATE_BYTES, STATE_CHUNK_BYTES)
/** Most sibling hashes in the proof of one chunk (12). */
export const MAX_PROOF_HASHES = proofDepth(MAX_STATE_CHUNKS)

/** Byte range [start, end) of chunk `index` in a state of `length` bytes. */
export function chunkRange(length: number, index: number, chunkBytes = STATE_CHUNK_BYTES): readonly [number, number] {
  const start = Math.min(length, index * chunkBytes)
  return [start, Math.min(length, start + chunkBytes)]
}

function leafHash(chunk: Uint8Array): Uint8Array {
  return sha256Parts([LEAF, chunk])
}

function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256Parts([NODE, left, right])
}

function rootHash(length: number, chunkBytes: number, treeRoot: Uint8Array): Uint8Array {
  const header = new Uint8Array(12)
  const view = new DataView(header.buffer)
  view.setUint32(0, Math.floor(length / 2 ** 32))
  view.setUint32(4, length >>> 0)
  view.setUint32(8, chunkBytes)
  return sha256Parts([ROOT, header, treeRoot])
}

function checkLayout(length: number, chunkBytes: number): void {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`state length ${length} is not a safe unsigned integer`)
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > 0xffffffff) throw new RangeError(`chunk size ${chunkBytes} is out of range`)
}

/**
 * The whole tree of one state, every level kept (n leaves take about 64·n bytes): what a replica
 * serving its stable checkpoint keeps to answer proofs without hashing the state again.
 */
export class StateTree {
  /** The checkpoint digest of the state. */
  readonly root: Uint8Array
  readonly chunks: number
  /** levels[0] = leaves, the last level holds the tree root alone. */
  private readonly levels: Uint8Array[][]

  constructor(
    readonly state: Uint8Array,
    readonly chunkBytes = STATE_CHUNK_BYTES,
  ) {
    checkLayout(state.length, chunkBytes)
    this.chunks = chunkCount(state.length, chunkBytes)
    let level: Uint8Array[] = []
    for (let i = 0; i < this.chunks; i++) level.push(leafHash(this.chunk(i)))
    this.levels = [level]
    while (level.length > 1) {
      const up: Uint8Array[] = []
      for (let j = 0; j + 1 < level.length; j += 2) up.push(nodeHash(level[j] as Uint8Array, level[j + 1] as Uint8Array))
      if (level.length % 2 === 1) up.push(level[level.length - 1] as Uint8Array)
      this.levels.push(up)
      level = up
    }
    this.root = rootHash(state.length, chunkBytes, level[0] as Uint8Array)
  }

  /** Chunk `index` (a view into the state, not a copy). */
  chunk(index: number): Uint8Array {
    const [start, end] = chunkRange(this.state.length, index, this.chunkBytes)
    return this.state.subarray(start, end)
  }

  /** The sibling hashes from leaf `index` up, lowest first; undefined past the last chunk. */
  proof(index: number): Uint8Array[] | undefined {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.chunks) return undefined
    const out: Uint8Array[] = []
    let i = index
    for (const level of this.levels) {
      if (level.length === 1) break
      const sibling = i % 2 === 1 ? i - 1 : i + 1
      if (sibling < level.length) out.push(level[sibling] as Uint8Array)
      i = Math.floor(i / 2)
    }
    return out
  }
}

/** The checkpoint digest of `state`: the root of its chunk tree (see the construction above). */
export function stateRoot(state: Uint8Array, chunkBytes = STATE_CHUNK_BYTES): Uint8Array {
  return new StateTree(state, chunkBytes).root
}

/**
 * True when `data` is chunk `index` of a state of `length` bytes whose root is `root`, as `proof`
 * shows. False for anything else: a length over the layout's maximum, an index past the last
 * chunk, data of the wrong size for that chunk, a proof of the wrong length or with a hash that
 * is not 32 bytes, or a path that does not hash to `root`.
 */
export function verifyChunk(root: Uint8Array, index: number, data: Uint8Array, proof: readonly Uint8Array[], length: number, layout: ChunkLayout = STATE_LAYOUT): boolean {
  const { chunkBytes, maxBytes } = layout
  if (!Number.isSafeInteger(length) || length < 0 || length > maxBytes) return false
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > 0xffffffff) return false
  const n = chunkCount(length, chunkBytes)
  if (!Number.isSafeInteger(index) || index < 0 || index >= n) return false
  const [start, end] = chunkRange(length, index, chunkBytes)
  if (data.length !== end - start) return false
  if (proof.length > proofDepth(n) || root.length !== DIGEST_BYTES) return false
  let hash = leafHash(data)
  let i = index
  let width = n
  let used = 0
  while (width > 1) {
    const isRight = i % 2 === 1
    if (isRight || i + 1 < width) {
      const sibling = proof[used++]
      if (sibling === undefined || sibling.length !== DIGEST_BYTES) return false
      hash = isRight ? nodeHash(sibling, hash) : nodeHash(hash, sibling)
    }
    i = Math.floor(i / 2)
    width = Math.ceil(width / 2)
  }
  if (used !== proof.length) return false
  return bytesEqual(rootHash(length, chunkBytes, hash), root)
}
