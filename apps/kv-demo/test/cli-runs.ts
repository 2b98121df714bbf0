/**
 * Runs the built `kv-demo` executable as a child process for the end-to-end tests, with a
 * deadline (SIGINT when it passes) and its JSON summary parsed; `killAll` ends whatever is left
 * (its replicas watch its pid and stop within a second).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))

export interface CliRun<T> {
  readonly code: number | null
  /** stdout parsed as JSON, when it is. */
  readonly summary: T | undefined
  readonly stdout: string
  readonly stderr: string
}

export class CliRuns {
  private readonly children = new Set<ChildProcess>()

  run<T>(args: readonly string[], timeoutMs: number): Promise<CliRun<T>> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      this.children.add(child)
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d) => (stdout += d))
      child.stderr.on('data', (d) => (stderr += d))
      const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs)
      child.on('exit', (code) => {
        clearTimeout(timer)
        this.children.delete(child)
        let summary: T | undefined
        try {
          summary = JSON.parse(stdout) as T
        } catch {
          summary = undefined
        }
        resolve({ code, summary, stdout, stderr })
      })
    })
  }

  async killAll(): Promise<void> {
    for (const c of this.children) if (c.exitCode === null) c.kill('SIGKILL')
    await new Promise((r) => setTimeout(r, 1500))
  }
}
