import { GroupSimulation, groupScenarioByName } from '/work/main/packages/simulator/src/index.ts'
import { decodeMessage, DEFAULT_LIMITS } from '/work/main/packages/core-agreement/src/index.ts'
const [name, seedS, seqS] = process.argv.slice(2)
const o = groupScenarioByName(name!)!.build({ seed: Number(seedS), f: 1 })
const sim = new GroupSimulation(o)
const anySim = sim as any
const origDeliver = anySim.deliver.bind(sim)
anySim.deliver = (from: string, to: string, bytes: Uint8Array) => {
  let m: any
  try { m = decodeMessage(bytes, DEFAULT_LIMITS) } catch {}
  const n = sim.nodes.find((x) => x.id === to)
  const before = n?.voter ? new Map(n.voter.replica.counters) : undefined
  origDeliver(from, to, bytes)
  if (m?.t === 'pre-prepare' && m.seq === Number(seqS) && n?.voter && before) {
    const diff = [...n.voter.replica.counters].filter(([k, v]) => (before.get(k) ?? 0) !== v && !k.startsWith('received')).map(([k]) => k)
    const r = n.voter.replica as any
    console.log(sim.time, from, '->', to, 'view', m.view, 'stamp', m.batch.stamp, 'reqs', m.batch.requests.map((q: any) => `${q.client.slice(0, 14)}@${q.timestamp}`).join(','), 'now', r.now, 'prevStamp', r.log.get(m.seq - 1)?.prePrepare?.batch.stamp, r.lastExecStamp, diff.join(','))
  }
}
sim.run()
