// The assembler and the interpreter on hand-written programs: every instruction seccomp
// accepts, the kernel's load-time checks, and the mapping from return value to verdict.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BPF_A, BPF_ABS, BPF_ADD, BPF_ALU, BPF_AND, BPF_B, BPF_DIV, BPF_H, BPF_IMM, BPF_IND, BPF_JA, BPF_JEQ,
  BPF_JGE, BPF_JGT, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_LDX, BPF_LEN, BPF_LSH, BPF_MEM, BPF_MISC, BPF_MOD,
  BPF_MSH, BPF_MUL, BPF_NEG, BPF_OR, BPF_RET, BPF_RSH, BPF_ST, BPF_STX, BPF_SUB, BPF_TAX, BPF_TXA, BPF_W,
  BPF_X, BPF_XOR, assemble, decode, disassemble, encode, insn, ja, jeq, jge, jgt, jset, jump, label, ldAbs, ret,
  type AsmItem, type SockFilter,
} from '../../src/seccomp/bpf.js';
import { BpfCheckError, checkFilter, execute, runFilter, seccompData, verdictOf } from '../../src/seccomp/interpret.js';
import { AUDIT_ARCH_X86_64 } from '../../src/seccomp/abi.js';

const data = { nr: 39, arch: AUDIT_ARCH_X86_64 };
/** Runs an assembled program and returns the filter's raw 32-bit result. */
const run = (items: AsmItem[], input: Parameters<typeof seccompData>[0] = data): number =>
  execute(checkFilter(assemble(items)), seccompData(input));
const ldImm = (k: number) => insn(BPF_LD | BPF_IMM, k);
const ldxImm = (k: number) => insn(BPF_LDX | BPF_IMM, k);
const retA = insn(BPF_RET | BPF_A);
const rejects = (program: readonly SockFilter[], why: RegExp) =>
  assert.throws(() => checkFilter(program), (e: unknown) => e instanceof BpfCheckError && why.test(e.message));
const raw = (code: number, k = 0, jt = 0, jf = 0): SockFilter => ({ code, jt, jf, k });
const RET0 = raw(BPF_RET | BPF_K, 0);

