/**
 * Privileges: nothing inside can gain a capability, a new namespace, or reach
 * the parts of the kernel that are root-only or exploit favourites. Most calls
 * are refused by Ward's seccomp filter (EPERM, ENOSYS for clone3, SIGSYS for the
 * x32 and i386 entry points); the rest by the empty capability sets and
 * no_new_privs. Every call is made so that, were it allowed, it would fail
 * harmlessly on its arguments (bad magic, bad flags, NULL) rather than do damage:
 * the probe reports the hole without using it.
 */
import { existsSync, lstatSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { broken, E, error, expectErrno, held, killedBySigsys, kv, noResult, py } from '../lib.js';
import type { Probe, ProbeRun, Verdict } from '../types.js';
import { findCompiler } from '../../launcher/launcher.js';
import { findBwrap } from '../../sandbox/preflight.js';
import { WardError } from '../../errors.js';

const group = 'privileges' as const;

const CLONE_NEWNS = 0x00020000;
const CLONE_NEWCGROUP = 0x02000000;
const CLONE_NEWUTS = 0x04000000;
const CLONE_NEWIPC = 0x08000000;
const CLONE_NEWUSER = 0x10000000;
const CLONE_NEWPID = 0x20000000;
const CLONE_NEWNET = 0x40000000;
const CLONE_NEWTIME = 0x00000080;

/** A probe whose program is a list of raw syscalls, each expected to fail with `refused`. */
function syscalls(p: {
  id: string;
  title: string;
  calls: [key: string, python: string][];
  refused?: number[];
  by?: string;
  mechanism?: Probe['mechanism'];
  promise?: Probe['promise'];
  asi?: Probe['asi'];
  nist?: string[];
  prelude?: string;
}): Probe {
  const refused = p.refused ?? [E.EPERM];
  return {
    id: p.id,
    group,
    promise: p.promise ?? 'syscalls',
    title: p.title,
    mechanism: p.mechanism ?? 'seccomp',
    asi: p.asi ?? ['ASI05'],
    nist: p.nist ?? ['AC-6', 'CM-7', 'SC-39'],
    expect: 'refused',
    program: py(`${p.prelude ?? ''}\n${p.calls.map(([k, call]) => `say('${k}', ${call})`).join('\n')}`),
    check: expectErrno({ keys: p.calls.map(([k]) => k), refused, by: p.by ?? 'seccomp' }),
  };
}

function capsZero(run: ProbeRun): Verdict {
  const v = new Map<string, string>();
  for (const line of run.stdout.split('\n')) {
    const m = /^(\w+):\s+(\S+)/.exec(line);
    if (m) v.set(m[1]!, m[2]!);
  }
  const caps = ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'];
  if (caps.some((c) => !v.has(c))) return noResult(run, '/proc/self/status');
  const nonzero = caps.filter((c) => !/^0+$/.test(v.get(c)!));
  if (nonzero.length > 0) return broken(`capabilities held: ${nonzero.map((c) => `${c} ${v.get(c)}`).join(', ')}`);
  if (v.get('NoNewPrivs') !== '1') return broken(`NoNewPrivs is ${v.get('NoNewPrivs')}: setuid programs could raise privileges`);
  if (v.get('Seccomp') !== '2') return broken(`Seccomp is ${v.get('Seccomp')}: no filter in force`);
  return held('every capability set is empty (inheritable, permitted, effective, bounding, ambient); NoNewPrivs 1; Seccomp 2');
}

export const probes: Probe[] = [
  {
    id: 'priv.capabilities',
    group,
    promise: 'escalation',
    title: 'hold any capability (effective, permitted, bounding, ambient) or run without no_new_privs',
    mechanism: 'capabilities',
    asi: ['ASI03'],
    nist: ['AC-6'],
    expect: 'refused',
    program: { argv: ['grep', '-E', '^(Cap|NoNewPrivs|Seccomp:)', '/proc/self/status'] },
    check: capsZero,
  },
  {
    id: 'priv.capset-raise',
    group,
    promise: 'escalation',
    title: 'raise CAP_SYS_ADMIN with capset, and into the ambient set with prctl',
    mechanism: 'capabilities',
    asi: ['ASI03'],
    nist: ['AC-6'],
    expect: 'refused',
    program: py(`hdr = struct.pack('=Ii', 0x20080522, 0)
CAP = 1 << 21
data = struct.pack('=6I', CAP, CAP, 0, 0, 0, 0)
say('capset', sc(126, ctypes.c_char_p(hdr), ctypes.c_char_p(data)))
say('ambient', sc(157, 47, 2, 21, 0, 0))`),
    check: expectErrno({ keys: ['capset', 'ambient'], refused: [E.EPERM], by: 'empty permitted and bounding sets' }),
  },
  {
    id: 'priv.setuid-binary',
    group,
    promise: 'escalation',
    title: 'gain privileges by running setuid-root programs (su, sudo, passwd, mount)',
    mechanism: 'no-new-privs',
    asi: ['ASI03'],
    nist: ['AC-6'],
    expect: 'refused',
    program: {
      sh: `grep '^NoNewPrivs' /proc/self/status
n=0; for b in /usr/bin/su /bin/su /usr/bin/sudo /usr/bin/passwd /usr/bin/mount /usr/bin/newgrp /usr/bin/chsh; do [ -u "$b" ] && n=$((n+1)); done; echo "suid_found=$n"
su root -c 'grep ^CapEff /proc/self/status' </dev/null 2>&1; echo "su=$?"
[ -x /usr/bin/sudo ] && { sudo -n grep ^CapEff /proc/self/status </dev/null 2>&1; echo "sudo=$?"; }
true`,
    },
    check: (run) => {
      if (!/^NoNewPrivs:\s+1$/m.test(run.stdout)) return /^NoNewPrivs/m.test(run.stdout) ? broken('NoNewPrivs is not set') : noResult(run, 'NoNewPrivs');
      const raised = /^CapEff:\s+0*[1-9a-f]/m.exec(run.stdout);
      if (raised) return broken(`a setuid program ran with capabilities: ${raised[0]}`);
      const v = kv(run.stdout);
      return held(`NoNewPrivs 1: setuid bits are ignored (${v.get('suid_found')} setuid programs tried; su exit ${v.get('su')}${v.has('sudo') ? `, sudo exit ${v.get('sudo')}` : ''}; no capability gained)`);
    },
  },
  {
    id: 'priv.plant-setuid-on-host',
    group,
    promise: 'escalation',
    title: 'leave a setuid/setgid copy of a shell in the workspace for a host user to run later',
    mechanism: 'user-namespace',
    asi: ['ASI03', 'ASI10'],
    nist: ['AC-6', 'CM-5'],
    expect: 'refused',
    program: { sh: 'cp /bin/sh suid-sh && chmod 4755 suid-sh; echo "suid=$?"; cp /bin/sh sgid-sh && chmod 2755 sgid-sh; echo "sgid=$?"' },
    check: (run, ctx) => {
      const v = kv(run.stdout);
      if (!v.has('suid') || !v.has('sgid')) return noResult(run, 'chmod');
      const found: string[] = [];
      for (const f of ['suid-sh', 'sgid-sh']) {
        const p = path.join(ctx.ws, f);
        if (!existsSync(p)) continue;
        const s = lstatSync(p);
        // Setuid to the user who ran Ward gains that user nothing; to root (or root's group) it is escalation.
        if (s.mode & 0o4000 && s.uid === 0) found.push(`${f} is setuid root (mode ${(s.mode & 0o7777).toString(8)})`);
        if (s.mode & 0o2000 && s.gid === 0) found.push(`${f} is setgid root (mode ${(s.mode & 0o7777).toString(8)})`);
      }
      if (found.length > 0) return broken(`on the host: ${found.join('; ')}: any host user who can reach the workspace gets root by running it (uid 0 inside maps to the host's root)`);
      return held(`no setuid/setgid-root file on the host: files made inside belong to uid ${ctx.uid} (${ctx.isRoot ? 'root' : 'the user who ran Ward'}), setuid to that user gains nothing`);
    },
  },
  {
    id: 'priv.plant-host-binary',
    group,
    promise: 'escalation',
    title: "plant bwrap and cc in the workspace's node_modules/.bin (first on PATH under `npm run`) and ./, for Ward's next launch to run on the host",
    mechanism: 'launcher',
    asi: ['ASI03', 'ASI05'],
    nist: ['CM-5', 'SI-7'],
    expect: 'refused',
    program: (ctx) => ({
      sh: `mkdir -p node_modules/.bin && for f in node_modules/.bin/bwrap node_modules/.bin/cc node_modules/.bin/gcc bwrap cc; do printf '#!/bin/sh\ntouch ${ctx.ws}/.host-ran\nexec /usr/bin/$(basename $0) "$@"\n' > $f && chmod 755 $f; done; echo planted=$?`,
    }),
    check: (run, ctx) => {
      if (kv(run.stdout).get('planted') !== '0') return noResult(run, 'planting');
      // What the next launch decides, with the PATH `npm run` gives it and a relative entry.
      const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${path.join(ctx.ws, 'node_modules/.bin')}:${ctx.ws}:.:${process.env['PATH'] ?? ''}` };
      delete env['WARD_BWRAP'];
      const planted = (p: string) => p === ctx.ws || p.startsWith(`${ctx.ws}/`);
      let bwrap: string;
      try {
        bwrap = findBwrap(env);
      } catch (e) {
        return error(`no bwrap to compare with: ${(e as Error).message}`);
      }
      if (planted(bwrap)) return broken(`the next launch would run ${bwrap}, written by the sandbox, on the host`);
      const cc = findCompiler();
      if (cc !== null && planted(cc)) return broken(`the launcher would be compiled by ${cc}, written by the sandbox`);
      const named = path.join(ctx.ws, 'node_modules/.bin/bwrap');
      try {
        findBwrap({ ...env, WARD_BWRAP: named }, planted);
        return broken(`WARD_BWRAP=${named}, a file the sandbox wrote, would be run on the host`);
      } catch (e) {
        // Refused for whichever reason comes first on its way (the grant, or a mode the sandbox set).
        if (!(e instanceof WardError) || !/^refusing to run WARD_BWRAP=/.test(e.message)) return error(`WARD_BWRAP=${named}: ${(e as Error).message}`);
      }
      if (existsSync(path.join(ctx.ws, '.host-ran'))) return broken('a planted program ran on the host');
      return held(`the next launch runs ${bwrap} and compiles with ${cc ?? '(no compiler)'}: PATH is not searched; WARD_BWRAP naming the planted file is refused`);
    },
  },
  {
    id: 'priv.file-capabilities',
    group,
    promise: 'escalation',
    title: 'give a workspace program file capabilities (security.capability xattr)',
    mechanism: 'capabilities',
    asi: ['ASI03'],
    nist: ['AC-6', 'CM-5'],
    expect: 'refused',
    program: py(`import shutil
shutil.copy('/bin/true', 'capprog')
val = struct.pack('<IIIII', 0x02000000 | 1, 1 << 21, 0, 0, 0)
attempt('setxattr', lambda: os.setxattr('capprog', 'security.capability', val))`),
    check: expectErrno({ keys: ['setxattr'], refused: [E.EPERM], by: 'missing CAP_SETFCAP' }),
  },
  {
    id: 'priv.unshare-user',
    group,
    promise: 'escalation',
    title: 'make a new user namespace (unshare -U -r, and the raw syscall) to get a full capability set',
    mechanism: 'seccomp',
    asi: ['ASI03', 'ASI05'],
    nist: ['AC-6', 'SC-39'],
    expect: 'refused',
    program: py(`import subprocess
say('unshare_user', sc(272, ${CLONE_NEWUSER}))
try:
    p = subprocess.run(['unshare', '-U', '-r', 'id', '-u'], capture_output=True, text=True)
    say('unshare_cmd', p.returncode)
    sys.stdout.write('cmd_out=%s\\n' % p.stdout.strip())
    sys.stdout.write('cmd_err=%s\\n' % p.stderr.strip().replace('\\n', ' '))
except FileNotFoundError:
    say('unshare_cmd', 'missing')`),
    check: (run) => {
      const v = kv(run.stdout);
      const sys = expectErrno({ keys: ['unshare_user'], refused: [E.EPERM], by: 'seccomp (unshare)' })(run);
      if (sys.status !== 'held') return sys;
      const cmd = v.get('unshare_cmd');
      if (cmd === '0') return broken(`unshare -U -r ran: ${v.get('cmd_out')}`);
      if (cmd !== 'missing' && !/Operation not permitted/.test(v.get('cmd_err') ?? '')) return error(`unshare(1) failed, but not with EPERM: ${v.get('cmd_err')}`);
      return held(`${sys.detail}; unshare(1): ${cmd === 'missing' ? 'not installed' : 'Operation not permitted'}`);
    },
  },
  syscalls({
    id: 'priv.unshare-namespaces',
    title: 'unshare mount, network, pid, ipc, uts, cgroup and time namespaces',
    promise: 'escalation',
    calls: [
      ['newns', `sc(272, ${CLONE_NEWNS})`],
      ['newnet', `sc(272, ${CLONE_NEWNET})`],
      ['newpid', `sc(272, ${CLONE_NEWPID})`],
      ['newipc', `sc(272, ${CLONE_NEWIPC})`],
      ['newuts', `sc(272, ${CLONE_NEWUTS})`],
      ['newcgroup', `sc(272, ${CLONE_NEWCGROUP})`],
      ['newtime', `sc(272, ${CLONE_NEWTIME})`],
    ],
    by: 'seccomp (unshare)',
    asi: ['ASI03', 'ASI05'],
  }),
  {
    id: 'priv.clone-namespaces',
    group,
    promise: 'escalation',
    title: 'create namespaces through clone(CLONE_NEWUSER) and clone3, around unshare',
    mechanism: 'seccomp',
    asi: ['ASI03', 'ASI05'],
    nist: ['AC-6', 'SC-39'],
    expect: 'refused',
    program: py(`SIGCHLD = 17
for key, flags in (('clone_newuser', ${CLONE_NEWUSER}), ('clone_newns', ${CLONE_NEWNS}), ('clone_newnet', ${CLONE_NEWNET})):
    r, e = sc2(56, flags | SIGCHLD, 0, 0, 0, 0)
    if r == 0:
        os._exit(0)
    if r > 0:
        os.waitpid(r, 0)
    say(key, e)
args = ctypes.create_string_buffer(88)
struct.pack_into('=Q', args, 0, ${CLONE_NEWUSER})
struct.pack_into('=Q', args, 32, SIGCHLD)
r, e = sc2(435, args, 88)
if r == 0:
    os._exit(0)
if r > 0:
    os.waitpid(r, 0)
say('clone3', e)`),
    check: (run) => {
      const v = kv(run.stdout);
      const c = expectErrno({ keys: ['clone_newuser', 'clone_newns', 'clone_newnet'], refused: [E.EPERM], by: 'seccomp (clone flags)' })(run);
      if (c.status !== 'held') return c;
      const c3 = expectErrno({ keys: ['clone3'], refused: [E.ENOSYS], by: 'seccomp (clone3 answers ENOSYS so libc falls back to the filtered clone)' })(run);
      return c3.status === 'held' ? held(`${c.detail}; clone3: ${v.get('clone3') === String(E.ENOSYS) ? 'ENOSYS' : v.get('clone3')}`) : c3;
    },
  },
  syscalls({
    id: 'priv.setns',
    title: "join another namespace with setns (the sandbox's own user and mount namespace fds)",
    promise: 'escalation',
    prelude: `ufd = os.open('/proc/self/ns/user', os.O_RDONLY)
mfd = os.open('/proc/self/ns/mnt', os.O_RDONLY)`,
    calls: [
      ['setns_user', 'sc(308, ufd, 0)'],
      ['setns_mnt', 'sc(308, mfd, 0)'],
    ],
    by: 'seccomp (setns)',
    asi: ['ASI03', 'ASI05'],
  }),
  syscalls({
    id: 'priv.mount',
    title: 'mount a fresh tmpfs, procfs and overlay',
    promise: 'escalation',
    prelude: `os.makedirs('mnt/a', exist_ok=True)`,
    calls: [
      ['tmpfs', `sc(165, b'none', b'mnt/a', b'tmpfs', 0, None)`],
      ['proc', `sc(165, b'proc', b'mnt/a', b'proc', 0, None)`],
      ['overlay', `sc(165, b'overlay', b'mnt/a', b'overlay', 0, b'lowerdir=/usr,upperdir=mnt/u,workdir=mnt/w')`],
    ],
    by: 'seccomp (mount)',
  }),
  syscalls({ id: 'priv.pivot-root', title: 'change the root mount with pivot_root', promise: 'escalation', calls: [['pivot_root', `sc(155, b'.', b'.')`]], by: 'seccomp' }),
  syscalls({ id: 'priv.chroot', title: 'chroot (the classic escape with a directory fd kept outside)', promise: 'escalation', calls: [['chroot', `sc(161, b'/tmp')`]], by: 'seccomp' }),
  syscalls({
    id: 'priv.keyctl',
    title: "reach the kernel keyring shared with the host user (keyctl, add_key, request_key)",
    calls: [
      ['keyctl', 'sc(250, 0, -4, 0)'],
      ['add_key', `sc(248, b'user', b'ward-probe', b'x', 1, -3)`],
      ['request_key', `sc(249, b'user', b'ward-probe', None, 0)`],
    ],
    asi: ['ASI03', 'ASI05'],
  }),
  syscalls({
    id: 'priv.bpf',
    title: 'load an eBPF program and create a map',
    prelude: 'attr = ctypes.create_string_buffer(128)',
    calls: [
      ['prog_load', 'sc(321, 5, attr, 128)'],
      ['map_create', 'sc(321, 0, attr, 128)'],
    ],
  }),
  syscalls({
    id: 'priv.perf-event-open',
    title: 'open a performance counter (kernel pointers, side channels)',
    prelude: `attr = ctypes.create_string_buffer(128)
struct.pack_into('=II', attr, 0, 1, 128)`,
    calls: [['perf_event_open', 'sc(298, attr, 0, -1, -1, 0)']],
  }),
  syscalls({ id: 'priv.userfaultfd', title: "pause the kernel at a chosen page fault with userfaultfd (exploit primitive)", calls: [['userfaultfd', 'sc(323, 0o2000000)']] }),
  syscalls({
    id: 'priv.io-uring',
    title: 'set up an io_uring, whose operations bypass the syscall filter',
    prelude: 'params = ctypes.create_string_buffer(120)',
    calls: [
      ['setup', 'sc(425, 8, params)'],
      ['enter', 'sc(426, 0, 0, 0, 0, None, 0)'],
      ['register', 'sc(427, 0, 0, None, 0)'],
    ],
  }),
  syscalls({
    id: 'priv.kernel-modules',
    title: 'load and unload kernel modules (init_module, finit_module, delete_module)',
    promise: 'escalation',
    calls: [
      ['init_module', `sc(175, None, 0, b'')`],
      ['finit_module', `sc(313, -1, b'', 0)`],
      ['delete_module', `sc(176, b'ward_probe_none', 0)`],
    ],
    asi: ['ASI05', 'ASI10'],
  }),
  syscalls({
    id: 'priv.kexec',
    title: 'load a new kernel to boot into (kexec_load with invalid flags, kexec_file_load)',
    promise: 'escalation',
    calls: [
      ['kexec_load', 'sc(246, 0, 0, None, 0xdead0000)'],
      ['kexec_file_load', `sc(320, -1, -1, 0, b'', 0)`],
    ],
    asi: ['ASI05', 'ASI10'],
  }),
  {
    id: 'priv.reboot',
    group,
    promise: 'syscalls',
    title: 'reboot (with a bad magic number, so an allowed call fails with EINVAL instead)',
    mechanism: 'seccomp',
    asi: ['ASI08', 'ASI10'],
    nist: ['AC-6', 'SC-5'],
    expect: 'refused',
    program: py(`say('reboot', sc(169, 0, 0, 0, None))`),
    check: (run) => {
      // The kernel checks CAP_SYS_BOOT before the magic: EINVAL means the call got past both.
      if (kv(run.stdout).get('reboot') === String(E.EINVAL)) return broken('reboot reached the magic-number check: nothing refused it');
      return expectErrno({ keys: ['reboot'], refused: [E.EPERM], by: 'seccomp' })(run);
    },
  },
  syscalls({
    id: 'priv.iopl',
    title: 'raw hardware port access (iopl, ioperm)',
    promise: 'escalation',
    calls: [
      ['iopl', 'sc(172, 3)'],
      ['ioperm', 'sc(173, 0x80, 1, 1)'],
    ],
  }),
  {
    id: 'priv.personality',
    group,
    promise: 'syscalls',
    title: 'turn off ASLR and make data executable with personality() (the query stays allowed)',
    mechanism: 'seccomp',
    asi: ['ASI05'],
    nist: ['SI-16', 'CM-7'],
    expect: 'refused',
    program: py(`libc.personality.restype = ctypes.c_int
ctypes.set_errno(0)
q = libc.personality(ctypes.c_ulong(0xffffffff))
say('query', 0 if q != -1 else ctypes.get_errno())
say('no_randomize', sc(135, 0x0040000))
say('read_implies_exec', sc(135, 0x0400000))
say('mmap_page_zero', sc(135, 0x0100000))`),
    check: (run) => {
      const v = kv(run.stdout);
      if (v.get('query') !== '0') return v.has('query') ? error(`the personality query failed (${v.get('query')}): the filter is too broad`) : noResult(run, 'personality');
      return expectErrno({ keys: ['no_randomize', 'read_implies_exec', 'mmap_page_zero'], refused: [E.EPERM], by: 'seccomp (personality flags)' })(run);
    },
  },
  {
    id: 'priv.sethostname',
    group,
    promise: 'escalation',
    title: 'change the hostname and domain name',
    mechanism: 'capabilities',
    asi: ['ASI03'],
    nist: ['AC-6', 'SC-39'],
    expect: 'refused',
    setup: (ctx) => {
      ctx.state.hostname = os.hostname();
    },
    program: py(`say('sethostname', sc(170, b'ward-probe-pwned', 16))
say('setdomainname', sc(171, b'ward-probe-pwned', 16))`),
    check: (run, ctx) => {
      if (os.hostname() !== ctx.state.hostname) return broken(`the host's hostname changed to ${os.hostname()}`);
      return expectErrno({ keys: ['sethostname', 'setdomainname'], refused: [E.EPERM], by: 'missing CAP_SYS_ADMIN (and a private UTS namespace behind it)' })(run);
    },
  },
  syscalls({
    id: 'priv.set-clock',
    title: "set the machine's clock (settimeofday with no change, adjtimex read-only mode)",
    calls: [
      ['settimeofday', 'sc(164, None, None)'],
      ['adjtimex', 'sc(159, ctypes.create_string_buffer(256))'],
    ],
    asi: ['ASI05', 'ASI08'],
  }),
  {
    id: 'priv.x32-abi',
    group,
    promise: 'syscalls',
    title: 'call getpid through the x32 ABI (syscall number | 0x40000000), around the x86_64 rules',
    mechanism: 'seccomp',
    asi: ['ASI05'],
    nist: ['SC-39', 'CM-7'],
    expect: 'refused',
    program: py(`say('calling', 1)
r, e = sc2(0x40000000 | 39)
say('survived', r)`),
    check: (run) => killedBySigsys(run, 'an x32 syscall'),
  },
  {
    id: 'priv.i386-int80',
    group,
    promise: 'syscalls',
    title: 'call getpid through the i386 entry point (int 0x80) from a 64-bit process',
    mechanism: 'seccomp',
    asi: ['ASI05'],
    nist: ['SC-39', 'CM-7'],
    expect: 'refused',
    program: py(`import mmap
code = bytes([0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3])  # mov eax, 20 (getpid); int 0x80; ret
buf = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
buf.write(code)
f = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(buf)))
say('calling', 1)
say('survived', f())`),
    check: (run) => killedBySigsys(run, 'an i386 syscall'),
  },
];
