/**
 * The deterministic-core rule (DESIGN.md §3): the state machine does no I/O and reads no clock or
 * randomness of its own. Every file under src/ except src/host/ (the real-time Node hosts, which a
 * process imports through the `./node-host` subpath) is checked here.
 */
import { readFileSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { coreSources, coreViolations } from '../../../scripts/deterministic-core.js'

const SRC = fileURLToPath(new URL('../src', import.meta.url))
const EXEMPT = join(SRC, 'host')

const sources = (dir: string): string[] => coreSources(dir, EXEMPT)

describe('deterministic core', () => {
  const files = sources(SRC)

  it('finds the core sources (and leaves out src/host/)', () => {
    expect(files.length).toBeGreaterThan(5)
    expect(files.some((f) => f.endsWith('voter.ts'))).toBe(true)
    expect(files.some((f) => f.startsWith(EXEMPT + sep))).toBe(false)
    expect(files.some((f) => f.endsWith(`${sep}executor.ts`))).toBe(true)
  })

  it.each(sources(SRC).map((f) => [relative(SRC, f), f]))('%s imports no I/O module and reads no clock or randomness', (_name, file) => {
    expect(coreViolations(readFileSync(file, 'utf8'), [[/level-storage/, 'the on-disk storage'], [/(^|\/)host\//, 'the hosts']])).toEqual([])
  })
})
