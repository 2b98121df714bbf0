/**
 * The process machinery shared by `pnpm bench` and `pnpm load`: forked replica processes
 * (node.js) with an IPC control channel, the cluster they form, plain-client hosts in this
 * process, and small time helpers.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { createWriteStream, mkdirSync, mkdtempSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ClientHost } from '@bftrc/client-agreement/node-host'
import { type KeyPair, Membership, type MembershipConfig, generateCluster, toHex } from '@bftrc/crypto'
import { type Libp2pTransport, createLibp2pTransport } from '@bftrc/libp2p-transport'
import { freePorts } from '../src/cluster.js'
import { CLIENT_CONFIG } from '../src/settings.js'
import type { NodeStatus } from './metrics.js'

const here = dirname(fileURLToPath(import.meta.url))
const NODE_JS = join(here, 'node.js')
/** The repository root (this file is apps/kv-demo/dist/bench/bench/processes.js). */
export const REPO = resolve(here, '../../../../..')
/** Where the user ran `pnpm …` from: relative paths on the command line are relative to it. */
export const invokedFrom = process.env.INIT_CWD ?? process.cwd()

/** A fresh folder under `root` for one run's replica data, with a `logs` folder inside. */
export function runFolder(root: string, prefix: string): { dataRoot: string; logDir: string } {
  mkdirSync(root, { recursive: true })
  const dataRoot = mkdtempSync(join(root, prefix))
  const logDir = join(dataRoot, 'logs')
  mkdirSync(logDir, { recursive: true })
  return { dataRoot, logDir }
}

/** A logger writing `[name hh:mm:ss] line` to stderr. */
export function logger(name: string): (line: string) => void {
  return (line) => process.stderr.write(`[${name} ${new Date().toISOString().slice(11, 19)}] ${line}\n`)
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms)
    }),
  ])
}

/** What a status request asks of a child (see node.ts). */
export interface StatusRequest {
  /** Return the call-latency samples gathered since the last such request, and clear them. */
  readonly samples?: boolean
  /** Run a full garbage collection first (the child must run with --expose-gc). */
  readonly gc?: boolean
}

export class Child {
  private readonly waiting: Array<(s: NodeStatus) => void> = []
  readonly ready: Promise<void>
  exited = false
  constructor(
    readonly id: string,
    readonly proc: ChildProcess,
  ) {
    this.ready = new Promise((resolveReady, reject) => {
      proc.on('message', (m: { t: string }) => {
        if (m.t === 'ready') resolveReady()
        else if (m.t === 'status') this.waiting.shift()?.(m as NodeStatus)
      })
      proc.once('exit', (code, signal) => {
        this.exited = true
        reject(new Error(`${id} exited (${code ?? signal}) before it was ready`))
      })
    })
    this.ready.catch(() => {})
    // A message to a child that died before its 'exit' event fails (EPIPE): status() learns it
    // from its send callback; without a listener the 'error' event would end this process.
    proc.on('error', () => {})
  }
  status(request: StatusRequest = {}): Promise<NodeStatus> {
    if (this.exited) return Promise.reject(new Error(`${this.id} has exited`))
    return withTimeout(
      new Promise<NodeStatus>((resolve, reject) => {
        this.waiting.push(resolve)
        this.proc.send({ t: 'status', samples: request.samples === true, gc: request.gc === true }, (err) => {
          if (err === null) return
          this.waiting.splice(this.waiting.indexOf(resolve), 1)
          reject(new Error(`${this.id} is gone: ${err.message}`))
        })
      }),
      10_000,
      `status of ${this.id}`,
    )
  }
  async stop(): Promise<void> {
    if (this.exited) return
    const gone = new Promise<void>((r) => this.proc.once('exit', () => r()))
    try {
      this.proc.send({ t: 'stop' })
    } catch {
      // channel already closed
    }
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 4000)
    await gone
    clearTimeout(timer)
  }
}

