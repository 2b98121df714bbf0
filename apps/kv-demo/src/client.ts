/**
 * Interactive use against a running cluster: `kv-demo get|put|del|cas|scan` (a plain
 * core-agreement Client with the `cli` key of the generated config, over libp2p) and
 * `kv-demo status` (each replica's control endpoint).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { ClientHost, ClientTimeoutError } from '@bftrc/client-agreement/node-host'
import { ConfigError, KeyError, Membership, parseKeyFile } from '@bftrc/crypto'
import { createLibp2pTransport } from '@bftrc/libp2p-transport'
import { type ClientCommand, KV_GROUP, UsageError } from './args.js'
import { CURRENT_POINTER } from './demo.js'
import type { Io } from './session.js'
import { keyFile, layout } from './files.js'
import { KvError, type KvResult, decodeKvResult, encodeKvOp, kv } from './kv-app.js'
import { CLIENT_CONFIG, CLI_ID } from './settings.js'
import { type ReplicaStatusJson, type RunFile, fetchStatus, healthOf } from './status.js'

const TIMEOUT_MS = 15_000

/** The data folder: --data-dir, else $BFTRC_KV_DEMO_DIR (already folded into dataDir), else the last `kv-demo up`. */
export function resolveDataDir(dataDir: string | undefined): string {
  if (dataDir !== undefined) return resolve(dataDir)
  try {
    const p = readFileSync(CURRENT_POINTER, 'utf8').trim()
    if (p !== '' && existsSync(p)) return p
  } catch {
    // none
  }
  throw new UsageError('which cluster? pass --data-dir DIR (the folder `kv-demo up --data-dir DIR` uses), or set BFTRC_KV_DEMO_DIR, or start one with `kv-demo up`')
}

function loadConfig(root: string): Membership {
  const l = layout(root)
  if (!existsSync(l.config)) throw new UsageError(`${root} holds no kv-demo config.json (is it the folder of \`kv-demo up\`?)`)
  try {
    return Membership.parse(readFileSync(l.config, 'utf8'))
  } catch (err) {
    if (err instanceof ConfigError) throw new Error(`${l.config}: ${err.message}`)
    throw err
  }
}

