// Shared by every package: tests under test/, a JSON report for the root summary.
export { default } from '../../vitest.shared.js'
