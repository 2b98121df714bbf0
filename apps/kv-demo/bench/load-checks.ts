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
  /** Replicas that did not answer (dead or stuck). */
  readonly silent: string[]
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

function disagreement(a: Agreement): string {
  const answering = a.digests.filter((d) => d !== '')
  return `seq ${a.lastExecuted.join('/')}, ${new Set(answering).size} distinct digest(s) among ${answering.length} replicas${a.silent.length > 0 ? `; no answer from ${a.silent.join(', ')}` : ''}`
}

export class LoadChecks {
  constructor(
    private readonly group: readonly Child[],
    private readonly checker: ClientEndpoint,
    private readonly log: (line: string) => void,
  ) {}

  async run(): Promise<CorrectnessReport> {
    const problems: string[] = []
    const afterDrain = await this.converge(0)
    if (!afterDrain.agree) problems.push(`no agreement after the drain: ${disagreement(afterDrain)}`)
    const t0 = performance.now()
    const live = await this.writeThenRead()
    const writeReadMs = Math.round(performance.now() - t0)
    if (!live.ok) problems.push(`not live: ${live.why}`)
    const afterWrite = await this.converge(Math.max(...afterDrain.lastExecuted) + 1)
    if (!afterWrite.agree) problems.push(`no agreement after the final write: ${disagreement(afterWrite)}`)
    const seq = (a: Agreement) => (a.agree ? `all 4 at seq ${a.lastExecuted[0]} (digest ${a.digests[0]?.slice(0, 16)}), view ${a.views[0]}, ${a.seconds} s to converge` : `NOT agreed after ${a.seconds} s: ${disagreement(a)}`)
    const summary = `after the drain ${seq(afterDrain)}; ordered write+read ${live.ok ? `ok in ${writeReadMs} ms` : `FAILED (${live.why})`}; after it ${seq(afterWrite)}`
    this.log(`correctness: ${summary}`)
    return { afterDrain, live: live.ok, writeReadMs, afterWrite, problems, summary }
  }

  /**
   * Polls until every replica reports the same sequence number (≥ `atLeast`) and digest, or gives
   * up. A replica that does not answer (it died) reports seq -1 and no digest, so never agrees.
   */
  private async converge(atLeast: number): Promise<Agreement> {
    const t0 = performance.now()
    for (;;) {
      const settled = await Promise.allSettled(this.group.map((c) => c.status()))
      const last: Array<NodeStatus | undefined> = settled.map((s) => (s.status === 'fulfilled' ? s.value : undefined))
      const seqs = last.map((s) => s?.host?.lastExecuted ?? -1)
      const digests = last.map((s) => s?.host?.stateDigest ?? '')
      const agree = new Set(seqs).size === 1 && new Set(digests).size === 1 && (seqs[0] as number) >= atLeast
      const seconds = Math.round((performance.now() - t0) / 100) / 10
      const silent = this.group.filter((_, i) => last[i] === undefined).map((c) => c.id)
      // A replica that exited will never agree: no point waiting for it.
      if (agree || this.group.some((c) => c.exited) || performance.now() - t0 > CONVERGE_MS) return { agree, silent, lastExecuted: seqs, digests, views: last.map((s) => s?.host?.view ?? -1), seconds }
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
