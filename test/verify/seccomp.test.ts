// Translation validation of the seccomp filter: a correct program validates with no finding,
// and each seeded flaw is caught with the right counterexample (syscall, ABI, argument).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  EPERM,
  SECCOMP_RULES,
  compileRules,
  compileSeccomp,
  decode,
  encode,
  type SeccompRule,
} from '../../src/seccomp/index.js';
import { BPF_K, BPF_RET } from '../../src/seccomp/bpf.js';
import { argValues, validateSeccomp } from '../../src/verify/index.js';

const full = { rules: SECCOMP_RULES, allowIa32: false, extraDeny: [] as string[] };
const without = (pred: (r: SeccompRule) => boolean) => SECCOMP_RULES.filter((r) => !pred(r));

describe('validateSeccomp', () => {
  it('accepts the filter Ward compiles, with and without ia32 and extra denials', () => {
    assert.deepEqual(validateSeccomp(compileSeccomp().program, full), []);
    const opts = { allowIa32: true, extraDeny: ['mknodat', 'newfstatat'] };
    assert.deepEqual(validateSeccomp(compileSeccomp(opts).program, { ...full, ...opts }), []);
  });

  it('names the syscall whose rule the compiled program lacks', () => {
    const program = compileRules(without((r) => r.syscall === 'ptrace'), { allowIa32: false }).program;
    const findings = validateSeccomp(program, full);
    assert.ok(findings.length > 0);
    for (const f of findings) {
      assert.equal(f.layer, 'seccomp');
      assert.match(f.subject, /^x86_64 ptrace \(101\)/);
      assert.equal(f.expected, 'errno EPERM');
      assert.equal(f.actual, 'allow');
    }
  });

  it('catches a RET instruction patched from ERRNO|EPERM to ALLOW', () => {
    const insns = decode(compileSeccomp().program);
    const at = insns.findIndex((i) => i.code === (BPF_RET | BPF_K) && i.k === (SECCOMP_RET_ERRNO | EPERM));
    assert.ok(at >= 0);
    insns[at] = { ...insns[at]!, k: SECCOMP_RET_ALLOW };
    const findings = validateSeccomp(encode(insns), full);
    const subjects = findings.map((f) => f.subject);
    assert.ok(subjects.some((s) => s.startsWith('x86_64 unshare (272)')), 'an unconditional EPERM rule');
    assert.ok(subjects.some((s) => /^x86_64 openat \(257\) args\[3\]=0x800\b/.test(s)), 'an argument rule, with the value that trips it');
    assert.ok(findings.every((f) => f.expected === 'errno EPERM' && f.actual === 'allow'));
    assert.ok(!subjects.some((s) => s.includes('openat2')), 'ENOSYS rules are untouched');
  });

  it('catches an argument rule that misses one listed value', () => {
    const tty = SECCOMP_RULES.find((r) => r.syscall === 'ioctl')!;
    const narrowed: SeccompRule = { ...tty, when: { arg: 1, in32: [0x5412] } };
    const program = compileRules(SECCOMP_RULES.map((r) => (r === tty ? narrowed : r)), { allowIa32: false }).program;
    const findings = validateSeccomp(program, full);
    assert.ok(findings.length > 0);
    assert.ok(findings.every((f) => f.subject.startsWith('x86_64 ioctl (16) args[1]=') && /args\[1\]=0x(ffffffff0000|10000)?541c\b/.test(f.subject)), JSON.stringify(findings));
    assert.ok(findings.some((f) => f.subject.startsWith('x86_64 ioctl (16) args[1]=0x541c')));
  });

  it('catches an i386 entry that allows when ia32 must be killed', () => {
    const program = compileRules(SECCOMP_RULES, { allowIa32: true }).program;
    const findings = validateSeccomp(program, full);
    assert.ok(findings.length > 0);
    assert.ok(findings.every((f) => f.subject.startsWith('i386 ') && f.expected === 'kill'));
    assert.ok(findings.some((f) => f.subject.startsWith('i386 read (3)') && f.actual === 'allow'));
  });

  it('catches a filter compiled without a policy denial, on x86_64 and i386', () => {
    const program = compileSeccomp({ allowIa32: true }).program;
    const findings = validateSeccomp(program, { ...full, allowIa32: true, extraDeny: ['mknodat'] });
    assert.deepEqual([...new Set(findings.map((f) => f.subject.split(' ').slice(0, 3).join(' ')))].sort(), ['i386 mknodat (297)', 'x86_64 mknodat (259)']);
  });

  it('reports a program the kernel would refuse instead of running it', () => {
    const findings = validateSeccomp(Buffer.alloc(0), full);
    assert.equal(findings.length, 1);
    assert.match(findings[0]!.actual, /invalid seccomp filter/);
  });

  it('generates the argument values around each test: every mask bit, listed values +-1, high-32 bits', () => {
    const bits = argValues({ arg: 3, anyBits: 0o6000n });
    for (const v of [0n, 0o4000n, 0o2000n, 0o6000n, 0xffff_ffff_0000_0000n]) assert.ok(bits.includes(v), String(v));
    const listed = argValues({ arg: 0, notIn32: [0, 0xffffffff] });
    for (const v of [0n, 1n, 0xffff_fffen, 0xffff_ffffn, 0x1_0000_0000n, 0x1_ffff_ffffn]) assert.ok(listed.includes(v), String(v));
    assert.deepEqual(argValues({ arg: 0, in32: [5] }), argValues({ arg: 0, in32: [5] }), 'a fixed seed');
  });
});
