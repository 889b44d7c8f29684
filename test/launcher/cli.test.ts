/**
 * ward-launch's command line (strict parsing), inner's chdir / fd / exec
 * steps, and the status protocol (EOF at exec).
 */
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { innerArgs, LAUNCHER_EXIT, type Confinement } from '../../src/launcher/launcher.js';
import { bwrap, launcher, run, seccompDeny, status, STATUS_FD, SYSTEM_RULES, tempDir, type RunResult } from './helpers.js';

let work: string;
before(() => {
  work = tempDir('cli');
});
after(() => rmSync(work, { recursive: true, force: true }));

describe('subcommands', () => {
  test('--version prints a version line', async () => {
    const r = await run([launcher(), '--version']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^ward-launch \d+\.\d+\.\d+ \(status protocol 1\)\n$/);
  });

  test('landlock-abi prints the ABI number and exits 0', async () => {
    const r = await run([launcher(), 'landlock-abi']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^\d+\n$/);
    assert.ok(Number(r.stdout) >= 1, 'this machine has Landlock');
  });
});

describe('strict argument parsing: exit 125, stderr names the problem, nothing runs', () => {
  const cases: [string, string[], RegExp][] = [
    ['no subcommand', [], /missing subcommand/],
    ['unknown subcommand', ['sideways'], /'sideways'/],
    ['--version with extra arguments', ['--version', 'x'], /'--version'/],
    ['unknown inner option', ['inner', '--landlock', 'off', '--frobnicate', '--', '/bin/echo', 'ran'], /unknown option '--frobnicate'/],
    ['unknown outer option', ['outer', '--rlimit', 'nofile=1', '--', '/bin/echo', 'ran'], /unknown option '--rlimit'/],
    ['option without value', ['inner', '--landlock', 'off', '--chdir'], /--chdir needs a value/],
    ['option value "--"', ['inner', '--landlock', '--', '/bin/echo'], /--landlock needs a value/],
    ['missing --', ['inner', '--landlock', 'off', '/bin/echo', 'ran'], /unexpected argument '\/bin\/echo' \(the command goes after '--'\)/],
    ['outer missing --', ['outer', 'bwrap'], /unexpected argument 'bwrap'/],
    ['missing command', ['inner', '--landlock', 'off', '--'], /missing command/],
    ['outer missing program', ['outer', '--'], /missing program/],
    ['landlock mode missing', ['inner', '--', '/bin/echo', 'ran'], /--landlock required\|optional\|off must be given/],
    ['bad landlock mode', ['inner', '--landlock', 'maybe', '--', '/bin/echo'], /'maybe' is not required, optional or off/],
    ['--landlock twice', ['inner', '--landlock', 'off', '--landlock', 'off', '--', '/bin/echo'], /given twice/],
    ['rule with mode off', ['inner', '--landlock', 'off', '--ll', 'r:/usr', '--', '/bin/echo'], /make no sense/],
    ['scope with mode off', ['inner', '--landlock', 'off', '--ll-scope', '--', '/bin/echo'], /make no sense/],
    ['bad right letter', ['inner', '--landlock', 'required', '--ll', 'rq:/usr', '--', '/bin/echo'], /unknown right 'q'/],
    ['no rights', ['inner', '--landlock', 'required', '--ll', ':/usr', '--', '/bin/echo'], /not RIGHTS:PATH/],
    ['no colon', ['inner', '--landlock', 'required', '--ll', '/usr', '--', '/bin/echo'], /not RIGHTS:PATH/],
    ['relative rule path', ['inner', '--landlock', 'required', '--ll', 'r:usr', '--', '/bin/echo'], /must be absolute/],
    ['unknown rlimit', ['inner', '--landlock', 'off', '--rlimit', 'files=3', '--', '/bin/echo'], /unknown resource 'files'/],
    ['rlimit without =', ['inner', '--landlock', 'off', '--rlimit', 'nofile', '--', '/bin/echo'], /not NAME=SOFT/],
    ['rlimit negative', ['inner', '--landlock', 'off', '--rlimit', 'nofile=-1', '--', '/bin/echo'], /decimal numbers or 'unlimited'/],
    ['rlimit junk hard', ['inner', '--landlock', 'off', '--rlimit', 'nofile=5:lots', '--', '/bin/echo'], /decimal numbers/],
    ['rlimit overflow', ['inner', '--landlock', 'off', '--rlimit', 'cpu=99999999999999999999', '--', '/bin/echo'], /decimal numbers/],
    ['rlimit twice', ['inner', '--landlock', 'off', '--rlimit', 'cpu=1', '--rlimit', 'cpu=2', '--', '/bin/echo'], /'cpu' given twice/],
    ['status fd not a number', ['inner', '--status-fd', '3x', '--landlock', 'off', '--', '/bin/echo'], /'3x' is not a file descriptor/],
    ['status fd below 3', ['inner', '--status-fd', '1', '--landlock', 'off', '--', '/bin/echo'], /'1' is not a file descriptor number >= 3/],
    ['status fd not open', ['inner', '--status-fd', '77', '--landlock', 'off', '--', '/bin/echo'], /fd 77 is not open/],
    ['outer relative cgroup file', ['outer', '--cgroup-procs', 'cgroup.procs', '--', '/bin/echo'], /not an absolute path/],
  ];
  for (const [name, args, message] of cases) {
    test(name, async () => {
      const r = await run([launcher(), ...args]);
      assert.equal(r.code, LAUNCHER_EXIT.failure, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, '');
      assert.equal(r.statusText, '');
    });
  }
});

