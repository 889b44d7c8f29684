#!/usr/bin/env node
// `ward verify` timing: cold (a new `ward verify` process, z3 started from scratch) and warm
// (a second verification in the same process, z3 already running), for the built-in profiles
// and a generated 200-rule policy. Run after `npm run build`: node bench/verify.js [--n 3]
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const nArg = process.argv.indexOf('--n');
const N = nArg > 0 ? Number(process.argv[nArg + 1]) : 3;
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const ws = mkdtempSync(path.join(os.tmpdir(), 'ward-bench-verify-'));
// 200 rules: read, write and deny entries over a generated tree in the workspace.
const dirs = [];
for (let i = 0; i < 70; i++) {
  const d = path.join(ws, `pkg${i}`, 'src');
  mkdirSync(d, { recursive: true });
  dirs.push(d);
}
const big = {
  extends: ['minimal'],
  filesystem: {
    read: dirs.slice(0, 70).map((d) => d),
    write: dirs.slice(0, 65).map((d) => `${d}/out`).filter((d) => (mkdirSync(d, { recursive: true }), true)),
    deny: dirs.slice(0, 65).map((d) => `${d}/secret.txt`).filter((f) => (writeFileSync(f, 'x'), true)),
  },
};
const bigFile = path.join(ws, 'policy-200.json');
writeFileSync(bigFile, JSON.stringify(big));
const rules = big.filesystem.read.length + big.filesystem.write.length + big.filesystem.deny.length;
// The same shape outside the workspace (a tree next to it): no grant covers a `.env` the
// no-secret-access property looks for, so every property is a proof, not a counterexample.
const tree = mkdtempSync(path.join(os.tmpdir(), 'ward-bench-tree-'));
const outside = JSON.parse(JSON.stringify(big).split(ws).join(tree));
for (const d of [...outside.filesystem.read, ...outside.filesystem.write]) mkdirSync(d, { recursive: true });
for (const f of outside.filesystem.deny) writeFileSync(f, 'x');
const outsideFile = path.join(ws, 'policy-200-outside.json');
writeFileSync(outsideFile, JSON.stringify(outside));

// Dynamic rules and invariants (rules-only-revoke and each invariant explore the rules' states).
for (const d of ['secrets', 'src']) mkdirSync(path.join(ws, d), { recursive: true });
const dynamicFile = path.join(ws, 'policy-rules.json');
writeFileSync(
  dynamicFile,
  JSON.stringify({
    extends: ['minimal'],
    filesystem: { read: ['${WORKSPACE}'], write: ['${WORKSPACE}/src'] },
    network: { allow: ['api.github.com:443', '*.untrusted.example:443'] },
    rules: [
      { after: 'read ${WORKSPACE}/secrets/**', revoke: 'network' },
      { after: ['read ${WORKSPACE}/secrets', 'connect *.untrusted.example:443'], revoke: 'write ${WORKSPACE}/src' },
    ],
    invariants: [
      'never connect * after read ${WORKSPACE}/secrets/**',
      'never write ${WORKSPACE}/src after connect *.untrusted.example:443',
      'never read ${WORKSPACE}/**/.env',
      'never see ~/.ssh',
      'never connect *.untrusted.example:443',
      'never connect * after read ${WORKSPACE}/src',
    ],
  }),
);

// Eight independent rules: 256 reachable permission states for rules-only-revoke to walk.
const eightFile = path.join(ws, 'policy-8-rules.json');
writeFileSync(
  eightFile,
  JSON.stringify({
    extends: ['minimal'],
    filesystem: { read: ['${WORKSPACE}'], write: ['${WORKSPACE}'] },
    network: { allow: ['*.example.com:443'] },
    rules: Array.from({ length: 8 }, (_, i) => ({
      after: i % 3 === 2 ? `connect h${i}.example.com:443` : `read \${WORKSPACE}/s${i}/**`,
      revoke: i % 2 ? 'network' : `write \${WORKSPACE}/w${i}`,
    })),
    invariants: ['never connect * after read ${WORKSPACE}/s1/**', 'never write ${WORKSPACE}/w0 after read ${WORKSPACE}/s0'],
  }),
);

const cases = [
  ['profile minimal', ['--profile', 'minimal']],
  ['profile node', ['--profile', 'node']],
  ['profile python', ['--profile', 'python']],
  ['profile default', ['--profile', 'default']],
  [`policy with ${rules} rules in the workspace`, [bigFile]],
  [`policy with ${rules} rules outside the workspace`, [outsideFile]],
  ['policy with 2 dynamic rules and 6 invariants', [dynamicFile]],
  ['policy with 8 dynamic rules (256 states) and 2 invariants', [eightFile]],
];

const { verifyPolicy } = await import(path.join(root, 'dist/verify/properties/index.js'));
const rows = [];
for (const [label, args] of cases) {
  const cold = [];
  let statuses = '';
  for (let i = 0; i < N; i++) {
    const t = process.hrtime.bigint();
    const r = spawnSync(process.execPath, [path.join(root, 'bin/ward.js'), 'verify', ...args, '--workspace', ws, '--json'], { encoding: 'utf8', timeout: 120_000 });
    cold.push(Number(process.hrtime.bigint() - t) / 1e6);
    const report = JSON.parse(r.stdout);
    statuses = report.properties.map((p) => p.status[0]).join('');
  }
  const input = args[0] === '--profile' ? { profile: args[1] } : { file: args[0] };
  await verifyPolicy(input, { workspace: ws });
  const warm = [];
  for (let i = 0; i < N; i++) {
    const t = process.hrtime.bigint();
    await verifyPolicy(input, { workspace: ws });
    warm.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  rows.push({ label, cold: median(cold), warm: median(warm), statuses });
}
rmSync(ws, { recursive: true, force: true });
rmSync(tree, { recursive: true, force: true });

console.log(`### \`ward verify\` (median of ${N}; ms)\n`);
console.log('| Policy | cold (new process) | warm (same process) | properties (P proved, V violated, U unknown, E error) |');
console.log('|---|---:|---:|---|');
for (const r of rows) console.log(`| ${r.label} | ${r.cold.toFixed(0)} | ${r.warm.toFixed(0)} | ${r.statuses} |`);