describe('ALU', () => {
  const cases: [string, number, number, number, number][] = [
    // name, op, A, operand, expected (all 32-bit unsigned)
    ['add', BPF_ADD, 7, 5, 12],
    ['add wraps', BPF_ADD, 0xffffffff, 2, 1],
    ['sub', BPF_SUB, 7, 5, 2],
    ['sub wraps', BPF_SUB, 1, 2, 0xffffffff],
    ['mul', BPF_MUL, 6, 7, 42],
    ['mul keeps the low 32 bits', BPF_MUL, 0x10001, 0x10001, 0x20001],
    ['mul large', BPF_MUL, 0xffffffff, 0xffffffff, 1],
    ['div', BPF_DIV, 43, 7, 6],
    ['div unsigned', BPF_DIV, 0xfffffffe, 2, 0x7fffffff],
    ['or', BPF_OR, 0xf0, 0x0f, 0xff],
    ['or high bit', BPF_OR, 0x80000000, 1, 0x80000001],
    ['and', BPF_AND, 0xff00ff00, 0x0ff00ff0, 0x0f000f00],
    ['xor', BPF_XOR, 0xffffffff, 0x0f0f0f0f, 0xf0f0f0f0],
    ['lsh', BPF_LSH, 1, 31, 0x80000000],
    ['lsh drops bits', BPF_LSH, 0xffffffff, 4, 0xfffffff0],
    ['rsh is logical', BPF_RSH, 0x80000000, 31, 1],
    ['rsh', BPF_RSH, 0xff00, 8, 0xff],
  ];
  for (const [name, op, a, v, want] of cases) {
    it(`${name} (K and X)`, () => {
      assert.equal(run([ldImm(a), insn(BPF_ALU | op | BPF_K, v), retA]), want, 'K');
      assert.equal(run([ldImm(a), ldxImm(v), insn(BPF_ALU | op | BPF_X), retA]), want, 'X');
    });
  }

  it('neg', () => {
    assert.equal(run([ldImm(1), insn(BPF_ALU | BPF_NEG), retA]), 0xffffffff);
    assert.equal(run([ldImm(0), insn(BPF_ALU | BPF_NEG), retA]), 0);
    assert.equal(run([ldImm(0x80000000), insn(BPF_ALU | BPF_NEG), retA]), 0x80000000);
  });

  it('division by X == 0 ends the program returning 0 (KILL_THREAD), as the kernel does', () => {
    const items = [ldImm(5), ldxImm(0), insn(BPF_ALU | BPF_DIV | BPF_X), ret(0x7fff0000)];
    assert.equal(run(items), 0);
    assert.equal(verdictOf(run(items)).action, 'kill_thread');
  });

  it('a shift by X uses the low 5 bits of X', () => {
    assert.equal(run([ldImm(1), ldxImm(33), insn(BPF_ALU | BPF_LSH | BPF_X), retA]), 2);
    assert.equal(run([ldImm(0x80000000), ldxImm(32), insn(BPF_ALU | BPF_RSH | BPF_X), retA]), 0x80000000);
  });

  it('division by the constant 0 and shifts by 32 or more are refused at load time', () => {
    rejects([raw(BPF_LD | BPF_IMM, 1), raw(BPF_ALU | BPF_DIV | BPF_K, 0), RET0], /division by the constant 0/);
    rejects([raw(BPF_ALU | BPF_LSH | BPF_K, 32), RET0], /shift by 32/);
    rejects([raw(BPF_ALU | BPF_RSH | BPF_K, 0xffffffff), RET0], /shift by/);
  });

  it('MOD exists in classic BPF but seccomp refuses it', () => {
    rejects([raw(BPF_ALU | BPF_MOD | BPF_K, 3), RET0], /opcode 0x94 is not allowed/);
    rejects([raw(BPF_ALU | BPF_MOD | BPF_X), RET0], /opcode 0x9c is not allowed/);
  });
});

