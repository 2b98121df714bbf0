/**
 * The demo's data folder: keys and config (generated once, with `generateCluster`), one LevelDB
 * folder per replica, run files. A fresh folder is written completely or removed; a reused one is
 * checked (config, keys, group sizes) and its listening ports are moved if they are taken.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { createServer } from 'node:net'
import { ConfigError, KeyError, type MembershipConfig, Membership, generateCluster, parseKeyFile, serializeKeyFile } from '@bftrc/crypto'
import { BANK_GROUP, KV_GROUP, UsageError } from './args.js'
import { type DataLayout, keyFile, layout, writeFileAtomic } from './files.js'
import { CLI_ID, SUPERVISOR_ID } from './settings.js'

export interface DemoSettings {
  readonly version: 1
  readonly servers: number
  readonly clients: number
  readonly createdAt: string
}

export interface PreparedCluster {
  readonly layout: DataLayout
  readonly membership: Membership
  readonly settings: DemoSettings
  readonly created: boolean
  readonly movedPorts: boolean
}

/** A problem with the data folder: its message says what and where. */
export class DataDirError extends Error {
  override readonly name = 'DataDirError'
}

/** Ports that were free a moment ago on 127.0.0.1 (the OS picks them; they are released at once). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const s = createServer()
          s.once('error', reject)
          s.listen(0, '127.0.0.1', () => resolve(s))
        }),
    ),
  )
  const ports = servers.map((s) => (s.address() as { port: number }).port)
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  return ports
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer()
    s.once('error', () => resolve(false))
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
  })
}

function withAddrs(config: MembershipConfig, ports: number[]): MembershipConfig {
  let i = 0
  const groups: Record<string, { f: number; members: Array<{ publicKey: string; addrs: string[] }> }> = {}
  for (const [name, g] of Object.entries(config.groups)) {
    groups[name] = { f: g.f, members: g.members.map((m) => ({ publicKey: m.publicKey, addrs: [`/ip4/127.0.0.1/tcp/${ports[i++]}`] })) }
  }
  return { ...config, groups }
}

function replicaCount(config: MembershipConfig): number {
  return Object.values(config.groups).reduce((n, g) => n + g.members.length, 0)
}

/** The port of a member's first /ip4/127.0.0.1/tcp/<port> address. */
function portOf(addr: string | undefined): number | undefined {
  const m = /^\/ip4\/127\.0\.0\.1\/tcp\/([0-9]+)$/.exec(addr ?? '')
  return m === null ? undefined : Number(m[1])
}

export async function prepareDataDir(root: string, sizes: { servers: number; clients: number; explicit: boolean }): Promise<PreparedCluster> {
  const l = layout(root)
  if (existsSync(l.config)) return reuse(l, sizes)
  if (existsSync(root)) {
    if (!statSync(root).isDirectory()) throw new DataDirError(`${root} exists and is not a folder`)
    if (readdirSync(root).length > 0) throw new DataDirError(`${root} is not empty and holds no kv-demo config.json: refusing to write into it`)
  }
  const createdRoot = !existsSync(root)
  try {
    mkdirSync(root, { recursive: true })
    mkdirSync(l.keys, { recursive: true, mode: 0o700 })
    mkdirSync(l.replicas, { recursive: true })
    mkdirSync(l.run, { recursive: true })
    const generated = generateCluster({
      groups: [
        { name: KV_GROUP, f: (sizes.servers - 1) / 3 },
        { name: BANK_GROUP, f: (sizes.clients - 1) / 3 },
      ],
      clients: [SUPERVISOR_ID, CLI_ID],
      basePort: 0,
    })
    const config = withAddrs(generated.config, await freePorts(replicaCount(generated.config)))
    const membership = Membership.fromConfig(config)
    for (const [id, kp] of generated.keys) writeFileAtomic(keyFile(l, id), serializeKeyFile(id, kp), 0o600)
    writeFileAtomic(l.config, `${JSON.stringify(config, null, 2)}\n`)
    const settings: DemoSettings = { version: 1, servers: sizes.servers, clients: sizes.clients, createdAt: new Date().toISOString() }
    writeFileAtomic(l.settings, `${JSON.stringify(settings, null, 2)}\n`)
    return { layout: l, membership, settings, created: true, movedPorts: false }
  } catch (err) {
    // Nothing half-written: remove what this call created.
    if (createdRoot) rmSync(root, { recursive: true, force: true })
    else for (const p of [l.keys, l.replicas, l.run, l.config, l.settings]) rmSync(p, { recursive: true, force: true })
    throw err
  }
}

async function reuse(l: DataLayout, sizes: { servers: number; clients: number; explicit: boolean }): Promise<PreparedCluster> {
  let membership: Membership
  try {
    membership = Membership.parse(readFileSync(l.config, 'utf8'))
  } catch (err) {
    if (err instanceof ConfigError) throw new DataDirError(`${l.config}: ${err.message}`)
    throw err
  }
  const kvGroup = membership.group(KV_GROUP)
  const bankGroup = membership.group(BANK_GROUP)
  if (kvGroup === undefined || bankGroup === undefined) throw new DataDirError(`${l.config}: not a kv-demo config (groups ${KV_GROUP} and ${BANK_GROUP} expected)`)
  if (sizes.explicit && (kvGroup.n !== sizes.servers || bankGroup.n !== sizes.clients)) {
    throw new UsageError(`${l.root} was created with --servers ${kvGroup.n} --clients ${bankGroup.n}; it cannot be reused with --servers ${sizes.servers} --clients ${sizes.clients}`)
  }
  for (const id of [...kvGroup.members.map((m) => m.id), ...bankGroup.members.map((m) => m.id), SUPERVISOR_ID, CLI_ID]) {
    const path = keyFile(l, id)
    try {
      const { id: inFile, keyPair } = parseKeyFile(readFileSync(path, 'utf8'))
      const expected = membership.member(id)?.publicKey ?? membership.clients.get(id)?.publicKey
      if (inFile !== id || expected === undefined || Buffer.compare(Buffer.from(expected), Buffer.from(keyPair.publicKey)) !== 0) throw new DataDirError(`${path}: not the key of ${id} in ${l.config}`)
    } catch (err) {
      if (err instanceof KeyError) throw new DataDirError(`${path}: ${err.message}`)
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new DataDirError(`${path} is missing`)
      throw err
    }
  }
  mkdirSync(l.replicas, { recursive: true })
  mkdirSync(l.run, { recursive: true })
  // The ports written last time may be taken now: move them all if any is.
  const ports = [...membership.groups.values()].flatMap((g) => g.members.map((m) => portOf(m.addrs[0])))
  let movedPorts = false
  const free = await Promise.all(ports.map((p) => (p === undefined ? Promise.resolve(false) : portFree(p))))
  if (free.includes(false)) {
    const config = withAddrs(membership.config, await freePorts(ports.length))
    membership = Membership.fromConfig(config)
    writeFileAtomic(l.config, `${JSON.stringify(config, null, 2)}\n`)
    movedPorts = true
  }
  let settings: DemoSettings = { version: 1, servers: kvGroup.n, clients: bankGroup.n, createdAt: 'unknown' }
  try {
    settings = { ...settings, ...(JSON.parse(readFileSync(l.settings, 'utf8')) as Partial<DemoSettings>), servers: kvGroup.n, clients: bankGroup.n }
  } catch {
    // demo.json is informative only
  }
  return { layout: l, membership, settings, created: false, movedPorts }
}
