/**
 * Bad input: malformed arguments, fault specs, data folders, configs and requests get a clear
 * error and a non-zero exit, and nothing is started or half-written.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { UsageError, checkFaults, parseArgs, parseFault } from '../src/args.js'
import { prepareDataDir } from '../src/cluster.js'
import type { Io } from '../src/session.js'
import { main } from '../src/main.js'

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))
const root = mkdtempSync(join(tmpdir(), 'kv-demo-cli-test-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const io: Io = { stdout: (t) => void (out += t), stderr: (t) => void (err += t), isTTY: false }
  const code = await main(args, io, env)
  return { code, out, err }
}

describe('argument parsing', () => {
  it('defaults: the demo with 4 + 4 replicas and 30 transfers', () => {
    expect(parseArgs([])).toMatchObject({ command: 'demo', servers: 4, clients: 4, ops: 30, faults: [], json: false, dashboard: true, lanes: 4 })
    expect(parseArgs(['up'])).toMatchObject({ command: 'up', ops: 0 })
    expect(parseArgs(['--servers', '7', '--clients=10', '--ops', '5', '--json'])).toMatchObject({ servers: 7, clients: 10, ops: 5, json: true, explicitSizes: true })
  })

  it('fault specs', () => {
    const sizes = { kv: 4, bank: 4 }
    expect(parseFault('crash:kv/3@2', sizes)).toEqual({ kind: 'crash', replica: 'kv/3', at: 2, text: 'crash:kv/3@2' })
    expect(parseFault('restart:bank/0@2.5', sizes)).toMatchObject({ kind: 'restart', replica: 'bank/0', at: 2.5 })
    expect(parseFault('byzantine:kv/1=wrong-result', sizes)).toMatchObject({ kind: 'byzantine', replica: 'kv/1', behaviour: 'wrong-result' })
    const bad: Array<[string, RegExp]> = [
      ['crash:kv/4@1', /kv has replicas kv\/0..kv\/3/],
      ['crash:kv/1', /expected crash:<replica>@<seconds>/],
      ['crash:kv/1@soon', /not a number of seconds/],
      ['crash:kv/1@-1', /not a number of seconds/],
      ['crash:db/1@1', /not a replica/],
      ['crash:kv/01@1', /not a replica/],
      ['byzantine:kv/1=evil', /unknown behaviour "evil"/],
      ['byzantine:kv/1', /expected byzantine:<replica>=<behaviour>/],
      ['explode:kv/1@1', /unknown fault "explode"/],
      ['', /unknown fault/],
    ]
    for (const [spec, msg] of bad) expect(() => parseFault(spec, sizes), spec).toThrow(msg)
  })

  it('fault sets: order of crash and restart, at most f Byzantine per group, warnings beyond f', () => {
    const sizes = { kv: 4, bank: 4 }
    const f = (...specs: string[]) => specs.map((s) => parseFault(s, sizes))
    expect(() => checkFaults(f('restart:kv/1@2'), sizes)).toThrow(/not down then/)
    expect(() => checkFaults(f('crash:kv/1@2', 'crash:kv/1@3'), sizes)).toThrow(/already down/)
    expect(() => checkFaults(f('crash:kv/1@2', 'restart:kv/1@2'), sizes)).toThrow(/same time/)
    expect(() => checkFaults(f('byzantine:kv/1=silent', 'byzantine:kv/2=forge'), sizes)).toThrow(/tolerates f = 1/)
    expect(() => checkFaults(f('byzantine:kv/1=silent', 'byzantine:kv/1=forge'), sizes)).toThrow(/already Byzantine/)
    expect(checkFaults(f('crash:kv/1@1', 'restart:kv/1@2', 'crash:kv/1@3', 'restart:kv/1@4'), sizes)).toEqual([])
    expect(checkFaults(f('byzantine:kv/1=silent', 'byzantine:bank/1=silent', 'crash:kv/3@2', 'restart:kv/3@4'), sizes)).toEqual([expect.stringMatching(/kv has 2 faulty replicas at 2s/)])
    expect(checkFaults(f('byzantine:kv/1=silent', 'byzantine:kv/2=forge'), { kv: 7, bank: 4 })).toEqual([])
  })

  it('chaos: defaults, options, and its own usage errors', () => {
    expect(parseArgs(['chaos'])).toEqual({ command: 'chaos', servers: 4, clients: 4, explicitSizes: false, dataDir: undefined, json: false, keep: false, lanes: 4, durationSeconds: 180, seed: undefined, byzantine: new Map() })
    expect(parseArgs(['chaos', '--fault', 'byzantine:kv/1=fuzz', '--fault', 'byzantine:bank/0=silent'])).toMatchObject({ byzantine: new Map([['kv/1', 'fuzz'], ['bank/0', 'silent']]) })
    expect(parseArgs(['chaos', '--duration', '45', '--seed', '4294967295', '--json', '--keep', '--servers', '7', '--lanes', '2', '--data-dir', '/tmp/x'])).toMatchObject({ durationSeconds: 45, seed: 4294967295, json: true, keep: true, servers: 7, explicitSizes: true, lanes: 2, dataDir: '/tmp/x' })
    const bad: Array<[string[], RegExp]> = [
      [['chaos', '--duration', '19'], /--duration: expected 20..86400, got 19/],
      [['chaos', '--fault', 'crash:kv/1@3'], /chaos takes only byzantine/],
      [['chaos', '--fault', 'byzantine:kv/1=fuzz', '--fault', 'byzantine:kv/1=silent'], /already Byzantine/],
      [['chaos', '--duration', '1e3'], /expected a whole number/],
      [['chaos', '--duration'], /--duration needs a value/],
      [['chaos', '--seed', '4294967296'], /--seed: expected 0..4294967295/],
      [['chaos', '--seed', '-1'], /unknown option -1|expected a whole number/],
      [['chaos', '--seed', '0x10'], /expected a whole number/],
      [['chaos', '--seed', '1', '--seed', '2'], /given more than once/],
      [['chaos', '--ops', '5'], /chaos has no option --ops/],
      [['chaos', '--servers', '5'], /3f\+1/],
      [['chaos', 'now'], /unexpected argument "now"/],
      [['demo', '--duration', '30'], /demo has no option --duration/],
      [['up', '--seed', '3'], /up has no option --seed/],
    ]
    for (const [argv, msg] of bad) {
      expect(() => parseArgs(argv), argv.join(' ')).toThrow(UsageError)
      expect(() => parseArgs(argv), argv.join(' ')).toThrow(msg)
    }
  })

  it('refuses malformed command lines with a clear message', () => {
    const bad: Array<[string[], RegExp]> = [
      [['frobnicate'], /unknown command "frobnicate"/],
      [['--bogus'], /unknown option --bogus/],
      [['--servers', '5'], /3f\+1 replicas with f ≥ 1/],
      [['--servers', '1'], /3f\+1/],
      [['--clients', 'four'], /expected a whole number/],
      [['--ops', '-1'], /expected a whole number/],
      [['--ops', '99999999'], /expected 0..1000000/],
      [['--ops'], /--ops needs a value/],
      [['--ops', '1', '--ops', '2'], /given more than once/],
      [['--json=yes'], /takes no value/],
      [['--timeout', '0'], /expected 1..86400/],
      [['--dashboard-port', '70000'], /expected 0..65535/],
      [['--dashboard-port', '1', '--no-dashboard'], /contradict/],
      [['--lanes', '9'], /expected 1..8/],
      [['demo', 'extra'], /unexpected argument "extra"/],
      [['get'], /get needs a KEY/],
      [['put', 'k'], /put needs KEY and VALUE/],
      [['put', 'k', 'v', 'w'], /unexpected argument "w"/],
      [['cas', 'k', '--value', 'x'], /exactly one of --expect OLD and --expect-absent/],
      [['cas', 'k', '--expect-absent'], /exactly one of --value NEW and --delete/],
      [['cas', 'k', '--expect', 'a', '--expect-absent', '--value', 'b'], /exactly one of --expect/],
      [['scan', '--limit', '0'], /expected 1..1000/],
      [['status', '--ops', '3'], /status has no option --ops/],
      [['get', 'k', '--fault', 'crash:kv/1@1'], /get has no option --fault/],
      [['up', '--keep'], /up has no option --keep/],
      [['--data-dir', ''], /empty path/],
    ]
    for (const [argv, msg] of bad) {
      expect(() => parseArgs(argv), argv.join(' ')).toThrow(UsageError)
      expect(() => parseArgs(argv), argv.join(' ')).toThrow(msg)
    }
  })
})

describe('kv-demo exits non-zero with a clear error and writes nothing', () => {
  it('usage errors exit 2 and create no data folder', async () => {
    const dir = join(root, 'never-created')
    for (const argv of [['--servers', '5', '--data-dir', dir], ['--fault', 'crash:kv/9@1', '--data-dir', dir], ['--fault', 'byzantine:kv/1=silent', '--fault', 'byzantine:kv/2=silent', '--data-dir', dir], ['chaos', '--duration', '3', '--data-dir', dir]]) {
      const r = await run(argv)
      expect(r.code, argv.join(' ')).toBe(2)
      expect(r.err).toMatch(/^kv-demo: .+\n\(kv-demo help lists commands and options\)\n$/)
      expect(r.out).toBe('')
    }
    expect(existsSync(dir)).toBe(false)
  })

  it('refuses a non-empty folder that is not a kv-demo folder, and leaves it as it was', async () => {
    const dir = join(root, 'somebody-elses')
    mkdirSync(dir)
    writeFileSync(join(dir, 'precious.txt'), 'keep me')
    const r = await run(['--data-dir', dir, '--ops', '1', '--no-dashboard'])
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/not empty and holds no kv-demo config.json/)
    expect(readdirSync(dir)).toEqual(['precious.txt'])
  })

  it('refuses to reuse a folder with other group sizes, a damaged config or a missing key', async () => {
    const dir = join(root, 'reuse')
    await prepareDataDir(dir, { servers: 4, clients: 4, explicit: true })
    const config = readFileSync(join(dir, 'config.json'), 'utf8')
    let r = await run(['--data-dir', dir, '--servers', '7', '--no-dashboard'])
    expect(r.code).toBe(2)
    expect(r.err).toMatch(/was created with --servers 4 --clients 4/)
    writeFileSync(join(dir, 'config.json'), config.replace('"f": 1', '"f": 2'))
    r = await run(['--data-dir', dir, '--no-dashboard'])
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/config.json: groups\.kv.*(n|members|f)/)
    writeFileSync(join(dir, 'config.json'), '{ "version": 1, ')
    r = await run(['status', '--data-dir', dir])
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/config.json/)
    writeFileSync(join(dir, 'config.json'), config)
    rmSync(join(dir, 'keys', 'bank-2.key.json'))
    r = await run(['--data-dir', dir, '--no-dashboard'])
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/bank-2.key.json is missing/)
    // Nothing was started: no replica folder was created.
    expect(readdirSync(join(dir, 'replicas'))).toEqual([])
  })

  it('client commands: a bad request is refused before connecting; no cluster gives a clear error', async () => {
    const dir = join(root, 'idle')
    await prepareDataDir(dir, { servers: 4, clients: 4, explicit: true })
    let r = await run(['get', 'x'.repeat(600), '--data-dir', dir])
    expect(r.code).toBe(2)
    expect(r.err).toMatch(/key exceeds 512 bytes/)
    r = await run(['put', 'k', 'v'.repeat(20_000), '--data-dir', dir])
    expect(r.code).toBe(2)
    expect(r.err).toMatch(/value exceeds/)
    r = await run(['status', '--data-dir', dir])
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/no replica of .* answers: is the cluster running\?/)
    r = await run(['get', 'k', '--data-dir', join(root, 'nowhere')])
    expect(r.code).toBe(2)
    expect(r.err).toMatch(/holds no kv-demo config.json/)
  })

  it('the executable: help exits 0, a usage error exits 2 (stderr names the problem)', () => {
    const help = spawnSync(process.execPath, [CLI, 'help'], { encoding: 'utf8', timeout: 20_000 })
    expect(help.status).toBe(0)
    expect(help.stdout).toMatch(/kv-demo \[demo\] \[options\]/)
    const bad = spawnSync(process.execPath, [CLI, '--fault', 'byzantine:kv/0=lazy'], { encoding: 'utf8', timeout: 20_000 })
    expect(bad.status).toBe(2)
    expect(bad.stderr).toMatch(/unknown behaviour "lazy"/)
    expect(bad.stdout).toBe('')
    const replica = spawnSync(process.execPath, [fileURLToPath(new URL('../dist/replica.js', import.meta.url)), '--config'], { encoding: 'utf8', timeout: 20_000 })
    expect(replica.status).toBe(2)
    expect(replica.stderr).toMatch(/--config needs a value/)
  })
})
