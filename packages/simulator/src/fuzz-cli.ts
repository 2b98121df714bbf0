#!/usr/bin/env node
/** pnpm fuzz -- [--inputs N] [--seed S] [--json]: every decoder and handler, N inputs each (default 100 000). */
import { fuzz } from './fuzz.js'

function option(name: string): string | undefined {
  const argv = process.argv.slice(2).filter((a) => a !== '--')
  const i = argv.findIndex((a) => a.replace(/^--?/, '') === name)
  return i >= 0 ? (argv[i + 1] ?? 'true') : undefined
}

const inputs = Number(option('inputs') ?? 100_000)
const seed = Number(option('seed') ?? 1)
if (!Number.isSafeInteger(inputs) || inputs < 1 || !Number.isSafeInteger(seed) || seed < 0) {
  console.error('fuzz: --inputs and --seed take whole numbers')
  process.exit(2)
}
const started = Date.now()
const r = fuzz(seed, inputs)
const crashes = r.targets.reduce((n, t) => n + t.crashes, 0)
const ok = crashes === 0 && r.stateUnchanged
if (option('json') !== undefined) console.log(JSON.stringify({ ok, ...r, wallMs: Date.now() - started }))
else {
  console.log(`fuzz seed ${seed}: ${inputs} inputs per target from a corpus of ${r.corpus} captured frames, ${((Date.now() - started) / 1000).toFixed(1)} s`)
  for (const t of r.targets) console.log(`  ${t.target.padEnd(36)} ${String(t.inputs).padStart(8)} inputs  ${String(t.accepted).padStart(8)} accepted  ${String(t.rejected).padStart(8)} rejected  ${t.crashes} crashes`)
  for (const t of r.targets) if (t.firstCrash !== undefined) console.log(`  first crash in ${t.target}: ${t.firstCrash}`)
  console.log(`  replica and voter state unchanged: ${r.stateUnchanged}; largest structures ${JSON.stringify(r.maxSizes)}`)
  console.log(`  drops counted by the handlers: ${JSON.stringify(r.dropsCounted)}`)
  console.log(`  heap ${r.heapMiB.before} -> ${r.heapMiB.after} MiB`)
  console.log(ok ? 'OK' : 'FAILED')
}
process.exitCode = ok ? 0 : 1