export async function runClientCommand(cmd: ClientCommand & { dataDir: string | undefined; json: boolean }, io: Io): Promise<number> {
  const root = resolveDataDir(cmd.dataDir)
  const membership = loadConfig(root)
  if (membership.group(KV_GROUP) === undefined) throw new Error(`${root}: no ${KV_GROUP} group in the config`)
  let keyPair: ReturnType<typeof parseKeyFile>['keyPair']
  const path = keyFile(layout(root), CLI_ID)
  try {
    keyPair = parseKeyFile(readFileSync(path, 'utf8')).keyPair
  } catch (err) {
    if (err instanceof KeyError || (err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${path}: ${(err as Error).message}`)
    throw err
  }
  // Refuse a malformed operation before connecting anywhere.
  let op: Uint8Array
  let readOnly = false
  try {
    switch (cmd.command) {
      case 'get':
        op = kv.get(cmd.key)
        readOnly = true
        break
      case 'put':
        op = kv.put(cmd.key, cmd.value)
        break
      case 'del':
        op = kv.del(cmd.key)
        break
      case 'cas':
        op = kv.cas(cmd.key, cmd.expect, cmd.value)
        break
      case 'scan':
        op = encodeKvOp({ op: 'scan', prefix: cmd.prefix, limit: cmd.limit ?? 100 })
        readOnly = true
        break
    }
  } catch (err) {
    if (err instanceof KvError) throw new UsageError(err.message)
    throw err
  }
  const client = new ClientHost({ membership, id: CLI_ID, keyPair, transport: createLibp2pTransport({ membership, keyPair }), groups: [KV_GROUP], clientConfig: CLIENT_CONFIG })
  let result: KvResult
  try {
    await client.start()
    const done = await client.invoke(KV_GROUP, op, { readOnly, timeoutMs: TIMEOUT_MS })
    result = decodeKvResult(done.result)
  } catch (err) {
    if (err instanceof ClientTimeoutError) {
      io.stderr(`kv-demo: no answer from the ${KV_GROUP} group within ${TIMEOUT_MS / 1000} s: is the cluster in ${root} running? (kv-demo status --data-dir ${root})\n`)
      return 1
    }
    throw err
  } finally {
    await client.stop()
  }
  if (cmd.json) io.stdout(`${JSON.stringify(result)}\n`)
  if (!result.ok) {
    io.stderr(`kv-demo: refused: ${result.error}\n`)
    return 1
  }
  switch (result.op) {
    case 'get':
      if (!cmd.json) {
        if (result.found) io.stdout(`${result.value}\n`)
        else io.stderr(`(not found: ${(cmd as { key: string }).key})\n`)
      }
      return result.found ? 0 : 1
    case 'put':
      if (!cmd.json) io.stdout(`ok (revision ${result.rev})\n`)
      return 0
    case 'del':
      if (!cmd.json) io.stdout(result.found ? `deleted (revision ${result.rev})\n` : 'not found\n')
      return result.found ? 0 : 1
    case 'cas':
      if (!cmd.json) io.stdout(result.swapped ? `swapped (revision ${result.rev})\n` : `not swapped: the current value is ${result.current === null ? '(absent)' : JSON.stringify(result.current)}\n`)
      return result.swapped ? 0 : 1
    case 'scan':
      if (!cmd.json) {
        for (const [k, v] of result.entries) io.stdout(`${k}\t${v}\n`)
        if (result.more) io.stderr(`(more after ${result.next}: raise --limit or scan a longer prefix)\n`)
      }
      return 0
  }
}

export interface StatusRow {
  readonly id: string
  readonly pid: number | null
  readonly up: boolean
  readonly byzantine: string | null
  readonly role: string
  readonly view: number | null
  readonly seq: number | null
  readonly checkpoint: number | null
  readonly health: string
  readonly digest: string | null
  readonly callsInFlight: number | null
}

export async function runStatus(dataDir: string | undefined, json: boolean, io: Io): Promise<number> {
  const root = resolveDataDir(dataDir)
  const membership = loadConfig(root)
  const l = layout(root)
  const runFiles = new Map<string, RunFile>()
  if (existsSync(l.run)) {
    for (const name of readdirSync(l.run)) {
      if (!/^[a-z][a-z0-9-]*-[0-9]+\.json$/.test(name)) continue
      try {
        const rf = JSON.parse(readFileSync(join(l.run, name), 'utf8')) as RunFile
        runFiles.set(rf.id, rf)
      } catch {
        // a file being replaced
      }
    }
  }
  const ids = [...membership.groups.values()].flatMap((g) => g.members.map((m) => m.id))
  const statuses = new Map<string, ReplicaStatusJson | undefined>()
  await Promise.all(
    ids.map(async (id) => {
      const rf = runFiles.get(id)
      statuses.set(id, rf === undefined ? undefined : await fetchStatus(rf.controlPort, 1500))
    }),
  )
  const rows: StatusRow[] = []
  for (const g of membership.groups.values()) {
    const maxExec = Math.max(0, ...g.members.map((m) => statuses.get(m.id)?.lastExecuted ?? 0))
    for (const m of g.members) {
      const s = statuses.get(m.id)
      rows.push({
        id: m.id,
        pid: s?.pid ?? null,
        up: s !== undefined,
        byzantine: s?.byzantine ?? null,
        role: s === undefined ? '–' : s.isPrimary ? 'primary' : 'backup',
        view: s?.view ?? null,
        seq: s?.lastExecuted ?? null,
        checkpoint: s?.stableCheckpoint ?? null,
        health: healthOf(s, maxExec),
        digest: s?.stateDigest ?? null,
        callsInFlight: s === undefined ? null : (s.sizes.outstanding ?? 0) + (s.sizes.incoming ?? 0),
      })
    }
  }
  const upCount = rows.filter((r) => r.up).length
  if (json) io.stdout(`${JSON.stringify({ dataDir: root, replicas: rows })}\n`)
  else {
    const header = ['replica', 'pid', 'role', 'view', 'seq', 'checkpoint', 'health', 'in flight', 'digest']
    const table = rows.map((r) => [r.id, String(r.pid ?? '–'), r.role + (r.byzantine !== null ? ` (Byzantine: ${r.byzantine})` : ''), String(r.view ?? '–'), String(r.seq ?? '–'), String(r.checkpoint ?? '–'), r.health, String(r.callsInFlight ?? '–'), r.digest?.slice(0, 16) ?? '–'])
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => (row[i] as string).length)))
    const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd()
    io.stdout(`${fmt(header)}\n${table.map(fmt).join('\n')}\n`)
  }
  if (upCount === 0) {
    io.stderr(`kv-demo: no replica of ${root} answers: is the cluster running? (kv-demo up --data-dir ${root})\n`)
    return 1
  }
  return 0
}
