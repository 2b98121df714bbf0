// Reproduces a liveness problem of core-agreement's view change (README: "Known limitations"),
// with four core Replicas on an instant in-memory network and a virtual clock:
//  1. replica g/3 is cut off while it holds a client request: its view-change timer fires and it
//     climbs views alone; when it is reconnected, the others (happy in view 0) never follow;
//  2. every replica restarts from its storage and g/2 turns silent: g/0 and g/1 restart in
//     view 0, g/3 in its own higher view; g/0 and g/1 keep ordering nothing (2 voters), and the
//     view changes never gather 2f+1 replicas in one view.
// Run after a build: node apps/kv-demo/scripts/repro-view-divergence.mjs
import { Client, MemoryStorage, Replica, encodeMessage } from '@bftrc/core-agreement'
import { encode, generateCluster, sha256 } from '@bftrc/crypto'

const cluster = generateCluster({ groups: [{ name: 'g', f: 1 }], clients: ['c'], seed: sha256(encode({ repro: 'view-divergence' })) })
const ids = ['g/0', 'g/1', 'g/2', 'g/3']
const config = { viewChangeTimeout: 1000, maxViewChangeTimeout: 30_000 }
const executor = () => ({
  n: 0,
  execute() {
    this.n++
    return encode({ n: this.n })
  },
  executeReadOnly() {
    return encode({ n: this.n })
  },
  snapshot() {
    return encode({ n: this.n })
  },
  restore() {},
})
let now = 0
const storages = new Map(ids.map((id) => [id, new MemoryStorage()]))
let replicas = new Map()
const start = (restored) => {
  replicas = new Map(ids.map((id) => [id, new Replica({ membership: cluster.membership, self: id, keyPair: cluster.keys.get(id), executor: executor(), config, now, ...(restored ? { restored: storages.get(id).loadSync() } : {}) })]))
}
start(false)
const client = new Client({ membership: cluster.membership, group: 'g', id: 'c', keyPair: cluster.keys.get('c'), firstTimestamp: 1 })
const cut = new Set() // replicas whose frames are dropped, both ways
const silent = new Set() // replicas whose outbound frames are dropped
const queue = []
const flush = (id) => {
  const r = replicas.get(id).ready()
  storages.get(id).applySync(r.persist)
  if (cut.has(id) || silent.has(id)) return
  for (const m of r.messages) queue.push({ from: id, to: m.to, bytes: encodeMessage(m.message) })
}
const pump = () => {
  for (const id of ids) flush(id)
  const cr = client.ready()
  for (const m of cr.messages) queue.push({ from: 'c', to: m.to, bytes: encodeMessage(m.message) })
  while (queue.length > 0) {
    const f = queue.shift()
    if (cut.has(f.to) || cut.has(f.from)) continue
    if (f.to === 'c') client.step(f.from, f.bytes, now)
    else {
      replicas.get(f.to).step(f.from, f.bytes, now)
      flush(f.to)
    }
    const c2 = client.ready()
    for (const m of c2.messages) queue.push({ from: 'c', to: m.to, bytes: encodeMessage(m.message) })
    done.push(...c2.completed)
  }
}
const done = []
const advance = (ms) => {
  for (let t = 0; t < ms; t += 10) {
    now += 10
    for (const id of ids) replicas.get(id).tick(now)
    client.tick(now)
    pump()
  }
}
const show = (label) => console.log(label.padEnd(44), ids.map((id) => { const s = replicas.get(id).status(); return `${id} v${s.view}${s.active ? '' : '*'} exec${s.lastExecuted}` }).join('  '), `| client completed ${done.length}`)

client.invoke(encode({ op: 1 }), { now })
advance(500)
show('1 request, all connected:')
cut.add('g/3')
// g/3 alone holds a request (delivered to it before the cut, say): it relays it, nobody answers.
replicas.get('g/3').step('c', encodeMessage({ t: 'request', request: { ...(() => { const c = new Client({ membership: cluster.membership, group: 'g', id: 'c', keyPair: cluster.keys.get('c'), firstTimestamp: 1000 }); c.invoke(encode({ op: 'x' }), { now }); return c.ready().messages[0].message.request })() } }), now)
advance(20_000)
show('g/3 cut off for 20 s:')
cut.delete('g/3')
client.invoke(encode({ op: 2 }), { now })
advance(5_000)
show('g/3 reconnected, 1 more request:')
advance(60_000)
show('a minute later (g/3 never rejoins view 0):')
start(true)
silent.add('g/2')
client.invoke(encode({ op: 3 }), { now })
advance(120_000)
show('all restarted from storage, g/2 silent, 2 min:')
advance(600_000)
show('10 minutes later:')
