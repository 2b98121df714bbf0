/**
 * Checkers of what a faulty peer can make a correct replica spend, beside the safety checkers of
 * checkers.ts. Each watches correct replicas only:
 *
 * - work per input: the signature checks and frames one `step` or `tick` costs, against a bound
 *   that follows from the protocol's limits (the worst legitimate input: a NEW-VIEW whose view
 *   changes carry a full window of prepared certificates, a full batch of signed requests and
 *   certified proposals); a hang never returns at all, which the campaign's watchdog reports;
 * - memory: every bounded structure (`Voter.sizes()`), sampled, against its configured limit;
 * - traffic: bytes each correct replica sent to and received from each other node, so a campaign
 *   can bound what an adversary draws back per byte it sends (see run.ts, amplification).
 */
import type { VoterConfig } from '@bftrc/client-agreement'
import { MAX_STATE_BYTES, type ReplicaConfig, resolveConfig } from '@bftrc/core-agreement'
import type { Group } from '@bftrc/crypto'
import type { Violation } from './checkers.js'

export interface InputCost {
  readonly verifications: number
  readonly frames: number
}

/** The most one input may cost a correct replica of `group`. */
export function workBound(config: ReplicaConfig, group: Group, otherMembers: number): InputCost {
  const q = group.quorum
  const window = config.logWindow
  // A NEW-VIEW: n view changes (one per member; the others fail the membership check first),
  // each a signature, a checkpoint certificate and a window of prepared certificates, plus the
  // window of re-issued pre-prepares.
  const newView = group.n * (1 + q + window * q) + window
  // A pre-prepare: every request's signature, every proposal's certificate (at most one share per
  // member of the proposing group), the primary's signature.
  const prePrepare = config.limits.maxBatchRequests + config.limits.maxBatchProposals * Math.max(group.n, otherMembers) + 1
  // Frames: a new primary re-issues a window (pre-prepares and prepares to every peer), answers
  // and replies to clients for a full batch; a STATUS answer is a few per slot.
  const frames = (group.n + 1) * (window + 4) + config.maxBatchRequests + 64
  return { verifications: Math.max(newView, prePrepare) + 64, frames }
}

export class WorkChecker {
  /** The costliest inputs seen (most signature checks, most frames), with their kinds. */
  readonly worst = { verifications: { cost: 0, kind: '' }, frames: { cost: 0, kind: '' } }

  constructor(private readonly violate: (invariant: Violation['invariant'], detail: string) => void) {}

  /** `kind` ("step.<type>", "tick") is computed only when it is reported. */
  record(node: string, kind: () => string, cost: InputCost, bound: InputCost): void {
    if (cost.verifications > this.worst.verifications.cost) this.worst.verifications = { cost: cost.verifications, kind: kind() }
    if (cost.frames > this.worst.frames.cost) this.worst.frames = { cost: cost.frames, kind: kind() }
    if (cost.verifications > bound.verifications || cost.frames > bound.frames) {
      this.violate('work', `${node} ${kind()}: ${cost.verifications} signature checks and ${cost.frames} frames out, bound ${bound.verifications} and ${bound.frames}`)
    }
  }
}

/** The limit of each structure `Voter.sizes()` reports, from the configuration and the membership. */
export function memoryBounds(voter: Partial<VoterConfig>, group: Group, members: number, listedClients: number): Record<string, number> {
  const c = resolveConfig(voter.core)
  const callWindow = voter.callWindow ?? 64
  const maxOpenClients = c.maxOpenClients
  return {
    // The window above our stable checkpoint, and the window above a NEW-VIEW's checkpoint when
    // that one is ahead of ours (its slots wait there while we fetch the state below them).
    log: 2 * c.logWindow + 1,
    checkpointVotes: group.n * ((2 * c.logWindow) / c.checkpointInterval + 1),
    ownCheckpoints: c.logWindow / c.checkpointInterval + 2,
    queue: c.maxPendingRequests,
    pending: c.maxPendingRequests,
    verifiedRequests: 4096,
    viewChanges: group.n,
    inFlight: listedClients + maxOpenClients,
    proposalQueue: c.maxPendingRequests,
    pendingProposals: c.maxPendingRequests,
    inFlightProposals: c.limits.maxBatchProposals * c.logWindow,
    validProposals: 4096,
    clients: listedClients + maxOpenClients,
    outstanding: callWindow * members,
    queued: (voter.maxQueuedCalls ?? 10_000) * members,
    replies: callWindow * members,
    executedAbove: callWindow * members,
    timers: voter.maxTimers ?? 10_000,
    workflows: voter.maxWorkflows ?? 1_000,
    history: 10_000 * (voter.maxWorkflows ?? 1_000),
    calls: callWindow * members,
    // Share collections: at most `callWindow` per sending replica of another group.
    incoming: callWindow * members,
    replyCollections: callWindow * members,
    // A state being fetched: only verified chunks of a state whose size 2f+1 replicas signed.
    stateTransferBytes: MAX_STATE_BYTES,
  }
}

export class MemoryChecker {
  readonly max = new Map<string, number>()

  constructor(private readonly violate: (invariant: Violation['invariant'], detail: string) => void) {}

  sample(node: string, sizes: Readonly<Record<string, number>>, bounds: Readonly<Record<string, number>>): void {
    for (const [k, v] of Object.entries(sizes)) {
      if (v > (this.max.get(k) ?? 0)) this.max.set(k, v)
      const bound = bounds[k]
      if (bound === undefined) this.violate('memory', `${node}: ${k} has no bound`)
      else if (v > bound) this.violate('memory', `${node}: ${k} = ${v}, bound ${bound}`)
    }
  }
}

/** Bytes between each pair of nodes, counted at the sender (to) and at the receiver (from). */
export class TrafficLedger {
  private readonly bytes = new Map<string, number>()

  add(from: string, to: string, n: number): void {
    const k = `${from}>${to}`
    this.bytes.set(k, (this.bytes.get(k) ?? 0) + n)
  }

  between(from: string, to: string): number {
    return this.bytes.get(`${from}>${to}`) ?? 0
  }
}

export { resolveConfig as replicaConfigOf }
export type { ReplicaConfig }
