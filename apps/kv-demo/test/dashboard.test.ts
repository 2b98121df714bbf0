/**
 * The web dashboard in a real headless Chromium (puppeteer-core, the Debian `chromium` package):
 * `kv-demo up` with a small workload and a Byzantine KV replica; the page must show both groups
 * with every replica, their views, sequence numbers and roles, the Byzantine one marked, the
 * workload's progress to completion and the faults. Skipped, with the reason printed, where no
 * Chromium is installed (`apt-get install -y chromium`).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

const CHROMIUM = ['/usr/lib/chromium/chromium', '/usr/bin/chromium'].find((p) => existsSync(p))
if (CHROMIUM === undefined) console.log('[dashboard] skipped: no Chromium at /usr/bin/chromium (apt-get install -y chromium to run this test)')

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))
const root = mkdtempSync(join(tmpdir(), 'kv-demo-dashboard-'))
let child: ChildProcess | undefined

afterAll(async () => {
  if (child !== undefined && child.exitCode === null) child.kill('SIGKILL')
  await new Promise((r) => setTimeout(r, 1500))
  rmSync(root, { recursive: true, force: true })
})

describe('dashboard', () => {
  it.skipIf(CHROMIUM === undefined)(
    'shows groups, replicas, views, progress and faults of a running demo in headless Chromium',
    async () => {
      const { default: puppeteer } = await import('puppeteer-core')
      const proc = spawn(process.execPath, [CLI, 'up', '--ops', '2', '--lanes', '2', '--data-dir', join(root, 'data'), '--fault', 'byzantine:kv/2=silent'], { stdio: ['ignore', 'pipe', 'pipe'] })
      child = proc
      let stdout = ''
      let stderr = ''
      proc.stderr?.on('data', (d) => (stderr += d))
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no dashboard URL within 60 s:\n${stdout}\n${stderr}`)), 60_000)
        proc.stdout?.on('data', (d) => {
          stdout += d
          const m = /dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stdout)
          if (m !== null) {
            clearTimeout(timer)
            resolve(m[1] as string)
          }
        })
        proc.on('exit', () => reject(new Error(`kv-demo up exited:\n${stdout}\n${stderr}`)))
      })
      const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] })
      try {
        const page = await browser.newPage()
        await page.goto(url, { waitUntil: 'domcontentloaded' })
        await page.waitForSelector('tr[data-replica="bank/3"]', { timeout: 60_000 })
        // The workload completes: `up` then says it keeps running.
        await page.waitForFunction(() => document.querySelector('#phase')?.getAttribute('data-phase')?.startsWith('running') === true, { timeout: 90_000, polling: 250 })
        const seen = await page.evaluate(() => {
          const rows = [...document.querySelectorAll('tr[data-replica]')].map((tr) => ({
            id: tr.getAttribute('data-replica'),
            health: tr.getAttribute('data-health'),
            byz: tr.classList.contains('byz'),
            text: tr.textContent ?? '',
            view: tr.querySelector('[data-field="view"]')?.textContent,
            seq: tr.querySelector('[data-field="seq"]')?.textContent,
          }))
          return {
            title: document.querySelector('#title')?.textContent,
            groups: [...document.querySelectorAll('[data-group]')].map((g) => g.getAttribute('data-group')),
            rows,
            transfers: document.querySelector('#transfers')?.textContent,
            audits: document.querySelector('#audits')?.textContent,
            faults: document.querySelector('#faults')?.textContent,
            events: document.querySelector('#events')?.textContent,
          }
        })
        expect(seen.title).toMatch(/bank .* kv/)
        expect(seen.groups).toEqual(['kv', 'bank'])
        expect(seen.rows.map((r) => r.id)).toEqual(['kv/0', 'kv/1', 'kv/2', 'kv/3', 'bank/0', 'bank/1', 'bank/2', 'bank/3'])
        for (const r of seen.rows) {
          expect(r.view, r.id as string).toMatch(/^\d+$/)
          expect(r.seq, r.id as string).toMatch(/^\d+$/)
        }
        expect(seen.rows.filter((r) => r.id?.startsWith('kv/') && r.text.includes('primary'))).toHaveLength(1)
        expect(seen.rows.find((r) => r.id === 'kv/2')).toMatchObject({ byz: true })
        expect(seen.rows.find((r) => r.id === 'kv/2')?.text).toMatch(/Byzantine: silent/)
        // Health is one of the known words; at least 2f+1 replicas of each group are fine.
        for (const r of seen.rows) expect(['ok', 'view-change', 'state-transfer', 'behind', 'halted', 'down', 'starting', 'died']).toContain(r.health)
        expect(seen.rows.filter((r) => r.id?.startsWith('kv/') && r.health === 'ok').length).toBeGreaterThanOrEqual(3)
        expect(seen.rows.filter((r) => r.id?.startsWith('bank/') && r.health === 'ok').length).toBeGreaterThanOrEqual(3)
        expect(seen.transfers).toBe('transfers 2 / 2')
        expect(seen.audits).toMatch(/\(0 failed\)/)
        expect(seen.faults).toMatch(/byzantine:kv\/2=silent — active/)
        expect(seen.events).toMatch(/workload done: 2 transfers/)
      } finally {
        await browser.close()
      }
      // Ctrl-C: `up` stops the cluster cleanly and exits 0 when every invariant held.
      const code = await new Promise<number | null>((resolve) => {
        proc.on('exit', (c) => resolve(c))
        proc.kill('SIGINT')
      })
      expect(code, `${stdout}\n${stderr}`).toBe(0)
      expect(stdout).toMatch(/OK — all invariants held/)
    },
    180_000,
  )
})
