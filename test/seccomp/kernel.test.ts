// The real kernel agrees with the interpreter: the compiled program is loaded by bubblewrap
// (`--seccomp 3`, the way Ward runs commands) and attacks are tried from inside the sandbox.
// A control run without the filter shows the errors below come from the filter and not from
// the sandbox's missing capabilities.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import {
  AUDIT_ARCH_X86_64,
  SECCOMP_RULES,
  X86_64_SYSCALLS,
  checkFilter,
  compileSeccomp,
  runFilter,
} from '../../src/seccomp/index.js';
import {
  BPF_ADD, BPF_ALU, BPF_AND, BPF_DIV, BPF_IMM, BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JMP, BPF_JSET, BPF_LD, BPF_LDX,
  BPF_LEN, BPF_LSH, BPF_MEM, BPF_MISC, BPF_MOD, BPF_MUL, BPF_NEG, BPF_OR, BPF_RET, BPF_RSH, BPF_ST, BPF_STX, BPF_SUB,
  BPF_TAX, BPF_W, BPF_X, BPF_XOR, BPF_ABS, BPF_H, BPF_JA, BPF_K, assemble, encode, insn, ja, jeq, jump, label, ldAbs,
  ret, type AsmItem, type SockFilter,
} from '../../src/seccomp/bpf.js';

const BWRAP_ARGS = ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--unshare-all', '--die-with-parent', '--new-session', '--cap-drop', 'ALL'];
const PYTHON = '/usr/bin/python3';
const SIGSYS_EXIT = 128 + 31; // bwrap reports a child killed by SIGSYS as 128 + 31

const bwrapMissing = spawnSync('bwrap', ['--version']).error !== undefined;
const skipUnlessBwrap = (t: TestContext): boolean => {
  if (bwrapMissing) t.skip('bwrap is not installed: cannot load the filter into a real kernel (apt-get install bubblewrap)');
  return bwrapMissing;
};

const defaultProgram = compileSeccomp().program;
const ia32Program = compileSeccomp({ allowIa32: true }).program;

const SPAWN = { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 } as const;

