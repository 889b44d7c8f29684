/**
 * Classic BPF, the instruction set seccomp filters are written in, and a small assembler.
 *
 * An instruction is `struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }` (8 bytes, native
 * byte order, which is little-endian on x86). `code` = class | size/op | mode/source. Jumps only
 * go forward, by `jt`/`jf` (0-255) for conditionals or by `k` for `ja`, so every program ends.
 *
 * The assembler takes plain data (instructions whose jump targets are label names) and
 * resolves the labels. A conditional jump whose target is more than 255 instructions away is
 * rewritten to jump over an unconditional `ja` that reaches it ("trampoline"), so callers never
 * think about distances. Values from include/uapi/linux/bpf_common.h and filter.h.
 */

// Instruction classes (code & 0x07).
export const BPF_LD = 0x00;
export const BPF_LDX = 0x01;
export const BPF_ST = 0x02;
export const BPF_STX = 0x03;
export const BPF_ALU = 0x04;
export const BPF_JMP = 0x05;
export const BPF_RET = 0x06;
export const BPF_MISC = 0x07;

// Load size (code & 0x18).
export const BPF_W = 0x00;
export const BPF_H = 0x08;
export const BPF_B = 0x10;

// Load mode (code & 0xe0).
export const BPF_IMM = 0x00;
export const BPF_ABS = 0x20;
export const BPF_IND = 0x40;
export const BPF_MEM = 0x60;
export const BPF_LEN = 0x80;
export const BPF_MSH = 0xa0;

// ALU and jump operations (code & 0xf0).
export const BPF_ADD = 0x00;
export const BPF_SUB = 0x10;
export const BPF_MUL = 0x20;
export const BPF_DIV = 0x30;
export const BPF_OR = 0x40;
export const BPF_AND = 0x50;
export const BPF_LSH = 0x60;
export const BPF_RSH = 0x70;
export const BPF_NEG = 0x80;
export const BPF_MOD = 0x90;
export const BPF_XOR = 0xa0;

export const BPF_JA = 0x00;
export const BPF_JEQ = 0x10;
export const BPF_JGT = 0x20;
export const BPF_JGE = 0x30;
export const BPF_JSET = 0x40;

// Operand source (code & 0x08): the constant k or the X register.
export const BPF_K = 0x00;
export const BPF_X = 0x08;
// RET source (code & 0x18): k or the A register.
export const BPF_A = 0x10;

// MISC operations (code & 0xf8).
export const BPF_TAX = 0x00;
export const BPF_TXA = 0x80;

/** Scratch memory words M[0..15]. */
export const BPF_MEMWORDS = 16;
/** The kernel refuses longer programs. */
export const BPF_MAXINSNS = 4096;
/** Size of one encoded instruction. */
export const SOCK_FILTER_SIZE = 8;

/** One instruction, as the kernel sees it. */
export interface SockFilter {
  readonly code: number;
  readonly jt: number;
  readonly jf: number;
  readonly k: number;
}

/** A jump target: a label name, or `null` for "the next instruction" (fall through). */
export type Target = string | null;

/** Assembler input: plain data. */
export type AsmItem =
  /** An instruction that does not jump. */
  | { readonly kind: 'insn'; readonly code: number; readonly k: number }
  /** A conditional jump (JEQ/JGT/JGE/JSET with K or X). */
  | { readonly kind: 'jump'; readonly code: number; readonly k: number; readonly jt: Target; readonly jf: Target }
  /** An unconditional jump. */
  | { readonly kind: 'ja'; readonly target: string }
  /** Marks the address of the next instruction. */
  | { readonly kind: 'label'; readonly name: string };

// Item constructors, named after the usual BPF mnemonics.
export const insn = (code: number, k = 0): AsmItem => ({ kind: 'insn', code, k });
export const label = (name: string): AsmItem => ({ kind: 'label', name });
export const ja = (target: string): AsmItem => ({ kind: 'ja', target });
export const ldAbs = (offset: number): AsmItem => insn(BPF_LD | BPF_W | BPF_ABS, offset);
export const ret = (k: number): AsmItem => insn(BPF_RET | BPF_K, k);
export const jeq = (k: number, jt: Target, jf: Target): AsmItem => jump(BPF_JEQ, k, jt, jf);
export const jgt = (k: number, jt: Target, jf: Target): AsmItem => jump(BPF_JGT, k, jt, jf);
export const jge = (k: number, jt: Target, jf: Target): AsmItem => jump(BPF_JGE, k, jt, jf);
export const jset = (k: number, jt: Target, jf: Target): AsmItem => jump(BPF_JSET, k, jt, jf);
/** A conditional jump; `op` is BPF_JEQ/JGT/JGE/JSET, optionally | BPF_X to compare with X. */
export function jump(op: number, k: number, jt: Target, jf: Target): AsmItem {
  return { kind: 'jump', code: BPF_JMP | op, k, jt, jf };
}

