// The compiled filter, run through the interpreter, does what the rule list says: for every
// syscall number of both ABIs, for the argument cases the rules care about, and for random
// arguments. The rule list is the spec; the BPF is never read byte by byte.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AUDIT_ARCH_I386,
  AUDIT_ARCH_X86_64,
  ENOSYS,
  EPERM,
  I386_SYSCALLS,
  SECCOMP_RULES,
  X86_64_SYSCALLS,
  checkFilter,
  compileRules,
  compileSeccomp,
  ruleMatches,
  runFilter,
  type SeccompRule,
  type Verdict,
} from '../../src/seccomp/index.js';

const x86 = (nr: number, args: bigint[] = []) => ({ nr, arch: AUDIT_ARCH_X86_64, args });
const ia32 = (nr: number, args: bigint[] = []) => ({ nr, arch: AUDIT_ARCH_I386, args });
const nrOf = (name: string): number => {
  const nr = X86_64_SYSCALLS[name];
  assert.ok(nr !== undefined, `no x86_64 syscall ${name}`);
  return nr;
};
const i386NrOf = (name: string): number => {
  const nr = I386_SYSCALLS[name];
  assert.ok(nr !== undefined, `no i386 syscall ${name}`);
  return nr;
};

type Outcome = Pick<Verdict, 'action' | 'data'>;

/** What the rule list says about one call: the first rule for the name that matches, else allow. */
function expected(rules: readonly SeccompRule[], name: string | undefined, args: readonly bigint[]): Outcome {
  const rule = rules.find((r) => r.syscall === name && ruleMatches(r, args));
  if (rule === undefined) return { action: 'allow', data: 0 };
  return rule.action === 'kill' ? { action: 'kill_process', data: 0 } : { action: 'errno', data: rule.action.errno };
}

function byNumber(table: Readonly<Record<string, number>>): Map<number, string> {
  return new Map(Object.entries(table).map(([name, nr]) => [nr, name]));
}

const allow: Outcome = { action: 'allow', data: 0 };
const eperm: Outcome = { action: 'errno', data: EPERM };
const enosys: Outcome = { action: 'errno', data: ENOSYS };
const verdict = (v: Verdict) => ({ action: v.action, data: v.data });

const { program } = compileSeccomp();
const ia32Program = compileSeccomp({ allowIa32: true }).program;

// Deterministic pseudo-random numbers (xorshift), so a failure can be reproduced.
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  const next32 = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>>= 0);
  };
  return { next32, next64: () => (BigInt(next32()) << 32n) | BigInt(next32()) };
}

describe('the compiled program', () => {
  it('passes the kernel checks and stays small', () => {
    assert.doesNotThrow(() => checkFilter(program));
    assert.doesNotThrow(() => checkFilter(ia32Program));
    const c = compileSeccomp({ allowIa32: true, extraDeny: ['getpid'] });
    assert.ok(c.instructions < 4096);
    assert.equal(c.program.length, c.instructions * 8);
    assert.ok(compileSeccomp().instructions < 200, `grew to ${compileSeccomp().instructions} instructions`);
  });

  it('is deterministic: same options, same bytes', () => {
    const opts = { allowIa32: true, extraDeny: ['getpid', 'sync'] };
    assert.deepEqual(compileSeccomp(opts).program, compileSeccomp(opts).program);
    assert.deepEqual(compileSeccomp().program, program);
    assert.notDeepEqual(compileSeccomp(opts).program, program);
  });

  it('reports the rules it compiled', () => {
    const c = compileSeccomp({ extraDeny: ['sync'] });
    assert.equal(c.rules.length, SECCOMP_RULES.length + 1);
    assert.equal(c.rules.at(-1)?.syscall, 'sync');
    for (const rule of SECCOMP_RULES) assert.ok(rule.why.length > 20, `${rule.syscall} needs a reason`);
  });
});

