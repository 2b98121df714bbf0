import { describe, expect, it } from 'vitest'
import { DEFAULT_CONFIG } from '@bftrc/core-agreement'
import { runCampaign } from '../src/index.js'

describe('bounded memory over a long run', () => {
  it('keeps every bounded structure within its limit thanks to checkpoint garbage collection', () => {
    const r = runCampaign({ scenario: 'long', seeds: 1, requests: 3_000 })
    expect(r.violations).toEqual([])
    expect(r.completedRequests).toBe(r.expectedRequests)
    expect(r.maxSizes.log ?? 0).toBeLessThanOrEqual(DEFAULT_CONFIG.logWindow + DEFAULT_CONFIG.checkpointInterval)
    expect(r.maxSizes.ownCheckpoints ?? 0).toBeLessThanOrEqual(DEFAULT_CONFIG.logWindow / DEFAULT_CONFIG.checkpointInterval + 1)
    expect(r.maxSizes.checkpointVotes ?? 0).toBeLessThanOrEqual(4 * (2 * DEFAULT_CONFIG.logWindow) / DEFAULT_CONFIG.checkpointInterval)
    expect(r.maxSizes.clients ?? 0).toBeLessThanOrEqual(16)
    expect(r.maxSizes.verifiedRequests ?? 0).toBeLessThanOrEqual(4096)
  })
})
