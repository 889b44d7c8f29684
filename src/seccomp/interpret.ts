/**
 * A classic-BPF interpreter for seccomp filters: the test oracle for the compiler and the engine
 * behind `ward verify`, which runs the filter Ward is about to hand the kernel over every syscall
 * number instead of trusting the compiler.
 *
 * It has to say what the kernel would say, so it follows the kernel's code rather than the BPF
 * man page:
 * - The checker is bpf_check_classic() (net/core/filter.c) followed by seccomp_check_filter()
 *   (kernel/seccomp.c): a program the kernel would refuse is refused here (BpfCheckError), with
 *   the instruction and the reason.
 * - Execution follows bpf_convert_filter(), which turns the classic program into eBPF: A and X
 *   start at 0, arithmetic is 32-bit, a division by X == 0 ends the program returning 0, and a
 *   shift by X uses only the low 5 bits of X (as the x86 JIT and the eBPF interpreter do).
 * - The verdict follows seccomp_run_filters() and __seccomp_filter(), see `verdictOf`.
 */
import {
  MAX_ERRNO,
  SECCOMP_DATA_SIZE,
  SECCOMP_RET_ACTION_FULL,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_DATA,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS,
  SECCOMP_RET_KILL_THREAD,
  SECCOMP_RET_LOG,
  SECCOMP_RET_TRACE,
  SECCOMP_RET_TRAP,
  SECCOMP_RET_USER_NOTIF,
  argOffset,
} from './abi.js';
import {
  BPF_A, BPF_ABS, BPF_ADD, BPF_ALU, BPF_AND, BPF_DIV, BPF_IMM, BPF_JA, BPF_JEQ, BPF_JGE, BPF_JGT,
  BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_LDX, BPF_LEN, BPF_LSH, BPF_MAXINSNS, BPF_MEM, BPF_MEMWORDS,
  BPF_MISC, BPF_MUL, BPF_NEG, BPF_OR, BPF_RET, BPF_RSH, BPF_ST, BPF_STX, BPF_SUB, BPF_TAX, BPF_TXA,
  BPF_W, BPF_X, BPF_XOR, decode, type SockFilter,
} from './bpf.js';

export type SeccompActionName =
  | 'kill_process'
  | 'kill_thread'
  | 'trap'
  | 'errno'
  | 'user_notif'
  | 'trace'
  | 'log'
  | 'allow';

/** What the kernel hands the filter (`struct seccomp_data`). */
export interface SeccompInput {
  /** Syscall number as the caller passed it; -1 and 0xffffffff are the same word. */
  readonly nr: number;
  /** AUDIT_ARCH_* of the calling ABI. */
  readonly arch: number;
  readonly ip?: bigint;
  /** Up to six arguments, each taken modulo 2^64 (so -1n is 0xffff_ffff_ffff_ffffn); missing ones are 0. */
  readonly args?: readonly bigint[];
}

export interface Verdict {
  readonly action: SeccompActionName;
  /** The action's data: the errno for 'errno' (clamped to MAX_ERRNO as the kernel does), the
   *  SIGSYS si_errno for 'trap'/'kill_*', the message for 'trace'; 0 for 'allow'. */
  readonly data: number;
  /** The filter's own 32-bit return value. */
  readonly raw: number;
}

/** The kernel would refuse to load this program (seccomp() / bwrap fail with EINVAL). */
export class BpfCheckError extends Error {
  constructor(
    readonly pc: number | undefined,
    reason: string,
  ) {
    super(pc === undefined ? `invalid seccomp filter: ${reason}` : `invalid seccomp filter at instruction ${pc}: ${reason}`);
    this.name = 'BpfCheckError';
  }
}

/**
 * The instructions seccomp_check_filter() lets through. Classic BPF has more (byte and half-word
 * loads, indirect loads, MOD, LDX MSH, the ancillary loads), but seccomp refuses them all.
 * `ld len`/`ldx len` are allowed and rewritten by the kernel to load the constant 64.
 */