describe('x86_64: every syscall number', () => {
  const names = byNumber(X86_64_SYSCALLS);

  it('0..480 with zero arguments match the rule list', () => {
    for (let nr = 0; nr <= 480; nr++) {
      const want = expected(SECCOMP_RULES, names.get(nr), []);
      assert.deepEqual(verdict(runFilter(program, x86(nr))), want, `nr ${nr} (${names.get(nr) ?? 'unassigned'})`);
    }
  });

  it('the denials the design promises are all there', () => {
    const always = [
      'unshare', 'setns',
      'mount', 'umount2', 'pivot_root', 'chroot', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'open_tree', 'open_tree_attr', 'mount_setattr',
      'ptrace', 'process_vm_readv', 'process_vm_writev', 'pidfd_getfd', 'kcmp',
      'io_uring_setup', 'io_uring_enter', 'io_uring_register',
      'bpf', 'perf_event_open', 'keyctl', 'add_key', 'request_key', 'userfaultfd',
      'kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module', 'reboot', 'swapon', 'swapoff',
      'acct', 'syslog', 'quotactl', 'quotactl_fd', 'iopl', 'ioperm', 'uselib', 'lookup_dcookie', 'nfsservctl',
      'settimeofday', 'clock_settime', 'clock_adjtime', 'adjtimex', 'name_to_handle_at', 'open_by_handle_at',
    ];
    for (const name of always) {
      assert.deepEqual(verdict(runFilter(program, x86(nrOf(name), [0xffffn, 1n]))), eperm, name);
    }
    assert.deepEqual(verdict(runFilter(program, x86(nrOf('clone3')))), enosys);
  });

  it('everyday syscalls are allowed', () => {
    for (const name of ['read', 'write', 'openat', 'execve', 'getpid', 'mmap', 'connect', 'wait4', 'exit_group', 'seccomp', 'prctl', 'statmount', 'listmount', 'fork', 'vfork']) {
      assert.deepEqual(verdict(runFilter(program, x86(nrOf(name), [0xdeadn, 0xbeefn]))), allow, name);
    }
  });

  it('x32 numbers (0x40000000 | n) kill the process', () => {
    for (const nr of [0, 39, 101, 512, 547, 0x3fffffff]) {
      assert.equal(runFilter(program, x86(0x40000000 | nr)).action, 'kill_process', `x32 ${nr}`);
    }
    assert.equal(runFilter(program, x86(-1)).action, 'kill_process');
  });

  it('every rule names a syscall of some ABI, and the tables agree with their names', () => {
    for (const rule of SECCOMP_RULES) {
      assert.ok(rule.syscall in X86_64_SYSCALLS || rule.syscall in I386_SYSCALLS, rule.syscall);
    }
    assert.equal(new Set(Object.values(X86_64_SYSCALLS)).size, Object.keys(X86_64_SYSCALLS).length, 'x86_64 numbers are unique');
    assert.equal(new Set(Object.values(I386_SYSCALLS)).size, Object.keys(I386_SYSCALLS).length, 'i386 numbers are unique');
    const spot: Record<string, number> = {
      read: 0, getpid: 39, ptrace: 101, personality: 135, clone: 56, ioctl: 16, socket: 41, uretprobe: 335,
      landlock_create_ruleset: 444, landlock_add_rule: 445, landlock_restrict_self: 446, process_mrelease: 448,
      futex_waitv: 449, set_mempolicy_home_node: 450, cachestat: 451, fchmodat2: 452, map_shadow_stack: 453,
      futex_wake: 454, futex_wait: 455, futex_requeue: 456, statmount: 457, listmount: 458,
      lsm_get_self_attr: 459, lsm_set_self_attr: 460, lsm_list_modules: 461, mseal: 462, clone3: 435,
    };
    for (const [name, nr] of Object.entries(spot)) assert.equal(X86_64_SYSCALLS[name], nr, name);
    assert.ok(Object.keys(X86_64_SYSCALLS).length >= 370);
  });
});

