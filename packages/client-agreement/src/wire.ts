/**
 * Messages between groups, and the statements their signatures cover.
 *
 * A call is `(caller, callee, k)`. Every caller replica signs a request share over
 * (caller, callee, k, H(op)); f_c+1 of them are a request certificate. Every callee replica signs
 * a reply share over (callee, caller, k, H(result)); f_s+1 are a reply certificate. Shares carry
 * their sender's current view, so each group learns which replica of the other is primary.
 *
 * On the wire an inter-group frame is one marker byte followed by a canonical map; core
 * agreement frames (canonical maps) never start with that byte, so one stream carries both.
 */
import {
  DIGEST_BYTES,
  DecodeError,
  SIGNATURE_BYTES,
  type ValueMap,
  asBool,
  asBytes,
  asMap,
  asString,
  asUint,
  decode,
  digestOf,
  encode,
} from '@bftrc/crypto'

export const INTER_GROUP_MARKER = 0xc1

export interface RequestShare {
  readonly t: 'request-share'
  readonly caller: string
  readonly callee: string
  readonly k: number
  readonly op: Uint8Array
  /** The view the sender last took part in, in the caller group (see ReplicaStatus.activeView). */
  readonly view: number
  /** Sent to every callee replica because the call took too long (the fallback path). */
  readonly retransmit: boolean
  readonly signature: Uint8Array
}

export interface ReplyShare {
  readonly t: 'reply-share'
  readonly callee: string
  readonly caller: string
  readonly k: number
  readonly resultDigest: Uint8Array
  /** From the designated replica (k mod n), and from every replica answering a retransmission. */
  readonly result?: Uint8Array
  /** The view the sender last took part in, in the callee group (see ReplicaStatus.activeView). */
  readonly view: number
  readonly signature: Uint8Array
}

export type InterGroupMessage = RequestShare | ReplyShare

/** What a caller replica signs for call k: bound to the deployment, both groups and the operation. */
export function requestShareStatement(deployment: Uint8Array, caller: string, callee: string, k: number, opDigest: Uint8Array): Uint8Array {
  return digestOf({ t: 'request-share', deployment, caller, callee, k, op: opDigest })
}

/** What a callee replica signs for its answer to call k: bound to the deployment, both groups and the result. */
export function replyShareStatement(deployment: Uint8Array, callee: string, caller: string, k: number, resultDigest: Uint8Array): Uint8Array {
  return digestOf({ t: 'reply-share', deployment, callee, caller, k, result: resultDigest })
}

export function encodeInterGroup(m: InterGroupMessage): Uint8Array {
  const body = encode(m as unknown as ValueMap)
  const out = new Uint8Array(body.length + 1)
  out[0] = INTER_GROUP_MARKER
  out.set(body, 1)
  return out
}

export function isInterGroupFrame(bytes: Uint8Array): boolean {
  return bytes.length > 0 && bytes[0] === INTER_GROUP_MARKER
}

/** Decodes an inter-group frame (marker included). Throws DecodeError for anything malformed. */
export function decodeInterGroup(bytes: Uint8Array, maxOpBytes: number): InterGroupMessage {
  if (!isInterGroupFrame(bytes)) throw new DecodeError('wrong-type', 'not an inter-group frame')
  const m = asMap(decode(bytes.subarray(1), maxOpBytes + 4096), 'message')
  const t = asString(m.t, 't', 32)
  if (t === 'request-share') {
    return {
      t,
      caller: asString(m.caller, 'caller', 32),
      callee: asString(m.callee, 'callee', 32),
      k: asUint(m.k, 'k'),
      op: asBytes(m.op, 'op', undefined, maxOpBytes),
      view: asUint(m.view, 'view'),
      retransmit: asBool(m.retransmit, 'retransmit'),
      signature: asBytes(m.signature, 'signature', SIGNATURE_BYTES),
    }
  }
  if (t === 'reply-share') {
    const result = m.result === undefined ? undefined : asBytes(m.result, 'result', undefined, maxOpBytes)
    return {
      t,
      callee: asString(m.callee, 'callee', 32),
      caller: asString(m.caller, 'caller', 32),
      k: asUint(m.k, 'k'),
      resultDigest: asBytes(m.resultDigest, 'resultDigest', DIGEST_BYTES),
      ...(result !== undefined ? { result } : {}),
      view: asUint(m.view, 'view'),
      signature: asBytes(m.signature, 'signature', SIGNATURE_BYTES),
    }
  }
  throw new DecodeError('wrong-type', `unknown inter-group message ${t}`)
}
