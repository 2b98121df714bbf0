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
import { isIpv4 } from './addr.js'
import { generateCluster } from './cluster.js'
import { ConfigError, KeyError } from './errors.js'
import { generateKeyPair, parseKeyFile, serializeKeyFile, toHex } from './keys.js'
import { CLIENT_ID, GROUP_NAME, Membership, replicaId } from './membership.js'

class UsageError extends Error {
  override readonly name = 'UsageError'
}

const USAGE = `usage:
  bftrc-keys cluster --group NAME:F [--group NAME:F ...] [--clients ID,ID] [--open-clients]
                     [--authorities COUNT:THRESHOLD] [--base-port PORT] [--host IP] --out DIR
  bftrc-keys keygen --id ID --out FILE
  bftrc-keys check CONFIG.json [KEYFILE ...]`

const FLAGS = new Set(['--open-clients', '--force'])
const OPTIONS: Readonly<Record<string, readonly string[]>> = {
  cluster: ['--group', '--clients', '--open-clients', '--authorities', '--base-port', '--host', '--out', '--force'],
  keygen: ['--id', '--out', '--force'],
  check: [],
}

function parseArgs(argv: readonly string[]): { positional: string[]; options: Map<string, string[]> } {
  const positional: string[] = []
  const options = new Map<string, string[]>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if (arg === '--') continue
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=')
      const name = eq > 0 ? arg.slice(0, eq) : arg
      let value: string
      if (FLAGS.has(name)) {
        // `--force=false` must not quietly mean --force.
        if (eq > 0) throw new UsageError(`${name} takes no value`)
        value = 'true'
      } else if (eq > 0) value = arg.slice(eq + 1)
      else {
        const next = argv[++i]
        if (next === undefined || next.startsWith('--')) throw new UsageError(`${name} needs a value`)
        value = next
      }
      options.set(name, [...(options.get(name) ?? []), value])
    } else positional.push(arg)
  }
  return { positional, options }
}

/** Refuses options the command does not know (a typo such as --client must not be ignored) and stray arguments. */
function checkOptions(command: string, options: Map<string, string[]>, positional: readonly string[], maxPositional: number): void {
  const allowed = OPTIONS[command] ?? []
  for (const name of options.keys()) {
    if (!allowed.includes(name)) throw new UsageError(`${command} has no option ${name}`)
  }
  for (const flag of FLAGS) {
    if ((options.get(flag)?.length ?? 0) > 1) throw new UsageError(`${flag} given more than once`)
  }
  if (positional.length > maxPositional) throw new UsageError(`${command}: unexpected argument ${positional[maxPositional]}`)
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
      throw new UsageError(`--group ${spec}: expected NAME:F with NAME 1-32 of a-z, 0-9 and - (starting with a letter), e.g. kv:1`)
    }
    return { name, f: wholeNumber(f, `--group ${spec}`, 0, 85) }
  })
  const seenGroups = new Set<string>()
  for (const g of groups) {
    if (seenGroups.has(g.name)) throw new UsageError(`--group ${g.name} given more than once`)
    seenGroups.add(g.name)
  }
  const clientsText = one(options, '--clients')
  const clients = clientsText === undefined ? undefined : clientsText.split(',').filter((c) => c !== '')
  const seenClients = new Set<string>()
  for (const id of clients ?? []) {
    if (!CLIENT_ID.test(id)) throw new UsageError(`--clients: "${id}" is not a client id (1-64 of A-Z a-z 0-9 . _ -)`)
    if (seenClients.has(id)) throw new UsageError(`--clients: ${id} given more than once`)
    seenClients.add(id)
  }
  const auth = one(options, '--authorities')
  let authorities: { count: number; threshold: number } | undefined
  if (auth !== undefined) {
    const parts = auth.split(':')
    if (parts.length !== 2) throw new UsageError(`--authorities ${auth}: expected COUNT:THRESHOLD, e.g. 3:2`)
    const count = wholeNumber(parts[0] as string, '--authorities COUNT', 1, 256)
    authorities = { count, threshold: wholeNumber(parts[1] as string, '--authorities THRESHOLD', 1, count) }
  }
  const basePortText = one(options, '--base-port')
  const basePort = basePortText === undefined ? 7000 : wholeNumber(basePortText, '--base-port', 0, 65535)
  const replicas = groups.reduce((sum, g) => sum + 3 * g.f + 1, 0)
  if (basePort > 0 && basePort + replicas - 1 > 65535) throw new UsageError(`--base-port ${basePort}: ${replicas} replicas need ports up to ${basePort + replicas - 1}, past 65535`)
  const host = one(options, '--host') ?? '127.0.0.1'
  if (!isIpv4(host)) {
    throw new UsageError(`--host ${host}: expected an IPv4 address`)
  }
  if (authorities !== undefined && seenGroups.has('authority')) {
    throw new UsageError('--group authority: that name is taken by the upgrade authorities (authority/0, …) when --authorities is given')
  }
  // Every identity gets its own key file: refuse names that would overwrite one another
  // (client "kv-0" and replica kv/0, client "authority-0" and upgrade authority authority/0).
  const ids = [
    ...groups.flatMap((g) => Array.from({ length: 3 * g.f + 1 }, (_, i) => replicaId(g.name, i))),
    ...(clients ?? []),
    ...Array.from({ length: authorities?.count ?? 0 }, (_, i) => `authority/${i}`),
  ]
  const fileOwner = new Map<string, string>()
  for (const id of ids) {
    const other = fileOwner.get(keyFileName(id))
    if (other !== undefined) throw new UsageError(`${other} and ${id} would share the key file ${keyFileName(id)}: rename one`)
    fileOwner.set(keyFileName(id), id)
  }
  const configPath = join(out, 'config.json')
  if (existsSync(configPath) && !options.has('--force')) throw new UsageError(`${configPath} exists (use --force to overwrite)`)
  const generated = generateCluster({
    groups,
    ...(clients !== undefined ? { clients } : {}),
    openClients: options.has('--open-clients'),
    ...(authorities !== undefined ? { authorities } : {}),
    basePort,
    host,
  })
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
    let parsed: ReturnType<typeof parseKeyFile>
    try {
      parsed = parseKeyFile(readFileSync(path, 'utf8'))
    } catch (err) {
      if (err instanceof KeyError) throw new KeyError(err.code, `${path}: ${err.message}`)
      throw err
    }
    const { id, keyPair } = parsed
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
    if (command === 'cluster') {
      checkOptions(command, options, rest, 0)
      output = cluster(options)
    } else if (command === 'keygen') {
      checkOptions(command, options, rest, 0)
      output = keygen(options)
    } else if (command === 'check') {
      checkOptions(command, options, rest, Number.POSITIVE_INFINITY)
      output = check(rest)
    } else throw new UsageError(command === undefined ? 'missing command' : `unknown command ${command}`)
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