describe('x86_64: argument checks', () => {
  const clone = nrOf('clone');
  const SIGCHLD = 17n;

  it('clone with any CLONE_NEW* flag -> EPERM', () => {
    const flags: Record<string, bigint> = {
      CLONE_NEWUSER: 0x10000000n, CLONE_NEWNS: 0x20000n, CLONE_NEWPID: 0x20000000n, CLONE_NEWNET: 0x40000000n,
      CLONE_NEWIPC: 0x08000000n, CLONE_NEWUTS: 0x04000000n, CLONE_NEWCGROUP: 0x02000000n, CLONE_NEWTIME: 0x80n,
    };
    for (const [name, flag] of Object.entries(flags)) {
      assert.deepEqual(verdict(runFilter(program, x86(clone, [flag | SIGCHLD]))), eperm, name);
      assert.deepEqual(verdict(runFilter(program, x86(clone, [flag | 0xffffffff00000000n]))), eperm, `${name} with high bits`);
    }
  });

  it('clone for fork and threads -> allowed', () => {
    const CLONE_VM = 0x100n, CLONE_FS = 0x200n, CLONE_FILES = 0x400n, CLONE_SIGHAND = 0x800n, CLONE_THREAD = 0x10000n,
      CLONE_SYSVSEM = 0x40000n, CLONE_SETTLS = 0x80000n, CLONE_PARENT_SETTID = 0x100000n, CLONE_CHILD_CLEARTID = 0x200000n,
      CLONE_CHILD_SETTID = 0x01000000n, CLONE_VFORK = 0x4000n, CLONE_PIDFD = 0x1000n;
    const thread = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS |
      CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
    for (const flags of [SIGCHLD, CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD, thread, CLONE_VM | CLONE_VFORK | SIGCHLD, CLONE_PIDFD | SIGCHLD, 0n]) {
      assert.deepEqual(verdict(runFilter(program, x86(clone, [flags, 0n, 0n, 0n, 0n]))), allow, `flags 0x${flags.toString(16)}`);
    }
  });

  it('ioctl TIOCSTI / TIOCLINUX -> EPERM, also with high bits set; other requests allowed', () => {
    const ioctl = nrOf('ioctl');
    for (const cmd of [0x5412n, 0x541cn, 0x1_0000_5412n, 0xffff_ffff_0000_541cn]) {
      assert.deepEqual(verdict(runFilter(program, x86(ioctl, [0n, cmd, 0n]))), eperm, `cmd 0x${cmd.toString(16)}`);
    }
    for (const cmd of [0x5401n /* TCGETS */, 0x5413n /* TIOCGWINSZ */, 0x5411n, 0x5412_0000n, 0x5412n << 32n]) {
      assert.deepEqual(verdict(runFilter(program, x86(ioctl, [0n, cmd, 0n]))), allow, `cmd 0x${cmd.toString(16)}`);
    }
    // The request is the second argument: the fd being 0x5412 means nothing.
    assert.deepEqual(verdict(runFilter(program, x86(ioctl, [0x5412n, 0x5401n]))), allow);
  });

  it('personality: query and PER_LINUX allowed, anything else EPERM', () => {
    const personality = nrOf('personality');
    assert.deepEqual(verdict(runFilter(program, x86(personality, [0n]))), allow);
    assert.deepEqual(verdict(runFilter(program, x86(personality, [0xffffffffn]))), allow);
    assert.deepEqual(verdict(runFilter(program, x86(personality, [0x1_0000_0000n]))), allow, 'the high half is ignored, as by the kernel');
    for (const p of [0x0040000n /* ADDR_NO_RANDOMIZE */, 0x0400000n /* READ_IMPLIES_EXEC */, 0x0100000n /* MMAP_PAGE_ZERO */, 8n /* PER_LINUX32 */, 0xfffffffen]) {
      assert.deepEqual(verdict(runFilter(program, x86(personality, [p]))), eperm, `0x${p.toString(16)}`);
    }
  });

  it('socket: AF_PACKET, AF_KEY, AF_ALG, AF_VSOCK, AF_BLUETOOTH denied; unix, inet, inet6, netlink allowed', () => {
    const socket = nrOf('socket');
    for (const domain of [17n, 15n, 38n, 40n, 31n, 17n | 0x7_0000_0000n]) {
      assert.deepEqual(verdict(runFilter(program, x86(socket, [domain, 3n, 0n]))), eperm, `domain ${domain}`);
    }
    for (const domain of [1n, 2n, 10n, 16n]) {
      assert.deepEqual(verdict(runFilter(program, x86(socket, [domain, 1n, 0n]))), allow, `domain ${domain}`);
    }
  });

  it('random arguments: the program and the rule list agree', () => {
    const { next32, next64 } = rng(0x5eccc0);
    const conditional = [...new Set(SECCOMP_RULES.filter((r) => r.when !== undefined).map((r) => r.syscall))];
    const interesting = [0x5412, 0x541c, 0, 0xffffffff, 15, 17, 31, 38, 40, 0x80, 0x10000000];
    for (const name of conditional) {
      for (let i = 0; i < 3000; i++) {
        const args = Array.from({ length: 6 }, () => {
          switch (next32() % 4) {
            case 0: return next64();
            case 1: return BigInt(interesting[next32() % interesting.length]!);
            case 2: return (BigInt(next32()) << 32n) | BigInt(interesting[next32() % interesting.length]!);
            default: return BigInt(1 << (next32() % 32));
          }
        });
        assert.deepEqual(verdict(runFilter(program, x86(nrOf(name), args))), expected(SECCOMP_RULES, name, args), `${name}(${args.join(', ')})`);
      }
    }
  });
});

