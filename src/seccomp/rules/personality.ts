/**
 * Execution domains. personality() flags weaken the process and everything it execs:
 * ADDR_NO_RANDOMIZE turns off ASLR, READ_IMPLIES_EXEC makes readable memory executable,
 * MMAP_PAGE_ZERO maps page 0 (NULL-dereference exploits), ADDR_COMPAT_LAYOUT changes the
 * address-space layout. Programs commonly query the current value (0xffffffff) and some set
 * PER_LINUX (0) explicitly; both stay allowed. The argument is an `unsigned int`, so only its
 * low 32 bits count. Costs: `setarch -R` and `linux32` do not work inside the sandbox.
 */
import { DENY_EPERM, type SeccompRule } from '../rule.js';

export const PER_LINUX = 0;
export const PERSONALITY_QUERY = 0xffffffff;

export const rules: readonly SeccompRule[] = [
  {
    syscall: 'personality',
    action: DENY_EPERM,
    when: { arg: 0, notIn32: [PER_LINUX, PERSONALITY_QUERY] },
    why: 'Personality flags disable ASLR, make data executable or map page zero; only PER_LINUX and the query are allowed.',
  },
];
