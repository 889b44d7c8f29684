/** ward-launch inner, resource limits: set inside bwrap's user namespace. */
import assert from 'node:assert/strict';
import { existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { innerArgs, type InnerOptions } from '../../src/launcher/launcher.js';
import { bwrap, launcher, publicLauncher, run, status, STATUS_FD, SYSTEM_RULES, tempDir } from './helpers.js';

let work: string;
before(() => {
  work = tempDir('rlimit');
});
after(() => rmSync(work, { recursive: true, force: true }));

/** As another user (`runAs`) the launcher copy is bound in and the (0700) work dir is not. */
function inSandbox(script: string, rlimits: InnerOptions['rlimits'], launcherPath = launcher(), runAs?: number) {
  const binds = runAs === undefined ? ['--bind', work, work] : ['--ro-bind', launcherPath, launcherPath];
  return run(
    [
      ...bwrap(binds),
      launcherPath,
      ...innerArgs({ rlimits, landlock: { mode: 'off', rules: [] }, statusFd: STATUS_FD }),
      '/bin/sh',
      '-c',
      script,
    ],
    runAs === undefined ? {} : { uid: runAs, gid: runAs },
  );
}

describe('rlimits', () => {
  test('nofile=16: ulimit -n prints 16, and the status reports [16,16]', async () => {
    const r = await inSandbox('ulimit -n', { nofile: [16, 16] });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '16');
    assert.deepEqual(status(r).ready!.rlimits['nofile'], [16, 16]);
  });

  test('limits are set last: nofile=4 does not starve the launcher\'s own Landlock steps', async () => {
    const r = await run([
      ...bwrap(),
      launcher(),
      ...innerArgs({ rlimits: { nofile: [4, 4] }, landlock: { mode: 'required', rules: SYSTEM_RULES }, statusFd: STATUS_FD }),
      '/bin/sh',
      '-c',
      'ulimit -n',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '4\n');
    assert.equal(status(r).ready!.landlock.status, 'applied');
  });

  test('soft below hard, and unlimited, are reported as set', async () => {
    const r = await inSandbox('ulimit -S -c; ulimit -H -c', { core: [0, 'unlimited'], cpu: [30, 60] });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '0\nunlimited\n');
    const rl = status(r).ready!.rlimits;
    assert.deepEqual(rl['core'], [0, 'unlimited']);
    assert.deepEqual(rl['cpu'], [30, 60]);
    // Every known limit is reported, set or not.
    assert.deepEqual(Object.keys(rl).sort(), ['as', 'core', 'cpu', 'data', 'fsize', 'memlock', 'msgqueue', 'nofile', 'nproc', 'sigpending', 'stack']);
  });

  test('fsize=1000000: writing 2000000 bytes is stopped by SIGXFSZ at the limit', async () => {
    const file = join(work, 'big');
    const r = await inSandbox(`head -c 2000000 /dev/zero > ${file}; echo "status $?"`, { fsize: [1_000_000, 1_000_000] });
    assert.equal(r.code, 0, r.stderr);
    // sh reports a child killed by signal N as 128+N; SIGXFSZ is 25.
    assert.equal(r.stdout.trim(), 'status 153');
    assert.equal(statSync(file).size, 1_000_000);
  });

  test('nproc=20 inside the user namespace: forking 50 sleeps hits EAGAIN', async (t) => {
    // RLIMIT_NPROC is not enforced for the global root user (INIT_USER), even
    // inside a user namespace, nor with CAP_SYS_RESOURCE/CAP_SYS_ADMIN. So as
    // root we run bwrap as nobody (an unprivileged user with its own user
    // namespace), which is the case Ward cares about.
    if (!existsSync('/usr/bin/perl')) return t.skip('needs perl to see fork errno');
    const asRoot = process.getuid?.() === 0;
    let path = launcher();
    let dir: string | undefined;
    if (asRoot) [dir, path] = publicLauncher();
    try {
      // perl (not sh) because dash says only "Cannot fork" without the errno.
      const script =
        "perl -e 'for my $i (1..50) { my $p = fork; if (!defined $p) { print qq(fork $i: $!\\n); exit 3 } " +
        "if (!$p) { sleep 30; exit 0 } } print qq(all forked\\n)'";
      const r = await inSandbox(script, { nproc: [20, 20] }, path, asRoot ? 65534 : undefined);
      if (r.code === 1 && /bwrap: /.test(r.stderr)) return t.skip(`bwrap as an unprivileged user failed: ${r.stderr.trim()}`);
      assert.equal(r.code, 3, r.stderr + r.stdout);
      assert.match(r.stdout, /^fork \d+: Resource temporarily unavailable$/m);
      const n = Number(/fork (\d+)/.exec(r.stdout)?.[1]);
      assert.ok(n > 1 && n <= 20, `failed at fork ${n}`);
      assert.deepEqual(status(r).ready!.rlimits['nproc'], [20, 20]);
    } finally {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });

  test('as root, RLIMIT_NPROC is set but not enforced (documented kernel behaviour)', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('only meaningful as root');
    if (!existsSync('/usr/bin/perl')) return t.skip('needs perl');
    const script = "perl -e 'for (1..30) { my $p = fork // die qq($!\\n); if (!$p) { sleep 30; exit 0 } } print qq(all forked\\n)'";
    const r = await inSandbox(script, { nproc: [5, 5] });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'all forked\n');
  });

  test('a limit the kernel refuses (soft > hard) fails step rlimit, command not run', async () => {
    const r = await inSandbox('echo ran', { nofile: [10, 5] });
    assert.equal(r.code, 125);
    assert.equal(r.stdout, '');
    const f = status(r).failure!;
    assert.equal(f.step, 'rlimit');
    assert.equal(f.code, 'EINVAL');
    assert.equal(f.detail, 'nofile=10:5');
  });

  test('a hard nofile limit above fs.nr_open (unlimited) fails with EPERM', async () => {
    const r = await inSandbox('echo ran', { nofile: ['unlimited', 'unlimited'] });
    assert.equal(r.code, 125);
    const f = status(r).failure!;
    assert.equal(f.step, 'rlimit');
    assert.equal(f.code, 'EPERM');
  });
});
