/**
 * `pnpm load`: its options and its arrival schedule. Pure (no I/O, no clock), tested by
 * test/load-plan.test.ts.
 */
import { resolve } from 'node:path'
import { Sfc32 } from '@bftrc/crypto'

/** A bad command line: the script prints the message and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

export type ArrivalProcess = 'poisson' | 'uniform'

export interface LoadOptions {
  readonly quick: boolean
  /** Offered rates (operations per second), one step each, strictly increasing. */
  readonly steps: readonly number[]
  readonly stepSeconds: number
  /** Client identities of the generator: at most this many requests outstanding at once. */
  readonly clients: number
  /** A request not answered this long after its scheduled arrival counts as timed out. */
  readonly timeoutMs: number
  readonly arrivals: ArrivalProcess
  readonly seed: number
  /** The replicas' request queue bound (core `maxPendingRequests`); undefined: the demo's setting (10 000). */
  readonly maxPending: number | undefined
  readonly json: string | undefined
  /** Where the replicas' LevelDB folders go. */
  readonly dataRoot: string
  readonly help: boolean
}

export const LIMITS = {
  maxSteps: 32,
  maxRate: 20_000,
  minStepSeconds: 1,
  maxStepSeconds: 600,
  /** libp2p-transport admits 1024 open clients per replica; the generator needs one more. */
  maxClients: 1000,
  minTimeoutMs: 100,
  maxTimeoutMs: 120_000,
  /** Arrivals scheduled in one step (rate × seconds), so the schedule itself stays small. */
  maxArrivalsPerStep: 1_000_000,
  maxPending: 100_000,
} as const

/**
 * The ladders reach far past the saturation of this 2-core machine (50–100 ops/s when other jobs
 * load it, 400–800 when it is quiet): rates past saturation cost the generator little, the excess
 * is shed at once.
 */
export const FULL_DEFAULTS = { steps: [25, 50, 100, 200, 400, 800, 1600, 3200], stepSeconds: 10, clients: 128 } as const
export const QUICK_DEFAULTS = { steps: [100, 400, 1600, 6400], stepSeconds: 4, clients: 64 } as const

export const USAGE = `usage: load [--quick] [--steps R1,R2,...] [--step-seconds S] [--clients N] [--timeout-ms MS]
            [--arrivals poisson|uniform] [--seed N] [--max-pending N] [--json FILE] [--data-root DIR]
  --steps          offered rates in operations/s, strictly increasing (default ${FULL_DEFAULTS.steps.join(',')}; --quick ${QUICK_DEFAULTS.steps.join(',')})
  --step-seconds   length of each step, ${LIMITS.minStepSeconds}..${LIMITS.maxStepSeconds} (default ${FULL_DEFAULTS.stepSeconds}; --quick ${QUICK_DEFAULTS.stepSeconds})
  --clients        client identities = most requests outstanding, 1..${LIMITS.maxClients} (default ${FULL_DEFAULTS.clients}; --quick ${QUICK_DEFAULTS.clients})
  --timeout-ms     deadline of a request from its scheduled arrival, ${LIMITS.minTimeoutMs}..${LIMITS.maxTimeoutMs} (default 5000)
  --arrivals       poisson (default) or uniform (evenly spaced)
  --seed           seed of the Poisson arrivals, 0..2^32-1 (default 1)
  --max-pending    the replicas' request queue bound, maxPendingRequests, 1..${LIMITS.maxPending} (default: the demo's, 10000);
                   below --clients it makes the primary shed requests (dropped.queue-full)`

function positiveNumber(flag: string, text: string, min: number, max: number, integer: boolean): number {
  if (!/^[0-9]+(\.[0-9]+)?$/.test(text)) throw new UsageError(`${flag}: '${text}' is not a number`)
  const v = Number(text)
  if (integer && !Number.isInteger(v)) throw new UsageError(`${flag}: '${text}' is not a whole number`)
  if (v < min || v > max) throw new UsageError(`${flag}: ${text} is outside ${min}..${max}`)
  return v
}

export function parseSteps(text: string): number[] {
  const parts = text.split(',')
  if (text === '' || parts.length > LIMITS.maxSteps) throw new UsageError(`--steps: give 1..${LIMITS.maxSteps} rates separated by commas`)
  const steps = parts.map((p) => positiveNumber('--steps', p.trim(), 1, LIMITS.maxRate, true))
  for (let i = 1; i < steps.length; i++) {
    if ((steps[i] as number) <= (steps[i - 1] as number)) throw new UsageError(`--steps: rates must increase (${steps[i - 1]} then ${steps[i]})`)
  }
  return steps
}

