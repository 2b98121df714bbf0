/**
 * The secret a replica's control endpoint (control.ts) wants on every mutating request: 32 random
 * bytes as hex, made fresh by each replica process when it starts and written, owner-only (0600),
 * to `<run folder>/<id>.control-secret` before the run file that announces its port. Whoever can
 * read that file (the supervisor, the user who owns the data folder) can switch the replica's
 * partition; another local user, or a web page in a browser, cannot.
 */
import { randomBytes } from 'node:crypto'
import { closeSync, fstatSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'

export const CONTROL_SECRET_BYTES = 32
const SECRET_PATTERN = /^[0-9a-f]{64}$/

export type ControlSecretProblem = 'missing' | 'not-a-file' | 'too-open' | 'malformed'

/** A control secret file that cannot be used: missing, not a plain file, readable by others, or not 64 hex digits. */
export class ControlSecretError extends Error {
  override readonly name = 'ControlSecretError'
  constructor(
    readonly problem: ControlSecretProblem,
    readonly path: string,
    message: string,
  ) {
    super(message)
  }
}

export function newControlSecret(): string {
  return randomBytes(CONTROL_SECRET_BYTES).toString('hex')
}

/** Group or other permission bits on a file whose content must stay with its owner. */
function tooOpen(mode: number): boolean {
  return (mode & 0o077) !== 0
}

function modeText(mode: number): string {
  return `0${(mode & 0o777).toString(8)}`
}

/**
 * Writes `secret` to `path` whole (temp file created exclusively with mode 0600, fsync, rename),
 * then checks the mode the file ended up with: a file system that does not keep it (or anything
 * else that leaves the file readable by others) is a ControlSecretError, and the file is removed.
 */
export function writeControlSecret(path: string, secret: string): void {
  if (!SECRET_PATTERN.test(secret)) throw new ControlSecretError('malformed', path, `refusing to write a control secret that is not ${CONTROL_SECRET_BYTES * 2} hex digits`)
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`)
  rmSync(tmp, { force: true })
  const fd = openSync(tmp, 'wx', 0o600)
  try {
    writeSync(fd, `${secret}\n`)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
  const mode = statSync(path).mode
  if (tooOpen(mode)) {
    rmSync(path, { force: true })
    throw new ControlSecretError('too-open', path, `${path} has mode ${modeText(mode)} after writing it with 0600: a control secret must be readable by its owner only`)
  }
}

/**
 * Reads the secret in `path`, refusing a file that group or others may read or write (the mode
 * is taken from the open file, so it is the mode of what is read).
 */
export function readControlSecret(path: string): string {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new ControlSecretError('missing', path, `${path} is missing: the replica writes it when it starts`)
    throw err
  }
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) throw new ControlSecretError('not-a-file', path, `${path} is not a plain file`)
    if (tooOpen(st.mode)) throw new ControlSecretError('too-open', path, `${path} has mode ${modeText(st.mode)}: a control secret readable by group or others is not used (it must be 0600)`)
    const secret = readFileSync(fd, 'utf8').trim()
    if (!SECRET_PATTERN.test(secret)) throw new ControlSecretError('malformed', path, `${path} does not hold a control secret (${CONTROL_SECRET_BYTES * 2} hex digits)`)
    return secret
  } finally {
    closeSync(fd)
  }
}
