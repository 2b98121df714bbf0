import { type KeyPair, asMap, decode, encode, generateCluster, sha256 } from '@bftrc/crypto'
import { describe, expect, it } from 'vitest'
import {
  type AppVersion,
  GroupExecutor,
  type GroupApp,
  type UpgradeError,
  type UpgradeRequest,
  compareVersions,
  encodeEvent,
  eventValidator,
  signUpgrade,
  verifyUpgradeAuthority,
} from '../src/index.js'

const cluster = generateCluster({ groups: [{ name: 'bank', f: 1 }], authorities: { count: 3, threshold: 2 }, seed: new Uint8Array(32).fill(5) })
const LIMITS = { callWindow: 4, maxQueuedCalls: 8, maxTimers: 16, maxWorkflows: 4, maxOpBytes: 1024 }
const digest = (s: string) => sha256(new TextEncoder().encode(s))

class Counter implements GroupApp {
  n = 0
  constructor(readonly label: string) {}
  onRequest() {
    this.n++
    return encode({ n: this.n, label: this.label })
  }
  snapshot() {
    return encode({ n: this.n })
  }
  restore(s: Uint8Array) {
    this.n = Number(asMap(decode(s)).n)
  }
}

const v2: AppVersion = { version: '2', codeDigest: digest('v2'), create: () => new Counter('v2'), migrate: (_from, old) => encode({ n: Number(asMap(decode(old)).n) * 10 }) }
const broken: AppVersion = { version: '3', codeDigest: digest('v3'), create: () => new Counter('v3'), migrate: () => { throw new Error('cannot migrate') } }

function request(over: Partial<Omit<UpgradeRequest, 'signatures'>> = {}, signers = [0, 1]): UpgradeRequest {
  const body = { group: 'bank', version: '2', codeDigest: digest('v2'), allowDowngrade: false, ...over }
  return { ...body, signatures: signers.map((i) => signUpgrade(cluster.membership, body, i, cluster.keys.get(`authority/${i}`) as KeyPair)) }
}

function upgrade(x: GroupExecutor, r: UpgradeRequest, seq = 2) {
  x.beginBatch({ seq, stamp: seq })
  x.executeProposal(encodeEvent({ e: 'upgrade', request: r }), { seq, stamp: seq })
  const e = x.effects
  x.effects = []
  return e
}

describe('upgrade requests', () => {
  it('need a threshold of distinct, valid authority signatures for this group', () => {
    expect(() => verifyUpgradeAuthority(cluster.membership, 'bank', request())).not.toThrow()
    const code = (r: UpgradeRequest, group = 'bank') => {
      try {
        verifyUpgradeAuthority(cluster.membership, group, r)
      } catch (err) {
        return (err as UpgradeError).code
      }
      return 'accepted'
    }
    expect(code(request({}, [0]))).toBe('insufficient-signatures')
    expect(code(request({}, [1, 1]))).toBe('invalid-signature')
    expect(code({ ...request(), version: '9' })).toBe('invalid-signature')
    expect(code(request(), 'other')).toBe('wrong-group')
    const validator = eventValidator(cluster.membership, 'bank', 1024, 200)
    expect(validator.validate(encodeEvent({ e: 'upgrade', request: request() }))).toBe(`upgrade:2:${Buffer.from(digest('v2')).toString('hex')}`)
    expect(validator.validate(encodeEvent({ e: 'upgrade', request: request({}, [2]) }))).toBeUndefined()
  })

  it('compare versions numerically part by part', () => {
    expect(compareVersions('1.10', '1.9')).toBe(1)
    expect(compareVersions('2', '2.0')).toBe(0)
    expect(compareVersions('1.2.3', '1.3')).toBe(-1)
  })
})

describe('GroupExecutor upgrades', () => {
  it('migrate the state deterministically and switch the application', () => {
    const x = new GroupExecutor('bank', new Counter('v1'), LIMITS, { version: '1', versions: [v2] })
    x.beginBatch({ seq: 1, stamp: 1 })
    x.execute(new Uint8Array(), { seq: 1, stamp: 1, client: 'c', timestamp: 1 })
    const effects = upgrade(x, request())
    expect(effects).toEqual([{ kind: 'upgraded', from: '1', to: '2', seq: 2 }])
    expect(x.currentVersion).toBe('2')
    expect((x.currentApp as Counter).n).toBe(10)
    expect((x.currentApp as Counter).label).toBe('v2')
  })

  it('change nothing for a replayed request, a downgrade or a failing migration', () => {
    const x = new GroupExecutor('bank', new Counter('v1'), LIMITS, { version: '1', versions: [v2, broken] })
    upgrade(x, request())
    const before = x.snapshot()
    expect(upgrade(x, request(), 3)[0]).toMatchObject({ kind: 'rejected', code: 'upgrade-refused', detail: expect.stringContaining('replayed') })
    expect(upgrade(x, request({ version: '1', codeDigest: digest('v1') }), 4)[0]).toMatchObject({ kind: 'rejected', code: 'upgrade-refused', detail: expect.stringContaining('downgrade') })
    expect(upgrade(x, request({ version: '3', codeDigest: digest('v3') }), 5)[0]).toMatchObject({ kind: 'rejected', code: 'upgrade-migration-failed', detail: expect.stringContaining('cannot migrate') })
    expect(x.snapshot()).toEqual(before)
    expect(x.halted()).toBeUndefined()
  })

  it('halt without the code, and resume from a restored state once the code is installed', () => {
    const lacking = new GroupExecutor('bank', new Counter('v1'), LIMITS)
    const effects = upgrade(lacking, request())
    expect(effects[0]).toMatchObject({ kind: 'halted', reason: expect.stringContaining('no code for version 2') })
    expect(lacking.halted()).toContain('cannot upgrade to 2')
    // A peer's checkpoint (at version 2) arrives by state transfer while the code is still missing.
    const peer = new GroupExecutor('bank', new Counter('v1'), LIMITS, { version: '1', versions: [v2] })
    upgrade(peer, request())
    const fresh = new GroupExecutor('bank', new Counter('v1'), LIMITS)
    fresh.restore(peer.snapshot())
    expect(fresh.halted()).toContain('version 2')
    expect(fresh.snapshot()).toEqual(peer.snapshot())
    fresh.install(v2)
    expect(fresh.halted()).toBeUndefined()
    expect(fresh.currentVersion).toBe('2')
    expect(fresh.snapshot()).toEqual(peer.snapshot())
  })
})
