import { defineConfig } from 'vitest/config'

/** One test setup for every package: tests under test/, a JSON report the root summary reads. */
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', 'json'],
    outputFile: { json: '.vitest-report.json' },
    testTimeout: 60_000,
  },
})
