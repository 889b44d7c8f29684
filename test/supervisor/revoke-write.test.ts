/**
 * `revoke: write PATTERN` decided exactly: after the revocation, every write by path inside the
 * pattern (unlink, rmdir, rename in and out, link, symlink, mkdir, mknod, truncate, chmod,
 * chown, utimes, setxattr) fails with EACCES and is recorded, however the name is spelled (a
 * relative path, a symlinked parent directory, a directory fd); outside the pattern the same
 * calls work, so `git init && git add && git commit` and ordinary file churn still succeed.
 * The supervisor performs each allowed call itself on the resolved names (never CONTINUE).
 * A unix socket bound to a path (bind(2), no open) is refused by Landlock in the trees such a
 * pattern reaches, from the start (src/plan/rules.ts, withoutSocketNodes).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { run } from '../../src/index.js';
import type { RunRecord } from '../../src/sandbox/launch.js';
import { C_LEADER_GONE, fixtureRunOptions, sandboxFixture, which } from '../helpers.js';

const skip = (!which('python3') && 'python3 missing') || (!which('git') && 'git missing');

function setup() {
  const fx = sandboxFixture();
  mkdirSync(path.join(fx.ws, 'secrets'));
  mkdirSync(path.join(fx.ws, 'src', 'empty'), { recursive: true });
  writeFileSync(path.join(fx.ws, 'secrets', 'key.txt'), 'TOPSECRET\n');
  writeFileSync(path.join(fx.ws, 'src', 'main.c'), 'int main(){}\n');
  writeFileSync(path.join(fx.ws, 'outside.txt'), 'outside\n');
  const records: RunRecord[] = [];
  const policy = { extends: ['default'], rules: [{ after: 'read ${WORKSPACE}/secrets/**', revoke: 'write ${WORKSPACE}/src/**' }] };
  const options = fixtureRunOptions(fx, records);
  return { ...fx, records, policy, options };
}

/** Python: `attempt(name, f)` prints "name ok" or "name refused errno=N"; `libc` for raw calls. */
const PY_ATTEMPT = `
import os, sys, ctypes
libc = ctypes.CDLL(None, use_errno=True)
def attempt(name, f):
    try:
        f(); print(name, 'ok')
    except OSError as e:
        print(name, 'refused errno=%s' % e.errno)
    sys.stdout.flush()`;

const ATTACKS = `
import os, sys, ctypes
def attempt(name, f):
    try:
        f(); print(name, 'ok')
    except OSError as e:
        print(name, 'refused errno=%s' % e.errno)
    sys.stdout.flush()
open('secrets/key.txt').read()
os.symlink('src', 'via')            # a symlinked parent outside the pattern
d = os.open('src', os.O_RDONLY | os.O_DIRECTORY)
attempt('unlink', lambda: os.unlink('src/main.c'))
attempt('unlink-via-symlink', lambda: os.unlink('via/main.c'))
attempt('unlinkat-dirfd', lambda: os.unlink('main.c', dir_fd=d))
attempt('unlink-dotdot', lambda: os.unlink('secrets/../src/main.c'))
attempt('rmdir', lambda: os.rmdir('src/empty'))
attempt('rename-out', lambda: os.rename('src/main.c', 'stolen.c'))
attempt('rename-in', lambda: os.rename('outside.txt', 'src/planted.c'))
attempt('link-out', lambda: os.link('src/main.c', 'alias.c'))
attempt('link-in', lambda: os.link('outside.txt', 'src/planted.c'))
attempt('symlink-in', lambda: os.symlink('/etc/passwd', 'src/planted-link'))
attempt('mkdir', lambda: os.mkdir('src/newdir'))
attempt('mknod', lambda: os.mkfifo('src/fifo'))
attempt('truncate', lambda: os.truncate('src/main.c', 0))
attempt('truncate-via-symlink', lambda: os.truncate('via/main.c', 0))
attempt('chmod', lambda: os.chmod('src/main.c', 0o777))
attempt('chmod-via-symlink', lambda: os.chmod('via/main.c', 0o777))
attempt('chown', lambda: os.chown('src/main.c', os.getuid(), os.getgid()))
attempt('lchown', lambda: os.lchown('src/main.c', os.getuid(), os.getgid()))
attempt('utime', lambda: os.utime('src/main.c', (1, 1)))
attempt('utime-nofollow', lambda: os.utime('src/main.c', (1, 1), follow_symlinks=False))
attempt('utime-fd', lambda: os.utime(os.open('src/main.c', os.O_RDONLY), (1, 1)))
attempt('setxattr', lambda: os.setxattr('src/main.c', 'user.x', b'1'))
attempt('open-w', lambda: open('src/main.c', 'w'))
# The same metadata writes on an fd opened for reading (allowed: reading is not revoked).
ro = os.open('src/main.c', os.O_RDONLY)
attempt('fchmod', lambda: os.fchmod(ro, 0o777))
attempt('fchown', lambda: os.fchown(ro, os.getuid(), os.getgid()))
attempt('fsetxattr', lambda: os.setxattr(ro, 'user.y', b'1'))
attempt('out-fchmod', lambda: os.fchmod(os.open('outside.txt', os.O_RDONLY), 0o640))
attempt('pipe-fchmod', lambda: os.fchmod(os.pipe()[0], 0o600))
# Outside the pattern the same calls work.
attempt('out-mkdir', lambda: os.mkdir('build'))
attempt('out-create', lambda: open('build/a', 'w').write('a'))
attempt('out-rename', lambda: os.rename('build/a', 'build/b'))
attempt('out-link', lambda: os.link('build/b', 'build/c'))
attempt('out-symlink', lambda: os.symlink('b', 'build/s'))
attempt('out-truncate', lambda: os.truncate('build/b', 0))
attempt('out-chmod', lambda: os.chmod('build/b', 0o600))
attempt('out-utime', lambda: os.utime('build/b', (5, 5)))
attempt('out-mknod', lambda: os.mkfifo('build/fifo'))
attempt('out-unlink', lambda: [os.unlink('build/' + n) for n in ('b', 'c', 's', 'fifo')])
attempt('out-rmdir', lambda: os.rmdir('build'))
`;

