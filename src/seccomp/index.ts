/**
 * Ward's seccomp filter: rules as data (./rules/, one file per syscall family), syscall tables
 * per ABI (./arch/), a compiler to classic BPF for `bwrap --seccomp FD`, and an interpreter that
 * says what the kernel will do with the compiled program.
 */
export { compileSeccomp, compileRules, builtinRules, syscallNumber, ABIS, type SeccompOptions, type CompiledSeccomp } from './compile.js';
export {
  runFilter,
  checkFilter,
  execute,
  verdictOf,
  seccompData,
  BpfCheckError,
  type SeccompActionName,
  type SeccompInput,
  type Verdict,
} from './interpret.js';
export { encode, decode, disassemble, assemble, type SockFilter, type AsmItem } from './bpf.js';
export { ruleMatches, DENY_EPERM, DENY_ENOSYS, type SeccompRule, type RuleAction, type ArgTest, type ArgIndex } from './rule.js';
export { SECCOMP_RULES, RULE_FAMILIES } from './rules/index.js';
export { FILE_SIZE_RULES } from './rules/file-size.js';
export { THREAD_FILES_RULES } from './rules/thread-files.js';
export { X86_64_SYSCALLS } from './arch/x86_64.js';
export { I386_SYSCALLS } from './arch/i386.js';
export {
  AUDIT_ARCH_X86_64,
  AUDIT_ARCH_I386,
  X32_SYSCALL_BIT,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS,
  SECCOMP_RET_KILL_THREAD,
  SECCOMP_RET_TRAP,
  SECCOMP_RET_USER_NOTIF,
  SECCOMP_RET_TRACE,
  SECCOMP_RET_LOG,
  EPERM,
  ENOSYS,
} from './abi.js';
