#!/usr/bin/env node
// Compile Ward's native launcher into <package root>/build/ward-launch-<hash>
// (run by `npm run build`, after tsc). The hash and the compiler flags live in
// one place, src/launcher/launcher.ts; this script uses its compiled form.
import { buildLauncher } from '../dist/launcher/launcher.js';

try {
  const path = buildLauncher();
  console.log(`ward: launcher built: ${path}`);
} catch (err) {
  console.error(`ward: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
