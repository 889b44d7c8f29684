#!/usr/bin/env node
// Supervised mode's cost per intercepted syscall: `npm run build && node bench/supervisor.js`.
//
// A small C program opens and closes one allowed file N times in a row and times each
// openat() with clock_gettime (CLOCK_MONOTONIC) around the call; it prints the median,
// p90 and p99 of its own samples. It runs inside Ward's sandbox (default profile) in two
// modes, interleaved round by round so a noisy phase of the machine hits both alike:
//   static      the kernel decides (mounts, Landlock, seccomp); no supervisor
//   supervised  openat is notified to Ward's supervisor thread, which reads the path,
//               opens the file itself from the sandbox's root, checks the static policy,
//               calls decide() (bench/supervisor-decider.js: allow all) and injects the fd
// The report gives, per mode, the median over rounds of each round's p50 (and p90, p99),
// and the difference: the cost the supervisor adds to one intercepted call.
//
// Then real work, wall time of the whole run() (launch to exit), median over the rounds, in
// three modes interleaved round by round:
//   static      no supervisor
//   supervised  openat, open and execve notified, an allow-all decide(): the mechanism's cost
//   rules       what `ward run` does with a policy that has dynamic rules (RULES below): only
//               the syscalls those rules need are notified, decided by the real rule engine
// Workloads:
//   true       /bin/true: the supervisor's fixed start-up cost per run
//   python     python3 -c 'import json, email.mime.text, http.client, decimal, sqlite3'
//   git        git status in a repository of 200 committed files
//   git-clone  git clone --no-local of that repository (objects copied, files checked out)
//   npm-test   `npm test` of a small project: npm starts, node --test runs 3 test files
//
// Options:
//   --n N        openat calls per round and mode (default 20000)
//   --rounds N   rounds (default 5)
//   --out FILE   raw numbers (default bench/results/supervisor.json)
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { die, log, machineInfo, mdTable, parseOptions, saveRaw, scratchDirs } from './lib.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);
const o = { n: 20000, rounds: 5, out: path.join(here, 'results', 'supervisor.json') };
parseOptions(process.argv.slice(2), o, { '--n': { key: 'n', whole: 100 }, '--rounds': { key: 'rounds', whole: 1 }, '--out': { key: 'out', path: true } }, import.meta.url);

const { run } = await import(path.join(root, 'dist/index.js')).catch(() => die('dist/ is missing: run `npm run build` first'));

const PROGRAM = `#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static int cmp(const void *a, const void *b) { long x = *(const long *)a, y = *(const long *)b; return (x > y) - (x < y); }
int main(int argc, char **argv) {
  int n = atoi(argv[1]);
  long *ns = malloc(sizeof(long) * n);
  for (int i = 0; i < n; i++) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int fd = openat(AT_FDCWD, "data.txt", O_RDONLY);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (fd < 0) { perror("openat"); return 1; }
    close(fd);
    ns[i] = (b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec);
  }
  qsort(ns, n, sizeof(long), cmp);
  printf("%ld %ld %ld\\n", ns[n / 2], ns[n * 9 / 10], ns[n * 99 / 100]);
  return 0;
}
`;

const scratch = scratchDirs();
const base = scratch.make('ward-bench-sup-');
const ws = path.join(base, 'ws');
const home = path.join(base, 'home');
mkdirSync(ws);
mkdirSync(home);
writeFileSync(path.join(ws, 'data.txt'), 'data\n');
writeFileSync(path.join(ws, 'openloop.c'), PROGRAM);
execFileSync('cc', ['-O2', '-o', path.join(ws, 'openloop'), path.join(ws, 'openloop.c')]);

const env = { ...process.env, HOME: home };
const isRoot = process.getuid() === 0;
let supervisorInfo = null;
const WORKLOADS = {
  // Nothing to intercept but the exec: the fixed cost of starting the supervisor thread per run.
  true: ['true'],
  python: ['python3', '-c', 'import json, email.mime.text, http.client, decimal, sqlite3'],
  git: ['git', '-C', 'repo', 'status', '--short'],
  // Into the sandbox's private /tmp, so every round clones afresh and the workspace stays as it was.
  'git-clone': ['git', 'clone', '-q', '--no-local', 'repo', '/tmp/clone'],
  'npm-test': ['npm', '--prefix', 'proj', 'test', '--silent'],
};
// A rule of the shape users write: reading secrets takes away writing the sources. Its events
// (read) and revocation (write) make the supervisor watch opens and the unlink/rename family.
const RULES = [{ after: 'read ${WORKSPACE}/secrets/**', revoke: 'write ${WORKSPACE}/src/**' }];
mkdirSync(path.join(ws, 'secrets'));
mkdirSync(path.join(ws, 'src'));
mkdirSync(path.join(ws, 'proj', 'test'), { recursive: true });
writeFileSync(path.join(ws, 'proj', 'package.json'), JSON.stringify({ name: 'proj', version: '1.0.0', type: 'module', scripts: { test: 'node --test' } }));
for (let i = 1; i <= 3; i++) {
  writeFileSync(
    path.join(ws, 'proj', 'test', `t${i}.test.js`),
    `import assert from 'node:assert/strict';\nimport { test } from 'node:test';\nimport { createHash } from 'node:crypto';\ntest('t${i}', () => assert.equal(createHash('sha256').update('${i}').digest('hex').length, 64));\n`,
  );
}
mkdirSync(path.join(ws, 'repo'));
for (let i = 0; i < 200; i++) writeFileSync(path.join(ws, 'repo', `f${i}.txt`), `file ${i}\n`);
execFileSync('sh', ['-c', 'git init -q && git add . && git -c user.name=b -c user.email=b@e.invalid commit -qm init'], { cwd: path.join(ws, 'repo') });

