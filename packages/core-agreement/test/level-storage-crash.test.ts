/**
 * Crash atomicity: a child process applies recognisable batches in a loop and is killed with
 * SIGKILL at a random moment; reopening must find exactly the batches 0..b for some b (each batch
 * whole or absent, none skipped). A killed process leaves the OS page cache intact, so this proves
 * atomicity and ordering, not durability against power loss: the sync tests of
 * level-storage.test.ts check that every write is synced.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { MemoryStorage } from '../src/index.js'
import { LevelStorage } from '../src/storage/level-storage.js'
import { crashBatch, removeDir, tempDir } from './helpers/storage-ops.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/storage-child.ts', import.meta.url))
const PKG = fileURLToPath(new URL('..', import.meta.url))

const location = tempDir('bftrc-crash-')
afterAll(() => removeDir(location))

interface Round {
  start: number
  lastAck: number
  killedAfterMs: number
}

/** Starts the writer, lets it ack at least a few batches, kills it after a random extra delay. */
function crashRound(): Promise<Round> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, 'crash', location], { cwd: PKG, stdio: ['ignore', 'pipe', 'inherit'] })
    let start = -1
    let lastAck = -1
    let acks = 0
    let buffered = ''
    let killedAfterMs = -1
    const watchdog = setTimeout(() => child.kill('SIGKILL'), 15_000)
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString()
      let nl = buffered.indexOf('\n')
      while (nl >= 0) {
        const line = buffered.slice(0, nl)
        buffered = buffered.slice(nl + 1)
        nl = buffered.indexOf('\n')
        const [word, n] = line.split(' ')
        if (word === 'start') start = Number(n)
        if (word === 'ack') {
          lastAck = Number(n)
          if (++acks === 3) {
            killedAfterMs = Math.floor(Math.random() * 250)
            setTimeout(() => child.kill('SIGKILL'), killedAfterMs)
          }
        }
      }
    })
    child.on('exit', (code, signal) => {
      clearTimeout(watchdog)
      if (signal !== 'SIGKILL') return reject(new Error(`writer exited with ${code ?? signal} before it was killed`))
      if (killedAfterMs < 0) return reject(new Error('writer was killed by the watchdog before it acknowledged 3 batches'))
      resolve({ start, lastAck, killedAfterMs })
    })
  })
}

describe('LevelStorage under SIGKILL', () => {
  it('each batch is wholly present or absent, in order, and every acknowledged batch survives', async () => {
    let previous = -1
    for (let round = 0; round < 3; round++) {
      const r = await crashRound()
      expect(r.start, 'the writer resumes after the last batch it found').toBe(previous + 1)
      const storage = await LevelStorage.open(location)
      const state = await storage.load()
      await storage.close()
      expect(state).toBeDefined()
      const b = state?.view as number
      const why = `round ${round}: killed ${r.killedAfterMs} ms after the 3rd ack; last ack ${r.lastAck}, found batches 0..${b}`
      // Every acknowledged batch is there; at most the one in flight at the kill beyond it.
      expect(b, why).toBeGreaterThanOrEqual(r.lastAck)
      expect(b, why).toBeLessThanOrEqual(r.lastAck + 1)
      // The store holds exactly what batches 0..b give, nothing of batch b+1 and nothing torn.
      const reference = new MemoryStorage()
      for (let i = 0; i <= b; i++) reference.applySync(crashBatch(i))
      expect(state, why).toEqual(reference.loadSync())
      previous = b
    }
  })
})
