/**
 * Replicas as separate hosts: each node runs in its own network namespace, joined by a veth
 * pair (169.254.77.1/30 <-> .2), so the traffic crosses a real (virtual) link and not loopback.
 * Both ends live inside namespaces this test creates and deletes; nothing is sent from the root
 * namespace. Needs root and `ip netns`; skipped with the reason printed otherwise.
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { type MembershipConfig, generateCluster, toHex } from '@bftrc/crypto'
import { describe, expect, it } from 'vitest'
import { waitFor } from './helpers.js'

const PKG = join(dirname(fileURLToPath(import.meta.url)), '..')
const FIXTURE = join(PKG, 'test', 'fixtures', 'netns-peer.ts')
const tag = `${process.pid % 100000}`
const NS = [`bftrc-${tag}-a`, `bftrc-${tag}-b`] as const
const VETH = [`bt${tag}a`, `bt${tag}b`] as const
const IPS = ['169.254.77.1', '169.254.77.2'] as const

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 })
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr || r.error?.message || `exit ${r.status}`}`)
}

/** Why this machine cannot run the test, or undefined when it can (probes namespaces and a veth pair). */
function cannotRun(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`
  if (process.getuid?.() !== 0) return 'network namespaces need root'
  const probe = [`bftrc-probe-${tag}-a`, `bftrc-probe-${tag}-b`]
  try {
    for (const ns of probe) ip('netns', 'add', ns)
    ip('link', 'add', `bp${tag}a`, 'netns', probe[0]!, 'type', 'veth', 'peer', 'name', `bp${tag}b`, 'netns', probe[1]!)
    return undefined
  } catch (err) {
    return `cannot create namespaces joined by a veth pair: ${(err as Error).message.trim()}`
  } finally {
    for (const ns of probe) {
      try {
        ip('netns', 'del', ns)
      } catch {
        // not created
      }
    }
  }
}

const reason = cannotRun()
if (reason !== undefined) console.log(`[netns] skipped: ${reason}`)

interface Status {
  id: string
  received: number
  inOrder: boolean
  connected: boolean
  incarnations: number
  metrics: { reconnects: number; framesOut: number; dropped: number }
}

class Peer {
  readonly proc: ChildProcessWithoutNullStreams
  last: Status | undefined
  stderr = ''
  constructor(ns: string, args: string[]) {
    this.proc = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', FIXTURE, ...args], { cwd: PKG })
    createInterface({ input: this.proc.stdout }).on('line', (line) => {
      try {
        this.last = JSON.parse(line) as Status
      } catch {
        this.stderr += `stdout: ${line}\n`
      }
    })
    this.proc.stderr.on('data', (d) => {
      this.stderr += String(d)
    })
  }
  send(n: number): void {
    this.proc.stdin.write(`send ${n}\n`)
  }
  get alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null
  }
  kill(): Promise<void> {
    if (!this.alive) return Promise.resolve()
    return new Promise((resolve) => {
      this.proc.once('exit', () => resolve())
      this.proc.kill('SIGKILL')
    })
  }
}

describe('replicas in separate network namespaces', () => {
  it.skipIf(reason !== undefined)(
    'exchange frames in order over a veth link, and reconnect after kill -9 and restart',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'bftrc-netns-'))
      const peers: Peer[] = []
      try {
        // Two hosts: namespaces joined by a veth pair, loopback up in each.
        for (const ns of NS) ip('netns', 'add', ns)
        ip('link', 'add', VETH[0], 'netns', NS[0], 'type', 'veth', 'peer', 'name', VETH[1], 'netns', NS[1])
        for (let i = 0; i < 2; i++) {
          ip('-n', NS[i]!, 'addr', 'add', `${IPS[i]}/30`, 'dev', VETH[i]!)
          ip('-n', NS[i]!, 'link', 'set', VETH[i]!, 'up')
          ip('-n', NS[i]!, 'link', 'set', 'lo', 'up')
        }

        const { config, keys } = generateCluster({ groups: [{ name: 'kv', f: 0, n: 2 }], seed: new Uint8Array(32).fill(3), allowZeroFaultTolerance: true })
        const withAddrs: MembershipConfig = {
          ...config,
          groups: { kv: { f: 0, members: config.groups.kv!.members.map((m, i) => ({ ...m, addrs: [`/ip4/${IPS[i]}/tcp/7000`] })) } },
        }
        const configPath = join(dir, 'membership.json')
        writeFileSync(configPath, JSON.stringify(withAddrs))
        const args = (id: string, peer: string) => [configPath, id, toHex(keys.get(id)!.seed), peer]
        const startB = () => new Peer(NS[1], args('kv/1', 'kv/0'))
        const a = new Peer(NS[0], args('kv/0', 'kv/1'))
        let b = startB()
        peers.push(a, b)
        const diag = () => `\nA: ${JSON.stringify(a.last)} ${a.stderr}\nB: ${JSON.stringify(b.last)} ${b.stderr}`

        await waitFor(() => a.last?.connected === true && b.last?.connected === true, 15_000, `both ends connected${diag()}`)
        a.send(2000)
        b.send(2000)
        await waitFor(() => a.last?.received === 2000 && b.last?.received === 2000, 10_000, `2000 frames each way${diag()}`)
        expect(a.last!.inOrder && b.last!.inOrder).toBe(true)

        // kill -9 the dialled host; the dialer notices, queues, redials with back-off.
        await b.kill()
        await waitFor(() => a.last?.connected === false, 10_000, `kv/0 to notice the kill${diag()}`)
        a.send(300) // queued while kv/1 is down
        b = startB()
        peers.push(b)
        await waitFor(() => a.last?.connected === true && b.last?.connected === true, 15_000, `reconnection${diag()}`)
        await waitFor(() => b.last?.received === 300, 10_000, `frames queued during the outage${diag()}`)
        b.send(1000)
        await waitFor(() => a.last?.received === 3000, 10_000, `frames from the restarted kv/1${diag()}`)
        expect(a.last).toMatchObject({ inOrder: true, incarnations: 2 })
        expect(b.last!.inOrder).toBe(true)
        expect(a.last!.metrics.reconnects).toBeGreaterThanOrEqual(1)
      } finally {
        await Promise.all(peers.map((p) => p.kill()))
        for (const ns of NS) {
          try {
            ip('netns', 'del', ns) // also deletes the veth end inside it
          } catch {
            // not created
          }
        }
        rmSync(dir, { recursive: true, force: true })
      }
    },
    30_000,
  )
})
