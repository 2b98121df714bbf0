/**
 * Byzantine behaviours on the inter-group path: a replica that signs reply shares for a wrong
 * result, one that sends request shares with forged signatures or for calls nobody made, one
 * that floods the other group with shares, and one that withholds its reply shares.
 */
import { encodeInterGroup, isInterGroupFrame, replyShareStatement, requestShareStatement, type ReplyShare, type RequestShare } from '@bftrc/client-agreement'
import { sha256, signBytes } from '@bftrc/crypto'
import type { Behaviour, Frame } from '../adversary.js'
import { GroupSimulation } from './group-simulation.js'

/** Signs (validly) reply shares for a result of its own invention. Colluding copies agree on it. */
export const wrongReply: Behaviour = {
  name: 'wrong-reply',
  outbound(ctx) {
    if (!isInterGroupFrame(ctx.bytes)) return [{ to: ctx.to, bytes: ctx.bytes }]
    const m = GroupSimulation.decodeShare(ctx.bytes)
    if (m.t !== 'reply-share') return [{ to: ctx.to, bytes: ctx.bytes }]
    const result = new TextEncoder().encode(`wrong ${m.caller} ${m.k}`)
    const resultDigest = sha256(result)
    const lie: ReplyShare = { ...m, result, resultDigest, signature: signBytes(ctx.key, replyShareStatement(ctx.scope.deployment, m.callee, m.caller, m.k, resultDigest)) }
    return [{ to: ctx.to, bytes: encodeInterGroup(lie) }]
  },
}

/**
 * Forges: request shares with corrupted signatures, validly signed shares for calls the group
 * never issued (with huge and far-future call numbers), and reply shares for other callers.
 */
export const forgeShares: Behaviour = {
  name: 'forge-shares',
  outbound(ctx) {
    const frames: Frame[] = [{ to: ctx.to, bytes: ctx.bytes }]
    if (!isInterGroupFrame(ctx.bytes)) return frames
    const m = GroupSimulation.decodeShare(ctx.bytes)
    if (m.t === 'request-share') {
      const bad = new Uint8Array(m.signature)
      bad[3] = (bad[3] as number) ^ 0x55
      frames.push({ to: ctx.to, bytes: encodeInterGroup({ ...m, signature: bad }), type: 'forged' })
      const k = m.k + ctx.prng.int(1, 1_000_000)
      const op = new TextEncoder().encode('never issued')
      const fake: RequestShare = { ...m, k, op, signature: signBytes(ctx.key, requestShareStatement(ctx.scope.deployment, m.caller, m.callee, k, sha256(op))) }
      frames.push({ to: ctx.to, bytes: encodeInterGroup(fake), type: 'forged' })
    }
    return frames
  },
}

/** Sends every inter-group frame twenty times, and junk shares with random call numbers. */
export const floodShares: Behaviour = {
  name: 'flood-shares',
  outbound(ctx) {
    if (!isInterGroupFrame(ctx.bytes)) return [{ to: ctx.to, bytes: ctx.bytes }]
    const frames: Frame[] = Array.from({ length: 20 }, () => ({ to: ctx.to, bytes: ctx.bytes }))
    const m = GroupSimulation.decodeShare(ctx.bytes)
    if (m.t === 'request-share') {
      for (let i = 0; i < 20; i++) {
        const k = ctx.prng.int(1, 10_000)
        const op = new Uint8Array(ctx.prng.int(0, 64))
        frames.push({ to: ctx.to, bytes: encodeInterGroup({ ...m, k, op, signature: signBytes(ctx.key, requestShareStatement(ctx.scope.deployment, m.caller, m.callee, k, sha256(op))) }), type: 'flood' })
      }
    }
    return frames
  },
}

/**
 * Votes in its own group but sends no reply share: the calls it is the designated full-result
 * replica for (k mod n) reach the caller with digests only and complete only through the
 * caller's retransmission, answered from the other callee replicas' reply caches, while the
 * caller's other calls go on completing.
 */
export const withholdReplies: Behaviour = {
  name: 'withhold-replies',
  outbound(ctx) {
    if (!isInterGroupFrame(ctx.bytes)) return [{ to: ctx.to, bytes: ctx.bytes }]
    const m = GroupSimulation.decodeShare(ctx.bytes)
    if (m.t === 'reply-share') return []
    return [{ to: ctx.to, bytes: ctx.bytes }]
  },
}
