/**
 * The checkpoint digest's chunk tree (src/merkle.ts): a fixed vector that pins the construction,
 * then properties over random states and chunk sizes: every chunk verifies with its proof, and
 * any change to the chunk, its index, the length, the proof or the root makes it fail.
 */
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type ChunkLayout, MAX_PROOF_HASHES, MAX_STATE_BYTES, MAX_STATE_CHUNKS, STATE_CHUNK_BYTES, StateTree, chunkCount, stateRoot, verifyChunk } from '../src/index.js'
import { proofDepth } from '../src/merkle.js'

const H = (...parts: Uint8Array[]): Uint8Array => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}
const bytes = (s: string) => new TextEncoder().encode(s)
const u64 = (n: number) => {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setBigUint64(0, BigInt(n))
  return b
}
const u32 = (n: number) => {
  const b = new Uint8Array(4)
  new DataView(b.buffer).setUint32(0, n)
  return b
}
const leaf = (chunk: Uint8Array) => H(Uint8Array.of(0), chunk)
const node = (a: Uint8Array, b: Uint8Array) => H(Uint8Array.of(1), a, b)
const root = (length: number, chunkBytes: number, top: Uint8Array) => H(Uint8Array.of(2), u64(length), u32(chunkBytes), top)

function flip(b: Uint8Array, bit: number): Uint8Array {
  const out = Uint8Array.from(b)
  const i = Math.floor(bit / 8) % out.length
  out[i] = (out[i] as number) ^ (1 << (bit % 8))
  return out
}

/** A random state (or a zero-filled exact multiple of the chunk size) and a chunk size small enough to give many chunks. */
const stateAndLayout = fc
  .record({ chunkBytes: fc.integer({ min: 1, max: 24 }), length: fc.integer({ min: 0, max: 300 }), seed: fc.integer() })
  .chain(({ chunkBytes, length }) =>
    fc.record({
      chunkBytes: fc.constant(chunkBytes),
      state: fc.oneof(fc.uint8Array({ minLength: length, maxLength: length }), fc.constant(new Uint8Array(chunkBytes * Math.max(0, Math.floor(length / chunkBytes))))),
    }),
  )
  .map(({ chunkBytes, state }) => ({ state, layout: { chunkBytes, maxBytes: 1024 } as ChunkLayout }))

