/**
 * What `demo` and `chaos` share around a supervised cluster: the data folder (a fresh temporary
 * one, or --data-dir), the supervisor's event lines, its plain client, Ctrl-C handling, and
 * removing the temporary folder at the end.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { ClientHost } from '@bftrc/client-agreement/node-host'
import { type Membership, parseKeyFile } from '@bftrc/crypto'
import { createLibp2pTransport } from '@bftrc/libp2p-transport'
import { type ClusterOptions, UsageError } from './args.js'
import { DataDirError, type PreparedCluster, prepareDataDir } from './cluster.js'
import { type DataLayout, keyFile } from './files.js'
import { CLIENT_CONFIG, SUPERVISOR_ID } from './settings.js'
import type { Supervisor, SupervisorEvent } from './supervisor.js'

export interface Io {
  readonly stdout: (text: string) => void
  readonly stderr: (text: string) => void
  readonly isTTY: boolean
}


export interface OpenedDataDir {
  readonly root: string
  /** A temporary folder this run created (removed at the end unless kept). */
  readonly useTemp: boolean
  readonly cluster: PreparedCluster
}

/**
 * The data folder of a run, prepared (keys, config) or checked for reuse. A problem with the
 * folder is reported on stderr and answered with exit code 1; a usage error is thrown.
 */
export async function openDataDir(req: ClusterOptions, io: Io): Promise<OpenedDataDir | number> {
  const useTemp = req.dataDir === undefined
  const root = useTemp ? mkdtempSync(join(tmpdir(), 'kv-demo-')) : resolve(req.dataDir as string)
  try {
    const cluster = await prepareDataDir(root, { servers: req.servers, clients: req.clients, explicit: req.explicitSizes })
    return { root, useTemp, cluster }
  } catch (err) {
    if (useTemp) rmSync(root, { recursive: true, force: true })
    if (err instanceof UsageError) throw err
    if (err instanceof DataDirError) {
      io.stderr(`kv-demo: ${err.message}\n`)
      return 1
    }
    throw err
  }
}

/** Removes a temporary data folder, or says where it was kept. */
export function closeDataDir(d: OpenedDataDir, keep: boolean, quiet: boolean, io: Io): void {
  if (d.useTemp && !keep) rmSync(d.root, { recursive: true, force: true })
  else if (d.useTemp && !quiet) io.stderr(`kv-demo: data kept in ${d.root}\n`)
}

/** Prints the supervisor's events on stderr, `[seconds] text`, clearing a progress line first. */
export function eventPrinter(io: Io, started: number, quiet: boolean): (e: SupervisorEvent) => void {
  return (e) => {
    if (io.isTTY) io.stderr('\r\x1b[2K')
    if (!quiet) io.stderr(`[${((e.at - started) / 1000).toFixed(1)}s] ${e.text}\n`)
  }
}

/** The supervisor's plain client (ordered and read-only requests to either group), started. */
export async function startSupervisorClient(layout: DataLayout, membership: Membership): Promise<ClientHost> {
  const { keyPair } = parseKeyFile(readFileSync(keyFile(layout, SUPERVISOR_ID), 'utf8'))
  const client = new ClientHost({ membership, id: SUPERVISOR_ID, keyPair, transport: createLibp2pTransport({ membership, keyPair }), clientConfig: CLIENT_CONFIG })
  await client.start()
  return client
}

/**
 * Ctrl-C (or SIGTERM): the first calls `onFirst` (the run winds down and reports), the second
 * kills every replica and exits at once. Returns the function that removes the handlers.
 */
export function trapInterrupts(sup: Supervisor, onFirst: () => void): () => void {
  let interrupted = false
  const onSignal = () => {
    if (interrupted) {
      sup.killAll()
      process.exit(130)
    }
    interrupted = true
    onFirst()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  return () => {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}
