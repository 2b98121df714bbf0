import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { main } from '../src/cli.js'
import { Membership, parseKeyFile, toHex } from '../src/index.js'

let dir: string
let stdout: string
let stderr: string

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'bftrc-keys-'))
  stdout = ''
  stderr = ''
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk)
    return true
  })
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk)
    return true
  })
})

afterEach(() => {
  vi.restoreAllMocks()
  rmSync(dir, { recursive: true, force: true })
})

/** Runs the CLI; resets the captured output first. */
function run(...argv: string[]): number {
  stdout = ''
  stderr = ''
  return main(argv)
}

const mode = (path: string): number => statSync(path).mode & 0o777

describe('bftrc-keys cluster', () => {
  it('writes a config and one 0600 key file per identity, which check accepts', () => {
    const out = join(dir, 'cluster')
    expect(run('cluster', '--group', 'kv:1', '--group', 'bank:2', '--clients', 'alice,bob', '--authorities', '3:2', '--base-port', '7100', '--out', out)).toBe(0)
    expect(stderr).toBe('')
    expect(stdout).toMatch(/^wrote .*config\.json and 16 key files/)
    const config = Membership.parse(readFileSync(join(out, 'config.json'), 'utf8'))
    expect(config.group('kv')!.n).toBe(4)
    expect(config.group('bank')!.n).toBe(7)
    expect([...config.clients.keys()]).toEqual(['alice', 'bob'])
    expect(config.openClients).toBe(false)
    expect(config.upgradeAuthority!.threshold).toBe(2)
    expect(config.member('kv/0')!.addrs).toEqual(['/ip4/127.0.0.1/tcp/7100'])
    expect(config.member('bank/6')!.addrs).toEqual(['/ip4/127.0.0.1/tcp/7110'])

    const keyDir = join(out, 'keys')
    expect(mode(keyDir)).toBe(0o700)
    const files = readdirSync(keyDir).sort()
    expect(files).toHaveLength(16)
    expect(files).toContain('kv-0.key.json')
    expect(files).toContain('authority-2.key.json')
    expect(files.some((f) => f.includes('.tmp-'))).toBe(false)
    for (const file of files) {
      expect({ file, mode: mode(join(keyDir, file)) }).toEqual({ file, mode: 0o600 })
      const { id, keyPair } = parseKeyFile(readFileSync(join(keyDir, file), 'utf8'))
      const expected = id.startsWith('authority/')
        ? config.upgradeAuthority!.publicKeys[Number(id.slice('authority/'.length))]!
        : (config.member(id) ?? config.clients.get(id))!.publicKey
      expect(toHex(keyPair.publicKey)).toBe(toHex(expected))
    }

    const keyFiles = files.filter((f) => !f.startsWith('authority-')).map((f) => join(keyDir, f))
    expect(run('check', join(out, 'config.json'), ...keyFiles)).toBe(0)
    expect(stderr).toBe('')
    expect(stdout).toContain('group kv: f=1 n=4')
    expect(stdout).toContain('group bank: f=2 n=7')
    expect(stdout).toContain('key kv/3: ok')
    expect(stdout).toContain('key alice: ok')
  })

  it('honours --open-clients, --host, --base-port 0 and the --opt=value form', () => {
    const out = join(dir, 'c')
    expect(run('cluster', '--group=kv:0', '--out', join(dir, 'zero'))).toBe(1)
    expect(run('cluster', '--group=kv:1', '--open-clients', '--host=10.1.2.3', '--base-port', '9000', '--out', out)).toBe(0)
    const config = Membership.parse(readFileSync(join(out, 'config.json'), 'utf8'))
    expect(config.openClients).toBe(true)
    expect(config.member('kv/0')!.addrs).toEqual(['/ip4/10.1.2.3/tcp/9000'])
    expect(run('cluster', '--group', 'kv:1', '--base-port', '0', '--out', join(dir, 'd'))).toBe(0)
    expect(Membership.parse(readFileSync(join(dir, 'd', 'config.json'), 'utf8')).member('kv/0')!.addrs).toEqual([])
  })

  it('refuses to overwrite a config without --force, and overwrites with it', () => {
    const out = join(dir, 'c')
    expect(run('cluster', '--group', 'kv:1', '--out', out)).toBe(0)
    const before = readFileSync(join(out, 'config.json'), 'utf8')
    expect(run('cluster', '--group', 'kv:1', '--out', out)).toBe(2)
    expect(stderr).toMatch(/config\.json exists \(use --force to overwrite\)/)
    expect(readFileSync(join(out, 'config.json'), 'utf8')).toBe(before)
    expect(run('cluster', '--group', 'kv:1', '--out', out, '--force')).toBe(0)
    const after = readFileSync(join(out, 'config.json'), 'utf8')
    expect(after).not.toBe(before) // fresh random keys
    expect(run('check', join(out, 'config.json'), join(out, 'keys', 'kv-0.key.json'))).toBe(0)
  })
})