/** Runs `cmd` in bwrap with `program` (if any) on fd 3, as Ward will. */
function sandbox(program: Buffer | null, cmd: string[]): SpawnSyncReturns<string> {
  const dir = mkdtempSync(join(tmpdir(), 'ward-seccomp-'));
  try {
    if (program === null) {
      return spawnSync('bwrap', [...BWRAP_ARGS, '--', ...cmd], { ...SPAWN, stdio: ['ignore', 'pipe', 'pipe'] });
    }
    const file = join(dir, 'filter.bpf');
    writeFileSync(file, program);
    const fd = openSync(file, 'r');
    try {
      return spawnSync('bwrap', [...BWRAP_ARGS, '--seccomp', '3', '--', ...cmd], { ...SPAWN, stdio: ['ignore', 'pipe', 'pipe', fd] });
    } finally {
      closeSync(fd);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A Python program that makes raw syscalls and prints one JSON line per probe:
 * [label, return value, errno]. Probes come as a JSON file named on argv (the host's /tmp is
 * visible read-only inside): [label, kind, nr, ...args], where
 * kind is "syscall" (libc syscall(2)) or "int80" (the 32-bit entry point, from machine code).
 */
const PROBE = String.raw`
import ctypes, json, mmap, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
M64 = (1 << 64) - 1
page = None
def int80(nr, a1=0, a2=0):
    global page
    if page is None:
        page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    # push rbx; push rcx; mov eax, nr; mov ebx, a1; mov ecx, a2; int 0x80; pop rcx; pop rbx; ret
    code = b'\x53\x51\xb8' + struct.pack('<I', nr) + b'\xbb' + struct.pack('<I', a1 & 0xffffffff) + \
        b'\xb9' + struct.pack('<I', a2 & 0xffffffff) + b'\xcd\x80\x59\x5b\xc3'
    page.seek(0); page.write(code)
    r = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(page)))()
    return (-1, -r) if -4096 < r < 0 else (r, 0)
for label, kind, nr, *args in json.load(open(sys.argv[1])):
    if kind == 'int80':
        r, e = int80(nr, *args)
    else:
        ctypes.set_errno(0)
        r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_ulong(a & M64) for a in args])
        e = ctypes.get_errno() if r == -1 else 0
        if r == 0 and label.startswith('clone'):
            os._exit(0)  # a clone the filter should have refused: the child leaves at once
    print(json.dumps([label, r, e]), flush=True)
print('survived', flush=True)
`;

type Probe = [label: string, kind: 'syscall' | 'int80', nr: number, ...args: number[]];
interface ProbeRun {
  results: Map<string, { ret: number; errno: number }>;
  run: SpawnSyncReturns<string>;
}

function probe(program: Buffer | null, probes: Probe[]): ProbeRun {
  const dir = mkdtempSync(join(tmpdir(), 'ward-probe-'));
  let run: SpawnSyncReturns<string>;
  try {
    writeFileSync(join(dir, 'probes.json'), JSON.stringify(probes));
    run = sandbox(program, [PYTHON, '-c', PROBE, join(dir, 'probes.json')]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  if (run.error) throw run.error;
  const results = new Map<string, { ret: number; errno: number }>();
  for (const line of run.stdout.split('\n')) {
    if (!line.startsWith('[')) continue;
    const [label, ret, errno] = JSON.parse(line) as [string, number, number];
    results.set(label, { ret, errno });
  }
  return { results, run };
}

const nr = (name: string): number => {
  const n = X86_64_SYSCALLS[name];
  assert.ok(n !== undefined, name);
  return n;
};
const EPERM = 1;
const ENOSYS = 38;
const ENOTTY = 25;
const EINVAL = 22;
const EBADF = 9;
const TIOCSTI = 0x5412;
const CLONE_NEWUSER = 0x10000000;
const SIGCHLD = 17;

describe('the filter in a real kernel (bubblewrap --seccomp)', () => {
  it('the sandbox itself works without the filter', (t) => {
    if (skipUnlessBwrap(t)) return;
    const run = sandbox(null, ['true']);
    assert.equal(run.status, 0, `bwrap cannot build the test sandbox here: ${run.stderr}`);
  });

  it('normal work still succeeds: shell, fork + wait, threads, subprocesses, node', (t) => {
    if (skipUnlessBwrap(t)) return;
    const sh = sandbox(defaultProgram, ['sh', '-c', 'echo ok; ls / >/dev/null && echo ls-ok']);
    assert.equal(sh.status, 0, sh.stderr);
    assert.equal(sh.stdout, 'ok\nls-ok\n');

    const py = sandbox(defaultProgram, [
      PYTHON,
      '-c',
      [
        'import os, threading, subprocess',
        'pid = os.fork()',
        'if pid == 0: os._exit(7)',
        'print("fork", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))',
        'out = []',
        'ts = [threading.Thread(target=out.append, args=(i,)) for i in range(4)]',
        '[t.start() for t in ts]; [t.join() for t in ts]',
        'print("threads", sorted(out))',
        'print(subprocess.run(["echo", "spawned"], capture_output=True, text=True).stdout.strip())',
      ].join('\n'),
    ]);
    assert.equal(py.status, 0, py.stderr);
    assert.equal(py.stdout, 'fork 7\nthreads [0, 1, 2, 3]\nspawned\n');

    // Node uses clone3 (via glibc) and may try io_uring (libuv): both must fall back cleanly.
    const node = sandbox(defaultProgram, [
      process.execPath,
      '-e',
      `require('fs').readFile('/etc/hostname', (e) => { if (e) throw e;
        require('fs').promises.readFile('/etc/passwd').then(() => {
          console.log(require('child_process').execFileSync('echo', ['node ok']).toString().trim()); }); });`,
    ]);
    assert.equal(node.status, 0, node.stderr);
    assert.equal(node.stdout, 'node ok\n');
  });

  it('`unshare -U true` fails with "Operation not permitted"', (t) => {
    if (skipUnlessBwrap(t)) return;
    const run = sandbox(defaultProgram, ['unshare', '-U', 'true']);
    assert.notEqual(run.status, 0);
    assert.match(run.stderr, /Operation not permitted/);
  });

  it('attacks from Python get EPERM (ENOSYS for clone3); without the filter they do not', (t) => {
    if (skipUnlessBwrap(t)) return;
    const probes: Probe[] = [
      ['unshare(CLONE_NEWUSER)', 'syscall', nr('unshare'), CLONE_NEWUSER],
      ['ptrace(PTRACE_TRACEME)', 'syscall', nr('ptrace'), 0, 0, 0, 0],
      ['io_uring_setup', 'syscall', 425, 1, 0],
      ['ioctl(0, TIOCSTI)', 'syscall', nr('ioctl'), 0, TIOCSTI, 0],
      ['ioctl(0, TIOCSTI | 1 << 32)', 'syscall', nr('ioctl'), 0, 2 ** 32 + TIOCSTI, 0],
      ['personality(ADDR_NO_RANDOMIZE)', 'syscall', nr('personality'), 0x0040000],
      ['clone(CLONE_NEWUSER | SIGCHLD)', 'syscall', nr('clone'), CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0],
      ['clone3(NULL, 0)', 'syscall', nr('clone3'), 0, 0],
      ['pidfd_getfd(-1, 0, 0)', 'syscall', nr('pidfd_getfd'), -1, 0, 0],
      ['socket(AF_PACKET)', 'syscall', nr('socket'), 17, 3, 0],
      ['socket(AF_ALG)', 'syscall', nr('socket'), 38, 5, 0],
      ['socket(AF_VSOCK)', 'syscall', nr('socket'), 40, 1, 0],
      ['mount(NULL, "/", NULL, MS_REMOUNT)', 'syscall', nr('mount'), 0, 0, 0, 32, 0],
      ['bpf(0, NULL, 0)', 'syscall', nr('bpf'), 0, 0, 0],
      ['keyctl(GET_KEYRING_ID, SESSION)', 'syscall', nr('keyctl'), 0, -3, 0],
      // Allowed calls, for contrast.
      ['getpid', 'syscall', nr('getpid')],
      ['personality(query)', 'syscall', nr('personality'), 0xffffffff],
      ['ioctl(0, TCGETS)', 'syscall', nr('ioctl'), 0, 0x5401, 0],
      ['socket(AF_INET)', 'syscall', nr('socket'), 2, 1, 0],
      ['socket(AF_NETLINK, NETLINK_ROUTE)', 'syscall', nr('socket'), 16, 3, 0],
    ];
    const { results, run } = probe(defaultProgram, probes);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /survived/);
    const get = (label: string) => {
      const r = results.get(label);
      assert.ok(r, `no result for ${label}: ${run.stdout}${run.stderr}`);
      return r;
    };

    // The kernel's answer equals the interpreter's, probe by probe.
    for (const [label, , n, ...args] of probes) {
      const v = runFilter(defaultProgram, { nr: n, arch: AUDIT_ARCH_X86_64, args: args.map((a) => BigInt.asUintN(64, BigInt(a))) });
      const got = get(label);
      if (v.action === 'errno') assert.deepEqual(got, { ret: -1, errno: v.data }, label);
      else assert.notEqual(got.errno, EPERM, `${label} is allowed by the filter, the kernel said ${JSON.stringify(got)}`);
    }
    assert.deepEqual(get('clone3(NULL, 0)'), { ret: -1, errno: ENOSYS });
    assert.deepEqual(get('ioctl(0, TIOCSTI | 1 << 32)'), { ret: -1, errno: EPERM });
    assert.ok(get('getpid').ret > 0);
    assert.ok(get('socket(AF_INET)').ret >= 0);
    assert.ok(get('socket(AF_NETLINK, NETLINK_ROUTE)').ret >= 0);
    assert.deepEqual(get('ioctl(0, TCGETS)'), { ret: -1, errno: ENOTTY }, 'stdin is /dev/null: not a terminal');

    // Control: the same probes without the filter reach the kernel's own checks.
    const control = probe(null, probes.filter(([label]) => !label.startsWith('clone(') && !label.startsWith('personality(ADDR')));
    assert.equal(control.run.status, 0, control.run.stderr);
    assert.deepEqual(control.results.get('clone3(NULL, 0)'), { ret: -1, errno: EINVAL });
    assert.deepEqual(control.results.get('ioctl(0, TIOCSTI)'), { ret: -1, errno: ENOTTY });
    assert.deepEqual(control.results.get('ioctl(0, TIOCSTI | 1 << 32)'), { ret: -1, errno: ENOTTY }, 'the kernel runs it as TIOCSTI');
    assert.deepEqual(control.results.get('pidfd_getfd(-1, 0, 0)'), { ret: -1, errno: EBADF });
  });

  it('every always-denied x86_64 syscall: the kernel returns the errno the interpreter predicts', (t) => {
    if (skipUnlessBwrap(t)) return;
    // Zero arguments: harmless even if the filter failed (no capabilities, empty namespaces).
    const names = [...new Set(SECCOMP_RULES.filter((r) => r.when === undefined).map((r) => r.syscall))].filter(
      (name) => X86_64_SYSCALLS[name] !== undefined,
    );
    const probes: Probe[] = names.map((name) => [name, 'syscall', nr(name), 0, 0, 0, 0, 0, 0]);
    const { results, run } = probe(defaultProgram, probes);
    assert.equal(run.status, 0, run.stderr);
    for (const name of names) {
      const v = runFilter(defaultProgram, { nr: nr(name), arch: AUDIT_ARCH_X86_64, args: [0n, 0n, 0n, 0n, 0n, 0n] });
      assert.equal(v.action, 'errno', name);
      assert.deepEqual(results.get(name), { ret: -1, errno: v.data }, name);
    }
    assert.ok(names.length >= 50, `${names.length} syscalls probed`);
  });

  it('an x32 syscall kills the process', (t) => {
    if (skipUnlessBwrap(t)) return;
    const { run } = probe(defaultProgram, [['x32 getpid', 'syscall', 0x40000000 | nr('getpid')]]);
    assert.equal(run.status, SIGSYS_EXIT, `status ${run.status} ${run.stderr}`);
    assert.doesNotMatch(run.stdout, /survived/);
  });

  it('32-bit syscalls (int $0x80) kill the process by default', (t) => {
    if (skipUnlessBwrap(t)) return;
    const { run } = probe(defaultProgram, [['i386 getpid', 'int80', 20]]);
    assert.equal(run.status, SIGSYS_EXIT, `status ${run.status} ${run.stderr}`);
    assert.doesNotMatch(run.stdout, /survived/);
  });

  it('with allowIa32, 32-bit syscalls run under the same rules', (t) => {
    if (skipUnlessBwrap(t)) return;
    const { results, run } = probe(ia32Program, [
      ['i386 getpid', 'int80', 20],
      ['i386 unshare(CLONE_NEWUSER)', 'int80', 310, CLONE_NEWUSER],
      ['i386 ptrace(TRACEME)', 'int80', 26, 0],
      ['i386 socketcall(SYS_SOCKET)', 'int80', 102, 1, 0],
      ['i386 ioctl(0, TIOCSTI)', 'int80', 54, 0, TIOCSTI],
    ]);
    if (run.status === 128 + 11 || /Illegal|Segmentation/.test(run.stderr)) {
      t.skip('this kernel has no 32-bit syscall entry (CONFIG_IA32_EMULATION off or disabled)');
      return;
    }
    assert.equal(run.status, 0, run.stderr);
    assert.ok((results.get('i386 getpid')?.ret ?? 0) > 0);
    assert.deepEqual(results.get('i386 unshare(CLONE_NEWUSER)'), { ret: -1, errno: EPERM });
    assert.deepEqual(results.get('i386 ptrace(TRACEME)'), { ret: -1, errno: EPERM });
    assert.deepEqual(results.get('i386 socketcall(SYS_SOCKET)'), { ret: -1, errno: ENOSYS });
    assert.deepEqual(results.get('i386 ioctl(0, TIOCSTI)'), { ret: -1, errno: EPERM });
  });
});

// The interpreter is the oracle for everything above and for `ward verify`, so it is itself
// checked against the kernel: one program runs many small computations on the syscall's
// arguments and returns the result as an errno, 11 bits at a time.
describe('the interpreter against the kernel', () => {
  const PROBE_NR = 1000; // no such syscall: nothing else the probe process does is affected
  type Variant = { name: string; body: AsmItem[] };
  const X_OPS = { add: BPF_ADD, sub: BPF_SUB, mul: BPF_MUL, div: BPF_DIV, or: BPF_OR, and: BPF_AND, xor: BPF_XOR, lsh: BPF_LSH, rsh: BPF_RSH };
  const JUMPS = { jeq: BPF_JEQ, jgt: BPF_JGT, jge: BPF_JGE, jset: BPF_JSET };
  const variants: Variant[] = [
    // A = arg0 OP arg1 (X)
    ...Object.entries(X_OPS).map(([name, op]) => ({ name: `${name} x`, body: [insn(BPF_ALU | op | BPF_X)] })),
    // A = arg0 OP k, for a few constants
    ...Object.entries(X_OPS).flatMap(([name, op]) =>
      [1, 3, 31, 0x80000000, 0xffffffff]
        .filter((k) => !((op === BPF_LSH || op === BPF_RSH) && k >= 32))
        .map((k) => ({ name: `${name} #${k}`, body: [insn(BPF_ALU | op | BPF_K, k)] })),
    ),
    { name: 'neg', body: [insn(BPF_ALU | BPF_NEG)] },
    { name: 'ld len', body: [insn(BPF_LD | BPF_W | BPF_LEN)] },
    { name: 'txa', body: [insn(BPF_MISC | 0x80)] },
    // A = (arg0 CMP arg1) ? 1 : 2, and the same against a constant
    ...Object.entries(JUMPS).flatMap(([name, op]) => [
      { name: `${name} x`, body: [jump(op | BPF_X, 0, `${name}x:t`, null), ldImm(2), ja('tail'), label(`${name}x:t`), ldImm(1)] },
      { name: `${name} #0x80000001`, body: [jump(op, 0x80000001, `${name}k:t`, null), ldImm(2), ja('tail'), label(`${name}k:t`), ldImm(1)] },
    ]),
  ];
  function ldImm(k: number): AsmItem {
    return insn(BPF_LD | BPF_IMM, k);
  }
  // arg3 picks the variant; A = arg0 and X = arg1 on entry; the result is shifted right by arg2
  // and its low 11 bits returned as errno + 1 (errno 0 would mean "success").
  const program = assemble([
    ldAbs(0),
    jeq(PROBE_NR, null, 'allow'),
    ldAbs(40),
    ...variants.map((_, i) => jeq(i, `v${i}`, null)),
    ja('allow'),
    ...variants.flatMap((v, i) => [label(`v${i}`), ldAbs(24), insn(BPF_MISC | BPF_TAX), ldAbs(16), ...v.body, ja('tail')]),
    label('tail'),
    insn(BPF_ST, 0),
    ldAbs(32),
    insn(BPF_MISC | BPF_TAX),
    insn(BPF_LD | BPF_MEM, 0),
    insn(BPF_ALU | BPF_RSH | BPF_X),
    insn(BPF_ALU | BPF_AND | BPF_K, 0x7ff),
    insn(BPF_ALU | BPF_ADD | BPF_K, 1),
    insn(BPF_ALU | BPF_OR | BPF_K, 0x00050000),
    insn(BPF_RET | 0x10),
    label('allow'),
    ret(0x7fff0000),
  ]);

  it('ALU, jumps, scratch memory and loads give the same results', (t) => {
    if (skipUnlessBwrap(t)) return;
    const edges = [0, 1, 2, 31, 32, 33, 63, 64, 0x7fffffff, 0x80000000, 0x80000001, 0xfffffffe, 0xffffffff];
    let seed = 12345;
    const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
    const pairs: [number, number][] = [];
    for (const a of edges) for (const b of edges) pairs.push([a, b]);
    for (let i = 0; i < 40; i++) pairs.push([random(), random()]);
    const probes: Probe[] = [];
    variants.forEach((v, i) => {
      for (const [a, b] of pairs) {
        if (v.name === 'div x' && b === 0) continue; // ends the filter with 0 (KILL_THREAD): tested below
        for (const shift of [0, 11, 22]) probes.push([`${i} ${a} ${b} ${shift}`, 'syscall', PROBE_NR, a, b, shift, i]);
      }
    });
    const { results, run } = probe(encode(program), probes);
    assert.equal(run.status, 0, run.stderr);
    let compared = 0;
    for (const [label, , n, ...args] of probes) {
      const v = runFilter(program, { nr: n, arch: AUDIT_ARCH_X86_64, args: args.map(BigInt) });
      const got = results.get(label);
      const variant = variants[args[3]!]!.name;
      assert.deepEqual(got, { ret: -1, errno: v.data }, `${variant}: arg0=${args[0]} arg1=${args[1]} >> ${args[2]}`);
      compared++;
    }
    assert.ok(compared > 10_000, `${compared} comparisons`);
    const distinct = new Set([...results.values()].map((r) => r.errno)).size;
    assert.ok(distinct > 1000, `only ${distinct} distinct results: the variants are not being exercised`);
  });

  it('division by X == 0 ends the filter with 0: the kernel kills the (only) thread', (t) => {
    if (skipUnlessBwrap(t)) return;
    const divX = variants.findIndex((v) => v.name === 'div x');
    assert.equal(runFilter(program, { nr: PROBE_NR, arch: AUDIT_ARCH_X86_64, args: [5n, 0n, 0n, BigInt(divX)] }).action, 'kill_thread');
    const { run } = probe(encode(program), [['div by 0', 'syscall', PROBE_NR, 5, 0, 0, divX]]);
    assert.equal(run.status, SIGSYS_EXIT, `status ${run.status} ${run.stderr}`);
  });

  it('the kernel refuses exactly the programs the checker refuses', (t) => {
    if (skipUnlessBwrap(t)) return;
    const R = (code: number, k = 0, jt = 0, jf = 0): SockFilter => ({ code, jt, jf, k });
    const ALLOW = R(BPF_RET | BPF_K, 0x7fff0000);
    const programs: [string, SockFilter[]][] = [
      ['plain allow', [ALLOW]],
      ['mod', [R(BPF_LD | BPF_IMM, 5), R(BPF_ALU | BPF_MOD | BPF_K, 3), ALLOW]],
      ['ld h abs', [R(BPF_LD | BPF_H | BPF_ABS, 0), ALLOW]],
      ['ld [64]', [R(BPF_LD | BPF_W | BPF_ABS, 64), ALLOW]],
      ['ld [60]', [R(BPF_LD | BPF_W | BPF_ABS, 60), ALLOW]],
      ['ld [6]', [R(BPF_LD | BPF_W | BPF_ABS, 6), ALLOW]],
      ['div #0', [R(BPF_ALU | BPF_DIV | BPF_K, 0), ALLOW]],
      ['lsh #32', [R(BPF_ALU | BPF_LSH | BPF_K, 32), ALLOW]],
      ['lsh #31', [R(BPF_ALU | BPF_LSH | BPF_K, 31), ALLOW]],
      ['st M[16]', [R(BPF_ST, 16), ALLOW]],
      ['ld M[0] unwritten', [R(BPF_LD | BPF_MEM, 0), ALLOW]],
      ['ld M[0] written on one path', [R(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1), R(BPF_ST, 0), R(BPF_LD | BPF_MEM, 0), ALLOW]],
      ['ldx M[0] written first', [R(BPF_STX, 0), R(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1), R(BPF_ST, 1), R(BPF_LDX | BPF_MEM, 0), ALLOW]],
      ['ja past the end', [R(BPF_JMP | BPF_JA, 1), ALLOW]],
      ['jeq past the end', [R(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0), ALLOW]],
      ['no final ret', [ALLOW, R(BPF_LD | BPF_IMM, 0)]],
      ['ldx abs', [R(BPF_LDX | BPF_W | BPF_ABS, 0), ALLOW]],
      ['ld len', [R(BPF_LD | BPF_W | BPF_LEN), ALLOW]],
      ['ret x', [R(BPF_RET | BPF_X), ALLOW]],
      ['4096 instructions', Array.from({ length: 4096 }, () => ALLOW)],
      ['4097 instructions', Array.from({ length: 4097 }, () => ALLOW)],
    ];
    for (const [name, insns] of programs) {
      let accepted = true;
      try {
        checkFilter(insns);
      } catch {
        accepted = false;
      }
      const run = sandbox(encode(insns), ['true']);
      assert.equal(run.status === 0, accepted, `${name}: checker ${accepted ? 'accepts' : 'refuses'}, kernel says ${run.status} ${run.stderr}`);
      if (!accepted) assert.match(run.stderr, /EINVAL|Invalid argument/, name);
    }
  });
});
