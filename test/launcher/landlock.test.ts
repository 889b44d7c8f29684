/**
 * ward-launch inner, Landlock: real bwrap, real kernel. Every denial is
 * checked next to the same access without Landlock, so the EACCES is
 * Landlock's and not a mount's.
 */
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, rmSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { innerArgs, type LandlockRule } from '../../src/launcher/launcher.js';
import { bwrap, launcher, run, seccompDeny, seccompDenyLandlock, status, STATUS_FD, SYSTEM_RULES, tempDir } from './helpers.js';

let work: string; // bound into the sandbox; not granted itself
let wdir: string; // granted rw
let rdir: string; // granted r only
let xdir: string; // granted rx

before(() => {
  work = tempDir('ll');
  wdir = join(work, 'rw');
  rdir = join(work, 'r-only');
  xdir = join(work, 'exec');
  mkdirSync(wdir);
  mkdirSync(rdir);
  mkdirSync(xdir);
  for (const dir of [rdir, xdir]) {
    writeFileSync(join(dir, 'hello.sh'), '#!/bin/sh\necho hello-from-script\n');
    chmodSync(join(dir, 'hello.sh'), 0o755);
  }
});
after(() => rmSync(work, { recursive: true, force: true }));

/** Run `sh -c script` in bwrap under the launcher with these grants. */
function inSandbox(script: string, rules: LandlockRule[], mode: 'required' | 'optional' | 'off' = 'required') {
  return run([
    ...bwrap(['--bind', work, work]),
    launcher(),
    ...innerArgs({ landlock: { mode, rules: mode === 'off' ? [] : rules }, statusFd: STATUS_FD }),
    '/bin/sh',
    '-c',
    script,
  ]);
}

const grants = (): LandlockRule[] => [
  ...SYSTEM_RULES,
  { path: wdir, rights: 'rw' },
  { path: rdir, rights: 'r' },
  { path: xdir, rights: 'rx' },
];