describe('loads, stores, registers', () => {
  const input = {
    nr: -1,
    arch: 0xc000003e,
    ip: 0x1122334455667788n,
    args: [0x0123456789abcdefn, 2n, 3n, 4n, 5n, 0xfedcba9876543210n],
  };
  it('ld [k] reads seccomp_data as little-endian words', () => {
    const expectations: [number, number][] = [
      [0, 0xffffffff], // nr -1
      [4, 0xc000003e],
      [8, 0x55667788],
      [12, 0x11223344],
      [16, 0x89abcdef],
      [20, 0x01234567],
      [24, 2],
      [28, 0],
      [56, 0x76543210],
      [60, 0xfedcba98],
    ];
    for (const [offset, want] of expectations) assert.equal(run([ldAbs(offset), retA], input), want, `[${offset}]`);
  });

  it('negative and oversize arguments are taken modulo 2^64', () => {
    assert.equal(run([ldAbs(20), retA], { ...data, args: [-1n] }), 0xffffffff);
    assert.equal(run([ldAbs(16), retA], { ...data, args: [(1n << 64n) + 5n] }), 5);
  });

  it('ld/ldx len load the size of seccomp_data (64)', () => {
    assert.equal(run([insn(BPF_LD | BPF_W | BPF_LEN), retA]), 64);
    assert.equal(run([insn(BPF_LDX | BPF_W | BPF_LEN), insn(BPF_MISC | BPF_TXA), retA]), 64);
  });

  it('tax / txa move between A and X', () => {
    assert.equal(run([ldImm(9), insn(BPF_MISC | BPF_TAX), ldImm(1), insn(BPF_ALU | BPF_ADD | BPF_X), retA]), 10);
    assert.equal(run([ldxImm(0xabc), insn(BPF_MISC | BPF_TXA), retA]), 0xabc);
  });

  it('scratch memory: st, stx, ld M[], ldx M[]', () => {
    const items = [
      ldImm(111), insn(BPF_ST, 0),
      ldxImm(222), insn(BPF_STX, 15),
      ldImm(0), insn(BPF_LDX | BPF_MEM, 0), // X = 111
      insn(BPF_LD | BPF_MEM, 15), // A = 222
      insn(BPF_ALU | BPF_ADD | BPF_X), // 333
      retA,
    ];
    assert.equal(run(items), 333);
  });

  it('A and X start at 0', () => {
    assert.equal(run([retA]), 0);
    assert.equal(run([insn(BPF_MISC | BPF_TXA), retA]), 0);
  });

  it('out-of-range and unaligned loads are refused at load time', () => {
    rejects([raw(BPF_LD | BPF_W | BPF_ABS, 64), RET0], /load of offset 64/);
    rejects([raw(BPF_LD | BPF_W | BPF_ABS, 2), RET0], /load of offset 2/);
    rejects([raw(BPF_LD | BPF_W | BPF_ABS, 0xfffff000), RET0], /load of offset/); // ancillary "skb" loads
    rejects([raw(BPF_ST, 16), RET0], /M\[16\] does not exist/);
    rejects([raw(BPF_LD | BPF_MEM, 16), RET0], /M\[16\] does not exist/);
  });

  it('load kinds seccomp does not allow are refused', () => {
    rejects([raw(BPF_LD | BPF_H | BPF_ABS, 0), RET0], /not allowed/);
    rejects([raw(BPF_LD | BPF_B | BPF_ABS, 0), RET0], /not allowed/);
    rejects([raw(BPF_LD | BPF_W | BPF_IND, 0), RET0], /not allowed/);
    rejects([raw(BPF_LDX | BPF_B | BPF_MSH, 0), RET0], /not allowed/);
    rejects([raw(BPF_LDX | BPF_W | BPF_ABS, 0), RET0], /not allowed/);
    rejects([raw(BPF_RET | BPF_X), RET0], /not allowed/);
    rejects([raw(0xffff), RET0], /not allowed/);
    rejects([raw(BPF_RET | BPF_K, 2 ** 32)], /does not fit struct sock_filter/);
    rejects([raw(BPF_JMP | BPF_JEQ | BPF_K, 0, 256, 0), RET0], /does not fit struct sock_filter/);
  });

  it('reading scratch memory before every path has written it is refused', () => {
    rejects([raw(BPF_LD | BPF_MEM, 3), RET0], /M\[3\] is read before it is written/);
    // Written on one branch only, read after the branches meet.
    rejects(
      [raw(BPF_LD | BPF_IMM, 0), raw(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1), raw(BPF_ST, 3), raw(BPF_LD | BPF_MEM, 3), RET0],
      /M\[3\] is read before/,
    );
    // Written before the branch: fine.
    assert.doesNotThrow(() =>
      checkFilter([raw(BPF_ST, 3), raw(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1), raw(BPF_LD | BPF_IMM, 1), raw(BPF_LD | BPF_MEM, 3), RET0]),
    );
  });
});