/** How far a conditional jump can reach with its u8 offsets. */
const MAX_SHORT = 255;

/** Which targets of a conditional jump go through a trampoline `ja`. */
interface Far {
  jt: boolean;
  jf: boolean;
}

/**
 * Resolves labels and returns the instructions. Throws on an undefined or duplicate label, a
 * backward jump, a constant that does not fit in u32, or a program longer than BPF_MAXINSNS.
 *
 * Distances are settled by iteration: start with every conditional jump short; any whose
 * target is out of reach gets a trampoline, which moves later code, so measure again. Jumps
 * only ever grow, so this ends (in practice after one or two rounds).
 */
export function assemble(items: readonly AsmItem[]): SockFilter[] {
  const far = new Map<number, Far>();
  const sizeOf = (item: AsmItem, i: number): number => {
    if (item.kind === 'label') return 0;
    if (item.kind !== 'jump') return 1;
    const f = far.get(i);
    return 1 + (f?.jt ? 1 : 0) + (f?.jf ? 1 : 0);
  };

  for (const item of items) {
    if (item.kind !== 'label' && item.kind !== 'ja') checkU32(item.k, item);
  }

  for (;;) {
    const { addr, labels } = layout(items, sizeOf);
    let grew = false;
    items.forEach((item, i) => {
      if (item.kind !== 'jump') return;
      const pc = addr[i]!;
      const next = pc + sizeOf(item, i);
      const f = far.get(i) ?? { jt: false, jf: false };
      // The short offsets are measured from the instruction after the conditional jump itself.
      const distance = (t: Target): number => resolve(t, labels, next, pc) - (pc + 1);
      const jtFar = f.jt || distance(item.jt) > MAX_SHORT;
      const jfFar = f.jf || distance(item.jf) > MAX_SHORT;
      if (jtFar !== f.jt || jfFar !== f.jf) {
        far.set(i, { jt: jtFar, jf: jfFar });
        grew = true;
      }
    });
    if (grew) continue;

    const out: SockFilter[] = [];
    items.forEach((item, i) => {
      const pc = addr[i]!;
      switch (item.kind) {
        case 'label':
          return;
        case 'insn':
          out.push({ code: item.code, jt: 0, jf: 0, k: item.k >>> 0 });
          return;
        case 'ja':
          out.push({ code: BPF_JMP | BPF_JA, jt: 0, jf: 0, k: resolve(item.target, labels, pc + 1, pc) - (pc + 1) });
          return;
        case 'jump': {
          const next = pc + sizeOf(item, i);
          const t = resolve(item.jt, labels, next, pc);
          const f = resolve(item.jf, labels, next, pc);
          const { jt: jtFar, jf: jfFar } = far.get(i) ?? { jt: false, jf: false };
          // Layout: [cond] [ja T if jt is far] [ja F if jf is far].
          const jaT = pc + 1;
          const jaF = pc + 1 + (jtFar ? 1 : 0);
          const jt = jtFar ? 0 : t - (pc + 1);
          const jf = jfFar ? jaF - (pc + 1) : f - (pc + 1);
          out.push({ code: item.code, jt, jf, k: item.k >>> 0 });
          if (jtFar) out.push({ code: BPF_JMP | BPF_JA, jt: 0, jf: 0, k: t - (jaT + 1) });
          if (jfFar) out.push({ code: BPF_JMP | BPF_JA, jt: 0, jf: 0, k: f - (jaF + 1) });
          return;
        }
      }
    });
    // A label placed after the last instruction resolves, but a jump there would run off the end.
    out.forEach((ins, pc) => {
      if ((ins.code & 0x07) !== BPF_JMP) return;
      const last = (ins.code & 0xf0) === BPF_JA ? pc + 1 + ins.k : pc + 1 + Math.max(ins.jt, ins.jf);
      if (last >= out.length) throw new Error(`BPF jump at ${pc} lands past the end of the program`);
    });
    if (out.length > BPF_MAXINSNS) {
      throw new Error(`BPF program has ${out.length} instructions; the kernel accepts at most ${BPF_MAXINSNS}`);
    }
    return out;
  }
}

function layout(
  items: readonly AsmItem[],
  sizeOf: (item: AsmItem, i: number) => number,
): { addr: number[]; labels: Map<string, number> } {
  const addr: number[] = [];
  const labels = new Map<string, number>();
  let pc = 0;
  items.forEach((item, i) => {
    addr.push(pc);
    if (item.kind === 'label') {
      if (labels.has(item.name)) throw new Error(`BPF label "${item.name}" is defined twice`);
      labels.set(item.name, pc);
    }
    pc += sizeOf(item, i);
  });
  return { addr, labels };
}

