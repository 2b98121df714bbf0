/**
 * The checks after `pnpm load`'s steps: the group agrees (every replica at the same sequence
 * number with the same state digest) and is live (an ordered write, then an ordered read of
 * it, through a client that took no part in the load), and agrees again after that write.
 */
import { randomBytes } from 'node:crypto'
import { toHex } from '@bftrc/crypto'
import { decodeKvResult, kv } from '../src/kv-app.js'
import type { NodeStatus } from './metrics.js'
import type { Child, ClientEndpoint } from './processes.js'

export interface Agreement {
  readonly agree: boolean
  readonly lastExecuted: number[]
  readonly digests: string[]
  readonly views: number[]
  /** Seconds it took to reach agreement (or to give up). */
  readonly seconds: number
}

export interface CorrectnessReport {
  readonly afterDrain: Agreement
  readonly live: boolean
  readonly writeReadMs: number
  readonly afterWrite: Agreement
  readonly problems: string[]
  readonly summary: string
}

const CONVERGE_MS = 60_000
const REQUEST_MS = 30_000

export class LoadChecks {
  constructor(
    private readonly group: readonly Child[],
    private readonly checker: ClientEndpoint,
    private readonly log: (line: string) => void,
  ) {}

  async run(): Promise<CorrectnessReport> {
    const problems: string[] = []
    const afterDrain = await this.converge(0)
    if (!afterDrain.agree) problems.push(`no agreement after the drain: seq ${afterDrain.lastExecuted.join('/')}, digests ${new Set(afterDrain.digests).size} distinct`)
    const t0 = performance.now()
    const live = await this.writeThenRead()
    const writeReadMs = Math.round(performance.now() - t0)
    if (!live.ok) problems.push(`not live: ${live.why}`)
    const afterWrite = await this.converge(Math.max(...afterDrain.lastExecuted) + 1)
    if (!afterWrite.agree) problems.push(`no agreement after the final write: seq ${afterWrite.lastExecuted.join('/')}, digests ${new Set(afterWrite.digests).size} distinct`)
    const seq = (a: Agreement) => `${a.agree ? 'all 4 at' : 'NOT agreed:'} seq ${[...new Set(a.lastExecuted)].join('/')} (digest ${a.digests[0]?.slice(0, 16) ?? '?'}${new Set(a.digests).size > 1 ? ', differing' : ''}), view ${[...new Set(a.views)].join('/')}, ${a.seconds} s to converge`
    const summary = `after the drain ${seq(afterDrain)}; ordered write+read ${live.ok ? `ok in ${writeReadMs} ms` : `FAILED (${live.why})`}; after it ${seq(afterWrite)}`
    this.log(`correctness: ${summary}`)
    return { afterDrain, live: live.ok, writeReadMs, afterWrite, problems, summary }
  }

  /** Polls until every replica reports the same sequence number (≥ `atLeast`) and digest, or gives up. */
  private async converge(atLeast: number): Promise<Agreement> {
    const t0 = performance.now()
    let last: NodeStatus[] = []
    for (;;) {
      last = await Promise.all(this.group.map((c) => c.status()))
      const seqs = last.map((s) => s.host?.lastExecuted ?? -1)
      const digests = last.map((s) => s.host?.stateDigest ?? '')
      const agree = new Set(seqs).size === 1 && new Set(digests).size === 1 && (seqs[0] as number) >= atLeast
      const seconds = Math.round((performance.now() - t0) / 100) / 10
      if (agree || performance.now() - t0 > CONVERGE_MS) return { agree, lastExecuted: seqs, digests, views: last.map((s) => s.host?.view ?? -1), seconds }
      await new Promise((r) => setTimeout(r, 250))
    }
  }

  private async writeThenRead(): Promise<{ ok: boolean; why: string }> {
    const value = toHex(randomBytes(8))
    try {
      const w = decodeKvResult((await this.checker.host.invoke('kv', kv.put('load/final', value), { timeoutMs: REQUEST_MS })).result)
      if (!w.ok) return { ok: false, why: `the write was refused: ${JSON.stringify(w)}` }
      const r = decodeKvResult((await this.checker.host.invoke('kv', kv.get('load/final'), { timeoutMs: REQUEST_MS })).result)
      if (!r.ok || !('value' in r) || r.value !== value) return { ok: false, why: `the read returned ${JSON.stringify(r)}, not ${value}` }
      return { ok: true, why: '' }
    } catch (err) {
      return { ok: false, why: (err as Error).message }
    }
  }
}
