import { describe, expect, it } from 'vitest'
import { quantile, ratio, summarise } from '../bench/stats.js'
import { barChart, escapeXml } from '../bench/svg.js'

describe('bench statistics', () => {
  it('nearest-rank quantiles, medians and ratios', () => {
    const xs = [5, 1, 4, 2, 3]
    expect(quantile(xs, 0.5)).toBe(3)
    expect(quantile(xs, 0.99)).toBe(5)
    expect(quantile(xs, 0)).toBe(1)
    expect(quantile([], 0.5)).toBeNaN()
    const s = summarise(Array.from({ length: 100 }, (_, i) => i + 1))
    expect(s).toMatchObject({ samples: 100, p50: 50, p99: 99, max: 100, mean: 50.5 })
    expect(ratio(8, 5)).toBe(1.6)
    expect(ratio(1, 0)).toBeNaN()
  })
})

describe('bench SVG chart', () => {
  it('writes well-formed SVG with escaped labels and one bar per value', () => {
    const svg = barChart('a <b> & c', [
      { title: 'latency', unit: 'ms', log: true, bars: [{ label: 'x<y', value: 2, marker: 9 }, { label: 'z', value: 120 }] },
      { title: 'throughput', unit: 'ops/s', bars: [{ label: 'x', value: 10 }, { label: 'n/a', value: Number.NaN }] },
    ])
    expect(svg.startsWith('<svg ')).toBe(true)
    expect(svg.trim().endsWith('</svg>')).toBe(true)
    expect(svg).toContain(`<title>${escapeXml("a <b> & c")}</title>`)
    expect(svg).toContain(escapeXml('a <b> & c'))
    expect(svg).not.toContain('x<y')
    expect(svg.match(/<rect x=/g)?.length).toBe(4)
    expect(svg).not.toContain('NaN')
  })
})
