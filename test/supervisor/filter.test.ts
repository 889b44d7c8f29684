// The notify filter, run through Ward's BPF interpreter for every syscall number, and the
// static-policy check the supervisor applies to what it opens. Pure: no sandbox needed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, I386_SYSCALLS, X86_64_SYSCALLS, compileSeccomp, runFilter } from '../../src/seccomp/index.js';
import { X32_SYSCALL_BIT } from '../../src/seccomp/abi.js';
import { SUPERVISABLE, compileNotifyFilter } from '../../src/supervisor/filter.js';
import { staticAllows } from '../../src/supervisor/static.js';

const nameOf = new Map(Object.entries(X86_64_SYSCALLS).map(([n, nr]) => [nr, n]));

/** What the kernel does with two filters: the most restrictive action wins (lower value, signed). */
function combined(a: number, b: number): number {
  return (a | 0) < (b | 0) ? a : b;
}

describe('the notify filter', () => {
  it('notifies exactly the asked syscalls (plus exec, for bookkeeping) and allows every other x86_64 number', () => {
    const asked = ['openat', 'open', 'creat'];
    const f = compileNotifyFilter(asked);
    const notified = new Set([...asked, 'execve', 'execveat']);
    for (let nr = 0; nr < 1024; nr++) {
      const v = runFilter(f.program, { nr, arch: AUDIT_ARCH_X86_64, args: [1n, 2n, 3n] });
      const name = nameOf.get(nr);
      assert.equal(v.action, name !== undefined && notified.has(name) ? 'user_notif' : 'allow', `nr ${nr} (${name ?? 'unnamed'})`);
    }
    assert.deepEqual(new Set(f.names.values()), notified);
  });

  it('the blind syscalls (connect, unlink, rename family) are notified when asked for', () => {
    const f = compileNotifyFilter(['connect', 'unlinkat', 'renameat2']);
    for (const name of ['connect', 'unlinkat', 'renameat2']) assert.equal(runFilter(f.program, { nr: X86_64_SYSCALLS[name]!, arch: AUDIT_ARCH_X86_64 }).action, 'user_notif', name);
    assert.equal(runFilter(f.program, { nr: X86_64_SYSCALLS['unlink']!, arch: AUDIT_ARCH_X86_64 }).action, 'allow', 'only what was asked for');
  });

  it('checks the architecture first: i386, x32 and unknown ABIs are killed, not passed unsupervised', () => {
    const f = compileNotifyFilter(['openat']);
    assert.equal(runFilter(f.program, { nr: I386_SYSCALLS['open']!, arch: AUDIT_ARCH_I386 }).action, 'kill_process');
    assert.equal(runFilter(f.program, { nr: X86_64_SYSCALLS['openat']! | X32_SYSCALL_BIT, arch: AUDIT_ARCH_X86_64 }).action, 'kill_process');
    assert.equal(runFilter(f.program, { nr: 257, arch: 0xc00000b7 /* aarch64 */ }).action, 'kill_process');
  });

  it('never lifts a static denial: with both filters the static errno wins over the notification', () => {
    const stat = compileSeccomp();
    const f = compileNotifyFilter([...SUPERVISABLE]);
    // openat2 is ENOSYS in the static filter (its mode is in memory): the supervisor never sees it.
    const nr = X86_64_SYSCALLS['openat2']!;
    const s = runFilter(stat.program, { nr, arch: AUDIT_ARCH_X86_64 });
    const n = runFilter(f.program, { nr, arch: AUDIT_ARCH_X86_64 });
    assert.equal(n.action, 'user_notif');
    assert.equal(s.action, 'errno');
    assert.equal(combined(s.raw, n.raw), s.raw);
    // A set-id mode in openat's flags is refused statically too; an ordinary openat is notified.
    const setuid = runFilter(stat.program, { nr: X86_64_SYSCALLS['openat']!, arch: AUDIT_ARCH_X86_64, args: [0n, 0n, 0o100n, 0o4755n] });
    const plain = runFilter(stat.program, { nr: X86_64_SYSCALLS['openat']!, arch: AUDIT_ARCH_X86_64, args: [0n, 0n, 0n, 0n] });
    const note = runFilter(f.program, { nr: X86_64_SYSCALLS['openat']!, arch: AUDIT_ARCH_X86_64 });
    assert.equal(combined(setuid.raw, note.raw), setuid.raw);
    assert.equal(combined(plain.raw, note.raw), note.raw);
  });

  it('argument conditions (append-only files): open/openat only when the flags could write, fcntl only for F_SETFL', () => {
    const f = compileNotifyFilter(['openat2', 'ftruncate'], { writeOpens: true, setfl: true });
    const at = (name: string, args: bigint[]) => runFilter(f.program, { nr: X86_64_SYSCALLS[name]!, arch: AUDIT_ARCH_X86_64, args }).action;
    const O = { RDONLY: 0n, WRONLY: 1n, RDWR: 2n, CREAT: 0o100n, TRUNC: 0o1000n, APPEND: 0o2000n, CLOEXEC: 0o2000000n, DIRECTORY: 0o200000n, HIGH: 1n << 32n };
    // open(path, flags): flags is argument 1; openat(dirfd, path, flags): argument 2.
    assert.equal(at('open', [0n, O.RDONLY | O.CLOEXEC]), 'allow', 'a read-only open stays in the kernel');
    assert.equal(at('openat', [0n, 0n, O.RDONLY | O.DIRECTORY]), 'allow');
    for (const fl of [O.WRONLY, O.RDWR, O.CREAT, O.TRUNC, O.WRONLY | O.APPEND]) {
      assert.equal(at('open', [0n, fl]), 'user_notif', `open flags ${fl.toString(8)}`);
      assert.equal(at('openat', [0n, 0n, fl]), 'user_notif', `openat flags ${fl.toString(8)}`);
    }
    // Only the low 32 bits are flags (an int): garbage above them decides nothing.
    assert.equal(at('openat', [0n, 0n, O.HIGH]), 'allow');
    assert.equal(at('openat', [0n, 0n, O.HIGH | O.WRONLY]), 'user_notif');
    assert.equal(at('fcntl', [3n, 4n /* F_SETFL */, 0n]), 'user_notif');
    for (const cmd of [0n, 1n, 2n, 3n, 1030n]) assert.equal(at('fcntl', [3n, cmd, 0n]), 'allow', `fcntl cmd ${cmd}`);
    assert.equal(at('openat2', [0n, 0n, 0n, 24n]), 'user_notif', 'openat2 flags are in memory: always');
    assert.equal(at('ftruncate', [3n, 0n]), 'user_notif');
    assert.equal(at('read', [3n, 0n, 0n]), 'allow');
    // Asked unconditionally (a rule on reads), the condition adds nothing: every open is notified.
    const all = compileNotifyFilter(['openat'], { writeOpens: true });
    assert.equal(runFilter(all.program, { nr: X86_64_SYSCALLS['openat']!, arch: AUDIT_ARCH_X86_64, args: [0n, 0n, 0n] }).action, 'user_notif');
  });

  it('refuses syscalls it cannot decide safely, and unknown names, with the fix', () => {
    assert.throws(() => compileNotifyFilter(['sendto']), /'sendto' cannot be supervised .*supervise only open, openat, openat2, creat, execve, execveat, connect/);
    assert.throws(() => compileNotifyFilter(['mprotect']), /cannot be supervised/);
    assert.throws(() => compileNotifyFilter(['frobnicate']), /'frobnicate' is not a syscall the supervisor knows/);
    assert.throws(() => compileNotifyFilter([]), /no syscalls given/);
  });
});

