/**
 * Byzantine behaviours. A faulty replica runs the real replica code, and its behaviour rewrites
 * what that code sends (in the manner of CometBFT's replaceable decision functions): it holds the
 * replica's key, so it can sign anything that replica could, but nobody else's.
 */
import {
  type Checkpoint,
  type Message,
  type PrePrepare,
  type StatementScope,
  type ViewChange,
  checkpointStatement,
  digestOfBatch,
  encodeMessage,
  prePrepareStatement,
  prepareStatement,
  viewChangeStatement,
} from '@bftrc/core-agreement'
import { type AdversaryView, GenerativeMember, type GenerativeMemberConfig, type Prng } from '@bftrc/adversary'
import { type KeyPair, type Membership, sha256, signBytes } from '@bftrc/crypto'

export interface Frame {
  readonly to: string
  readonly bytes: Uint8Array
  /** Message type for the network's counters (defaults to the original message's). */
  readonly type?: string
}

export interface AdversaryContext {
  /** The faulty replica's id, its group and its key (it can sign what it could sign honestly). */
  readonly self: string
  readonly group: string
  /** The deployment and group its statements name. */
  readonly scope: StatementScope
  readonly key: KeyPair
  readonly prng: Prng
  /** Every node the faulty replica can address (targets for replays). */
  readonly peers: readonly string[]
  readonly to: string
  readonly bytes: Uint8Array
  /** The frame decoded as a core-agreement message, when it is one. */
  readonly message: Message | undefined
}

/** What a behaviour learns about its replica when the replica starts (and again on restart). */
export interface BehaviourEnv {
  readonly membership: Membership
  readonly self: string
  readonly keyPair: KeyPair
  readonly prng: Prng
  /** The group's protocol constants, for the edges of its window. */
  readonly logWindow: number
  readonly checkpointInterval: number
}

export interface Behaviour {
  readonly name: string
  /** What the faulty replica actually sends in place of one honest frame. */
  outbound(ctx: AdversaryContext): Frame[]
  /** Return false to make the replica ignore an inbound frame. */
  inbound?(from: string, bytes: Uint8Array): boolean
  /** Called when the replica starts. */
  start?(env: BehaviourEnv): void
  /** Frames of its own making, on every tick of the host (`view`: where its replica is; `now`: the host's clock). */
  tick?(view: AdversaryView, now: number): Frame[]
}

/**
 * The generative adversary (see @bftrc/adversary's GenerativeMember): honest traffic as its
 * replica makes it, plus generated messages of every type on every tick; it learns from every
 * frame it receives and sends. One per faulty replica: it keeps what it has seen.
 */
export function generative(config: Partial<GenerativeMemberConfig> = {}): Behaviour {
  let member: GenerativeMember | undefined
  return {
    name: 'fuzz',
    start(env) {
      member = new GenerativeMember({
        membership: env.membership,
        self: env.self,
        keyPair: env.keyPair,
        prng: env.prng,
        config: { logWindow: env.logWindow, checkpointInterval: env.checkpointInterval, ...config },
      })
    },
    outbound(ctx) {
      member?.observe(ctx.self, ctx.bytes)
      return honest(ctx)
    },
    inbound(from, bytes) {
      member?.observe(from, bytes)
      return true
    },
    tick(view) {
      return member?.tick(view) ?? []
    },
  }
}

function keyOf(ctx: AdversaryContext): KeyPair {
  return ctx.key
}


function honest(ctx: AdversaryContext): Frame[] {
  return [{ to: ctx.to, bytes: ctx.bytes }]
}

function isReplica(id: string): boolean {
  return id.includes('/')
}

/**
 * A slow primary (Aardvark's attack): correct in every respect but timing. Its pre-prepares leave
 * `delayMs` after its replica makes them (released on the host's ticks), so it orders everything,
 * only late: the longest delay that stays below the backups' suspicion does the most harm. It is
 * honest until `from` (ms), so that it is still primary when the slowness starts.
 */
export function slowPrimary(delayMs: number, from = 0): Behaviour {
  let now = 0
  const held: Array<{ at: number; frame: Frame }> = []
  return {
    name: `slow-primary-${delayMs}ms`,
    outbound(ctx) {
      if (ctx.message?.t !== 'pre-prepare' || !isReplica(ctx.to) || now < from) return honest(ctx)
      held.push({ at: now + delayMs, frame: { to: ctx.to, bytes: ctx.bytes } })
      return []
    },
    tick(_view, time) {
      now = time
      const due: Frame[] = []
      while (held.length > 0 && (held[0] as { at: number }).at <= now) due.push((held.shift() as { frame: Frame }).frame)
      return due
    },
  }
}

/** Sends nothing at all (a crashed or mute replica that still receives). */
export const silent: Behaviour = { name: 'silent', outbound: () => [] }

/**
 * Equivocating primary: for every pre-prepare, the backups with an odd index get a conflicting,
 * validly signed pre-prepare for the same view and sequence number (same requests, another stamp).
 */
export const equivocate: Behaviour = {
  name: 'equivocate',
  outbound(ctx) {
    const m = ctx.message
    if (m?.t !== 'pre-prepare' || !isReplica(ctx.to)) return honest(ctx)
    const index = Number(ctx.to.split('/')[1])
    if (index % 2 === 0) return honest(ctx)
    const batch = { stamp: m.batch.stamp + 1, requests: [...m.batch.requests].reverse() }
    const other: PrePrepare = {
      ...m,
      batch,
      signature: signBytes(keyOf(ctx), prePrepareStatement(ctx.scope, m.view, m.seq, digestOfBatch(ctx.scope, batch))),
    }
    return [{ to: ctx.to, bytes: encodeMessage(other) }]
  },
}

