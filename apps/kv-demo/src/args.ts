/**
 * The command line of `kv-demo`: parsing and validation only (no I/O), so every mistake is a
 * UsageError with a clear message before anything is written or started.
 */
import { BEHAVIOURS, type BehaviourName, isBehaviour } from './byzantine.js'

export class UsageError extends Error {
  override readonly name = 'UsageError'
}

export const DEFAULT_CHAOS_SECONDS = 180
/** Long enough for each group's first fault slot to fit an episode of any kind. */
export const MIN_CHAOS_SECONDS = 20
export const MAX_SEED = 0xffff_ffff

export const USAGE = `usage:
  kv-demo [demo] [options]        run the demo to completion and print a summary
  kv-demo up [options]            start the cluster (and the workload if --ops > 0), keep it running until Ctrl-C
  kv-demo chaos [options]         the workload under random crashes, partitions and pauses, then a
                                  crash of every replica and a restart from disk; checks every invariant
  kv-demo status [--data-dir DIR] [--json]
  kv-demo get KEY [--data-dir DIR] [--json]
  kv-demo put KEY VALUE [--data-dir DIR] [--json]
  kv-demo del KEY [--data-dir DIR] [--json]
  kv-demo cas KEY (--expect OLD | --expect-absent) (--value NEW | --delete) [--data-dir DIR] [--json]
  kv-demo scan [PREFIX] [--limit N] [--data-dir DIR] [--json]
  kv-demo help

demo and up options:
  --servers N          replicas of the KV group, 3f+1 (4, 7, 10, 13, 16); default 4
  --clients N          replicas of the bank (replicated client) group, 3f+1; default 4
  --ops N              transfers the bank performs (0..1000000); default 30 (up: 0)
  --data-dir DIR       keep keys, config and replica state in DIR and reuse them on the next run
                       (default: a fresh temporary folder, removed at the end)
  --fault SPEC         repeatable; seconds count from the start of the workload:
                         crash:<replica>@<seconds>         SIGKILL the replica's process
                         restart:<replica>@<seconds>       start it again from its folder
                         byzantine:<replica>=<behaviour>   ${BEHAVIOURS.join(', ')}
                       e.g. --fault byzantine:kv/1=wrong-result --fault crash:kv/3@2 --fault restart:kv/3@4
  --json               print the final summary as one JSON object on stdout
  --timeout SECONDS    give up on the workload after this long; default 60 + ops/4
  --dashboard-port P   serve the dashboard on 127.0.0.1:P (default: a free port); --no-dashboard: none
  --lanes N            concurrent transfer workflows of the bank (1..8); default 4
  --keep               keep the temporary data folder (its path is printed)

chaos options:
  --duration SECONDS   how long the workload runs under faults (${MIN_CHAOS_SECONDS}..86400); default ${DEFAULT_CHAOS_SECONDS}
  --seed N             the fault schedule's seed (0..4294967295); default random, printed (replays the schedule)
  --fault byzantine:<replica>=<behaviour>   repeatable: a Byzantine replica for the whole run (it takes
                       one of its group's f fault slots), e.g. --fault byzantine:kv/1=fuzz
  --servers N, --clients N, --lanes N, --data-dir DIR, --keep, --json   as for demo

client commands find the cluster through --data-dir DIR, else $BFTRC_KV_DEMO_DIR, else the folder
of the last \`kv-demo up\`.`

export type FaultSpec =
  | { readonly kind: 'crash' | 'restart'; readonly replica: string; readonly at: number; readonly text: string }
  | { readonly kind: 'byzantine'; readonly replica: string; readonly behaviour: BehaviourName; readonly text: string }

/** The options demo, up and chaos share. */
export interface ClusterOptions {
  readonly servers: number
  readonly clients: number
  /** Whether --servers/--clients were given (a reused data dir must then match). */
  readonly explicitSizes: boolean
  readonly dataDir: string | undefined
  readonly json: boolean
  /** Concurrent transfer workflows of the bank (fixed at its first run). */
  readonly lanes: number
}

export interface ChaosOptions extends ClusterOptions {
  readonly command: 'chaos'
  readonly keep: boolean
  readonly durationSeconds: number
  /** undefined: drawn at random when the run starts (and printed). */
  readonly seed: number | undefined
  /** Replicas that are Byzantine for the whole run, and how. */
  readonly byzantine: ReadonlyMap<string, BehaviourName>
}

export interface DemoOptions extends ClusterOptions {
  readonly command: 'demo' | 'up'
  readonly ops: number
  readonly faults: readonly FaultSpec[]
  readonly timeoutSeconds: number
  readonly dashboardPort: number | undefined
  readonly dashboard: boolean
  readonly keep: boolean
}

