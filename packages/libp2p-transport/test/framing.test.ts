import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { FrameDecoder, encodeFrame, encodeFrames } from '../src/index.js'
import { FrameQueue } from '../src/queue.js'

function decodeAll(chunks: readonly Uint8Array[], max: number) {
  const frames: Uint8Array[] = []
  const oversize: number[] = []
  const d = new FrameDecoder(max, { frame: (f) => frames.push(f), oversize: (n) => oversize.push(n) })
  for (const c of chunks) d.push(c)
  return { frames, oversize, midFrame: d.midFrame }
}

/** Cuts `bytes` at the given (sorted, deduplicated) offsets. */
function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const out: Uint8Array[] = []
  let prev = 0
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(prev, p))
    prev = p
  }
  return out
}

describe('framing', () => {
  it('round-trips any frames under any chunking', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), (frames, cuts) => {
        const wire = encodeFrames(frames)
        const { frames: got, oversize, midFrame } = decodeAll(split(wire, cuts), 1024)
        expect(got.map((f) => [...f])).toEqual(frames.map((f) => [...f]))
        expect(oversize).toEqual([])
        expect(midFrame).toBe(false)
      }),
    )
  })

  it('encodes a 4-byte big-endian length prefix', () => {
    expect([...encodeFrame(Uint8Array.from([7, 8, 9]))]).toEqual([0, 0, 0, 3, 7, 8, 9])
    expect([...encodeFrame(new Uint8Array(0))]).toEqual([0, 0, 0, 0])
    expect([...encodeFrames([Uint8Array.of(1), Uint8Array.of(2, 3)], 1)]).toEqual([0, 0, 0, 2, 2, 3])
  })

  it('skips an oversize frame, counts it, and keeps decoding what follows', () => {
    fc.assert(
      fc.property(fc.integer({ min: 65, max: 5000 }), fc.array(fc.nat(), { maxLength: 20 }), (size, cuts) => {
        const wire = encodeFrames([Uint8Array.of(1), new Uint8Array(size).fill(0xee), Uint8Array.of(2, 2)])
        const { frames, oversize, midFrame } = decodeAll(split(wire, cuts), 64)
        expect(frames.map((f) => [...f])).toEqual([[1], [2, 2]])
        expect(oversize).toEqual([size])
        expect(midFrame).toBe(false)
      }),
    )
  })

  it('never throws on garbage and never holds more than one frame', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 20 }), (chunks) => {
        const { frames } = decodeAll(chunks, 256)
        for (const f of frames) expect(f.byteLength).toBeLessThanOrEqual(256)
      }),
    )
  })

  it('reports a stream that ends inside a header or a body', () => {
    expect(decodeAll([Uint8Array.of(0, 0)], 100).midFrame).toBe(true)
    expect(decodeAll([Uint8Array.of(0, 0, 0, 5, 1)], 100).midFrame).toBe(true)
    expect(decodeAll([Uint8Array.of(0, 0, 1, 0)], 100).midFrame).toBe(true) // inside a skipped oversize body
    expect(decodeAll([Uint8Array.of(0, 0, 0, 1, 1)], 100).midFrame).toBe(false)
  })

  it('delivers a frame split across many chunks only once it is complete', () => {
    const frames: Uint8Array[] = []
    const d = new FrameDecoder(1 << 20, { frame: (f) => frames.push(f), oversize: () => {} })
    const wire = encodeFrame(Uint8Array.from({ length: 100_000 }, (_, i) => i % 251))
    for (let at = 0; at < wire.length; at += 1000) {
      expect(frames).toHaveLength(0)
      d.push(wire.subarray(at, at + 1000))
    }
    expect(frames).toHaveLength(1)
    expect(frames[0]!.every((b, i) => b === i % 251)).toBe(true)
    expect(d.midFrame).toBe(false)
  })

  it('hands out frames that do not alias the input chunk', () => {
    const wire = encodeFrames([Uint8Array.of(1, 2), Uint8Array.of(3)])
    const { frames } = decodeAll([wire], 10)
    wire.fill(0)
    expect(frames.map((f) => [...f])).toEqual([[1, 2], [3]])
  })

  it('accepts a frame of exactly the maximum and refuses one byte more', () => {
    expect(decodeAll([encodeFrame(new Uint8Array(64))], 64).frames).toHaveLength(1)
    expect(decodeAll([encodeFrame(new Uint8Array(65))], 64).oversize).toEqual([65])
  })
})

describe('frame queue', () => {
  it('is FIFO and tracks bytes across compactions', () => {
    const q = new FrameQueue()
    let next = 0
    let expected = 0
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 100; i++) q.push(new Uint8Array(next++ % 7))
      const taken = q.take(80)
      for (const f of taken) expect(f.byteLength).toBe(expected++ % 7)
    }
    expect(q.length).toBe(50 * 20)
    let bytes = 0
    for (let i = 0; i < q.length; i++) bytes += q.at(i).byteLength
    expect(q.bytes).toBe(bytes)
    expect(q.clear()).toBe(1000)
    expect(q.bytes).toBe(0)
  })
})
