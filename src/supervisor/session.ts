/**
 * Agent sessions: dynamic rules whose state spans several commands (ClawLess's trust scopes).
 * Ward (the monitor) holds the rules; an agent session holds what has happened so far; each
 * sandbox starts from its session's state and can only add to it. So a command never holds
 * more than its session, and a session never more than the policy: after `read secrets/**`
 * in one command, `revoke: network` holds for every later command of the session too, and the
 * two halves of a two-event rule may happen in two commands.
 *
 * The state is the shared rule cells of ./rules-state.ts (each cell only ever goes from 0 to
 * 1), kept in Ward's state directory, which no sandbox can see (a mandatory deny), as
 * `$XDG_STATE_HOME/ward/sessions/NAME.json`. Saving merges with what is on disk (a cell set
 * by any command stays set) under a lock, so commands of one session may run one after
 * another or side by side. Side by side, a revocation reaches the other running commands
 * through watchSession: the command that fired it saves the session at once, and every other
 * running command of the session watches the file and merges its set cells into its own shared
 * cells, which its supervisor and broker read on every decision. Bound: within
 * SESSION_POLL_MS (50 ms) of that save, plus the watcher's event-loop latency; usually a few ms
 * (inotify). Until then the other command is not yet revoked (see SECURITY-MODEL.md).
 *
 * A session is bound to its rules: a command whose policy has other rules cannot join it
 * (refused with the fix), since cells only mean something for the rules they were set by.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, watch, writeSync, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { acquireLock } from '../audit/lock.js';
import { WardError } from '../errors.js';
import { stateDir } from '../paths.js';
import { canonicalJson, sha256Hex } from '../policy/canonical.js';
import type { Rule } from '../rules/index.js';

const FORMAT = 1;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface SessionFile {
  format: number;
  name: string;
  /** SHA-256 of the rules' canonical JSON: the rules this state belongs to. */
  rules_sha256: string;
  /** The rule cells (./rules-state.ts layout), 0 or 1. */
  cells: number[];
  updated: string;
}

export interface Session {
  name: string;
  file: string;
  /** The cells as the session had them when this command joined it. */
  initial: number[];
}

export function rulesSha256(rules: readonly Rule[]): string {
  return sha256Hex(canonicalJson(rules));
}

/** Where session NAME lives, after checking the name (it becomes a file name). */
export function sessionPath(name: string, env: NodeJS.ProcessEnv): string {
  if (!NAME.test(name)) {
    throw new WardError(`the session name '${name}' is not valid`, {
      step: 'session',
      fix: 'use 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit (e.g. --session agent-1)',
    });
  }
  return path.join(stateDir(env), 'sessions', `${name}.json`);
}

function read(file: string, name: string): SessionFile | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new WardError(`cannot read session '${name}' (${file}): ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { step: 'session' });
  }
  let s: SessionFile;
  try {
    s = JSON.parse(text) as SessionFile;
  } catch {
    s = {} as SessionFile;
  }
  if (s.format !== FORMAT || s.name !== name || typeof s.rules_sha256 !== 'string' || !Array.isArray(s.cells) || !s.cells.every((c) => c === 0 || c === 1)) {
    // Fail closed: a session whose state cannot be read might have held revocations.
    throw new WardError(`session '${name}' has a state file Ward cannot read (${file})`, {
      step: 'session',
      fix: `start a new session (another --session name); delete ${file} only if you know no revocation in it must hold`,
    });
  }
  return s;
}

/** Joins session `name` for a command with these rules; `cells` is the command's (fresh, all 0) rule state, seeded here. */
export function joinSession(name: string, env: NodeJS.ProcessEnv, rules: readonly Rule[], cells: Int32Array): Session {
  const file = sessionPath(name, env);
  const s = read(file, name);
  if (s && s.rules_sha256 !== rulesSha256(rules)) {
    throw new WardError(`session '${name}' was started with other dynamic rules than this policy's`, {
      step: 'session',
      fix: 'run every command of a session with the same rules, or start a new session for these (another --session name)',
    });
  }
  if (s && s.cells.length !== cells.length) throw new WardError(`session '${name}' has a state of the wrong size (${file})`, { step: 'session' });
  const initial = s ? [...s.cells] : Array.from(cells, () => 0);
  initial.forEach((v, i) => {
    if (v === 1) Atomics.store(cells, i, 1);
  });
  return { name, file, initial };
}

