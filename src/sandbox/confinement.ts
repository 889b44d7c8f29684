/**
 * What must be in force inside every sandbox, and the check of the launcher's report against it.
 * bwrap builds the namespaces, drops the capabilities, sets no_new_privs and loads the seccomp
 * filter; it is a separate program, and one that skipped a step would still run the launcher.
 * So the launcher checks from inside before it execs the command (ward-launch.c, step
 * "confinement"), and Ward checks the report again when it arrives: a launcher whose
 * requirements were stripped from its argv cannot then hide that a layer is missing.
 */
import { readFileSync, statSync } from 'node:fs';
import type { Confinement, InnerReport, LandlockMode } from '../launcher/launcher.js';
import { NAMESPACE_FLAGS } from './bwrap.js';

/** /proc/self/ns names of the namespaces bwrap makes (NAMESPACE_FLAGS, plus the mount namespace). */
export const SANDBOX_NAMESPACES: readonly string[] = [...NAMESPACE_FLAGS.map((f) => f.replace('--unshare-', '')), 'mnt'];

const CAP_SETS = ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'] as const;

let host: { filters: number; namespaces: Record<string, number> } | null = null;

/** Ward's own seccomp filters (a container's are inherited by every sandbox) and namespaces: fixed for the process. */
function hostState(): { filters: number; namespaces: Record<string, number> } {
  if (host) return host;
  const status = readFileSync('/proc/self/status', 'utf8');
  const filters = Number(/^Seccomp_filters:\s*(\d+)$/m.exec(status)?.[1] ?? 0);
  const namespaces: Record<string, number> = {};
  for (const ns of SANDBOX_NAMESPACES) namespaces[ns] = statSync(`/proc/self/ns/${ns}`).ino;
  host = { filters, namespaces };
  return host;
}

/** The requirement for a sandbox of this process: its filters plus bwrap's (and the supervisor's). */
export function sandboxConfinement(supervised: boolean): Confinement {
  const h = hostState();
  return { seccompFilters: h.filters + 1 + (supervised ? 1 : 0), unprivileged: true, namespaces: h.namespaces };
}

/** What the launcher's report shows missing from `want` and the Landlock mode asked for, or null. */
export function confinementProblem(report: InnerReport, want: Confinement, landlockMode: LandlockMode): string | null {
  const ps = report.proc_status;
  if (ps === null) return '/proc/self/status could not be read inside';
  if (ps['Seccomp'] !== '2') return `Seccomp is ${ps['Seccomp'] ?? 'absent'}, not 2: no seccomp filter is in force`;
  const filters = ps['Seccomp_filters'];
  if (filters !== undefined && !(Number(filters) >= want.seccompFilters)) return `Seccomp_filters is ${filters}, fewer than the ${want.seccompFilters} Ward installs`;
  if (ps['NoNewPrivs'] !== '1') return `NoNewPrivs is ${ps['NoNewPrivs'] ?? 'absent'}, not 1`;
  for (const set of CAP_SETS) {
    if (!/^0+$/.test(ps[set] ?? '')) return `${set} is ${ps[set] ?? 'absent'}: the sandbox holds capabilities`;
  }
  const ll = report.landlock;
  if (ll.mode !== landlockMode) return `Landlock mode is ${ll.mode}, not the ${landlockMode} asked for`;
  const expected = landlockMode === 'off' ? ['off'] : landlockMode === 'required' ? ['applied'] : ['applied', 'unavailable'];
  if (!expected.includes(ll.status)) return `Landlock is ${ll.status} in mode ${landlockMode}`;
  return null;
}
