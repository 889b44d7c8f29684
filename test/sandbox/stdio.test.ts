/**
 * The sandbox's fds 0-2. `ward run ... < in > out` used to hand the command the caller's own open
 * files, whose metadata it could change by fd (Landlock judges paths at open, not inherited fds).
 * Now a redirected file, a named FIFO or a device is relayed by Ward through a pipe: the attacks
 * fail, and the relay must be as good as the file was (every byte, in order, the exit status).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { run } from '../../src/api.js';
import type { RunRecord } from '../../src/sandbox/launch.js';
import { fixtureRunOptions, hasCgroup, ROOT, sandboxFixture } from '../helpers.js';

const degraded = hasCgroup ? [] : ['--allow-degraded'];

/** `ward run -- argv` with fds 0-2 opened on the given files ('a' appends to stdout). */
function wardWithFiles(fx: { ws: string; env: NodeJS.ProcessEnv }, argv: string[], files: { stdin: string; stdout: string; stderr?: string; append?: boolean }) {
  const fdIn = openSync(files.stdin, 'r');
  const fdOut = openSync(files.stdout, files.append ? 'a' : 'w');
  const fdErr = files.stderr === undefined ? 'pipe' : files.stderr === files.stdout ? fdOut : openSync(files.stderr, 'w');
  try {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/ward.js'), 'run', '--quiet', ...degraded, '--', ...argv], { cwd: fx.ws, env: fx.env, stdio: [fdIn, fdOut, fdErr], encoding: 'utf8', timeout: 120_000 });
    return { code: r.status, stderr: typeof r.stderr === 'string' ? r.stderr : '' };
  } finally {
    for (const fd of new Set([fdIn, fdOut, fdErr])) if (typeof fd === 'number') closeSync(fd);
  }
}

