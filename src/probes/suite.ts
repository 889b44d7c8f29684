/**
 * The escape probe suite: every probe, in group order, and the way to pick some.
 * One file per group under groups/; the runner is run.ts, the public face index.ts.
 */
import { WardError } from '../errors.js';
import { probes as egress } from './groups/egress.js';
import { probes as filesystem } from './groups/filesystem.js';
import { probes as network } from './groups/network.js';
import { probes as positive } from './groups/positive.js';
import { probes as privileges } from './groups/privileges.js';
import { probes as processes } from './groups/processes.js';
import { probes as resources } from './groups/resources.js';
import { probes as secrets } from './groups/secrets.js';
import { probes as supervised } from './groups/supervised.js';
import { probes as terminal } from './groups/terminal.js';
import { PROBE_GROUPS, type Probe } from './types.js';

export const ALL_PROBES: readonly Probe[] = Object.freeze([...filesystem, ...processes, ...privileges, ...terminal, ...network, ...egress, ...resources, ...secrets, ...supervised, ...positive]);

/**
 * The probes named by `only` (group names and probe ids, e.g. ["network",
 * "fs.read-ssh-key"]), in suite order; all of them when `only` is empty.
 */
export function selectProbes(only: readonly string[] | undefined, from: readonly Probe[] = ALL_PROBES): Probe[] {
  if (!only || only.length === 0) return [...from];
  const unknown = only.filter((o) => !(PROBE_GROUPS as readonly string[]).includes(o) && !from.some((p) => p.id === o));
  if (unknown.length > 0) {
    throw new WardError(`unknown probe group or id: ${unknown.join(', ')}`, {
      fix: `use a group (${PROBE_GROUPS.join(', ')}) or a probe id such as ${from[0]?.id ?? 'fs.read-ssh-key'}; \`ward probe --json\` lists every id`,
    });
  }
  return from.filter((p) => only.includes(p.group) || only.includes(p.id));
}
