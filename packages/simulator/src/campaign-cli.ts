#!/usr/bin/env node
/**
 * pnpm sim:campaign -- [--seeds N] [--seed S] [--f F] [--only a,b] [--json FILE]
 *
 * Runs every scenario (single-group and replicated) over N seeds each and prints one line per
 * scenario: runs, violations, requests or calls completed, and the time taken. Exit 1 if any
 * scenario failed (for the negative `twins-over-f`: if it caught nothing).
 */
import { writeFileSync } from 'node:fs'
import { GROUP_SCENARIOS } from './groups/group-scenarios.js'
import { runCampaign, runGroupCampaign } from './run.js'
import { SCENARIOS } from './scenarios.js'

function option(name: string): string | undefined {
  const argv = process.argv.slice(2).filter((a) => a !== '--')
  const i = argv.findIndex((a) => a.replace(/^--?/, '') === name)
  return i >= 0 ? argv[i + 1] : undefined
}

function whole(name: string, fallback: number): number {
  const v = option(name)
  if (v === undefined) return fallback
  if (!/^\d+$/.test(v)) {
    console.error(`campaign: --${name} must be a whole number`)
    process.exit(2)
  }
  return Number(v)
}

const seeds = whole('seeds', 100)
const firstSeed = whole('seed', 1)
const f = whole('f', 1)
const only = option('only')?.split(',')
const names = [...SCENARIOS.map((s) => s.name).filter((n) => n !== 'long'), ...GROUP_SCENARIOS.map((s) => s.name)].filter((n) => only === undefined || only.includes(n))
const rows: Array<Record<string, unknown>> = []
let failed = false
let totalRuns = 0
for (const name of names) {
  const started = Date.now()
  const group = GROUP_SCENARIOS.some((s) => s.name === name)
  const r = group ? runGroupCampaign({ scenario: name, seeds, firstSeed, f }) : runCampaign({ scenario: name, seeds, firstSeed, f })
  const negative = !group && 'expectViolations' in r && r.expectViolations
  const ok = negative ? r.failingSeeds.length > 0 : r.violations.length === 0
  failed ||= !ok
  totalRuns += r.runs
  const done = 'completedCalls' in r ? `${r.completedCalls}/${r.expectedCalls} calls` : `${r.completedRequests}/${r.expectedRequests} requests`
  const secs = ((Date.now() - started) / 1000).toFixed(1)
  console.log(`${ok ? 'ok    ' : 'FAILED'} ${name.padEnd(34)} ${String(r.runs).padStart(6)} runs  ${negative ? `caught in ${r.failingSeeds.length}` : `${r.violations.length} violations`}  ${done}  ${secs} s${r.failingSeeds.length > 0 && !negative ? `  failing seeds ${r.failingSeeds.slice(0, 10).join(',')}` : ''}`)
  rows.push({ scenario: name, ok, runs: r.runs, violations: r.violations.length, failingSeeds: r.failingSeeds, seconds: Number(secs) })
}
console.log(`${totalRuns} runs, ${names.length} scenarios, f=${f}, seeds ${firstSeed}..${firstSeed + seeds - 1}: ${failed ? 'FAILED' : 'all invariants held'}`)
const json = option('json')
if (json !== undefined) writeFileSync(json, `${JSON.stringify({ seeds, firstSeed, f, rows }, null, 2)}\n`)
process.exitCode = failed ? 1 : 0
