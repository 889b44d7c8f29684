/**
 * Supervised mode in real sandboxes: each promise shown by an attack that fails (or by real
 * work that still succeeds). The decision module is test/supervisor/decider.ts, loaded into
 * the supervisor's thread the way the rules engine will be.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { run, WardError } from '../../src/index.js';
import { supervisorThreadIds, supervisorThreadsStarted } from '../../src/supervisor/index.js';
import type { RunRecord } from '../../src/sandbox/launch.js';
import { ROOT, fixtureRunOptions, hasCgroup, sandboxFixture, which } from '../helpers.js';
import type { TestRules } from './decider.js';

const DECIDER = path.join(ROOT, 'test/supervisor/decider.ts');
const OPENS = ['open', 'openat', 'openat2', 'creat'];

function setup(rules: TestRules | ((ws: string) => TestRules), syscalls: string[] = OPENS) {
  const fx = sandboxFixture();
  const records: RunRecord[] = [];
  const data = typeof rules === 'function' ? rules(fx.ws) : rules;
  const options = fixtureRunOptions(fx, records, { supervise: { syscalls, decider: { module: DECIDER, data } } });
  const exec = async (argv: string[]) => {
    const r = await run({ profile: 'default' }, argv, options);
    return { ...r, out: r.stdout.toString(), err: r.stderr.toString() };
  };
  return { ...fx, records, options, exec, sh: (script: string) => exec(['sh', '-c', script]) };
}

/** Writes `name`.c into the workspace and compiles it to `name` there, for the sandbox to run. */
function cProgram(ws: string, name: string, flags: string[], source: string): void {
  writeFileSync(path.join(ws, `${name}.c`), source);
  execFileSync('cc', [...flags, '-o', path.join(ws, name), path.join(ws, `${name}.c`)]);
}

