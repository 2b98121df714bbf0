#!/usr/bin/env bash
# Internal helper used once to lay out a workspace package; kept so new packages look alike.
set -euo pipefail
dir=$1; name=$2; desc=$3
mkdir -p "$dir/src" "$dir/test"
cat > "$dir/tsconfig.json" <<JSON
{
  "extends": "../../tsconfig.base.json",
  "compilerOptions": { "noEmit": true },
  "include": ["src", "test", "bench", "*.ts"]
}
JSON
cat > "$dir/tsconfig.build.json" <<JSON
{
  "extends": "../../tsconfig.base.json",
  "compilerOptions": { "outDir": "dist", "rootDir": "src" },
  "include": ["src"]
}
JSON
cat > "$dir/vitest.config.ts" <<TS
// Shared by every package: tests under test/, a JSON report for the root summary.
export { default } from '../../vitest.shared.js'
TS
