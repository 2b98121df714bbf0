/** What the benchmark scripts record about the machine they ran on. */
import { readFileSync } from 'node:fs'
import { cpus, freemem, loadavg, totalmem } from 'node:os'
import { round } from './stats.js'

/** Busy and total jiffies of all CPUs (/proc/stat), to tell how busy the machine was. */
export function cpuJiffies(): { busy: number; total: number } {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? []
    const total = f.reduce((a, b) => a + b, 0)
    const idleJ = (f[3] ?? 0) + (f[4] ?? 0)
    return { busy: total - idleJ, total }
  } catch {
    return { busy: Number.NaN, total: Number.NaN }
  }
}

export function machine(): Record<string, unknown> {
  return {
    nproc: cpus().length,
    cpuModel: cpus()[0]?.model,
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    freeMemoryGiB: round(freemem() / 2 ** 30, 1),
    node: process.version,
    loadavg: loadavg().map((x) => round(x, 2)),
  }
}