describe('other architectures', () => {
  it('i386 is killed by default, whatever the call', () => {
    for (const nr of [0, 1, 20, 102, 310, 450]) assert.equal(runFilter(program, ia32(nr)).action, 'kill_process', `i386 ${nr}`);
  });

  it('an unknown arch is killed', () => {
    for (const arch of [0, 0xc00000b7 /* aarch64 */, 0x4000003e /* x86_64 without the 64-bit bit */, 0xffffffff]) {
      assert.equal(runFilter(program, { nr: 39, arch }).action, 'kill_process', `arch 0x${arch.toString(16)}`);
      assert.equal(runFilter(ia32Program, { nr: 39, arch }).action, 'kill_process', `arch 0x${arch.toString(16)} (ia32 allowed)`);
    }
  });

  it('with allowIa32, every i386 number follows the same rules under its i386 number', () => {
    const names = byNumber(I386_SYSCALLS);
    for (let nr = 0; nr <= 480; nr++) {
      const want = expected(SECCOMP_RULES, names.get(nr), []);
      assert.deepEqual(verdict(runFilter(ia32Program, ia32(nr))), want, `i386 nr ${nr} (${names.get(nr) ?? 'unassigned'})`);
    }
    assert.deepEqual(verdict(runFilter(ia32Program, ia32(20 /* getpid */))), allow);
    for (const name of ['unshare', 'ptrace', 'mount', 'umount', 'io_uring_setup', 'bpf', 'vm86', 'vm86old', 'clock_settime64', 'keyctl']) {
      assert.deepEqual(verdict(runFilter(ia32Program, ia32(i386NrOf(name)))), eperm, `i386 ${name}`);
    }
    assert.deepEqual(verdict(runFilter(ia32Program, ia32(i386NrOf('socketcall'), [1n]))), enosys);
    assert.deepEqual(verdict(runFilter(ia32Program, ia32(i386NrOf('clone3')))), enosys);
    assert.deepEqual(verdict(runFilter(ia32Program, ia32(i386NrOf('clone'), [0x10000000n]))), eperm);
    assert.deepEqual(verdict(runFilter(ia32Program, ia32(i386NrOf('clone'), [17n]))), allow);
    assert.deepEqual(verdict(runFilter(ia32Program, ia32(i386NrOf('ioctl'), [0n, 0x5412n]))), eperm);
    assert.deepEqual(verdict(runFilter(ia32Program, ia32(i386NrOf('socket'), [17n]))), eperm);
    assert.deepEqual(verdict(runFilter(ia32Program, ia32(i386NrOf('ipc'), [1n]))), allow);
    // The x86_64 side is unchanged by allowing i386.
    assert.deepEqual(verdict(runFilter(ia32Program, x86(nrOf('ptrace')))), eperm);
    assert.equal(runFilter(ia32Program, x86(0x40000000 | 39)).action, 'kill_process');
  });
});

describe('extraDeny (policy syscalls.deny)', () => {
  it('adds EPERM denials on x86_64 and, with allowIa32, i386', () => {
    const c = compileSeccomp({ extraDeny: ['getpid', 'sync'], allowIa32: true });
    assert.deepEqual(verdict(runFilter(c.program, x86(39))), eperm);
    assert.deepEqual(verdict(runFilter(c.program, x86(nrOf('sync')))), eperm);
    assert.deepEqual(verdict(runFilter(c.program, ia32(20))), eperm);
    assert.deepEqual(verdict(runFilter(c.program, x86(nrOf('getppid')))), allow);
  });

  it('on a syscall that already has a rule: argument rules first, then the blanket denial', () => {
    const c = compileSeccomp({ extraDeny: ['clone', 'clone3', 'ptrace'] });
    assert.deepEqual(verdict(runFilter(c.program, x86(nrOf('clone'), [17n]))), eperm);
    assert.deepEqual(verdict(runFilter(c.program, x86(nrOf('clone3')))), enosys, 'the built-in rule comes first');
    assert.deepEqual(verdict(runFilter(c.program, x86(nrOf('ptrace')))), eperm);
  });

  it('an unknown name is refused with a helpful message', () => {
    assert.throws(() => compileSeccomp({ extraDeny: ['ptrase'] }), (e: Error) => {
      assert.match(e.message, /"ptrase" is not a known x86_64 syscall/);
      assert.match(e.message, /did you mean "ptrace"/);
      return true;
    });
    assert.throws(() => compileSeccomp({ extraDeny: ['toString'] }), /"toString" is not a known x86_64 syscall/);
    assert.throws(() => compileSeccomp({ extraDeny: ['vm86'] }), /"vm86" is not a known x86_64 syscall/, 'i386-only names are not x86_64 syscalls');
  });
});

