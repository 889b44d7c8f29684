/** ward-launch outer: join cgroups before bwrap, then exec it. */
import assert from 'node:assert/strict';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { innerArgs, outerArgs } from '../../src/launcher/launcher.js';
import { bwrap, launcher, run, status, STATUS_FD } from './helpers.js';

// A real cgroup v1 pids hierarchy (this project's machines); skipped elsewhere.
const PIDS_ROOT = '/sys/fs/cgroup/pids';
const cgroup = join(PIDS_ROOT, `ward-test-${process.pid}`);
let cgroupReason: string | null = null;

before(() => {
  try {
    accessSync(PIDS_ROOT, constants.W_OK);
    mkdirSync(cgroup);
  } catch (err) {
    cgroupReason = `cannot create a cgroup under ${PIDS_ROOT}: ${(err as Error).message}`;
  }
});

after(async () => {
  if (!existsSync(cgroup)) return;
  // rmdir fails with EBUSY while a (dying) task is still in it: retry briefly.
  for (let i = 0; i < 50; i++) {
    try {
      rmdirSync(cgroup);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  rmdirSync(cgroup);
});

const procsFile = () => join(cgroup, 'cgroup.procs');

describe('outer: cgroup join (cgroup v1 pids)', () => {
  test('the command runs in the cgroup: /proc/self/cgroup shows it', async (t) => {
    if (cgroupReason) return t.skip(cgroupReason);
    const r = await run([launcher(), ...outerArgs({ cgroupProcs: [procsFile()], statusFd: STATUS_FD }), '/bin/cat', '/proc/self/cgroup']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.statusText, '', 'outer writes nothing on success');
    assert.match(r.stdout, new RegExp(`^\\d+:pids:/ward-test-${process.pid}$`, 'm'));
  });

  test('the tasks file (v1) works the same way', async (t) => {
    if (cgroupReason) return t.skip(cgroupReason);
    const r = await run([launcher(), ...outerArgs({ cgroupProcs: [join(cgroup, 'tasks')], statusFd: STATUS_FD }), '/bin/cat', '/proc/self/cgroup']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^\\d+:pids:/ward-test-${process.pid}$`, 'm'));
  });

  test('full chain outer -> bwrap -> inner: the sandbox is in the cgroup, which is its cgroup namespace root', async (t) => {
    if (cgroupReason) return t.skip(cgroupReason);
    // pids.max caps the whole sandbox (bwrap's two processes, the shell, its children).
    writeFileSync(join(cgroup, 'pids.max'), '8');
    try {
      const r = await run([
        launcher(),
        ...outerArgs({ cgroupProcs: [procsFile()], statusFd: STATUS_FD }),
        ...bwrap(),
        launcher(),
        ...innerArgs({ landlock: { mode: 'off', rules: [] }, statusFd: STATUS_FD }),
        '/bin/sh',
        '-c',
        // Inside bwrap's cgroup namespace the cgroup we joined is "/".
        'cat /proc/self/cgroup; for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & done 2>&1; echo done',
      ]);
      assert.match(r.stdout, /^\d+:pids:\/$/m);
      assert.ok(status(r).ok, r.statusText);
      assert.match(r.stdout + r.stderr, /Cannot fork|Resource temporarily unavailable/, 'pids.max applies inside');
      assert.equal(readFileSync(join(cgroup, 'pids.max'), 'utf8').trim(), '8');
    } finally {
      writeFileSync(join(cgroup, 'pids.max'), 'max');
    }
  });

  test('a cgroup file that does not exist fails step cgroup-join (ENOENT), program not run', async () => {
    const missing = '/sys/fs/cgroup/pids/ward-no-such-cgroup/cgroup.procs';
    const r = await run([launcher(), ...outerArgs({ cgroupProcs: [missing], statusFd: STATUS_FD }), '/bin/echo', 'ran']);
    assert.equal(r.code, 125);
    assert.equal(r.stdout, '');
    const f = status(r).failure!;
    assert.equal(f.stage, 'outer');
    assert.equal(f.step, 'cgroup-join');
    assert.equal(f.code, 'ENOENT');
    assert.equal(f.detail, missing);
  });

  test('a write error (here /dev/full: ENOSPC) fails step cgroup-join', async () => {
    // Opening works, the write fails: the path a cgroup refusing the pid takes.
    const r = await run([launcher(), ...outerArgs({ cgroupProcs: ['/dev/full'], statusFd: STATUS_FD }), '/bin/echo', 'ran']);
    assert.equal(r.code, 125);
    assert.equal(r.stdout, '');
    const f = status(r).failure!;
    assert.equal(f.step, 'cgroup-join');
    assert.equal(f.code, 'ENOSPC');
    assert.equal(f.detail, '/dev/full');
  });

  test('a program that does not exist fails step exec (ENOENT), exit 125', async () => {
    const r = await run([launcher(), ...outerArgs({ cgroupProcs: [], statusFd: STATUS_FD }), '/nonexistent/bwrap']);
    assert.equal(r.code, 125);
    const f = status(r).failure!;
    assert.equal(f.stage, 'outer');
    assert.equal(f.step, 'exec');
    assert.equal(f.code, 'ENOENT');
    assert.equal(f.detail, '/nonexistent/bwrap');
  });

  test('without a status fd, failures are reported on stderr', async () => {
    const r = await run([launcher(), 'outer', '--', '/nonexistent/bwrap']);
    assert.equal(r.code, 125);
    assert.equal(r.statusText, '');
    assert.match(r.stderr, /ward-launch outer: exec: No such file or directory \(\/nonexistent\/bwrap\)/);
  });
});
