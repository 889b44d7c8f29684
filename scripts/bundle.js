#!/usr/bin/env node
// Bundles the CLI into one file (dist/ward.mjs). Node's ESM loader pays per
// module, and zod alone is hundreds of them: one file saves ~80 ms per
// `ward` invocation, most of a command's overhead.
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/cli/main.js'],
  outfile: 'dist/ward.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
  // z3-solver loads a ~35 MB WebAssembly file relative to its own package: load it from
  // node_modules at run time (only `ward verify` does), never inline it.
  external: ['z3-solver'],
  // yaml is CommonJS and calls require(); give the ESM bundle a real one.
  banner: { js: "import { createRequire as __wardCreateRequire } from 'node:module'; const require = __wardCreateRequire(import.meta.url);" },
});
