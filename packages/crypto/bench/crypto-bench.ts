/**
 * Micro-benchmark of the crypto package (not a test): Ed25519 sign and verify, SHA-256, HMAC,
 * canonical encode/decode of a typical protocol message, and certificate verification.
 *
 *   pnpm --filter @bftrc/crypto bench          (or `pnpm bench:crypto` at the root)
 *   BFTRC_BENCH_ROUNDS=5 BFTRC_BENCH_ROUND_MS=100 ...   to trade precision for time
 *
 * Each case is warmed up, then timed in several rounds of about ROUND_MS each; the figure is the
 * median round (single-threaded, one core). The whole run stays under ~20 s.
 */
import { arch, cpus } from 'node:os'
import { performance } from 'node:perf_hooks'
import {
  type Value,
  certificateFromValue,
  certificateToValue,
  decode,
  digestOf,
  encode,
  generateCluster,
  hmacSha256,
  keyPairFromSeed,
  sha256,
  signBytes,
  ShareCollector,
  verifyBytes,
  verifyCertificate,
} from '../src/index.js'

const ROUNDS = Number(process.env.BFTRC_BENCH_ROUNDS ?? 7)
const ROUND_MS = Number(process.env.BFTRC_BENCH_ROUND_MS ?? 150)
const BUDGET_MS = 20_000

// Results feed a checksum printed at the end, so no call can be optimised away.
let sink = 0
const use = (bytes: Uint8Array): void => {
  sink = (sink + (bytes[0] ?? 0)) | 0
}

interface Result {
  readonly name: string
  readonly nsPerOp: number
  readonly spread: number
}

const started = performance.now()

function bench(name: string, op: () => void): Result {
  // Calibrate: grow the batch until one batch takes ~ROUND_MS / 10.
  let batch = 1
  for (;;) {
    const t0 = performance.now()
    for (let i = 0; i < batch; i++) op()
    const ms = performance.now() - t0
    if (ms >= ROUND_MS / 10 || batch >= 1 << 24) {
      batch = Math.max(1, Math.round((batch * ROUND_MS) / Math.max(ms, 0.001)))
      break
    }
    batch *= 4
  }
  for (let i = 0; i < batch; i++) op() // warm-up round
  const perOp: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now()
    for (let i = 0; i < batch; i++) op()
    perOp.push(((performance.now() - t0) * 1e6) / batch)
    if (performance.now() - started > BUDGET_MS) break
  }
  perOp.sort((a, b) => a - b)
  const median = perOp[perOp.length >> 1] as number
  const spread = ((perOp[perOp.length - 1] as number) - (perOp[0] as number)) / median
  return { name, nsPerOp: median, spread }
}

// ---- Inputs ----
const keyPair = keyPairFromSeed(new Uint8Array(32).fill(1))
const digest = sha256(new TextEncoder().encode('statement'))
const signature = signBytes(keyPair, digest)
const data100 = new Uint8Array(100).map((_, i) => i)
const data4k = new Uint8Array(4096).map((_, i) => i & 0xff)
const macKey = new Uint8Array(32).fill(7)

// A pre-prepare-like message: a 32-byte batch digest and 10 requests with 100-byte operations.
const prePrepare: Value = {
  type: 'pre-prepare',
  view: 3,
  seq: 123_456,
  digest,
  requests: Array.from({ length: 10 }, (_, i) => ({
    type: 'request',
    client: `client-${i}`,
    timestamp: 1_700_000_000_000 + i,
    op: new Uint8Array(100).fill(i),
  })),
}
const prePrepareBytes = encode(prePrepare)

// A certificate of 3 shares (2f+1 for f=1), verified as a replica would: decoded from the wire.
const { membership, keys } = generateCluster({ groups: [{ name: 'kv', f: 1 }], seed: new Uint8Array(32).fill(2) })
const kv = membership.group('kv')!
const collector = new ShareCollector(kv, digest, kv.quorum)
for (let i = 0; i < kv.quorum; i++) collector.add({ signer: i, signature: signBytes(keys.get(`kv/${i}`)!, digest) })
const certBytes = encode(certificateToValue(collector.certificate()!))
const certificate = certificateFromValue(decode(certBytes))
const expectation = { group: 'kv', digest, threshold: kv.quorum }

if (!verifyBytes(keyPair.publicKey, digest, signature)) throw new Error('bench setup: signature does not verify')

// ---- Cases ----
const cases: Array<[string, () => void]> = [
  ['Ed25519 sign (32 B digest)', () => use(signBytes(keyPair, digest))],
  ['Ed25519 verify (32 B digest)', () => void (sink += verifyBytes(keyPair.publicKey, digest, signature) ? 1 : 0)],
  ['SHA-256 100 B', () => use(sha256(data100))],
  ['SHA-256 4 KiB', () => use(sha256(data4k))],
  ['HMAC-SHA256 100 B', () => use(hmacSha256(macKey, data100))],
  [`encode pre-prepare (${prePrepareBytes.length} B)`, () => use(encode(prePrepare))],
  [`decode pre-prepare (${prePrepareBytes.length} B)`, () => void (sink += (decode(prePrepareBytes) as { seq: number }).seq & 1)],
  [`digestOf pre-prepare (encode + SHA-256)`, () => use(digestOf(prePrepare))],
  [`verifyCertificate, 3 shares (${certBytes.length} B)`, () => verifyCertificate(membership, certificate, expectation)],
  [`decode + verifyCertificate, 3 shares`, () => verifyCertificate(membership, certificateFromValue(decode(certBytes)), expectation)],
]

console.log(`@bftrc/crypto micro-benchmark: Node ${process.version}, ${arch()}, ${cpus()[0]?.model ?? 'unknown CPU'}`)
console.log(`median of ${ROUNDS} rounds of ~${ROUND_MS} ms each, one core\n`)
const nameWidth = Math.max(...cases.map(([n]) => n.length))
console.log(`${'operation'.padEnd(nameWidth)}  ${'ops/s'.padStart(11)}  ${'µs/op'.padStart(9)}  spread`)
for (const [name, op] of cases) {
  if (performance.now() - started > BUDGET_MS) {
    console.log(`${name.padEnd(nameWidth)}  skipped: over the ${BUDGET_MS / 1000} s budget`)
    continue
  }
  const r = bench(name, op)
  const opsPerSec = 1e9 / r.nsPerOp
  console.log(
    `${r.name.padEnd(nameWidth)}  ${Math.round(opsPerSec).toLocaleString('en-US').padStart(11)}  ${(r.nsPerOp / 1000).toFixed(2).padStart(9)}  ±${Math.round(r.spread * 50)}%`,
  )
}
console.log(`\n${((performance.now() - started) / 1000).toFixed(1)} s (checksum ${sink})`)
