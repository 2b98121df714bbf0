/**
 * A small hand-written SVG bar chart (no chart dependency): one panel per metric, one bar per
 * system, value labels on the bars. Pure: returns the SVG text.
 */

export interface Bar {
  readonly label: string
  readonly value: number
  /** Optional second value drawn as a thin marker on the bar (e.g. p99 over a p50 bar). */
  readonly marker?: number
}

export interface Panel {
  readonly title: string
  readonly unit: string
  readonly bars: readonly Bar[]
  /** Logarithmic value axis (values must be > 0). */
  readonly log?: boolean
}

const COLOURS = ['#4c78a8', '#f58518', '#54a24b', '#e45756', '#72b7b2', '#b279a2', '#eeca3b']

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return 'n/a'
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US')
  if (Math.abs(v) >= 10) return v.toFixed(1)
  return v.toFixed(2)
}

/** Panels side by side, horizontal bars. */
export function barChart(title: string, panels: readonly Panel[], subtitle = ''): string {
  const panelWidth = 470
  const labelWidth = 150
  const barHeight = 22
  const gap = 8
  const top = 60
  const rows = Math.max(1, ...panels.map((p) => p.bars.length))
  const panelHeight = 30 + rows * (barHeight + gap)
  const width = panels.length * panelWidth + 20
  const height = top + panelHeight + 20
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`)
  out.push(`<title>${escapeXml(title)}</title>`)
  out.push(`<rect width="${width}" height="${height}" fill="#fff"/>`)
  out.push(`<text x="10" y="22" font-size="16" font-weight="bold">${escapeXml(title)}</text>`)
  if (subtitle !== '') out.push(`<text x="10" y="40" fill="#555">${escapeXml(subtitle)}</text>`)
  panels.forEach((p, pi) => {
    const x0 = 10 + pi * panelWidth
    const plotWidth = panelWidth - labelWidth - 70
    const finite = p.bars.flatMap((b) => [b.value, b.marker ?? b.value]).filter((v) => Number.isFinite(v) && v > 0)
    const max = finite.length === 0 ? 1 : Math.max(...finite)
    const min = finite.length === 0 ? 1 : Math.min(...finite)
    const lo = p.log === true ? 10 ** Math.floor(Math.log10(min)) : 0
    const hi = p.log === true ? 10 ** Math.ceil(Math.log10(max) + 1e-9) : max
    const scale = (v: number): number => {
      if (!Number.isFinite(v) || v <= 0) return 0
      if (p.log === true) return ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo) || 1)) * plotWidth
      return (v / (hi || 1)) * plotWidth
    }
    out.push(`<text x="${x0}" y="${top}" font-weight="bold">${escapeXml(p.title)} (${escapeXml(p.unit)}${p.log === true ? ', log scale' : ''})</text>`)
    p.bars.forEach((b, bi) => {
      const y = top + 12 + bi * (barHeight + gap)
      const w = Math.max(1, scale(b.value))
      out.push(`<text x="${x0 + labelWidth - 6}" y="${y + barHeight / 2 + 4}" text-anchor="end">${escapeXml(b.label)}</text>`)
      out.push(`<rect x="${x0 + labelWidth}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" fill="${COLOURS[bi % COLOURS.length]}"/>`)
      if (b.marker !== undefined && Number.isFinite(b.marker)) {
        const mx = x0 + labelWidth + scale(b.marker)
        out.push(`<line x1="${mx.toFixed(1)}" y1="${y - 2}" x2="${mx.toFixed(1)}" y2="${y + barHeight + 2}" stroke="#222" stroke-width="2"/>`)
      }
      const text = b.marker !== undefined ? `${fmt(b.value)} | p99 ${fmt(b.marker)}` : fmt(b.value)
      const textX = x0 + labelWidth + Math.max(w, b.marker !== undefined && Number.isFinite(b.marker) ? scale(b.marker) : 0) + 4
      out.push(`<text x="${textX.toFixed(1)}" y="${y + barHeight / 2 + 4}" fill="#222">${escapeXml(text)}</text>`)
    })
  })
  out.push('</svg>')
  return `${out.join('\n')}\n`
}
