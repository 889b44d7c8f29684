/**
 * The dynamic rules' state of one run, shared by the two places that see events: the
 * supervisor's worker thread (opens, execs) and the egress broker in Ward's main thread
 * (connections, by name). Both must see a revocation the moment it fires: the supervisor
 * injects the fd of a secret only after the revocation it triggers is stored here, so a
 * connection the sandbox opens afterwards is judged against it, whichever thread judges it.
 * Messages between threads would not give that order; shared memory does.
 *
 * Layout (Int32Array over a SharedArrayBuffer): one cell per `after` entry of every rule, in
 * order ("seen"), then one cell per rule ("fired"); 1 means true. The cells only ever go from
 * 0 to 1, which is what makes two writers safe without a lock:
 *
 *   applyShared: load the state, run src/rules' applyEvent on it, store the "seen" cells it
 *   set; then load again and run applyEvent once more, so that a rule whose last two events
 *   happened at once in two threads is still seen complete by at least one of them
 *   (sequentially consistent Atomics); each rule it finds complete is claimed with
 *   compareExchange(0 -> 1), so exactly one caller reports each firing.
 *
 * The decisions themselves are src/rules' isAllowed on the loaded state: the functions
 * `ward verify` proved only revoke.
 */
import type { Writer, WriteRevoked } from './cut.js';
import { applyEvent, isAllowed, revokes, type Event, type Match, type Rule, type RuleState } from '../rules/index.js';

export function newSharedRuleState(rules: readonly Rule[]): SharedArrayBuffer {
  const cells = rules.reduce((n, r) => n + r.after.length + 1, 0);
  return new SharedArrayBuffer(4 * Math.max(1, cells));
}

function seenCells(rules: readonly Rule[]): number {
  return rules.reduce((n, r) => n + r.after.length, 0);
}

export function loadRuleState(rules: readonly Rule[], cells: Int32Array): RuleState {
  let k = 0;
  const seen = rules.map((r) => r.after.map(() => Atomics.load(cells, k++) === 1));
  const fired = rules.map(() => Atomics.load(cells, k++) === 1);
  return { rules, seen, fired };
}

/** Records that `event` happened; returns the rules this call fired (each firing is returned to one caller only). */
export function applyShared(rules: readonly Rule[], cells: Int32Array, event: Event): number[] {
  const { state } = applyEvent(loadRuleState(rules, cells), event);
  let k = 0;
  for (const row of state.seen) {
    for (const seen of row) {
      if (seen) Atomics.store(cells, k, 1);
      k++;
    }
  }
  const { fired } = applyEvent(loadRuleState(rules, cells), event);
  const base = seenCells(rules);
  return fired.filter((r) => Atomics.compareExchange(cells, base + r, 0, 1) === 0);
}

/** The rules (indices) whose "fired" cell is set in `cells` (a plain copy of the shared state). */
export function firedIn(rules: readonly Rule[], cells: readonly number[]): number[] {
  const base = seenCells(rules);
  return rules.map((_, r) => r).filter((r) => cells[base + r] === 1);
}

/** A rule that fired: what triggered it and what it revoked. Becomes a `revocation` record. */
export interface RevocationReport {
  kind: 'revocation';
  /** Index in the effective policy's rule list (`rules[N]`). */
  rule: number;
  /** The rule's events, as policy text. */
  after: string[];
  /** What it revoked from now on, as policy text. */
  revoked: string[];
  /** The event that completed it, e.g. "read /home/u/ws/secrets/key.txt". */
  trigger: string;
  /** The process that caused it (Ward's pid namespace), when a syscall did. */
  pid: number | null;
  /** The syscall (supervisor) or "egress broker" (a connection). */
  by: string;
  /**
   * A rule revoking the whole network, fired by the supervisor: the sandbox's TCP connections it
   * shut down before answering the call that fired it (cut.ts).
   */
  connections_cut?: number;
  /**
   * A rule revoking writes, fired by the supervisor: the processes it killed because they could
   * still write a file it revoked (an fd opened for writing, or a shared writable mapping, from
   * before), before it answered the call that fired it (cut.ts killWriters).
   */
  killed?: Writer[];
}

export function revocationReport(rules: readonly Rule[], r: number, event: Event, pid: number | null, by: string): RevocationReport {
  const show = (m: { access: string; target: string }) => `${m.access} ${m.target}`;
  return { kind: 'revocation', rule: r, after: rules[r]!.after.map(show), revoked: rules[r]!.revoke.map(show), trigger: show(event), pid, by };
}

/** The first fired rule whose revocations cover `access` on `target`: for messages (isAllowed decides). */
export function revokedBy(state: RuleState, covers: (m: Match) => boolean): number | null {
  const r = state.rules.findIndex((rule, i) => state.fired[i] && rule.revoke.some(covers));
  return r < 0 ? null : r;
}

/** A revocation of every destination (`revoke: network`, `connect *`): what a blind connect can refuse. */
export function revokesNetwork(m: Match): boolean {
  return revokes(m, 'connect') && m.target === '*';
}

/** Whether a rule, once fired, takes writing (or appending) away from some file. */
export function revokesWriting(rule: Rule): boolean {
  return rule.revoke.some((m) => revokes(m, 'append'));
}

/**
 * In `state`, whether writing (appending, `append`) to `path`, the file "dev:ino" `file`, is
 * revoked under that name or any name the file had at launch (`aliases`, rules-aliases.ts): the
 * question killWriters (cut.ts) asks of every file a sandbox process can still write.
 */
export function writeRevoked(state: RuleState, aliases: ReadonlyMap<string, string[]>): WriteRevoked {
  return (path, file, append) => [path, ...((file !== null && aliases.get(file)) || [])].some((p) => !isAllowed(state, append ? 'append' : 'write', p));
}
