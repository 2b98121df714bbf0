/** One worker of a campaign pool: runs the seeds it is sent, one at a time, and answers each with its summary. */
import { parentPort } from 'node:worker_threads'
import { runGroupSeed } from './paired.js'
import { summarize } from './seed-summary.js'

parentPort?.on('message', (m: { scenario: string; seed: number; f: number; calls?: number }) => {
  parentPort?.postMessage(summarize(runGroupSeed(m.scenario, m.seed, m.f, m.calls)))
})