describe('usage errors exit 2 with a clear message and write nothing', () => {
  const cases: Array<[string[], RegExp]> = [
    [[], /missing command/],
    [['clusters', '--group', 'kv:1'], /unknown command clusters/],
    [['cluster', '--group', 'kv:1'], /--out DIR is required/],
    [['cluster', '--out', 'OUT'], /at least one --group NAME:F is required/],
    [['cluster', '--group', 'kv', '--out', 'OUT'], /--group kv: expected NAME:F/],
    [['cluster', '--group', 'kv:', '--out', 'OUT'], /--group kv:: expected a whole number/],
    [['cluster', '--group', 'kv:x', '--out', 'OUT'], /--group kv:x: expected a whole number, got "x"/],
    [['cluster', '--group', 'kv:-1', '--out', 'OUT'], /expected a whole number, got "-1"/],
    [['cluster', '--group', 'kv:86', '--out', 'OUT'], /--group kv:86: expected 0\.\.85, got 86/],
    [['cluster', '--group', 'kv:1:2', '--out', 'OUT'], /--group kv:1:2: expected NAME:F/],
    [['cluster', '--group', 'KV:1', '--out', 'OUT'], /--group KV:1: expected NAME:F/],
    [['cluster', '--group', ':1', '--out', 'OUT'], /--group :1: expected NAME:F/],
    [['cluster', '--group', 'kv:1', '--group', 'kv:2', '--out', 'OUT'], /--group kv given more than once/],
    [['cluster', '--group', 'kv:1', '--authorities', '3', '--out', 'OUT'], /--authorities 3: expected COUNT:THRESHOLD/],
    [['cluster', '--group', 'kv:1', '--authorities', '3:2:1', '--out', 'OUT'], /--authorities 3:2:1: expected COUNT:THRESHOLD/],
    [['cluster', '--group', 'kv:1', '--authorities', '3:0', '--out', 'OUT'], /--authorities THRESHOLD: expected 1\.\.3, got 0/],
    [['cluster', '--group', 'kv:1', '--authorities', '3:4', '--out', 'OUT'], /--authorities THRESHOLD: expected 1\.\.3, got 4/],
    [['cluster', '--group', 'kv:1', '--authorities', '0:0', '--out', 'OUT'], /--authorities COUNT: expected 1\.\.256, got 0/],
    [['cluster', '--group', 'kv:1', '--authorities', 'x:1', '--out', 'OUT'], /--authorities COUNT: expected a whole number/],
    [['cluster', '--group', 'kv:1', '--base-port', '70000', '--out', 'OUT'], /--base-port: expected 0\.\.65535, got 70000/],
    [['cluster', '--group', 'kv:1', '--base-port', '65534', '--out', 'OUT'], /4 replicas need ports up to 65537/],
    [['cluster', '--group', 'kv:1', '--base-port', 'http', '--out', 'OUT'], /--base-port: expected a whole number/],
    [['cluster', '--group', 'kv:1', '--host', 'localhost', '--out', 'OUT'], /--host localhost: expected an IPv4 address/],
    [['cluster', '--group', 'kv:1', '--host', '256.0.0.1', '--out', 'OUT'], /--host 256\.0\.0\.1: expected an IPv4 address/],
    [['cluster', '--group', 'kv:1', '--clients', 'al ice', '--out', 'OUT'], /--clients: "al ice" is not a client id/],
    [['cluster', '--group', 'kv:1', '--clients', 'alice,alice', '--out', 'OUT'], /--clients: alice given more than once/],
    [['cluster', '--group', 'kv:1', '--clients', 'kv-0', '--out', 'OUT'], /kv\/0 and kv-0 would share the key file kv-0\.key\.json/],
    [['cluster', '--group', 'authority:0', '--authorities', '1:1', '--out', 'OUT'], /--group authority: that name is taken by the upgrade authorities/],
    [['cluster', '--group', 'kv:1', '--clients', 'authority-0', '--authorities', '1:1', '--out', 'OUT'], /authority-0 and authority\/0 would share/],
    [['cluster', '--group', 'kv:1', '--client', 'alice', '--out', 'OUT'], /cluster has no option --client/],
    [['cluster', '--group', 'kv:1', '--out', 'OUT', 'extra'], /cluster: unexpected argument extra/],
    [['cluster', '--group', 'kv:1', '--out', 'OUT', '--force=false'], /--force takes no value/],
    [['cluster', '--group', 'kv:1', '--out', 'OUT', '--force', '--force'], /--force given more than once/],
    [['cluster', '--group', 'kv:1', '--out', 'OUT', '--out', 'OTHER'], /--out given more than once/],
    [['cluster', '--group', 'kv:1', '--out'], /--out needs a value/],
    [['cluster', '--out', '--group', 'kv:1'], /--out needs a value/],
    [['keygen', '--out', 'OUT'], /--id ID is required/],
    [['keygen', '--id', '', '--out', 'OUT'], /--id ID is required/],
    [['keygen', '--id', 'alice'], /--out FILE is required/],
    [['keygen', '--id', 'alice', '--out', 'OUT', '--group', 'kv:1'], /keygen has no option --group/],
    [['check'], /check needs CONFIG\.json/],
    [['check', 'config.json', '--force'], /check has no option --force/],
  ]
  for (const [argv, message] of cases) {
    it(argv.join(' ') || '(no arguments)', () => {
      const out = join(dir, 'out')
      const args = argv.map((a) => (a === 'OUT' ? out : a === 'OTHER' ? join(dir, 'other') : a))
      expect(run(...args)).toBe(2)
      expect(stdout).toBe('')
      expect(stderr).toMatch(/^bftrc-keys: /)
      expect(stderr).toMatch(message)
      expect(stderr).toContain('usage:')
      expect(existsSync(out)).toBe(false)
    })
  }
})

