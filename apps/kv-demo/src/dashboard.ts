/**
 * The demo's web dashboard: a tiny HTTP server on 127.0.0.1 serving one page of plain HTML and
 * JavaScript (no framework) that polls `/api/state` twice a second and draws the groups, their
 * replicas (state, role, view, sequence number, checkpoint, health, calls in flight), the
 * workload's progress, the faults and the latest events.
 */
import { type Server, createServer } from 'node:http'

export interface DashboardReplica {
  readonly id: string
  readonly state: string
  readonly health: string
  readonly byzantine: string | null
  readonly primary: boolean
  readonly view: number | null
  readonly lastExecuted: number | null
  readonly stableCheckpoint: number | null
  readonly callsInFlight: number | null
  readonly restarts: number
  readonly pid: number | null
  readonly digest: string | null
  readonly callLatencyP50: number | null
}

export interface DashboardState {
  readonly title: string
  readonly phase: string
  readonly elapsed: number
  readonly dataDir: string
  readonly progress: Record<string, unknown>
  readonly groups: ReadonlyArray<{ readonly name: string; readonly role: string; readonly f: number; readonly n: number; readonly view: number; readonly replicas: readonly DashboardReplica[] }>
  readonly faults: ReadonlyArray<{ readonly text: string; readonly status: string }>
  readonly events: ReadonlyArray<{ readonly t: number; readonly text: string }>
}

export interface Dashboard {
  readonly url: string
  close(): Promise<void>
}

export async function startDashboard(port: number, state: () => DashboardState): Promise<Dashboard> {
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '/'
    if (req.method !== 'GET') {
      res.writeHead(405, { 'content-type': 'text/plain' }).end('GET only\n')
      return
    }
    if (url === '/' || url === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(PAGE)
      return
    }
    if (url === '/api/state') {
      let body: string
      try {
        body = JSON.stringify(state())
      } catch (err) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err))
        return
      }
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body)
      return
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
  const actual = (server.address() as { port: number }).port
  return {
    url: `http://127.0.0.1:${actual}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>bftrc kv-demo</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }
  h1 { font-size: 1.3em; margin: 0 0 .3em; }
  h2 { font-size: 1.05em; margin: 1.2em 0 .4em; }
  table { border-collapse: collapse; background: #fff; }
  th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
  th { background: #f0f0f0; } td.l, th.l { text-align: left; }
  .ok { color: #17702a; } .bad { color: #b00020; font-weight: bold; } .warn { color: #a15c00; }
  .byz { background: #fff1f0; } .down { background: #f3f3f3; color: #888; }
  #progress span { margin-right: 1.2em; }
  #events { font-family: ui-monospace, monospace; font-size: 12px; white-space: pre-wrap; background: #fff; border: 1px solid #ddd; padding: .5em; max-height: 16em; overflow: auto; }
  .groups { display: flex; gap: 2em; flex-wrap: wrap; }
</style>
</head>
<body>
<h1 id="title">bftrc kv-demo</h1>
<div id="phase" data-phase="">connecting…</div>
<div id="progress"></div>
<div class="groups" id="groups"></div>
<h2>Faults</h2>
<ul id="faults"></ul>
<h2>Events</h2>
<div id="events"></div>
<script>
'use strict'
function el(tag, attrs, ...children) {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v
    else e.setAttribute(k, v)
  }
  for (const c of children) e.append(c instanceof Node ? c : c === null || c === undefined ? '' : String(c))
  return e
}
function show(v) { return v === null || v === undefined ? '–' : v }
function render(s) {
  document.getElementById('title').textContent = s.title
  const phase = document.getElementById('phase')
  phase.textContent = 'phase: ' + s.phase + ' · ' + s.elapsed.toFixed(1) + ' s · data: ' + s.dataDir
  phase.setAttribute('data-phase', s.phase)
  const p = s.progress || {}
  const progress = document.getElementById('progress')
  progress.replaceChildren(
    el('span', { id: 'transfers' }, 'transfers ' + show(p.completed) + ' / ' + show(p.target)),
    el('span', { id: 'acked' }, 'acknowledged writes ' + show(p.ackedWrites)),
    el('span', { id: 'calls' }, 'calls: sync ' + show(p.syncCalls) + ', async ' + show(p.asyncCalls) + ', in flight ' + show(p.inFlight)),
    el('span', { id: 'audits', class: p.auditsFailed > 0 ? 'bad' : 'ok' }, 'audits ' + show(p.audits) + ' (' + show(p.auditsFailed) + ' failed)'),
    el('span', { id: 'refused' }, 'bad messages refused ' + show(p.badMessagesRefused)),
  )
  const groups = document.getElementById('groups')
  groups.replaceChildren(...s.groups.map((g) => {
    const head = el('tr', {}, ...['replica', 'process', 'role', 'view', 'seq', 'checkpoint', 'health', 'calls in flight', 'call p50 ms', 'digest'].map((h, i) => el('th', { class: i < 3 || i > 5 ? 'l' : '' }, h)))
    const rows = g.replicas.map((r) => el('tr', { 'data-replica': r.id, 'data-health': r.health, class: r.byzantine ? 'byz' : (r.state !== 'up' ? 'down' : '') },
      el('td', { class: 'l' }, r.id),
      el('td', { class: 'l' }, r.state + (r.pid ? ' (' + r.pid + ')' : '') + (r.restarts ? ' ↻' + r.restarts : '')),
      el('td', { class: 'l' }, (r.primary ? 'primary' : 'backup') + (r.byzantine ? ' · Byzantine: ' + r.byzantine : '')),
      el('td', { 'data-field': 'view' }, show(r.view)),
      el('td', { 'data-field': 'seq' }, show(r.lastExecuted)),
      el('td', { 'data-field': 'checkpoint' }, show(r.stableCheckpoint)),
      el('td', { class: 'l ' + (r.health === 'ok' ? 'ok' : r.health === 'down' || r.health === 'died' ? 'bad' : 'warn'), 'data-field': 'health' }, r.health),
      el('td', { 'data-field': 'calls' }, show(r.callsInFlight)),
      el('td', {}, show(r.callLatencyP50)),
      el('td', { class: 'l' }, r.digest ? r.digest.slice(0, 12) : '–')))
    return el('div', { class: 'group', 'data-group': g.name },
      el('h2', {}, g.name + ' — ' + g.role + ' (n = ' + g.n + ', f = ' + g.f + ', view ' + g.view + ')'),
      el('table', {}, head, ...rows))
  }))
  document.getElementById('faults').replaceChildren(...(s.faults.length ? s.faults.map((f) => el('li', { 'data-status': f.status }, f.text + ' — ' + f.status)) : [el('li', {}, 'none')]))
  const events = document.getElementById('events')
  events.textContent = s.events.map((e) => e.t.toFixed(1).padStart(6) + ' s  ' + e.text).join('\\n')
  events.scrollTop = events.scrollHeight
}
async function tick() {
  try {
    const res = await fetch('/api/state', { cache: 'no-store' })
    if (res.ok) render(await res.json())
  } catch (e) {
    document.getElementById('phase').textContent = e instanceof TypeError && /fetch/i.test(e.message) ? 'demo not reachable (stopped?)' : 'dashboard error: ' + e
  }
  setTimeout(tick, 500)
}
tick()
</script>
</body>
</html>
`