async function timed(mode, argv) {
  const t0 = process.hrtime.bigint();
  const r = await run(mode === 'rules' ? { policy: { extends: ['default'], rules: RULES } } : { profile: 'default' }, argv, {
    workspace: ws,
    env,
    stdin: 'ignore',
    audit: false,
    allowDegraded: !isRoot,
    ...(mode === 'supervised' ? { supervise: { syscalls: ['openat', 'open', 'execve'], decider: { module: path.join(here, 'supervisor-decider.js') } } } : {}),
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.exitCode !== 0) die(`${mode} ${argv[0]}: failed (${r.exitCode}): ${r.stderr.toString().trim()}`);
  if (mode === 'rules' && !r.launch.layers.supervisor) die('rules: the run was not supervised');
  return ms;
}

async function once(mode) {
  const r = await run({ profile: 'default' }, ['./openloop', String(o.n)], {
    workspace: ws,
    env,
    stdin: 'ignore',
    audit: false,
    allowDegraded: !isRoot,
    ...(mode === 'supervised' ? { supervise: { syscalls: ['openat'], decider: { module: path.join(here, 'supervisor-decider.js') } } } : {}),
  });
  if (r.exitCode !== 0) die(`${mode}: the program failed (${r.exitCode}): ${r.stderr.toString().trim()}`);
  if (mode === 'supervised') supervisorInfo = r.launch.layers.supervisor;
  const [p50, p90, p99] = r.stdout.toString().trim().split(' ').map(Number);
  return { p50, p90, p99 };
}

const samples = { static: [], supervised: [] };
for (let i = 0; i < o.rounds; i++) {
  const order = i % 2 === 0 ? ['static', 'supervised'] : ['supervised', 'static'];
  for (const mode of order) samples[mode].push(await once(mode));
  log(`round ${i + 1}/${o.rounds}: static p50 ${samples.static.at(-1).p50} ns, supervised p50 ${samples.supervised.at(-1).p50} ns`);
}
const MODES = ['static', 'supervised', 'rules'];
const work = Object.fromEntries(Object.keys(WORKLOADS).map((w) => [w, { static: [], supervised: [], rules: [] }]));
for (let i = 0; i < o.rounds; i++) {
  for (const [w, argv] of Object.entries(WORKLOADS)) {
    // Rotate the order so no mode always runs first (a cold cache) or last.
    const order = MODES.map((_, k) => MODES[(k + i) % MODES.length]);
    for (const mode of order) work[w][mode].push(await timed(mode, argv));
  }
  log(`work round ${i + 1}/${o.rounds} done`);
}
scratch.removeAll();

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const us = (ns) => (ns / 1000).toFixed(2);
const summary = Object.fromEntries(Object.entries(samples).map(([m, xs]) => [m, { p50: median(xs.map((x) => x.p50)), p90: median(xs.map((x) => x.p90)), p99: median(xs.map((x) => x.p99)) }]));
const added = summary.supervised.p50 - summary.static.p50;
const machine = machineInfo(root, { user: isRoot ? 'root' : `uid ${process.getuid()}` });
saveRaw(o.out, { machine, options: o, samples, summary, work, supervisor: supervisorInfo }, 1);

console.log(`Machine: ${machine.nproc} CPUs (${machine.cpu}), kernel ${machine.kernel}, ${machine.user}, ${machine.date}`);
console.log(`${o.rounds} rounds x ${o.n} openat calls per mode, interleaved; per-call latency measured inside the sandbox.\n`);
console.log(mdTable(['mode', 'p50 (us)', 'p90 (us)', 'p99 (us)'], Object.entries(summary).map(([m, s]) => [m, us(s.p50), us(s.p90), us(s.p99)])).join('\n'));
console.log(`\nAdded per intercepted openat (p50): ${us(added)} us; target <= 10 us: ${summary.supervised.p50 <= 10_000 ? 'met' : 'NOT met'}.\n`);
const slower = (a, b) => `${(((b - a) / a) * 100).toFixed(0)}%`;
console.log(
  mdTable(
    ['real work (whole run, median ms)', 'static', 'supervised (allow all)', 'slower by', 'rules policy', 'slower by'],
    Object.entries(work).map(([w, m]) => {
      const a = median(m.static);
      const b = median(m.supervised);
      const c = median(m.rules);
      return [w, a.toFixed(0), b.toFixed(0), slower(a, b), c.toFixed(0), slower(a, c)];
    }),
  ).join('\n'),
);