const REFUSED = ['unlink', 'unlink-via-symlink', 'unlinkat-dirfd', 'unlink-dotdot', 'rmdir', 'rename-out', 'rename-in', 'link-out', 'link-in', 'symlink-in', 'mkdir', 'mknod', 'truncate',
  'truncate-via-symlink', 'chmod', 'chmod-via-symlink', 'chown', 'lchown', 'utime', 'utime-nofollow', 'utime-fd', 'setxattr', 'open-w', 'fchmod', 'fchown', 'fsetxattr'];
const ALLOWED = ['out-fchmod', 'pipe-fchmod', 'out-mkdir', 'out-create', 'out-rename', 'out-link', 'out-symlink', 'out-truncate', 'out-chmod', 'out-utime', 'out-mknod', 'out-unlink', 'out-rmdir'];

/**
 * A C program in `ws` that forks one holder per kind. Each holder's thread takes a way to write
 * src/ (or a read-only fd, exit-reader), says "ready" on a pipe, waits for "go" (sent once the
 * read of the secret that fires the rule has returned) and then writes. The program prints each
 * holder's fate: "KIND killed" or "KIND exit=N".
 */
function threadHolders(ws: string): string {
  const src = `#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
static int ready[2], go[2];
static const char *kind;
${C_LEADER_GONE}static void await_go(void) { if (!strncmp(kind, "exit-", 5)) leader_gone(); char c = 'r'; if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1) _exit(2); }
static void fail(int code) { await_go(); _exit(code); }
static int holder(void *x) {
  (void)x;
  if (!strcmp(kind, "unshare") && unshare(CLONE_FILES) != 0) fail(100 + errno);
  if (!strcmp(kind, "exit-map")) {
    int fd = open("src/mapped.c", O_RDWR);
    char *p = mmap(0, 4096, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) fail(3);
    close(fd);
    await_go();
    if (mprotect(p, 4096, PROT_READ | PROT_WRITE) != 0) _exit(100 + errno);
    memcpy(p, "EVIL", 4);
    msync(p, 4096, MS_SYNC);
    _exit(0);
  }
  int fd = open("src/main.c", strcmp(kind, "exit-reader") ? O_WRONLY | O_APPEND : O_RDONLY);
  if (fd < 0) fail(4);
  await_go();
  char c;
  _exit((strcmp(kind, "exit-reader") ? write(fd, "EVIL", 4) : read(fd, &c, 1)) == -1 ? 5 : 0);
}
static void *pholder(void *x) { holder(x); return 0; }
int main(void) {
  static const char *kinds[] = { "exit-fd", "exit-map", "exit-reader", "own-table", "unshare" };
  enum { N = sizeof kinds / sizeof *kinds };
  pid_t pids[N];
  if (pipe(ready) || pipe(go)) return 1;
  for (int i = 0; i < N; i++) {
    kind = kinds[i];
    if ((pids[i] = fork()) != 0) continue;
    pthread_t th;
    if (!strcmp(kind, "own-table")) {
      static char stack[1 << 16];
      if (clone(holder, stack + sizeof stack, CLONE_VM | CLONE_SIGHAND | CLONE_THREAD, 0) < 0) fail(100 + errno);
      for (;;) pause();
    }
    if (pthread_create(&th, 0, pholder, 0)) _exit(6);
    if (strcmp(kind, "unshare")) pthread_exit(0);   /* the leader goes; its thread goes on */
    for (;;) pause();
  }
  char c;
  for (int i = 0; i < N; i++) if (read(ready[0], &c, 1) != 1) return 1;
  char secret[64];
  int s = open("secrets/key.txt", O_RDONLY);
  if (s < 0 || read(s, secret, sizeof secret) < 0) return 1;
  for (int i = 0; i < N; i++) if (write(go[1], "g", 1) != 1) return 1;
  for (int i = 0; i < N; i++) {
    int st;
    waitpid(pids[i], &st, 0);
    if (WIFSIGNALED(st) && WTERMSIG(st) == 9) printf("%s killed\\n", kinds[i]);
    else printf("%s exit=%d\\n", kinds[i], WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
  }
  return 0;
}
`;
  writeFileSync(path.join(ws, 'holders.c'), src);
  execFileSync('cc', ['-O2', '-pthread', '-o', path.join(ws, 'holders'), path.join(ws, 'holders.c')]);
  return './holders';
}

