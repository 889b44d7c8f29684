/**
 * Files whose open the kernel answers by *who* opens them, when Ward opens them for the sandbox
 * (every open is Ward's under a visible-only entry or a `read` rule). /dev/tty is the opener's
 * controlling terminal: opened by Ward, it was the user's terminal. Another process's
 * /proc/N/environ, mem, maps... are opened only by a process that may trace it: Ward's thread
 * owns the sandbox's user namespace and is outside its Landlock domain, so it could, where the
 * sandbox could not.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { run } from '../../src/index.js';
import { PY_DRAIN } from '../../src/probes/lib.js';
import type { RunRecord } from '../../src/sandbox/launch.js';
import { ROOT, fixtureRunOptions, hasCgroup, sandboxFixture, which } from '../helpers.js';

const skip = !which('python3') && 'python3 missing';

/** Runs argv[1:] as the session leader of a new pty (its controlling terminal), stdio to /dev/null and OUT; prints what reached the terminal. */
const UNDER_PTY = `
import os, pty, sys
${PY_DRAIN}out = sys.argv[1]
pid, master = pty.fork()
if pid == 0:
    null = os.open('/dev/null', os.O_RDONLY)
    log = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(null, 0); os.dup2(log, 1); os.dup2(log, 2)
    os.execv(sys.argv[2], sys.argv[2:])
seen = drain(master)
_, st = os.waitpid(pid, 0)
sys.stdout.write(seen.decode('latin-1'))
sys.exit(os.waitstatus_to_exitcode(st))
`;

/** The sandbox's program: /dev/tty directly, by reopening an O_PATH fd, and in a child with a pty of its own. */
const TTY_ATTEMPTS = `
import os, pty, sys
${PY_DRAIN}def attempt(name, f):
    try:
        fd = f()
        os.write(fd, b'LEAK-THROUGH-DEV-TTY ' + name.encode() + b'\\r\\n')
        print(name, 'ok', flush=True)
    except OSError as e:
        print(name, 'refused errno=%s' % e.errno, flush=True)
attempt('dev-tty', lambda: os.open('/dev/tty', os.O_RDWR))
p = os.open('/dev/tty', os.O_PATH)
attempt('proc-fd-reopen', lambda: os.open('/proc/self/fd/%d' % p, os.O_RDWR))
attempt('dev-fd-reopen', lambda: os.open('/dev/fd/%d' % p, os.O_RDWR))
child, master = pty.fork()
if child == 0:
    try:
        os.write(os.open('/dev/tty', os.O_RDWR), b'OWN-PTY-REACHED\\n')
    except OSError as e:
        os.write(1, b'own-pty errno=%d\\n' % e.errno)
    os._exit(0)
got = drain(master)
os.waitpid(child, 0)
print('own-pty', got.decode().strip(), flush=True)
`;

