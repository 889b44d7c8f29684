/**
 * Append-only files (`filesystem.append`) enforced by the supervisor in real sandboxes. Each
 * way a program could rewrite, shorten, replace or remove an append-only file is an attack that
 * must fail, while appending (and reading) works. The file's bytes are checked on the host
 * afterwards: whatever the program printed, the original content must still be there, intact,
 * at the start.
 *
 * Two places: log.txt inside the workspace, which `default` grants write on (Landlock then
 * allows writes along the path, so only the supervisor and the file's own bind mount stand in
 * the way), and ext/audit.log outside every write grant (Landlock gives the sandbox read only).
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { compile, run } from '../../src/index.js';
import { launch } from '../../src/sandbox/launch.js';
import type { RunRecord } from '../../src/sandbox/launch.js';
import { fixtureRunOptions, sandboxFixture, which } from '../helpers.js';

const skip = !which('python3') && 'python3 missing';

/** Python: `attempt(name, f)` prints "name ok" or "name refused errno=N" (and never stops the script). */
const PRELUDE = `
import os, sys, mmap, ctypes, fcntl
def attempt(name, f):
    try:
        f()
        print(name, 'ok')
    except OSError as e:
        print(name, 'refused errno=%s' % e.errno)
    sys.stdout.flush()
libc = ctypes.CDLL(None, use_errno=True)
def sys_call(nr, *a):
    r = libc.syscall(nr, *a)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r
`;

function setup() {
  const fx = sandboxFixture();
  const ext = path.join(path.dirname(fx.ws), 'ext');
  mkdirSync(ext);
  mkdirSync(path.join(fx.ws, 'logs'));
  writeFileSync(path.join(fx.ws, 'log.txt'), 'ORIGINAL\n');
  writeFileSync(path.join(fx.ws, 'logs', 'old.log'), 'OLD\n');
  writeFileSync(path.join(fx.ws, 'other.txt'), 'other\n');
  writeFileSync(path.join(ext, 'audit.log'), 'AUDIT\n');
  const records: RunRecord[] = [];
  const policy = {
    extends: ['default'],
    filesystem: { append: ['${WORKSPACE}/log.txt', '${WORKSPACE}/logs', path.join(ext, 'audit.log')] },
  };
  const options = fixtureRunOptions(fx, records);
  const py = async (code: string) => {
    const r = await run({ policy }, ['python3', '-c', PRELUDE + code], options);
    return { ...r, out: r.stdout.toString() + r.stderr.toString() };
  };
  return { ...fx, ext, records, py };
}

const lines = (out: string) => Object.fromEntries(out.split('\n').filter((l) => / (ok|refused errno=\d+)$/.test(l)).map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)]));

