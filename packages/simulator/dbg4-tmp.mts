import { GroupSimulation, groupScenarioByName } from '/work/main/packages/simulator/src/index.ts'
const [name, seedS, at] = process.argv.slice(2)
const o = groupScenarioByName(name!)!.build({ seed: Number(seedS), f: 1 })
const sim = new GroupSimulation(o)
sim.queue.push(Number(at), () => {
  console.log('at', sim.time, sim.describe())
  for (const n of sim.nodes) {
    const rep = n.voter!.replica as any
    const rows = [...rep.log.values()].map((e: any) => `${e.seq}:v${e.view}${e.prePrepare ? 'P' : '-'}${e.prepared ? 'p' : ''}${e.committed ? 'c' : ''} prep=${[...e.prepares].map(([r, v]: any) => `${r}v${v.view}`).join('/')} com=${[...e.commits].map(([r, v]: any) => `${r}v${v.view}`).join('/')} nreq=${e.prePrepare?.batch.requests.length ?? '-'}`)
    console.log(n.id, n.correct, rows.join(' | '), 'counters', JSON.stringify([...rep.counters].filter(([k]: any) => k.includes('bad') || k.includes('suspect') || k.includes('stamp'))))
  }
})
sim.run()