/** Reports wrong results to clients: the digest and the full result of every reply are garbage. */
export const wrongResult: Behaviour = {
  name: 'wrong-result',
  outbound(ctx) {
    const m = ctx.message
    if (m?.t !== 'reply') return honest(ctx)
    const result = new TextEncoder().encode(`forged result ${m.timestamp}`)
    return [{ to: ctx.to, bytes: encodeMessage({ ...m, result, resultDigest: sha256(result) }) }]
  },
}

/**
 * Forges: prepares, checkpoints and view changes with corrupted signatures, and prepares and
 * checkpoints for digests nobody proposed, validly signed by the faulty replica.
 */
export const forge: Behaviour = {
  name: 'forge',
  outbound(ctx) {
    const m = ctx.message
    const frames = honest(ctx)
    if (m === undefined) return frames
    if (m.t === 'prepare') {
      const bad = new Uint8Array(m.signature)
      bad[0] = (bad[0] as number) ^ 0xff
      const digest = sha256(m.digest)
      frames.push({ to: ctx.to, bytes: encodeMessage({ ...m, signature: bad }) })
      frames.push({ to: ctx.to, bytes: encodeMessage({ ...m, view: m.view, digest, signature: signBytes(keyOf(ctx), prepareStatement(ctx.scope, m.view, m.seq, digest)) }) })
    }
    if (m.t === 'checkpoint') {
      const digest = sha256(m.digest)
      const lie: Checkpoint = { ...m, digest, signature: signBytes(keyOf(ctx), checkpointStatement(ctx.scope, m.seq, digest)) }
      return [{ to: ctx.to, bytes: encodeMessage(lie) }]
    }
    if (m.t === 'view-change') {
      const bad = new Uint8Array(m.signature)
      bad[1] = (bad[1] as number) ^ 0xff
      frames.push({ to: ctx.to, bytes: encodeMessage({ ...m, signature: bad }) })
    }
    if (m.t === 'state-chunk') {
      const data = new Uint8Array(m.data.length).fill(7)
      return [{ to: ctx.to, bytes: encodeMessage({ ...m, data }) }]
    }
    return frames
  },
}

/** Asks for ever higher views: validly signed view changes for inflated view numbers. */
export const inflateView: Behaviour = {
  name: 'inflate-view',
  outbound(ctx) {
    const m = ctx.message
    const frames = honest(ctx)
    if ((m?.t === 'status' || m?.t === 'commit') && isReplica(ctx.to)) {
      const view = 1_000_000 + ctx.prng.int(0, 1000)
      const body = { view, stable: { seq: 0, digest: new Uint8Array(32) }, prepared: [] }
      const vc: ViewChange = { t: 'view-change', ...body, signature: signBytes(keyOf(ctx), viewChangeStatement(ctx.scope, body)) }
      frames.push({ to: ctx.to, bytes: encodeMessage(vc) })
    }
    return frames
  },
}

/** Replays stale frames it sent before, at random, alongside the honest ones. */
export function replay(memory = 64): Behaviour {
  const past: Frame[] = []
  return {
    name: 'replay',
    outbound(ctx) {
      const frames = honest(ctx)
      if (past.length >= memory) past.splice(ctx.prng.int(0, past.length - 1), 1)
      past.push({ to: ctx.to, bytes: ctx.bytes })
      if (ctx.prng.chance(0.3)) {
        const old = ctx.prng.pick(past)
        frames.push({ to: ctx.prng.pick(ctx.peers), bytes: old.bytes, type: 'replay' })
      }
      return frames
    },
  }
}

/** Sends random garbage frames and truncated or bit-flipped copies of its honest frames. */
export const garbage: Behaviour = {
  name: 'garbage',
  outbound(ctx) {
    const frames = honest(ctx)
    const prng = ctx.prng
    const junk = new Uint8Array(prng.int(0, 200)).map(() => prng.int(0, 255))
    frames.push({ to: ctx.to, bytes: junk, type: 'garbage' })
    const cut = ctx.bytes.subarray(0, prng.int(0, ctx.bytes.length))
    frames.push({ to: ctx.to, bytes: cut, type: 'garbage' })
    const flipped = new Uint8Array(ctx.bytes)
    if (flipped.length > 0) {
      const i = prng.int(0, flipped.length - 1)
      flipped[i] = (flipped[i] as number) ^ (1 << prng.int(0, 7))
    }
    frames.push({ to: ctx.to, bytes: flipped, type: 'garbage' })
    return frames
  },
}

/** Floods: every frame sent ten times. */
export const flood: Behaviour = {
  name: 'flood',
  outbound(ctx) {
    return Array.from({ length: 10 }, () => ({ to: ctx.to, bytes: ctx.bytes }))
  },
}

export function behaviourByName(name: string): Behaviour {
  switch (name) {
    case 'silent':
      return silent
    case 'equivocate':
      return equivocate
    case 'wrong-result':
      return wrongResult
    case 'forge':
      return forge
    case 'inflate-view':
      return inflateView
    case 'replay':
      return replay()
    case 'garbage':
      return garbage
    case 'flood':
      return flood
    default:
      throw new Error(`unknown behaviour ${name}`)
  }
}

export const BEHAVIOURS = ['silent', 'equivocate', 'wrong-result', 'forge', 'inflate-view', 'replay', 'garbage', 'flood'] as const