const SECCOMP_CODES: ReadonlySet<number> = new Set([
  BPF_LD | BPF_W | BPF_ABS,
  BPF_LD | BPF_W | BPF_LEN,
  BPF_LDX | BPF_W | BPF_LEN,
  BPF_LD | BPF_IMM,
  BPF_LDX | BPF_IMM,
  BPF_LD | BPF_MEM,
  BPF_LDX | BPF_MEM,
  BPF_ST,
  BPF_STX,
  BPF_RET | BPF_K,
  BPF_RET | BPF_A,
  BPF_MISC | BPF_TAX,
  BPF_MISC | BPF_TXA,
  BPF_ALU | BPF_NEG,
  ...[BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_AND, BPF_OR, BPF_XOR, BPF_LSH, BPF_RSH].flatMap((op) => [
    BPF_ALU | op | BPF_K,
    BPF_ALU | op | BPF_X,
  ]),
  BPF_JMP | BPF_JA,
  ...[BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET].flatMap((op) => [BPF_JMP | op | BPF_K, BPF_JMP | op | BPF_X]),
]);

const hex = (n: number) => `0x${n.toString(16)}`;
const isUint = (n: number, max: number) => Number.isInteger(n) && n >= 0 && n <= max;

/**
 * Checks a program the way the kernel does before accepting it, and returns its instructions.
 * Throws BpfCheckError for anything the kernel would refuse.
 */
export function checkFilter(program: Uint8Array | readonly SockFilter[]): SockFilter[] {
  const insns = program instanceof Uint8Array ? decode(program) : [...program];
  const flen = insns.length;
  if (flen === 0 || flen > BPF_MAXINSNS) {
    throw new BpfCheckError(undefined, `length ${flen} is not in 1..${BPF_MAXINSNS}`);
  }
  insns.forEach((ins, pc) => {
    const { code, k } = ins;
    // Only reachable with hand-built arrays: decoded bytes always fit their fields.
    if (!isUint(code, 0xffff) || !isUint(ins.jt, 0xff) || !isUint(ins.jf, 0xff) || !isUint(k, 0xffffffff)) {
      throw new BpfCheckError(pc, `${JSON.stringify(ins)} does not fit struct sock_filter (u16 code, u8 jt, u8 jf, u32 k)`);
    }
    if (!SECCOMP_CODES.has(code)) {
      throw new BpfCheckError(pc, `opcode ${hex(code)} is not allowed in a seccomp filter`);
    }
    switch (code) {
      case BPF_ALU | BPF_DIV | BPF_K:
        if (k === 0) throw new BpfCheckError(pc, 'division by the constant 0');
        break;
      case BPF_ALU | BPF_LSH | BPF_K:
      case BPF_ALU | BPF_RSH | BPF_K:
        if (k >= 32) throw new BpfCheckError(pc, `shift by ${k} (must be below 32)`);
        break;
      case BPF_LD | BPF_MEM:
      case BPF_LDX | BPF_MEM:
      case BPF_ST:
      case BPF_STX:
        if (k >= BPF_MEMWORDS) throw new BpfCheckError(pc, `scratch memory M[${k}] does not exist (M[0..${BPF_MEMWORDS - 1}])`);
        break;
      case BPF_JMP | BPF_JA:
        // The kernel compares as unsigned: k >= flen - pc - 1.
        if (k >= flen - 1 - pc) throw new BpfCheckError(pc, `ja +${k} jumps past the end`);
        break;
      case BPF_LD | BPF_W | BPF_ABS:
        if (k >= SECCOMP_DATA_SIZE || (k & 3) !== 0) {
          throw new BpfCheckError(pc, `load of offset ${k}: seccomp_data has ${SECCOMP_DATA_SIZE} bytes, read as aligned 32-bit words`);
        }
        break;
      default:
        if ((code & 0x07) === BPF_JMP && (pc + ins.jt + 1 >= flen || pc + ins.jf + 1 >= flen)) {
          throw new BpfCheckError(pc, `conditional jump (+${ins.jt}, +${ins.jf}) lands past the end`);
        }
    }
  });
  const last = insns[flen - 1]!;
  if ((last.code & 0x07) !== BPF_RET) {
    throw new BpfCheckError(flen - 1, 'the last instruction is not a return');
  }
  checkLoadsAfterStores(insns);
  return insns;
}

