#!/usr/bin/env node
/** The `kv-demo` executable: see main.ts, and `kv-demo help`. */
import type { Io } from './session.js'
import { main } from './main.js'

const io: Io = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  isTTY: process.stderr.isTTY === true,
}

main(process.argv.slice(2), io).then(
  (code) => {
    process.exitCode = code
    // libp2p can leave timers behind after stop(); the command is done.
    setTimeout(() => process.exit(code), 100).unref()
  },
  (err: unknown) => {
    process.stderr.write(`kv-demo: ${(err as Error).stack ?? err}\n`)
    process.exit(1)
  },
)
