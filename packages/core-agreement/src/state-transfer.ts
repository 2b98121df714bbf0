/**
 * The fetching side of state transfer. A replica behind a stable checkpoint fetches that
 * checkpoint's state from one peer at a time, in chunks, and checks the whole against the
 * certified digest. A peer that lies (bad digest, inconsistent chunk counts) or stalls is
 * abandoned for the next one. Memory is bounded by `maxStateBytes`.
 */
import { sha256 } from '@bftrc/crypto'
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
  private chunks: Array<Uint8Array | undefined> = []
  private total = -1
  private bytes = 0
  private readonly requested = new Set<number>()

  constructor(
    readonly target: CheckpointProof,
    private readonly peers: readonly number[],
    private readonly maxStateBytes: number,
    private readonly maxChunkBytes: number,
    firstSource: number,
  ) {
    this.source = firstSource
  }

  /** Requests to send now: up to CHUNKS_IN_FLIGHT chunks not yet asked for. */
  nextRequests(now: number, timeout: number): FetchState[] {
    const out: FetchState[] = []
    if (this.total < 0) {
      if (!this.requested.has(0)) {
        this.requested.add(0)
        out.push({ t: 'fetch-state', seq: this.target.seq, digest: this.target.digest, chunk: 0 })
      }
    } else {
      for (let i = 0; i < this.total && this.requested.size < CHUNKS_IN_FLIGHT + this.received(); i++) {
        if (this.chunks[i] === undefined && !this.requested.has(i)) {
          this.requested.add(i)
          out.push({ t: 'fetch-state', seq: this.target.seq, digest: this.target.digest, chunk: i })
        }
      }
    }
    if (out.length > 0) this.deadline = now + timeout
    return out
  }

  private received(): number {
    let n = 0
    for (const c of this.chunks) if (c !== undefined) n++
    return n
  }

  /** Gives up on the current source (timeout or lie) and starts over with the next peer. */
  rotate(_now: number): void {
    this.attempts++
    const i = this.peers.indexOf(this.source)
    this.source = this.peers[(i + 1) % this.peers.length] as number
    this.chunks = []
    this.total = -1
    this.bytes = 0
    this.requested.clear()
    // No deadline until the first request to the new source goes out (nextRequests sets it). A
    // deadline of `now` made the caller's timeout check rotate a second time right away,
    // skipping a peer after every lie.
    this.deadline = Number.POSITIVE_INFINITY
  }

  onChunk(from: number, m: StateChunk): ChunkOutcome {
    if (from !== this.source) return { kind: 'ignored', reason: 'not-source' }
    if (m.seq !== this.target.seq || !equalBytes(m.digest, this.target.digest)) return { kind: 'ignored', reason: 'other-checkpoint' }
    const maxChunks = Math.max(1, Math.ceil(this.maxStateBytes / this.maxChunkBytes))
    if (m.chunks === 0 || m.chunks > maxChunks || m.chunk >= m.chunks) return { kind: 'lying', source: from }
    if (this.total >= 0 && m.chunks !== this.total) return { kind: 'lying', source: from }
    if (!this.requested.has(m.chunk)) return { kind: 'ignored', reason: 'unrequested' }
    if (this.total < 0) {
      this.total = m.chunks
      this.chunks = new Array(m.chunks).fill(undefined)
    }
    if (this.chunks[m.chunk] !== undefined) return { kind: 'ignored', reason: 'duplicate' }
    if (m.chunk < m.chunks - 1 && m.data.length !== this.maxChunkBytes) return { kind: 'lying', source: from }
    this.bytes += m.data.length
    if (this.bytes > this.maxStateBytes) return { kind: 'lying', source: from }
    this.chunks[m.chunk] = m.data
    if (this.received() < this.total) return { kind: 'progress' }
    const state = new Uint8Array(this.bytes)
    let at = 0
    for (const c of this.chunks) {
      state.set(c as Uint8Array, at)
      at += (c as Uint8Array).length
    }
    if (!equalBytes(sha256(state), this.target.digest)) return { kind: 'lying', source: from }
    return { kind: 'complete', state }
  }
}

/** The serving side: chunk `i` of a state, and how many chunks it has. */
export function stateChunk(state: Uint8Array, chunk: number, chunkBytes: number): { data: Uint8Array; chunks: number } | undefined {
  const chunks = Math.max(1, Math.ceil(state.length / chunkBytes))
  if (chunk >= chunks) return undefined
  return { data: state.subarray(chunk * chunkBytes, Math.min(state.length, (chunk + 1) * chunkBytes)), chunks }
}
