/**
 * Hard limits: each one stops a real runaway, Ward says which limit did it, and
 * nothing is left behind. Where this user has no cgroup (an unprivileged run
 * without delegation) the cgroup-backed limits must be refused, not skipped.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, constants, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { run, WardError, type PolicyInput } from '../../src/index.js';
import { EXHAUST_INOTIFY, EXHAUST_SIGQUEUE, SIGQUEUE_SETUP } from '../../src/probes/groups/resources.js';
import { USERNS_LIMIT_SHARE } from '../../src/plan/compile.js';
import type { RunRecord } from '../../src/sandbox/launch.js';
import { createCgroup, readCgroupMounts } from '../../src/sandbox/cgroup.js';
import { fixtureRunOptions, hasCgroup, isRoot, sandboxFixture, wardCgroupsOf, wardWithReadOnlyCgroups } from '../helpers.js';

function limited(resources: Record<string, unknown>): PolicyInput {
  return { policy: { extends: ['default'], resources } };
}

async function go(policy: PolicyInput, argv: string[], allowDegraded = !hasCgroup) {
  const fx = sandboxFixture();
  const r = await run(policy, argv, { workspace: fx.ws, env: fx.env, stdin: 'ignore', allowDegraded });
  return { ...r, out: r.stdout.toString(), err: r.stderr.toString(), ws: fx.ws };
}

/** The degraded line for memory without a cgroup, as Ward prints and records it. */
const DEGRADED_MEMORY = (bytes: number) => `memory: RLIMIT_DATA per process only (${bytes} bytes each): not shared memory, tmpfs or page cache, and not the tree (each process may use as much)`;

/** Python that spins for 1.8 s of its own CPU time, then exits 0. */
const SPIN_1800MS = 'import time\nt = time.process_time()\nwhile time.process_time() - t < 1.8: pass';

