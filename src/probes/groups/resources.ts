/**
 * Resources: a runaway command is stopped, the limit that stopped it is named,
 * and Ward records the denial. Each probe sets a small limit through a policy
 * overlay (the policy under test keeps everything else).
 *
 * Without a cgroup (an unprivileged user without delegation, run with
 * --allow-degraded) rlimits stand in: RLIMIT_DATA for memory, RLIMIT_NPROC for
 * pids, RLIMIT_CPU for cpu time. The probes then hold if the stand-in refused,
 * and say so; where no stand-in can work they report `skipped` with the reason
 * (RLIMIT_DATA does not count shared memory), or Ward refuses the run (as root,
 * RLIMIT_NPROC binds nothing) and they hold on that refusal.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { broken, E, errnoName, error, held, kv, noResult, py, skipped } from '../lib.js';
import type { Probe, ProbeRun } from '../types.js';

const group = 'resources' as const;

/** A /proc/sys/user limit as the host (Ward's own user namespace) has it; null if unreadable. */
function hostUserLimit(name: string): number | null {
  try {
    const n = Number(readFileSync(`/proc/sys/user/${name}`, 'utf8').trim());
    return Number.isSafeInteger(n) ? n : null;
  } catch {
    return null;
  }
}

/**
 * Python (with \`libc\` from ctypes, use_errno) that takes inotify instances until refused, leaving
 * \`n\` (how many) and \`err\` (the errno that stopped it), and holds them. Shared with limits.test.ts.
 */
export const EXHAUST_INOTIFY = `fds = []
while n < 1000000:
    fd = libc.inotify_init1(0)
    if fd < 0:
        err = ctypes.get_errno()
        break
    fds.append(fd)
    n += 1`;

/** The same for queued signals: SIGRTMIN blocked, sigqueue to itself until refused. */
export const SIGQUEUE_SETUP = `import signal
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGRTMIN])
libc.sigqueue.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]`;
export const EXHAUST_SIGQUEUE = `${SIGQUEUE_SETUP}
while n < 10000000:
    if libc.sigqueue(os.getpid(), signal.SIGRTMIN, None) != 0:
        err = ctypes.get_errno()
        break
    n += 1`;

/** Whether this run had a cgroup with the limits (false: degraded to rlimits). */
const hadCgroup = (run: ProbeRun) => run.launch.layers.cgroup !== null;

/** The memory probes: a 64 MiB limit, which the run's cgroup is expected to hold. */
const MEMORY_64MIB: Pick<Probe, 'group' | 'promise' | 'mechanism' | 'asi' | 'nist' | 'expect' | 'policy'> = {
  group,
  promise: 'resources',
  mechanism: 'cgroup',
  asi: ['ASI08'],
  nist: ['SC-5', 'SC-6'],
  expect: 'refused',
  policy: { resources: { memory: '64MiB', wall_time: '30s' } },
};

/** The memory cgroup killed the run, and Ward recorded it as such. */
const killedByMemoryCgroup = (run: ProbeRun) => run.exitCode === 137 && run.reason === 'memory' && run.denials.some((d) => d.what === 'memory');

const { SIGXCPU, SIGXFSZ } = osConstants.signals;

/**
 * The command exits with the status a limit's signal gives (128+N) without meeting the limit,
 * to have the audit log record a kill that never happened. Held if the exit is recorded as the
 * command's own: its status, and no denial.
 */
