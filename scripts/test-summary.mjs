#!/usr/bin/env node
// Sums the vitest JSON reports of every workspace package that has tests and prints the plain
// closing line CI reads ("N passed, N failed"). Exits non-zero when a test failed or none ran.
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname
let passed = 0
let failed = 0
let skipped = 0
const missing = []
for (const area of ['packages', 'apps']) {
  for (const name of readdirSync(join(root, area))) {
    const dir = join(root, area, name)
    const pkgPath = join(dir, 'package.json')
    if (!existsSync(pkgPath)) continue
    const pkg = JSON.parse(readFileSync(pkgPath, 'utf8'))
    if (pkg.scripts?.test === undefined) continue
    const reportPath = join(dir, '.vitest-report.json')
    if (!existsSync(reportPath)) {
      missing.push(`${area}/${name}`)
      continue
    }
    const report = JSON.parse(readFileSync(reportPath, 'utf8'))
    passed += report.numPassedTests
    failed += report.numFailedTests
    skipped += report.numPendingTests + report.numTodoTests
    console.log(`${area}/${name}: ${report.numPassedTests} passed, ${report.numFailedTests} failed`)
  }
}
if (missing.length > 0) console.log(`no test report from: ${missing.join(', ')}`)
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`)
process.exitCode = failed > 0 || passed === 0 || missing.length > 0 ? 1 : 0
