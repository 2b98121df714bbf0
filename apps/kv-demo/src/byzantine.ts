/**
 * Byzantine behaviours of a demo replica (`--byzantine <behaviour>`). The replica runs the real
 * code; the behaviour rewrites what it sends (the host's `outbound` hook), with the replica's own
 * key: it can sign anything that replica could, and nobody else's. Ideas from the simulator's
 * adversaries, re-done here so the demo does not depend on the simulator.
 *
 *  - silent:       sends nothing at all (it still receives and stores).
 *  - wrong-result: answers plain clients with a wrong result (digest matching the lie), and signs
 *                  reply shares to other groups for a result of its own invention (valid signature).
 *  - equivocate:   as a primary, sends conflicting validly signed pre-prepares (same view and
 *                  sequence number, another batch) to the backups with odd indices; as a caller,
 *                  signs request shares for a different operation towards odd callee replicas.
 *  - forge:        adds prepares and view changes with corrupted signatures, lies in its
 *                  checkpoints (validly signed, wrong digest), serves garbage state chunks, and
 *                  corrupts the signatures of its inter-group shares.
 *  - fuzz:         the generative adversary (@bftrc/adversary): beside its honest traffic it
 *                  sends, every 10 ms, messages of every type of every layer to the other
 *                  replicas of both groups, validly signed with its own key, with edge-value
 *                  fields, replays and splices of what it received (see `fuzzer`).
 *  - slow:         correct in every respect but timing: as a primary, it sends each pre-prepare
 *                  SLOW_DELAY_MS late, below the 1 s view-change timeout (Aardvark's slow
 *                  primary; see `slowPrimary`). The backups must replace it.
 */
import { type Frame, decodeInterGroup, encodeInterGroup, isInterGroupFrame, replyShareStatement, requestShareStatement } from '@bftrc/client-agreement'
import { DEFAULT_LIMITS, type Message, type PrePrepare, type StatementScope, checkpointStatement, decodeMessage, digestOfBatch, encodeMessage, prePrepareStatement } from '@bftrc/core-agreement'
import { type AdversaryFrame, type AdversaryView, GenerativeMember, Prng } from '@bftrc/adversary'
import { type KeyPair, type Membership, sha256, signBytes } from '@bftrc/crypto'

export const BEHAVIOURS = ['silent', 'wrong-result', 'equivocate', 'forge', 'fuzz', 'slow'] as const
export type BehaviourName = (typeof BEHAVIOURS)[number]

export interface ByzantineContext {
  readonly self: string
  readonly group: string
  readonly keyPair: KeyPair
  /** The deployment and group this replica's statements name. */
  readonly scope: StatementScope
}

export type Outbound = (frame: Frame) => readonly Frame[]

const text = new TextEncoder()

function core(frame: Frame): Message | undefined {
  if (isInterGroupFrame(frame.bytes)) return undefined
  try {
    return decodeMessage(frame.bytes, DEFAULT_LIMITS)
  } catch {
    return undefined
  }
}

function share(frame: Frame) {
  if (!isInterGroupFrame(frame.bytes)) return undefined
  try {
    return decodeInterGroup(frame.bytes, 1 << 20)
  } catch {
    return undefined
  }
}

function indexOf(id: string): number | undefined {
  const slash = id.indexOf('/')
  if (slash < 0) return undefined
  const n = Number(id.slice(slash + 1))
  return Number.isSafeInteger(n) ? n : undefined
}

function flip(sig: Uint8Array, at: number): Uint8Array {
  const bad = new Uint8Array(sig)
  bad[at % bad.length] = (bad[at % bad.length] as number) ^ 0xff
  return bad
}

function frame(to: string, bytes: Uint8Array, type: string): Frame {
  return { to, bytes, type }
}

export function isBehaviour(name: string): name is BehaviourName {
  return (BEHAVIOURS as readonly string[]).includes(name)
}

/** The generative adversary on a real process: what the host hooks and a timer need. */
export interface Fuzzer {
  readonly outbound: Outbound
  readonly inbound: (from: string, bytes: Uint8Array) => boolean
  /** Frames to send now, given where this replica is (its view, last executed, stable checkpoint). */
  readonly tick: (view: AdversaryView) => readonly AdversaryFrame[]
  /** Frames generated so far, by kind. */
  readonly counts: ReadonlyMap<string, number>
}

