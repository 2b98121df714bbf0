import { GroupSimulation, groupScenarioByName } from '/work/main/packages/simulator/src/index.ts'
import { withoutAdversaries } from '/work/main/packages/simulator/src/paired.ts'
const [name, seedS, mode] = process.argv.slice(2)
let o = groupScenarioByName(name!)!.build({ seed: Number(seedS), f: 1 })
if (mode === 'base') o = withoutAdversaries(o)
const sim = new GroupSimulation(o)
const anySim = sim as any
const origStart = anySim.startMeasured.bind(sim)
anySim.startMeasured = () => { console.log('measure starts at', sim.time, sim.describe()); origStart() }
const r = sim.run()
console.log('end', r.finalTime, JSON.stringify(r.measured), sim.describe())
for (const c of sim.clients) console.log(c.id.slice(0, 12), c.spec.measured ? 'M' : ' ', JSON.stringify([...c.client.counters]), c.latencies.join(','))
for (const n of sim.nodes) console.log(n.id, n.correct, JSON.stringify([...(n.voter?.replica.counters ?? [])].filter(([k]) => !k.startsWith('received'))))
