#!/usr/bin/env node
/**
 * pnpm sim -- --scenario <name> --seeds <N> [--seed <S>] [--f <f>] [--requests <N>] [--json]
 * pnpm sim -- --list
 *
 * Options may come with or without the leading `--` (pnpm forwards a bare `--`). Exit code 0
 * when every run kept every invariant (or, for a negative scenario, when the checkers caught the
 * conflict it provokes), 1 otherwise, 2 for a usage error.
 */
import { runPool } from './campaign-pool.js'
import { GROUP_SCENARIOS, groupScenarioByName } from './groups/group-scenarios.js'
import { describePool, poolFigures } from './pool-figures.js'
import { runCampaign, runGroupCampaign } from './run.js'
import { SCENARIOS, scenarioByName } from './scenarios.js'

class UsageError extends Error {}

const USAGE = 'usage: pnpm sim -- --scenario NAME [--seeds N] [--seed S] [--f F] [--requests N] [--workers N] [--json] | --list'

function parse(argv: readonly string[]): Map<string, string> {
  const out = new Map<string, string>()
  const flags = new Set(['json', 'list', 'help', 'quiet'])
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i] as string
    if (raw === '--') continue
    const name = raw.replace(/^--?/, '')
    const eq = name.indexOf('=')
    if (eq > 0) {
      out.set(name.slice(0, eq), name.slice(eq + 1))
      continue
    }
    if (flags.has(name)) {
      out.set(name, 'true')
      continue
    }
    if (!['scenario', 'seeds', 'seed', 'f', 'requests', 'workers'].includes(name)) throw new UsageError(`unknown option ${raw}`)
    const value = argv[++i]
    if (value === undefined) throw new UsageError(`${raw} needs a value`)
    out.set(name, value)
  }
  return out
}

function whole(opts: Map<string, string>, name: string, min: number, max: number): number | undefined {
  const v = opts.get(name)
  if (v === undefined) return undefined
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new UsageError(`--${name} must be a whole number from ${min} to ${max}`)
  return Number(v)
}

