import { type CampaignReport, runCampaign } from '../src/index.js'

/** Seeds per scenario in CI; raise with BFTRC_SIM_SEEDS for a bigger campaign. */
export const SEEDS = Number(process.env.BFTRC_SIM_SEEDS ?? 8)

/** A campaign report's failures, formatted so a failing test names the seed to replay. */
export function failures(r: CampaignReport): string {
  return r.violations
    .slice(0, 5)
    .map((v) => `seed ${v.seed}: ${v.invariant}: ${v.detail.slice(0, 400)}`)
    .join('\n')
}

export function campaign(scenario: string, seeds = SEEDS, f = 1, firstSeed = 1): CampaignReport {
  return runCampaign({ scenario, seeds, f, firstSeed })
}