const allChildren = new Set<Child>()

export function spawnNode(args: string[], id: string, logDir: string, extraExecArgv: readonly string[] = []): Child {
  const out = createWriteStream(join(logDir, `${id.replace(/\//g, '-')}.log`))
  const prof = process.env.BENCH_CPU_PROF
  const execArgv = prof !== undefined && prof !== '' ? ['--cpu-prof', '--cpu-prof-dir', resolve(invokedFrom, prof), '--cpu-prof-name', `${id.replace(/\//g, '-')}.${Date.now()}.cpuprofile`] : []
  const proc = fork(NODE_JS, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv: [...execArgv, ...extraExecArgv] })
  proc.stdout?.pipe(out)
  proc.stderr?.pipe(out)
  const c = new Child(id, proc)
  allChildren.add(c)
  proc.once('exit', () => {
    c.exited = true
    allChildren.delete(c)
  })
  return c
}

/** SIGKILLs every child still running (finally blocks, SIGINT, the hard time limit). */
export function killAll(): void {
  for (const c of allChildren) {
    try {
      c.proc.kill('SIGKILL')
    } catch {
      // already gone
    }
  }
}

export interface Cluster {
  readonly membership: Membership
  readonly config: MembershipConfig
  readonly keys: ReadonlyMap<string, KeyPair>
}

/**
 * Keys and a membership for the groups, on free ports of 127.0.0.1. `clients` are listed plain
 * clients; `openClients` lets any key connect as a client (`peer:<peerId>`).
 */
export async function makeCluster(groups: Array<{ name: string; f: number }>, clients: string[], openClients = false): Promise<Cluster> {
  const g = generateCluster({ groups, clients, basePort: 0, openClients, allowZeroFaultTolerance: true })
  const n = groups.reduce((s, x) => s + 3 * x.f + 1, 0)
  const ports = await freePorts(n)
  let i = 0
  const out: Record<string, { f: number; members: Array<{ publicKey: string; addrs: string[] }> }> = {}
  for (const [name, gr] of Object.entries(g.config.groups)) out[name] = { f: gr.f, members: gr.members.map((m) => ({ publicKey: m.publicKey, addrs: [`/ip4/127.0.0.1/tcp/${ports[i++]}`] })) }
  const config = { ...g.config, groups: out }
  return { membership: Membership.fromConfig(config, { allowZeroFaultTolerance: true }), config, keys: g.keys }
}

/**
 * Forks one process per member of `group`: replicas on LevelDB folders under `dataRoot`, or raw
 * servers. `extra.core` overrides core-agreement settings of the replicas (node.ts), `extra.execArgv`
 * adds node flags.
 */
export function startGroup(c: Cluster, group: string, mode: 'raw' | 'replica', dataRoot: string, logDir: string, extra: { execArgv?: readonly string[]; core?: Record<string, number> } = {}): Child[] {
  const json = JSON.stringify(c.config)
  const core = extra.core === undefined ? [] : [JSON.stringify(extra.core)]
  return c.membership.group(group)!.members.map((m) => {
    const kp = c.keys.get(m.id)!
    return spawnNode([mode, json, toHex(kp.seed), m.id, join(dataRoot, m.id.replace(/\//g, '-')), ...core], m.id, logDir, extra.execArgv)
  })
}

export interface ClientEndpoint {
  readonly host: ClientHost
  readonly transport: Libp2pTransport
}

/** A started plain-client host for `id` (its own libp2p node) talking to `groups`. */
export async function clientHost(membership: Membership, id: string, keyPair: KeyPair, groups: string[], tuning: { maxQueued?: number; tickIntervalMs?: number } = {}): Promise<ClientEndpoint> {
  const transport = createLibp2pTransport({ membership, keyPair })
  const host = new ClientHost({ membership, id, keyPair, transport, groups, clientConfig: CLIENT_CONFIG, ...tuning })
  await host.start()
  return { host, transport }
}
