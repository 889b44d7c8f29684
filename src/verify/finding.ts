/**
 * A verification finding: one concrete place where the compiled sandbox does something other
 * than what the policy says. Always a counterexample (a syscall with its arguments, or a path),
 * never a summary, so a reviewer can reproduce it.
 */
export interface Finding {
  /** The enforcement layer whose artefact disagrees with the policy. */
  layer: 'seccomp' | 'mounts' | 'landlock' | 'supervisor';
  /** The counterexample: `x86_64 openat (257) args[3]=0x800`, a path, or a rule and the syscall it misses. */
  subject: string;
  /** What the policy says should happen. */
  expected: string;
  /** What the compiled artefact does. */
  actual: string;
}
