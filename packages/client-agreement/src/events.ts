/**
 * The events a group orders on behalf of client-agreement (core-agreement "proposals"):
 * a certified call from another group, a certified reply to one of our calls, a timer tick.
 * The validator checks everything that does not depend on state (shape, certificate, that the
 * call is addressed to us); the executor checks the rest (duplicates, windows) in order.
 */
import { MAX_VIEW, type ProposalValidator } from '@bftrc/core-agreement'
import {
  DecodeError,
  type Membership,
  type QuorumCertificate,
  type ValueMap,
  asBytes,
  asMap,
  asString,
  asUint,
  certificateFromValue,
  certificateToValue,
  decode,
  encode,
  sha256,
  verifyCertificate,
} from '@bftrc/crypto'
import { type UpgradeRequest, upgradeFromValue, upgradeId, upgradeToValue, verifyUpgradeAuthority } from './upgrade.js'
import { replyShareStatement, requestShareStatement } from './wire.js'

export interface CallEvent {
  readonly e: 'call'
  readonly caller: string
  readonly k: number
  readonly op: Uint8Array
  /** f_caller+1 request shares over requestShareStatement(caller, us, k, H(op)). */
  readonly cert: QuorumCertificate
  /**
   * Where replies go: the caller's view as the proposing replica saw it in the shares of this
   * certificate (the (f+1)-th highest, so at least one correct caller replica has taken part in
   * it). Not signed and not part of the key: only a routing hint, the same on every replica
   * because it is ordered; a wrong one costs the caller a retransmission, never a wrong result.
   */
  readonly route?: number
}

export interface ReplyEvent {
  readonly e: 'reply'
  readonly callee: string
  readonly k: number
  readonly result: Uint8Array
  /** f_callee+1 reply shares over replyShareStatement(callee, us, k, H(result)). */
  readonly cert: QuorumCertificate
}

/** "Agreed time has reached `at`": lets timers fire in a group that has nothing else to order. */
export interface TickEvent {
  readonly e: 'tick'
  readonly at: number
}

/** An externally requested software upgrade, signed by the upgrade authority. */
export interface UpgradeEvent {
  readonly e: 'upgrade'
  readonly request: UpgradeRequest
}

export type GroupEvent = CallEvent | ReplyEvent | TickEvent | UpgradeEvent

export const TICK_KEY = 'tick'

export function eventKey(ev: GroupEvent): string {
  switch (ev.e) {
    case 'call':
      return `call:${ev.caller}:${ev.k}`
    case 'reply':
      return `reply:${ev.callee}:${ev.k}`
    case 'tick':
      // One key for every tick: a tick only makes a batch (agreed time moves on, due timers
      // fire), so one waiting or in flight at a time is enough, and a member proposing ticks
      // with ever new `at` values fills nothing.
      return TICK_KEY
    case 'upgrade':
      return `upgrade:${upgradeId(ev.request)}`
  }
}

export function encodeEvent(ev: GroupEvent): Uint8Array {
  const v: ValueMap =
    ev.e === 'upgrade'
      ? { e: ev.e, request: upgradeToValue(ev.request) }
      : ev.e === 'tick'
      ? { e: ev.e, at: ev.at }
      : ev.e === 'call'
        ? { e: ev.e, caller: ev.caller, k: ev.k, op: ev.op, cert: certificateToValue(ev.cert), route: ev.route }
        : { e: ev.e, callee: ev.callee, k: ev.k, result: ev.result, cert: certificateToValue(ev.cert) }
  return encode(v)
}

export function decodeEvent(bytes: Uint8Array, maxOpBytes: number): GroupEvent {
  const m = asMap(decode(bytes, maxOpBytes + 64 * 1024), 'event')
  const e = asString(m.e, 'e', 16)
  switch (e) {
    case 'call':
      return {
        e,
        caller: asString(m.caller, 'caller', 32),
        k: asUint(m.k, 'k'),
        op: asBytes(m.op, 'op', undefined, maxOpBytes),
        cert: certificateFromValue(m.cert, 'cert'),
        ...(m.route !== undefined ? { route: asUint(m.route, 'route', MAX_VIEW) } : {}),
      }
    case 'reply':
      return { e, callee: asString(m.callee, 'callee', 32), k: asUint(m.k, 'k'), result: asBytes(m.result, 'result', undefined, maxOpBytes), cert: certificateFromValue(m.cert, 'cert') }
    case 'tick':
      return { e, at: asUint(m.at, 'at') }
    case 'upgrade':
      return { e, request: upgradeFromValue(m.request) }
    default:
      throw new DecodeError('wrong-type', `unknown event ${e}`)
  }
}

/** Checks an event's certificate against the membership; false for anything invalid. */
export function validEvent(membership: Membership, self: string, ev: GroupEvent): boolean {
  try {
    if (ev.e === 'tick') return true
    if (ev.e === 'upgrade') {
      verifyUpgradeAuthority(membership, self, ev.request)
      return true
    }
    if (ev.k < 1) return false
    if (ev.e === 'call') {
      const caller = membership.group(ev.caller)
      if (caller === undefined || ev.caller === self) return false
      verifyCertificate(membership, ev.cert, { group: ev.caller, digest: requestShareStatement(membership.deployment, ev.caller, self, ev.k, sha256(ev.op)), threshold: caller.weakQuorum })
      return true
    }
    const callee = membership.group(ev.callee)
    if (callee === undefined || ev.callee === self) return false
    verifyCertificate(membership, ev.cert, { group: ev.callee, digest: replyShareStatement(membership.deployment, ev.callee, self, ev.k, sha256(ev.result)), threshold: callee.weakQuorum })
    return true
  } catch {
    return false
  }
}

/**
 * The validator every replica of group `self` runs on proposals. Ticks (free to make) are
 * accepted by the primary from one replica at most once per `tickInterval` ms.
 */
export function eventValidator(membership: Membership, self: string, maxOpBytes: number, tickInterval: number): ProposalValidator {
  return {
    minInterval: (key) => (key === TICK_KEY ? tickInterval : undefined),
    validate(payload) {
      let ev: GroupEvent
      try {
        ev = decodeEvent(payload, maxOpBytes)
      } catch {
        return undefined
      }
      return validEvent(membership, self, ev) ? eventKey(ev) : undefined
    },
  }
}