describe('resource limits', () => {
  it('a sleeper is killed by the wall clock: exit 124, the whole tree gone', async () => {
    const started = Date.now();
    const r = await go(limited({ wall_time: '1s' }), ['sh', '-c', 'sleep 30 & sleep 30; echo survived']);
    assert.equal(r.exitCode, 124);
    assert.equal(r.reason, 'timeout');
    assert.match(r.message ?? '', /wall_time/);
    assert.ok(Date.now() - started < 10_000);
    assert.doesNotMatch(r.out, /survived/);
    assert.deepEqual(wardCgroupsOf(), []);
  });

  it('a CPU spinner is killed at cpu_time: exit 137, cpu_time named (without a cgroup, RLIMIT_CPU stops it and the status is its own)', async () => {
    const r = await go(limited({ cpu_time: '1s', wall_time: '30s' }), ['sh', '-c', 'while :; do :; done']);
    if (hasCgroup) {
      assert.equal(r.exitCode, 137);
      assert.equal(r.reason, 'cpu_time');
      assert.match(r.message ?? '', /cpu_time/);
      assert.ok(r.denials.some((d) => d.what === 'cpu_time' && d.verdict === 'killed'), JSON.stringify(r.denials));
    } else {
      // Nothing the command cannot forge says it was the limit: SIGXCPU's status, named as such, no denial.
      assert.equal(r.exitCode, 152);
      assert.match(r.message ?? '', /exit status 152, as SIGXCPU would give: RLIMIT_CPU \(1s per process\) sends it/);
      assert.ok(!r.denials.some((d) => d.what === 'cpu_time'), JSON.stringify(r.denials));
    }
  });

  it('an exit status of 152 or 153 that the command chose is recorded as its own, not as a limit kill', async () => {
    // Under a cgroup, cpu_time is enforced and accounted; without one, the policy must allow RLIMIT_CPU alone.
    const policy = { policy: { extends: ['minimal'], resources: { cpu_time: '2s', file_size: '1MiB' }, sandbox: { allow_degraded: !hasCgroup } } };
    for (const [script, status] of [['exit 152', 152], ['exit 153', 153], ['kill -XCPU $$', 152], ['kill -XFSZ $$', 153]] as const) {
      const fx = sandboxFixture();
      const records: RunRecord[] = [];
      const r = await run(policy, ['sh', '-c', script], fixtureRunOptions(fx, records));
      assert.equal(r.exitCode, status, `${script}: ${r.message}`);
      assert.notEqual(r.reason, 'cpu_time', script);
      assert.notEqual(r.reason, 'file_size', script);
      assert.deepEqual(records.filter((x) => x.type === 'denial'), [], `${script}: no denial record`);
      const exit = records.find((x) => x.type === 'exit');
      assert.equal(exit?.type === 'exit' && exit.exit_code, status, script);
      assert.match(r.message ?? '', status === 152 ? /as SIGXCPU would give.*the command's own status/ : /as SIGXFSZ would give.*the command's own status/, script);
    }
  });

  it('a wall_time beyond setTimeout\'s 2^31-1 ms (600h) does not kill the command at once', async () => {
    const r = await go(limited({ wall_time: '600h' }), ['sh', '-c', 'sleep 0.5; echo finished']);
    assert.equal(r.exitCode, 0, r.err);
    assert.equal(r.reason, 'exit');
    assert.match(r.out, /finished/);
  });

  it('a disk filler is stopped at file_size; its status is SIGXFSZ\'s, named, but not recorded as a kill Ward cannot confirm', async () => {
    const r = await go(limited({ file_size: '1MiB' }), ['sh', '-c', 'head -c 5000000 /dev/zero > big']);
    assert.ok(statSync(path.join(r.ws, 'big')).size <= 1024 * 1024);
    // bwrap reports a death by SIGXFSZ as exit status 153, exactly as it reports `exit 153`.
    assert.equal(r.exitCode, 153);
    assert.match(r.message ?? '', /exit status 153, as SIGXFSZ would give: RLIMIT_FSIZE \(file_size, 1048576 bytes\)/);
    assert.ok(!r.denials.some((d) => d.what === 'file_size'), JSON.stringify(r.denials));
  });

  it('file_size: fallocate cannot take disk beyond the limit (keep-size and insert-range refused, plain allocation checked)', async () => {
    // RLIMIT_FSIZE is not checked for FALLOC_FL_KEEP_SIZE: without the seccomp rule this file
    // takes 64 MiB of disk under a 1 MiB limit. Python ignores SIGXFSZ, so a checked call is EFBIG.
    const py = `import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open('big', os.O_RDWR | os.O_CREAT, 0o644)
def fa(mode, off, n):
    r = libc.fallocate(fd, mode, ctypes.c_long(off), ctypes.c_long(n))
    return ctypes.get_errno() if r == -1 else 0
print('keep_size', fa(0x01, 0, 64 << 20))
print('zero_keep', fa(0x11, 0, 64 << 20))
print('plain', fa(0, 0, 64 << 20))
print('small', fa(0, 0, 512 << 10))
print('punch', fa(0x03, 0, 4096))
print('blocks', os.fstat(fd).st_blocks * 512)`;
    const r = await go(limited({ file_size: '1MiB' }), ['python3', '-c', py]);
    assert.equal(r.exitCode, 0, r.err);
    const v = Object.fromEntries(r.out.trim().split('\n').map((l) => l.split(' ')));
    assert.equal(v['keep_size'], '95', r.out); // EOPNOTSUPP
    assert.equal(v['zero_keep'], '95', r.out);
    assert.equal(v['plain'], '27', r.out); // EFBIG from RLIMIT_FSIZE
    assert.equal(v['small'], '0', r.out);
    assert.equal(v['punch'], '0', r.out);
    assert.ok(Number(v['blocks']) <= 1024 * 1024, r.out);
    assert.ok(statSync(path.join(r.ws, 'big')).blocks * 512 <= 1024 * 1024);
    // Without file_size the filter has no such rule: keep-size allocation works as usual.
    const free = await go(limited({ file_size: 'unlimited' }), ['python3', '-c', py.replace(/64 << 20/g, '1 << 20')]);
    assert.match(free.out, /^keep_size 0$/m, free.out);
  });

  it('open_files caps descriptors per process', async () => {
    const r = await go(limited({ open_files: 32 }), ['sh', '-c', 'ulimit -n']);
    assert.equal(r.out.trim(), '32');
  });

  it('output beyond resources.output is dropped and reported', async () => {
    const r = await go(limited({ output: '1KiB' }), ['sh', '-c', 'head -c 100000 /dev/zero | tr "\\0" x']);
    assert.equal(r.stdout.length, 1024);
    assert.equal(r.outputTruncated, true);
    assert.ok(r.denials.some((d) => d.what === 'output'));
  });

  if (hasCgroup) {
    it('a memory hog is killed by the memory limit: exit 137, memory named', async () => {
      const r = await go(limited({ memory: '64MiB', wall_time: '60s' }), ['python3', '-c', 'a = []\nwhile True: a.append(bytearray(4 << 20))']);
      assert.equal(r.exitCode, 137, r.err);
      assert.equal(r.reason, 'memory');
      assert.match(r.message ?? '', /memory limit/);
      assert.deepEqual(wardCgroupsOf(), []);
    });

    it('a fork bomb is held by pids, then stopped by the wall clock; the host keeps working', async () => {
      const bomb = 'import os, time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.01)';
      const r = await go(limited({ pids: 32, wall_time: '3s' }), ['python3', '-c', bomb]);
      assert.equal(r.exitCode, 124);
      const pids = r.denials.find((d) => d.what === 'pids');
      assert.ok(pids, `pids refusals recorded: ${JSON.stringify(r.denials)}`);
      assert.deepEqual(wardCgroupsOf(), []);
    });

    it('cpu_time holds over the whole tree: four children each under the limit are killed together', async () => {
      const r = await go(limited({ cpu_time: '2s', wall_time: '60s' }), ['sh', '-c', `for i in 1 2 3 4; do python3 -c '${SPIN_1800MS}' & done; wait; echo survived`]);
      assert.equal(r.exitCode, 137, r.err);
      assert.equal(r.reason, 'cpu_time');
      assert.doesNotMatch(r.out, /survived/);
    });

    it('a limit the kernel refuses as a value is named as such, not blamed on the cgroup setup', () => {
      // Policies cannot say this any more (load refuses pids above 4194304); a library caller's plan can.
      assert.throws(
        () => createCgroup({ memory: null, pids: 100_000_000_000, cpus: null }, { cpuAccounting: false }),
        (e: unknown) => e instanceof WardError && /kernel refused the limit pids\.max=100000000000 \(EINVAL\)/.test(e.message) && /resources\.memory, resources\.pids or resources\.cpus/.test(e.fix ?? ''),
      );
      assert.deepEqual(wardCgroupsOf(), []);
    });

    it('the launch record names the cgroup and the limits written', async () => {
      const r = await go(limited({ memory: '256MiB', pids: 100 }), ['true']);
      assert.equal(r.exitCode, 0);
      const cg = r.launch.layers.cgroup;
      assert.ok(cg);
      assert.ok(cg.applied.some((a) => /memory(\.max|\.limit_in_bytes)=268435456/.test(a)), cg.applied.join(' '));
      assert.ok(cg.applied.some((a) => /pids\.max=100/.test(a)));
    });

    it('the sandbox sees its own cgroup as the root (cgroup namespace)', async () => {
      const r = await go(limited({ pids: 100 }), ['cat', '/proc/self/cgroup']);
      for (const line of r.out.trim().split('\n')) assert.match(line, /:\/$/, line);
    });
  } else {
    it('without a writable cgroup, resource limits are refused (fail closed), naming the fix', async () => {
      await assert.rejects(
        go(limited({ memory: '64MiB' }), ['true'], false),
        (e: unknown) => e instanceof WardError && /cannot apply the policy's resource limits/.test(e.message) && /systemd-run --user --scope|Delegate/.test(e.fix ?? ''),
      );
    });

    it('cpu_time alone needs the cgroup too: refused without one, naming cpu_time and the fix', async () => {
      // RLIMIT_CPU is per process: four children of 1.8 s each would run a 2 s limit to 7 s.
      const policy = { policy: { extends: ['minimal'], resources: { cpu_time: '2s' }, sandbox: { allow_degraded: true } } };
      await assert.rejects(
        go(policy, ['sh', '-c', `for i in 1 2 3 4; do python3 -c '${SPIN_1800MS}' & done; wait; echo survived`], false),
        (e: unknown) => e instanceof WardError && /cpu_time over the whole process tree/.test(e.message) && /cpu_time to "unlimited"/.test(e.fix ?? ''),
      );
      const r = await go(policy, ['true'], true);
      assert.equal(r.exitCode, 0, r.err);
      assert.ok(r.launch.degraded.some((d) => /^cpu_time: RLIMIT_CPU per process only/.test(d)), r.launch.degraded.join('\n'));
      assert.deepEqual(r.launch.layers.rlimits.cpu, [2, 3]);
    });

    it('with --allow-degraded (and a policy that allows it) rlimits stand in, and the record says so', async () => {
      const r = await go(limited({ memory: '64MiB', pids: 64 }), ['python3', '-c', 'a = []\nwhile True: a.append(bytearray(4 << 20))'], true);
      assert.notEqual(r.exitCode, 0, 'RLIMIT_DATA stops the hog');
      assert.match(r.err, /MemoryError/);
      assert.ok(r.launch.degraded.some((d) => /cgroup/.test(d)));
      assert.deepEqual(r.launch.layers.rlimits.data, [64 * 1024 * 1024, 64 * 1024 * 1024]);
      // What each stand-in does not do is named, not only the missing cgroup.
      assert.ok(r.launch.degraded.includes(DEGRADED_MEMORY(64 * 1024 * 1024)), r.launch.degraded.join('\n'));
      assert.ok(r.launch.degraded.some((d) => /^pids: RLIMIT_NPROC \(64\) instead of the pids cgroup: it counts .* user namespace/.test(d)), r.launch.degraded.join('\n'));
    });
  }

  if (!isRoot) {
    it('RLIMIT_NPROC holds a fork bomb inside the user namespace for an unprivileged user', async () => {
      const r = await go(limited({ pids: 20, wall_time: '3s' }), ['sh', '-c', 'for i in $(seq 1 60); do sleep 2 & done 2>&1; wait']);
      assert.match(r.out + r.err, /Resource temporarily unavailable|Cannot fork|can't fork/i);
    });
  }

  it('--allow-degraded is refused when the policy does not allow degraded runs', async () => {
    await assert.rejects(
      go({ policy: { extends: ['default'], sandbox: { allow_degraded: false } } }, ['true'], true),
      (e: unknown) => e instanceof WardError && /does not allow degraded/.test(e.message),
    );
  });

  it('leaves no temp files behind in the workspace or /tmp', async () => {
    const fx = sandboxFixture();
    writeFileSync(path.join(fx.ws, 'keep'), 'x');
    const before = readdirSync('/tmp').filter((n) => n.startsWith('ward') && !n.startsWith('ward-test') && !n.startsWith('ward-mounts') && !n.startsWith('ward-policy'));
    await run({ profile: 'default' }, ['sh', '-c', 'echo hi > /tmp/inside'], { workspace: fx.ws, env: fx.env, stdin: 'ignore', allowDegraded: !hasCgroup });
    const after = readdirSync('/tmp').filter((n) => n.startsWith('ward') && !n.startsWith('ward-test') && !n.startsWith('ward-mounts') && !n.startsWith('ward-policy'));
    assert.deepEqual(after, before);
    assert.deepEqual(readdirSync(fx.ws), ['keep']);
    assert.equal(readFileSync(path.join(fx.ws, 'keep'), 'utf8'), 'x');
  });
});

/**
 * Runs Python `exhaust` (it sets `n`, how many it got, and `err`, the errno that stopped it) in a
 * sandbox, which then reports through the fifo `held` and keeps what it took until the host
 * writes to the fifo `go`. While it holds them, `hostCheck` (Python, printing an errno, 0 for
 * success) runs on the host as the same user. Fifos sequence the two sides, no sleeps.
 */
async function whileSandboxHolds(exhaust: string, hostCheck: string) {
  const fx = sandboxFixture();
  const held = path.join(fx.ws, 'held');
  const go = path.join(fx.ws, 'go');
  for (const f of [held, go]) assert.equal(spawnSync('mkfifo', [f]).status, 0);
  const prog = `import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
n, err = 0, 0
${exhaust}
with open('held', 'w') as f:
    f.write('%d %d\\n' % (n, err))
open('go').read()
`;
  const running = run({ profile: 'default' }, ['python3', '-c', prog], { workspace: fx.ws, env: fx.env, stdin: 'ignore', allowDegraded: !hasCgroup });
  // If the sandbox ends first, the other end of a fifo is opened here, so no open stays blocked.
  const ended = running.then((r) => ({ ended: r }));
  const first = await Promise.race([readFile(held, 'utf8').then((text) => ({ text })), ended]);
  if ('ended' in first) {
    closeSync(openSync(held, constants.O_WRONLY | constants.O_NONBLOCK));
    assert.fail(`the sandbox ended before it held anything: exit ${first.ended.exitCode} ${first.ended.stderr.toString()}`);
  }
  const [n, err] = first.text.trim().split(' ').map(Number) as [number, number];
  const host = spawnSync('python3', ['-c', `import ctypes, os, signal\nlibc = ctypes.CDLL(None, use_errno=True)\n${hostCheck}`], { encoding: 'utf8' });
  const second = await Promise.race([writeFile(go, 'x').then(() => ({})), ended]);
  if ('ended' in second) closeSync(openSync(go, constants.O_RDONLY | constants.O_NONBLOCK));
  const r = await running;
  assert.equal(r.exitCode, 0, r.stderr.toString());
  return { n, err, host: host.stdout.trim() + host.stderr, launch: r.launch };
}

describe("per-user kernel budgets: the sandbox cannot take the caller's", () => {
  it('inotify instances stop at the sandbox user namespace\'s bound; the host user can still make one meanwhile', async () => {
    const hostMax = Number(readFileSync('/proc/sys/user/max_inotify_instances', 'utf8'));
    const bound = Math.max(1, Math.floor(hostMax / USERNS_LIMIT_SHARE));
    const r = await whileSandboxHolds(
      EXHAUST_INOTIFY,
      `fd = libc.inotify_init1(0)\nprint(0 if fd >= 0 else ctypes.get_errno())`,
    );
    assert.equal(r.host, '0', `the host user made an inotify instance while the sandbox held ${r.n}`);
    assert.ok(r.n >= 1 && r.n <= bound, `the sandbox made ${r.n} inotify instances; its bound is ${bound} (the host's ${hostMax})`);
    assert.equal(r.err, 24, `stopped by EMFILE after ${r.n}`);
    assert.equal(r.launch.layers.userns_limits?.['max_inotify_instances'], bound);
  });

  it('queued signals stop at RLIMIT_SIGPENDING; the host user can still queue one meanwhile', async () => {
    const r = await whileSandboxHolds(
      EXHAUST_SIGQUEUE,
      `${SIGQUEUE_SETUP}\nprint(0 if libc.sigqueue(os.getpid(), signal.SIGRTMIN, None) == 0 else ctypes.get_errno())`,
    );
    assert.equal(r.host, '0', `the host user queued a signal while the sandbox held ${r.n}`);
    assert.ok(r.n <= 1024, `the sandbox queued ${r.n} signals`);
    assert.equal(r.err, 11, `stopped by EAGAIN after ${r.n}`);
    const [soft] = r.launch.layers.rlimits['sigpending'] ?? [];
    assert.ok(typeof soft === 'number' && r.n <= soft, `the sandbox queued ${r.n} signals under RLIMIT_SIGPENDING ${String(soft)}`);
  });
});

/** The audit log's records, in order. */
function logRecords(log: string): Record<string, unknown>[] {
  return readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('degraded runs as root on a host whose cgroups are unusable (every cgroup mount read-only, in a private mount namespace)', () => {
  const everyCgroup = () => true;
  /** A policy file beside the fixture's workspace with these resources, degraded runs allowed. */
  function policyFile(fx: { ws: string }, resources: Record<string, unknown>): string {
    const file = path.join(fx.ws, '..', 'degraded.json');
    writeFileSync(file, JSON.stringify({ extends: ['minimal'], resources, sandbox: { allow_degraded: true } }));
    return file;
  }

  it('a policy with pids is refused even with --allow-degraded: the kernel never applies RLIMIT_NPROC to uid 0, so 200 forks would succeed', (t) => {
    const fx = sandboxFixture();
    const log = path.join(fx.ws, '..', 'audit.jsonl');
    const policy = policyFile(fx, { memory: '256MiB', pids: 64, cpus: 1, cpu_time: '20s' });
    const fork200 = 'import os, time\nn = 0\nfor i in range(200):\n    try:\n        p = os.fork()\n    except OSError:\n        break\n    if p == 0:\n        time.sleep(2)\n        os._exit(0)\n    n += 1\nprint("forked", n)';
    const r = wardWithReadOnlyCgroups(everyCgroup, ['run', '--policy', policy, '--workspace', fx.ws, '--allow-degraded', '--audit-log', log, '--', 'python3', '-c', fork200], { cwd: fx.ws, env: fx.env });
    if (typeof r === 'string') return t.skip(r);
    assert.equal(r.code, 125, `${r.stdout}${r.stderr}`);
    assert.doesNotMatch(r.stdout, /forked/, 'the fork bomb never ran');
    assert.match(r.stderr, /cannot apply the policy's pids limit \(64\) without a cgroup, even degraded: Ward runs as root, and the kernel never applies RLIMIT_NPROC .* to uid 0/);
    assert.match(r.stderr, /fix: make the pids controller usable .*; or run Ward as an unprivileged user, where RLIMIT_NPROC stands in; or set resources\.pids to "unlimited"/);
    const records = logRecords(log);
    assert.ok(!records.some((x) => x.type === 'launch'), 'nothing was launched');
    const failed = records.filter((x) => x.type === 'launch-failed').at(-1);
    assert.equal(failed?.step, 'cgroup');
    assert.match(String(failed?.message), /RLIMIT_NPROC/);
    // cgroup v2: only cgroups are tried as parents, never the directory the v2 filesystem is mounted in.
    for (const m of readCgroupMounts().filter((x) => x.type === 'cgroup2')) assert.ok(!r.stderr.includes(`${path.dirname(m.mountpoint)}:`), r.stderr);
  });

  it('without pids the run goes on degraded, and the printed and recorded lines say what RLIMIT_DATA does not count', (t) => {
    const fx = sandboxFixture();
    const log = path.join(fx.ws, '..', 'audit.jsonl');
    const policy = policyFile(fx, { memory: '256MiB', cpus: 1, cpu_time: '20s' });
    const r = wardWithReadOnlyCgroups(everyCgroup, ['run', '--policy', policy, '--workspace', fx.ws, '--allow-degraded', '--audit-log', log, '--', 'true'], { cwd: fx.ws, env: fx.env });
    if (typeof r === 'string') return t.skip(r);
    assert.equal(r.code, 0, r.stderr);
    const memory = DEGRADED_MEMORY(256 * 1024 * 1024);
    assert.ok(r.stderr.split('\n').includes(`ward: degraded: ${memory}`), r.stderr);
    assert.match(r.stderr, /^ward: degraded: cpus: no bandwidth limit without a cgroup$/m);
    assert.match(r.stderr, /^ward: degraded: cpu_time: RLIMIT_CPU per process only/m);
    const launch = logRecords(log).find((x) => x.type === 'launch') as { degraded: string[]; layers: { cgroup: unknown; rlimits: Record<string, unknown> } } | undefined;
    assert.ok(launch, 'the launch is recorded');
    assert.equal(launch.layers.cgroup, null);
    assert.ok(launch.degraded.includes(memory), launch.degraded.join('\n'));
    assert.deepEqual(launch.layers.rlimits['data'], [256 * 1024 * 1024, 256 * 1024 * 1024]);
  });
});
