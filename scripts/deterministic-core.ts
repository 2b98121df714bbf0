/**
 * The deterministic-core rule (DESIGN.md §3) as a checker shared by the packages' tests: the state
 * machines do no I/O and read no clock or randomness of their own.
 */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'

/** Source files under `dir`, leaving out the `exempt` folder (a package's I/O side). */
export function coreSources(dir: string, exempt: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const path = join(dir, d.name)
    if (d.isDirectory()) return path === exempt ? [] : coreSources(path, exempt)
    return /\.(ts|mts|js|mjs)$/.test(d.name) ? [path] : []
  })
}

export const FORBIDDEN_MODULES = ['os', 'fs', 'fs/promises', 'net', 'child_process', 'dgram', 'http', 'https', 'worker_threads', 'classic-level', 'lmdb']

export const FORBIDDEN_CALLS: ReadonlyArray<readonly [string, RegExp]> = [
  ['Date.now', /\bDate\s*\.\s*now\b/],
  ['new Date', /\bnew\s+Date\b/],
  ['Math.random', /\bMath\s*\.\s*random\b/],
  ['setTimeout', /\bsetTimeout\b/],
  ['setInterval', /\bsetInterval\b/],
  ['setImmediate', /\bsetImmediate\b/],
  ['performance.now', /\bperformance\s*\.\s*now\b/],
  ['process.hrtime', /\bprocess\s*\.\s*hrtime\b/],
]

/** Module specifiers of static imports, re-exports, dynamic imports and requires. */
export function importsOf(text: string): string[] {
  const out: string[] = []
  for (const re of [/\b(?:import|export)\b[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\b(?:import|require)\s*\(\s*['"]([^'"]+)['"]\s*\)/g]) {
    for (const m of text.matchAll(re)) out.push(m[1] as string)
  }
  return out
}

/** The text without comments, so prose that mentions Date.now does not count. */
export function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1')
}
