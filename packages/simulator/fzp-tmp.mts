import { runGroupSeed } from '/work/main/packages/simulator/src/paired.ts'
const [name, first, count] = process.argv.slice(2)
for (let seed = Number(first); seed < Number(first) + Number(count); seed++) {
  const t = Date.now()
  const o = runGroupSeed(name!, seed, 1)
  const amp = Object.entries(o.result.adversaryTraffic).filter(([k]) => k.includes('/')).map(([k, v]) => `${k}:${v.to}/${v.from}`)
  console.log(seed, `${Date.now() - t}ms`, o.violations.length, o.violations.slice(0, 2).map((v) => `${v.invariant}: ${v.detail.slice(0, 400)}`), 'measured', o.result.measured?.durationMs, o.baseline?.measured?.durationMs, 'lat', o.result.measured?.meanRequestLatency.toFixed(1), o.baseline?.measured?.meanRequestLatency.toFixed(1), amp.join(' '))
}
