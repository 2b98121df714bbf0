/**
 * State transfer. A replica behind a stable checkpoint fetches that checkpoint's state from one
 * peer at a time, in chunks, and checks every chunk on arrival against the certified digest (the
 * root of the state's chunk tree, see merkle.ts). The first chunk that verifies proves the state's
 * length; the fetch then allocates the state, exactly that long, and writes each verified chunk
 * into it. A peer whose chunk does not verify (other data, another length, a bad proof) is
 * abandoned at that chunk, and so is one that stalls; chunks already verified are kept, whoever
 * sent them. Nothing unverified is held beyond the chunk being checked, and at most
 * CHUNKS_IN_FLIGHT chunks are asked for at a time.
 */
import { type ChunkLayout, STATE_CHUNK_BYTES, STATE_LAYOUT, StateTree, chunkCount, chunkRange, verifyChunk } from './merkle.js'
import type { CheckpointProof, FetchState, StateChunk } from './messages.js'
import { equalBytes } from './proofs.js'

export const CHUNKS_IN_FLIGHT = 4

export type ChunkOutcome =
  | { readonly kind: 'ignored'; readonly reason: string }
  | { readonly kind: 'progress' }
  | { readonly kind: 'complete'; readonly state: Uint8Array }
  | { readonly kind: 'lying'; readonly source: number }

export class StateFetch {
  source: number
  attempts = 0
  deadline = 0
  /** The state's length, once a verified chunk proved it; -1 before. */
  private length = -1
  private chunks = 0
  /** The state being filled in: allocated (at the proven length) by the first verified chunk. */
  private state: Uint8Array | undefined
  /** One byte per chunk: 1 once a verified copy is written into `state`. */
  private have = new Uint8Array(0)
  private verified = 0
  private verifiedBytes = 0
  /** Chunks asked of the current source and not yet received. */
  private readonly requested = new Set<number>()
  /** Where the next request to the current source starts looking. */
  private cursor = 0

  constructor(
    readonly target: CheckpointProof,
    private readonly peers: readonly number[],
    firstSource: number,
    private readonly layout: ChunkLayout = STATE_LAYOUT,
  ) {
    this.source = firstSource
  }

  /** Bytes of state held: the buffer of the proven length (0 until a chunk has verified). */
  get bytesHeld(): number {
    return this.state?.length ?? 0
  }

  /** Bytes of verified chunks written so far. */
  get bytesVerified(): number {
    return this.verifiedBytes
  }

  /** Requests to send now: up to CHUNKS_IN_FLIGHT chunks not yet asked of the current source. */
  nextRequests(now: number, timeout: number): FetchState[] {
    const out: FetchState[] = []
    const ask = (chunk: number) => {
      this.requested.add(chunk)
      out.push({ t: 'fetch-state', seq: this.target.seq, digest: this.target.digest, chunk })
    }
    if (this.length < 0) {
      // The length (hence the chunk count) is unknown until a first chunk verifies.
      if (this.requested.size === 0) ask(0)
    } else {
      while (this.requested.size < CHUNKS_IN_FLIGHT && this.cursor < this.chunks) {
        const i = this.cursor++
        if (this.have[i] === 0 && !this.requested.has(i)) ask(i)
      }
    }
    if (out.length > 0) this.deadline = now + timeout
    return out
  }

  /** Gives up on the current source (timeout or lie) and goes on with the next peer. */
  rotate(_now: number): void {
    this.attempts++
    const i = this.peers.indexOf(this.source)
    this.source = this.peers[(i + 1) % this.peers.length] as number
    // Verified chunks stay: they are the certified state's, whoever sent them.
    this.requested.clear()
    this.cursor = 0
    // No deadline until the first request to the new source goes out (nextRequests sets it). A
    // deadline of `now` made the caller's timeout check rotate a second time right away,
    // skipping a peer after every lie.
    this.deadline = Number.POSITIVE_INFINITY
  }

  onChunk(from: number, m: StateChunk): ChunkOutcome {
    if (from !== this.source) return { kind: 'ignored', reason: 'not-source' }
    if (m.seq !== this.target.seq || !equalBytes(m.digest, this.target.digest)) return { kind: 'ignored', reason: 'other-checkpoint' }
    if (m.length > this.layout.maxBytes || m.chunk >= chunkCount(m.length, this.layout.chunkBytes)) return { kind: 'lying', source: from }
    if (this.length >= 0 && m.length !== this.length) return { kind: 'lying', source: from }
    if (this.length >= 0 && this.have[m.chunk] === 1) return { kind: 'ignored', reason: 'duplicate' }
    if (!this.requested.has(m.chunk)) return { kind: 'ignored', reason: 'unrequested' }
    if (!verifyChunk(this.target.digest, m.chunk, m.data, m.proof, m.length, this.layout)) return { kind: 'lying', source: from }
    this.requested.delete(m.chunk)
    if (this.state === undefined) {
      this.length = m.length
      this.chunks = chunkCount(m.length, this.layout.chunkBytes)
      this.state = new Uint8Array(m.length)
      this.have = new Uint8Array(this.chunks)
    }
    this.state.set(m.data, chunkRange(this.length, m.chunk, this.layout.chunkBytes)[0])
    this.have[m.chunk] = 1
    this.verified++
    this.verifiedBytes += m.data.length
    if (this.verified < this.chunks) return { kind: 'progress' }
    return { kind: 'complete', state: this.state }
  }
}

export interface ServedChunk {
  readonly data: Uint8Array
  readonly proof: readonly Uint8Array[]
  readonly length: number
}

/**
 * The serving side: chunks of the stable checkpoint's state with their proofs. The tree of the
 * state served is built on the first request and kept while that state is served: one tree at a
 * time, dropped by `forget` when the stable checkpoint moves.
 */
export class StateServer {
  private tree: StateTree | undefined

  constructor(private readonly chunkBytes = STATE_CHUNK_BYTES) {}

  /** Chunk `index` of `state` with its proof; undefined past the last chunk. */
  chunk(state: Uint8Array, index: number): ServedChunk | undefined {
    if (!Number.isSafeInteger(index) || index < 0 || index >= chunkCount(state.length, this.chunkBytes)) return undefined
    if (this.tree === undefined || this.tree.state !== state) this.tree = new StateTree(state, this.chunkBytes)
    const proof = this.tree.proof(index)
    if (proof === undefined) return undefined
    return { data: this.tree.chunk(index), proof, length: state.length }
  }

  /** Drops the cached tree. */
  forget(): void {
    this.tree = undefined
  }

  /** Whether a tree is cached (for memory checks). */
  get holdsTree(): boolean {
    return this.tree !== undefined
  }
}