describe('landlock required', () => {
  test('reports abi >= 1, applied, rule count, NoNewPrivs 1 and no capabilities', async () => {
    const r = await inSandbox('true', grants());
    assert.equal(r.code, 0, r.stderr);
    const s = status(r);
    assert.ok(s.ok, r.statusText);
    const ll = s.ready!.landlock;
    assert.equal(ll.mode, 'required');
    assert.equal(ll.status, 'applied');
    assert.ok(ll.abi >= 1, `abi ${ll.abi}`);
    assert.equal(ll.rules, grants().length);
    assert.deepEqual(ll.skipped, []);
    assert.equal(ll.scoped, false);
    const ps = s.ready!.proc_status!;
    assert.equal(ps['NoNewPrivs'], '1');
    assert.equal(ps['CapEff'], '0000000000000000');
    assert.equal(ps['CapPrm'], '0000000000000000');
    assert.equal(ps['CapBnd'], '0000000000000000');
  });

  test('reading /etc/hostname is denied with EACCES (and allowed without Landlock)', async () => {
    const denied = await inSandbox('cat /etc/hostname', grants());
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /Permission denied/);
    const control = await inSandbox('cat /etc/hostname', grants(), 'off');
    assert.equal(control.code, 0, control.stderr);
  });

  test('reading under /usr works', async () => {
    const r = await inSandbox('head -c 4 /usr/bin/env | od -c | head -1', grants());
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /E\s+L\s+F/);
  });

  test('writing inside the granted dir works, and a file rule (rw:/dev/null) works', async () => {
    const r = await inSandbox(`echo data > ${wdir}/out && cat ${wdir}/out && echo gone > /dev/null`, grants());
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'data\n');
  });

  test('writing outside the granted dir (a writable tmpfs) is denied', async () => {
    const denied = await inSandbox('echo x > /tmp/outside', grants());
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /Permission denied/);
    const control = await inSandbox('echo x > /tmp/outside', grants(), 'off');
    assert.equal(control.code, 0, control.stderr);
  });

  test('r-only dir: files readable, creating entries denied', async () => {
    const r = await inSandbox(`cat ${rdir}/hello.sh >/dev/null && touch ${rdir}/new`, grants());
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Permission denied/);
  });

  test('grants add up down the tree: a nested r rule cannot narrow an rw parent', async () => {
    const nested = join(wdir, 'nested');
    mkdirSync(nested, { recursive: true });
    const r = await inSandbox(`touch ${nested}/new && echo created`, [...grants(), { path: nested, rights: 'r' }]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'created\n');
  });

  test('executing a script in a dir granted only r fails with EACCES; rx makes it work', async () => {
    const denied = await inSandbox(`${rdir}/hello.sh`, grants());
    assert.equal(denied.code, 126, denied.stderr);
    assert.match(denied.stderr, /Permission denied/);
    const allowed = await inSandbox(`${xdir}/hello.sh`, grants());
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.equal(allowed.stdout, 'hello-from-script\n');
  });

  test('the launcher itself reports an exec denied by Landlock (step exec, EACCES, 126)', async () => {
    const r = await run([
      ...bwrap(['--bind', work, work]),
      launcher(),
      ...innerArgs({ landlock: { mode: 'required', rules: grants() }, statusFd: STATUS_FD }),
      join(rdir, 'hello.sh'),
    ]);
    assert.equal(r.code, 126);
    assert.match(r.stderr, /ward: cannot execute .*hello\.sh: Permission denied/);
    const s = status(r);
    assert.equal(s.ready?.landlock.status, 'applied');
    assert.equal(s.failure?.step, 'exec');
    assert.equal(s.failure?.code, 'EACCES');
    assert.equal(s.ok, false);
  });

  test('a missing rule path is skipped and reported; the rest applies', async () => {
    const missing = join(work, 'does-not-exist');
    const notDir = join(rdir, 'hello.sh', 'below-a-file'); // ENOTDIR: also absent
    const r = await inSandbox('cat /etc/hostname', [
      ...grants(),
      { path: missing, rights: 'r' },
      { path: notDir, rights: 'r' },
    ]);
    assert.match(r.stderr, /Permission denied/);
    const ll = status(r).ready!.landlock;
    assert.equal(ll.status, 'applied');
    assert.deepEqual(ll.skipped, [missing, notDir]);
    assert.equal(ll.rules, grants().length);
  });

  test('--ll-scope sets the ABI 6 scopes when the kernel has them', async () => {
    const r = await run([
      ...bwrap(),
      launcher(),
      ...innerArgs({ landlock: { mode: 'required', rules: SYSTEM_RULES, scope: true }, statusFd: STATUS_FD }),
      '/bin/true',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const ll = status(r).ready!.landlock;
    assert.equal(ll.scoped, ll.abi >= 6);
  });

  test('the signal scope is enforced: no signals to a process outside the domain (without bwrap)', async (t) => {
    // bwrap's pid and network namespaces already hide outside processes and
    // abstract sockets; the scope is the second wall. Shown here on the host.
    const script = 'kill -0 $PPID && echo signalled';
    const args = (scope: boolean) => [
      launcher(),
      ...innerArgs({ landlock: { mode: 'required', rules: SYSTEM_RULES, scope }, statusFd: STATUS_FD }),
      '/bin/sh',
      '-c',
      `exec /bin/sh -c '${script}'`,
    ];
    const probe = await run(args(true));
    if (!status(probe).ready?.landlock.scoped) return t.skip('Landlock ABI < 6: no scopes');
    assert.notEqual(probe.code, 0);
    assert.match(probe.stderr, /Operation not permitted/);
    const control = await run(args(false));
    assert.equal(control.code, 0, control.stderr);
    assert.equal(control.stdout, 'signalled\n');
  });

  test('device right d is accepted on a device file (masked to file rights)', async () => {
    const r = await inSandbox('echo x > /dev/null', [...grants().filter((g) => g.path !== '/dev/null'), { path: '/dev/null', rights: 'rwd' }]);
    assert.equal(r.code, 0, r.stderr);
  });
});

describe('landlock rule failures', () => {
  test('a rule path that exists but cannot be opened (symlink loop: ELOOP) fails step landlock-rule', async () => {
    const loop = join(work, 'loop');
    symlinkSync(loop, loop);
    try {
      const r = await inSandbox('echo ran', [...grants(), { path: loop, rights: 'r' }]);
      assert.equal(r.code, 125);
      assert.equal(r.stdout, '', 'the command must not run');
      const s = status(r);
      assert.equal(s.ready, null);
      assert.equal(s.failure?.stage, 'inner');
      assert.equal(s.failure?.step, 'landlock-rule');
      assert.equal(s.failure?.code, 'ELOOP');
      assert.equal(s.failure?.detail, loop);
    } finally {
      rmSync(loop);
    }
  });

  test('a rule path under an unsearchable dir (EACCES, no capabilities in the sandbox) fails too, even in optional mode', async () => {
    const locked = join(work, 'locked');
    mkdirSync(join(locked, 'inner'), { recursive: true });
    chmodSync(locked, 0o000);
    try {
      const r = await inSandbox('echo ran', [...grants(), { path: join(locked, 'inner'), rights: 'r' }], 'optional');
      assert.equal(r.code, 125);
      assert.equal(r.stdout, '');
      const f = status(r).failure!;
      assert.equal(f.step, 'landlock-rule');
      assert.equal(f.code, 'EACCES');
    } finally {
      chmodSync(locked, 0o755);
    }
  });
});

