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

/**
 * What in one core file breaks the rule, one message per offence (empty when it keeps it):
 * a forbidden module, a specifier matching one of the package's `forbiddenImports` (its own I/O
 * side), or a forbidden call.
 */
export function coreViolations(source: string, forbiddenImports: ReadonlyArray<readonly [RegExp, string]>): string[] {
  const text = code(source)
  const out: string[] = []
  for (const spec of importsOf(text)) {
    if (FORBIDDEN_MODULES.includes(spec.replace(/^node:/, ''))) out.push(`imports ${spec}`)
    for (const [re, what] of forbiddenImports) if (re.test(spec)) out.push(`imports ${what} (${spec})`)
  }
  for (const [name, re] of FORBIDDEN_CALLS) if (re.test(text)) out.push(`calls ${name}`)
  return out
}
