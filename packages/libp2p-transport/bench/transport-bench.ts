/**
 * Transport benchmark: the libp2p transport (TCP + Noise + Yamux) next to a plain TCP socket with
 * the same 4-byte length-prefix framing and the same per-turn coalescing, in one run, two
 * processes on 127.0.0.1 (this one measures, a child echoes every frame back).
 *
 *   pnpm --filter @bftrc/libp2p-transport bench            (about 20 s)
 *   BENCH_SECONDS=1 pnpm --filter @bftrc/libp2p-transport bench   (shorter phases)
 *
 * Phases, each for both links:
 *   rtt        one 64 B frame at a time, echoed: p50 / p99 round trip
 *   echo 64 B  128 frames in flight: round trips per second
 *   echo 4 KiB 64 frames in flight: round trips per second and MB/s each way
 */
import { fork } from 'node:child_process'
import { type Socket, createConnection, createServer } from 'node:net'
import { cpus } from 'node:os'
import { fileURLToPath } from 'node:url'
import { Membership, type MembershipConfig, fromHex, generateCluster, keyPairFromSeed, toHex } from '@bftrc/crypto'
import { FrameDecoder, type Libp2pTransport, createLibp2pTransport, encodeFrames } from '../src/index.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2)
const RTT_SAMPLES = 3000
const RTT_WARMUP = 300

/** The client side of a framed, echoing link. */
interface Link {
  readonly name: string
  send(bytes: Uint8Array): boolean
  onFrame(cb: (bytes: Uint8Array) => void): void
  close(): Promise<void>
}

/** A socket with the transport's framing and its coalescing: frames sent in one turn go in one write. */
class FramedSocket {
  private queue: Uint8Array[] = []
  private scheduled = false
  private blocked = false
  private handler: (bytes: Uint8Array) => void = () => {}
  constructor(readonly socket: Socket) {
    socket.setNoDelay(true)
    const decoder = new FrameDecoder(4 * 1024 * 1024, { frame: (f) => this.handler(f), oversize: () => {} })
    socket.on('data', (chunk) => decoder.push(chunk))
    socket.on('drain', () => {
      this.blocked = false
      this.flush()
    })
    socket.on('error', () => {})
  }
  onFrame(cb: (bytes: Uint8Array) => void): void {
    this.handler = cb
  }
  send(bytes: Uint8Array): boolean {
    this.queue.push(bytes)
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(() => this.flush())
    }
    return true
  }
  private flush(): void {
    this.scheduled = false
    if (this.blocked || this.queue.length === 0) return
    const frames = this.queue
    this.queue = []
    if (!this.socket.write(encodeFrames(frames))) this.blocked = true
  }
}

// ---- the echo side (child process) ----------------------------------------------------------

async function serve(): Promise<void> {
  const init = await new Promise<{ config: MembershipConfig; seed: string }>((resolve) => process.once('message', (m) => resolve(m as never)))
  const transport = createLibp2pTransport({ membership: Membership.fromConfig(init.config, { allowZeroFaultTolerance: true }), keyPair: keyPairFromSeed(fromHex(init.seed, 32)) })
  transport.onMessage((from, bytes) => transport.send(from, bytes))
  await transport.start()
  const server = createServer((socket) => {
    const framed = new FramedSocket(socket)
    framed.onFrame((bytes) => framed.send(bytes))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const address = server.address()
  process.send?.({ tcpPort: typeof address === 'object' && address !== null ? address.port : 0 })
  process.once('message', () => {
    server.close()
    void transport.stop().then(() => process.exit(0))
  })
}

// ---- the measuring side -----------------------------------------------------------------------

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

async function rtt(link: Link): Promise<{ p50: number; p99: number }> {
  const payload = new Uint8Array(64)
  const samples: number[] = []
  let resolveOne: () => void = () => {}
  link.onFrame(() => resolveOne())
  for (let i = 0; i < RTT_WARMUP + RTT_SAMPLES; i++) {
    const t0 = process.hrtime.bigint()
    await new Promise<void>((resolve) => {
      resolveOne = resolve
      link.send(payload)
    })
    if (i >= RTT_WARMUP) samples.push(Number(process.hrtime.bigint() - t0) / 1000)
  }
  samples.sort((a, b) => a - b)
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) }
}

/** Keeps `window` frames of `size` bytes in flight for SECONDS; returns round trips per second. */
async function pipelined(link: Link, size: number, window: number): Promise<number> {
  const payload = new Uint8Array(size).fill(1)
  let done = 0
  let measuring = false
  let stop = false
  await new Promise<void>((resolve) => {
    let inFlight = 0
    const refill = (): void => {
      while (!stop && inFlight < window && link.send(payload)) inFlight++
    }
    link.onFrame(() => {
      inFlight--
      if (measuring) done++
      if (stop && inFlight === 0) resolve()
      else refill()
    })
    refill()
    // Half a second of warm-up, then count.
    setTimeout(() => {
      measuring = true
      setTimeout(() => {
        measuring = false
        stop = true
        if (inFlight === 0) resolve()
      }, SECONDS * 1000)
    }, 500)
  })
  return done / SECONDS
}