export type ClientCommand =
  | { readonly command: 'get'; readonly key: string }
  | { readonly command: 'put'; readonly key: string; readonly value: string }
  | { readonly command: 'del'; readonly key: string }
  | { readonly command: 'cas'; readonly key: string; readonly expect: string | null; readonly value: string | null }
  | { readonly command: 'scan'; readonly prefix: string; readonly limit: number | undefined }

export type Parsed =
  | { readonly command: 'help' }
  | DemoOptions
  | ChaosOptions
  | ({ readonly dataDir: string | undefined; readonly json: boolean } & ClientCommand)
  | { readonly command: 'status'; readonly dataDir: string | undefined; readonly json: boolean }

export const GROUP_SIZES = [4, 7, 10, 13, 16] as const
export const KV_GROUP = 'kv'
export const BANK_GROUP = 'bank'

const VALUE_OPTIONS = new Set(['--servers', '--clients', '--ops', '--data-dir', '--fault', '--timeout', '--dashboard-port', '--lanes', '--limit', '--expect', '--value', '--duration', '--seed'])
const FLAG_OPTIONS = new Set(['--json', '--no-dashboard', '--keep', '--expect-absent', '--delete', '--help', '-h'])

const ALLOWED: Record<string, readonly string[]> = {
  demo: ['--servers', '--clients', '--ops', '--data-dir', '--fault', '--json', '--timeout', '--dashboard-port', '--no-dashboard', '--lanes', '--keep'],
  up: ['--servers', '--clients', '--ops', '--data-dir', '--fault', '--json', '--timeout', '--dashboard-port', '--no-dashboard', '--lanes'],
  chaos: ['--servers', '--clients', '--data-dir', '--json', '--lanes', '--keep', '--duration', '--seed', '--fault'],
  status: ['--data-dir', '--json'],
  get: ['--data-dir', '--json'],
  put: ['--data-dir', '--json'],
  del: ['--data-dir', '--json'],
  cas: ['--data-dir', '--json', '--expect', '--expect-absent', '--value', '--delete'],
  scan: ['--data-dir', '--json', '--limit'],
  help: [],
}

function wholeNumber(text: string, what: string, min: number, max: number): number {
  if (!/^[0-9]+$/.test(text)) throw new UsageError(`${what}: expected a whole number, got "${text}"`)
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`${what}: expected ${min}..${max}, got ${text}`)
  return n
}

function groupSize(text: string, what: string): number {
  const n = wholeNumber(text, what, 1, 1000)
  if (!(GROUP_SIZES as readonly number[]).includes(n)) throw new UsageError(`${what} ${n}: a group needs 3f+1 replicas with f ≥ 1: one of ${GROUP_SIZES.join(', ')}`)
  return n
}

const REPLICA = /^(kv|bank)\/(0|[1-9][0-9]?)$/

function replicaOf(text: string, spec: string, sizes: { kv: number; bank: number }): string {
  const m = REPLICA.exec(text)
  if (m === null) throw new UsageError(`--fault ${spec}: "${text}" is not a replica (kv/<i> or bank/<i>)`)
  const group = m[1] as 'kv' | 'bank'
  const index = Number(m[2])
  if (index >= sizes[group]) throw new UsageError(`--fault ${spec}: ${group} has replicas ${group}/0..${group}/${sizes[group] - 1}`)
  return text
}

export function parseFault(spec: string, sizes: { kv: number; bank: number }): FaultSpec {
  const colon = spec.indexOf(':')
  const kind = colon < 0 ? spec : spec.slice(0, colon)
  const rest = colon < 0 ? '' : spec.slice(colon + 1)
  if (kind === 'crash' || kind === 'restart') {
    const at = rest.lastIndexOf('@')
    if (at < 0) throw new UsageError(`--fault ${spec}: expected ${kind}:<replica>@<seconds>, e.g. ${kind}:kv/3@2`)
    const replica = replicaOf(rest.slice(0, at), spec, sizes)
    const secs = rest.slice(at + 1)
    if (!/^[0-9]+(\.[0-9]+)?$/.test(secs) || Number(secs) > 86_400) throw new UsageError(`--fault ${spec}: "${secs}" is not a number of seconds (0..86400, e.g. 2 or 2.5)`)
    return { kind, replica, at: Number(secs), text: spec }
  }
  if (kind === 'byzantine') {
    const eq = rest.indexOf('=')
    if (eq < 0) throw new UsageError(`--fault ${spec}: expected byzantine:<replica>=<behaviour>, e.g. byzantine:kv/1=wrong-result`)
    const replica = replicaOf(rest.slice(0, eq), spec, sizes)
    const b = rest.slice(eq + 1)
    if (!isBehaviour(b)) throw new UsageError(`--fault ${spec}: unknown behaviour "${b}" (${BEHAVIOURS.join(', ')})`)
    return { kind, replica, behaviour: b, text: spec }
  }
  throw new UsageError(`--fault ${spec}: unknown fault "${kind}" (crash, restart, byzantine)`)
}