/** The address a target names. `next` is where `null` (fall through) goes. */
function resolve(target: Target, labels: Map<string, number>, next: number, from: number): number {
  if (target === null) return next;
  const at = labels.get(target);
  if (at === undefined) throw new Error(`BPF label "${target}" is never defined`);
  if (at <= from) {
    throw new Error(`BPF jump to "${target}" goes backwards (from ${from} to ${at}); classic BPF only jumps forward`);
  }
  return at;
}

function checkU32(k: number, item: AsmItem): void {
  if (!Number.isInteger(k) || k < 0 || k > 0xffffffff) {
    throw new Error(`BPF constant ${k} does not fit in u32 (in ${JSON.stringify(item)})`);
  }
}

/** The bytes the kernel (and `bwrap --seccomp FD`) read: 8 little-endian bytes per instruction. */
export function encode(program: readonly SockFilter[]): Buffer {
  const buf = Buffer.alloc(program.length * SOCK_FILTER_SIZE);
  program.forEach((ins, i) => {
    const o = i * SOCK_FILTER_SIZE;
    buf.writeUInt16LE(ins.code, o);
    buf.writeUInt8(ins.jt, o + 2);
    buf.writeUInt8(ins.jf, o + 3);
    buf.writeUInt32LE(ins.k >>> 0, o + 4);
  });
  return buf;
}

/** The inverse of `encode`. Throws if the length is not a whole number of instructions. */
export function decode(bytes: Uint8Array): SockFilter[] {
  if (bytes.length % SOCK_FILTER_SIZE !== 0) {
    throw new Error(`BPF program is ${bytes.length} bytes, not a multiple of ${SOCK_FILTER_SIZE}`);
  }
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const out: SockFilter[] = [];
  for (let o = 0; o < buf.length; o += SOCK_FILTER_SIZE) {
    out.push({ code: buf.readUInt16LE(o), jt: buf.readUInt8(o + 2), jf: buf.readUInt8(o + 3), k: buf.readUInt32LE(o + 4) });
  }
  return out;
}

const ALU_NAMES: Record<number, string> = {
  [BPF_ADD]: 'add', [BPF_SUB]: 'sub', [BPF_MUL]: 'mul', [BPF_DIV]: 'div', [BPF_OR]: 'or',
  [BPF_AND]: 'and', [BPF_LSH]: 'lsh', [BPF_RSH]: 'rsh', [BPF_NEG]: 'neg', [BPF_MOD]: 'mod', [BPF_XOR]: 'xor',
};
const JMP_NAMES: Record<number, string> = { [BPF_JA]: 'ja', [BPF_JEQ]: 'jeq', [BPF_JGT]: 'jgt', [BPF_JGE]: 'jge', [BPF_JSET]: 'jset' };

/** One line per instruction, in the style of `bpf_dbg`/`seccomp-tools`, with absolute jump targets. */
export function disassemble(program: readonly SockFilter[]): string[] {
  const hex = (n: number) => `0x${n.toString(16)}`;
  return program.map((ins, pc) => {
    const { code, jt, jf, k } = ins;
    const src = (code & BPF_X) === BPF_X ? 'x' : `#${hex(k)}`;
    let text: string;
    switch (code & 0x07) {
      case BPF_LD:
      case BPF_LDX: {
        const reg = (code & 0x07) === BPF_LD ? 'ld' : 'ldx';
        const mode = code & 0xe0;
        text =
          mode === BPF_ABS ? `${reg} [${k}]` :
          mode === BPF_IMM ? `${reg} #${hex(k)}` :
          mode === BPF_MEM ? `${reg} M[${k}]` :
          mode === BPF_LEN ? `${reg} len` : `${reg} ?${hex(code)}`;
        break;
      }
      case BPF_ST: text = `st M[${k}]`; break;
      case BPF_STX: text = `stx M[${k}]`; break;
      case BPF_ALU: {
        const op = ALU_NAMES[code & 0xf0] ?? `alu?${hex(code)}`;
        text = (code & 0xf0) === BPF_NEG ? op : `${op} ${src}`;
        break;
      }
      case BPF_JMP: {
        const op = JMP_NAMES[code & 0xf0] ?? `jmp?${hex(code)}`;
        text = (code & 0xf0) === BPF_JA ? `ja ${pc + 1 + k}` : `${op} ${src}, ${pc + 1 + jt}, ${pc + 1 + jf}`;
        break;
      }
      case BPF_RET: text = (code & 0x18) === BPF_A ? 'ret a' : `ret #${hex(k)}`; break;
      default: text = (code & 0xf8) === BPF_TXA ? 'txa' : 'tax';
    }
    return `${String(pc).padStart(4)}: ${text}`;
  });
}
