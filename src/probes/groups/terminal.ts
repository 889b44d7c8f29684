/**
 * Terminal: a sandboxed command must not type into the user's terminal. TIOCSTI
 * pushes bytes into a terminal's input queue as if typed (`rm -rf ~` for the
 * shell to run after the command exits); TIOCLINUX does the same on a virtual
 * console. The probes make a real target: a pseudo-terminal that is the
 * controlling terminal of a new session, where TIOCSTI would otherwise work.
 */
import { broken, E, error, expectErrno, held, kv, noResult, py } from '../lib.js';
import type { Probe } from '../types.js';

const group = 'terminal' as const;

/** Python: a child in a new session whose controlling terminal is a fresh pty; runs BODY with `fd` open on it. */
function onControllingPty(body: string): string {
  return `import tty
master, slave = os.openpty()
tty.setraw(slave)  # so one injected byte is readable at once, without a newline
name = os.ttyname(slave)
child = os.fork()
if child == 0:
    os.setsid()
    fd = os.open(name, os.O_RDWR)  # a session leader's first tty becomes its controlling terminal
    c = ctypes.c_char(b'X')
${body
  .split('\n')
  .map((l) => `    ${l}`)
  .join('\n')}
    os._exit(0)
os.waitpid(child, 0)
# Anything pushed into the input queue is readable from the slave side.
os.set_blocking(slave, False)
try:
    got = os.read(slave, 64)
except OSError:
    got = b''
say('injected', len(got))`;
}

