import { defineConfig, mergeConfig } from 'vitest/config'
import shared from '../../vitest.shared.js'

export default mergeConfig(
  shared,
  defineConfig({
    test: {
      hookTimeout: 60_000,
      // The end-to-end tests start real processes: one file at a time keeps 2 cores usable.
      fileParallelism: false,
    },
  }),
)