describe('supervised mode: opens decided outside the sandbox', () => {
  it('a denied file gets EACCES, allowed files open, and the refusal is recorded after the launch record', async () => {
    const t = setup((ws) => ({ deny: [path.join(ws, 'secret.txt')] }));
    writeFileSync(path.join(t.ws, 'ok.txt'), 'fine\n');
    writeFileSync(path.join(t.ws, 'secret.txt'), 'TOPSECRET\n');
    const r = await t.sh('cat ok.txt; cat secret.txt; echo "rc=$?"; cat ./sub/../secret.txt 2>/dev/null; echo done');
    assert.equal(r.exitCode, 0, r.err);
    assert.match(r.out, /^fine\nrc=1\ndone\n$/);
    assert.match(r.err, /secret\.txt: Permission denied/);
    assert.doesNotMatch(r.out, /TOPSECRET/);
    const denials = r.denials.filter((d) => d.layer === 'supervisor');
    assert.ok(denials.some((d) => d.what === `openat ${path.join(t.ws, 'secret.txt')}` && /EACCES/.test(d.detail)), JSON.stringify(denials));
    assert.deepEqual(r.launch.layers.supervisor?.syscalls, OPENS);
    assert.equal(r.launch.observed?.proc_status?.['Seccomp_filters'], '2', 'the static filter and the notify filter');
    const types = t.records.map((x) => (x.type === 'denial' ? `denial:${x.layer}` : x.type));
    assert.equal(types[0], 'launch');
    assert.equal(types.at(-1), 'exit');
    assert.ok(types.includes('denial:supervisor'));
  });

  it('the refusal reaches the audit log, between the launch and the exit record', async () => {
    const t = setup((ws) => ({ deny: [path.join(ws, 'secret.txt')] }));
    writeFileSync(path.join(t.ws, 'secret.txt'), 'TOPSECRET\n');
    const log = path.join(path.dirname(t.ws), 'audit.jsonl');
    const r = await run({ profile: 'default' }, ['cat', 'secret.txt'], { ...t.options, audit: log });
    assert.equal(r.exitCode, 1);
    const recs = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; layer?: string; what?: string });
    const kinds = recs.filter((x) => ['launch', 'denial', 'exit'].includes(x.type)).map((x) => x.type);
    assert.deepEqual(kinds, ['launch', 'denial', 'exit']);
    const d = recs.find((x) => x.type === 'denial');
    assert.equal(d?.layer, 'supervisor');
    assert.equal(d?.what, `openat ${path.join(t.ws, 'secret.txt')}`);
  });

  it('one supervisor thread serves run after run: each run gets a fresh decision function and the same enforcement', async () => {
    const t = setup((ws) => ({ deny: [path.join(ws, 'secret.txt')] }));
    writeFileSync(path.join(t.ws, 'secret.txt'), 'TOPSECRET\n');
    writeFileSync(path.join(t.ws, 'ok.txt'), 'fine\n');
    await t.sh('true'); // leaves a thread behind, whichever test ran before
    const before = supervisorThreadsStarted();
    for (let i = 0; i < 4; i++) {
      const r = await t.sh('cat ok.txt; cat secret.txt; echo "rc=$?"');
      assert.equal(r.out, 'fine\nrc=1\n', r.err);
      assert.ok(r.denials.some((d) => d.layer === 'supervisor' && d.what === `openat ${path.join(t.ws, 'secret.txt')}`), `run ${i}: ${JSON.stringify(r.denials)}`);
    }
    // Back to back, each run took the thread the run before left idle: no new thread started.
    assert.equal(supervisorThreadsStarted(), before);
    // A run whose decision module fails ends its thread: the next run gets another, and works.
    const bad = await run({ profile: 'default' }, ['true'], { ...t.options, supervise: { syscalls: OPENS, decider: { module: path.join(t.ws, 'missing-decider.js') } } }).catch((e: unknown) => e);
    assert.ok(bad instanceof WardError, String(bad));
    const r = await t.sh('cat secret.txt; echo "rc=$?"');
    assert.equal(r.out, 'rc=1\n', r.err);
    assert.ok(supervisorThreadsStarted() > before);
  });

  it('created files get the mode asked for under the program\'s umask, and O_TRUNC waits for the decision', async () => {
    const t = setup((ws) => ({ deny: [path.join(ws, 'keep.txt'), path.join(ws, 'nope.txt')] }));
    writeFileSync(path.join(t.ws, 'keep.txt'), 'KEEP\n');
    const r = await t.sh('umask 027; echo new > made.txt; stat -c %a made.txt; echo x > keep.txt; echo y > nope.txt; cat made.txt');
    assert.equal(r.stdout.toString(), '640\nnew\n', r.err);
    // Refused before anything was cut or created.
    assert.equal(execFileSync('cat', [path.join(t.ws, 'keep.txt')], { encoding: 'utf8' }), 'KEEP\n');
    assert.throws(() => execFileSync('stat', [path.join(t.ws, 'nope.txt')], { stdio: 'ignore' }));
  });

  it('real work still succeeds supervised: git status and a python script reading files', { skip: (!which('git') || !which('python3')) && 'git or python3 missing' }, async () => {
    const t = setup((ws) => ({ deny: [path.join(ws, 'private')] }));
    mkdirSync(path.join(t.ws, 'private'));
    writeFileSync(path.join(t.ws, 'private', 'key'), 'PRIVATE\n');
    writeFileSync(path.join(t.ws, 'data.json'), '{"n": 41}\n');
    const r = await t.sh(
      'git init -q && git -c user.name=t -c user.email=t@e.invalid commit -q --allow-empty -m first && echo change > f && git status --short && ' +
        'python3 -c "import json; print(json.load(open(\'data.json\'))[\'n\'] + 1)" && ' +
        "python3 -c \"open('private/key').read()\" 2>&1 | tail -1",
    );
    assert.equal(r.exitCode, 0, r.err);
    assert.match(r.out, /\?\? f\n/);
    assert.match(r.out, /^42$/m);
    assert.match(r.out, /PermissionError: \[Errno 13\] Permission denied: 'private\/key'/);
    assert.doesNotMatch(r.out, /PRIVATE\n/);
  });

  it("names that mean the caller itself still work: /proc/self, /dev/stdin, /dev/fd/N; another process's fds do not", async () => {
    const t = setup({});
    writeFileSync(path.join(t.ws, 'ok.txt'), 'fine\n');
    const r = await t.sh('head -1 /proc/self/status; echo piped | cat /dev/stdin; exec 7<ok.txt; cat /dev/fd/7; cat /proc/self/fd/7; cat /proc/1/fd/1 2>&1 >/dev/null | head -1');
    assert.equal(r.out, 'Name:\thead\npiped\nfine\nfine\ncat: /proc/1/fd/1: Permission denied\n', r.err);
  });

  it('the static policy still holds for what the supervisor opens: a file Landlock does not grant stays refused', async () => {
    // /etc/hostname is bound read-only in the default profile? Not granted to Landlock: only
    // the listed system paths are. The supervisor opens with Ward's rights and must say no too.
    const t = setup({});
    const r = await t.sh('cat /usr/bin/env > /dev/null && echo usr-ok; ls / >/dev/null 2>&1; echo "ls-root=$?"; echo hi > /usr/x 2>/dev/null; echo "write-usr=$?"');
    assert.match(r.out, /usr-ok\nls-root=[12]\nwrite-usr=[12]\n/, r.err);
    assert.ok(r.denials.some((d) => d.layer === 'supervisor' && /static policy/.test(d.detail)), JSON.stringify(r.denials));
  });
  it('a `..` resolved while renames happen elsewhere is retried, never answered EAGAIN (openat2 asks its caller to retry)', { skip: !which('python3') && 'python3 missing' }, async () => {
    const t = setup({});
    mkdirSync(path.join(t.ws, 'sub'));
    writeFileSync(path.join(t.ws, 'data.txt'), 'd');
    // A thread renaming in a loop makes the kernel's rename seqcount move under every `..`.
    const r = await t.exec(['python3', '-c', `
import os, threading
stop = False
def churn():
    i = 0
    open('r0', 'w').close()
    while not stop:
        os.rename('r%d' % i, 'r%d' % (i + 1)); i += 1
t = threading.Thread(target=churn); t.start()
bad = 0
for i in range(20000):
    try:
        os.close(os.open('sub/../data.txt', os.O_RDONLY))
    except BlockingIOError:
        bad += 1
stop = True; t.join()
print('eagain', bad)
`]);
    assert.equal(r.out, 'eagain 0\n', r.err);
  });
});