export const probes: Probe[] = [
  {
    id: 'term.tiocsti',
    group,
    promise: 'syscalls',
    title: 'inject keystrokes into a controlling terminal with TIOCSTI',
    mechanism: 'seccomp',
    asi: ['ASI09', 'ASI05'],
    nist: ['SC-39', 'AC-6'],
    expect: 'refused',
    program: py(
      onControllingPty(`r = libc.ioctl(fd, ctypes.c_ulong(0x5412), ctypes.byref(c))
say('tiocsti', 0 if r == 0 else ctypes.get_errno())`),
    ),
    check: (run) => {
      const v = kv(run.stdout);
      if (Number(v.get('injected') ?? '0') > 0) return broken('a byte pushed with TIOCSTI reached the terminal input queue');
      return expectErrno({ keys: ['tiocsti'], refused: [E.EPERM], by: 'seccomp (ioctl TIOCSTI)' })(run);
    },
  },
  {
    id: 'term.tiocsti-high-bits',
    group,
    promise: 'syscalls',
    title: 'TIOCSTI with junk in the upper 32 bits of the request (the kernel ignores them; a naive filter would not)',
    mechanism: 'seccomp',
    asi: ['ASI09', 'ASI05'],
    nist: ['SC-39', 'AC-6'],
    expect: 'refused',
    program: py(
      onControllingPty(`r = libc.ioctl(fd, ctypes.c_ulong(0x100005412), ctypes.byref(c))
say('tiocsti_high', 0 if r == 0 else ctypes.get_errno())`),
    ),
    check: (run) => {
      const v = kv(run.stdout);
      if (Number(v.get('injected') ?? '0') > 0) return broken('TIOCSTI with high bits set reached the terminal input queue');
      return expectErrno({ keys: ['tiocsti_high'], refused: [E.EPERM], by: 'seccomp (compares the low 32 bits, as the kernel does)' })(run);
    },
  },
  {
    id: 'term.tioclinux',
    group,
    promise: 'syscalls',
    title: 'paste a console selection with TIOCLINUX',
    mechanism: 'seccomp',
    asi: ['ASI09', 'ASI05'],
    nist: ['SC-39', 'AC-6'],
    expect: 'refused',
    program: py(
      onControllingPty(`sub = ctypes.c_char(b'\\x03')  # TIOCL_PASTESEL
r = libc.ioctl(fd, ctypes.c_ulong(0x541c), ctypes.byref(sub))
say('tioclinux', 0 if r == 0 else ctypes.get_errno())`),
    ),
    check: expectErrno({ keys: ['tioclinux'], refused: [E.EPERM], by: 'seccomp (ioctl TIOCLINUX)' }),
  },
  {
    // The probe's own stdio is never a terminal: the target is a pty of its own, the controlling
    // terminal of a new session, as the user's terminal is when Ward runs in one.
    id: 'term.break-terminal',
    group,
    promise: 'syscalls',
    title: 'leave a terminal dead (TIOCSETD to N_NULL), unopenable (TIOCEXCL) or stopped (TCOOFF) after the command',
    mechanism: 'seccomp',
    asi: ['ASI05'],
    nist: ['SC-39', 'AC-6'],
    expect: 'refused',
    program: py(
      onControllingPty(`d = ctypes.c_int(27)  # N_NULL
r = libc.ioctl(fd, ctypes.c_ulong(0x5423), ctypes.byref(d))
say('tiocsetd', 0 if r == 0 else ctypes.get_errno())
r = libc.ioctl(fd, ctypes.c_ulong(0x540c), None)
say('tiocexcl', 0 if r == 0 else ctypes.get_errno())
r = libc.ioctl(fd, ctypes.c_ulong(0x540a), ctypes.c_ulong(0))  # TCXONC TCOOFF
say('tcxonc', 0 if r == 0 else ctypes.get_errno())`),
    ),
    check: expectErrno({ keys: ['tiocsetd', 'tiocexcl', 'tcxonc'], refused: [E.EPERM], by: 'seccomp (ioctl TIOCSETD, TIOCEXCL, TCXONC)' }),
  },
  {
    id: 'term.controlling-tty',
    group,
    promise: 'syscalls',
    title: "open the caller's terminal through /dev/tty",
    mechanism: 'new-session',
    asi: ['ASI09'],
    nist: ['SC-39'],
    expect: 'refused',
    program: py(`attempt('dev_tty', lambda: os.close(os.open('/dev/tty', os.O_RDWR)))`),
    check: (run) => {
      const v = kv(run.stdout);
      if (!v.has('dev_tty')) return noResult(run, '/dev/tty');
      if (v.get('dev_tty') === '0') return broken('/dev/tty opened: the command shares a controlling terminal with the caller');
      if (v.get('dev_tty') !== String(E.ENXIO)) return error(`/dev/tty failed with errno ${v.get('dev_tty')}, not ENXIO (no controlling terminal)`);
      return held('/dev/tty: ENXIO, the command runs in a new session without a controlling terminal');
    },
  },
  {
    // The probe runner gives every probe stdin 'ignore' and captured output, so what this shows is
    // that case: before, 'ignore' was Node's, the host's /dev/null, which a root caller's sandbox
    // (host uid 0) could fchmod. A caller's redirected files (`ward run < in > out`) never reach
    // a probe; test/sandbox/stdio.test.ts attacks those through the CLI.
    id: 'term.stdio-host-file',
    group,
    promise: 'filesystem',
    title: "change the metadata of a host file held as fd 0, 1 or 2 (fchmod, futimens by fd: Landlock never judged them)",
    mechanism: 'sandbox',
    asi: ['ASI05'],
    nist: ['AC-6', 'SC-39'],
    expect: 'refused',
    // fchmod to the mode the file already has: the permission shows without changing the host.
    program: py(`import stat
for fd in (0, 1, 2):
    say('fd%d' % fd, os.readlink('/proc/self/fd/%d' % fd))
    attempt('fd%d_chmod' % fd, lambda: os.fchmod(fd, stat.S_IMODE(os.fstat(fd).st_mode)))`),
    check: (run) => {
      const v = kv(run.stdout);
      if (!v.has('fd2_chmod')) return noResult(run, 'the fds 0-2 report');
      for (const fd of [0, 1, 2]) {
        const what = v.get(`fd${fd}`) ?? '';
        if (/^(pipe|socket):\[\d+\]$/.test(what)) continue;
        const chmod = v.get(`fd${fd}_chmod`);
        return broken(`fd ${fd} is the host's ${what}: its metadata is the command's to change by fd (fchmod ${chmod === '0' ? 'worked' : `errno ${chmod}`}, futimens needs only write access)`);
      }
      return held(`fds 0-2 are pipes or sockets (${[0, 1, 2].map((fd) => v.get(`fd${fd}`)).join(', ')}): no host file is held by fd`);
    },
  },
];
