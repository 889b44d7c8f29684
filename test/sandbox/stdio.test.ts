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
const ATTACK = `import os, sys
for fd in (0, 1, 2):
    res = []
    for name, f in (("chmod", lambda: os.fchmod(fd, 0o777)), ("utime", lambda: os.utime(fd, (1, 1))), ("xattr", lambda: os.setxattr(fd, "user.x", b"1"))):
        try:
            f(); res.append(name + "=done")
        except OSError as e:
            res.append(name + "=" + str(e.errno))
    sys.stderr.write("%d %s %s\\n" % (fd, os.readlink("/proc/self/fd/%d" % fd), " ".join(res)))
sys.stdout.write(sys.stdin.read())
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
