/** Small file helpers shared by the supervisor, the replica process and the client commands. */
import { closeSync, fsyncSync, openSync, renameSync, writeFileSync, writeSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'

/** Writes a file whole or not at all: temp file in the same folder, fsync, rename. */
export function writeFileAtomic(path: string, text: string, mode = 0o644): void {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`)
  writeFileSync(tmp, '', { mode })
  const fd = openSync(tmp, 'w', mode)
  try {
    writeSync(fd, text)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
}

/** `kv/0` → `kv-0`: the file name of a replica's key, folder and run files. */
export function label(id: string): string {
  return id.replace(/\//g, '-')
}

export interface DataLayout {
  readonly root: string
  readonly config: string
  readonly keys: string
  readonly replicas: string
  readonly run: string
  readonly settings: string
}

export function layout(root: string): DataLayout {
  return { root, config: join(root, 'config.json'), keys: join(root, 'keys'), replicas: join(root, 'replicas'), run: join(root, 'run'), settings: join(root, 'demo.json') }
}

export function keyFile(l: DataLayout, id: string): string {
  return join(l.keys, `${label(id)}.key.json`)
}

export function replicaDir(l: DataLayout, id: string): string {
  return join(l.replicas, label(id))
}

export function runFile(l: DataLayout, id: string): string {
  return join(l.run, `${label(id)}.json`)
}

/** Where a replica started with `--run-dir runDir` writes its control secret (control-secret.ts). */
export function controlSecretPath(runDir: string, id: string): string {
  return join(runDir, `${label(id)}.control-secret`)
}

export function controlSecretFile(l: DataLayout, id: string): string {
  return controlSecretPath(l.run, id)
}

export function finalFile(l: DataLayout, id: string): string {
  return join(l.run, `${label(id)}.final.json`)
}

export function logFile(l: DataLayout, id: string): string {
  return join(l.run, `${label(id)}.log`)
}
