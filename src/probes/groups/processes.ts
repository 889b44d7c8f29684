/**
 * Processes: the sandbox cannot see, signal, trace or read the memory of a
 * process outside it, nor of another process inside it (everything in the
 * sandbox runs as one user, so the kernel's own same-user checks would allow
 * it). Targets are real: a forked child inside, and a victim process that the
 * runner starts on the host and checks afterwards.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { hostTool, systemBinary } from '../../hostbin.js';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { broken, E, expectErrno, held, kv, noResult, py, startVictim, st } from '../lib.js';
import { pidAlive } from '../../pids.js';
import type { Probe, ProbeContext } from '../types.js';

const group = 'processes' as const;

/** Python: fork a child that holds a marked buffer and sleeps; `child` and `buf` are then in scope. */
const FORK_CHILD = `buf = ctypes.create_string_buffer(b'CHILD-MEMORY-MARK', 32)
child = os.fork()
if child == 0:
    time.sleep(20)
    os._exit(0)
def reap():
    os.kill(child, 9)
    os.waitpid(child, 0)
local = ctypes.create_string_buffer(32)
liov = (ctypes.c_void_p * 2)(ctypes.addressof(local), 32)
riov = (ctypes.c_void_p * 2)(ctypes.addressof(buf), 32)
`;

function victimSetup(ctx: ProbeContext): void {
  const v = startVictim();
  ctx.state.victim = v;
  ctx.state.victimPid = v.pid;
}

function victimTeardown(ctx: ProbeContext): void {
  st<ChildProcess | undefined>(ctx, 'victim')?.kill('SIGKILL');
}

