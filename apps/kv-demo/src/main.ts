/**
 * kv-demo's entry point as a function (tests call it in-process): the bftrc demonstration. `kv-demo help` lists the commands. Exit codes: 0 success
 * (demo: every invariant held), 1 failure (an invariant broke, a replica died, a timeout, the
 * cluster does not answer, a key not found), 2 a usage error (nothing started or written).
 */
import { USAGE, UsageError, parseArgs } from './args.js'
import { runClientCommand, runStatus } from './client.js'
import { runChaos } from './chaos.js'
import { runDemo } from './demo.js'
import type { Io } from './session.js'

export async function main(argv: readonly string[], io: Io, env: Readonly<Record<string, string | undefined>> = process.env): Promise<number> {
  try {
    const parsed = parseArgs(argv, env)
    switch (parsed.command) {
      case 'help':
        io.stdout(`${USAGE}\n`)
        return 0
      case 'demo':
      case 'up':
        return await runDemo(parsed, io)
      case 'chaos':
        return await runChaos(parsed, io)
      case 'status':
        return await runStatus(parsed.dataDir, parsed.json, io)
      default:
        return await runClientCommand(parsed, io)
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`kv-demo: ${err.message}\n(kv-demo help lists commands and options)\n`)
      return 2
    }
    io.stderr(`kv-demo: ${(err as Error).message ?? err}\n`)
    return 1
  }
}
