/**
 * The inputs a real-time host has received and not yet fed to its voter, one line per sender,
 * served in turn: a frame of each sender that has any, then again. Each sender's line holds at
 * most `perSender` frames and `perSenderBytes` bytes, and all lines together `total` frames and
 * `totalBytes` bytes; a frame past any bound is refused (the host drops and counts it, as a
 * network would). So a peer that floods fills only its own line: the frames of the others still
 * reach the voter in their turn (Aardvark's separate, fairly served queues).
 */
export interface InboxLimits {
  readonly perSender: number
  readonly perSenderBytes: number
  readonly total: number
  readonly totalBytes: number
}

interface Line {
  readonly frames: Uint8Array[]
  head: number
  bytes: number
}

export class Inbox {
  private readonly lines = new Map<string, Line>()
  /** Senders with frames waiting, in serving order. */
  private readonly turn: string[] = []
  private turnHead = 0
  private count = 0
  private bytesHeld = 0

  constructor(private readonly limits: InboxLimits) {}

  get size(): number {
    return this.count
  }

  get bytes(): number {
    return this.bytesHeld
  }

  /** Queues a frame from `from`; false (nothing queued) when a bound would be passed. */
  push(from: string, bytes: Uint8Array): boolean {
    let line = this.lines.get(from)
    const held = line === undefined ? 0 : line.frames.length - line.head
    if (held >= this.limits.perSender || (line?.bytes ?? 0) + bytes.length > this.limits.perSenderBytes) return false
    if (this.count >= this.limits.total || this.bytesHeld + bytes.length > this.limits.totalBytes) return false
    if (line === undefined) {
      line = { frames: [], head: 0, bytes: 0 }
      this.lines.set(from, line)
    }
    if (held === 0) this.turn.push(from)
    line.frames.push(bytes)
    line.bytes += bytes.length
    this.count++
    this.bytesHeld += bytes.length
    return true
  }

  /** The next frame, from the sender whose turn it is; undefined when every line is empty. */
  shift(): { from: string; bytes: Uint8Array } | undefined {
    if (this.turnHead >= this.turn.length) return undefined
    const from = this.turn[this.turnHead++] as string
    if (this.turnHead > 1024 && this.turnHead * 2 > this.turn.length) {
      this.turn.splice(0, this.turnHead)
      this.turnHead = 0
    }
    const line = this.lines.get(from) as Line
    const bytes = line.frames[line.head] as Uint8Array
    line.frames[line.head] = undefined as unknown as Uint8Array
    line.head++
    line.bytes -= bytes.length
    this.count--
    this.bytesHeld -= bytes.length
    if (line.head === line.frames.length) this.lines.delete(from)
    else {
      if (line.head > 1024 && line.head * 2 > line.frames.length) {
        line.frames.splice(0, line.head)
        line.head = 0
      }
      this.turn.push(from)
    }
    return { from, bytes }
  }

  clear(): void {
    this.lines.clear()
    this.turn.length = 0
    this.turnHead = 0
    this.count = 0
    this.bytesHeld = 0
  }
}