export const probes: Probe[] = [
  {
    id: 'proc.ptrace',
    group,
    promise: 'syscalls',
    title: 'ptrace-attach to another sandboxed process and to pid 1, and PTRACE_TRACEME',
    mechanism: 'seccomp',
    asi: ['ASI05'],
    nist: ['SC-39', 'AC-6'],
    expect: 'refused',
    program: py(`${FORK_CHILD}
PTRACE_TRACEME, PTRACE_ATTACH, PTRACE_SEIZE = 0, 16, 0x4206
say('attach_child', sc(101, PTRACE_ATTACH, child, 0, 0))
say('seize_pid1', sc(101, PTRACE_SEIZE, 1, 0, 0))
say('traceme', sc(101, PTRACE_TRACEME, 0, 0, 0))
reap()`),
    check: expectErrno({ keys: ['attach_child', 'seize_pid1', 'traceme'], refused: [E.EPERM], by: 'seccomp (ptrace)' }),
  },
  {
    id: 'proc.process-vm-readv',
    group,
    promise: 'syscalls',
    title: "read another sandboxed process's memory with process_vm_readv",
    mechanism: 'seccomp',
    asi: ['ASI05', 'ASI03'],
    nist: ['SC-39', 'AC-6'],
    expect: 'refused',
    program: py(`${FORK_CHILD}
r, e = sc2(310, child, liov, 1, riov, 1, 0)
say('process_vm_readv', e)
if e == 0:
    say('read', local.value.decode('latin-1'))
reap()`),
    check: expectErrno({ keys: ['process_vm_readv'], refused: [E.EPERM], by: 'seccomp' }),
  },
  {
    id: 'proc.process-vm-writev',
    group,
    promise: 'syscalls',
    title: "write another sandboxed process's memory with process_vm_writev",
    mechanism: 'seccomp',
    asi: ['ASI05'],
    nist: ['SC-39', 'AC-6'],
    expect: 'refused',
    program: py(`${FORK_CHILD}
local.value = b'OVERWRITTEN'
say('process_vm_writev', sc(311, child, liov, 1, riov, 1, 0))
reap()`),
    check: expectErrno({ keys: ['process_vm_writev'], refused: [E.EPERM], by: 'seccomp' }),
  },
  {
    id: 'proc.proc-pid-mem',
    group,
    promise: 'syscalls',
    title: "open another process's memory for writing through /proc/PID/mem (a child, and pid 1)",
    mechanism: 'mount-namespace',
    asi: ['ASI05'],
    nist: ['SC-39', 'AC-6'],
    expect: 'refused',
    program: py(`${FORK_CHILD}
attempt('child_mem', lambda: os.close(os.open('/proc/%d/mem' % child, os.O_RDWR)))
attempt('pid1_mem', lambda: os.close(os.open('/proc/1/mem', os.O_RDWR)))
reap()`),
    check: expectErrno({ keys: ['child_mem', 'pid1_mem'], refused: [E.EROFS, E.EACCES, E.EPERM], by: 'the read-only /proc mount, Landlock (/proc is read-only) and the ptrace access check' }),
  },
  {
    id: 'proc.pidfd-getfd',
    group,
    promise: 'syscalls',
    title: "steal another process's open descriptor with pidfd_getfd",
    mechanism: 'seccomp',
    asi: ['ASI05', 'ASI03'],
    nist: ['SC-39', 'AC-6'],
    expect: 'refused',
    program: py(`${FORK_CHILD}
pidfd, e = sc2(434, child, 0)
say('pidfd_open', e)
say('pidfd_getfd', sc(438, pidfd if e == 0 else 0, 0, 0))
reap()`),
    check: expectErrno({ keys: ['pidfd_getfd'], refused: [E.EPERM], by: 'seccomp' }),
  },
  {
    id: 'proc.kill-host-process',
    group,
    promise: 'escalation',
    title: 'SIGKILL a process on the host, and probe the runner with kill -0',
    mechanism: 'pid-namespace',
    asi: ['ASI10', 'ASI08'],
    nist: ['SC-39', 'AC-6'],
    expect: 'refused',
    setup: victimSetup,
    teardown: victimTeardown,
    program: (ctx) =>
      py(`attempt('kill_victim', lambda: os.kill(${st<number>(ctx, 'victimPid')}, 9))
attempt('probe_runner', lambda: os.kill(${ctx.runnerPid}, 0))`),
    check: (run, ctx) => {
      const victim = st<number>(ctx, 'victimPid');
      const v = kv(run.stdout);
      if (!v.has('kill_victim')) return noResult(run, 'kill');
      if (!pidAlive(victim)) return broken(`the host process ${victim} is dead`);
      return expectErrno({ keys: ['kill_victim', 'probe_runner'], refused: [E.ESRCH, E.EPERM], by: 'the pid namespace (host pids do not exist inside)' })(run);
    },
  },
  {
    id: 'proc.host-processes-visible',
    group,
    promise: 'escalation',
    title: 'list the host processes in /proc and find the runner',
    mechanism: 'pid-namespace',
    asi: ['ASI05', 'ASI03'],
    nist: ['SC-39'],
    expect: 'refused',
    program: (ctx) =>
      py(`pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
say('count', len(pids))
say('pids', ','.join(map(str, pids)))
say('runner', int(os.path.exists('/proc/%d' % ${ctx.runnerPid})))
names = []
for p in pids:
    try:
        names.append(open('/proc/%d/comm' % p).read().strip())
    except OSError:
        pass
say('comms', ','.join(names))`),
    check: (run, ctx) => {
      const v = kv(run.stdout);
      const count = Number(v.get('count'));
      if (!v.has('count')) return noResult(run, 'the process list');
      if (v.get('runner') === '1' && ctx.runnerPid > count + 5) return broken(`the runner (pid ${ctx.runnerPid}) is visible in /proc`);
      if (count > 10) return broken(`${count} processes visible: the host's, not the sandbox's`);
      return held(`only ${count} processes visible (${v.get('comms')}); the runner's pid does not exist inside`);
    },
  },
  {
    id: 'proc.pidfd-open-host',
    group,
    promise: 'escalation',
    title: 'get a pidfd for a host process (to signal it or steal its descriptors)',
    mechanism: 'pid-namespace',
    asi: ['ASI05'],
    nist: ['SC-39'],
    expect: 'refused',
    setup: victimSetup,
    teardown: victimTeardown,
    program: (ctx) =>
      py(`say('victim', sc(434, ${st<number>(ctx, 'victimPid')}, 0))
say('runner', sc(434, ${ctx.runnerPid}, 0))`),
    check: expectErrno({ keys: ['victim', 'runner'], refused: [E.ESRCH], by: 'the pid namespace' }),
  },
  {
    id: 'proc.host-dev-shm',
    group,
    promise: 'escalation',
    title: 'read a POSIX shared-memory object the host left in /dev/shm',
    mechanism: 'mount-namespace',
    asi: ['ASI03', 'ASI07'],
    nist: ['SC-4', 'SC-39'],
    expect: 'refused',
    requires: () => (existsSync('/dev/shm') ? null : 'this host has no /dev/shm'),
    setup: (ctx) => {
      const name = `ward-probe-${process.pid}-${ctx.id.replace(/\W/g, '')}-${Date.now()}`;
      ctx.state.shm = `/dev/shm/${name}`;
      writeFileSync(`/dev/shm/${name}`, `${ctx.canary}-shm\n`, { mode: 0o644 });
    },
    teardown: (ctx) => rmSync(st<string>(ctx, 'shm'), { force: true }),
    program: (ctx) =>
      py(`attempt('read', lambda: sys.stdout.write('content=%s\\n' % open(${JSON.stringify(st<string>(ctx, 'shm'))}).read()))
say('listing', ','.join(os.listdir('/dev/shm')))`),
    check: (run, ctx) => {
      const v = kv(run.stdout);
      const name = st<string>(ctx, 'shm').slice('/dev/shm/'.length);
      if ((v.get('listing') ?? '').split(',').includes(name)) return broken(`the host's /dev/shm/${name} is listed inside`);
      return expectErrno({ keys: ['read'], refused: [E.ENOENT], by: "the mount namespace (a private /dev/shm)" })(run);
    },
  },
  {
    id: 'proc.host-sysv-ipc',
    group,
    promise: 'escalation',
    title: 'attach a System V shared-memory segment the host created',
    mechanism: 'ipc-namespace',
    asi: ['ASI03', 'ASI07'],
    nist: ['SC-4', 'SC-39'],
    expect: 'refused',
    requires: () => (systemBinary('ipcmk') !== null && systemBinary('ipcrm') !== null ? null : 'ipcmk/ipcrm (util-linux) are not installed'),
    setup: (ctx) => {
      const r = spawnSync(hostTool('ipcmk'), ['-M', '4096', '-p', '0666'], { encoding: 'utf8' });
      const m = /(\d+)\s*$/.exec(r.stdout.trim());
      if (r.status !== 0 || !m) throw new Error(`ipcmk failed: ${r.stderr.trim() || r.stdout.trim()}`);
      ctx.state.shmid = Number(m[1]);
    },
    teardown: (ctx) => {
      if (st<number | undefined>(ctx, 'shmid') !== undefined) spawnSync(hostTool('ipcrm'), ['-m', String(st<number>(ctx, 'shmid'))], { stdio: 'ignore' });
    },
    program: (ctx) =>
      py(`libc.shmat.restype = ctypes.c_void_p
ctypes.set_errno(0)
r = libc.shmat(${st<number>(ctx, 'shmid')}, None, 0)
say('shmat', 0 if r not in (None, ctypes.c_void_p(-1).value) else ctypes.get_errno())
segs = [l for l in open('/proc/sysvipc/shm').read().splitlines()[1:] if l.strip()]
say('segments', len(segs))`),
    check: (run, ctx) => {
      const v = kv(run.stdout);
      if (Number(v.get('segments') ?? '0') > 0) return broken(`${v.get('segments')} host segment(s) listed in /proc/sysvipc/shm`);
      const r = expectErrno({ keys: ['shmat'], refused: [E.EINVAL, E.EIDRM], by: 'the IPC namespace (the segment does not exist inside)' })(run);
      return r.status === 'held' ? held(`${r.detail}; segment ${st<number>(ctx, 'shmid')} unknown inside`) : r;
    },
  },
];
