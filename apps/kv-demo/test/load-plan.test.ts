import { describe, expect, it } from 'vitest'
import { FULL_DEFAULTS, LIMITS, QUICK_DEFAULTS, UsageError, arrivalOffsets, arrivalRng, parseLoadArgs, parseSteps } from '../bench/load-plan.js'

const parse = (...argv: string[]) => parseLoadArgs(argv, '/work/here', '/tmp')

describe('load options', () => {
  it('has full and quick defaults, and takes every option in both spellings', () => {
    expect(parse()).toMatchObject({ quick: false, steps: FULL_DEFAULTS.steps, stepSeconds: FULL_DEFAULTS.stepSeconds, clients: FULL_DEFAULTS.clients, timeoutMs: 5000, arrivals: 'poisson', seed: 1, maxPending: undefined, json: undefined, dataRoot: '/tmp' })
    expect(parse('--quick')).toMatchObject({ quick: true, steps: QUICK_DEFAULTS.steps, stepSeconds: QUICK_DEFAULTS.stepSeconds, clients: QUICK_DEFAULTS.clients })
    const o = parse('--', '--quick', '--steps', '10,20,40', '--step-seconds=2.5', '--clients', '7', '--timeout-ms=900', '--arrivals', 'uniform', '--seed', '42', '--max-pending', '16', '--json', 'out.json', '--data-root=/dev/shm')
    expect(o).toMatchObject({ quick: true, steps: [10, 20, 40], stepSeconds: 2.5, clients: 7, timeoutMs: 900, arrivals: 'uniform', seed: 42, maxPending: 16, json: '/work/here/out.json', dataRoot: '/dev/shm' })
    expect(parse('--help').help).toBe(true)
  })

  it('refuses bad values with a message naming the option', () => {
    const bad: Array<[string[], RegExp]> = [
      [['--steps', '100,50'], /--steps: rates must increase \(100 then 50\)/],
      [['--steps', '50,50'], /must increase/],
      [['--steps', ''], /--steps: give 1\.\.32 rates/],
      [['--steps', '10,x'], /--steps: 'x' is not a number/],
      [['--steps', '0'], /--steps: 0 is outside 1\.\.20000/],
      [['--steps', '1.5'], /not a whole number/],
      [['--steps', Array.from({ length: 33 }, (_, i) => i + 1).join(',')], /1\.\.32 rates/],
      [['--step-seconds', '0.5'], /--step-seconds: 0\.5 is outside 1\.\.600/],
      [['--step-seconds', '-3'], /--step-seconds needs a value|not a number/],
      [['--step-seconds', 'ten'], /'ten' is not a number/],
      [['--clients', '0'], /--clients: 0 is outside 1\.\.1000/],
      [['--clients', '1001'], /outside/],
      [['--timeout-ms', '50'], /--timeout-ms: 50 is outside 100\.\.120000/],
      [['--arrivals', 'bursty'], /--arrivals: 'bursty' is neither poisson nor uniform/],
      [['--seed', '4294967296'], /--seed: 4294967296 is outside/],
      [['--max-pending', '0'], /--max-pending: 0 is outside 1\.\.100000/],
      [['--json'], /--json needs a value/],
      [['--json', '--quick'], /--json needs a value/],
      [['--clients', '3', '--clients', '4'], /--clients given twice/],
      [['--fast'], /unknown argument '--fast'/],
      [['--steps', '20000', '--step-seconds', '600'], /more than 1000000 arrivals/],
    ]
    for (const [argv, message] of bad) {
      expect(() => parse(...argv), argv.join(' ')).toThrow(UsageError)
      expect(() => parse(...argv), argv.join(' ')).toThrow(message)
    }
  })

  it('parses a step list on its own', () => {
    expect(parseSteps('5, 10 ,20')).toEqual([5, 10, 20])
    expect(() => parseSteps(`1,${LIMITS.maxRate + 1}`)).toThrow(UsageError)
  })
})

describe('open-loop arrival schedule', () => {
  it('spaces uniform arrivals evenly inside the window', () => {
    const t = arrivalOffsets(4, 2.5, 'uniform', arrivalRng(1, 0))
    expect(t).toEqual([0, 250, 500, 750, 1000, 1250, 1500, 1750, 2000, 2250])
  })

  it('draws Poisson arrivals: increasing, inside the window, about rate × seconds of them, with exponential gaps', () => {
    const rate = 200
    const seconds = 50
    const t = arrivalOffsets(rate, seconds, 'poisson', arrivalRng(7, 3))
    for (let i = 1; i < t.length; i++) expect(t[i]).toBeGreaterThan(t[i - 1] as number)
    expect(t[0]).toBeGreaterThanOrEqual(0)
    expect(t[t.length - 1]).toBeLessThan(seconds * 1000)
    // 10 000 expected; the standard deviation of a Poisson count is 100.
    expect(Math.abs(t.length - rate * seconds)).toBeLessThan(500)
    const gaps = t.slice(1).map((x, i) => x - (t[i] as number))
    const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length
    expect(mean).toBeGreaterThan(4.8)
    expect(mean).toBeLessThan(5.2)
    // Exponential: the coefficient of variation is 1 (evenly spaced arrivals would give 0).
    const sd = Math.sqrt(gaps.reduce((a, g) => a + (g - mean) ** 2, 0) / gaps.length)
    expect(sd / mean).toBeGreaterThan(0.9)
    expect(sd / mean).toBeLessThan(1.1)
  })

  it('is reproducible from the seed, and differs between steps and seeds', () => {
    const a = arrivalOffsets(50, 4, 'poisson', arrivalRng(9, 1))
    expect(arrivalOffsets(50, 4, 'poisson', arrivalRng(9, 1))).toEqual(a)
    expect(arrivalOffsets(50, 4, 'poisson', arrivalRng(9, 2))).not.toEqual(a)
    expect(arrivalOffsets(50, 4, 'poisson', arrivalRng(10, 1))).not.toEqual(a)
  })

  it('refuses a schedule beyond its bound', () => {
    expect(() => arrivalOffsets(0, 1, 'uniform', arrivalRng(1, 0))).toThrow(RangeError)
    expect(() => arrivalOffsets(LIMITS.maxRate, LIMITS.maxArrivalsPerStep, 'poisson', arrivalRng(1, 0))).toThrow(RangeError)
  })
})