describe('supervised opens answered as the kernel answers the caller', { skip }, () => {
  it("/dev/tty under a caller's terminal: ENXIO for the sandbox (no terminal, new session), by name and by an O_PATH reopen; a pty the sandbox made its own terminal is its /dev/tty", async () => {
    const fx = sandboxFixture();
    writeFileSync(path.join(fx.ws, 'credentials'), 'KEY\n');
    writeFileSync(path.join(fx.ws, 'ttycheck.py'), TTY_ATTEMPTS);
    // A visible-only entry puts every open of the run through Ward.
    const policyFile = path.join(path.dirname(fx.ws), 'policy.yaml');
    writeFileSync(policyFile, "extends: [default]\nfilesystem:\n  visible: ['${WORKSPACE}/credentials']\n");
    const out = path.join(path.dirname(fx.ws), 'out.txt');
    const ward = [process.execPath, path.join(ROOT, 'bin/ward.js'), 'run', '--policy', policyFile, '-w', fx.ws, ...(hasCgroup ? [] : ['--allow-degraded']), '--', 'python3', 'ttycheck.py'];
    const r = spawnSync('python3', ['-c', UNDER_PTY, out, ...ward], { cwd: fx.ws, env: fx.env, encoding: 'utf8', timeout: 60_000 });
    const said = (() => { try { return readFileSync(out, 'utf8'); } catch { return `no output file; the terminal showed: ${r.stdout} ${r.stderr}`; } })();
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}\n${said}`);
    const line = (k: string) => new RegExp(`^${k} (.*)$`, 'm').exec(said)?.[1] ?? 'missing';
    for (const k of ['dev-tty', 'proc-fd-reopen', 'dev-fd-reopen']) assert.equal(line(k), 'refused errno=6', `${k}: ${said}`);
    assert.equal(line('own-pty'), 'OWN-PTY-REACHED', said);
    // Nothing reached Ward's terminal.
    assert.doesNotMatch(r.stdout, /LEAK|OWN-PTY/, r.stdout);
  });

  it("another process's /proc/N/environ, mem, maps, fdinfo: EACCES (pid 1, a non-dumpable child); its status and the caller's own entries open", async () => {
    const fx = sandboxFixture();
    writeFileSync(path.join(fx.ws, 'credentials'), 'KEY\n');
    const records: RunRecord[] = [];
    const code = `
import os, ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
def attempt(name, f):
    try:
        r = f()
        print(name, 'ok', r if isinstance(r, (int, str)) else repr(r)[:60], flush=True)
    except OSError as e:
        print(name, 'refused errno=%s' % e.errno, flush=True)
def read(p, n=64):
    fd = os.open(p, os.O_RDONLY)
    try: return os.read(fd, n)
    finally: os.close(fd)
for e in ('environ', 'mem', 'maps', 'auxv', 'fdinfo/0', 'task/1/environ'):
    attempt('pid1-' + e, lambda: read('/proc/1/' + e))
attempt('pid1-status', lambda: len(read('/proc/1/status')))
attempt('pid1-cmdline', lambda: len(read('/proc/1/cmdline')))
ready_r, ready_w = os.pipe()
done_r, done_w = os.pipe()
child = os.fork()
if child == 0:
    os.close(ready_r); os.close(done_w)
    libc.prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
    os.close(ready_w)
    os.read(done_r, 1)  # EOF once the parent closes its end (or dies)
    os._exit(0)
os.close(ready_w); os.close(done_r)
os.read(ready_r, 1)  # EOF: the child is not dumpable any more
attempt('child-mem', lambda: read('/proc/%d/mem' % child))
attempt('child-environ', lambda: read('/proc/%d/environ' % child))
attempt('child-status', lambda: len(read('/proc/%d/status' % child)))
os.close(done_w)
os.waitpid(child, 0)
attempt('self-environ', lambda: len(read('/proc/self/environ')))
attempt('self-maps', lambda: len(read('/proc/%d/maps' % os.getpid())))
`;
    const policy = { extends: ['default'], filesystem: { visible: ['${WORKSPACE}/credentials'] } };
    const r = await run({ policy }, ['python3', '-c', code], fixtureRunOptions(fx, records));
    const out = r.stdout.toString() + r.stderr.toString();
    const line = (k: string) => new RegExp(`^${k} (.*)$`, 'm').exec(out)?.[1] ?? 'missing';
    for (const k of ['pid1-environ', 'pid1-mem', 'pid1-maps', 'pid1-auxv', 'pid1-fdinfo/0', 'pid1-task/1/environ', 'child-mem', 'child-environ']) {
      assert.equal(line(k), 'refused errno=13', `${k}: ${out}`);
    }
    for (const k of ['pid1-status', 'pid1-cmdline', 'child-status', 'self-environ', 'self-maps']) assert.match(line(k), /^ok [1-9]/, `${k}: ${out}`);
    assert.doesNotMatch(out, /HOME=|PATH=/, out);
    const sup = r.denials.filter((d) => d.layer === 'supervisor' && /another process's \/proc/.test(d.detail));
    assert.ok(sup.some((d) => d.what === 'openat /proc/1/environ'), JSON.stringify(r.denials));
  });
});
