/**
 * Connections that have not finished the handshake (no key proven yet) are bounded per remote
 * address and dropped after `inboundUpgradeTimeoutMs`, and members have room of their own, so a
 * host that can reach the port but holds no key cannot lock members and clients out.
 *
 * The replica listens on 127.0.0.1 (an address of the membership, so its peers dialling from
 * 127.0.0.1 count as members); the hostile host's sockets are bound to other loopback addresses
 * (Linux routes all of 127/8 to lo), so per-address bounds apply to it as they would to a remote
 * host. Nothing leaves the machine.
 */
import { describe, expect, it } from 'vitest'
import { type Libp2pTransport, encodeFrame } from '../src/index.js'
import { type TestCluster, hostPort, inbox, rawNode, rawStream, slowHandshakeFlood, stopAfterEach, testCluster, u32, waitFor } from './helpers.js'

const SEED = new Uint8Array(32).fill(13)
/** Short enough to watch a few drops within the test; the default is DEFAULTS.inboundUpgradeTimeoutMs. */
const TIMEOUT_MS = 1_500

const { track, start } = stopAfterEach()

/** Samples `f` every 10 ms until stopped; returns the largest value seen. */
function sampleMax(f: () => number): { stop(): number } {
  let max = f()
  const timer = setInterval(() => {
    max = Math.max(max, f())
  }, 10)
  return {
    stop: () => {
      clearInterval(timer)
      return Math.max(max, f())
    },
  }
}

/** kv/0 (dialling from 127.0.0.1, a member address) reaches kv/1 and frames go both ways, within `withinMs`. */
async function memberExchanges(c: TestCluster, r1: Libp2pTransport, withinMs: number): Promise<Libp2pTransport> {
  const deadline = Date.now() + withinMs
  const got1 = inbox(r1)
  const r0 = await start(c, 'kv/0')
  const got0 = inbox(r0)
  await r0.whenConnected(['kv/1'], Math.max(1, deadline - Date.now()))
  for (let i = 0; i < 10; i++) {
    r0.send('kv/1', u32(i))
    r1.send('kv/0', u32(i))
  }
  await waitFor(() => got0.length === 10 && got1.length === 10, Math.max(1, deadline - Date.now()), 'frames both ways')
  expect(got1.every((g) => g.from === 'kv/0')).toBe(true)
  return r0
}

describe('connections before the handshake', () => {
  it('admits a member and a listed client during a slow-handshake flood from one keyless address, and drops stalled handshakes after the timeout (was: 10 stalled sockets locked everyone out for 10 s at a time)', async () => {
    const c = await testCluster({ groups: [{ name: 'kv', f: 0, n: 2 }], clients: ['alice'], seed: SEED })
    const kv1 = c.membership.member('kv/1')!
    // A small pool for non-member addresses, so that without a per-address bound one host fills it.
    const r1 = await start(c, 'kv/1', { inboundUpgradeTimeoutMs: TIMEOUT_MS, maxPendingInboundPerAddress: 4, maxPendingInbound: 8 })
    const pending = sampleMax(() => r1.metrics().preHandshake?.pending ?? Number.NaN)
    const flood = track(slowHandshakeFlood({ ...hostPort(kv1.addrs[0]!), from: ['127.0.0.2'], sockets: 24, reopenMs: 100 }))
    // The flood is in place: the replica is holding stalled handshakes for it.
    await waitFor(() => flood.openAges().filter((age) => age >= 300).length >= 4, 5_000, 'the flood to hold sockets')

    // A member gets through at once (well before any stalled handshake times out) ...
    await memberExchanges(c, r1, 3_000)

    // ... and so does a listed client from another address (127.0.0.3, not a member's).
    const gotAlice = inbox(r1)
    const alice = track(await rawNode(c.keys.get('alice')!.seed, '127.0.0.3'))
    const s = await rawStream(alice, kv1.addrs[0]!, kv1.peerId)
    s.send(encodeFrame(Uint8Array.of(42)))
    await waitFor(() => gotAlice.some((g) => g.from === 'alice'), 3_000, 'a frame from alice')

    // Stalled handshakes are dropped after the timeout, and none outlives it by much.
    await waitFor(() => flood.lifetimes.some((ms) => ms >= TIMEOUT_MS * 0.9), TIMEOUT_MS + 3_000, 'a stalled handshake to be dropped')
    expect(Math.max(...flood.lifetimes, ...flood.openAges())).toBeLessThan(TIMEOUT_MS + 2_000)

    const m = r1.metrics().preHandshake
    expect(m.refusedPerAddress).toBeGreaterThan(0)
    expect(m.timedOut).toBeGreaterThan(0)
    // Four for the flood's address, plus at most the member's and alice's own handshakes.
    expect(pending.stop()).toBeLessThanOrEqual(4 + 2)
  }, 20_000)

  it('keeps room for members when a flood from many addresses fills the pool for others', async () => {
    const c = await testCluster({ groups: [{ name: 'kv', f: 0, n: 2 }], seed: SEED })
    const kv1 = c.membership.member('kv/1')!
    const r1 = await start(c, 'kv/1', { inboundUpgradeTimeoutMs: TIMEOUT_MS, maxPendingInboundPerAddress: 4, maxPendingInbound: 8 })
    const from = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']
    const pending = sampleMax(() => r1.metrics().preHandshake?.pending ?? Number.NaN)
    const flood = track(slowHandshakeFlood({ ...hostPort(kv1.addrs[0]!), from, sockets: 32, reopenMs: 100 }))
    // The flood holds as many stalled handshakes as the replica lets it.
    await waitFor(() => flood.openAges().filter((age) => age >= 300).length >= 8, 5_000, 'the flood to hold sockets')

    await memberExchanges(c, r1, 3_000)
    // The pool for others was full while the member came in; the member had room of its own.
    expect(r1.metrics().preHandshake.refusedPoolFull).toBeGreaterThan(0)
    expect(pending.stop()).toBeLessThanOrEqual(8 + 1)
  }, 20_000)
})