describe('inner steps', () => {
  const inner = (extra: { chdir?: string } = {}) => [
    launcher(),
    ...innerArgs({ landlock: { mode: 'required', rules: [...SYSTEM_RULES, { path: work, rights: 'rw' }] }, statusFd: STATUS_FD, ...extra }),
  ];

  test('--chdir changes directory (after Landlock)', async () => {
    const r = await run([...bwrap(['--bind', work, work]), ...inner({ chdir: work }), '/bin/pwd']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${work}\n`);
  });

  test('--chdir to a missing directory fails step chdir (ENOENT)', async () => {
    const dir = join(work, 'no-such-dir');
    const r = await run([...bwrap(['--bind', work, work]), ...inner({ chdir: dir }), '/bin/echo', 'ran']);
    assert.equal(r.code, 125);
    assert.equal(r.stdout, '');
    const f = status(r).failure!;
    assert.equal(f.step, 'chdir');
    assert.equal(f.code, 'ENOENT');
    assert.equal(f.detail, dir);
  });

  test('the command sees only fds 0, 1, 2 (plus ls\'s own directory fd)', async () => {
    // Hand the launcher extra open fds (4, 5) besides the status pipe (3).
    const a = openSync('/dev/null', 'r');
    const b = openSync('/dev/zero', 'r');
    try {
      const r = await run([...bwrap(), launcher(), ...innerArgs({ landlock: { mode: 'off', rules: [] }, statusFd: STATUS_FD }), '/bin/ls', '/proc/self/fd'], {
        extraFds: [a, b],
      });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split('\n'), ['0', '1', '2', '3']);
      assert.ok(status(r).ok);
    } finally {
      closeSync(a);
      closeSync(b);
    }
  });

  test('...also without bwrap, under Landlock (and proc_status needs no /proc grant)', async () => {
    const a = openSync('/dev/null', 'r');
    try {
      const r = await run(
        [launcher(), ...innerArgs({ landlock: { mode: 'required', rules: [...SYSTEM_RULES, { path: '/proc', rights: 'r' }] }, statusFd: STATUS_FD }), '/bin/ls', '/proc/self/fd'],
        { extraFds: [a] },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split('\n'), ['0', '1', '2', '3']);
      // proc_status is read from an fd opened before Landlock: no /proc grant needed.
      const r2 = await run([launcher(), ...innerArgs({ landlock: { mode: 'required', rules: SYSTEM_RULES }, statusFd: STATUS_FD }), '/bin/true']);
      assert.equal(status(r2).ready?.proc_status?.['NoNewPrivs'], '1');
    } finally {
      closeSync(a);
    }
  });

  test('without close_range (ENOSYS), the /proc/self/fd fallback closes them; without /proc either, step close-fds fails', { skip: process.arch !== 'x64' && 'x86_64 BPF program' }, async () => {
    const progFile = join(work, 'seccomp-close-range.bpf');
    writeFileSync(progFile, seccompDeny(436, 38));
    const extra = openSync('/dev/null', 'r');
    // A fresh fd per run: bwrap reads the program to EOF, moving the shared offset.
    const runWith = async (binds: string[]) => {
      const prog = openSync(progFile, 'r');
      try {
        return await run(
          [
            ...bwrap(['--seccomp', '4', ...binds]),
            launcher(),
            ...innerArgs({ landlock: { mode: 'off', rules: [] }, statusFd: STATUS_FD }),
            '/bin/ls',
            '/proc/self/fd',
          ],
          { extraFds: [prog, extra] },
        );
      } finally {
        closeSync(prog);
      }
    };
    try {
      const r = await runWith([]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split('\n'), ['0', '1', '2', '3']);
      const noProc = await runWith(['--tmpfs', '/proc']);
      assert.equal(noProc.code, 125, noProc.stderr);
      assert.equal(noProc.stdout, '');
      const f = status(noProc).failure!;
      assert.equal(f.step, 'close-fds');
      assert.equal(f.code, 'ENOENT');
    } finally {
      closeSync(extra);
    }
  });

  test('a missing command: stderr like a shell, exit 127, status step exec ENOENT after the ready line', async () => {
    const r = await run([...bwrap(), ...inner(), 'no-such-command-ward']);
    assert.equal(r.code, LAUNCHER_EXIT.notFound);
    assert.match(r.stderr, /^ward: cannot execute no-such-command-ward: No such file or directory$/m);
    const s = status(r);
    assert.equal(s.ok, false);
    assert.equal(s.ready?.landlock.status, 'applied');
    assert.deepEqual(
      { stage: s.failure?.stage, step: s.failure?.step, errno: s.failure?.errno, code: s.failure?.code, detail: s.failure?.detail },
      { stage: 'inner', step: 'exec', errno: 2, code: 'ENOENT', detail: 'no-such-command-ward' },
    );
  });

  test('a command that is not executable: exit 126, EACCES', async () => {
    const file = join(work, 'not-exec');
    writeFileSync(file, 'echo hi\n');
    chmodSync(file, 0o644);
    const r = await run([...bwrap(['--bind', work, work]), ...inner(), file]);
    assert.equal(r.code, LAUNCHER_EXIT.cannotExecute);
    assert.equal(status(r).failure?.code, 'EACCES');
  });

  test('PATH lookup works (execvp)', async () => {
    const r = await run([...bwrap(), ...inner(), 'echo', 'found', 'on', 'PATH']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'found on PATH\n');
  });
});

describe('inner step confinement: what must be in force is checked before the exec', () => {
  const hostNs = (name: string) => statSync(`/proc/self/ns/${name}`).ino;
  const inner = (require: Confinement) => [launcher(), ...innerArgs({ landlock: { mode: 'off', rules: [] }, statusFd: STATUS_FD, require })];
  const confinementFailure = (r: RunResult) => {
    assert.equal(r.code, 125, r.stderr);
    assert.equal(r.stdout, '', 'the command ran');
    const f = status(r).failure!;
    assert.equal(f.step, 'confinement');
    return f.detail;
  };

  test('outside any sandbox: the host\'s namespace, no no_new_privs, no seccomp: each refused', async () => {
    assert.match(confinementFailure(await run([...inner({ seccompFilters: 0, unprivileged: false, namespaces: { net: hostNs('net') } }), '/bin/echo', 'ran'])), /^the net namespace is the host's/);
    assert.match(confinementFailure(await run([...inner({ seccompFilters: 0, unprivileged: true, namespaces: {} }), '/bin/echo', 'ran'])), /^NoNewPrivs is not 1|^Cap\w+ is [0-9a-f]+: the sandbox holds capabilities/);
    assert.match(confinementFailure(await run([...inner({ seccompFilters: 1, unprivileged: false, namespaces: {} }), '/bin/echo', 'ran'])), /^Seccomp is 0, not 2/);
  });

  test('in bwrap without --seccomp: refused; with it, every requirement holds and the command runs', { skip: process.arch !== 'x64' && 'x86_64 BPF program' }, async () => {
    const namespaces = Object.fromEntries(['user', 'pid', 'ipc', 'uts', 'net', 'cgroup', 'mnt'].map((n) => [n, hostNs(n)]));
    const want: Confinement = { seccompFilters: 1, unprivileged: true, namespaces };
    assert.match(confinementFailure(await run([...bwrap(), ...inner(want), '/bin/echo', 'ran'])), /^Seccomp is 0, not 2/);
    const progFile = join(work, 'seccomp-confinement.bpf');
    writeFileSync(progFile, seccompDeny(436, 38));
    const prog = openSync(progFile, 'r');
    try {
      const r = await run([...bwrap(['--seccomp', '4']), ...inner(want), '/bin/echo', 'ran'], { extraFds: [prog] });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'ran\n');
      assert.equal(status(r).ready?.proc_status?.['Seccomp'], '2');
      // One more filter than is in force: refused (the count, not only the mode, is checked).
      const prog2 = openSync(progFile, 'r');
      try {
        const more = await run([...bwrap(['--seccomp', '4']), ...inner({ ...want, seccompFilters: 2 }), '/bin/echo', 'ran'], { extraFds: [prog2] });
        assert.match(confinementFailure(more), /^Seccomp_filters is 1, fewer than the 2 Ward installs/);
      } finally {
        closeSync(prog2);
      }
    } finally {
      closeSync(prog);
    }
  });
});

describe('status protocol', () => {
  test('EOF on the status pipe comes at exec, long before the command ends (bwrap holds no copy)', async () => {
    const r = await run([...bwrap(), launcher(), ...innerArgs({ landlock: { mode: 'required', rules: SYSTEM_RULES }, statusFd: STATUS_FD }), '/bin/sleep', '1.5']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(status(r).ok);
    assert.ok(r.statusEofMs >= 0 && r.statusEofMs < r.exitMs - 1000, `EOF at ${r.statusEofMs} ms, exit at ${r.exitMs} ms`);
  });

  test('a status fd that cannot be written: the command does not run (exit 125)', async () => {
    const ro = openSync('/dev/null', 'r'); // fd 3 is open but read-only: write fails with EBADF
    try {
      const r = await run([launcher(), ...innerArgs({ landlock: { mode: 'off', rules: [] }, statusFd: STATUS_FD }), '/bin/echo', 'ran'], { statusFd: ro });
      assert.equal(r.code, 125);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /cannot write the status fd: Bad file descriptor/);
    } finally {
      closeSync(ro);
    }
  });

  test('strings in the JSON are escaped (a path with quotes, backslash, newline, tab, UTF-8)', async () => {
    const odd = join(work, 'odd "name"\\ with\nnewline\tand é');
    const r = await run([launcher(), ...innerArgs({ landlock: { mode: 'required', rules: [...SYSTEM_RULES, { path: odd, rights: 'r' }] }, statusFd: STATUS_FD }), '/bin/true']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(status(r).ready!.landlock.skipped, [odd]);
    mkdirSync(odd);
    const r2 = await run([launcher(), ...innerArgs({ landlock: { mode: 'required', rules: SYSTEM_RULES }, chdir: odd, statusFd: STATUS_FD }), join(work, 'nope "x"')]);
    assert.equal(status(r2).failure?.detail, join(work, 'nope "x"'));
  });
});