/**
 * The kernel's check_load_and_stores(): a scratch word may only be read when every path to
 * the read has written it. The kernel tracks this with one pass: a jump target's valid set is
 * the intersection over the jumps into it, and after a jump nothing is known until a target.
 */
function checkLoadsAfterStores(insns: readonly SockFilter[]): void {
  const masks = new Array<number>(insns.length).fill(0xffff);
  let valid = 0;
  insns.forEach((ins, pc) => {
    valid &= masks[pc]!;
    const { code, k } = ins;
    if (code === BPF_ST || code === BPF_STX) {
      valid |= 1 << k;
    } else if (code === (BPF_LD | BPF_MEM) || code === (BPF_LDX | BPF_MEM)) {
      if ((valid & (1 << k)) === 0) throw new BpfCheckError(pc, `M[${k}] is read before it is written`);
    } else if (code === (BPF_JMP | BPF_JA)) {
      masks[pc + 1 + k]! &= valid;
      valid = 0xffff;
    } else if ((code & 0x07) === BPF_JMP) {
      masks[pc + 1 + ins.jt]! &= valid;
      masks[pc + 1 + ins.jf]! &= valid;
      valid = 0xffff;
    }
  });
}

/** The 64 bytes of `struct seccomp_data`, little-endian. */
export function seccompData(input: SeccompInput): Buffer {
  const { nr, arch, ip = 0n, args = [] } = input;
  if (!Number.isInteger(nr) || nr < -0x80000000 || nr > 0xffffffff) throw new RangeError(`nr ${nr} is not a 32-bit integer`);
  if (!Number.isInteger(arch) || arch < 0 || arch > 0xffffffff) throw new RangeError(`arch ${arch} is not a u32`);
  if (args.length > 6) throw new RangeError(`a syscall has at most 6 arguments, got ${args.length}`);
  const buf = Buffer.alloc(SECCOMP_DATA_SIZE);
  buf.writeUInt32LE(nr >>> 0, 0);
  buf.writeUInt32LE(arch, 4);
  buf.writeBigUInt64LE(BigInt.asUintN(64, ip), 8);
  args.forEach((a, i) => buf.writeBigUInt64LE(BigInt.asUintN(64, a), argOffset(i)));
  return buf;
}

/**
 * Runs already-checked instructions and returns the filter's 32-bit return value.
 * Call `checkFilter` first: this relies on its guarantees (every path ends in a return,
 * every jump and load is in range).
 */
