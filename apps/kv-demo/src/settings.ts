/**
 * Protocol settings every replica of the demo uses (they must agree: checkpoint interval and log
 * window are part of the protocol). Times are host-clock milliseconds.
 */
import type { VoterConfig } from '@bftrc/client-agreement'

export const VOTER_CONFIG: Partial<VoterConfig> = {
  // A call whose full result is late (its designated replica is faulty or down) is retransmitted
  // to every callee replica after this long; the default 1 s would dominate the demo's latency
  // with one faulty KV replica (one call in n is designated to it).
  callTimeout: 800,
  maxCallTimeout: 8_000,
  core: {
    // STATUS asks peers to resend what a replica misses when it has seen no progress for this
    // long. The default 150 ms is shorter than one agreement round of 8 processes sharing 2
    // cores and fsyncing: replicas then resend pre-prepares, prepares and commits that are
    // merely in flight, roughly doubling the traffic.
    statusInterval: 600,
    // Eight processes on two shared cores see agreement rounds of a second or more when the
    // machine is busy; a 1 s view-change timer then fires for events that are merely slow, and a
    // replica that starts a view change alone stays out of the voting until the others change
    // view too (README: "Known limitations"). A faulty primary costs this long to replace.
    viewChangeTimeout: 4_000,
  },
}

/** Plain clients (supervisor, CLI) retransmit after this long, doubling. */
export const CLIENT_CONFIG = { retransmitTimeout: 500, maxRetransmitTimeout: 4_000 }

/** Client ids the generated config lists: the supervisor's and the interactive CLI's. */
export const SUPERVISOR_ID = 'supervisor'
export const CLI_ID = 'cli'