describe('jumps', () => {
  const branch = (op: number, a: number, k: number) =>
    run([ldImm(a), jump(op, k, 'yes', null), ret(0), label('yes'), ret(1)]);
  const branchX = (op: number, a: number, x: number) =>
    run([ldImm(a), ldxImm(x), jump(op | BPF_X, 0, 'yes', null), ret(0), label('yes'), ret(1)]);

  it('jeq, jgt, jge, jset with K and X compare as unsigned 32-bit', () => {
    const cases: [number, number, number, number][] = [
      [BPF_JEQ, 5, 5, 1], [BPF_JEQ, 5, 6, 0],
      [BPF_JGT, 6, 5, 1], [BPF_JGT, 5, 5, 0], [BPF_JGT, 0x80000000, 1, 1],
      [BPF_JGE, 5, 5, 1], [BPF_JGE, 4, 5, 0], [BPF_JGE, 0xffffffff, 0x7fffffff, 1],
      [BPF_JSET, 0b1010, 0b0010, 1], [BPF_JSET, 0b1010, 0b0101, 0], [BPF_JSET, 0x80000000, 0x80000000, 1],
    ];
    for (const [op, a, k, want] of cases) {
      assert.equal(branch(op, a, k), want, `op ${op.toString(16)} ${a} ${k} (K)`);
      assert.equal(branchX(op, a, k), want, `op ${op.toString(16)} ${a} ${k} (X)`);
    }
  });

  it('ja skips forward by k', () => {
    assert.equal(run([ja('end'), ret(1), ret(2), label('end'), ret(3)]), 3);
  });

  it('the mnemonic helpers emit the right opcodes', () => {
    const p = assemble([ldAbs(0), jeq(1, null, null), jgt(1, null, null), jge(1, null, null), jset(1, null, null), ret(7)]);
    assert.deepEqual(p.map((i) => i.code), [0x20, 0x15, 0x25, 0x35, 0x45, 0x06]);
  });

  it('jumps past the end, and programs not ending in a return, are refused', () => {
    rejects([raw(BPF_JMP | BPF_JA, 1), RET0], /ja \+1 jumps past the end/);
    rejects([raw(BPF_JMP | BPF_JA, 0xffffffff), RET0], /jumps past the end/);
    rejects([raw(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0), RET0], /lands past the end/);
    rejects([raw(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1), RET0], /lands past the end/);
    rejects([RET0, raw(BPF_LD | BPF_IMM, 0)], /last instruction is not a return/);
    rejects([], /length 0/);
    rejects(Array.from({ length: 4097 }, () => RET0), /length 4097/);
    assert.doesNotThrow(() => checkFilter(Array.from({ length: 4096 }, () => RET0)));
  });
});

describe('assembler', () => {
  it('resolves labels, with null meaning the next instruction', () => {
    const p = assemble([ldAbs(0), jeq(39, 'a', null), jeq(40, null, 'b'), label('a'), ret(1), label('b'), ret(2)]);
    assert.deepEqual(p[1], { code: BPF_JMP | BPF_JEQ | BPF_K, jt: 1, jf: 0, k: 39 });
    assert.deepEqual(p[2], { code: BPF_JMP | BPF_JEQ | BPF_K, jt: 0, jf: 1, k: 40 });
  });

  it('reaches targets more than 255 instructions away through a trampoline', () => {
    const filler = Array.from({ length: 300 }, () => ret(0));
    const programs: Record<string, AsmItem[]> = {
      'jt far': [ldAbs(0), jeq(39, 'far', null), ret(2), ...filler, label('far'), ret(1)],
      'jf far': [ldAbs(0), jeq(39, null, 'far'), ret(1), ...filler, label('far'), ret(2)],
      'both far': [ldAbs(0), jeq(39, 'x', 'y'), ...filler, label('x'), ret(1), ...filler, label('y'), ret(2)],
    };
    for (const [name, items] of Object.entries(programs)) {
      const p = assemble(items);
      assert.ok(p.some((i) => i.code === (BPF_JMP | BPF_JA)), `${name}: used a trampoline`);
      for (const [nr, want] of [[39, 1], [40, 2]]) {
        assert.equal(execute(checkFilter(p), seccompData({ nr: nr!, arch: 0 })), want, `${name}, nr ${nr}`);
      }
    }
  });

  it('refuses undefined, duplicate and backward labels, and programs over 4096 instructions', () => {
    assert.throws(() => assemble([ja('nowhere'), ret(0)]), /"nowhere" is never defined/);
    assert.throws(() => assemble([label('a'), label('a'), ret(0)]), /"a" is defined twice/);
    assert.throws(() => assemble([label('top'), ldAbs(0), jeq(1, 'top', null), ret(0)]), /goes backwards/);
    assert.throws(() => assemble([ja('end'), ret(0), label('end')]), /past the end/);
    assert.throws(() => assemble(Array.from({ length: 4097 }, () => ret(0))), /4097 instructions/);
    assert.throws(() => assemble([ret(2 ** 32)]), /does not fit in u32/);
    assert.throws(() => assemble([ret(-1)]), /does not fit in u32/);
  });

  it('encode/decode round-trip 8 little-endian bytes per instruction', () => {
    const p = assemble([ldAbs(4), jeq(0xc000003e, null, 'k'), ret(0x7fff0000), label('k'), ret(0x80000000)]);
    const bytes = encode(p);
    assert.equal(bytes.length, 32);
    assert.deepEqual([...bytes.subarray(0, 8)], [0x20, 0, 0, 0, 4, 0, 0, 0]);
    assert.deepEqual([...bytes.subarray(8, 16)], [0x15, 0, 0, 1, 0x3e, 0, 0, 0xc0]);
    assert.deepEqual(decode(bytes), p);
    assert.throws(() => decode(bytes.subarray(0, 12)), /not a multiple of 8/);
    assert.deepEqual(disassemble(p), ['   0: ld [4]', '   1: jeq #0xc000003e, 2, 3', '   2: ret #0x7fff0000', '   3: ret #0x80000000']);
  });
});

