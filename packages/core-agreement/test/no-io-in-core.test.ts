/**
 * The deterministic-core rule (DESIGN.md §3): the state machine does no I/O and reads no clock or
 * randomness of its own. Every file under src/ except src/storage/ (the on-disk storage, which a
 * host imports through the `./level-storage` subpath) is checked here.
 */
import { readFileSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { FORBIDDEN_CALLS, code, coreSources, coreViolations, importsOf } from '../../../scripts/deterministic-core.js'

const SRC = fileURLToPath(new URL('../src', import.meta.url))
const EXEMPT = join(SRC, 'storage')

const sources = (dir: string): string[] => coreSources(dir, EXEMPT)

describe('deterministic core', () => {
  const files = sources(SRC)

  it('finds the core sources (and leaves out src/storage/)', () => {
    expect(files.length).toBeGreaterThan(5)
    expect(files.some((f) => f.endsWith('replica.ts'))).toBe(true)
    expect(files.some((f) => f.startsWith(EXEMPT + sep))).toBe(false)
    expect(files.some((f) => f.endsWith(`${sep}storage.ts`))).toBe(true) // the Storage interface is core
  })

  it.each(sources(SRC).map((f) => [relative(SRC, f), f]))('%s imports no I/O module and reads no clock or randomness', (_name, file) => {
    expect(coreViolations(readFileSync(file, 'utf8'), [[/(^|\/)storage\//, 'the on-disk storage']])).toEqual([])
  })

  it('the checker itself catches what it is meant to', () => {
    const bad = `import { readFileSync } from 'node:fs'\nimport { ClassicLevel } from "classic-level"\nconst t = Date.now()\n`
    expect(importsOf(code(bad))).toEqual(['node:fs', 'classic-level'])
    expect(FORBIDDEN_CALLS.some(([, re]) => re.test(code(bad)))).toBe(true)
    expect(FORBIDDEN_CALLS.some(([, re]) => re.test(code('// Date.now() is banned\n/* Math.random */')))).toBe(false)
    expect(coreViolations(bad, [[/classic-level/, 'the on-disk storage']])).toEqual(['imports node:fs', 'imports classic-level', 'imports the on-disk storage (classic-level)', 'calls Date.now'])
  })
})
