/**
 * Length-prefixed frames: a 4-byte big-endian unsigned length, then that many bytes. The same
 * framing runs over the libp2p stream and over the plain-TCP baseline of the benchmark.
 *
 * The decoder holds at most one partial frame, never more than `maxFrameBytes`, and only as many
 * bytes as have actually arrived (a header announcing 4 MiB followed by silence costs nothing): a
 * header that announces more than the maximum is counted as oversize and its body is skipped as it
 * arrives (the stream stays usable), so no input can make it buffer without bound or throw.
 */
import { allocUnsafe } from 'uint8arrays/alloc'

export const FRAME_HEADER_BYTES = 4
/** The largest length the 4-byte header can express. */
export const MAX_FRAME_HEADER_VALUE = 0xffff_ffff

/** Writes `frames` with their length prefixes into one buffer (one `send()` for a whole batch). */
export function encodeFrames(frames: readonly Uint8Array[], start = 0, end = frames.length): Uint8Array {
  let total = 0
  for (let i = start; i < end; i++) total += FRAME_HEADER_BYTES + frames[i]!.byteLength
  const out = allocUnsafe(total)
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength)
  let offset = 0
  for (let i = start; i < end; i++) {
    const frame = frames[i]!
    view.setUint32(offset, frame.byteLength)
    out.set(frame, offset + FRAME_HEADER_BYTES)
    offset += FRAME_HEADER_BYTES + frame.byteLength
  }
  return out
}

/** One frame with its prefix. */
export function encodeFrame(frame: Uint8Array): Uint8Array {
  return encodeFrames([frame])
}

export interface FrameSink {
  /** A complete frame. The bytes are the receiver's to keep. */
  frame(bytes: Uint8Array): void
  /** A header announced `length` bytes, more than the maximum: the body is skipped. */
  oversize(length: number): void
}

/**
 * Incremental decoder: feed it chunks as they arrive (chunk boundaries need not match frame
 * boundaries) and it calls the sink for every complete frame, in order. O(bytes) work: each byte
 * is copied once, into the frame handed out.
 */
export class FrameDecoder {
  private readonly header = new Uint8Array(FRAME_HEADER_BYTES)
  private headerFill = 0
  /** Length of the frame whose body is being read; -1 when reading a header. */
  private bodyLength = -1
  /** The body's chunks so far: memory follows the bytes received, not the length announced. */
  private bodyChunks: Uint8Array[] = []
  private bodyFill = 0
  private skip = 0

  constructor(
    readonly maxFrameBytes: number,
    private readonly sink: FrameSink,
  ) {}

  /** True when the bytes seen so far end inside a frame (or inside a skipped oversize body). */
  get midFrame(): boolean {
    return this.headerFill > 0 || this.bodyLength >= 0 || this.skip > 0
  }

  push(chunk: Uint8Array): void {
    let offset = 0
    const length = chunk.byteLength
    while (offset < length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, length - offset)
        this.skip -= n
        offset += n
        continue
      }
      if (this.bodyLength >= 0) {
        const n = Math.min(this.bodyLength - this.bodyFill, length - offset)
        this.bodyChunks.push(chunk.subarray(offset, offset + n))
        this.bodyFill += n
        offset += n
        if (this.bodyFill === this.bodyLength) {
          const frame = new Uint8Array(this.bodyLength)
          let at = 0
          for (const part of this.bodyChunks) {
            frame.set(part, at)
            at += part.byteLength
          }
          this.bodyLength = -1
          this.bodyChunks = []
          this.bodyFill = 0
          this.sink.frame(frame)
        }
        continue
      }
      // Reading a header. Fast path: the whole header is in this chunk.
      let frameLength: number
      if (this.headerFill === 0 && length - offset >= FRAME_HEADER_BYTES) {
        frameLength = ((chunk[offset]! << 24) >>> 0) + (chunk[offset + 1]! << 16) + (chunk[offset + 2]! << 8) + chunk[offset + 3]!
        offset += FRAME_HEADER_BYTES
      } else {
        const n = Math.min(FRAME_HEADER_BYTES - this.headerFill, length - offset)
        this.header.set(chunk.subarray(offset, offset + n), this.headerFill)
        this.headerFill += n
        offset += n
        if (this.headerFill < FRAME_HEADER_BYTES) break
        this.headerFill = 0
        const h = this.header
        frameLength = ((h[0]! << 24) >>> 0) + (h[1]! << 16) + (h[2]! << 8) + h[3]!
      }
      if (frameLength > this.maxFrameBytes) {
        this.skip = frameLength
        this.sink.oversize(frameLength)
        continue
      }
      if (length - offset >= frameLength) {
        // Whole body in this chunk: copy it out so the frame does not pin the (larger) chunk.
        // (Not chunk.slice(): on a Buffer that is a view, not a copy.)
        const frame = new Uint8Array(frameLength)
        frame.set(chunk.subarray(offset, offset + frameLength))
        offset += frameLength
        this.sink.frame(frame)
      } else {
        this.bodyLength = frameLength
        this.bodyFill = 0
      }
    }
  }

  /** Forgets any partial frame (after the stream ended). */
  reset(): void {
    this.headerFill = 0
    this.bodyLength = -1
    this.bodyChunks = []
    this.bodyFill = 0
    this.skip = 0
  }
}