export function fuzzer(ctx: ByzantineContext & { readonly membership: Membership; readonly seed: number }): Fuzzer {
  const member = new GenerativeMember({ membership: ctx.membership, self: ctx.self, keyPair: ctx.keyPair, prng: new Prng(ctx.seed) })
  return {
    outbound: (f) => {
      member.observe(ctx.self, f.bytes)
      return [f]
    },
    inbound: (from, bytes) => {
      member.observe(from, bytes)
      return true
    },
    tick: (view) => member.tick(view),
    counts: member.counts,
  }
}

/** How late a `slow` primary sends its pre-prepares: well under the view-change timeout (1 s). */
export const SLOW_DELAY_MS = 400

/** The slow primary on a real process: the host hook holds its pre-prepares; a timer sends what is due. */
export interface SlowPrimary {
  readonly outbound: Outbound
  /** Held frames whose time has come (`now`: the host's clock in ms). */
  readonly due: (now: number) => readonly Frame[]
}

export function slowPrimary(ctx: ByzantineContext, clock: () => number, delayMs = SLOW_DELAY_MS): SlowPrimary {
  const held: Array<{ readonly at: number; readonly frame: Frame }> = []
  return {
    outbound: (f) => {
      if (core(f)?.t !== 'pre-prepare' || !f.to.startsWith(`${ctx.group}/`)) return [f]
      held.push({ at: clock() + delayMs, frame: f })
      return []
    },
    due: (now) => {
      let n = 0
      while (n < held.length && (held[n] as { at: number }).at <= now) n++
      return held.splice(0, n).map((h) => h.frame)
    },
  }
}

export function behaviour(name: Exclude<BehaviourName, 'fuzz' | 'slow'>, ctx: ByzantineContext): Outbound {
  switch (name) {
    case 'silent':
      return () => []
    case 'wrong-result':
      return (f) => {
        const m = core(f)
        if (m?.t === 'reply') {
          const result = text.encode(`forged by ${ctx.self} for ${m.timestamp}`)
          return [frame(f.to, encodeMessage({ ...m, result, resultDigest: sha256(result) }), f.type)]
        }
        const s = share(f)
        if (s?.t === 'reply-share') {
          const result = text.encode(`forged by ${ctx.self}: ${s.caller} call ${s.k}`)
          const resultDigest = sha256(result)
          const lie = { ...s, result, resultDigest, signature: signBytes(ctx.keyPair, replyShareStatement(ctx.scope.deployment, s.callee, s.caller, s.k, resultDigest)) }
          return [frame(f.to, encodeInterGroup(lie), f.type)]
        }
        return [f]
      }
    case 'equivocate':
      return (f) => {
        const m = core(f)
        const odd = (indexOf(f.to) ?? 0) % 2 === 1
        if (m?.t === 'pre-prepare' && odd && f.to.startsWith(`${ctx.group}/`)) {
          const batch = { ...m.batch, stamp: m.batch.stamp + 1, requests: [...m.batch.requests].reverse() }
          const other: PrePrepare = { ...m, batch, signature: signBytes(ctx.keyPair, prePrepareStatement(ctx.scope, m.view, m.seq, digestOfBatch(ctx.scope, batch))) }
          return [frame(f.to, encodeMessage(other), f.type)]
        }
        const s = share(f)
        if (s?.t === 'request-share' && odd) {
          const op = text.encode(`equivocated by ${ctx.self}`)
          const lie = { ...s, op, signature: signBytes(ctx.keyPair, requestShareStatement(ctx.scope.deployment, s.caller, s.callee, s.k, sha256(op))) }
          return [frame(f.to, encodeInterGroup(lie), f.type)]
        }
        return [f]
      }
    case 'forge':
      return (f) => {
        const m = core(f)
        if (m !== undefined) {
          switch (m.t) {
            case 'prepare':
              return [f, frame(f.to, encodeMessage({ ...m, signature: flip(m.signature, 0) }), 'forged')]
            case 'view-change':
              return [f, frame(f.to, encodeMessage({ ...m, signature: flip(m.signature, 1) }), 'forged')]
            case 'checkpoint': {
              const digest = sha256(m.digest)
              return [frame(f.to, encodeMessage({ ...m, digest, signature: signBytes(ctx.keyPair, checkpointStatement(ctx.scope, m.seq, digest)) }), 'forged')]
            }
            case 'state-chunk':
              return [frame(f.to, encodeMessage({ ...m, data: new Uint8Array(m.data.length).fill(7) }), 'forged')]
            default:
              return [f]
          }
        }
        const s = share(f)
        if (s !== undefined) return [frame(f.to, encodeInterGroup({ ...s, signature: flip(s.signature, 3) }), 'forged')]
        return [f]
      }
  }
}
