#!/usr/bin/env node
// Supervised mode's cost per intercepted syscall: `npm run build && node bench/supervisor.js`.
//
// A small C program opens and closes one allowed file N times in a row and times each
// openat() with clock_gettime (CLOCK_MONOTONIC) around the call; it prints the median,
// p90 and p99 of its own samples. It runs inside Ward's sandbox (default profile) in five
// modes, interleaved round by round so a noisy phase of the machine hits all alike:
//   static      read-only opens; the kernel decides (mounts, Landlock, seccomp); no supervisor
//   supervised  openat is notified to Ward's supervisor thread, which reads the path,
//               opens the file itself from the sandbox's root, checks the static policy,
//               calls decide() (bench/supervisor-decider.js: allow all) and injects the fd
//   static-w    write opens (O_WRONLY|O_APPEND), no supervisor
//   rules-blind write opens under a rule that revokes writes after a connection (WRITE_RULES),
//               before it fires: the rule engine says any file is allowed and no event, so
//               the supervisor answers CONTINUE without reading the path ("decided blind")
//   rules-path  write opens under a rule waiting for a write (WAITING_RULES): each one decided
//               by the rule engine on the opened file's path, the fd injected
// Each supervised mode checks the supervisor's own count of blind answers (all, or none).
// The report gives, per mode, the median over rounds of each round's p50 (and p90, p99),
// and the differences: the cost the supervisor adds to one intercepted call.
//
// Then real work, wall time of the whole run() (launch to exit), median over the rounds, in
// four modes interleaved round by round:
//   static      no supervisor
//   supervised  openat, open and execve notified, an allow-all decide(): the mechanism's cost
//   rules       what `ward run` does with a policy that has dynamic rules (RULES below): only
//               the syscalls those rules need are notified, decided by the real rule engine
//   write-rules the same with WRITE_RULES (no read is notified; writes decided blind)
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
  int flags = argc > 2 && argv[2][0] == 'w' ? O_WRONLY | O_APPEND : O_RDONLY;
  long *ns = malloc(sizeof(long) * n);
  for (int i = 0; i < n; i++) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int fd = openat(AT_FDCWD, "data.txt", flags);
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
// The issue's other example: after talking to an untrusted host, no more writes to the sources.
// Its event is the broker's; until it fires, every write is decided blind and reads are not
// notified at all.
const WRITE_RULES = [{ after: 'connect untrusted.example:443', revoke: 'write ${WORKSPACE}/src/**' }];
// A rule waiting for a write: every write open is decided on its path (an injected fd).
const WAITING_RULES = [{ after: 'write ${WORKSPACE}/trigger/**', revoke: 'network' }];
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
  const r = await run(mode === 'rules' ? { policy: { extends: ['default'], rules: RULES } } : mode === 'write-rules' ? { policy: { extends: ['default'], rules: WRITE_RULES } } : { profile: 'default' }, argv, {
    workspace: ws,
    env,
    stdin: 'ignore',
    audit: false,
    allowDegraded: !isRoot,
    ...(mode === 'supervised' ? { supervise: { syscalls: ['openat', 'open', 'execve'], decider: { module: path.join(here, 'supervisor-decider.js') } } } : {}),
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.exitCode !== 0) die(`${mode} ${argv[0]}: failed (${r.exitCode}): ${r.stderr.toString().trim()}`);
  if ((mode === 'rules' || mode === 'write-rules') && !r.launch.layers.supervisor) die(`${mode}: the run was not supervised`);
  return ms;
}

/**
 * Per-call modes: [policy or profile, extra run options, open flags ('r' or 'w'), blind calls expected].
 *   static, supervised      read-only opens: the kernel alone; every open injected (allow all)
 *   static-w                write opens (O_WRONLY|O_APPEND), the kernel alone
 *   rules-blind             write opens under WRITE_RULES before they fire: decided blind
 *   rules-path              write opens under WAITING_RULES: decided on the path, fd injected
 */
const CALL_MODES = {
  static: [{ profile: 'default' }, {}, 'r', false],
  supervised: [{ profile: 'default' }, { supervise: { syscalls: ['openat'], decider: { module: path.join(here, 'supervisor-decider.js') } } }, 'r', false],
  'static-w': [{ profile: 'default' }, {}, 'w', false],
  'rules-blind': [{ policy: { extends: ['default'], rules: WRITE_RULES } }, {}, 'w', true],
  'rules-path': [{ policy: { extends: ['default'], rules: WAITING_RULES } }, {}, 'w', false],
};

async function once(mode) {
  const [what, extra, flags, blind] = CALL_MODES[mode];
  const r = await run(what, ['./openloop', String(o.n), flags], { workspace: ws, env, stdin: 'ignore', audit: false, allowDegraded: !isRoot, ...extra });
  if (r.exitCode !== 0) die(`${mode}: the program failed (${r.exitCode}): ${r.stderr.toString().trim()}`);
  if (mode === 'supervised') supervisorInfo = r.launch.layers.supervisor;
  // The mode measures what it says: blind answers for every open, or none.
  if (mode !== 'static' && mode !== 'static-w') {
    const s = r.supervisor;
    if (!s || (blind ? s.blind < o.n : s.blind !== 0)) die(`${mode}: ${s ? `${s.blind} of ${s.notifications} notifications blind` : 'not supervised'}, expected ${blind ? 'every open' : 'none'}`);
  }
  const [p50, p90, p99] = r.stdout.toString().trim().split(' ').map(Number);
  return { p50, p90, p99 };
}

const samples = Object.fromEntries(Object.keys(CALL_MODES).map((m) => [m, []]));
for (let i = 0; i < o.rounds; i++) {
  const names = Object.keys(CALL_MODES);
  for (const mode of names.map((_, k) => names[(k + i) % names.length])) samples[mode].push(await once(mode));
  log(`round ${i + 1}/${o.rounds}: ${names.map((m) => `${m} p50 ${samples[m].at(-1).p50} ns`).join(', ')}`);
}
const MODES = ['static', 'supervised', 'rules', 'write-rules'];
const work = Object.fromEntries(Object.keys(WORKLOADS).map((w) => [w, { static: [], supervised: [], rules: [], 'write-rules': [] }]));
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
console.log(`\nAdded per intercepted openat (p50): ${us(added)} us injected (allow all); ${us(summary['rules-blind'].p50 - summary['static-w'].p50)} us decided blind; ${us(summary['rules-path'].p50 - summary['static-w'].p50)} us decided on the path (rules).`);
console.log(`Target <= 10 us p50: injected ${summary.supervised.p50 <= 10_000 ? 'met' : 'NOT met'}; blind ${summary['rules-blind'].p50 <= 10_000 ? 'met' : 'NOT met'}.\n`);
const slower = (a, b) => `${(((b - a) / a) * 100).toFixed(0)}%`;
console.log(
  mdTable(
    ['real work (whole run, median ms)', 'static', 'supervised (allow all)', 'slower by', 'rules policy', 'slower by', 'write rules policy', 'slower by'],
    Object.entries(work).map(([w, m]) => {
      const a = median(m.static);
      const b = median(m.supervised);
      const c = median(m.rules);
      const d = median(m['write-rules']);
      return [w, a.toFixed(0), b.toFixed(0), slower(a, b), c.toFixed(0), slower(a, c), d.toFixed(0), slower(a, d)];
    }),
  ).join('\n'),
);
