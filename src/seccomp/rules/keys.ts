/**
 * The kernel keyring. Keyrings are not namespaced: a sandboxed process running as the user can
 * reach the user's keyring and whatever the host stored there (Kerberos tickets, fscrypt and
 * ecryptfs keys, NFS/CIFS credentials), and the code has had its share of use-after-frees.
 * Docker's default profile blocks the same three calls for the same reason.
 */
import { DENY_EPERM, type SeccompRule } from '../rule.js';

export const rules: readonly SeccompRule[] = [
  { syscall: 'keyctl', action: DENY_EPERM, why: 'Reads, links and manipulates keys in the (un-namespaced) user and session keyrings.' },
  { syscall: 'add_key', action: DENY_EPERM, why: 'Adds keys to a keyring shared with the host user.' },
  { syscall: 'request_key', action: DENY_EPERM, why: 'Looks up keys, and can make the kernel run a helper program outside the sandbox (request-key upcall).' },
];
