/**
 * What the kernel runs, beside the file an exec names, without any exec call of the sandbox's:
 * the interpreter a script's `#!` line names (fs/binfmt_script.c), and an x86_64 ELF program's
 * PT_INTERP, its dynamic loader (fs/binfmt_elf.c). The supervisor judges both as execs too
 * (worker.ts handleExec): a rule on `/usr/bin/python3` is about python running, whether it is
 * named by the exec or by the `#!` line of the script the exec names.
 *
 * Parsed as the kernel parses them, byte for byte: where the kernel refuses the file (ENOEXEC),
 * the answer is null, since nothing runs. A parser more lenient than the kernel would only judge
 * more; a stricter one would let the kernel run an interpreter nobody judged, so each check here
 * is one the kernel makes, in its order.
 */

/** BINPRM_BUF_SIZE: the kernel reads this much of the file before choosing a binary format. */
export const HEAD_SIZE = 256;

const spacetab = (c: number | undefined): boolean => c === 0x20 || c === 0x09;

/** The first index in [from, to] that is no space or tab, or -1 (binfmt_script's next_non_spacetab). */
function nonSpacetab(buf: Buffer, from: number, to: number): number {
  for (let i = from; i <= to; i++) if (!spacetab(buf[i])) return i;
  return -1;
}

/** The first index in [from, to] that is a space, a tab or a NUL, or -1 (next_terminator). */
function terminator(buf: Buffer, from: number, to: number): number {
  for (let i = from; i <= to; i++) if (spacetab(buf[i]) || buf[i] === 0) return i;
  return -1;
}

/**
 * The interpreter a `#!` line names, as the kernel reads it from `head` (the file's first
 * HEAD_SIZE bytes, zero-padded when the file is shorter), or null when the file is no script or
 * the kernel refuses its line (no name, or a name that may be cut off at HEAD_SIZE).
 * The name is bytes: a `Buffer`, so no decoding changes which file it names.
 */
export function scriptInterpreter(head: Buffer): Buffer | null {
  if (head.length < HEAD_SIZE || head[0] !== 0x23 || head[1] !== 0x21) return null;
  const last = HEAD_SIZE - 1;
  let end = head.subarray(0, HEAD_SIZE).indexOf(0x0a);
  if (end < 0) {
    // No newline: the name must end (space, tab or NUL) inside the buffer, or it may be truncated.
    const first = nonSpacetab(head, 2, last);
    if (first < 0 || terminator(head, first, last) < 0) return null;
    end = last;
  }
  while (spacetab(head[end - 1])) end--;
  const name = nonSpacetab(head, 2, end);
  if (name < 0 || name === end) return null;
  const sep = terminator(head, name, end);
  return head.subarray(name, sep < 0 ? end : sep);
}

const EM_X86_64 = 62;
const PT_INTERP = 3;
const PHDR_SIZE = 56; // sizeof(Elf64_Phdr)
const PAGE_SIZE = 4096; // ELF_MIN_ALIGN: the most program headers the kernel reads
const PATH_MAX = 4096;

/**
 * The dynamic loader an x86_64 ELF program names (its first PT_INTERP), as load_elf_binary reads
 * it, or null when it names none or the kernel refuses the file. `read(len, offset)` gives
 * exactly `len` bytes of the same file, or null (the kernel's elf_read then fails: EIO).
 * Other machines (i386 through the compat loader) are not read: see SECURITY-MODEL.md.
 */
export function elfInterpreter(head: Buffer, read: (len: number, offset: number) => Buffer | null): Buffer | null {
  if (head.length < 64 || head.readUInt32BE(0) !== 0x7f454c46) return null;
  const type = head.readUInt16LE(16);
  if ((type !== 2 && type !== 3) || head.readUInt16LE(18) !== EM_X86_64) return null;
  if (head.readUInt16LE(54) !== PHDR_SIZE) return null;
  const phnum = head.readUInt16LE(56);
  if (phnum === 0 || phnum * PHDR_SIZE > PAGE_SIZE) return null;
  const phoff = head.readBigUInt64LE(32);
  if (phoff > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  const ph = read(phnum * PHDR_SIZE, Number(phoff));
  if (ph === null) return null;
  for (let i = 0; i < phnum; i++) {
    const at = i * PHDR_SIZE;
    if (ph.readUInt32LE(at) !== PT_INTERP) continue;
    const offset = ph.readBigUInt64LE(at + 8);
    const size = ph.readBigUInt64LE(at + 32);
    if (size > BigInt(PATH_MAX) || size < 2n || offset > BigInt(Number.MAX_SAFE_INTEGER)) return null;
    const text = read(Number(size), Number(offset));
    if (text === null || text[text.length - 1] !== 0) return null;
    return text.subarray(0, text.indexOf(0));
  }
  return null;
}