/** Adds this command's state to the session's (a set cell stays set), atomically, under a lock. */
export function saveSession(session: Session, rules: readonly Rule[], cells: Int32Array): void {
  const dir = path.dirname(session.file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const lock = acquireLock(`${session.file}.lock`);
  try {
    const onDisk = read(session.file, session.name);
    const merged = Array.from(cells, (v, i) => (v === 1 || onDisk?.cells[i] === 1 ? 1 : 0));
    const out: SessionFile = { format: FORMAT, name: session.name, rules_sha256: rulesSha256(rules), cells: merged, updated: new Date().toISOString() };
    const tmp = `${session.file}.tmp-${randomBytes(4).toString('hex')}`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(out)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, session.file);
  } finally {
    lock.release();
  }
}

/** The longest a running command waits to look at its session's file again (a timer, beside inotify). */
export const SESSION_POLL_MS = 50;

/**
 * Keeps a running command's rule cells up to date with its session: whenever another command of
 * the session saves a cell (a seen event, a fired rule), it is set here too (cells only go from
 * 0 to 1, so a merge can only take permissions away). `onFired` gets the rules that fired
 * elsewhere and reach this command by the merge (each once: the fired cell is claimed with
 * compareExchange, as applyShared does). Returns the function that stops watching.
 *
 * A state file that cannot be read mid-run is skipped here and looked at again on the next
 * tick; the command's own save at its end reads it under the lock and fails loudly then.
 */
export function watchSession(session: Session, rules: readonly Rule[], cells: Int32Array, onFired: (rules: number[]) => void): () => void {
  const sha = rulesSha256(rules);
  const base = rules.reduce((n, r) => n + r.after.length, 0);
  let stopped = false;
  const merge = () => {
    if (stopped) return;
    let s: SessionFile | null;
    try {
      s = read(session.file, session.name);
    } catch {
      return;
    }
    if (s && (s.rules_sha256 !== sha || s.cells.length !== cells.length)) return;
    const fired: number[] = [];
    s?.cells.forEach((v, i) => {
      if (v !== 1) return;
      if (i >= base) {
        if (Atomics.compareExchange(cells, i, 0, 1) === 0) fired.push(i - base);
      } else Atomics.store(cells, i, 1);
    });
    // A rule whose events happened in two running commands (one each) is complete only here.
    let k = 0;
    rules.forEach((r, i) => {
      const all = r.after.every((_, j) => Atomics.load(cells, k + j) === 1);
      const split = r.after.some((_, j) => s?.cells[k + j] === 1) && r.after.some((_, j) => s?.cells[k + j] !== 1);
      k += r.after.length;
      if (all && split && Atomics.compareExchange(cells, base + i, 0, 1) === 0) fired.push(i);
    });
    if (fired.length > 0) onFired(fired);
    // What this command has seen and the file lacks (a rule's first half) goes out now, not only
    // at the end, so a command running beside it can complete the rule. (A fired rule is saved
    // by launch at once.) A failed save here is retried next tick; the final save reports it.
    if (Array.from(cells).some((v, i) => v === 1 && s?.cells[i] !== 1)) {
      try {
        saveSession(session, rules, cells);
      } catch {
        /* next tick */
      }
    }
  };
  let watcher: FSWatcher | null = null;
  try {
    mkdirSync(path.dirname(session.file), { recursive: true, mode: 0o700 });
    // The directory, not the file: a save replaces the file (rename), which a watch on it would miss.
    watcher = watch(path.dirname(session.file), { persistent: false }, (_event, name) => {
      if (name === null || name === path.basename(session.file)) merge();
    });
    watcher.on('error', () => {});
  } catch {
    watcher = null; // no inotify here: the timer alone keeps the bound
  }
  const timer = setInterval(merge, SESSION_POLL_MS);
  timer.unref();
  merge();
  return () => {
    stopped = true;
    clearInterval(timer);
    watcher?.close();
  };
}
