/**
 * End to end: the real multi-process demo (8 replica processes over libp2p on 127.0.0.1, LevelDB
 * folders, the supervisor's plain client): failure-free on a fresh folder; with one Byzantine
 * replica in each group and a crash and restart of another KV replica; with the generative
 * adversary running on a replica of each group; with a slow KV primary; and the first folder
 * reused (every replica restarts from disk and the bank continues its history). Each must end
 * with ok, nothing acknowledged lost, and agreement in both groups.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { Summary } from '../src/demo.js'
import { type CliRun, CliRuns } from './cli-runs.js'

const root = mkdtempSync(join(tmpdir(), 'kv-demo-e2e-'))
const dataDir = join(root, 'data')
const faultDir = join(root, 'faults')
const runs = new CliRuns()

afterAll(async () => {
  await runs.killAll()
  rmSync(root, { recursive: true, force: true })
})

function demo(args: string[], timeoutMs: number): Promise<CliRun<Summary>> {
  return runs.run<Summary>([...args, '--json', '--no-dashboard'], timeoutMs)
}

function explain(r: CliRun<Summary>): string {
  return `problems: ${JSON.stringify(r.summary?.problems)}\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr.slice(-3000)}`
}

describe('the multi-process demo', () => {
  it('runs failure-free to a successful summary', async () => {
    const r = await demo(['--ops', '6', '--lanes', '2', '--data-dir', dataDir, '--timeout', '100'], 140_000)
    expect(r.code, explain(r)).toBe(0)
    const s = r.summary as Summary
    expect(s.ok).toBe(true)
    expect(s.ops).toBe(6)
    expect(s.lostAcknowledgedWrites).toBe(0)
    expect(s.acknowledgedWrites).toBeGreaterThanOrEqual(8 + 6 * 2)
    expect(s.audits.failed).toBe(0)
    expect(s.totals.kv).toBe(s.totals.expected)
    expect(s.groups.kv?.agree).toBe(true)
    expect(s.groups.bank?.agree).toBe(true)
    expect(s.groups.kv?.replicas.map((p) => p.end)).toEqual(['stopped', 'stopped', 'stopped', 'stopped'])
    expect(s.dataDir).toBe(dataDir)
  }, 160_000)

  it('with a Byzantine replica in each group and a KV replica crashed and restarted, still ends ok', async () => {
    const faults = ['byzantine:kv/1=wrong-result', 'byzantine:bank/2=silent', 'crash:kv/3@1', 'restart:kv/3@3']
    const r = await demo(['--ops', '6', '--lanes', '2', '--data-dir', faultDir, '--timeout', '100', ...faults.flatMap((f) => ['--fault', f])], 140_000)
    expect(r.code, explain(r)).toBe(0)
    const s = r.summary as Summary
    expect(s.ok).toBe(true)
    expect(s.ops).toBe(6)
    expect(s.lostAcknowledgedWrites).toBe(0)
    expect(s.groups.kv?.agree).toBe(true)
    expect(s.groups.bank?.agree).toBe(true)
    expect(s.faults.every((f) => f.applied)).toBe(true)
    const kv3 = s.groups.kv?.replicas.find((p) => p.id === 'kv/3')
    expect(kv3).toMatchObject({ role: 'correct', end: 'stopped', restarts: 1 })
    expect(kv3?.digest).toBe(s.groups.kv?.digest)
    expect(s.groups.kv?.replicas.find((p) => p.id === 'kv/1')?.role).toBe('byzantine:wrong-result')
    expect(s.groups.bank?.replicas.find((p) => p.id === 'bank/2')?.role).toBe('byzantine:silent')
  }, 160_000)

  it('with the generative adversary on a KV and a bank replica (every message type, edge values, replays), still ends ok', async () => {
    const r = await demo(['--ops', '6', '--lanes', '2', '--data-dir', join(root, 'fuzz'), '--timeout', '100', '--fault', 'byzantine:kv/1=fuzz', '--fault', 'byzantine:bank/2=fuzz'], 140_000)
    expect(r.code, explain(r)).toBe(0)
    const s = r.summary as Summary
    expect(s).toMatchObject({ ok: true, ops: 6, lostAcknowledgedWrites: 0 })
    expect(s.groups.kv?.agree && s.groups.bank?.agree).toBe(true)
    expect(s.groups.kv?.replicas.find((p) => p.id === 'kv/1')?.role).toBe('byzantine:fuzz')
    // The correct replicas saw (and refused) what it generated.
    expect(s.faultsSeen.badMessagesRefused).toBeGreaterThan(10)
  }, 160_000)

  it('with a slow KV primary (every pre-prepare 400 ms late, under the view-change timeout), replaces it and ends ok', async () => {
    const r = await demo(['--ops', '6', '--lanes', '2', '--data-dir', join(root, 'slow'), '--timeout', '100', '--fault', 'byzantine:kv/0=slow'], 140_000)
    expect(r.code, explain(r)).toBe(0)
    const s = r.summary as Summary
    expect(s).toMatchObject({ ok: true, ops: 6, lostAcknowledgedWrites: 0 })
    expect(s.groups.kv?.agree && s.groups.bank?.agree).toBe(true)
    expect(s.groups.kv?.replicas.find((p) => p.id === 'kv/0')?.role).toBe('byzantine:slow')
    // The backups replaced it: the KV group left view 0.
    expect(s.faultsSeen.viewChanges).toBeGreaterThan(0)
  }, 160_000)

  it('reuses a data folder: every replica restarts from disk and the bank continues', async () => {
    const r = await demo(['--ops', '2', '--data-dir', dataDir, '--timeout', '100'], 140_000)
    expect(r.code, explain(r)).toBe(0)
    const s = r.summary as Summary
    expect(s).toMatchObject({ ok: true, ops: 2, lostAcknowledgedWrites: 0 })
    expect(s.groups.kv?.agree && s.groups.bank?.agree).toBe(true)
    // 8 transfers in the bank's history now: the acknowledged writes of both runs are all there.
    expect(s.acknowledgedWrites).toBeGreaterThanOrEqual(8 + 8 * 2)
  }, 160_000)
})
