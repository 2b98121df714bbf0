#!/usr/bin/env node
/**
 * One replica of the demo as its own OS process:
 *
 *   node dist/replica.js --config DIR/config.json --key DIR/keys/kv-0.key.json
 *                        --data-dir DIR/replicas/kv-0 [--run-dir DIR/run] [--app kv|bank]
 *                        [--byzantine silent|wrong-result|equivocate|forge|fuzz|slow]
 *
 * It opens its LevelDB folder (restarting from it when it holds state), runs a Voter with the KV
 * or bank application over libp2p on the addresses of the config, and serves its status as JSON
 * on a control port (http://127.0.0.1:<port>/status, control.ts; `POST /partition` cuts it off
 * from the other replicas), which it writes to `<run-dir>/<id>.json`. Mutating requests need the
 * control secret it makes at each start and writes (0600) to `<run-dir>/<id>.control-secret`
 * before the run file; without --run-dir the secret stays in memory, so nothing can mutate.
 * On SIGTERM or SIGINT it stops cleanly and writes its final status to `<run-dir>/<id>.final.json`.
 * Exit codes: 0 stopped, 1 a fatal error (storage, config, key), 2 bad arguments.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { type Server, createServer } from 'node:http'
import { join } from 'node:path'
import { type Frame, type GroupApp, decodeInterGroup } from '@bftrc/client-agreement'
import { DEFAULT_LIMITS, decodeMessage, scopeOf } from '@bftrc/core-agreement'
import { type VoterHost, openVoterHost } from '@bftrc/client-agreement/node-host'
import { Membership, parseKeyFile } from '@bftrc/crypto'
import { createLibp2pTransport } from '@bftrc/libp2p-transport'
import { BankApp } from './bank-app.js'
import { BEHAVIOURS, type BehaviourName, behaviour, fuzzer, isBehaviour, slowPrimary } from './byzantine.js'
import { controlHandler } from './control.js'
import { newControlSecret, readControlSecret, writeControlSecret } from './control-secret.js'
import { controlSecretPath, label, writeFileAtomic } from './files.js'
import { KvApp } from './kv-app.js'
import { PartitionableTransport } from './partition.js'
import { VOTER_CONFIG } from './settings.js'

class UsageError extends Error {}

interface ReplicaArgs {
  config: string
  key: string
  dataDir: string
  runDir: string | undefined
  app: 'kv' | 'bank' | undefined
  byzantine: BehaviourName | undefined
  parentPid: number | undefined
  waitPeersMs: number
}

export function parseReplicaArgs(argv: readonly string[]): ReplicaArgs {
  const out: Partial<ReplicaArgs> = {}
  const names: Record<string, keyof ReplicaArgs> = { '--config': 'config', '--key': 'key', '--data-dir': 'dataDir', '--run-dir': 'runDir', '--app': 'app', '--byzantine': 'byzantine', '--parent-pid': 'parentPid', '--wait-peers-ms': 'waitPeersMs' }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    const field = names[arg]
    if (field === undefined) throw new UsageError(`unknown argument ${arg}`)
    const value = argv[++i]
    if (value === undefined || value.startsWith('--')) throw new UsageError(`${arg} needs a value`)
    if (out[field] !== undefined) throw new UsageError(`${arg} given twice`)
    ;(out as Record<string, string>)[field] = value
  }
  for (const f of ['config', 'key', 'dataDir'] as const) if (out[f] === undefined) throw new UsageError(`--${f === 'dataDir' ? 'data-dir' : f} is required`)
  if (out.app !== undefined && out.app !== 'kv' && out.app !== 'bank') throw new UsageError(`--app ${out.app}: expected kv or bank`)
  if (out.byzantine !== undefined && !isBehaviour(out.byzantine)) throw new UsageError(`--byzantine ${out.byzantine}: expected one of ${BEHAVIOURS.join(', ')}`)
  const parentPid = out.parentPid === undefined ? undefined : Number(out.parentPid)
  if (parentPid !== undefined && !(Number.isSafeInteger(parentPid) && parentPid > 0)) throw new UsageError(`--parent-pid ${out.parentPid}: expected a process id`)
  const waitPeersMs = out.waitPeersMs === undefined ? 5_000 : Number(out.waitPeersMs)
  if (!(Number.isSafeInteger(waitPeersMs) && waitPeersMs >= 0 && waitPeersMs <= 600_000)) throw new UsageError(`--wait-peers-ms ${out.waitPeersMs}: expected 0..600000`)
  return { config: out.config as string, key: out.key as string, dataDir: out.dataDir as string, runDir: out.runDir, app: out.app, byzantine: out.byzantine, parentPid, waitPeersMs }
}

function log(id: string, line: string): void {
  process.stderr.write(`${new Date().toISOString()} ${id} ${line}\n`)
}

async function main(): Promise<number> {
  let args: ReplicaArgs
  try {
    args = parseReplicaArgs(process.argv.slice(2))
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`replica: ${err.message}\nusage: replica --config FILE --key FILE --data-dir DIR [--run-dir DIR] [--app kv|bank] [--byzantine ${BEHAVIOURS.join('|')}] [--parent-pid PID] [--wait-peers-ms N]\n`)
      return 2
    }
    throw err
  }
  const membership = Membership.parse(readFileSync(args.config, 'utf8'))
  const { id, keyPair } = parseKeyFile(readFileSync(args.key, 'utf8'))
  const member = membership.member(id)
  if (member === undefined) throw new Error(`${id} (from ${args.key}) is not a replica of ${args.config}`)
  const appName = args.app ?? (member.group === 'kv' ? 'kv' : member.group === 'bank' ? 'bank' : undefined)
  if (appName === undefined) throw new Error(`no application for group ${member.group}: pass --app kv|bank`)
  const app: GroupApp & { summary?: () => unknown } = appName === 'kv' ? new KvApp() : new BankApp()
  mkdirSync(args.dataDir, { recursive: true })
  // A fresh control secret for this process, on disk (owner-only) before anything can use the port.
  const controlSecret = newControlSecret()
  let secretFile: string | undefined
  if (args.runDir !== undefined) {
    mkdirSync(args.runDir, { recursive: true })
    secretFile = controlSecretPath(args.runDir, id)
    writeControlSecret(secretFile, controlSecret)
  }
  const transport = createLibp2pTransport({ membership, keyPair, onError: (err, context) => log(id, `transport ${context}: ${(err as Error).message ?? err}`) })
  const network = new PartitionableTransport(transport, (peer) => peer !== id && membership.member(peer) !== undefined)
  let stopping: Promise<void> | undefined
  const scope = scopeOf(membership, member.group)
  const fuzz = args.byzantine === 'fuzz' ? fuzzer({ self: id, group: member.group, keyPair, scope, membership, seed: randomBytes(4).readUInt32LE(0) }) : undefined
  const slow = args.byzantine === 'slow' ? slowPrimary({ self: id, group: member.group, keyPair, scope }, () => Date.now()) : undefined
  const scripted = args.byzantine !== undefined && args.byzantine !== 'fuzz' && args.byzantine !== 'slow' ? behaviour(args.byzantine, { self: id, group: member.group, keyPair, scope }) : undefined
  const rewrite = fuzz?.outbound ?? slow?.outbound ?? scripted
  const { host, restored } = await openVoterHost({
    membership,
    self: id,
    keyPair,
    app,
    dataDir: args.dataDir,
    transport: network,
    config: VOTER_CONFIG,
    ...outboundHook(rewrite, id),
    ...(process.env.KV_DEMO_TRACE === '1' || fuzz !== undefined
      ? {
          inbound: (from: string, bytes: Uint8Array) => {
            if (process.env.KV_DEMO_TRACE === '1') trace(id, `in ${from} ${describe(bytes)}`)
            return fuzz?.inbound(from, bytes) ?? true
          },
        }
      : {}),
    onReady: (r) => {
      for (const e of r.events) if (e.kind !== 'stable-checkpoint') log(id, `event ${JSON.stringify(e)}`)
    },
    // Tick (and so propose the group's first batch, or time a view change) once the peers of the
    // group are reachable, or after --wait-peers-ms (a peer may be down: a restart while another
    // is crashed). The supervisor gives a long wait when it starts the whole cluster.
    tickAfter: () =>
      transport.whenConnected(
        membership.group(member.group)!.members.filter((m) => m.id !== id).map((m) => m.id),
        Math.max(1, args.waitPeersMs),
      ),
    onFatal: (err) => {
      log(id, `fatal: ${(err as Error).stack ?? err}`)
      process.exitCode = 1
      void shutdown('fatal')
    },
  })
  log(id, `${restored ? 'restarted from' : 'fresh in'} ${args.dataDir}${args.byzantine !== undefined ? `, Byzantine: ${args.byzantine}` : ''}`)

  const summary = () => {
    const s = host.status()
    const appSummary = app instanceof KvApp ? { ...app.summary(), contentDigest: app.contentDigest() } : app instanceof BankApp ? app.progress() : undefined
    const cpu = process.cpuUsage()
    return { ...s, pid: process.pid, byzantine: args.byzantine ?? null, restored, app: appName, appSummary, partition: network.status(), cpuMs: Math.round((cpu.user + cpu.system) / 1000), rssBytes: process.memoryUsage.rss() }
  }
  const server: Server = createServer(
    controlHandler({
      secret: controlSecret,
      status: summary,
      partition: (on) => {
        const before = network.status().partitioned
        const after = network.set(on)
        if (before !== on) log(id, on ? 'partitioned: dropping every frame to and from other replicas' : `partition healed (${after.droppedIn} frames dropped in, ${after.droppedOut} out so far)`)
        return after
      },
    }),
  )
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as { port: number }).port

  const shutdown = (why: string): Promise<void> => {
    if (stopping !== undefined) return stopping
    stopping = (async () => {
      log(id, `stopping (${why})`)
      try {
        await stopHost(host)
      } catch (err) {
        log(id, `stop: ${(err as Error).message}`)
        process.exitCode = 1
      }
      if (args.runDir !== undefined) {
        try {
          writeFileAtomic(join(args.runDir, `${label(id)}.final.json`), `${JSON.stringify({ ...summary(), stoppedAt: Date.now(), why })}\n`)
        } catch (err) {
          log(id, `final status: ${(err as Error).message}`)
        }
      }
      server.close()
      server.closeAllConnections()
      removeSecret(secretFile, controlSecret)
      log(id, 'stopped')
      // libp2p may leave timers behind; the process is done.
      setTimeout(() => process.exit(), 50).unref()
    })()
    return stopping
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  process.on('SIGINT', () => void shutdown('SIGINT'))
  if (args.parentPid !== undefined) {
    // The supervisor died without stopping us (kill -9): stop too rather than linger.
    const parent = args.parentPid
    setInterval(() => {
      try {
        process.kill(parent, 0)
      } catch {
        void shutdown('supervisor gone')
      }
    }, 1000).unref()
  }

  await host.start()
  if (fuzz !== undefined) {
    // The generated messages: every 10 ms, addressed to the replicas of both groups, sent as
    // this replica (the transport authenticates it; it signs with its own key only).
    setInterval(() => {
      const s = host.status()
      for (const f of fuzz.tick({ view: s.view, lastExecuted: s.lastExecuted, stable: s.stableCheckpoint })) network.send(f.to, f.bytes)
    }, 10).unref()
  }
  if (slow !== undefined) {
    // The pre-prepares it held back, once their delay is over.
    setInterval(() => {
      for (const f of slow.due(Date.now())) network.send(f.to, f.bytes)
    }, 10).unref()
  }
  if (args.runDir !== undefined) {
    mkdirSync(args.runDir, { recursive: true })
    writeFileAtomic(join(args.runDir, `${label(id)}.json`), `${JSON.stringify({ id, pid: process.pid, controlPort: port, startedAt: Date.now(), byzantine: args.byzantine ?? null })}\n`)
  }
  log(id, `running: control http://127.0.0.1:${port}/status, listening on ${member.addrs.join(' ')}`)
  return 0
}

function describe(bytes: Uint8Array): string {
  try {
    if (bytes[0] === 0xc1) {
      const m = decodeInterGroup(bytes, 1 << 20)
      return `${m.t} k=${m.k}${m.t === 'reply-share' && m.result !== undefined ? ' full' : ''}`
    }
    const m = decodeMessage(bytes, DEFAULT_LIMITS) as unknown as Record<string, unknown>
    return `${m.t} v=${m.view ?? ''} s=${m.seq ?? ''}${m.t === 'pre-prepare' ? ` n=${((m.batch as { proposals?: unknown[] }).proposals ?? []).length}` : ''}`
  } catch {
    return 'undecodable'
  }
}

function trace(id: string, line: string): void {
  process.stderr.write(`${(performance.timeOrigin + performance.now()).toFixed(1)} ${id} ${line}\n`)
}

/** The Byzantine behaviour, if any, and a trace of outbound frames when KV_DEMO_TRACE=1. */
function outboundHook(b: ((f: Frame) => readonly Frame[]) | undefined, id: string): { outbound?: (f: Frame) => readonly Frame[] } {
  if (process.env.KV_DEMO_TRACE !== '1') return b === undefined ? {} : { outbound: b }
  return {
    outbound: (f) => {
      trace(id, `out ${f.to} ${describe(f.bytes)}`)
      return b === undefined ? [f] : b(f)
    },
  }
}

/** Removes this process's control secret file, unless it already holds another process's secret. */
function removeSecret(path: string | undefined, secret: string): void {
  if (path === undefined) return
  try {
    if (readControlSecret(path) === secret) rmSync(path, { force: true })
  } catch {
    // gone or replaced: not ours to remove
  }
}

async function stopHost(host: VoterHost): Promise<void> {
  await host.stop()
}

main().then(
  (code) => {
    if (code !== 0) process.exit(code)
  },
  (err: unknown) => {
    process.stderr.write(`replica: ${(err as Error).message ?? err}\n`)
    process.exit(1)
  },
)