/** The file's user.* extended attributes, read on the host. */
function userXattrs(file: string): string[] {
  const r = spawnSync('python3', ['-c', 'import os,sys; print(" ".join(a for a in os.listxattr(sys.argv[1]) if a.startswith("user.")))', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split(' ').filter(Boolean);
}

/** Inside: fchmod 0777, futimens to 1970 and setxattr user.x on fds 0, 1, 2; one line per fd on stderr. */
const ATTACK_FDS = `import os, sys
for fd in (0, 1, 2):
    res = []
    for name, f in (("chmod", lambda: os.fchmod(fd, 0o777)), ("utime", lambda: os.utime(fd, (1, 1))), ("xattr", lambda: os.setxattr(fd, "user.x", b"1"))):
        try:
            f(); res.append(name + "=done")
        except OSError as e:
            res.append(name + "=" + str(e.errno))
    sys.stderr.write("%d %s %s\\n" % (fd, os.readlink("/proc/self/fd/%d" % fd), " ".join(res)))
`;
/** ATTACK_FDS, then stdin copied to stdout. */
const ATTACK = `${ATTACK_FDS}sys.stdout.write(sys.stdin.read())
`;

describe('the caller\'s redirected files are not the sandbox\'s fds', () => {
  it('fchmod, futimens and fsetxattr on fds 0-2 leave the caller\'s files as they were; the data still flows', () => {
    const fx = sandboxFixture();
    const files = { stdin: path.join(fx.ws, 'in.txt'), stdout: path.join(fx.ws, 'out.txt'), stderr: path.join(fx.ws, 'err.txt') };
    writeFileSync(files.stdin, 'the input\n', { mode: 0o600 });
    for (const f of [files.stdout, files.stderr]) writeFileSync(f, '', { mode: 0o600 });
    const t = new Date('2024-05-01T00:00:00Z');
    utimesSync(files.stdin, t, t);
    const r = wardWithFiles(fx, ['python3', '-c', ATTACK], files);
    assert.equal(r.code, 0, readFileSync(files.stderr, 'utf8'));
    const report = readFileSync(files.stderr, 'utf8');
    for (const f of Object.values(files)) {
      assert.equal(statSync(f).mode & 0o7777, 0o600, `${f} kept its mode (${report})`);
      assert.notEqual(statSync(f).mtimeMs, 1000, `${f} kept its times`);
      assert.deepEqual(userXattrs(f), [], `${f} got no xattr`);
    }
    // Whatever the calls did, they did it to Ward's pipes: none of the three files is behind an fd.
    assert.match(report, /^0 pipe:\[\d+\] /m, report);
    assert.match(report, /^1 pipe:\[\d+\] /m, report);
    assert.match(report, /^2 pipe:\[\d+\] /m, report);
    assert.equal(statSync(files.stdin).mtimeMs, t.getTime());
    assert.equal(readFileSync(files.stdout, 'utf8'), 'the input\n');
  });

  it('a named FIFO as stdin: the command reads it, and its mode stays', () => {
    const fx = sandboxFixture();
    const fifo = path.join(fx.ws, 'in.fifo');
    assert.equal(spawnSync('mkfifo', ['-m', '600', fifo]).status, 0);
    const out = path.join(fx.ws, 'out.txt');
    // The writer opens the FIFO as Ward does, then writes and closes: EOF for the command.
    const writer = spawn('sh', ['-c', 'printf "through the fifo\\n" > "$1"', 'sh', fifo], { stdio: 'ignore' });
    const r = wardWithFiles(fx, ['python3', '-c', 'import os, sys\ntry: os.fchmod(0, 0o777)\nexcept OSError: pass\nsys.stdout.write(sys.stdin.read())'], { stdin: fifo, stdout: out });
    writer.kill();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(out, 'utf8'), 'through the fifo\n');
    assert.equal(statSync(fifo).mode & 0o7777, 0o600);
  });

  it("library stdin 'ignore' is EOF from a pipe, not the host's /dev/null", async () => {
    const fx = sandboxFixture();
    const records: RunRecord[] = [];
    // Only looked at, never changed: on the old code a root caller's sandbox could fchmod /dev/null itself.
    const r = await run({ profile: 'default' }, ['python3', '-c', 'import os, sys; print(os.readlink("/proc/self/fd/0"), repr(sys.stdin.read()))'], fixtureRunOptions(fx, records, { stdin: 'ignore' }));
    assert.equal(r.exitCode, 0, r.stderr.toString());
    assert.match(r.stdout.toString(), /^pipe:\[\d+\] ''\n$/);
  });
});

describe('relayed stdio works as the file did', () => {
  it('50 MiB through stdout and 8 MiB through stdin, byte for byte', () => {
    const fx = sandboxFixture();
    const input = randomBytes(8 * 1024 * 1024);
    const inFile = path.join(fx.ws, 'in.bin');
    writeFileSync(inFile, input);
    const out = path.join(fx.ws, 'out.bin');
    const echo = wardWithFiles(fx, ['cat'], { stdin: inFile, stdout: out });
    assert.equal(echo.code, 0, echo.stderr);
    assert.ok(readFileSync(out).equals(input), 'stdin reached the command whole and in order');

    // A pattern the command makes: 50 MiB of numbered lines, checked by hash.
    const big = wardWithFiles(fx, ['python3', '-c', 'import sys\nw = sys.stdout.buffer\nfor i in range(1600):\n    w.write((b"%08d" % i) * 4096)\n'], { stdin: inFile, stdout: out });
    assert.equal(big.code, 0, big.stderr);
    const h = createHash('sha256');
    for (let i = 0; i < 1600; i++) h.update(Buffer.from(String(i).padStart(8, '0').repeat(4096)));
    assert.equal(statSync(out).size, 1600 * 8 * 4096);
    assert.equal(createHash('sha256').update(readFileSync(out)).digest('hex'), h.digest('hex'));
  });

  it('a command that exits without reading a large stdin exits normally, with its own status', () => {
    const fx = sandboxFixture();
    const inFile = path.join(fx.ws, 'in.bin');
    writeFileSync(inFile, randomBytes(32 * 1024 * 1024));
    const out = path.join(fx.ws, 'out.txt');
    const r = wardWithFiles(fx, ['sh', '-c', 'head -c 3 >/dev/null; echo done; exit 5'], { stdin: inFile, stdout: out });
    assert.equal(r.code, 5, r.stderr);
    assert.equal(readFileSync(out, 'utf8'), 'done\n');
  });

  it('interleaved writes keep their order, within a stream and across `> log 2>&1`; >> appends', () => {
    const fx = sandboxFixture();
    const inFile = path.join(fx.ws, 'in.txt');
    writeFileSync(inFile, '');
    const log = path.join(fx.ws, 'log');
    writeFileSync(log, 'before\n');
    const script = 'import os\nfor i in range(2000):\n    os.write(1, b"out %d\\n" % i)\n    os.write(2, b"err %d\\n" % i)\n';
    const r = wardWithFiles(fx, ['python3', '-c', script], { stdin: inFile, stdout: log, stderr: log, append: true });
    assert.equal(r.code, 0, r.stderr);
    const want = ['before', ...Array.from({ length: 2000 }, (_, i) => [`out ${i}`, `err ${i}`]).flat(), ''];
    assert.deepEqual(readFileSync(log, 'utf8').split('\n'), want);
  });
});

/**
 * Runs argv[2:] with fds 0-2 on a new pty, and prints a JSON report of the pty after it ended.
 * argv[1] 'ctty': the pty is the program's controlling terminal (login_tty, as a terminal
 * emulator or sshd starts a shell); 'plain': it is only its fds (a device redirected to it).
 * The test keeps the slave open, so its line discipline, exclusivity, termios and mode can be
 * read after the run; it ends when the program does (a pidfd), whatever reached the terminal.
 */
const ON_PTY = `
import fcntl, json, os, select, struct, sys, termios
mode = sys.argv[1]
master, slave = os.openpty()
name = os.ttyname(slave)
before = termios.tcgetattr(slave)
mode_before = oct(os.stat(name).st_mode & 0o7777)
pid = os.fork()
if pid == 0:
    os.close(master)
    if mode == 'ctty':
        os.login_tty(slave)
    else:
        for fd in (0, 1, 2): os.dup2(slave, fd)
    os.execv(sys.argv[2], sys.argv[2:])
pidfd = os.pidfd_open(pid)
seen = b''
while True:
    ready, _, _ = select.select([master, pidfd], [], [])
    if master in ready:
        try:
            c = os.read(master, 4096)
        except OSError:
            c = b''
        seen += c
        if c: continue
    if pidfd in ready: break
os.set_blocking(master, False)
try:
    while True:
        c = os.read(master, 4096)
        if not c: break
        seen += c
except OSError:
    pass
_, st = os.waitpid(pid, 0)
def get(req):
    try:
        return struct.unpack('i', fcntl.ioctl(slave, req, b'\\0' * 4))[0]
    except OSError as e:
        return 'errno %d' % e.errno
ldisc = get(termios.TIOCGETD)
excl = get(0x80045440)  # TIOCGEXCL
try:
    after = termios.tcgetattr(slave)
except termios.error as e:
    after = str(e)
print(json.dumps({'status': os.waitstatus_to_exitcode(st), 'seen': seen.decode('latin-1'), 'ldisc': ldisc, 'exclusive': excl, 'termios_kept': after == before, 'mode': oct(os.stat(name).st_mode & 0o7777), 'mode_before': mode_before}))
`;

interface PtyReport {
  status: number;
  seen: string;
  ldisc: number | string;
  exclusive: number | string;
  termios_kept: boolean;
  mode: string;
  mode_before: string;
}

/** `ward run -- argv` on a new pty (see ON_PTY). */
function wardOnPty(fx: { ws: string; env: NodeJS.ProcessEnv }, mode: 'ctty' | 'plain', argv: string[]): PtyReport {
  const r = spawnSync('python3', ['-c', ON_PTY, mode, process.execPath, path.join(ROOT, 'bin/ward.js'), 'run', '--quiet', ...degraded, '--', ...argv], { cwd: fx.ws, env: fx.env, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout) as PtyReport;
}

/** Inside: each ioctl on fd 0 (the terminal), its errno (0: done) written to report.txt in the workspace. */
function ioctlAttack(calls: Record<string, string>): string {
  return `import ctypes, fcntl, os, struct
libc = ctypes.CDLL(None, use_errno=True)
out = []
for name, (req, arg) in ${JSON.stringify(Object.fromEntries(Object.entries(calls).map(([k, v]) => [k, v.split(' ')])))}.items():
    # '-': no argument; '=N': N as a value (TCXONC); N: a pointer to an int N
    buf = None if arg == '-' else ctypes.c_ulong(int(arg[1:])) if arg.startswith('=') else ctypes.create_string_buffer(struct.pack('i', int(arg)) + bytes(4))
    r = libc.ioctl(0, ctypes.c_ulong(int(req, 16)), buf)
    out.append('%s=%d' % (name, 0 if r == 0 else ctypes.get_errno()))
open('report.txt', 'w').write(' '.join(out) + '\\n')
`;
}

describe("the caller's terminal", () => {
  it('TIOCSETD, TIOCEXCL, TCXONC are refused on it: the terminal keeps its line discipline and stays openable, and Ward exits with the status', () => {
    const fx = sandboxFixture();
    // N_NULL (27) left the terminal dead and Node's terminal restore at Ward's exit aborted; TIOCEXCL made it unopenable (EBUSY); TCOOFF stopped its output.
    const r = wardOnPty(fx, 'ctty', ['sh', '-c', `python3 -c "$1"; exit 3`, 'sh', ioctlAttack({ setd: '0x5423 27', excl: '0x540c -', xonc: '0x540a =0', cons: '0x541d -', vhangup: '0x5437 -' })]);
    const report = readFileSync(path.join(fx.ws, 'report.txt'), 'utf8');
    assert.equal(report.trim(), 'setd=1 excl=1 xonc=1 cons=1 vhangup=1', report);
    assert.equal(r.ldisc, 0, 'N_TTY still');
    assert.equal(r.exclusive, 0, 'not exclusive');
    assert.equal(r.status, 3, `Ward exits with the command's status: ${JSON.stringify(r)}`);
  });

  it('is the command\'s own terminal when it is the caller\'s controlling terminal (isatty inside, interactive)', () => {
    const fx = sandboxFixture();
    const r = wardOnPty(fx, 'ctty', ['python3', '-c', 'import sys; print("tty", sys.stdin.isatty(), sys.stdout.isatty(), sys.stderr.isatty())']);
    assert.equal(r.status, 0, JSON.stringify(r));
    assert.match(r.seen, /tty True True True/, r.seen);
    assert.equal(r.termios_kept, true);
  });

  it('a terminal that is not the caller\'s controlling terminal is relayed: fchmod on fds 0-2 leaves the device node as it was', () => {
    const fx = sandboxFixture();
    const r = wardOnPty(fx, 'plain', ['python3', '-c', ATTACK_FDS]);
    assert.equal(r.status, 0, JSON.stringify(r));
    assert.equal(r.mode, r.mode_before, `the pty's mode: ${JSON.stringify(r)}`);
    for (const fd of [0, 1, 2]) assert.match(r.seen, new RegExp(`^${fd} pipe:\\[\\d+\\] `, 'm'), r.seen);
  });
});

describe('pipes and sockets of the caller', () => {
  it("a reopen of the caller's stdin pipe for writing reaches only the command's own pipe: the next reader of the caller's pipe never sees it", () => {
    const fx = sandboxFixture();
    // The shell after Ward reads the same pipe: what the command wrote there, it would run.
    const script = `{ printf 'echo first\\n'; } | { "$@" sh -c 'printf "echo INJECTED\\n" > /proc/self/fd/0; echo wrote=$?'; cat; }`;
    const r = spawnSync('sh', ['-c', script, 'sh', process.execPath, path.join(ROOT, 'bin/ward.js'), 'run', '--quiet', ...degraded, '--'], { cwd: fx.ws, env: fx.env, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /wrote=0/, 'the write itself works: it went to the sandbox\'s own pipe');
    assert.doesNotMatch(r.stdout, /INJECTED/, r.stdout);
  });

  it("a reopen of the caller's stdout pipe for reading reads nothing a sibling wrote there", () => {
    const fx = sandboxFixture();
    // A sibling's output is in the pipe before Ward starts, and its reader waits (on a FIFO) until
    // Ward has ended: the command reads what is in the pipe without blocking, to stderr.
    const steal = 'import os, sys\nfd = os.open("/proc/self/fd/1", os.O_RDONLY | os.O_NONBLOCK)\ntry:\n    got = os.read(fd, 64)\nexcept BlockingIOError:\n    got = b"nothing"\nsys.stderr.write("read: %r\\n" % got)\n';
    const script = `mkfifo gate; { printf 'SIBLING-SECRET\\n'; "$@" python3 -c '${steal}'; echo > gate; } | { read _ < gate; cat; }`;
    const r = spawnSync('sh', ['-c', script, 'sh', process.execPath, path.join(ROOT, 'bin/ward.js'), 'run', '--quiet', ...degraded, '--'], { cwd: fx.ws, env: fx.env, encoding: 'utf8', timeout: 120_000 });
    assert.match(r.stderr, /read: b'nothing'/, r.stderr);
    assert.match(r.stdout, /SIBLING-SECRET/, 'the sibling\'s output reached its reader');
    assert.doesNotMatch(r.stderr, /SIBLING-SECRET/, r.stderr);
  });
});

/** The run's records in the fixture's audit log (`ward audit show --json`): the last launch, denials and exit. */
function lastRunRecords(fx: { env: NodeJS.ProcessEnv }): Record<string, unknown>[] {
  const shown = spawnSync(process.execPath, [path.join(ROOT, 'bin/ward.js'), 'audit', 'show', '--json'], { env: fx.env, encoding: 'utf8', timeout: 60_000 });
  assert.equal(shown.status, 0, shown.stderr);
  const recs = (JSON.parse(shown.stdout) as Record<string, unknown>[]).map((r) => ((r as { event?: Record<string, unknown> }).event ?? r));
  const start = recs.map((r) => r.type).lastIndexOf('launch');
  return recs.slice(start).filter((r) => ['launch', 'denial', 'exit'].includes(String(r.type)));
}

describe('a caller that stops reading the output does not hold Ward past the run\'s time', () => {
  // Before: Ward's blocking write to the caller's fd waited for the reader, past wall_time, with
  // no exit record (`ward run ... | less` left on its first page; a FIFO nobody reads).
  it('a FIFO whose reader holds it open and never reads: the command is killed at wall_time, and Ward ends and records it while the reader still waits', () => {
    const fx = sandboxFixture();
    writeFileSync(path.join(fx.ws, 'p.yaml'), 'extends: [default]\nresources: {wall_time: 2s}\n');
    // `sleep 600 < f` opens the FIFO for reading and never reads; it is killed only after Ward ended.
    const script = `mkfifo f; sleep 600 < f & reader=$!; "$@" > f 2> err.txt; echo "rc=$?"; if kill -0 $reader 2>/dev/null; then echo reader-still-waiting; fi; kill $reader`;
    const r = spawnSync('sh', ['-c', script, 'sh', process.execPath, path.join(ROOT, 'bin/ward.js'), 'run', ...degraded, '--policy', 'p.yaml', '--', 'yes'], { cwd: fx.ws, env: fx.env, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.signal, null, 'Ward ended by itself');
    assert.match(r.stdout, /rc=124\n/, r.stdout + r.stderr);
    assert.match(r.stdout, /reader-still-waiting/, 'Ward did not wait for the reader');
    const err = readFileSync(path.join(fx.ws, 'err.txt'), 'utf8');
    assert.match(err, /wall_time limit \(2s\) reached/);
    assert.match(err, /caller's stdout stopped taking the command's output/);
    const recs = lastRunRecords(fx);
    const exit = recs.find((x) => x.type === 'exit')!;
    assert.deepEqual([exit.exit_code, exit.reason], [124, 'timeout']);
    assert.ok(recs.some((x) => x.type === 'denial' && x.layer === 'output' && x.what === 'stdout' && x.verdict === 'truncated'), JSON.stringify(recs));
  });

  it('a command that ends before wall_time with its output unread: Ward waits until the wall_time, then ends with the command\'s own status', () => {
    const fx = sandboxFixture();
    writeFileSync(path.join(fx.ws, 'p.yaml'), 'extends: [default]\nresources: {wall_time: 2s}\n');
    // 100 kB: more than the caller's FIFO holds (64 KiB), less than it and the sandbox's pipe
    // together, so the command can end while some of its output is still Ward's to deliver.
    const script = `mkfifo f; sleep 600 < f & reader=$!; "$@" > f 2> err.txt; echo "rc=$?"; if kill -0 $reader 2>/dev/null; then echo reader-still-waiting; fi; kill $reader`;
    const r = spawnSync('sh', ['-c', script, 'sh', process.execPath, path.join(ROOT, 'bin/ward.js'), 'run', ...degraded, '--policy', 'p.yaml', '--', 'sh', '-c', 'head -c 100000 /dev/zero; exit 3'], { cwd: fx.ws, env: fx.env, encoding: 'utf8', timeout: 120_000 });
    assert.match(r.stdout, /rc=3\n/, r.stdout + r.stderr);
    assert.match(r.stdout, /reader-still-waiting/);
    const recs = lastRunRecords(fx);
    const exit = recs.find((x) => x.type === 'exit')!;
    assert.deepEqual([exit.exit_code, exit.reason], [3, 'exit']);
    assert.ok(recs.some((x) => x.type === 'denial' && x.layer === 'output' && x.what === 'stdout'), JSON.stringify(recs));
  });

  it('a reader that is slow but reading gets every byte, after the command has ended', () => {
    const fx = sandboxFixture();
    writeFileSync(path.join(fx.ws, 'p.yaml'), 'extends: [default]\nresources: {wall_time: 60s}\n');
    const script = `"$@" 2> err.txt | { sleep 2; wc -c; }`;
    const r = spawnSync('sh', ['-c', script, 'sh', process.execPath, path.join(ROOT, 'bin/ward.js'), 'run', ...degraded, '--policy', 'p.yaml', '--', 'sh', '-c', 'head -c 3000000 /dev/zero'], { cwd: fx.ws, env: fx.env, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.stdout.trim(), '3000000', readFileSync(path.join(fx.ws, 'err.txt'), 'utf8'));
    assert.ok(!lastRunRecords(fx).some((x) => x.type === 'denial' && x.layer === 'output'));
  });

  it('a terminal nobody reads (not the caller\'s controlling one, so relayed): Ward still ends at wall_time, with the record', () => {
    const fx = sandboxFixture();
    writeFileSync(path.join(fx.ws, 'p.yaml'), 'extends: [default]\nresources: {wall_time: 2s}\n');
    // A pty whose master is never read: its buffer fills and a blocking write would wait forever.
    const harness = `import os, pty, subprocess, sys
m, s = pty.openpty()
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=s, stderr=open("err.txt", "w"))
os.close(s)
try:
    print("rc=%d" % p.wait(timeout=90))
except subprocess.TimeoutExpired:
    p.kill(); print("ward-still-running")
`;
    const r = spawnSync('python3', ['-c', harness, process.execPath, path.join(ROOT, 'bin/ward.js'), 'run', ...degraded, '--policy', 'p.yaml', '--', 'yes'], { cwd: fx.ws, env: fx.env, encoding: 'utf8', timeout: 120_000 });
    assert.match(r.stdout, /rc=124/, r.stdout + r.stderr + readFileSync(path.join(fx.ws, 'err.txt'), 'utf8'));
    assert.match(readFileSync(path.join(fx.ws, 'err.txt'), 'utf8'), /caller's stdout stopped taking the command's output/);
    assert.equal(lastRunRecords(fx).find((x) => x.type === 'exit')!.reason, 'timeout');
  });

  it('a TCP socket whose peer never reads (a blocking write of Ward\'s): Ward still ends at wall_time, with the record', async () => {
    const fx = sandboxFixture();
    writeFileSync(path.join(fx.ws, 'p.yaml'), 'extends: [default]\nresources: {wall_time: 2s}\n');
    const net = await import('node:net');
    const held: import('node:net').Socket[] = [];
    const server = net.createServer((s) => (held.push(s), s.pause()));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const sock = net.connect((server.address() as import('node:net').AddressInfo).port, '127.0.0.1');
    await new Promise<void>((r) => sock.once('connect', () => r()));
    try {
      const child = spawn(process.execPath, [path.join(ROOT, 'bin/ward.js'), 'run', ...degraded, '--policy', 'p.yaml', '--', 'yes'], { cwd: fx.ws, env: fx.env, stdio: ['ignore', sock, 'pipe'] });
      let err = '';
      child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
      const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      assert.equal(code, 124, err);
      assert.match(err, /caller's stdout stopped taking the command's output/);
      const exit = lastRunRecords(fx).find((x) => x.type === 'exit')!;
      assert.equal(exit.reason, 'timeout');
    } finally {
      sock.destroy();
      for (const s of held) s.destroy();
      server.close();
    }
  });
});