describe('bftrc-keys check', () => {
  function cluster(): string {
    const out = join(dir, 'c')
    expect(run('cluster', '--group', 'kv:1', '--clients', 'alice', '--out', out)).toBe(0)
    return out
  }

  const failure = (...argv: string[]): string => {
    expect(run(...argv)).toBe(1)
    expect(stdout).toBe('')
    expect(stderr).not.toContain('usage:')
    return stderr
  }

  it('exits 1 naming the field of a corrupted config', () => {
    const out = cluster()
    const path = join(out, 'config.json')
    const good = readFileSync(path, 'utf8')
    const config = JSON.parse(good)
    // biome-ignore lint/suspicious/noExplicitAny: the corruptions write wrong types on purpose
    const corruptions: Array<[(c: any) => void, RegExp]> = [
      [(c) => (c.groups.kv.f = -1), /groups\.kv\.f: expected a whole number >= 1/],
      [(c) => (c.groups.kv.f = 2), /groups\.kv\.members: f=2 needs at least 7 members/],
      [(c) => (c.groups.kv.members[2].publicKey = 'abc'), /groups\.kv\.members\[2\]\.publicKey: not a hex string/],
      [(c) => (c.groups.kv.members[3].publicKey = c.groups.kv.members[0].publicKey), /groups\.kv\.members\[3\]\.publicKey: same public key as groups\.kv\.members\[0\]/],
      [(c) => (c.clients.members[0].id = 'a b'), /clients\.members\[0\]\.id/],
      [(c) => (c.version = 2), /version: expected 1/],
      [(c) => (c.groups.kv.members[0].addrs = ['127.0.0.1:7000']), /groups\.kv\.members\[0\]\.addrs\[0\]/],
    ]
    for (const [corrupt, message] of corruptions) {
      const c = structuredClone(config)
      corrupt(c)
      writeFileSync(path, JSON.stringify(c))
      expect(failure('check', path)).toMatch(message)
    }
    writeFileSync(path, good.slice(0, good.length / 2))
    expect(failure('check', path)).toMatch(/^bftrc-keys: \(file\): not valid JSON/)
    writeFileSync(path, good.replace('"version": 1,', '"version": 1, "version": 1,'))
    expect(failure('check', path)).toMatch(/^bftrc-keys: version: appears twice/)
    writeFileSync(path, good)
    expect(run('check', path)).toBe(0)
  })

  it('exits 1 for key files that are corrupt, foreign or unknown, naming the file', () => {
    const out = cluster()
    const config = join(out, 'config.json')
    const key = join(out, 'keys', 'kv-1.key.json')
    const good = readFileSync(key, 'utf8')
    const parsed = JSON.parse(good)

    writeFileSync(key, JSON.stringify({ ...parsed, seed: parsed.seed.slice(2) }))
    expect(failure('check', config, key)).toMatch(new RegExp(`^bftrc-keys: ${key}: seed: expected 32 bytes`))
    writeFileSync(key, JSON.stringify({ ...parsed, publicKey: JSON.parse(readFileSync(join(out, 'keys', 'kv-2.key.json'), 'utf8')).publicKey }))
    expect(failure('check', config, key)).toMatch(/kv-1\.key\.json: publicKey does not match the seed/)
    writeFileSync(key, 'not json')
    expect(failure('check', config, key)).toMatch(/kv-1\.key\.json: key file is not JSON/)
    writeFileSync(key, JSON.stringify({ ...parsed, id: 'kv/9' }))
    expect(failure('check', config, key)).toMatch(/key file id kv\/9 is not in the config/)
    writeFileSync(key, JSON.stringify({ ...parsed, id: 'kv/2' }))
    expect(failure('check', config, key)).toMatch(/key of kv\/2 differs from the config's/)
    // A key of another cluster.
    const otherKey = join(dir, 'other.key.json')
    expect(run('keygen', '--id', 'kv/1', '--out', otherKey)).toBe(0)
    expect(failure('check', config, otherKey)).toMatch(/key of kv\/1 differs/)
    writeFileSync(key, good)
    expect(run('check', config, key, join(out, 'keys', 'alice.key.json'))).toBe(0)
  })

  it('exits 1 for files that do not exist', () => {
    expect(failure('check', join(dir, 'missing.json'))).toMatch(/ENOENT/)
    const out = cluster()
    expect(failure('check', join(out, 'config.json'), join(dir, 'missing.key.json'))).toMatch(/ENOENT/)
  })
})

describe('bftrc-keys keygen', () => {
  it('writes a 0600 key file and prints the id and public key; refuses to overwrite without --force', () => {
    const file = join(dir, 'alice.key.json')
    expect(run('keygen', '--id', 'alice', '--out', file)).toBe(0)
    expect(mode(file)).toBe(0o600)
    const { id, keyPair } = parseKeyFile(readFileSync(file, 'utf8'))
    expect(id).toBe('alice')
    expect(stdout).toBe(`alice ${toHex(keyPair.publicKey)}\n`)
    expect(run('keygen', '--id', 'alice', '--out', file)).toBe(2)
    expect(stderr).toMatch(/alice\.key\.json exists \(use --force to overwrite\)/)
    expect(run('keygen', '--id', 'alice', '--out', file, '--force')).toBe(0)
    expect(parseKeyFile(readFileSync(file, 'utf8')).keyPair.publicKey).not.toEqual(keyPair.publicKey)
  })

  it('exits 1 when the directory does not exist', () => {
    expect(run('keygen', '--id', 'alice', '--out', join(dir, 'no', 'such', 'dir', 'a.json'))).toBe(1)
    expect(stderr).toMatch(/ENOENT/)
  })
})