describe('the chunk tree', () => {
  it('is the documented construction (a fixed vector: three chunks, the odd one promoted)', () => {
    const state = bytes('abcdefghij')
    const tree = new StateTree(state, 4)
    const [l0, l1, l2] = [leaf(bytes('abcd')), leaf(bytes('efgh')), leaf(bytes('ij'))] as [Uint8Array, Uint8Array, Uint8Array]
    const top = node(node(l0, l1), l2)
    expect(tree.chunks).toBe(3)
    expect(tree.root).toEqual(root(10, 4, top))
    expect(stateRoot(state, 4)).toEqual(tree.root)
    expect(tree.proof(0)).toEqual([l1, l2])
    expect(tree.proof(1)).toEqual([l0, l2])
    // The promoted chunk has no sibling at the lowest level.
    expect(tree.proof(2)).toEqual([node(l0, l1)])
    expect(tree.proof(3)).toBeUndefined()
    // Five chunks: the fifth is promoted twice.
    const five = new StateTree(bytes('aaaabbbbccccddddee'), 4)
    const ls = ['aaaa', 'bbbb', 'cccc', 'dddd', 'ee'].map((s) => leaf(bytes(s)))
    expect(five.root).toEqual(root(18, 4, node(node(node(ls[0]!, ls[1]!), node(ls[2]!, ls[3]!)), ls[4]!)))
    expect(five.proof(4)).toEqual([node(node(ls[0]!, ls[1]!), node(ls[2]!, ls[3]!))])
  })

  it('the empty state is one empty chunk; the root commits the length and the chunk size', () => {
    const empty = new StateTree(new Uint8Array(0), 4)
    expect(empty.chunks).toBe(1)
    expect(empty.chunk(0)).toEqual(new Uint8Array(0))
    expect(empty.proof(0)).toEqual([])
    expect(empty.root).toEqual(root(0, 4, leaf(new Uint8Array(0))))
    expect(verifyChunk(empty.root, 0, new Uint8Array(0), [], 0, { chunkBytes: 4, maxBytes: 64 })).toBe(true)
    expect(verifyChunk(empty.root, 0, new Uint8Array(0), [], 1, { chunkBytes: 4, maxBytes: 64 })).toBe(false)
    // Trailing zeros, another cut, a single zero byte: all different roots.
    const roots = [stateRoot(new Uint8Array(0), 4), stateRoot(new Uint8Array(1), 4), stateRoot(new Uint8Array(4), 4), stateRoot(new Uint8Array(5), 4), stateRoot(new Uint8Array(4), 2)]
    expect(new Set(roots.map((r) => Buffer.from(r).toString('hex'))).size).toBe(roots.length)
  })

  it('an exact multiple of the chunk size has no empty last chunk', () => {
    const tree = new StateTree(new Uint8Array(12).fill(9), 4)
    expect(tree.chunks).toBe(3)
    expect(tree.chunk(2).length).toBe(4)
    expect(chunkCount(12, 4)).toBe(3)
    expect(chunkCount(13, 4)).toBe(4)
    expect(chunkCount(0, 4)).toBe(1)
  })

  it('a leaf never passes for an inner node, nor an inner node for a leaf', () => {
    // Two chunks whose leaf hashes are l0, l1: a one-chunk state made of the bytes l0 ‖ l1 has
    // another leaf hash than the two-chunk tree's node (0x00 vs 0x01), so it proves nothing.
    const two = new StateTree(bytes('abcdefgh'), 4)
    const l0 = leaf(bytes('abcd'))
    const l1 = leaf(bytes('efgh'))
    const forged = new Uint8Array([...l0, ...l1])
    expect(leaf(forged)).not.toEqual(node(l0, l1))
    expect(verifyChunk(two.root, 0, forged, [], 64, { chunkBytes: 64, maxBytes: 1024 })).toBe(false)
    expect(verifyChunk(two.root, 0, forged.subarray(0, 4), [l1], 8, { chunkBytes: 4, maxBytes: 1024 })).toBe(false)
  })

  it('the protocol constants: 256 KiB chunks, 1 GiB at most, 4096 chunks, proofs of at most 12 hashes', () => {
    expect(STATE_CHUNK_BYTES).toBe(256 * 1024)
    expect(MAX_STATE_BYTES).toBe(2 ** 30)
    expect(MAX_STATE_CHUNKS).toBe(4096)
    expect(MAX_PROOF_HASHES).toBe(12)
    expect([1, 2, 3, 4, 5, 8, 9, 4096, 4097].map(proofDepth)).toEqual([0, 1, 2, 2, 3, 3, 4, 12, 13])
    // A length over the maximum never verifies, whatever the proof.
    const layout = { chunkBytes: 4, maxBytes: 8 }
    const tree = new StateTree(new Uint8Array(9), 4)
    expect(verifyChunk(tree.root, 0, tree.chunk(0), tree.proof(0)!, 9, layout)).toBe(false)
    expect(verifyChunk(tree.root, 0, tree.chunk(0), tree.proof(0)!, 9, { chunkBytes: 4, maxBytes: 9 })).toBe(true)
  })

  it('every chunk of a random state verifies, with a proof of exactly the path length, at most ⌈log2 n⌉', () => {
    fc.assert(
      fc.property(stateAndLayout, ({ state, layout }) => {
        const tree = new StateTree(state, layout.chunkBytes)
        expect(tree.chunks).toBe(chunkCount(state.length, layout.chunkBytes))
        expect(stateRoot(state, layout.chunkBytes)).toEqual(tree.root)
        const chunks: Uint8Array[] = []
        for (let i = 0; i < tree.chunks; i++) {
          const proof = tree.proof(i)!
          expect(proof.length).toBeLessThanOrEqual(proofDepth(tree.chunks))
          expect(verifyChunk(tree.root, i, tree.chunk(i), proof, state.length, layout)).toBe(true)
          chunks.push(tree.chunk(i))
        }
        // The chunks are the state, cut in order.
        expect(Buffer.concat(chunks).equals(Buffer.from(state))).toBe(true)
        // A power-of-two count gives every chunk a full-depth proof.
        if ((tree.chunks & (tree.chunks - 1)) === 0) for (let i = 0; i < tree.chunks; i++) expect(tree.proof(i)!.length).toBe(proofDepth(tree.chunks))
      }),
      { numRuns: 300, seed: 11 },
    )
  })

  it('any flipped bit, other index, other length, truncated or extended proof, or other root fails', () => {
    fc.assert(
      fc.property(stateAndLayout, fc.nat(), fc.nat(), fc.nat(), (s, pick, bit, other) => {
        const { state, layout } = s
        const tree = new StateTree(state, layout.chunkBytes)
        const i = pick % tree.chunks
        const data = tree.chunk(i)
        const proof = tree.proof(i)!
        const L = state.length
        const ok = (d: Uint8Array, p: readonly Uint8Array[], idx = i, len = L, r = tree.root) => verifyChunk(r, idx, d, p, len, layout)
        expect(ok(data, proof)).toBe(true)
        // The data: a flipped bit, a byte more, a byte less.
        if (data.length > 0) expect(ok(flip(data, bit), proof)).toBe(false)
        expect(ok(Uint8Array.of(...data, 0), proof)).toBe(false)
        if (data.length > 0) expect(ok(data.subarray(0, data.length - 1), proof)).toBe(false)
        // The proof: a flipped bit in one hash, truncated, extended, shifted, short hashes.
        if (proof.length > 0) {
          const k = other % proof.length
          expect(ok(data, proof.map((h, j) => (j === k ? flip(h, bit) : h)))).toBe(false)
          expect(ok(data, proof.slice(0, -1))).toBe(false)
          expect(ok(data, proof.slice(1))).toBe(false)
          expect(ok(data, proof.map((h) => h.subarray(0, 31)))).toBe(false)
        }
        expect(ok(data, [...proof, new Uint8Array(32)])).toBe(false)
        expect(ok(data, [...proof, proof[0] ?? tree.root])).toBe(false)
        expect(ok(data, [new Uint8Array(32), ...proof])).toBe(false)
        // Another length, or a root it is not under.
        for (const len of [L + 1, L - 1, L + layout.chunkBytes, L - layout.chunkBytes, 0, layout.maxBytes + 1]) {
          if (len !== L && len >= 0) expect(ok(data, proof, i, len), `length ${len} for ${L}`).toBe(false)
        }
        expect(ok(data, proof, i, L, flip(tree.root, bit))).toBe(false)
        expect(ok(data, proof, i, L, tree.root.subarray(0, 31))).toBe(false)
        // Another index: past the end never; inside, only for data that is that chunk's (a state
        // with repeated chunks has equal leaves, so a proof may serve several positions).
        expect(ok(data, proof, tree.chunks)).toBe(false)
        for (let j = 0; j < tree.chunks; j++) {
          if (j === i) continue
          for (const [d, p] of [[data, proof], [tree.chunk(j), proof], [data, tree.proof(j)!]] as const) {
            if (ok(d, p, j)) expect(Buffer.from(d).equals(Buffer.from(tree.chunk(j)))).toBe(true)
          }
          if (!Buffer.from(tree.chunk(j)).equals(Buffer.from(data))) expect(ok(data, proof, j)).toBe(false)
        }
      }),
      { numRuns: 400, seed: 12 },
    )
  })

  it('a state of distinct chunks: no chunk verifies at another index', () => {
    const state = Uint8Array.from({ length: 7 * 5 + 2 }, (_, k) => k)
    const tree = new StateTree(state, 5)
    const layout = { chunkBytes: 5, maxBytes: 1024 }
    for (let i = 0; i < tree.chunks; i++) {
      for (let j = 0; j < tree.chunks; j++) {
        expect(verifyChunk(tree.root, j, tree.chunk(i), tree.proof(i)!, state.length, layout)).toBe(i === j)
        expect(verifyChunk(tree.root, j, tree.chunk(i), tree.proof(j)!, state.length, layout)).toBe(i === j)
      }
    }
  })
})