async function main(argv: readonly string[]): Promise<number> {
  let opts: Map<string, string>
  let seeds: number
  let seed: number | undefined
  let f: number
  let requests: number | undefined
  let workers: number | undefined
  try {
    opts = parse(argv)
    if (opts.has('help')) {
      console.log(USAGE)
      return 0
    }
    if (opts.has('list')) {
      for (const s of [...SCENARIOS, ...GROUP_SCENARIOS]) console.log(`${s.name}\t${s.description}`)
      return 0
    }
    const name = opts.get('scenario')
    if (name === undefined) throw new UsageError('--scenario is required')
    if (scenarioByName(name) === undefined && groupScenarioByName(name) === undefined) throw new UsageError(`unknown scenario ${name} (see --list)`)
    seed = whole(opts, 'seed', 0, 2 ** 32 - 1)
    seeds = whole(opts, 'seeds', 1, 1_000_000) ?? 1
    f = whole(opts, 'f', 1, 10) ?? 1
    requests = whole(opts, 'requests', 1, 10_000_000)
    workers = whole(opts, 'workers', 1, 64)
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`sim: ${err.message}\n${USAGE}`)
      return 2
    }
    throw err
  }
  const json = opts.has('json')
  const started = Date.now()
  const group = groupScenarioByName(opts.get('scenario') as string)
  if (group !== undefined && (workers !== undefined || group.pairedBaseline === true)) {
    let done = 0
    const report = await runPool({
      scenario: group.name,
      seeds,
      firstSeed: seed ?? 1,
      f,
      workers: workers ?? 1,
      ...(requests !== undefined ? { calls: requests } : {}),
      // Progress on stderr: each failing seed as it comes, and a count now and then.
      onSeed: (s) => {
        done++
        if (s.violations.length > 0) console.error(`seed ${s.seed}: ${s.violations[0]?.invariant}: ${s.violations[0]?.detail.slice(0, 200)}`)
        if (done % 25 === 0 && !opts.has('quiet')) console.error(`${done}/${seeds} seeds, ${((Date.now() - started) / 1000).toFixed(0)} s`)
      },
    })
    const figures = poolFigures(report)
    const ok = report.violations.length === 0
    if (json) console.log(JSON.stringify({ ok, scenario: group.name, f, runs: seeds, firstSeed: seed ?? 1, failingSeeds: report.failingSeeds, violations: report.violations.slice(0, 50), ...figures, wallMs: Date.now() - started }))
    else {
      console.log(`scenario ${group.name} f=${f}: ${seeds} seeds from ${seed ?? 1} in ${((Date.now() - started) / 1000).toFixed(1)} s on ${workers ?? 1} worker(s)`)
      for (const line of describePool(figures)) console.log(`  ${line}`)
      for (const v of report.violations.slice(0, 5)) console.log(`  seed ${v.seed}: ${v.invariant}: ${v.detail.slice(0, 300)}`)
      console.log(`  violations ${report.violations.length}${report.failingSeeds.length > 0 ? ` in seeds ${report.failingSeeds.slice(0, 20).join(',')} (replay: --seed ${report.failingSeeds[0]} --seeds 1)` : ''}`)
      console.log(ok ? 'OK' : 'FAILED')
    }
    return ok ? 0 : 1
  }
  if (group !== undefined) {
    const g = runGroupCampaign({ scenario: opts.get('scenario') as string, seeds, firstSeed: seed ?? 1, f, ...(requests !== undefined ? { requests } : {}) })
    const ok = g.violations.length === 0
    if (json) console.log(JSON.stringify({ ok, ...g, wallMs: Date.now() - started }))
    else {
      console.log(`scenario ${g.scenario} f=${g.f}: ${g.runs} runs from seed ${g.firstSeed} in ${((Date.now() - started) / 1000).toFixed(1)} s`)
      console.log(`  calls completed ${g.completedCalls}/${g.expectedCalls}`)
      console.log(`  messages/call ${g.messagesPerCall} (inter-group ${g.interGroupMessagesPerCall}), delays/call ${g.delaysPerCall}`)
      console.log(`  by type ${JSON.stringify(g.messagesByTypePerCall)}`)
      console.log(`  CLBFT plain-client baseline: ${g.baseline.messagesPerRequest} messages, ${g.baseline.delaysPerRequest} delays; ratios ${g.ratios.messages}x messages, ${g.ratios.delays}x delays`)
      console.log(`  view changes ${g.viewChanges}, state transfers ${g.stateTransfers}`)
      for (const v of g.violations.slice(0, 5)) console.log(`  seed ${v.seed}: ${v.invariant}: ${v.detail.slice(0, 300)}`)
      console.log(`  violations ${g.violations.length}${g.failingSeeds.length > 0 ? ` (replay: --seed ${g.failingSeeds[0]} --seeds 1)` : ''}`)
      console.log(ok ? 'OK' : 'FAILED')
    }
    return ok ? 0 : 1
  }
  const report = runCampaign({
    scenario: opts.get('scenario') as string,
    seeds,
    firstSeed: seed ?? 1,
    f,
    ...(requests !== undefined ? { requests } : {}),
    onRun: (r) => {
      if (!json && !opts.has('quiet') && r.violations.length > 0) {
        console.log(`seed ${r.seed}: ${r.violations.length} violation(s): ${r.violations[0]?.invariant} ${r.violations[0]?.detail}`)
      }
    },
  })
  const ok = report.expectViolations ? report.failingSeeds.length > 0 : report.violations.length === 0
  if (json) {
    console.log(JSON.stringify({ ok, ...report, wallMs: Date.now() - started }))
  } else {
    console.log(`scenario ${report.scenario} f=${report.f}: ${report.runs} runs from seed ${report.firstSeed} in ${((Date.now() - started) / 1000).toFixed(1)} s`)
    console.log(`  requests completed ${report.completedRequests}/${report.expectedRequests}`)
    console.log(`  messages/request ${report.messagesPerRequest}, delays/request ${report.delaysPerRequest}`)
    console.log(`  by type ${JSON.stringify(report.messagesByTypePerRequest)}`)
    console.log(`  view changes ${report.viewChanges}${report.viewChangeDelays !== undefined ? ` (first request in new view after ${report.viewChangeDelays} delays)` : ''}, state transfers ${report.stateTransfers}`)
    console.log(`  largest bounded structures ${JSON.stringify(report.maxSizes)}`)
    if (report.heapSamplesMiB.length > 0) {
      const h = report.heapSamplesMiB
      const at = (q: number) => h[Math.min(h.length - 1, Math.floor(q * (h.length - 1)))]
      console.log(`  heap MiB at 10%/50%/90%/100% of the run: ${at(0.1)}/${at(0.5)}/${at(0.9)}/${at(1)}`)
    }
    if (report.expectViolations) console.log(`  negative scenario: conflicts caught in ${report.failingSeeds.length}/${report.runs} runs`)
    else console.log(`  violations ${report.violations.length}${report.failingSeeds.length > 0 ? ` (replay: --seed ${report.failingSeeds[0]} --seeds 1)` : ''}`)
    console.log(ok ? 'OK' : 'FAILED')
  }
  return ok ? 0 : 1
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    console.error(err)
    process.exitCode = 1
  },
)