describe('landlock unavailable (simulated with a seccomp filter failing landlock_create_ruleset)', { skip: process.arch !== 'x64' && 'x86_64 BPF program' }, () => {
  async function withoutLandlock(errno: number, mode: 'required' | 'optional' | 'off') {
    const progFile = join(work, `seccomp-${errno}.bpf`);
    writeFileSync(progFile, seccompDenyLandlock(errno));
    const fd = openSync(progFile, 'r');
    try {
      return await run(
        [
          ...bwrap(['--seccomp', '4']),
          launcher(),
          ...innerArgs({ landlock: { mode, rules: mode === 'off' ? [] : SYSTEM_RULES }, statusFd: STATUS_FD }),
          '/bin/sh',
          '-c',
          'cat /etc/hostname >/dev/null && echo ran',
        ],
        { extraFds: [fd] },
      );
    } finally {
      closeSync(fd);
    }
  }

  test('required + ENOSYS: step landlock-abi with a hint, command not run', async () => {
    const r = await withoutLandlock(38, 'required');
    assert.equal(r.code, 125);
    assert.equal(r.stdout, '');
    const f = status(r).failure!;
    assert.equal(f.step, 'landlock-abi');
    assert.equal(f.code, 'ENOSYS');
    assert.match(f.hint ?? '', /optional/);
  });

  test('required + EOPNOTSUPP: the hint says how to enable it at boot', async () => {
    const r = await withoutLandlock(95, 'required');
    assert.equal(r.code, 125);
    const f = status(r).failure!;
    assert.equal(f.step, 'landlock-abi');
    assert.equal(f.code, 'EOPNOTSUPP');
    assert.match(f.hint ?? '', /lsm=/);
  });

  test('optional: runs, reported unavailable (abi 0, errno), under the seccomp filter', async () => {
    const r = await withoutLandlock(38, 'optional');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'ran\n');
    const s = status(r);
    assert.ok(s.ok);
    assert.equal(s.ready!.landlock.status, 'unavailable');
    assert.equal(s.ready!.landlock.abi, 0);
    assert.equal(s.ready!.landlock.errno, 38);
    assert.equal(s.ready!.proc_status!['Seccomp'], '2');
    assert.equal(s.ready!.proc_status!['Seccomp_filters'], '1');
  });

  test('off: runs, reported off', async () => {
    const r = await withoutLandlock(38, 'off');
    assert.equal(r.code, 0, r.stderr);
    const ll = status(r).ready!.landlock;
    assert.equal(ll.status, 'off');
    assert.equal(ll.mode, 'off');
    assert.equal(ll.rules, 0);
  });
});

describe('every later Landlock step fails loudly (a seccomp filter makes one system call fail)', { skip: process.arch !== 'x64' && 'x86_64 BPF program' }, () => {
  const cases: [string, Buffer, string, string][] = [
    // landlock_create_ruleset with flags 0 creates; with flags 1 it only asks the version.
    ['landlock-ruleset', seccompDeny(444, 12, { index: 2, value: 0 }), 'ENOMEM', 'required'],
    ['landlock-rule', seccompDeny(445, 22), 'EINVAL', 'optional'],
    ['no-new-privs', seccompDeny(157, 1, { index: 0, value: 38 }), 'EPERM', 'required'], // prctl(PR_SET_NO_NEW_PRIVS)
    ['landlock-restrict', seccompDeny(446, 1), 'EPERM', 'optional'],
  ];
  for (const [step, program, code, mode] of cases) {
    test(`${step} (mode ${mode})`, async () => {
      const progFile = join(work, `seccomp-${step}.bpf`);
      writeFileSync(progFile, program);
      const fd = openSync(progFile, 'r');
      try {
        const r = await run(
          [
            ...bwrap(['--seccomp', '4']),
            launcher(),
            ...innerArgs({ landlock: { mode: mode as 'required' | 'optional', rules: SYSTEM_RULES }, statusFd: STATUS_FD }),
            '/bin/echo',
            'ran',
          ],
          { extraFds: [fd] },
        );
        assert.equal(r.code, 125, r.stderr);
        assert.equal(r.stdout, '');
        const f = status(r).failure!;
        assert.equal(f.step, step);
        assert.equal(f.code, code);
      } finally {
        closeSync(fd);
      }
    });
  }
});
