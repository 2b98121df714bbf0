/**
 * Starts every replica as its own OS process (`node dist/replica.js …`), watches them through
 * their control endpoints, crashes (SIGKILL) and restarts them on request, pauses them
 * (SIGSTOP/SIGCONT), partitions them (their control endpoint's `POST /partition`, with the
 * control secret each replica writes to the run folder), and stops them cleanly (SIGTERM, then
 * SIGKILL after a grace period).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Membership } from '@bftrc/crypto'
import type { BehaviourName } from './byzantine.js'
import { ControlSecretError, readControlSecret } from './control-secret.js'
import { type DataLayout, controlSecretFile, finalFile, keyFile, logFile, replicaDir, runFile } from './files.js'
import type { PartitionStatus } from './partition.js'
import { type ReplicaStatusJson, type RunFile, fetchStatus } from './status.js'

export type SlotState = 'starting' | 'up' | 'crashed' | 'stopping' | 'stopped' | 'died'

export interface ReplicaSlot {
  readonly id: string
  readonly group: string
  readonly index: number
  readonly byzantine: BehaviourName | undefined
  proc: ChildProcess | undefined
  pid: number | undefined
  state: SlotState
  restarts: number
  controlPort: number | undefined
  /** The running process's control secret, read from the run folder when first needed. */
  controlSecret: string | undefined
  status: ReplicaStatusJson | undefined
  statusAt: number
  /** Why the process ended, when it did. */
  exit: string | undefined
  /** We killed it (crash fault or stop): its exit is no failure. */
  expectedExit: boolean
  startedAt: number
  /** Stopped with SIGSTOP (not polled until SIGCONT). */
  paused: boolean
  /** Cut off from the other replicas by its control endpoint. */
  partitioned: boolean
}

export interface SupervisorEvent {
  readonly at: number
  readonly text: string
}

const REPLICA_SCRIPT = fileURLToPath(new URL('./replica.js', import.meta.url))

export class Supervisor {
  readonly slots: ReplicaSlot[] = []
  readonly events: SupervisorEvent[] = []
  /** Processes that ended without being asked to. */
  readonly failures: string[] = []
  private readonly t0 = Date.now()

  constructor(
    readonly layout: DataLayout,
    readonly membership: Membership,
    byzantine: ReadonlyMap<string, BehaviourName>,
    private readonly onEvent: (e: SupervisorEvent) => void = () => undefined,
  ) {
    for (const g of membership.groups.values()) {
      for (const m of g.members) {
        this.slots.push({
          id: m.id,
          group: g.name,
          index: m.index,
          byzantine: byzantine.get(m.id),
          proc: undefined,
          pid: undefined,
          state: 'stopped',
          restarts: 0,
          controlPort: undefined,
          controlSecret: undefined,
          status: undefined,
          statusAt: 0,
          exit: undefined,
          expectedExit: false,
          startedAt: 0,
          paused: false,
          partitioned: false,
        })
      }
    }
  }

  slot(id: string): ReplicaSlot {
    const s = this.slots.find((x) => x.id === id)
    if (s === undefined) throw new Error(`no replica ${id}`)
    return s
  }

  event(text: string): void {
    const e = { at: Date.now(), text }
    this.events.push(e)
    if (this.events.length > 200) this.events.splice(0, this.events.length - 200)
    this.onEvent(e)
  }

