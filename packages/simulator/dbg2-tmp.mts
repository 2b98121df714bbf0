import { GroupSimulation, groupScenarioByName } from '/work/main/packages/simulator/src/index.ts'
import { withoutAdversaries } from '/work/main/packages/simulator/src/paired.ts'
const [name, seedS, mode] = process.argv.slice(2)
let o = groupScenarioByName(name!)!.build({ seed: Number(seedS), f: 1 })
if (mode === 'base') o = withoutAdversaries(o)
const sim = new GroupSimulation(o)
const anySim = sim as any
let measuring = false
const origStart = anySim.startMeasured.bind(sim)
anySim.startMeasured = () => { measuring = true; console.log('measure starts at', sim.time, sim.describe()); origStart() }
const origFlush = anySim.flush.bind(sim)
anySim.flush = (node: any) => {
  const v = node.voter
  if (v === undefined) return 0
  const r = v.ready()
  for (const e of r.events) if (measuring && e.kind !== 'stable-checkpoint') console.log(sim.time, node.id, JSON.stringify(e))
  // put back: re-run original flush logic by faking ready
  const saved = v.ready.bind(v); v.ready = () => { v.ready = saved; return r }
  return origFlush(node)
}
const origIssue = anySim.issue.bind(sim)
anySim.issue = (c: any) => { if (measuring && c.spec.measured) console.log(sim.time, 'issue', c.id, c.issued); origIssue(c) }
const r = sim.run()
console.log('end', r.finalTime, JSON.stringify(r.measured), sim.describe())