describe('revoke: write PATTERN, decided on real paths', { skip }, () => {
  it('after the revocation every write by path inside the pattern fails with EACCES and is recorded; outside it works', async () => {
    const t = setup();
    const before = statSync(path.join(t.ws, 'src', 'main.c'));
    const r = await run({ policy: t.policy }, ['python3', '-c', ATTACKS], t.options);
    const out = r.stdout.toString() + r.stderr.toString();
    assert.equal(r.exitCode, 0, out);
    assert.equal(r.revocations.length, 1, out);
    for (const k of REFUSED) assert.match(out, new RegExp(`^${k} refused errno=13$`, 'm'), `${k}: ${out}`);
    for (const k of ALLOWED) assert.match(out, new RegExp(`^${k} ok$`, 'm'), `${k}: ${out}`);
    // Nothing inside src/ changed: content, names, mode, times.
    const main = path.join(t.ws, 'src', 'main.c');
    assert.equal(readFileSync(main, 'utf8'), 'int main(){}\n');
    assert.equal(statSync(main).mode, before.mode);
    assert.equal(statSync(main).mtimeMs, before.mtimeMs);
    assert.ok(existsSync(path.join(t.ws, 'src', 'empty')));
    for (const n of ['planted.c', 'planted-link', 'newdir', 'fifo']) assert.ok(!existsSync(path.join(t.ws, 'src', n)), n);
    assert.ok(!existsSync(path.join(t.ws, 'stolen.c')) && !existsSync(path.join(t.ws, 'alias.c')));
    assert.ok(existsSync(path.join(t.ws, 'outside.txt')));
    assert.equal(statSync(path.join(t.ws, 'outside.txt')).mode & 0o777, 0o640, 'fchmod outside the pattern was performed');
    // Each refusal is a record naming the resolved path and the rule.
    const sup = r.denials.filter((d) => d.layer === 'supervisor');
    const main2 = `${path.join(t.ws, 'src', 'main.c')}`;
    for (const call of ['unlink', 'unlinkat', 'truncate', 'chmod', 'utimensat', 'setxattr', 'fchmod', 'fsetxattr']) {
      assert.ok(sup.some((d) => d.what.startsWith(`${call} `) && d.what.includes(main2) && /write revoked by rules\[0\]/.test(d.detail)), `${call}: ${JSON.stringify(sup.map((d) => d.what))}`);
    }
    assert.ok(sup.some((d) => d.what === `rmdir ${path.join(t.ws, 'src', 'empty')}`), JSON.stringify(sup.map((d) => d.what)));
  });

  it('a process that opened (or mapped shared) a file for writing before the revocation is killed when it fires, before it can write; readers and writers elsewhere live', async () => {
    const t = setup();
    writeFileSync(path.join(t.ws, 'src', 'mapped.c'), 'mapped\n');
    writeFileSync(path.join(t.ws, 'src', 'remapped.c'), 'remapped\n');
    const script = `
import os, sys, time, mmap, ctypes
r, w = os.pipe()
go_r, go_w = os.pipe()
def holder(kind):
    pid = os.fork()
    if pid: return pid
    if kind == 'fd':
        f = os.open('src/main.c', os.O_WRONLY | os.O_APPEND)
        act = lambda: os.write(f, b'EVIL\\n')
    elif kind == 'mapping':
        # Through libc: Python's mmap module keeps a duplicate of the fd, and this holder must
        # keep nothing but the mapping.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
        f = os.open('src/mapped.c', os.O_RDWR)
        addr = libc.mmap(None, 4096, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, f, 0)
        os.close(f)
        def act():
            ctypes.memmove(addr, b'EVIL', 4); libc.msync(ctypes.c_void_p(addr), 4096, 4)
    elif kind in ('mprotect', 'ro-map'):
        # Mapped read-only, the fd closed: the file's open mode decides whether mprotect can
        # make the mapping writable later (O_RDWR: yes, so it is a writer; O_RDONLY: never).
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
        f = os.open('src/remapped.c', os.O_RDWR if kind == 'mprotect' else os.O_RDONLY)
        addr = libc.mmap(None, 4096, mmap.PROT_READ, mmap.MAP_SHARED, f, 0)
        os.close(f)
        def act():
            if libc.mprotect(ctypes.c_void_p(addr), 4096, mmap.PROT_READ | mmap.PROT_WRITE) != 0:
                os._exit(100 + ctypes.get_errno())
            ctypes.memmove(addr, b'EVIL', 4); libc.msync(ctypes.c_void_p(addr), 4096, 4)
    elif kind == 'reader':
        f = os.open('src/main.c', os.O_RDONLY)
        act = lambda: os.read(f, 4)
    else:
        f = os.open('outside.txt', os.O_WRONLY | os.O_APPEND)
        act = lambda: os.write(f, b'fine\\n')
    os.write(w, b'r')
    os.read(go_r, 1)   # after the read that fires the rule has returned: no timing involved
    act()
    os._exit(0)
kids = {k: holder(k) for k in ('fd', 'mapping', 'mprotect', 'ro-map', 'reader', 'outside')}
for _ in kids: os.read(r, 1)
open('secrets/key.txt').read()
os.write(go_w, b'g' * len(kids))
for k, pid in kids.items():
    _, st = os.waitpid(pid, 0)
    print(k, 'killed' if os.WIFSIGNALED(st) and os.WTERMSIG(st) == 9 else 'exit=%d' % os.waitstatus_to_exitcode(st))
`;
    const r = await run({ policy: t.policy }, ['python3', '-c', script], t.options);
    const out = r.stdout.toString() + r.stderr.toString();
    assert.equal(r.exitCode, 0, out);
    // ro-map: mprotect(PROT_WRITE) of a shared mapping of a file opened read-only is EACCES (113).
    assert.match(out, /^fd killed\nmapping killed\nmprotect killed\nro-map exit=113\nreader exit=0\noutside exit=0$/m, out);
    assert.equal(readFileSync(path.join(t.ws, 'src', 'main.c'), 'utf8'), 'int main(){}\n');
    assert.equal(readFileSync(path.join(t.ws, 'src', 'mapped.c'), 'utf8'), 'mapped\n');
    assert.equal(readFileSync(path.join(t.ws, 'src', 'remapped.c'), 'utf8'), 'remapped\n');
    assert.equal(readFileSync(path.join(t.ws, 'outside.txt'), 'utf8'), 'outside\nfine\n');
    // The revocation record says whom it killed, and why.
    const killed = r.revocations[0]?.killed ?? [];
    assert.deepEqual(killed.map((k) => [k.file, k.through]).sort(), [
      [path.join(t.ws, 'src', 'main.c'), 'fd'],
      [path.join(t.ws, 'src', 'mapped.c'), 'mapping'],
      [path.join(t.ws, 'src', 'remapped.c'), 'mapping'],
    ]);
  });

  it('a holder whose fds or mappings only its threads can see is killed too: the leader has exited, or a thread asked for its own fd table (refused)', { skip: !which('cc') && 'no C compiler' }, async () => {
    const t = setup();
    writeFileSync(path.join(t.ws, 'src', 'mapped.c'), 'mapped\n');
    const prog = threadHolders(t.ws);
    const r = await run({ policy: t.policy }, [prog], t.options);
    const out = r.stdout.toString() + r.stderr.toString();
    assert.equal(r.exitCode, 0, out);
    // exit-*: the leader pthread_exit()ed, so /proc/PID/fd and /proc/PID/maps show nothing of
    // what its thread holds. own-table: clone(CLONE_THREAD) without CLONE_FILES; unshare: a
    // thread's unshare(CLONE_FILES): both refused with EPERM (101) when the policy has rules.
    assert.match(out, /^exit-fd killed\nexit-map killed\nexit-reader exit=0\nown-table exit=101\nunshare exit=101$/m, out);
    assert.equal(readFileSync(path.join(t.ws, 'src', 'main.c'), 'utf8'), 'int main(){}\n');
    assert.equal(readFileSync(path.join(t.ws, 'src', 'mapped.c'), 'utf8'), 'mapped\n');
    const killed = r.revocations[0]?.killed ?? [];
    assert.deepEqual(killed.map((k) => [k.file, k.through]).sort(), [
      [path.join(t.ws, 'src', 'main.c'), 'fd'],
      [path.join(t.ws, 'src', 'mapped.c'), 'mapping'],
    ]);
  });

  it('bind: no unix socket node can be made in the trees a write revocation reaches (Landlock, from the start); elsewhere binds are the kernel\'s own', async () => {
    const t = setup();
    const script = `
import os, socket, sys, threading
def attempt(name, f):
    try:
        print(name, f()); sys.stdout.flush()
    except OSError as e:
        print(name, 'refused errno=%s' % e.errno); sys.stdout.flush()
def unix(where):
    s = socket.socket(socket.AF_UNIX)
    s.bind(where)
    return s
def echo(where):
    # A real socket: bound, listened on, connected to and used; its name is what bind was given.
    srv = unix(where); srv.listen(1)
    def serve():
        c, _ = srv.accept(); c.sendall(c.recv(16).upper()); c.close()
    th = threading.Thread(target=serve); th.start()
    cl = socket.socket(socket.AF_UNIX); cl.connect(srv.getsockname()); cl.sendall(b'ping'); got = cl.recv(16); th.join()
    return 'ok %s %s' % (got.decode(), srv.getsockname())
os.symlink('src', 'via')
attempt('bind-before', lambda: unix('src/early.sock'))
attempt('bind-ws-before', lambda: unix('build.sock'))
open('secrets/key.txt').read()
attempt('bind-in', lambda: unix('src/planted.sock'))
attempt('bind-in-via-symlink', lambda: unix('via/planted2.sock'))
attempt('bind-in-absolute', lambda: unix(os.getcwd() + '/src/planted3.sock'))
attempt('mknod-sock-in', lambda: os.mknod('src/planted4.sock', 0o600 | 0o140000))
attempt('bind-tmp', lambda: unix('/tmp/t.sock'))
attempt('bind-home', lambda: echo(os.environ['HOME'] + '/h.sock'))
attempt('bind-abstract', lambda: unix('\\0ward-test-abstract').getsockname())
attempt('bind-inet', lambda: (lambda s: (s.bind(('127.0.0.1', 0)), s.getsockname()[1] > 0)[1])(socket.socket()))
`;
    const r = await run({ policy: t.policy }, ['python3', '-c', script], t.options);
    const out = r.stdout.toString() + r.stderr.toString();
    assert.equal(r.exitCode, 0, out);
    assert.equal(r.revocations.length, 1, out);
    // The workspace holds src/, so its Landlock rule lost MAKE_SOCK: refused before and after the rule fires.
    for (const k of ['bind-before', 'bind-ws-before', 'bind-in', 'bind-in-via-symlink', 'bind-in-absolute', 'mknod-sock-in']) assert.match(out, new RegExp(`^${k} refused errno=13$`, 'm'), `${k}: ${out}`);
    for (const n of ['early.sock', 'planted.sock', 'planted2.sock', 'planted3.sock', 'planted4.sock']) assert.ok(!existsSync(path.join(t.ws, 'src', n)), n);
    assert.ok(!existsSync(path.join(t.ws, 'build.sock')));
    // Rights add up along a path: here the workspace lies under /tmp, so the private /tmp's rule
    // lost it too. The private $HOME (beside the workspace) is no tree of the pattern: the
    // kernel binds there, with its exact semantics (the name is the one given).
    assert.match(out, /^bind-tmp refused errno=13$/m, out);
    assert.match(out, new RegExp(`^bind-home ok PING ${t.home}/h\\.sock$`, 'm'), out);
    assert.match(out, /^bind-abstract b'\\x00ward-test-abstract'$/m, out);
    assert.match(out, /^bind-inet True$/m, out);
    // The plan says so.
    const launch = t.records.find((x) => x.type === 'launch') as { notes: string[] } | undefined;
    assert.ok(launch?.notes.some((n) => n.startsWith(`no unix socket can be bound to a path under ${t.ws}`)), JSON.stringify(launch?.notes));
  });

  it('a directory above the pattern cannot be renamed or exchanged away (its tree is the pattern\'s), and renaming a tree into a waited-for pattern is a write event', async () => {
    const fx = sandboxFixture();
    for (const d of ['secrets', 'proj/src', 'st/src', 'tmpd/data', 'notes', 'other/deep']) mkdirSync(path.join(fx.ws, d), { recursive: true });
    writeFileSync(path.join(fx.ws, 'secrets', 'key.txt'), 'TOPSECRET\n');
    writeFileSync(path.join(fx.ws, 'proj', 'src', 'main.c'), 'orig\n');
    writeFileSync(path.join(fx.ws, 'st', 'src', 'main.c'), 'EVIL\n');
    writeFileSync(path.join(fx.ws, 'tmpd', 'data', 'x'), 'x\n');
    writeFileSync(path.join(fx.ws, 'notes', 'n.txt'), 'NOTES\n');
    const records: RunRecord[] = [];
    const policy = { extends: ['default'], rules: [{ after: 'read ${WORKSPACE}/secrets/**', revoke: 'write ${WORKSPACE}/proj/src/**' }] };
    const script = `${PY_ATTEMPT}
def exchange(a, b):
    if libc.syscall(316, -100, a.encode(), -100, b.encode(), 2) != 0:  # renameat2(RENAME_EXCHANGE)
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
open('secrets/key.txt').read()
attempt('write-in', lambda: open('proj/src/main.c', 'w'))
attempt('rename-ancestor', lambda: os.rename('proj', 'proj2'))
attempt('exchange-ancestor', lambda: exchange('st', 'proj'))
attempt('exchange-ancestor-rev', lambda: exchange('proj', 'st'))
attempt('rename-pattern-root', lambda: os.rename('proj/src', 'src2'))
# Outside the pattern's trees renames still work, of directories and of files.
attempt('rename-other-dir', lambda: os.rename('other', 'other2'))
attempt('rename-dir-beside', lambda: os.rename('other2/deep', 'proj/deep'))
attempt('rename-file', lambda: os.rename('st/src/main.c', 'st/main.c'))
`;
    const r = await run({ policy }, ['python3', '-c', script], fixtureRunOptions(fx, records));
    const out = r.stdout.toString() + r.stderr.toString();
    assert.equal(r.exitCode, 0, out);
    assert.equal(r.revocations.length, 1, out);
    for (const k of ['write-in', 'rename-ancestor', 'exchange-ancestor', 'exchange-ancestor-rev', 'rename-pattern-root']) assert.match(out, new RegExp(`^${k} refused errno=13$`, 'm'), `${k}: ${out}`);
    for (const k of ['rename-other-dir', 'rename-dir-beside', 'rename-file']) assert.match(out, new RegExp(`^${k} ok$`, 'm'), `${k}: ${out}`);
    assert.equal(readFileSync(path.join(fx.ws, 'proj', 'src', 'main.c'), 'utf8'), 'orig\n');
    assert.ok(!existsSync(path.join(fx.ws, 'proj2')));
    const sup = r.denials.filter((d) => d.layer === 'supervisor');
    assert.ok(sup.some((d) => d.what.startsWith(`rename`) && d.what.includes(path.join(fx.ws, 'proj')) && /moved or replaced as a whole/.test(d.detail)), JSON.stringify(sup));

    // Only a rule waiting for a write below pub/data: a tree renamed to pub is such a write
    // (renames are supervised for it), and so is one renamed out of it.
    const waits = { extends: ['default'], rules: [{ after: 'write ${WORKSPACE}/pub/data/**', revoke: 'read ${WORKSPACE}/notes/**' }] };
    const r2 = await run({ policy: waits }, ['sh', '-c', 'cat notes/n.txt && mv tmpd pub && echo moved; cat notes/n.txt; echo rc=$?'], fixtureRunOptions(fx, records));
    const out2 = r2.stdout.toString() + r2.stderr.toString();
    assert.match(out2, /^NOTES\nmoved\nrc=1$/m, out2);
    assert.equal(r2.revocations.length, 1, out2);
    assert.equal(r2.revocations[0]?.trigger, `write ${path.join(fx.ws, 'pub', 'data')}`, JSON.stringify(r2.revocations));
  });

  it('linkat(AT_SYMLINK_FOLLOW) through a symlink is judged on the file it links, not on the symlink', async () => {
    const t = setup();
    const script = `${PY_ATTEMPT}
def linkat(a, b, flags):
    # The raw call: Python's os.link may use link(2), which never follows.
    if libc.linkat(-100, a.encode(), -100, b.encode(), flags) != 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
open('src/later.c', 'w').write('made before the trigger\\n')   # unknown to the launch-time identities
os.symlink('src/later.c', 'sl')
os.symlink('src/main.c', 'sl2')
open('outside.txt').read()
os.symlink('outside.txt', 'sl3')
open('secrets/key.txt').read()
attempt('follow-later', lambda: linkat('sl', 'hl', 0x400))
attempt('write-later', lambda: open('hl', 'a').write('EVIL\\n'))
attempt('follow-main', lambda: linkat('sl2', 'hl2', 0x400))
attempt('nofollow', lambda: linkat('sl', 'hl-sym', 0))
attempt('follow-outside', lambda: linkat('sl3', 'hl3', 0x400))
print('same-inode', os.stat('hl3').st_ino == os.stat('outside.txt').st_ino)
`;
    const r = await run({ policy: t.policy }, ['python3', '-c', script], t.options);
    const out = r.stdout.toString() + r.stderr.toString();
    assert.equal(r.revocations.length, 1, out);
    for (const k of ['follow-later', 'follow-main']) assert.match(out, new RegExp(`^${k} refused errno=13$`, 'm'), `${k}: ${out}`);
    // hl was never made, so the write creates a new, harmless file.
    assert.match(out, /^write-later ok$/m, out);
    // The symlink itself (not followed) is no revoked file; a followed link outside the pattern is the file itself.
    for (const k of ['nofollow', 'follow-outside']) assert.match(out, new RegExp(`^${k} ok$`, 'm'), `${k}: ${out}`);
    assert.match(out, /^same-inode True$/m, out);
    assert.equal(readFileSync(path.join(t.ws, 'src', 'later.c'), 'utf8'), 'made before the trigger\n');
    const sup = r.denials.filter((d) => d.layer === 'supervisor');
    assert.ok(sup.some((d) => d.what === `linkat ${path.join(t.ws, 'src', 'later.c')}`), JSON.stringify(sup.map((d) => d.what)));
  });

  it('git init, add and commit work after a write revocation (outside the revoked pattern)', async () => {
    const t = setup();
    const script = [
      'cat secrets/key.txt >/dev/null',
      'git init -q . && git add -A && git -c user.email=t@example.com -c user.name=t commit -qm one && echo commit-1-ok',
      'echo more >> outside.txt && git add outside.txt && git -c user.email=t@example.com -c user.name=t commit -qm two && echo commit-2-ok',
      'git mv outside.txt moved.txt && git -c user.email=t@example.com -c user.name=t commit -qm three && echo commit-3-ok',
      'git log --oneline | wc -l',
      'git rm -q src/main.c 2>&1 | head -1; echo rm-rc=$?',
      'test -f src/main.c && echo main-still-there',
    ].join('\n');
    const r = await run({ policy: t.policy }, ['sh', '-c', script], t.options);
    const out = r.stdout.toString() + r.stderr.toString();
    assert.equal(r.revocations.length, 1, out);
    assert.match(out, /^commit-1-ok\ncommit-2-ok\ncommit-3-ok\n\s*3\n/m, out);
    // git rm inside the revoked pattern: git is refused the unlink, the file stays.
    assert.match(out, /main-still-there/, out);
    assert.ok(existsSync(path.join(t.ws, 'src', 'main.c')));
    assert.ok(existsSync(path.join(t.ws, '.git', 'HEAD')));
  });
});