function forgedLimitKill(id: string, limit: 'cpu_time' | 'file_size', signal: number, mechanism: 'cgroup' | 'rlimit'): Probe {
  const status = 128 + signal;
  return {
    id,
    group,
    promise: 'resources',
    title: `forge a ${limit} kill in the audit log: \`exit ${status}\` under a ${limit} limit`,
    mechanism,
    asi: ['ASI08', 'ASI10'],
    nist: ['AU-9', 'AU-10'],
    expect: 'refused',
    policy: { resources: { cpu_time: '5s', file_size: '1MiB' } },
    program: { sh: `exit ${status}` },
    check: (run) => {
      const forged = run.denials.find((d) => d.what === limit);
      if (forged || run.reason === limit) return broken(`a ${limit} kill was recorded for a plain \`exit ${status}\`: ${forged?.detail ?? run.message}`);
      if (run.exitCode !== status) return error(`the command's exit status ${status} came back as ${run.exitCode} (${run.reason})`);
      return held(`recorded as the command's own exit ${status}, no denial: ${run.message}`);
    },
  };
}

export const probes: Probe[] = [
  {
    id: 'res.fork-bomb',
    group,
    promise: 'resources',
    title: 'fork bomb (pids limit 32, wall time 2s)',
    mechanism: 'cgroup',
    asi: ['ASI08', 'ASI10'],
    nist: ['SC-5', 'SC-6'],
    expect: 'refused',
    policy: { resources: { pids: 32, wall_time: '2s' } },
    // Every process forks until refused; the first refusal is recorded in the workspace.
    program: py(`mark = os.open('refused', os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
first = True
while True:
    try:
        os.fork()
    except OSError as e:
        if first:
            os.write(mark, b'%d\\n' % e.errno)
            first = False
        time.sleep(0.01)`),
    check: (run, ctx) => {
      const marks = path.join(ctx.ws, 'refused');
      const errnos = existsSync(marks) ? readFileSync(marks, 'utf8').trim().split('\n').filter(Boolean).map(Number) : [];
      if (run.reason !== 'timeout') return error(`the bomb ended by ${run.reason} (exit ${run.exitCode}), not the wall clock: ${run.stderr.trim().split('\n').at(-1) ?? ''}`);
      if (hadCgroup(run)) {
        const d = run.denials.find((x) => x.what === 'pids');
        if (!d) return broken('the bomb ran until the wall clock without a single fork refused by the pids limit');
        return held(`${d.detail}; then the wall clock killed the tree (exit 124)`);
      }
      if (errnos.length === 0) return broken('no fork was refused (RLIMIT_NPROC did not stand in)');
      if (!errnos.every((e) => e === E.EAGAIN)) return error(`forks failed with errno ${errnos.join(',')}, not EAGAIN`);
      return held(`degraded (no cgroup): RLIMIT_NPROC refused forks with EAGAIN; the wall clock killed the tree (exit 124)`);
    },
    // As root without a cgroup nothing would stand in (the kernel never applies RLIMIT_NPROC to uid 0): Ward refuses to run it.
    refused: (e, ctx) => (ctx.isRoot && e.step === 'cgroup' && /RLIMIT_NPROC/.test(e.message) ? held(`no cgroup, and nothing stands in for pids as root: Ward refused to run the bomb (${e.message.split(': Ward runs as root')[0]})`) : null),
  },
  {
    id: 'res.memory-shared',
    title: 'take memory as a shared anonymous mapping, which RLIMIT_DATA does not count (memory limit 64MiB, 256MiB touched)',
    ...MEMORY_64MIB,
    // MAP_SHARED|MAP_ANONYMOUS is shmem: the memory cgroup charges it, RLIMIT_DATA never sees it.
    program: py(`import mmap
size = 256 << 20
m = mmap.mmap(-1, size, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
for i in range(0, size, 4096):
    m[i] = 1
    if i % (32 << 20) == 0:
        say('mib', i >> 20)
say('mib', size >> 20)`),
    check: (run) => {
      const mib = Number(kv(run.stdout).get('mib') ?? '0');
      if (!hadCgroup(run)) {
        return skipped(`no cgroup (degraded): RLIMIT_DATA does not count shared memory, so nothing stood in (${mib} MiB touched); the run's degraded list says so`);
      }
      if (killedByMemoryCgroup(run)) return held(`${run.message} at about ${mib} MiB touched (exit 137, recorded as a cgroup denial)`);
      if (mib >= 256) return broken(`touched ${mib} MiB of shared memory under a 64 MiB limit`);
      return error(`the mapping ended by ${run.reason} (exit ${run.exitCode}), not the memory limit: ${run.stderr.trim().split('\n').at(-1) ?? ''}`);
    },
  },
  {
    id: 'res.memory-hog',
    title: 'allocate memory without end (memory limit 64MiB)',
    ...MEMORY_64MIB,
    program: py(`blocks = []
while True:
    blocks.append(bytearray(4 << 20))
    if len(blocks) % 32 == 0:
        say('mib', len(blocks) * 4)`),
    check: (run) => {
      const mib = Number(kv(run.stdout).get('mib') ?? '0');
      if (mib >= 1024) return broken(`allocated ${mib} MiB under a 64 MiB limit`);
      if (hadCgroup(run)) {
        if (killedByMemoryCgroup(run)) return held(`${run.message} (exit 137, recorded as a cgroup denial)`);
        return run.reason === 'timeout' ? broken('the hog ran until the wall clock') : error(`the hog ended by ${run.reason} (exit ${run.exitCode}), not the memory limit: ${run.stderr.trim().split('\n').at(-1) ?? ''}`);
      }
      const data = run.launch.layers.rlimits.data;
      if (/MemoryError/.test(run.stderr) && data) return held(`degraded (no cgroup): RLIMIT_DATA (${data[0]} bytes) refused the allocation (MemoryError), per process rather than per tree`);
      return run.exitCode === 0 || run.reason === 'timeout' ? broken('nothing stopped the hog') : error(`the hog failed unexpectedly (exit ${run.exitCode}): ${run.stderr.trim().split('\n').at(-1) ?? ''}`);
    },
  },
  {
    id: 'res.disk-filler',
    group,
    promise: 'resources',
    title: 'fill the disk with one large file (file_size 1MiB)',
    mechanism: 'rlimit',
    asi: ['ASI08'],
    nist: ['SC-5', 'SC-6'],
    expect: 'refused',
    policy: { resources: { file_size: '1MiB' } },
    program: { sh: 'exec head -c 5000000 /dev/zero > big' },
    check: (run, ctx) => {
      const big = path.join(ctx.ws, 'big');
      const size = existsSync(big) ? statSync(big).size : -1;
      if (size > 1024 * 1024) return broken(`a ${size}-byte file was written under a 1 MiB limit`);
      if (size === -1) return noResult(run, 'the file');
      // bwrap gives a death by SIGXFSZ the status `exit 153` gives: Ward names it, and records no kill it cannot confirm.
      if (run.exitCode === 128 + SIGXFSZ && run.denials.every((d) => d.what !== 'file_size')) return held(`the file stopped at ${size} bytes; ${run.message}`);
      // A shell that ignores SIGXFSZ gets EFBIG instead of being killed: refused all the same.
      if (/File too large/.test(run.stderr)) return held(`write refused with EFBIG at ${size} bytes (RLIMIT_FSIZE)`);
      return error(`the write stopped at ${size} bytes, but not by file_size (reason ${run.reason}, exit ${run.exitCode})`);
    },
  },
  {
    id: 'res.fallocate-keep-size',
    group,
    promise: 'resources',
    title: 'take disk past file_size with fallocate(FALLOC_FL_KEEP_SIZE) (file_size 1MiB)',
    mechanism: 'seccomp',
    asi: ['ASI08'],
    nist: ['SC-5', 'SC-6'],
    expect: 'refused',
    policy: { resources: { file_size: '1MiB' } },
    // RLIMIT_FSIZE is checked where a file grows, and a keep-size allocation does not grow it.
    program: py(`fd = os.open('big', os.O_RDWR | os.O_CREAT, 0o644)
r, e = sc2(285, fd, 1, 0, 64 << 20)
say('keep_size', e)
say('disk', os.fstat(fd).st_blocks * 512)`),
    check: (run) => {
      const v = kv(run.stdout);
      if (!v.has('disk')) return noResult(run, 'the allocation');
      const disk = Number(v.get('disk'));
      if (disk > 1024 * 1024) return broken(`a file under a 1 MiB file_size took ${disk} bytes of disk`);
      if (v.get('keep_size') !== String(E.EOPNOTSUPP)) return error(`the keep-size fallocate failed with ${errnoName(Number(v.get('keep_size')))}, not EOPNOTSUPP`);
      return held('keep-size fallocate refused with EOPNOTSUPP (seccomp, with file_size set); the file took no disk. file_size bounds each file, not the disk: many files each under it are not bounded');
    },
  },
  {
    id: 'res.inotify-instances',
    group,
    promise: 'resources',
    title: "exhaust the caller's per-user inotify instances (charged up the user namespace chain)",
    mechanism: 'user-namespace',
    asi: ['ASI08'],
    nist: ['SC-5', 'SC-6'],
    expect: 'refused',
    program: py(`n, err = 0, 0
${EXHAUST_INOTIFY}
say('instances', n)
say('errno', err)`),
    check: (run) => {
      const v = kv(run.stdout);
      if (!v.has('instances')) return noResult(run, 'the instance count');
      const n = Number(v.get('instances'));
      const host = hostUserLimit('max_inotify_instances');
      const bound = run.launch.layers.userns_limits?.['max_inotify_instances'];
      if (host !== null && n >= host) return broken(`the sandbox made ${n} inotify instances: the caller's whole per-user budget (${host}); the caller's other processes get EMFILE meanwhile`);
      if (bound === undefined) return error(`made ${n} instances, and the launch record has no user namespace limit`);
      if (n > bound) return broken(`made ${n} inotify instances over the sandbox's bound of ${bound}`);
      if (v.get('errno') !== String(E.EMFILE)) return error(`stopped after ${n} with ${errnoName(Number(v.get('errno')))}, not EMFILE`);
      return held(`EMFILE after ${n} instances: the sandbox's user namespace allows ${bound}, of the caller's ${host ?? '?'} on the host`);
    },
  },
  {
    id: 'res.signal-queue',
    group,
    promise: 'resources',
    title: "exhaust the caller's per-user queued signals with sigqueue (charged up the user namespace chain)",
    mechanism: 'rlimit',
    asi: ['ASI08'],
    nist: ['SC-5', 'SC-6'],
    expect: 'refused',
    program: py(`n, err = 0, 0
${EXHAUST_SIGQUEUE}
say('queued', n)
say('errno', err)`),
    check: (run) => {
      const v = kv(run.stdout);
      if (!v.has('queued')) return noResult(run, 'the signal count');
      const n = Number(v.get('queued'));
      const limit = run.launch.layers.rlimits['sigpending']?.[0];
      if (typeof limit !== 'number') return error(`queued ${n} signals, and the launch record has no RLIMIT_SIGPENDING`);
      if (n > limit) return broken(`queued ${n} signals over RLIMIT_SIGPENDING ${limit}`);
      if (v.get('errno') !== String(E.EAGAIN)) return error(`stopped after ${n} with ${errnoName(Number(v.get('errno')))}, not EAGAIN`);
      return held(`EAGAIN after ${n} queued signals (RLIMIT_SIGPENDING ${limit}, below the caller's own: the rest of the per-user budget stays the caller's)`);
    },
  },
  {
    id: 'res.cpu-spin',
    group,
    promise: 'resources',
    title: 'spin the CPU forever (cpu_time 1s)',
    mechanism: 'rlimit',
    asi: ['ASI08'],
    nist: ['SC-5', 'SC-6'],
    expect: 'refused',
    policy: { resources: { cpu_time: '1s', wall_time: '20s' } },
    program: { sh: 'while :; do :; done' },
    check: (run) => {
      if (run.reason === 'cpu_time' && run.exitCode === 137) {
        const d = run.denials.find((x) => x.what === 'cpu_time');
        return d ? held(`${run.message} (${d.layer === 'cgroup' ? "Ward's watchdog on the cgroup's CPU accounting" : 'RLIMIT_CPU'})`) : error('killed at cpu_time, but no denial was recorded');
      }
      if (run.reason === 'timeout') return broken('the spinner ran until the wall clock: cpu_time did not stop it');
      // Without the cgroup's CPU accounting nothing confirms that SIGXCPU came from RLIMIT_CPU: named, not recorded as a kill.
      if (!hadCgroup(run) && run.exitCode === 128 + SIGXCPU) return held(`degraded (no cgroup): ${run.message}`);
      return error(`the spinner ended by ${run.reason} (exit ${run.exitCode})`);
    },
  },
  forgedLimitKill('res.forged-cpu-kill', 'cpu_time', SIGXCPU, 'cgroup'),
  forgedLimitKill('res.forged-fsize-kill', 'file_size', SIGXFSZ, 'rlimit'),
  {
    id: 'res.wall-clock',
    group,
    promise: 'resources',
    title: 'outlive the wall clock with background sleepers (wall_time 1s)',
    mechanism: 'wall-clock',
    asi: ['ASI08'],
    nist: ['SC-5', 'SC-6'],
    expect: 'refused',
    policy: { resources: { wall_time: '1s' } },
    program: { sh: 'sleep 30 & sleep 30 & wait; echo survived' },
    check: (run) => {
      if (/survived/.test(run.stdout)) return broken('the sleepers finished: the wall clock did not stop them');
      if (run.exitCode === 124 && run.reason === 'timeout' && run.denials.some((d) => d.what === 'wall_time')) return held(`${run.message} (exit 124) after ${(run.durationMs / 1000).toFixed(1)}s`);
      return error(`ended by ${run.reason} (exit ${run.exitCode}), not the wall clock`);
    },
  },
  {
    id: 'res.open-files',
    group,
    promise: 'resources',
    title: 'exhaust file descriptors (open_files 64)',
    mechanism: 'rlimit',
    asi: ['ASI08'],
    nist: ['SC-5', 'SC-6'],
    expect: 'refused',
    policy: { resources: { open_files: 64 } },
    program: py(`fds = []
err = 0
for i in range(1000):
    try:
        fds.append(os.open('/dev/null', os.O_RDONLY))
    except OSError as e:
        err = e.errno
        break
say('opened', len(fds))
say('errno', err)`),
    check: (run) => {
      const v = kv(run.stdout);
      if (!v.has('opened')) return noResult(run, 'the descriptor count');
      const opened = Number(v.get('opened'));
      if (opened >= 64) return broken(`${opened} descriptors opened under a limit of 64`);
      if (v.get('errno') !== String(E.EMFILE)) return error(`stopped after ${opened} with errno ${v.get('errno')}, not EMFILE`);
      return held(`EMFILE after ${opened} descriptors (RLIMIT_NOFILE 64)`);
    },
  },
  {
    id: 'res.output-flood',
    group,
    promise: 'resources',
    title: "flood Ward's output capture (output 64KiB)",
    mechanism: 'output-cap',
    asi: ['ASI08'],
    nist: ['SC-5', 'AU-4'],
    expect: 'refused',
    policy: { resources: { output: '64KiB' } },
    program: { sh: "head -c 20000000 /dev/zero | tr '\\0' x" },
    check: (run) => {
      const kept = Buffer.byteLength(run.stdout) + Buffer.byteLength(run.stderr);
      if (kept > 64 * 1024) return broken(`${kept} bytes of output kept under a 64 KiB cap`);
      const d = run.denials.find((x) => x.what === 'output');
      if (!d) return error(`no truncation recorded (${kept} bytes kept)`);
      return held(`${d.detail} (${kept} bytes kept)`);
    },
  },
];