/** Checks a set of faults together: crash/restart order per replica, at most f Byzantine per group. */
export function checkFaults(faults: readonly FaultSpec[], sizes: { kv: number; bank: number }): string[] {
  const warnings: string[] = []
  const byz = new Map<string, string>()
  for (const f of faults) {
    if (f.kind !== 'byzantine') continue
    if (byz.has(f.replica)) throw new UsageError(`--fault ${f.text}: ${f.replica} is already Byzantine (${byz.get(f.replica)})`)
    byz.set(f.replica, f.behaviour)
  }
  for (const group of [KV_GROUP, BANK_GROUP] as const) {
    const fMax = (sizes[group] - 1) / 3
    const count = [...byz.keys()].filter((r) => r.startsWith(`${group}/`)).length
    if (count > fMax) throw new UsageError(`${count} Byzantine replicas in ${group}: a group of ${sizes[group]} tolerates f = ${fMax}`)
  }
  const timeline = new Map<string, Array<{ kind: 'crash' | 'restart'; at: number; text: string }>>()
  for (const f of faults) {
    if (f.kind === 'byzantine') continue
    timeline.set(f.replica, [...(timeline.get(f.replica) ?? []), f])
  }
  for (const [replica, events] of timeline) {
    events.sort((a, b) => a.at - b.at)
    let up = true
    let last = -1
    for (const e of events) {
      if (e.at === last) throw new UsageError(`--fault ${e.text}: two faults of ${replica} at the same time`)
      last = e.at
      if (e.kind === 'crash' && !up) throw new UsageError(`--fault ${e.text}: ${replica} is already down then (restart it first)`)
      if (e.kind === 'restart' && up) throw new UsageError(`--fault ${e.text}: ${replica} is not down then (crash it first)`)
      up = e.kind === 'restart'
    }
  }
  // Warn (not refuse) when a group may have more than f faulty replicas at once: safety holds,
  // progress may stall until a restart.
  for (const group of [KV_GROUP, BANK_GROUP] as const) {
    const fMax = (sizes[group] - 1) / 3
    const points = faults.filter((f) => f.kind !== 'byzantine' && f.replica.startsWith(`${group}/`)).map((f) => (f as { at: number }).at)
    for (const t of [0, ...points]) {
      const down = new Set<string>()
      for (const [replica, events] of timeline) {
        if (!replica.startsWith(`${group}/`)) continue
        let up = true
        for (const e of events) if (e.at <= t) up = e.kind === 'restart'
        if (!up) down.add(replica)
      }
      const faulty = new Set([...down, ...[...byz.keys()].filter((r) => r.startsWith(`${group}/`))])
      if (faulty.size > fMax) {
        warnings.push(`${group} has ${faulty.size} faulty replicas at ${t}s (f = ${fMax}): it may stall until a restart`)
        break
      }
    }
  }
  return warnings
}