describe("the supervisor's static-policy check (Landlock's rules, applied to what it opens)", () => {
  const rules = [
    { path: '/usr', rights: 'rx' },
    { path: '/work/ws', rights: 'rwx' },
    { path: '/etc/resolv.conf', rights: 'r' },
    { path: '/tmp', rights: 'rw' },
  ];
  it('grants what a rule on the path or an ancestor grants, and nothing else', () => {
    assert.equal(staticAllows(rules, '/usr/bin/env', 'read'), true);
    assert.equal(staticAllows(rules, '/usr/bin/env', 'write'), false);
    assert.equal(staticAllows(rules, '/usr', 'read'), true);
    assert.equal(staticAllows(rules, '/usrx/file', 'read'), false, 'a prefix of the name is not an ancestor');
    assert.equal(staticAllows(rules, '/work/ws/a/b', 'read-write'), true);
    assert.equal(staticAllows(rules, '/etc/resolv.conf', 'read'), true);
    assert.equal(staticAllows(rules, '/etc/passwd', 'read'), false);
    assert.equal(staticAllows(rules, '/', 'read'), false);
    assert.equal(staticAllows(rules, '/proc/kcore', 'read'), false);
  });
  it('O_PATH opens are not Landlock-checked, and without Landlock the mounts are the whole policy', () => {
    assert.equal(staticAllows(rules, '/etc/passwd', 'path'), true);
    assert.equal(staticAllows(null, '/etc/passwd', 'read-write'), true);
  });
  it('rights add up down the tree, as in Landlock', () => {
    const r = [
      { path: '/a', rights: 'r' },
      { path: '/a/b', rights: 'w' },
    ];
    assert.equal(staticAllows(r, '/a/b/c', 'read-write'), true);
    assert.equal(staticAllows(r, '/a/c', 'read-write'), false);
  });
});
