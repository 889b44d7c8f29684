/**
 * A run's egress directory (its broker socket, resolv.conf, CA bundle) and the sweep of those a
 * killed Ward left behind.
 */
import { closeSync, constants as fsConstants, lstatSync, mkdtempSync, openSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { WardError } from '../errors.js';
import { ensureWardDirs, stateDir } from '../paths.js';
import { pidAlive } from '../pids.js';
import type { Plan } from '../plan/compile.js';
import { visibleInSandbox } from '../plan/visible.js';

/**
 * Where a run's egress directory goes: Ward's state directory, which every policy's mandatory
 * denies hide, never a shared temporary directory that a grant (of /tmp, say) would show the
 * sandbox. The broker obeys only the relay (its key), so a sandbox reaching a socket is not let
 * out; hidden, it cannot reach one at all, not even to hold the broker's slots for connections
 * yet to say who they are. Checked against the plan too: a plan compiled with another
 * environment than `env` may not hide this one.
 */
export function runDirParent(plan: Plan, env: NodeJS.ProcessEnv): string {
  const state = stateDir(env);
  const run = path.join(state, 'run');
  ensureWardDirs([state, run]);
  const parent = realpathSync(run);
  if (visibleInSandbox(plan.mounts.ops, parent)) {
    throw new WardError(`the egress run directory ${parent} is inside a path this policy lets the sandbox see: the sandbox could reach the broker's socket`, {
      step: 'egress',
      fix: 'compile the policy with the environment (HOME, XDG_STATE_HOME) the run is given, or point XDG_STATE_HOME outside every granted path',
    });
  }
  if (!swept.has(parent)) {
    swept.add(parent);
    void sweepRunDirs(parent);
  }
  return parent;
}

/** A new run directory in `parent`, named after this process so that a later Ward can tell whether its owner is gone. */
export function makeRunDir(parent: string): string {
  return mkdtempSync(path.join(parent, `net-${process.pid}-`));
}

/** Parents already swept by this process: what a killed Ward leaves does not grow while this one runs. */
const swept = new Set<string>();

/**
 * Removes the run directories of Wards that died without cleaning up (SIGKILL, a crash): a dead
 * socket, a resolv.conf and maybe a run's CA bundle (public), each small, but one per killed run
 * for ever otherwise. A directory goes only when both say its run is over: the pid in its name is
 * gone, and its socket has no listener. The second check is for a Ward in another pid namespace
 * sharing this state directory, whose pid means nothing here; it runs only for dead pids, so a
 * live run's broker is never knocked on. Returns the names removed.
 */
export async function sweepRunDirs(parent: string): Promise<string[]> {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = /^net-(?:(\d+)-)?[A-Za-z0-9]{6}$/.exec(name);
    if (!m) continue;
    if (m[1] !== undefined && (Number(m[1]) === process.pid || pidAlive(Number(m[1])))) continue;
    const dir = path.join(parent, name);
    try {
      const st = lstatSync(dir);
      if (!st.isDirectory() || st.uid !== process.getuid?.()) continue;
    } catch {
      continue;
    }
    if (await listening(dir)) continue;
    try {
      rmSync(dir, { recursive: true, force: true });
      removed.push(name);
    } catch {
      /* another Ward swept it first, or it is not ours to remove: left */
    }
  }
  return removed;
}

/**
 * Whether the run directory's socket has a listener, reached through the open directory as the
 * broker binds it (a unix socket's path holds 107 bytes; the state directory may lie deeper).
 * Anything but "refused" or "no socket" counts as listening, which keeps the directory.
 */
function listening(dir: string): Promise<boolean> {
  let fd: number;
  try {
    fd = openSync(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY | fsConstants.O_NOFOLLOW);
  } catch {
    return Promise.resolve(true);
  }
  return new Promise<boolean>((resolve) => {
    const s = connect(`/proc/self/fd/${fd}/egress.sock`);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code !== 'ECONNREFUSED' && e.code !== 'ENOENT'));
  }).finally(() => closeSync(fd));
}