describe('supervised mode: attacks on the supervisor', () => {
  it('TOCTOU: a thread flipping the path buffer during openat never gets the denied file', { skip: !which('cc') && 'no C compiler' }, async () => {
    const t = setup((ws) => ({ deny: [path.join(ws, 'evil.txt')] }));
    writeFileSync(path.join(t.ws, 'good.txt'), 'allowed-content\n');
    writeFileSync(path.join(t.ws, 'evil.txt'), 'DENIED-CONTENT!\n');
    // Same length names, so the flip is a plain byte store into the buffer the kernel and the
    // supervisor read. The flipper never stops; main opens 20,000 times and counts outcomes.
    cProgram(t.ws, 'race', ['-O2', '-pthread'],
      `#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static char buf[16] = "good.txt";
static volatile int stop;
/* The barrier keeps the compiler from dropping either store. */
static void *flip(void *a) { (void)a; while (!stop) { memcpy(buf, "evil", 4); __asm__ volatile("" ::: "memory"); memcpy(buf, "good", 4); __asm__ volatile("" ::: "memory"); } return 0; }
int main(void) {
  pthread_t th; pthread_create(&th, 0, flip, 0);
  int allowed = 0, denied = 0, refused = 0, other = 0;
  for (int i = 0; i < 20000; i++) {
    int fd = openat(AT_FDCWD, buf, O_RDONLY);
    if (fd < 0) { refused++; continue; }
    char c[32] = {0}; read(fd, c, sizeof c - 1); close(fd);
    if (strncmp(c, "DENIED", 6) == 0) denied++; else if (strncmp(c, "allowed", 7) == 0) allowed++; else other++;
  }
  stop = 1; pthread_join(th, 0);
  printf("allowed=%d denied=%d refused=%d other=%d\\n", allowed, denied, refused, other);
  return 0;
}
`,
    );
    const r = await t.exec(['./race']);
    assert.equal(r.exitCode, 0, r.err);
    const m = /allowed=(\d+) denied=(\d+) refused=(\d+) other=(\d+)/.exec(r.out);
    assert.ok(m, r.out);
    const [allowed, denied, refused] = [Number(m[1]), Number(m[2]), Number(m[3])];
    assert.equal(denied, 0, `the denied file's content was read ${denied} times: ${r.out}`);
    // The race really ran both ways: some opens saw the denied name (refused), some the allowed one.
    assert.ok(allowed > 0 && refused > 0, r.out);
  });

  it('a program that takes signals all the time gets its calls performed once: O_CREAT|O_EXCL never meets its own file', { skip: !which('cc') && 'no C compiler' }, async (t) => {
    // An interval timer every 50 us (Go's preemption signals, profilers and timers do the like).
    // Before SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, a signal during the open Ward was performing
    // abandoned the answer; the restarted open found the file Ward had just made: EEXIST, for
    // 2,467 of 3,000 opens here.
    const s = setup({});
    cProgram(s.ws, 'excl', ['-O2'],
      `#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
static volatile long ticks;
static void on_alarm(int sig) { (void)sig; ticks++; }
int main(int argc, char **argv) {
  int n = atoi(argv[1]), failed = 0, first = 0;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, 0);
  struct itimerval it = { { 0, 50 }, { 0, 50 } };
  setitimer(ITIMER_REAL, &it, 0);
  mkdir("made", 0755);
  for (int i = 0; i < n; i++) {
    char name[32];
    snprintf(name, sizeof name, "made/f%d", i);
    int fd = open(name, O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd < 0) { if (!failed) first = errno; failed++; } else close(fd);
  }
  struct itimerval off;
  memset(&off, 0, sizeof off);
  setitimer(ITIMER_REAL, &off, 0);
  printf("created %d failed %d errno %d ticks %ld\\n", n - failed, failed, first, ticks);
  return 0;
}
`,
    );
    const r = await s.exec(['./excl', '2000']);
    assert.equal(r.exitCode, 0, r.err);
    if (!r.launch.layers.supervisor?.wait_killable) return t.skip('this kernel has no SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (5.19+)');
    const m = /^created (\d+) failed (\d+) errno (\d+) ticks (\d+)$/.exec(r.out.trim());
    assert.ok(m, r.out);
    assert.equal(Number(m[2]), 0, `opens abandoned and repeated: ${r.out}`);
    assert.ok(Number(m[4]) > 0, `the timer fired: ${r.out}`);
  });

  it('signals aimed at the supervisor thread during fd injections change no open\'s result', { skip: !which('cc') && 'no C compiler' }, async () => {
    // SIGCHLD has a handler in Ward (libuv's). Delivered to the supervisor thread while it waits
    // in ADDFD with ADDFD_FLAG_SEND, the kernel answered the caller's openat with 0 and the
    // restarted ioctl failed EINPROGRESS (the sandbox was killed). The thread blocks signals.
    const t = setup({});
    writeFileSync(path.join(t.ws, 'data.txt'), 'data\n');
    cProgram(t.ws, 'opens', ['-O2'],
      `#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int n = atoi(argv[1]);
  for (int i = 0; i < n; i++) {
    int fd = open("data.txt", O_RDONLY);
    if (fd < 3) { printf("open %d returned %d\\n", i, fd); return 2; }
    char c[8] = {0};
    if (read(fd, c, 5) != 5 || memcmp(c, "data\\n", 5) != 0) { printf("open %d: wrong file\\n", i); return 3; }
    close(fd);
  }
  printf("ok %d\\n", n);
  return 0;
}
`,
    );
    const running = t.exec(['./opens', '4000']);
    let tid: number | undefined;
    for (let i = 0; i < 2000 && tid === undefined; i++) {
      tid = supervisorThreadIds()[0];
      if (tid === undefined) await new Promise((res) => setTimeout(res, 2));
    }
    assert.ok(tid !== undefined, 'the supervisor thread reported its id');
    // tgkill from a thread of our own, every ~20 us, for as long as the program runs.
    const stop = new Int32Array(new SharedArrayBuffer(4));
    const sender = new Worker(
      `const { workerData: w, parentPort } = require('node:worker_threads');
const koffi = require(w.koffi);
const sys = koffi.load('libc.so.6').func('syscall', 'long', ['long', 'long', 'long', 'long']);
const flag = new Int32Array(w.stop);
let sent = 0;
while (Atomics.load(flag, 0) === 0) { if (Number(sys(234, w.pid, w.tid, 17)) === 0) sent++; Atomics.wait(flag, 0, 0, 0.02); }
parentPort.postMessage(sent);`,
      { eval: true, workerData: { koffi: createRequire(import.meta.url).resolve('koffi'), pid: process.pid, tid, stop: stop.buffer } },
    );
    const sent = new Promise<number>((res) => sender.once('message', res));
    const r = await running;
    Atomics.store(stop, 0, 1);
    const n = await sent;
    assert.equal(r.exitCode, 0, `${r.out}${r.err}`);
    assert.equal(r.out, 'ok 4000\n');
    assert.ok(n > 100, `only ${n} signals were sent while the program ran`);
  });

  it('paths are read across page boundaries, up to an unmapped page, and a bad pointer is EFAULT', { skip: !which('cc') && 'no C compiler' }, async () => {
    const t = setup({});
    writeFileSync(path.join(t.ws, 'straddle.txt'), 'straddled\n');
    cProgram(t.ws, 'pages', ['-O1'],
      `#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
static void show(const char *what, int fd) {
  char b[32] = {0};
  if (fd < 0) { printf("%s: errno %d\\n", what, errno); return; }
  read(fd, b, sizeof b - 1); close(fd); printf("%s: %s", what, b);
}
int main(void) {
  long pg = sysconf(_SC_PAGESIZE);
  char *m = mmap(0, 3 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  munmap(m + 2 * pg, pg); /* the third page is unmapped */
  const char *name = "straddle.txt";
  size_t n = strlen(name) + 1;
  char *a = m + pg - 5; memcpy(a, name, n);            /* crosses from page 1 into page 2 */
  show("across", openat(AT_FDCWD, a, O_RDONLY));
  char *b = m + 2 * pg - n; memcpy(b, name, n);         /* its NUL is the last byte before the hole */
  show("at-end", openat(AT_FDCWD, b, O_RDONLY));
  char *c = m + 2 * pg - 4; memcpy(c, "stra", 4);       /* no NUL before the hole */
  show("unterminated", openat(AT_FDCWD, c, O_RDONLY));
  show("null", openat(AT_FDCWD, (char *)0, O_RDONLY));
  return 0;
}
`,
    );
    const r = await t.exec(['./pages']);
    assert.equal(r.out, 'across: straddled\nat-end: straddled\nunterminated: errno 14\nnull: errno 14\n', r.err);
  });

  it('symlinks and .. cannot lead the supervisor out of the sandbox root', async () => {
    const t = setup({});
    const outside = path.join(path.dirname(t.ws), 'outside.txt'); // on the host, beside the workspace, not bound in
    writeFileSync(outside, 'HOST-ONLY-CONTENT\n');
    symlinkSync(outside, path.join(t.ws, 'abs-link'));
    symlinkSync('../'.repeat(30) + outside.slice(1), path.join(t.ws, 'rel-link'));
    mkdirSync(path.join(t.ws, 'd'));
    symlinkSync('/', path.join(t.ws, 'd', 'root'));
    const r = await t.sh(
      [`cat abs-link`, `cat rel-link`, `cat ${'../'.repeat(30)}${outside.slice(1)}`, `cat d/root${outside}`, `cat /proc/1/root${outside}`, `cat /proc/self/cwd/../outside.txt`, 'echo end'].join(' 2>&1; ') + ' 2>&1',
    );
    assert.doesNotMatch(r.out, /HOST-ONLY-CONTENT/);
    assert.match(r.out, /end\n$/);
    assert.equal((r.out.match(/No such file or directory|Too many levels of symbolic links|Permission denied/g) ?? []).length, 6, r.out);
  });

  it('a revocation mid-run holds for the rest of the run, across fork and exec', { skip: !which('python3') && 'python3 missing' }, async () => {
    const t = setup((ws) => ({ revokeAfter: path.join(ws, 'untrusted.html'), revoke: [path.join(ws, 'data')] }));
    mkdirSync(path.join(t.ws, 'data'));
    writeFileSync(path.join(t.ws, 'data', 'a'), 'A-CONTENT\n');
    writeFileSync(path.join(t.ws, 'untrusted.html'), '<html>\n');
    const r = await t.sh(
      'cat data/a; cat untrusted.html >/dev/null; cat data/a 2>/dev/null || echo "after: refused"; sh -c "cat data/a 2>/dev/null || echo child: refused"; ' +
        "python3 -c \"\nimport os\ntry: open('data/a').read(); print('python: READ')\nexcept PermissionError: print('python: refused')\"",
    );
    assert.equal(r.out, 'A-CONTENT\nafter: refused\nchild: refused\npython: refused\n', r.err);
    const revoked = r.denials.filter((d) => /revoked after/.test(d.detail));
    assert.equal(revoked.length, 3, JSON.stringify(r.denials));
  });

  it('decisions after a trigger: connect refused blind, unlink refused on its resolved path and performed by Ward when allowed (revoke network, revoke write)', { skip: !which('python3') && 'python3 missing' }, async () => {
    const t = setup((ws) => ({ revokeAfter: path.join(ws, 'secrets.txt'), revokeCalls: ['connect', 'unlink', 'unlinkat'] }), [...OPENS, 'connect', 'unlink', 'unlinkat']);
    writeFileSync(path.join(t.ws, 'secrets.txt'), 'sensitive\n');
    writeFileSync(path.join(t.ws, 'a'), '');
    writeFileSync(path.join(t.ws, 'b'), '');
    writeFileSync(
      path.join(t.ws, 'net.py'),
      `import os, socket
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(4)
port = srv.getsockname()[1]
def attempt(what, f):
    try:
        f(); print(what, "ok")
    except PermissionError:
        print(what, "refused")
attempt("connect-before", lambda: socket.create_connection(("127.0.0.1", port)).close())
attempt("unlink-before", lambda: os.unlink("a"))
open("secrets.txt").read()
attempt("connect-after", lambda: socket.create_connection(("127.0.0.1", port)).close())
attempt("unlink-after", lambda: os.unlink("b"))
`,
    );
    const r = await t.exec(['python3', 'net.py']);
    assert.equal(r.out, 'connect-before ok\nunlink-before ok\nconnect-after refused\nunlink-after refused\n', r.err);
    assert.ok(!existsSync(path.join(t.ws, 'a')) && existsSync(path.join(t.ws, 'b')), 'b survived the refused unlink');
    const blind = r.denials.filter((d) => d.layer === 'supervisor' && /revoked after/.test(d.detail));
    assert.deepEqual(blind.map((d) => d.what).sort(), ['connect', `unlink ${path.join(t.ws, 'b')}`].sort());
  });

  it('exec is decided too: a refused program cannot be started', async () => {
    const t = setup({ denyExec: ['/usr/bin/id'] }, ['openat', 'execve', 'execveat']);
    const r = await t.sh('/usr/bin/id; echo "rc=$?"; /usr/bin/true && echo true-ran');
    assert.match(r.out, /rc=126\ntrue-ran\n/, r.err);
    assert.ok(r.denials.some((d) => d.what === 'execve /usr/bin/id'), JSON.stringify(r.denials));
  });
});

