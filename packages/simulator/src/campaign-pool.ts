/**
 * A campaign of a group scenario spread over worker threads, with a watchdog: each seed must
 * finish within `seedTimeoutMs` of wall-clock time, or its worker is stopped and the seed is
 * reported as a hang (a `step` that never returns cannot be interrupted in its own thread; this
 * is how a hang becomes a failure with its seed). The simulated runs themselves stay
 * deterministic: the watchdog only decides when to give up on one.
 */
import { Worker } from 'node:worker_threads'
import type { Violation } from './checkers.js'
import type { SeedSummary } from './seed-summary.js'

export interface PoolOptions {
  readonly scenario: string
  readonly seeds: number
  readonly firstSeed?: number
  readonly f?: number
  readonly calls?: number
  /** Worker threads (default 1). */
  readonly workers?: number
  /** Wall-clock time one seed may take before it counts as a hang (default 120 s). */
  readonly seedTimeoutMs?: number
  readonly onSeed?: (s: SeedSummary) => void
}

export interface PoolReport {
  readonly summaries: readonly SeedSummary[]
  readonly failingSeeds: readonly number[]
  readonly violations: ReadonlyArray<Violation & { readonly seed: number }>
}

/** A worker running campaign-worker (compiled, or through tsx when this module is TypeScript source). */
function spawn(): Worker {
  const url = new URL(import.meta.url.endsWith('.ts') ? './campaign-worker.ts' : './campaign-worker.js', import.meta.url)
  if (url.pathname.endsWith('.js')) return new Worker(url)
  const source = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}) })`
  return new Worker(source, { eval: true })
}

export function runPool(o: PoolOptions): Promise<PoolReport> {
  const first = o.firstSeed ?? 1
  const queue = Array.from({ length: o.seeds }, (_, i) => first + i)
  const summaries: SeedSummary[] = []
  const limit = o.seedTimeoutMs ?? 120_000
  return new Promise((resolve, reject) => {
    let running = 0
    const finish = () => {
      if (running > 0 || queue.length > 0) return
      summaries.sort((a, b) => a.seed - b.seed)
      const violations = summaries.flatMap((s) => s.violations.map((v) => ({ ...v, seed: s.seed })))
      resolve({ summaries, failingSeeds: summaries.filter((s) => s.violations.length > 0).map((s) => s.seed), violations })
    }
    const record = (s: SeedSummary) => {
      summaries.push(s)
      o.onSeed?.(s)
    }
    const startWorker = () => {
      const seed = queue.shift()
      if (seed === undefined) return finish()
      running++
      const worker = spawn()
      let current = seed
      let timer: ReturnType<typeof setTimeout>
      const arm = () => {
        timer = setTimeout(() => {
          // The seed never returned: stop the thread, report the hang, go on with a fresh one.
          void worker.terminate()
          record({ seed: current, violations: [{ invariant: 'hang', detail: `no answer within ${limit} ms of wall-clock time`, at: 0 }], figures: undefined })
          running--
          startWorker()
        }, limit)
      }
      worker.on('message', (m: SeedSummary) => {
        clearTimeout(timer)
        record(m)
        const next = queue.shift()
        if (next === undefined) {
          void worker.terminate()
          running--
          return finish()
        }
        current = next
        arm()
        worker.postMessage({ scenario: o.scenario, seed: next, f: o.f ?? 1, calls: o.calls })
      })
      worker.on('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
      arm()
      worker.postMessage({ scenario: o.scenario, seed, f: o.f ?? 1, calls: o.calls })
    }
    for (let i = 0; i < Math.max(1, Math.min(o.workers ?? 1, o.seeds)); i++) startWorker()
    if (o.seeds === 0) finish()
  })
}
