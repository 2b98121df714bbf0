// The kv-demo lands with issue 8 (replicated KV store + replicated client over libp2p).
// Until then `pnpm demo` says so and shows what is already runnable.
console.log('bftrc kv-demo: not built yet (issue 8).')
console.log('What runs today:')
console.log('  pnpm sim -- --list                    simulation scenarios of core-agreement')
console.log('  pnpm sim -- --scenario basic --seeds 10')
console.log('  pnpm bench:crypto                     signature, digest and encoding rates')
