/**
 * The chaos run, short: 30 s of the bank's workload over 8 replica processes while the fixed
 * seed's schedule kills (-9) and restarts two replicas and partitions two others away, then every
 * replica killed at once and restarted from disk. It must end ok: nothing acknowledged lost,
 * every audit passed, both groups' correct replicas in one state, and the faults really applied.
 */
import { afterAll, describe, expect, it } from 'vitest'
import type { ChaosSummary } from '../src/chaos.js'
import { CliRuns } from './cli-runs.js'

/** Seed 1 over 30 s: crash kv/2, crash bank/0, partition kv/0, partition bank/3 (test/chaos-schedule.test.ts checks the planner). */
const SEED = 1
const runs = new CliRuns()
afterAll(() => runs.killAll())

describe('kv-demo chaos', () => {
  it('survives kill -9 and restarts, partitions, and a kill of every replica, losing nothing', async () => {
    const r = await runs.run<ChaosSummary>(['chaos', '--duration', '30', '--seed', String(SEED), '--json'], 170_000)
    const s = r.summary
    expect(r.code, `problems: ${JSON.stringify(s?.problems)}\nstdout: ${r.stdout.slice(0, 3000)}\nstderr: ${r.stderr.slice(-3000)}`).toBe(0)
    expect(s).toBeDefined()
    const summary = s as ChaosSummary
    expect(summary).toMatchObject({ ok: true, verified: true, seed: SEED, lostAcknowledgedWrites: 0, agree: true, problems: [] })
    expect(summary.groups.kv?.agree && summary.groups.bank?.agree).toBe(true)
    // The faults really happened: processes killed and restarted, replicas cut off (frames dropped).
    expect(summary.crashes).toBeGreaterThanOrEqual(1)
    expect(summary.partitions).toBeGreaterThanOrEqual(1)
    expect(summary.restarts).toBeGreaterThanOrEqual(summary.crashes + 8)
    const partition = summary.faults.find((f) => f.kind === 'partition' && f.outcome === 'applied')
    expect(partition?.framesDropped).toBeGreaterThan(0)
    expect(summary.maxFaultyAtOnce).toEqual({ kv: 1, bank: 1 })
    // The workload ran and was checked: transfers, acknowledged writes, audits all passed.
    expect(summary.transfers).toBeGreaterThan(0)
    expect(summary.acknowledgedWrites).toBeGreaterThan(16)
    expect(summary.audits.runs).toBeGreaterThan(0)
    expect(summary.audits.failed).toBe(0)
    expect(summary.totals.kv).toBe(summary.totals.expected)
    // Every replica was killed at once and restarted from disk, and both groups ordered again.
    for (const g of Object.values(summary.groups)) {
      for (const p of g.replicas) {
        expect(p.end, p.id).toBe('stopped')
        expect(p.restarts, p.id).toBeGreaterThanOrEqual(1)
        expect(p.digest, p.id).toBe(g.digest)
      }
    }
    expect(summary.recovery.kvOrdered).not.toBeNull()
    expect(summary.recovery.bankOrdered).not.toBeNull()
    expect(summary.recovery.drained).not.toBeNull()
  }, 180_000)
})
