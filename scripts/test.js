#!/usr/bin/env node
// The whole test suite, as `npm test` and .ci/run run it:
//   1. build (tsc to dist/, the C launcher to build/), so the CLI under test is the shipped one;
//   2. every test file with node's test runner, as the current user;
//   3. as root: the sandbox tests again as an unprivileged user (created if missing),
//      once in a cgroup delegated to that user, as users of systemd machines have;
//   4. a closing line "N passed, N failed, N skipped" over all runs.
// WARD_TEST_UNPRIVILEGED=0 skips step 3; WARD_TEST_FILES="a b" runs only those files.
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
process.chdir(root);

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  if (r.status !== 0) {
    console.error(`test: ${cmd} ${args.join(' ')} failed (exit ${r.status})`);
    process.exit(1);
  }
}

// A fresh checkout: install the Node dependencies; name any missing system tool with its fix.
if (!existsSync(path.join(root, 'node_modules/typescript'))) sh('npm', ['ci', '--no-audit', '--no-fund']);
for (const [tool, pkg] of [['bwrap', 'bubblewrap'], ['cc', 'gcc libc6-dev'], ['python3', 'python3']]) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    console.error(`test: ${tool} is missing; install it with \`sudo apt-get install -y ${pkg}\` (or run ./scripts/quickstart.sh, which does)`);
    process.exit(1);
  }
}

console.log('# build');
sh(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json']);
sh(process.execPath, ['scripts/bundle.js']);
sh(process.execPath, ['bin/build-launcher.js']);

function testFiles() {
  if (process.env.WARD_TEST_FILES) return process.env.WARD_TEST_FILES.split(/\s+/).filter(Boolean);
  const out = [];
  for (const dir of readdirSync('test', { withFileTypes: true })) {
    if (!dir.isDirectory()) continue;
    for (const f of readdirSync(path.join('test', dir.name))) if (f.endsWith('.test.ts')) out.push(path.join('test', dir.name, f));
  }
  return out.sort();
}

const totals = { pass: 0, fail: 0, skipped: 0, todo: 0 };
function runTests(label, files, wrap = (cmd, args) => [cmd, args], env = {}) {
  const tap = path.join(os.tmpdir(), `ward-test-${process.pid}-${label}.tap`);
  const nodeArgs = ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...files];
  console.log(`\n# tests: ${label} (${files.length} files)`);
  const [cmd, args] = wrap(process.execPath, nodeArgs);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  let counted = false;
  if (existsSync(tap)) {
    const text = readFileSync(tap, 'utf8');
    for (const key of Object.keys(totals)) {
      const m = new RegExp(`^# ${key} (\\d+)$`, 'm').exec(text);
      if (m) {
        totals[key] += Number(m[1]);
        counted = true;
      }
    }
    rmSync(tap, { force: true });
  }
  if (!counted || (r.status !== 0 && totals.fail === 0)) totals.fail += 1; // a run that crashed is a failure
}

const files = testFiles();
runTests(process.getuid() === 0 ? 'root' : `uid ${process.getuid()}`, files);

// The unprivileged run uses only the sandbox tests (the pure unit tests do not depend on the user);
// verify/real-paths holds ward verify's verdicts to real sandboxes, so it is one of them.
const sandboxFiles = files.filter((f) => /^test\/(sandbox|cli|launcher|doctor|probes|audit|supervisor|pool)\/|^test\/seccomp\/kernel|^test\/verify\/real-paths/.test(f));
// With none selected (WARD_TEST_FILES naming unit tests only) there is nothing to run unprivileged:
// `node --test` with no file would look for tests itself and find this script.
if (process.getuid() === 0 && process.env.WARD_TEST_UNPRIVILEGED !== '0' && sandboxFiles.length > 0) {
  const user = 'wardtest';
  if (spawnSync('id', ['-u', user]).status !== 0) sh('useradd', ['--create-home', '--shell', '/bin/sh', user]);
  const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
  const home = execFileSync('sh', ['-c', `getent passwd ${user} | cut -d: -f6`], { encoding: 'utf8' }).trim();
  // The user's own PATH would not name root's private directories (pyenv shims under /root).
  const userPath = (process.env.PATH ?? '').split(':').filter((d) => d && !d.startsWith('/root')).join(':');
  const env = { HOME: home, USER: user, LOGNAME: user, PATH: userPath, XDG_CACHE_HOME: '', XDG_STATE_HOME: '', XDG_CONFIG_HOME: '', WARD_TEST_AS: 'unprivileged' };

  // a) no cgroup of its own: Ward must refuse resource limits (tests check the refusal) or degrade when asked.
  runTests(`unprivileged ${user}`, sandboxFiles, (cmd, args) => ['runuser', ['-u', user, '--', cmd, ...args]], { ...env, WARD_TEST_CGROUP: 'none' });

  // b) a cgroup subtree delegated to the user, as systemd's user@.service gives on v2 machines.
  const deleg = [];
  for (const ctl of ['memory', 'pids', 'cpu', 'cpuacct']) {
    const base = `/sys/fs/cgroup/${ctl}`;
    if (!existsSync(base)) continue;
    const own = (readFileSync('/proc/self/cgroup', 'utf8').split('\n').find((l) => l.split(':')[1]?.split(',').includes(ctl)) ?? '').split(':')[2] ?? '/';
    const dir = path.join(base, own, `ward-deleg-${uid}`);
    try {
      mkdirSync(dir, { recursive: true });
      for (const f of ['', 'cgroup.procs', 'tasks']) if (existsSync(path.join(dir, f))) chownSync(path.join(dir, f), uid, gid);
      deleg.push(dir);
    } catch {
      /* controller not usable here */
    }
  }
  if (deleg.length > 0) {
    const join = deleg.map((d) => `echo $$ > ${d}/cgroup.procs`).join(' && ');
    runTests(`unprivileged ${user}, delegated cgroup`, sandboxFiles, (cmd, args) => ['sh', ['-c', `${join} && exec runuser -u ${user} -- "$@"`, 'sh', cmd, ...args]], { ...env, WARD_TEST_CGROUP: 'delegated' });
    for (const d of deleg) {
      try {
        rmdirSync(d);
      } catch (e) {
        console.error(`test: could not remove ${d}: ${e.message}`);
      }
    }
  }
}

console.log(`\n${totals.pass} passed, ${totals.fail} failed, ${totals.skipped} skipped`);
process.exit(totals.fail > 0 ? 1 : 0);