export function execute(insns: readonly SockFilter[], data: Buffer): number {
  let a = 0;
  let x = 0;
  const mem = new Uint32Array(BPF_MEMWORDS);
  for (let pc = 0; ; pc++) {
    const ins = insns[pc];
    if (ins === undefined) throw new Error(`BPF ran off the end at ${pc}: check the program with checkFilter first`);
    const { code, k } = ins;
    switch (code & 0x07) {
      case BPF_LD:
        a = load(code, k, data, mem);
        break;
      case BPF_LDX:
        x = load(code, k, data, mem);
        break;
      case BPF_ST:
        mem[k] = a;
        break;
      case BPF_STX:
        mem[k] = x;
        break;
      case BPF_ALU: {
        const v = (code & BPF_X) === BPF_X ? x : k;
        switch (code & 0xf0) {
          case BPF_ADD: a = (a + v) >>> 0; break;
          case BPF_SUB: a = (a - v) >>> 0; break;
          case BPF_MUL: a = Math.imul(a, v) >>> 0; break;
          case BPF_DIV:
            // cBPF semantics kept by bpf_convert_filter: dividing by zero returns 0 at once.
            if (v === 0) return 0;
            a = Math.floor(a / v) >>> 0;
            break;
          case BPF_OR: a = (a | v) >>> 0; break;
          case BPF_AND: a = (a & v) >>> 0; break;
          case BPF_XOR: a = (a ^ v) >>> 0; break;
          // JS shifts use the low 5 bits of the count, like the kernel's 32-bit shifts.
          case BPF_LSH: a = (a << v) >>> 0; break;
          case BPF_RSH: a = a >>> v; break;
          case BPF_NEG: a = (0 - a) >>> 0; break;
          default: throw new Error(`unreachable ALU opcode ${hex(code)} at ${pc}`);
        }
        break;
      }
      case BPF_JMP: {
        if ((code & 0xf0) === BPF_JA) {
          pc += k;
          break;
        }
        const v = (code & BPF_X) === BPF_X ? x : k;
        let taken: boolean;
        switch (code & 0xf0) {
          case BPF_JEQ: taken = a === v; break;
          case BPF_JGT: taken = a > v; break;
          case BPF_JGE: taken = a >= v; break;
          case BPF_JSET: taken = (a & v) !== 0; break;
          default: throw new Error(`unreachable jump opcode ${hex(code)} at ${pc}`);
        }
        pc += taken ? ins.jt : ins.jf;
        break;
      }
      case BPF_RET:
        return ((code & 0x18) === BPF_A ? a : k) >>> 0;
      case BPF_MISC:
        if ((code & 0xf8) === BPF_TXA) a = x;
        else x = a;
        break;
      default:
        throw new Error(`unreachable opcode ${hex(code)} at ${pc}`);
    }
  }
}

function load(code: number, k: number, data: Buffer, mem: Uint32Array): number {
  switch (code & 0xe0) {
    case BPF_ABS: return data.readUInt32LE(k);
    case BPF_IMM: return k >>> 0;
    case BPF_MEM: return mem[k]!;
    case BPF_LEN: return SECCOMP_DATA_SIZE;
    default: throw new Error(`unreachable load opcode ${hex(code)}`);
  }
}

const ACTIONS: ReadonlyMap<number, SeccompActionName> = new Map([
  [SECCOMP_RET_KILL_PROCESS, 'kill_process'],
  [SECCOMP_RET_KILL_THREAD, 'kill_thread'],
  [SECCOMP_RET_TRAP, 'trap'],
  [SECCOMP_RET_ERRNO, 'errno'],
  [SECCOMP_RET_USER_NOTIF, 'user_notif'],
  [SECCOMP_RET_TRACE, 'trace'],
  [SECCOMP_RET_LOG, 'log'],
  [SECCOMP_RET_ALLOW, 'allow'],
]);

/**
 * What the kernel does with a filter's return value when it is the only filter installed.
 * - seccomp_run_filters() starts from ALLOW and keeps a filter's value only if its action,
 *   compared as a signed 32-bit number, is lower. So anything from 0x7fff0000 up to 0x7fffffff
 *   ends up as a plain ALLOW (data 0).
 * - __seccomp_filter() handles the known actions; any other value falls into its default case,
 *   which kills the whole process (only the exact KILL_THREAD value kills just the thread).
 * - An errno above MAX_ERRNO is clamped to it.
 */
export function verdictOf(raw: number): Verdict {
  raw >>>= 0;
  if ((raw & SECCOMP_RET_ACTION_FULL | 0) >= (SECCOMP_RET_ALLOW | 0)) return { action: 'allow', data: 0, raw };
  const action = ACTIONS.get((raw & SECCOMP_RET_ACTION_FULL) >>> 0) ?? 'kill_process';
  const data = raw & SECCOMP_RET_DATA;
  return { action, data: action === 'errno' ? Math.min(data, MAX_ERRNO) : data, raw };
}

/** Checks `program` like the kernel would, runs it on one syscall, and says what the kernel would do. */
export function runFilter(program: Uint8Array | readonly SockFilter[], input: SeccompInput): Verdict {
  return verdictOf(execute(checkFilter(program), seccompData(input)));
}