describe('compileRules: the rest of the rule shape', () => {
  it('kill actions, several rules per syscall, and 64-bit masks', () => {
    const rules: SeccompRule[] = [
      { syscall: 'getpid', action: 'kill', why: 'test: kill' },
      { syscall: 'mmap', action: { errno: 13 }, when: { arg: 3, anyBits: 0x1_0000_0000n }, why: 'test: high half only' },
      { syscall: 'mmap', action: { errno: 22 }, when: { arg: 2, anyBits: 0x4_0000_0004n }, why: 'test: both halves' },
      { syscall: 'mmap', action: { errno: 1 }, when: { arg: 0, in32: [7] }, why: 'test: third rule' },
      { syscall: 'read', action: { errno: 5 }, why: 'test: unconditional' },
      { syscall: 'read', action: { errno: 6 }, why: 'test: never reached' },
    ];
    const c = compileRules(rules, { allowIa32: true });
    assert.doesNotThrow(() => checkFilter(c.program));
    const mmap = nrOf('mmap');
    assert.equal(runFilter(c.program, x86(39)).action, 'kill_process');
    assert.equal(runFilter(c.program, ia32(20)).action, 'kill_process');
    const cases: [bigint[], Outcome][] = [
      [[0n, 0n, 0n, 0x1_0000_0000n], { action: 'errno', data: 13 }],
      [[0n, 0n, 0n, 0xffff_ffffn], allow],
      [[0n, 0n, 4n, 0n], { action: 'errno', data: 22 }],
      [[0n, 0n, 0x4_0000_0000n, 0n], { action: 'errno', data: 22 }],
      [[0n, 0n, 0x3_0000_0003n, 0n], allow],
      [[7n, 0n, 0n, 0n], { action: 'errno', data: 1 }],
      [[0x1_0000_0007n, 0n, 0n, 0x1_0000_0000n], { action: 'errno', data: 13 }],
    ];
    for (const [args, want] of cases) {
      assert.deepEqual(verdict(runFilter(c.program, x86(mmap, args))), want, args.join(','));
      assert.deepEqual(expected(rules, 'mmap', args), want, `reference ${args.join(',')}`);
    }
    assert.deepEqual(verdict(runFilter(c.program, x86(0))), { action: 'errno', data: 5 });
  });

  it('noneOf32: matches when the low 32 bits lack every bit of the mask; high bits are ignored', () => {
    const rules: SeccompRule[] = [{ syscall: 'memfd_create', action: { errno: 38 }, when: { arg: 1, noneOf32: 0x8 }, why: 'test: a required flag' }];
    const c = compileRules(rules, { allowIa32: true });
    const nr = nrOf('memfd_create');
    const cases: [bigint, Outcome][] = [
      [0n, { action: 'errno', data: 38 }],
      [1n, { action: 'errno', data: 38 }],
      [0x8n, allow],
      [0x9n, allow],
      [0xffff_fff7n, { action: 'errno', data: 38 }],
      // A high bit that looks like the flag is not the flag: the kernel reads an unsigned int.
      [0x8_0000_0000n, { action: 'errno', data: 38 }],
      [0xffff_ffff_0000_0008n, allow],
    ];
    for (const [flags, want] of cases) {
      assert.deepEqual(verdict(runFilter(c.program, x86(nr, [0n, flags]))), want, flags.toString(16));
      assert.deepEqual(expected(rules, 'memfd_create', [0n, flags]), want, `reference ${flags.toString(16)}`);
    }
  });

  it('masked32: matches when the masked low 32 bits equal the value (a flag set, another not); high bits are ignored', () => {
    const rules: SeccompRule[] = [{ syscall: 'clone', action: { errno: 1 }, when: { arg: 0, masked32: 0x10400, equals32: 0x10000 }, why: 'test: CLONE_THREAD without CLONE_FILES' }];
    const c = compileRules(rules, { allowIa32: true });
    const nr = nrOf('clone');
    const cases: [bigint, Outcome][] = [
      [0x10000n, { action: 'errno', data: 1 }],
      [0x10b00n, { action: 'errno', data: 1 }],
      [0x10400n, allow],
      [0x400n, allow],
      [0n, allow],
      // glibc's pthread_create flags: CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID
      [0x3d0f00n, allow],
      [0xffff_ffff_0001_0000n, { action: 'errno', data: 1 }],
      [0x1_0001_0400n, allow],
    ];
    for (const [flags, want] of cases) {
      assert.deepEqual(verdict(runFilter(c.program, x86(nr, [flags]))), want, flags.toString(16));
      assert.deepEqual(expected(rules, 'clone', [flags]), want, `reference ${flags.toString(16)}`);
    }
  });

  it('a supervised plan\'s filter refuses a thread without CLONE_FILES; pthread_create\'s and fork\'s flags pass; an unsupervised one is unchanged', () => {
    const sup = compileSeccomp({ supervised: true });
    const plain = compileSeccomp();
    const clone = nrOf('clone');
    assert.deepEqual(verdict(runFilter(sup.program, x86(clone, [0x10000n | 0x800n | 0x100n]))), { action: 'errno', data: EPERM });
    for (const flags of [0x3d0f00n, 0x1200011n /* fork: CHILD_SETTID|CHILD_CLEARTID|SIGCHLD */]) assert.deepEqual(verdict(runFilter(sup.program, x86(clone, [flags]))), allow, flags.toString(16));
    assert.deepEqual(verdict(runFilter(plain.program, x86(clone, [0x10900n]))), allow);
  });

  it('malformed rules are refused', () => {
    const bad: SeccompRule[] = [
      { syscall: 'nosuchcall', action: { errno: 1 }, why: 'x' },
      { syscall: 'read', action: { errno: 0 }, why: 'x' },
      { syscall: 'read', action: { errno: 4096 }, why: 'x' },
      { syscall: 'read', action: { errno: 1 }, when: { arg: 0, anyBits: 0n }, why: 'x' },
      { syscall: 'read', action: { errno: 1 }, when: { arg: 0, anyBits: 1n << 64n }, why: 'x' },
      { syscall: 'read', action: { errno: 1 }, when: { arg: 0, in32: [] }, why: 'x' },
      { syscall: 'read', action: { errno: 1 }, when: { arg: 0, notIn32: [2 ** 32] }, why: 'x' },
      { syscall: 'read', action: { errno: 1 }, when: { arg: 6 as 0, in32: [1] }, why: 'x' },
      { syscall: 'read', action: { errno: 1 }, when: { arg: 0, noneOf32: 0 }, why: 'x' },
      { syscall: 'read', action: { errno: 1 }, when: { arg: 0, noneOf32: 2 ** 32 }, why: 'x' },
      { syscall: 'read', action: { errno: 1 }, when: { arg: 0, masked32: 0, equals32: 0 }, why: 'x' },
      { syscall: 'read', action: { errno: 1 }, when: { arg: 0, masked32: 0x10, equals32: 0x11 }, why: 'x' },
    ];
    for (const rule of bad) assert.throws(() => compileRules([rule], { allowIa32: false }), /seccomp rule for/, JSON.stringify(rule, (_, v) => (typeof v === 'bigint' ? `${v}n` : v)));
  });

  it('many conditional rules still fit (far jumps go through trampolines)', () => {
    const rules: SeccompRule[] = Object.keys(X86_64_SYSCALLS).map((name, i) => ({
      syscall: name,
      action: { errno: 1 + (i % 100) },
      when: { arg: (i % 6) as 0, in32: [i, i + 1000, i + 2000] },
      why: 'test',
    }));
    const c = compileRules(rules, { allowIa32: false });
    assert.ok(c.instructions > 1000 && c.instructions < 4096, `${c.instructions}`);
    assert.doesNotThrow(() => checkFilter(c.program));
    assert.ok(checkFilter(c.program).some((ins) => ins.code === 0x05 /* ja */), 'the program needed trampolines');
    const names = byNumber(X86_64_SYSCALLS);
    const { next32 } = rng(7);
    for (let n = 0; n < 3000; n++) {
      const nr = next32() % 480;
      const args = Array.from({ length: 6 }, () => BigInt(next32() % 2 === 0 ? next32() % 3000 : next32()));
      assert.deepEqual(verdict(runFilter(c.program, x86(nr, args))), expected(rules, names.get(nr), args), `${nr} ${args.join(',')}`);
    }
  });
});
