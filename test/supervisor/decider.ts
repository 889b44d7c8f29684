/**
 * The decision module the supervisor tests load into the supervisor's thread. A tiny stand-in
 * for the rules engine: deny paths by prefix, and revoke more once a trigger path has been
 * opened (a revocation only takes permissions away, and lasts for the rest of the run).
 */
import type { Decide, SupervisedEvent } from '../../src/supervisor/types.js';

export interface TestRules {
  /** Paths (and everything below them) refused from the start. */
  deny?: string[];
  /** Once a file at this path has been opened... */
  revokeAfter?: string;
  /** ...these paths are refused too... */
  revoke?: string[];
  /** ...and these calls, whatever their arguments (e.g. connect: "revoke network"). */
  revokeCalls?: string[];
  /** Exec of these paths refused. */
  denyExec?: string[];
  /** Throw (a crashing decision function, i.e. a dying supervisor) once this path is opened. */
  throwAfter?: string;
}

const under = (p: string, roots: string[]) => roots.some((r) => p === r || p.startsWith(r.endsWith('/') ? r : r + '/'));

export function createDecider(data: TestRules): Decide {
  let revoked = false;
  return (e: SupervisedEvent) => {
    if (e.path === null || (data.revokeCalls ?? []).includes(e.syscall)) return revoked && (data.revokeCalls ?? []).includes(e.syscall) ? { errno: 13, reason: `${e.syscall} revoked after ${data.revokeAfter}` } : { allow: true };
    if (e.kind === 'exec') return under(e.path, data.denyExec ?? []) ? { errno: 13, reason: 'exec refused by the test rules' } : { allow: true };
    if (e.path === data.throwAfter) throw new Error('the test decider crashes on purpose');
    if (under(e.path, data.deny ?? [])) return { errno: 13, reason: 'denied by the test rules' };
    if (revoked && under(e.path, data.revoke ?? [])) return { errno: 1, reason: `revoked after ${data.revokeAfter}` };
    if (data.revokeAfter && e.path === data.revokeAfter) revoked = true;
    return { allow: true };
  };
}