export function parseArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = {}): Parsed {
  const positional: string[] = []
  const options = new Map<string, string[]>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if (arg === '--') continue
    if (arg.startsWith('-') && arg.length > 1 && !/^-[0-9]/.test(arg)) {
      const eq = arg.indexOf('=')
      const name = eq > 0 ? arg.slice(0, eq) : arg
      if (FLAG_OPTIONS.has(name)) {
        if (eq > 0) throw new UsageError(`${name} takes no value`)
        options.set(name, [...(options.get(name) ?? []), 'true'])
      } else if (VALUE_OPTIONS.has(name)) {
        let value: string | undefined
        if (eq > 0) value = arg.slice(eq + 1)
        else {
          value = argv[++i]
          if (value === undefined || (value.startsWith('--') && name !== '--value' && name !== '--expect')) throw new UsageError(`${name} needs a value`)
        }
        options.set(name, [...(options.get(name) ?? []), value])
      } else throw new UsageError(`unknown option ${name}`)
    } else positional.push(arg)
  }
  if (options.has('--help') || options.has('-h')) return { command: 'help' }
  const first = positional[0]
  const commands = Object.keys(ALLOWED)
  const command = first === undefined ? 'demo' : first
  if (!commands.includes(command)) throw new UsageError(`unknown command "${command}" (${commands.join(', ')})`)
  const args = first === undefined ? [] : positional.slice(1)
  for (const name of options.keys()) {
    if (!(ALLOWED[command] as readonly string[]).includes(name)) throw new UsageError(`${command} has no option ${name}`)
    if (name !== '--fault' && (options.get(name) as string[]).length > 1) throw new UsageError(`${name} given more than once`)
  }
  const one = (name: string) => options.get(name)?.[0]
  const json = options.has('--json')
  const dataDir = one('--data-dir') ?? (command === 'demo' || command === 'up' || command === 'chaos' ? undefined : env.BFTRC_KV_DEMO_DIR)
  if (dataDir === '') throw new UsageError('--data-dir: empty path')
  const noArgs = (n: number) => {
    if (args.length > n) throw new UsageError(`${command}: unexpected argument "${args[n]}"`)
  }
  const servers = one('--servers') === undefined ? 4 : groupSize(one('--servers') as string, '--servers')
  const clients = one('--clients') === undefined ? 4 : groupSize(one('--clients') as string, '--clients')
  // What demo, up and chaos share: the cluster and the workload's lanes.
  const cluster: ClusterOptions = {
    servers,
    clients,
    explicitSizes: options.has('--servers') || options.has('--clients'),
    dataDir,
    json,
    lanes: one('--lanes') === undefined ? 4 : wholeNumber(one('--lanes') as string, '--lanes', 1, 8),
  }
  switch (command) {
    case 'help':
      noArgs(0)
      return { command: 'help' }
    case 'chaos': {
      noArgs(0)
      const durationText = one('--duration')
      const seedText = one('--seed')
      const sizes = { kv: servers, bank: clients }
      const faults = (options.get('--fault') ?? []).map((s) => parseFault(s, sizes))
      const timed = faults.find((f) => f.kind !== 'byzantine')
      // Chaos draws its own crashes and restarts; what the user adds is who lies throughout.
      if (timed !== undefined) throw new UsageError(`--fault ${timed.text}: chaos takes only byzantine:<replica>=<behaviour> faults (it draws crashes itself)`)
      checkFaults(faults, sizes)
      return {
        command,
        ...cluster,
        keep: options.has('--keep'),
        durationSeconds: durationText === undefined ? DEFAULT_CHAOS_SECONDS : wholeNumber(durationText, '--duration', MIN_CHAOS_SECONDS, 86_400),
        seed: seedText === undefined ? undefined : wholeNumber(seedText, '--seed', 0, MAX_SEED),
        byzantine: new Map(faults.flatMap((f) => (f.kind === 'byzantine' ? [[f.replica, f.behaviour] as const] : []))),
      }
    }
    case 'demo':
    case 'up': {
      noArgs(0)
      const ops = one('--ops') === undefined ? (command === 'up' ? 0 : 30) : wholeNumber(one('--ops') as string, '--ops', 0, 1_000_000)
      const sizes = { kv: servers, bank: clients }
      const faults = (options.get('--fault') ?? []).map((s) => parseFault(s, sizes))
      checkFaults(faults, sizes)
      const timeoutText = one('--timeout')
      const timeoutSeconds = timeoutText === undefined ? 60 + Math.ceil(ops / 4) : wholeNumber(timeoutText, '--timeout', 1, 86_400)
      const portText = one('--dashboard-port')
      if (portText !== undefined && options.has('--no-dashboard')) throw new UsageError('--dashboard-port and --no-dashboard contradict each other')
      const dashboardPort = portText === undefined ? undefined : wholeNumber(portText, '--dashboard-port', 0, 65535)
      return {
        command,
        ...cluster,
        ops,
        faults,
        timeoutSeconds,
        dashboardPort,
        dashboard: !options.has('--no-dashboard'),
        keep: options.has('--keep'),
      }
    }
    case 'status':
      noArgs(0)
      return { command, dataDir, json }
    case 'get':
    case 'del': {
      noArgs(1)
      const key = args[0]
      if (key === undefined || key === '') throw new UsageError(`${command} needs a KEY`)
      return { command, key, dataDir, json }
    }
    case 'put': {
      noArgs(2)
      const [key, value] = args
      if (key === undefined || key === '' || value === undefined) throw new UsageError('put needs KEY and VALUE')
      return { command, key, value, dataDir, json }
    }
    case 'cas': {
      noArgs(1)
      const key = args[0]
      if (key === undefined || key === '') throw new UsageError('cas needs a KEY')
      const expectGiven = options.has('--expect')
      if (expectGiven === options.has('--expect-absent')) throw new UsageError('cas needs exactly one of --expect OLD and --expect-absent')
      if (options.has('--value') === options.has('--delete')) throw new UsageError('cas needs exactly one of --value NEW and --delete')
      return { command, key, expect: expectGiven ? (one('--expect') as string) : null, value: options.has('--value') ? (one('--value') as string) : null, dataDir, json }
    }
    case 'scan': {
      noArgs(1)
      const limitText = one('--limit')
      return { command, prefix: args[0] ?? '', limit: limitText === undefined ? undefined : wholeNumber(limitText, '--limit', 1, 1000), dataDir, json }
    }
  }
  throw new UsageError(`unknown command "${command}"`)
}

export type { BehaviourName }
