import { describe, expect, it } from 'vitest'
import { Inbox } from '../src/host/inbox.js'

const frame = (n: number, size = 1) => new Uint8Array(size).fill(n & 0xff)

describe("the host's inbox", () => {
  it('serves senders in turn, each in arrival order: a flood delays only its own frames (was: one line for everyone, 20 000 deep)', () => {
    const inbox = new Inbox({ perSender: 10_000, perSenderBytes: 1 << 30, total: 20_000, totalBytes: 1 << 30 })
    for (let i = 0; i < 5_000; i++) inbox.push('flooder', frame(i))
    inbox.push('kv/1', frame(1))
    inbox.push('kv/2', frame(2))
    inbox.push('kv/1', frame(3))
    const order = Array.from({ length: 6 }, () => inbox.shift()?.from)
    expect(order).toEqual(['flooder', 'kv/1', 'kv/2', 'flooder', 'kv/1', 'flooder'])
    expect(inbox.size).toBe(5_000 - 3)
  })

  it('bounds each sender and the whole, by frames and by bytes', () => {
    const inbox = new Inbox({ perSender: 3, perSenderBytes: 100, total: 5, totalBytes: 150 })
    expect([1, 2, 3, 4].map((i) => inbox.push('a', frame(i)))).toEqual([true, true, true, false])
    expect(inbox.push('b', frame(1, 101))).toBe(false)
    expect(inbox.push('b', frame(1, 60))).toBe(true)
    expect(inbox.push('c', frame(1, 90))).toBe(false) // 3 + 60 + 90 > 150 bytes
    expect(inbox.push('c', frame(1))).toBe(true)
    expect(inbox.push('d', frame(1))).toBe(false) // 5 frames in all
    expect(inbox.size).toBe(5)
    expect(inbox.bytes).toBe(3 + 60 + 1)
    while (inbox.shift() !== undefined) {}
    expect(inbox.size).toBe(0)
    expect(inbox.bytes).toBe(0)
    expect(inbox.push('a', frame(9))).toBe(true)
  })
})