describe('append-only files (filesystem.append) in a real sandbox', { skip }, () => {
  it('appending and reading work; every rewrite, truncation, replacement and removal fails, and the bytes stay', async () => {
    const t = setup();
    const r = await t.py(`
O = os.O_WRONLY | os.O_APPEND
def append(p, s):
    with open(p, 'a') as f: f.write(s)
attempt('append', lambda: append('log.txt', 'A1\\n'))
attempt('append-ext', lambda: append('${t.ext}/audit.log', 'E1\\n'))
attempt('read', lambda: open('log.txt').read())
attempt('open-w', lambda: open('log.txt', 'w'))
attempt('open-w-ext', lambda: open('${t.ext}/audit.log', 'w'))
attempt('open-rplus', lambda: open('log.txt', 'r+'))
attempt('open-aplus', lambda: open('log.txt', 'a+'))
attempt('wronly', lambda: os.open('log.txt', os.O_WRONLY))
attempt('append-trunc', lambda: os.open('log.txt', O | os.O_TRUNC))
attempt('creat', lambda: sys_call(85, b'log.txt', 0o644))
# openat2(AT_FDCWD, "log.txt", {O_WRONLY|O_TRUNC}) : the flags are in memory
how = ctypes.create_string_buffer(24); ctypes.memmove(how, (ctypes.c_uint64 * 3)(os.O_WRONLY | os.O_TRUNC, 0, 0), 24)
attempt('openat2-trunc', lambda: os.close(sys_call(437, -100, b'log.txt', how, 24)))
fd = os.open('log.txt', O)
attempt('setfl-clear-append', lambda: fcntl.fcntl(fd, fcntl.F_SETFL, 0))
attempt('setfl-keep-append', lambda: fcntl.fcntl(fd, fcntl.F_SETFL, os.O_APPEND | os.O_NONBLOCK))
os.lseek(fd, 0, 0)
attempt('write-after-seek', lambda: os.write(fd, b'A2\\n'))
attempt('pwrite', lambda: os.pwrite(fd, b'A3\\n', 0))
attempt('pwritev2-noappend', lambda: os.pwritev(fd, [b'XXXXXXXX'], 0, 0x20))
attempt('ftruncate', lambda: os.ftruncate(fd, 0))
attempt('fallocate-punch', lambda: sys_call(285, fd, 3, ctypes.c_int64(0), ctypes.c_int64(4)))
attempt('posix-fallocate', lambda: os.posix_fallocate(fd, 0, 1 << 20))
attempt('truncate', lambda: os.truncate('log.txt', 0))
attempt('truncate-ext', lambda: os.truncate('${t.ext}/audit.log', 0))
attempt('io-setup', lambda: sys_call(206, 8, ctypes.byref(ctypes.c_ulong(0))))
src = os.open('other.txt', os.O_RDONLY)
attempt('copy-file-range', lambda: os.copy_file_range(src, fd, 6, 0, 0))
attempt('sendfile', lambda: os.sendfile(fd, src, 0, 6))
# Another name for the same file: a hard link, a symlink, /proc/self/fd, O_PATH then reopen.
attempt('link', lambda: os.link('log.txt', 'hard'))
attempt('open-hard-w', lambda: open('hard', 'w'))
attempt('symlink', lambda: os.symlink('log.txt', 'soft'))
attempt('open-soft-w', lambda: open('soft', 'w'))
ro = os.open('log.txt', os.O_RDONLY)
attempt('proc-fd-w', lambda: os.open('/proc/self/fd/%d' % ro, os.O_WRONLY | os.O_TRUNC))
attempt('proc-fd-rw', lambda: os.open('/proc/self/fd/%d' % ro, os.O_RDWR))
attempt('proc-fd-append', lambda: os.write(os.open('/proc/self/fd/%d' % ro, O), b'A4\\n'))
p = os.open('log.txt', os.O_PATH)
attempt('opath-reopen-w', lambda: os.open('/dev/fd/%d' % p, os.O_WRONLY))
attempt('mmap-shared-write', lambda: mmap.mmap(ro, 0, mmap.MAP_SHARED, mmap.PROT_WRITE))
attempt('fchmod', lambda: os.fchmod(ro, 0o777))
attempt('utime', lambda: os.utime('log.txt', (1, 1)))
# Replace or remove it.
attempt('unlink', lambda: os.unlink('log.txt'))
attempt('rename-over', lambda: os.rename('other.txt', 'log.txt'))
attempt('rename-away', lambda: os.rename('log.txt', 'moved.txt'))
# The append-only directory: new files may be created for appending; nothing in it is rewritten or removed.
attempt('dir-create-append', lambda: append('logs/new.log', 'N1\\n'))
attempt('dir-open-w', lambda: open('logs/old.log', 'w'))
attempt('dir-unlink', lambda: os.unlink('logs/old.log'))
attempt('dir-rename', lambda: os.rename('logs/old.log', 'logs/x.log'))
attempt('dir-rename-in', lambda: os.rename('other.txt', 'logs/old.log'))
attempt('dir-mkdir', lambda: os.mkdir('logs/sub'))
attempt('dir-append-old', lambda: append('logs/old.log', 'O1\\n'))
# Elsewhere in the workspace, nothing is in the way.
attempt('elsewhere-write', lambda: open('free.txt', 'w').write('x'))
attempt('elsewhere-truncate', lambda: os.truncate('free.txt', 0))
attempt('elsewhere-rename', lambda: os.rename('free.txt', 'free2.txt'))
attempt('elsewhere-unlink', lambda: os.unlink('free2.txt'))
w = os.open('w.txt', os.O_WRONLY | os.O_CREAT, 0o644)
attempt('elsewhere-ftruncate', lambda: os.ftruncate(w, 10))
attempt('elsewhere-setfl', lambda: fcntl.fcntl(w, fcntl.F_SETFL, os.O_NONBLOCK))
`);
    const got = lines(r.out);
    const ok = ['append', 'append-ext', 'read', 'setfl-keep-append', 'write-after-seek', 'pwrite', 'proc-fd-append', 'dir-create-append', 'dir-append-old',
      'elsewhere-write', 'elsewhere-truncate', 'elsewhere-rename', 'elsewhere-unlink', 'elsewhere-ftruncate', 'elsewhere-setfl'];
    for (const k of ok) assert.equal(got[k], 'ok', `${k}: ${r.out}`);
    const refused = ['open-w', 'open-w-ext', 'open-rplus', 'open-aplus', 'wronly', 'append-trunc', 'creat', 'openat2-trunc', 'setfl-clear-append', 'pwritev2-noappend',
      'ftruncate', 'fallocate-punch', 'posix-fallocate', 'truncate', 'truncate-ext', 'io-setup', 'copy-file-range', 'sendfile', 'link',
      'open-soft-w', 'proc-fd-w', 'proc-fd-rw', 'opath-reopen-w', 'mmap-shared-write', 'fchmod', 'utime', 'unlink', 'rename-over', 'rename-away',
      'dir-open-w', 'dir-unlink', 'dir-rename', 'dir-rename-in', 'dir-mkdir'];
    for (const k of refused) assert.match(got[k] ?? 'missing', /^refused errno=\d+$/, `${k}: ${r.out}`);
    // The errnos a program can understand: EACCES for a refused open, EPERM where the kernel says
    // EPERM for a chattr +a file, the mount point's EBUSY/EXDEV for a name that cannot go.
    assert.equal(got['open-w'], 'refused errno=13');
    assert.equal(got['setfl-clear-append'], 'refused errno=1');
    assert.equal(got['ftruncate'], 'refused errno=1');
    assert.equal(got['io-setup'], 'refused errno=38');
    assert.equal(got['pwritev2-noappend'], 'refused errno=95');
    // The bytes: the original content first, then only appends.
    const log = readFileSync(path.join(t.ws, 'log.txt'), 'utf8');
    assert.ok(log.startsWith('ORIGINAL\nA1\n'), JSON.stringify(log));
    assert.ok(!log.includes('X') && !log.includes('other'), JSON.stringify(log));
    assert.match(log, /A2\n/);
    assert.match(log, /A3\n/, 'pwrite on an O_APPEND fd appends (Linux)');
    assert.equal(readFileSync(path.join(t.ext, 'audit.log'), 'utf8'), 'AUDIT\nE1\n');
    assert.equal(readFileSync(path.join(t.ws, 'logs', 'old.log'), 'utf8'), 'OLD\nO1\n');
    assert.equal(readFileSync(path.join(t.ws, 'logs', 'new.log'), 'utf8'), 'N1\n');
    assert.equal(readFileSync(path.join(t.ws, 'other.txt'), 'utf8'), 'other\n');
    // Each refusal the supervisor made is a record naming append-only.
    const sup = r.denials.filter((d) => d.layer === 'supervisor' && /append-only/.test(d.detail));
    assert.ok(sup.some((d) => d.what === `openat ${path.join(t.ws, 'log.txt')}`), JSON.stringify(r.denials));
    assert.ok(sup.some((d) => d.what === `fcntl ${path.join(t.ws, 'log.txt')}`), JSON.stringify(r.denials));
    // Read-only opens stay in the kernel: only writes, F_SETFL and the path and fd calls are supervised.
    assert.ok(r.launch.layers.supervisor, 'the run is supervised');
    assert.ok(!r.launch.layers.supervisor!.syscalls.includes('openat'), 'openat is notified only for writes');
  });

  it('fails closed: refused with exit 125 where supervised mode cannot run, and a plan whose append list was dropped is refused', async () => {
    const fx = sandboxFixture();
    writeFileSync(path.join(fx.ws, 'log.txt'), 'x\n');
    const policy = { extends: ['default'], filesystem: { append: ['${WORKSPACE}/log.txt'], visible: ['${WORKSPACE}/log.txt.sig'] } };
    writeFileSync(path.join(fx.ws, 'log.txt.sig'), 'sig\n');
    const host = { arch: 'x64', seccompActions: 'kill_process errno allow', loadNative: () => {} };
    const err = await run({ policy }, ['sh', '-c', 'echo overwritten > log.txt'], { ...fixtureRunOptions(fx, []), supervisedHost: host }).then(
      () => assert.fail('the run was not refused'),
      (e: unknown) => e as { message: string; exitCode?: number },
    );
    assert.match(err.message, /append-only or visible-only files .* supervised mode cannot run here: .*refusing to run them unenforced/);
    assert.equal(err.exitCode, 125);
    assert.equal(readFileSync(path.join(fx.ws, 'log.txt'), 'utf8'), 'x\n');
    const plan = compile({ policy }, { workspace: fx.ws, env: fx.env });
    assert.deepEqual(plan.rules?.append, [path.join(realpathSync(fx.ws), 'log.txt')]);
    assert.deepEqual(plan.rules?.visible, [path.join(realpathSync(fx.ws), 'log.txt.sig')]);
    assert.throws(() => launch({ ...plan, rules: { ...plan.rules!, append: [] } }, ['true']), /dynamic rules are not the policy's/);
  });
});

