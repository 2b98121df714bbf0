// Bundles the two executables (dist/cli.js and dist/replica.js, as tsc wrote them) in place, with
// their dependencies (libp2p among them), so a process loads one file instead of ~1000 modules:
// a replica starts with about half the CPU time, which matters with 8 of them on 2 cores.
// classic-level stays external (a native addon found next to its package).
import { build } from 'esbuild'

await build({
  entryPoints: ['dist/cli.js', 'dist/replica.js'],
  outdir: 'dist',
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['classic-level'],
  sourcemap: true,
  logLevel: 'warning',
  // CommonJS dependencies inside an ES module bundle need a require().
  banner: { js: "import { createRequire as __bftrcCreateRequire } from 'node:module'; const require = __bftrcCreateRequire(import.meta.url);" },
})
