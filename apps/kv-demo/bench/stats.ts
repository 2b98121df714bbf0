/** Statistics helpers of the benchmark: percentiles, medians, rounding. No I/O. */

/** The q-quantile (0..1) of the samples by the nearest-rank method; NaN when there are none. */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return Number.NaN
  const sorted = [...samples].sort((a, b) => a - b)
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)))
  return sorted[rank - 1] as number
}

export function median(samples: readonly number[]): number {
  return quantile(samples, 0.5)
}

export interface LatencySummary {
  readonly samples: number
  readonly p50: number
  readonly p99: number
  readonly mean: number
  readonly max: number
}

/** p50/p99/mean/max of latency samples (milliseconds), rounded to 0.01 ms. */
export function summarise(samples: readonly number[]): LatencySummary {
  const n = samples.length
  if (n === 0) return { samples: 0, p50: Number.NaN, p99: Number.NaN, mean: Number.NaN, max: Number.NaN }
  let sum = 0
  let max = Number.NEGATIVE_INFINITY
  for (const s of samples) {
    sum += s
    if (s > max) max = s
  }
  return { samples: n, p50: round(quantile(samples, 0.5)), p99: round(quantile(samples, 0.99)), mean: round(sum / n), max: round(max) }
}

export function round(x: number, digits = 2): number {
  if (!Number.isFinite(x)) return x
  const m = 10 ** digits
  return Math.round(x * m) / m
}

/** a / b rounded, or NaN when b is 0 or either is not finite. */
export function ratio(a: number, b: number, digits = 2): number {
  if (!(Number.isFinite(a) && Number.isFinite(b)) || b === 0) return Number.NaN
  return round(a / b, digits)
}

/** The largest sample (NaN samples ignored); NaN when there are none. */
export function max(samples: readonly number[]): number {
  let m = Number.NaN
  for (const s of samples) if (Number.isNaN(m) || s > m) m = Number.isNaN(s) ? m : s
  return m
}
