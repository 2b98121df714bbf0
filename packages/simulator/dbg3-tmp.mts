import { GroupSimulation, groupScenarioByName } from '/work/main/packages/simulator/src/index.ts'
const [name, seedS, who] = process.argv.slice(2)
const o = groupScenarioByName(name!)!.build({ seed: Number(seedS), f: 1 })
const sim = new GroupSimulation(o)
const anySim = sim as any
let measuring = false
const origStart = anySim.startMeasured.bind(sim)
anySim.startMeasured = () => { measuring = true; console.log('measure at', sim.time, sim.describe()); const n = sim.nodes.find((x) => x.id === who)!; console.log(JSON.stringify(n.voter!.replica.status()), JSON.stringify(n.voter!.sizes())); origStart() }
const origDeliver = anySim.deliver.bind(sim)
anySim.deliver = (from: string, to: string, bytes: Uint8Array) => {
  const n = sim.nodes.find((x) => x.id === to)
  const before = n?.voter ? new Map(n.voter.replica.counters) : undefined
  origDeliver(from, to, bytes)
  if (measuring && to === who && n?.voter && before && sim.time < 5800) {
    const diff = [...n.voter.replica.counters].filter(([k, v]) => (before.get(k) ?? 0) !== v && !k.startsWith('received')).map(([k]) => k)
    const rec = [...n.voter.replica.counters].filter(([k, v]) => (before.get(k) ?? 0) !== v && k.startsWith('received')).map(([k]) => k)
    if (!from.startsWith('peer:')) console.log(sim.time, from, '->', to, rec.join(','), diff.join(','))
  }
}
sim.run()