  private spawnOne(slot: ReplicaSlot, waitPeersMs: number): void {
    rmSync(runFile(this.layout, slot.id), { force: true })
    rmSync(finalFile(this.layout, slot.id), { force: true })
    rmSync(controlSecretFile(this.layout, slot.id), { force: true })
    const log = openSync(logFile(this.layout, slot.id), 'a')
    // KV_DEMO_NODE_ARGS: extra node options for the replicas (profiling: --cpu-prof --cpu-prof-dir=DIR).
    const nodeArgs = (process.env.KV_DEMO_NODE_ARGS ?? '').split(' ').filter((a) => a !== '')
    const args = [
      ...nodeArgs,
      REPLICA_SCRIPT,
      '--config',
      this.layout.config,
      '--key',
      keyFile(this.layout, slot.id),
      '--data-dir',
      replicaDir(this.layout, slot.id),
      '--run-dir',
      this.layout.run,
      '--parent-pid',
      String(process.pid),
      '--wait-peers-ms',
      String(waitPeersMs),
      ...(slot.byzantine !== undefined ? ['--byzantine', slot.byzantine] : []),
    ]
    const proc = spawn(process.execPath, args, { stdio: ['ignore', log, log], env: { ...process.env } })
    closeSync(log)
    slot.proc = proc
    slot.pid = proc.pid
    slot.state = 'starting'
    slot.controlPort = undefined
    slot.controlSecret = undefined
    slot.status = undefined
    slot.exit = undefined
    slot.expectedExit = false
    slot.startedAt = Date.now()
    slot.paused = false
    slot.partitioned = false
    proc.once('exit', (code, signal) => {
      const how = signal !== null ? `killed by ${signal}` : `exited with code ${code}`
      slot.exit = how
      slot.proc = undefined
      if (slot.expectedExit) {
        if (slot.state === 'stopping') slot.state = 'stopped'
        return
      }
      slot.state = 'died'
      const msg = `${slot.id} ${how} unexpectedly (log: ${logFile(this.layout, slot.id)})`
      this.failures.push(msg)
      this.event(msg)
    })
    proc.once('error', (err) => {
      slot.exit = err.message
      slot.state = 'died'
      this.failures.push(`${slot.id}: ${err.message}`)
    })
  }

  /** Starts every replica and waits until each answers on its control port. */
  async startAll(timeoutMs = 30_000): Promise<void> {
    // Peers of a group start within seconds of each other, unless the machine is very busy.
    for (const slot of this.slots) this.spawnOne(slot, timeoutMs)
    this.event(`started ${this.slots.length} replica processes`)
    await this.waitUp(this.slots, timeoutMs)
  }

