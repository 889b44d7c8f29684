#!/usr/bin/env node
// The `ward` command. Runs the built CLI (npm run build); from a source checkout
// without a build it says so instead of failing obscurely.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = fileURLToPath(new URL('../dist/ward.mjs', import.meta.url));
if (!existsSync(built)) {
  process.stderr.write('ward: not built yet\n  fix: run `npm run build` in the Ward checkout\n');
  process.exit(125);
}
const { main } = await import(built);
process.exitCode = await main(process.argv.slice(2));
