/**
 * Seeds that once failed, kept as regression tests (a failing seed is a bug to fix, never a seed
 * to drop). Each names the bug it caught.
 */
import { describe, expect, it } from 'vitest'
import { runGroupSeed } from '../src/paired.js'
import { campaign, failures } from './helpers.js'

const REGRESSIONS: ReadonlyArray<{ scenario: string; seeds: readonly number[]; bug: string }> = [
  {
    scenario: 'primary-partition',
    seeds: [1, 2, 4, 5],
    bug: 'a replica that missed the last batches before the group fell idle never learned it was behind (fixed: idle STATUS heartbeat)',
  },
  {
    scenario: 'twins',
    seeds: [1, 2, 3, 4, 5],
    bug: 'a backup that alone saw an equivocating primary changed view alone and stayed stuck (fixed: pre-prepares count by signature, conflicting ones are relayed as proof)',
  },
  {
    scenario: 'byzantine-mix',
    seeds: [192],
    bug: 'a replica that changed view alone could not learn a batch once a peer had replaced its commit with a later view\'s and another had executed it without committing in that view (fixed: signed "executed" attestations, f+1 of them)',
  },
  {
    scenario: 'diverged-views',
    seeds: [6],
    bug: 'a replica restored from disk paired a slot\'s latest pre-prepare with the prepared certificate of an older one, so every view change it sent was rejected (fixed: the certified pre-prepare is stored with the certificate)',
  },
  {
    scenario: 'diverged-views',
    seeds: [114],
    bug: 'after a NEW-VIEW re-issued slots that one replica had executed before a restart, the others never resent it their prepares (STATUS looked only above its last executed slot), so it never sent the commits they lacked (fixed: peers resend votes for slots they still wait for)',
  },
  {
    scenario: 'diverged-views',
    seeds: [475],
    bug: 'the primary of a view whose backups could not gather a quorum waited forever: only relayed client requests armed the view-change timer (fixed: accepted batches that do not execute arm it too)',
  },
]

describe.each(REGRESSIONS)('regression in $scenario', ({ scenario, seeds, bug }) => {
  it.each(seeds)(`seed %i: ${bug}`, (seed) => {
    const r = campaign(scenario, 1, 1, seed)
    expect(failures(r)).toBe('')
    expect(r.completedRequests).toBe(r.expectedRequests)
  })
})

/** Group scenarios run paired (with and without the adversaries), so isolation and amplification are checked too. */
const GROUP_REGRESSIONS: ReadonlyArray<{ scenario: string; seeds: readonly number[]; bug: string }> = [
  {
    scenario: 'byzantine-fuzz',
    seeds: [16],
    bug: 'a primary restarted in its own view ordered nothing for a STATUS interval (fixed: a restarted replica sends STATUS at its first tick)',
  },
  {
    scenario: 'byzantine-fuzz',
    seeds: [33, 135, 180, 259],
    bug: 'a faulty member spoiled one replica\'s slot with a commit of another digest while the group ran on a bare quorum: everyone waited a STATUS interval for that replica (fixed: a replica whose next slot waits an ordering allowance behind a later committed slot asks at once)',
  },
  {
    scenario: 'byzantine-fuzz',
    seeds: [189, 300],
    bug: 'a backup reported a correct primary late half an allowance after reminding it of a request a faulty client had sent the backup alone (the reminder and the pre-prepare each cross a lossy network, the primary waited for pipeline room): the backup left the view alone and the group ran on a bare quorum with a faulty member (fixed: a whole allowance after the reminder)',
  },
]

describe.each(GROUP_REGRESSIONS)('regression in $scenario', ({ scenario, seeds, bug }) => {
  it.each(seeds)(`seed %i: ${bug}`, (seed) => {
    const outcome = runGroupSeed(scenario, seed, 1)
    expect(outcome.violations.map((v) => `${v.invariant}: ${v.detail.slice(0, 300)}`).join('\n')).toBe('')
    expect(outcome.result.completedRequests).toBe(outcome.result.expectedRequests)
  }, 120_000)
})