  async waitUp(slots: readonly ReplicaSlot[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (slots.some((s) => s.state === 'starting')) {
      await this.poll()
      const dead = slots.filter((s) => s.state === 'died')
      if (dead.length > 0) throw new Error(`replica ${dead.map((s) => `${s.id} (${s.exit})`).join(', ')} did not start; see ${this.layout.run}/*.log`)
      if (Date.now() > deadline) {
        const late = slots.filter((s) => s.state === 'starting').map((s) => s.id)
        throw new Error(`replicas ${late.join(', ')} did not come up within ${timeoutMs / 1000} s; see ${this.layout.run}/*.log`)
      }
      await sleep(100)
    }
  }

  /** Reads run files of starting replicas and every live replica's status. */
  async poll(): Promise<void> {
    await Promise.all(
      this.slots.map(async (slot) => {
        if ((slot.state !== 'starting' && slot.state !== 'up') || slot.paused) return
        if (slot.controlPort === undefined) {
          const path = runFile(this.layout, slot.id)
          if (!existsSync(path)) return
          try {
            const rf = JSON.parse(readFileSync(path, 'utf8')) as RunFile
            if (rf.pid !== slot.pid) return
            slot.controlPort = rf.controlPort
          } catch {
            return
          }
        }
        const st = await fetchStatus(slot.controlPort, 1500)
        if (st !== undefined && (slot.state === 'starting' || slot.state === 'up')) {
          if (slot.state === 'starting') {
            slot.state = 'up'
            this.event(`${slot.id} up${st.restored ? ' (restarted from disk)' : ''}${slot.byzantine !== undefined ? `, Byzantine: ${slot.byzantine}` : ''}`)
          }
          slot.status = st
          slot.statusAt = Date.now()
        }
      }),
    )
  }

  /** SIGKILL: the process dies at once, whatever it was doing. */
  crash(id: string): void {
    const slot = this.slot(id)
    if (slot.proc === undefined || (slot.state !== 'up' && slot.state !== 'starting')) {
      this.event(`crash ${id}: not running, nothing to do`)
      return
    }
    slot.expectedExit = true
    slot.state = 'crashed'
    slot.proc.kill('SIGKILL')
    this.event(`${id} crashed (SIGKILL)`)
  }

  /**
   * Starts a crashed replica again from its folder; resolves once the new process is spawned.
   * It ticks after `waitPeersMs` even if a peer is unreachable: short when the rest of its group
   * is running, long when the whole cluster restarts at once.
   */
  restart(id: string, waitPeersMs = 3_000): Promise<void> {
    const slot = this.slot(id)
    if (slot.state !== 'crashed' && slot.state !== 'died') {
      this.event(`restart ${id}: it is ${slot.state}, nothing to do`)
      return Promise.resolve()
    }
    const start = () => {
      slot.restarts++
      this.spawnOne(slot, waitPeersMs)
      this.event(`${id} restarting from ${replicaDir(this.layout, id)}`)
    }
    // The killed process must be gone (its LevelDB lock released) before the new one opens the folder.
    const proc = slot.proc
    if (proc === undefined) {
      start()
      return Promise.resolve()
    }
    return new Promise((resolve) =>
      proc.once('exit', () => {
        start()
        resolve()
      }),
    )
  }

  /** SIGSTOP: the process keeps its sockets and state but runs nothing until `resume`. */
  pause(id: string): boolean {
    const slot = this.slot(id)
    if (slot.proc === undefined || slot.state !== 'up' || slot.paused) return false
    slot.proc.kill('SIGSTOP')
    slot.paused = true
    this.event(`${id} paused (SIGSTOP)`)
    return true
  }

  /** SIGCONT after `pause`. */
  resume(id: string): void {
    const slot = this.slot(id)
    if (!slot.paused) return
    slot.paused = false
    if (slot.proc === undefined) return
    slot.proc.kill('SIGCONT')
    this.event(`${id} resumed (SIGCONT)`)
  }

  /** Switches a replica's partition through its control endpoint; undefined when it does not answer. */
  async partition(id: string, partitioned: boolean, timeoutMs = 3_000): Promise<PartitionStatus | undefined> {
    const slot = this.slot(id)
    if (slot.state !== 'up' || slot.controlPort === undefined || slot.paused) return undefined
    try {
      // The replica wrote its secret before the run file that gave us the port: it is this process's.
      slot.controlSecret ??= readControlSecret(controlSecretFile(this.layout, id))
      const res = await fetch(`http://127.0.0.1:${slot.controlPort}/partition`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${slot.controlSecret}` },
        body: JSON.stringify({ partitioned }),
        signal: AbortSignal.timeout(timeoutMs),
      })
      if (!res.ok) {
        this.event(`partition ${id}: refused with ${res.status}: ${(await res.text()).trim().slice(0, 200)}`)
        return undefined
      }
      const st = (await res.json()) as PartitionStatus
      slot.partitioned = st.partitioned
      this.event(partitioned ? `${id} partitioned away from every other replica` : `${id} reconnected (${st.droppedIn} frames dropped in, ${st.droppedOut} out)`)
      return st
    } catch (err) {
      if (err instanceof ControlSecretError) this.event(`partition ${id}: ${err.message}`)
      return undefined
    }
  }

  /** SIGKILL every live replica at once (a power cut); they can be restarted from their folders. */
  crashAll(): void {
    for (const s of this.slots) {
      if (s.proc === undefined || (s.state !== 'up' && s.state !== 'starting')) continue
      s.expectedExit = true
      s.state = 'crashed'
      s.proc.kill('SIGKILL')
    }
    this.event('every replica crashed (SIGKILL)')
  }

  /** SIGTERM every live replica, SIGKILL what is left after `graceMs`. */
  async stopAll(graceMs = 10_000): Promise<void> {
    const live = this.slots.filter((s) => s.proc !== undefined)
    const exits = live.map((s) => new Promise<void>((resolve) => (s.proc === undefined ? resolve() : s.proc.once('exit', () => resolve()))))
    for (const s of live) {
      s.expectedExit = true
      s.state = 'stopping'
      s.proc?.kill('SIGTERM')
      // A paused process handles SIGTERM only once it runs again.
      if (s.paused) this.resume(s.id)
    }
    const timer = setTimeout(() => {
      for (const s of live) {
        if (s.proc !== undefined) {
          this.event(`${s.id} did not stop within ${graceMs / 1000} s: SIGKILL`)
          s.proc.kill('SIGKILL')
        }
      }
    }, graceMs)
    await Promise.all(exits)
    clearTimeout(timer)
  }

  /** Kills every child at once (the supervisor is going away). */
  killAll(): void {
    for (const s of this.slots) {
      if (s.proc !== undefined) {
        s.expectedExit = true
        s.proc.kill('SIGKILL')
      }
    }
  }

  /** The final status a replica wrote when it stopped, if it did. */
  finalStatus(id: string): ReplicaStatusJson | undefined {
    try {
      return JSON.parse(readFileSync(finalFile(this.layout, id), 'utf8')) as ReplicaStatusJson
    } catch {
      return undefined
    }
  }

  elapsed(): number {
    return (Date.now() - this.t0) / 1000
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}
