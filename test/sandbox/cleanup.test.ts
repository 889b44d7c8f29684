/**
 * "Leaves nothing behind": after the command ends, is killed by a limit, is
 * aborted, or Ward itself is killed with SIGKILL, no process of the sandbox
 * survives, and no cgroup of the run is left.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { run, start } from '../../src/index.js';
import { readCgroupMounts } from '../../src/sandbox/cgroup.js';
import { eventually, hasCgroup, ROOT, sandboxFixture, wardCgroupsOf } from '../helpers.js';

/** Pids whose command line contains `marker` (the marker is unique per test). */
function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(marker)) found.push(Number(name));
    } catch {
      /* exited meanwhile */
    }
  }
  return found;
}


function readOr(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** A unique sleep length doubles as the marker: `sleep 300.<pid><n>` is found in /proc by its argv. */
const mark = (n: number) => `300.${process.pid}${n}`;
const sleeper = (marker: string) => ['sh', '-c', `sleep ${marker} & sleep ${marker} & wait`];

describe('nothing is left behind', () => {
  it('background children die with the command when the wall clock kills it', async () => {
    const fx = sandboxFixture();
    const marker = mark(1);
    const r = await run({ policy: { extends: ['default'], resources: { wall_time: '1s' } } }, ['sh', '-c', `sleep ${marker} & sleep ${marker}`], {
      workspace: fx.ws,
      env: fx.env,
      stdin: 'ignore',
      allowDegraded: !hasCgroup,
    });
    assert.equal(r.exitCode, 124);
    assert.ok(await eventually(() => processesWith(marker).length === 0), `left: ${processesWith(marker).join(' ')}`);
  });

  it('background children die when the command itself exits', async () => {
    const fx = sandboxFixture();
    const marker = mark(2);
    const r = await run(undefined, ['sh', '-c', `(sleep ${marker} &) ; echo started`], { workspace: fx.ws, env: fx.env, stdin: 'ignore', allowDegraded: !hasCgroup });
    assert.equal(r.exitCode, 0);
    // bwrap's pid 1 goes when the command ends, and the kernel kills the rest of the pid namespace.
    assert.ok(await eventually(() => processesWith(marker).length === 0), `left: ${processesWith(marker).join(' ')}`);
  });

  it('kill() and an AbortSignal end the whole sandbox', async () => {
    const fx = sandboxFixture();
    const marker = mark(3);
    const ac = new AbortController();
    const h = start(undefined, sleeper(marker), { workspace: fx.ws, env: fx.env, stdin: 'ignore', allowDegraded: !hasCgroup, signal: ac.signal });
    assert.ok(await eventually(() => processesWith(marker).length >= 2), 'the sleepers started');
    ac.abort();
    const r = await h.result;
    assert.equal(r.exitCode, 137);
    assert.ok(await eventually(() => processesWith(marker).length === 0), `left: ${processesWith(marker).join(' ')}`);
  });

  it('SIGKILL of Ward itself takes the sandbox down (bwrap --die-with-parent)', async () => {
    const fx = sandboxFixture();
    const marker = mark(4);
    const args = [path.join(ROOT, 'bin/ward.js'), 'run', ...(hasCgroup ? [] : ['--allow-degraded']), '--', ...sleeper(marker)];
    const ward = spawn(process.execPath, args, { cwd: fx.ws, env: fx.env, stdio: 'ignore' });
    assert.ok(await eventually(() => processesWith(marker).length >= 2, 15_000), 'the sleepers started');
    const gone = new Promise((r) => ward.once('exit', r));
    ward.kill('SIGKILL');
    await gone; // reaped: a zombie still answers kill(pid, 0), and the sweep would rightly leave its cgroup
    assert.ok(await eventually(() => processesWith(marker).length === 0), `left: ${processesWith(marker).join(' ')}`);
    // The dead Ward cannot remove its cgroups: its watchdog does, once the sandbox is dead, with no next run needed.
    if (hasCgroup) assert.ok(await eventually(() => wardCgroupsOf(ward.pid!).length === 0, 30_000), `left: ${wardCgroupsOf(ward.pid!).join(' ')}`);
  });

  it('stale cgroups of a dead Ward (its watchdog killed too) are removed by the next run', { skip: !hasCgroup && 'no cgroup here' }, async () => {
    const fx = sandboxFixture();
    // Where this user's runs make their cgroups: beside those of a run that is going on.
    const marker = mark(5);
    const ac = new AbortController();
    const h = start(undefined, sleeper(marker), { workspace: fx.ws, env: fx.env, stdin: 'ignore', signal: ac.signal });
    assert.ok(await eventually(() => processesWith(marker).length >= 2, 15_000), 'the sleepers started');
    const parents = wardCgroupsOf(process.pid).map((d) => path.dirname(d));
    ac.abort();
    assert.equal((await h.result).exitCode, 137);
    assert.ok(parents.length > 0);
    // A Ward that is gone: the pid of a process that has exited and been reaped.
    const dead = spawnSync('true').pid!;
    for (const p of parents) mkdirSync(path.join(p, `ward-${dead}-1`));
    assert.equal(wardCgroupsOf(dead).length, parents.length);
    const next = spawnSync(process.execPath, [path.join(ROOT, 'bin/ward.js'), 'run', '--', 'true'], { cwd: fx.ws, env: fx.env });
    assert.equal(next.status, 0, String(next.stderr));
    assert.deepEqual(wardCgroupsOf(dead), [], 'stale cgroups of a dead Ward are removed by the next run');
  });

  // A hybrid host (v1 controllers, a v2 mount with none): as root, Ward tries a `ward` parent on
  // the v2 mount first; one it made and could not use must not be left there.
  const v2 = readCgroupMounts().find((m) => m.type === 'cgroup2');
  const v2Parent = v2 && path.join(v2.mountpoint, 'ward');
  const v2Unusable = v2 !== undefined && !/\bmemory\b/.test(readOr(path.join(v2.mountpoint, 'cgroup.controllers')));
  it('a cgroup v2 parent Ward made but could not use is removed again', { skip: (process.getuid?.() !== 0 || !hasCgroup || !v2Unusable || existsSync(v2Parent!)) && 'needs root on a host whose v2 mount has no memory controller, and no v2 `ward` cgroup yet' }, async () => {
    const fx = sandboxFixture();
    const r = await run({ policy: { extends: ['default'] } }, ['true'], { workspace: fx.ws, env: fx.env, stdin: 'ignore' });
    assert.equal(r.exitCode, 0);
    assert.equal(existsSync(v2Parent!), false, `${v2Parent} was left behind`);
  });

  it('SIGKILL of Ward at any moment of the launch leaves nothing (the launcher\'s watchdog)', async () => {
    // Killed while bwrap is still setting up, its init has no parent-death signal yet;
    // without the watchdog about one such kill in ten left a running sandbox behind.
    const fx = sandboxFixture();
    const killed: number[] = [];
    for (const [n, threshold] of [1, 1, 2, 2, 3, 3, 4, 4].entries()) {
      const marker = mark(50 + n);
      const args = [path.join(ROOT, 'bin/ward.js'), 'run', ...(hasCgroup ? [] : ['--allow-degraded']), '--', ...sleeper(marker)];
      const ward = spawn(process.execPath, args, { cwd: fx.ws, env: fx.env, stdio: 'ignore' });
      await eventually(() => processesWith(marker).length >= threshold, 15_000);
      const gone = new Promise((r) => ward.once('exit', r));
      ward.kill('SIGKILL');
      await gone;
      assert.ok(await eventually(() => processesWith(marker).length === 0), `kill at ${threshold} processes; left: ${processesWith(marker).join(' ')}`);
      killed.push(ward.pid!);
    }
    // The run's cgroups: removed by the watchdog once it runs (Ward killed before the launcher
    // started it leaves them to the next run's sweep), and by then gone either way.
    const left = () => killed.flatMap((pid) => wardCgroupsOf(pid));
    if (hasCgroup && !(await eventually(() => left().length === 0, 3000))) {
      const next = spawnSync(process.execPath, [path.join(ROOT, 'bin/ward.js'), 'run', '--', 'true'], { cwd: fx.ws, env: fx.env });
      assert.equal(next.status, 0, String(next.stderr));
      assert.deepEqual(left(), [], 'no cgroup of a killed Ward is left');
    }
  });
});