describe('verdicts', () => {
  it('maps each seccomp action', () => {
    const cases: [number, string, number][] = [
      [0x80000000, 'kill_process', 0],
      [0x00000000, 'kill_thread', 0],
      [0x00030007, 'trap', 7],
      [0x00050001, 'errno', 1],
      [0x7fc00000, 'user_notif', 0],
      [0x7ff00009, 'trace', 9],
      [0x7ffc0000, 'log', 0],
      [0x7fff0000, 'allow', 0],
    ];
    for (const [value, action, dataValue] of cases) {
      assert.deepEqual(verdictOf(value), { action, data: dataValue, raw: value }, value.toString(16));
      assert.deepEqual(runFilter(encode(assemble([ret(value)])), data), { action, data: dataValue, raw: value });
    }
  });

  it('follows the kernel on odd values', () => {
    assert.deepEqual(verdictOf(0x00050000 | 5000), { action: 'errno', data: 4095, raw: 0x00050000 | 5000 }, 'errno clamped to MAX_ERRNO');
    assert.equal(verdictOf(0x00010000).action, 'kill_process', 'unknown action: the default case kills');
    assert.equal(verdictOf(0x7ffe0000).action, 'kill_process');
    assert.equal(verdictOf(0x80000001).action, 'kill_process');
    assert.equal(verdictOf(0xffff0000).action, 'kill_process');
    assert.deepEqual(verdictOf(0x7fff1234), { action: 'allow', data: 0, raw: 0x7fff1234 }, 'ALLOW with data is plain ALLOW');
    assert.deepEqual(verdictOf(0x7fffffff), { action: 'allow', data: 0, raw: 0x7fffffff }, 'above ALLOW never beats the initial ALLOW');
  });

  it('ret a returns the accumulator', () => {
    assert.deepEqual(runFilter(assemble([ldImm(0x00050026), retA]), data).data, 38);
  });

  it('rejects malformed input data', () => {
    const p = assemble([ret(0x7fff0000)]);
    assert.throws(() => runFilter(p, { nr: 1.5, arch: 0 }), RangeError);
    assert.throws(() => runFilter(p, { nr: 0, arch: -1 }), RangeError);
    assert.throws(() => runFilter(p, { nr: 0, arch: 0, args: [0n, 0n, 0n, 0n, 0n, 0n, 0n] }), RangeError);
  });
});

// Keep the import list honest: these constants exist and have their kernel values.
it('constants', () => {
  assert.deepEqual(
    [BPF_LD, BPF_LDX, BPF_ST, BPF_STX, BPF_ALU, BPF_JMP, BPF_RET, BPF_MISC, BPF_W, BPF_H, BPF_B, BPF_IMM, BPF_ABS, BPF_IND, BPF_MEM, BPF_LEN, BPF_MSH],
    [0, 1, 2, 3, 4, 5, 6, 7, 0, 8, 0x10, 0, 0x20, 0x40, 0x60, 0x80, 0xa0],
  );
  assert.deepEqual([BPF_K, BPF_X, BPF_A, BPF_TAX, BPF_TXA, BPF_JA], [0, 8, 0x10, 0, 0x80, 0]);
});
