#!/usr/bin/env node
/**
 * bftrc-keys: keys and membership configs for a local cluster.
 *
 *   bftrc-keys cluster --group kv:1 [--group bank:1] [--clients alice,bob] [--open-clients]
 *                      [--authorities 3:2] [--base-port 7000] [--host 127.0.0.1] --out DIR
 *   bftrc-keys keygen --id ID --out FILE
 *   bftrc-keys check CONFIG.json [KEYFILE...]
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { generateCluster } from './cluster.js'
import { ConfigError, KeyError } from './errors.js'
import { generateKeyPair, parseKeyFile, serializeKeyFile, toHex } from './keys.js'
import { GROUP_NAME, Membership } from './membership.js'

class UsageError extends Error {
  override readonly name = 'UsageError'
}

const USAGE = `usage:
  bftrc-keys cluster --group NAME:F [--group NAME:F ...] [--clients ID,ID] [--open-clients]
                     [--authorities COUNT:THRESHOLD] [--base-port PORT] [--host IP] --out DIR
  bftrc-keys keygen --id ID --out FILE
  bftrc-keys check CONFIG.json [KEYFILE ...]`

function parseArgs(argv: readonly string[]): { positional: string[]; options: Map<string, string[]> } {
  const positional: string[] = []
  const options = new Map<string, string[]>()
  const flags = new Set(['--open-clients', '--force'])
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if (arg === '--') continue
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=')
      const name = eq > 0 ? arg.slice(0, eq) : arg
      let value: string
      if (eq > 0) value = arg.slice(eq + 1)
      else if (flags.has(name)) value = 'true'
      else {
        const next = argv[++i]
        if (next === undefined) throw new UsageError(`${name} needs a value`)
        value = next
      }
      options.set(name, [...(options.get(name) ?? []), value])
    } else positional.push(arg)
  }
  return { positional, options }
}

function one(options: Map<string, string[]>, name: string): string | undefined {
  const v = options.get(name)
  if (v !== undefined && v.length > 1) throw new UsageError(`${name} given more than once`)
  return v?.[0]
}

function wholeNumber(text: string, what: string, min: number, max: number): number {
  if (!/^[0-9]+$/.test(text)) throw new UsageError(`${what}: expected a whole number, got "${text}"`)
  const n = Number(text)
  if (n < min || n > max) throw new UsageError(`${what}: expected ${min}..${max}, got ${n}`)
  return n
}

/** Writes a file whole or not at all (temp file then rename). */
function writeAtomically(path: string, text: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`
  writeFileSync(tmp, text, { mode })
  renameSync(tmp, path)
}

function keyFileName(id: string): string {
  return `${id.replace(/\//g, '-')}.key.json`
}

function cluster(options: Map<string, string[]>): string {
  const out = one(options, '--out')
  if (out === undefined) throw new UsageError('--out DIR is required')
  const groupSpecs = options.get('--group') ?? []
  if (groupSpecs.length === 0) throw new UsageError('at least one --group NAME:F is required')
  const groups = groupSpecs.map((spec) => {
    const [name, f, extra] = spec.split(':')
    if (name === undefined || f === undefined || extra !== undefined || !GROUP_NAME.test(name)) {
      throw new UsageError(`--group ${spec}: expected NAME:F, e.g. kv:1`)
    }
    return { name, f: wholeNumber(f, `--group ${spec}`, 0, 85) }
  })
  const clientsText = one(options, '--clients')
  const clients = clientsText === undefined ? undefined : clientsText.split(',').filter((c) => c !== '')
  const auth = one(options, '--authorities')
  let authorities: { count: number; threshold: number } | undefined
  if (auth !== undefined) {
    const [count, threshold] = auth.split(':')
    authorities = { count: wholeNumber(count ?? '', '--authorities COUNT', 1, 256), threshold: wholeNumber(threshold ?? '', '--authorities THRESHOLD', 1, 256) }
  }
  const basePortText = one(options, '--base-port')
  const basePort = basePortText === undefined ? 7000 : wholeNumber(basePortText, '--base-port', 0, 65000)
  const host = one(options, '--host') ?? '127.0.0.1'
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) throw new UsageError(`--host ${host}: expected an IPv4 address`)
  const generated = generateCluster({
    groups,
    ...(clients !== undefined ? { clients } : {}),
    openClients: options.has('--open-clients'),
    ...(authorities !== undefined ? { authorities } : {}),
    basePort,
    host,
  })
  const configPath = join(out, 'config.json')
  if (existsSync(configPath) && !options.has('--force')) throw new UsageError(`${configPath} exists (use --force to overwrite)`)
  mkdirSync(join(out, 'keys'), { recursive: true, mode: 0o700 })
  for (const [id, kp] of generated.keys) writeAtomically(join(out, 'keys', keyFileName(id)), serializeKeyFile(id, kp), 0o600)
  writeAtomically(configPath, `${JSON.stringify(generated.config, null, 2)}\n`, 0o644)
  return `wrote ${configPath} and ${generated.keys.size} key files in ${join(out, 'keys')}`
}

function keygen(options: Map<string, string[]>): string {
  const id = one(options, '--id')
  const out = one(options, '--out')
  if (id === undefined || id === '') throw new UsageError('--id ID is required')
  if (out === undefined) throw new UsageError('--out FILE is required')
  if (existsSync(out) && !options.has('--force')) throw new UsageError(`${out} exists (use --force to overwrite)`)
  const kp = generateKeyPair()
  writeAtomically(out, serializeKeyFile(id, kp), 0o600)
  return `${id} ${toHex(kp.publicKey)}`
}

function check(positional: readonly string[]): string {
  const [configPath, ...keyPaths] = positional
  if (configPath === undefined) throw new UsageError('check needs CONFIG.json')
  const membership = Membership.parse(readFileSync(configPath, 'utf8'))
  const lines = [...membership.groups.values()].map((g) => `group ${g.name}: f=${g.f} n=${g.n}`)
  for (const path of keyPaths) {
    const { id, keyPair } = parseKeyFile(readFileSync(path, 'utf8'))
    const member = membership.member(id) ?? membership.clients.get(id)
    if (member === undefined) throw new ConfigError(path, `key file id ${id} is not in the config`)
    if (toHex(member.publicKey) !== toHex(keyPair.publicKey)) throw new ConfigError(path, `key of ${id} differs from the config's`)
    lines.push(`key ${id}: ok`)
  }
  return lines.join('\n')
}

export function main(argv: readonly string[]): number {
  try {
    const { positional, options } = parseArgs(argv)
    const [command, ...rest] = positional
    let output: string
    if (command === 'cluster') output = cluster(options)
    else if (command === 'keygen') output = keygen(options)
    else if (command === 'check') output = check(rest)
    else throw new UsageError(command === undefined ? 'missing command' : `unknown command ${command}`)
    process.stdout.write(`${output}\n`)
    return 0
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`bftrc-keys: ${err.message}\n${USAGE}\n`)
      return 2
    }
    if (err instanceof ConfigError || err instanceof KeyError) {
      process.stderr.write(`bftrc-keys: ${err.message}\n`)
      return 1
    }
    if ((err as NodeJS.ErrnoException).code !== undefined) {
      process.stderr.write(`bftrc-keys: ${(err as Error).message}\n`)
      return 1
    }
    throw err
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/bftrc-keys')) {
  process.exitCode = main(process.argv.slice(2))
}
