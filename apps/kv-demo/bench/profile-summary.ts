/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by function and by file or
 * package, as percentages of the sampled time.
 *
 *   node dist/bench/bench/profile-summary.js FILE.cpuprofile [TOP]
 */
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

export function where(url: string): string {
  if (url === '') return '(native/V8)'
  const pkg = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg !== null) return `npm:${pkg[1]}`
  const ws = /\/(packages|apps)\/([^/]+)\/dist\/(.*)$/.exec(url)
  if (ws !== null) return `${ws[2]}/${ws[3]}`
  if (url.startsWith('node:')) return url
  return url.replace(/^file:\/\//, '')
}

/** A coarse category of a profile node: where the time goes on a replica's hot path. */
export function category(functionName: string, url: string): string {
  if (functionName === '(idle)') return 'idle (waiting for input)'
  if (functionName === '(garbage collector)') return 'garbage collection'
  if (functionName === '(program)') return 'V8/native, unattributed'
  if (/verifyOneShot|signOneShot/.test(functionName)) return 'Ed25519 sign/verify'
  if (/node:internal\/crypto\/(hash|mac)/.test(url) || /^(digest|Hash|Hmac)$/.test(functionName)) return 'hashing, MACs'
  if (/libp2p|noise|yamux|uint8arraylist|as-chacha|noble|it-|p-queue|main-event|multiformats|multiaddr|libp2p-transport\//.test(url) || functionName === 'writeBuffer' || /node:(net|internal\/stream|internal\/event_target)/.test(url)) return 'transport (libp2p, sockets)'
  if (/classic-level|abstract-level|level-storage/.test(url)) return 'storage (LevelDB calls)'
  if (/crypto\/dist\/encoding|node:internal\/encoding|uint8arrays/.test(url)) return 'encoding/decoding'
  if (/core-agreement|client-agreement|kv-demo/.test(url)) return 'agreement and application logic'
  if (/node:internal\/modules|compileSourceTextModule|internalModuleStat|node:internal\/bootstrap|node:internal\/url/.test(url + functionName)) return 'start-up (module loading)'
  if (/^(openFileHandle|realpathSync|fstat|open|read|internalModuleReadJSON|readFileUtf8)$/.test(functionName) || /node:(fs|internal\/fs|path)/.test(url)) return 'file system calls (mostly start-up)'
  return 'other'
}

export function summariseProfile(p: Profile, top = 25): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i] as number, (self.get(p.samples[i] as number) ?? 0) + (p.timeDeltas[i] ?? 0))
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  const byFn = new Map<string, number>()
  const byFile = new Map<string, number>()
  const byCategory = new Map<string, number>()
  for (const [id, t] of self) {
    const n = byId.get(id)
    if (n === undefined) continue
    const fn = `${n.callFrame.functionName || '(anonymous)'} ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`
    byFn.set(fn, (byFn.get(fn) ?? 0) + t)
    const file = where(n.callFrame.url)
    byFile.set(file, (byFile.get(file) ?? 0) + t)
    const c = category(n.callFrame.functionName, n.callFrame.url)
    byCategory.set(c, (byCategory.get(c) ?? 0) + t)
  }
  const pct = (t: number) => `${((100 * t) / total).toFixed(1).padStart(5)} %`
  const busy = total - (byCategory.get('idle (waiting for input)') ?? 0)
  const lines = [`sampled ${(total / 1e6).toFixed(2)} s of ${((p.endTime - p.startTime) / 1e6).toFixed(2)} s wall; not idle ${(busy / 1e6).toFixed(2)} s`, '', 'by category (share of all samples | share of non-idle samples):']
  for (const [k, t] of [...byCategory].sort((a, b) => b[1] - a[1])) lines.push(`${pct(t)} | ${k === 'idle (waiting for input)' ? '       ' : `${((100 * t) / busy).toFixed(1).padStart(5)} %`}  ${k}`)
  lines.push('', 'self time by file or package:')
  for (const [k, t] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`${pct(t)}  ${k}`)
  lines.push('', 'self time by function:')
  for (const [k, t] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`${pct(t)}  ${k}`)
  return lines.join('\n')
}

const file = process.argv[2]
if (file !== undefined) process.stdout.write(`${summariseProfile(JSON.parse(readFileSync(file, 'utf8')) as Profile, Number(process.argv[3] ?? 25))}\n`)