describe('supervised mode fails closed', () => {
  it('a supervisor that dies mid-run takes the sandbox with it', async () => {
    const t = setup((ws) => ({ throwAfter: path.join(ws, 'boom') }));
    writeFileSync(path.join(t.ws, 'boom'), '');
    writeFileSync(path.join(t.ws, 'later'), 'LATER\n');
    const started = Date.now();
    await assert.rejects(
      t.sh('cat boom; cat later; sleep 30; echo survived'),
      (e: unknown) => e instanceof WardError && /supervisor failed/.test(e.message) && /killed/.test(e.message),
    );
    assert.ok(Date.now() - started < 20_000, 'killed at once, not after the sleep');
  });

  it('a decision module that cannot load means the command never runs', async () => {
    const fx = sandboxFixture();
    const marker = path.join(fx.ws, 'ran');
    await assert.rejects(
      run({ profile: 'default' }, ['sh', '-c', `touch ${marker}`], {
        workspace: fx.ws,
        env: fx.env,
        stdin: 'ignore',
        allowDegraded: !hasCgroup,
        audit: false,
        supervise: { syscalls: ['openat'], decider: { module: path.join(fx.ws, 'missing.js') } },
      }),
      (e: unknown) => e instanceof WardError && /supervis/.test(e.message),
    );
    assert.throws(() => execFileSync('stat', [marker], { stdio: 'ignore' }), 'the command did not run');
  });

  it('syscalls whose decision cannot be made safely are refused up front, naming the fix', async () => {
    const fx = sandboxFixture();
    await assert.rejects(
      run({ profile: 'default' }, ['true'], { workspace: fx.ws, env: fx.env, audit: false, allowDegraded: !hasCgroup, supervise: { syscalls: ['sendto'], decider: { module: DECIDER } } }),
      (e: unknown) => e instanceof WardError && /'sendto' cannot be supervised/.test(e.message) && /supervise only open, openat/.test(e.message),
    );
  });
});