/** Parses the command line (`cwd` resolves relative paths). Throws UsageError. */
export function parseLoadArgs(argv: readonly string[], cwd: string, defaultDataRoot: string): LoadOptions {
  const given = new Map<string, string>()
  let quick = false
  let help = false
  const valued = new Set(['--steps', '--step-seconds', '--clients', '--timeout-ms', '--arrivals', '--seed', '--max-pending', '--json', '--data-root'])
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    if (a === '--') continue
    if (a === '--quick') quick = true
    else if (a === '--help' || a === '-h') help = true
    else {
      const eq = a.indexOf('=')
      const flag = eq > 0 ? a.slice(0, eq) : a
      if (!valued.has(flag)) throw new UsageError(`unknown argument '${a}'`)
      if (given.has(flag)) throw new UsageError(`${flag} given twice`)
      const value = eq > 0 ? a.slice(eq + 1) : argv[++i]
      if (value === undefined || (eq < 0 && value.startsWith('--'))) throw new UsageError(`${flag} needs a value`)
      given.set(flag, value)
    }
  }
  const d = quick ? QUICK_DEFAULTS : FULL_DEFAULTS
  const get = (flag: string) => given.get(flag)
  const arrivals = get('--arrivals') ?? 'poisson'
  if (arrivals !== 'poisson' && arrivals !== 'uniform') throw new UsageError(`--arrivals: '${arrivals}' is neither poisson nor uniform`)
  const steps = get('--steps') === undefined ? [...d.steps] : parseSteps(get('--steps') as string)
  const stepSeconds = get('--step-seconds') === undefined ? d.stepSeconds : positiveNumber('--step-seconds', get('--step-seconds') as string, LIMITS.minStepSeconds, LIMITS.maxStepSeconds, false)
  const top = steps[steps.length - 1] as number
  if (top * stepSeconds > LIMITS.maxArrivalsPerStep) throw new UsageError(`a step of ${top} ops/s for ${stepSeconds} s schedules more than ${LIMITS.maxArrivalsPerStep} arrivals`)
  const json = get('--json')
  const dataRoot = get('--data-root')
  return {
    quick,
    help,
    steps,
    stepSeconds,
    clients: get('--clients') === undefined ? d.clients : positiveNumber('--clients', get('--clients') as string, 1, LIMITS.maxClients, true),
    timeoutMs: get('--timeout-ms') === undefined ? 5000 : positiveNumber('--timeout-ms', get('--timeout-ms') as string, LIMITS.minTimeoutMs, LIMITS.maxTimeoutMs, true),
    arrivals,
    seed: get('--seed') === undefined ? 1 : positiveNumber('--seed', get('--seed') as string, 0, 2 ** 32 - 1, true),
    maxPending: get('--max-pending') === undefined ? undefined : positiveNumber('--max-pending', get('--max-pending') as string, 1, LIMITS.maxPending, true),
    json: json === undefined ? undefined : resolve(cwd, json),
    dataRoot: dataRoot === undefined ? defaultDataRoot : resolve(cwd, dataRoot),
  }
}

/** A seeded generator for the arrivals of one step (step index mixed in, so steps differ). */
export function arrivalRng(seed: number, step: number): Sfc32 {
  const rng = new Sfc32(seed, 0x9e3779b9, step, 0x85ebca6b)
  for (let i = 0; i < 12; i++) rng.uint32() // sfc32's recommended warm-up
  return rng
}

/**
 * The arrival times (milliseconds from the start of the step, increasing, all below
 * `seconds`) of an open-loop step at `rate` operations per second: evenly spaced, or a Poisson
 * process (exponential gaps). They do not depend on how fast anything is answered.
 */
export function arrivalOffsets(rate: number, seconds: number, process: ArrivalProcess, rng: Sfc32): number[] {
  if (!(rate > 0 && seconds > 0) || rate * seconds > LIMITS.maxArrivalsPerStep) throw new RangeError(`no schedule for ${rate} ops/s over ${seconds} s`)
  const windowMs = seconds * 1000
  const out: number[] = []
  if (process === 'uniform') {
    const n = Math.floor(rate * seconds)
    for (let i = 0; i < n; i++) out.push((i * 1000) / rate)
    return out
  }
  // Poisson: the count is random; cap it far above its mean (the cap is never reached in practice).
  const cap = Math.ceil(rate * seconds * 2 + 100)
  let t = -Math.log(1 - rng.float()) * (1000 / rate)
  while (t < windowMs && out.length < cap) {
    out.push(t)
    t += -Math.log(1 - rng.float()) * (1000 / rate)
  }
  return out
}