async function libp2pLink(config: MembershipConfig, seed: Uint8Array): Promise<Link> {
  const t: Libp2pTransport = createLibp2pTransport({ membership: Membership.fromConfig(config, { allowZeroFaultTolerance: true }), keyPair: keyPairFromSeed(seed) })
  await t.start()
  await t.whenConnected(['kv/1'], 10_000)
  let cb: (bytes: Uint8Array) => void = () => {}
  t.onMessage((_from, bytes) => cb(bytes))
  return {
    name: 'libp2p (TCP+Noise+Yamux)',
    send: (bytes) => t.send('kv/1', bytes),
    onFrame: (f) => {
      cb = f
    },
    close: () => t.stop(),
  }
}

async function tcpLink(port: number): Promise<Link> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => resolve(s))
    s.once('error', reject)
  })
  const framed = new FramedSocket(socket)
  return {
    name: 'plain TCP, same framing',
    send: (bytes) => framed.send(bytes),
    onFrame: (f) => framed.onFrame(f),
    close: async () => {
      socket.destroy()
    },
  }
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
}

async function main(): Promise<void> {
  const started = Date.now()
  const seed = new Uint8Array(32).fill(9)
  const { config, keys } = generateCluster({ groups: [{ name: 'kv', f: 0, n: 2 }], seed, allowZeroFaultTolerance: true })
  // Two ports the OS reports free, for the two members' addresses.
  const ports = await Promise.all(
    [0, 1].map(
      () =>
        new Promise<number>((resolve) => {
          const s = createServer().listen(0, '127.0.0.1', () => {
            const a = s.address()
            s.close(() => resolve(typeof a === 'object' && a !== null ? a.port : 0))
          })
        }),
    ),
  )
  const withAddrs: MembershipConfig = {
    ...config,
    groups: { kv: { f: 0, members: config.groups.kv!.members.map((m, i) => ({ ...m, addrs: [`/ip4/127.0.0.1/tcp/${ports[i]}`] })) } },
  }

  const child = fork(fileURLToPath(import.meta.url), ['--serve'], { execArgv: ['--import', 'tsx'], stdio: 'inherit' })
  child.send({ config: withAddrs, seed: toHex(keys.get('kv/1')!.seed) })
  const { tcpPort } = await new Promise<{ tcpPort: number }>((resolve) => child.once('message', (m) => resolve(m as never)))

  const links = [await libp2pLink(withAddrs, keys.get('kv/0')!.seed), await tcpLink(tcpPort)]
  console.log(`transport benchmark: two processes on 127.0.0.1, node ${process.version}, ${cpus().length} cores, ${SECONDS} s per throughput phase`)
  const rows: Array<{ name: string; cells: string[] }> = links.map((l) => ({ name: l.name, cells: [] }))
  const ratios: string[] = []

  const rtts = []
  for (const l of links) rtts.push(await rtt(l))
  for (const [i, r] of rtts.entries()) rows[i]!.cells.push(`${fmt(r.p50)} / ${fmt(r.p99)} µs`)
  ratios.push(`${fmt(rtts[0]!.p50 / rtts[1]!.p50, 1)}x`)

  const small = []
  for (const l of links) small.push(await pipelined(l, 64, 128))
  for (const [i, r] of small.entries()) rows[i]!.cells.push(`${fmt(r)} msg/s`)
  ratios.push(`${fmt(small[1]! / small[0]!, 1)}x`)

  const big = []
  for (const l of links) big.push(await pipelined(l, 4096, 64))
  for (const [i, r] of big.entries()) rows[i]!.cells.push(`${fmt(r)} msg/s, ${fmt((r * 4096) / 1e6, 1)} MB/s`)
  ratios.push(`${fmt(big[1]! / big[0]!, 1)}x`)

  const headers = ['', 'RTT 64 B, p50 / p99', 'echo 64 B, 128 in flight', 'echo 4 KiB, 64 in flight']
  const table = [headers, ...rows.map((r) => [r.name, ...r.cells]), ['plain TCP advantage', ...ratios]]
  const widths = headers.map((_, c) => Math.max(...table.map((row) => row[c]!.length)))
  for (const row of table) console.log(row.map((cell, c) => cell.padEnd(widths[c]!)).join('  |  '))

  for (const l of links) await l.close()
  child.send('stop')
  await new Promise((resolve) => child.once('exit', resolve))
  console.log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`)
}

if (process.argv.includes('--serve')) await serve()
else await main()
