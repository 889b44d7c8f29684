/**
 * The decision module that enforces a policy's dynamic rules (`rules:`) in supervised mode.
 * Loaded into the supervisor's worker thread (worker.ts) by launch() for every plan with rules;
 * `data` is RulesDeciderData. It only ever takes permissions away: the static policy (mounts,
 * Landlock, seccomp, the broker) has already allowed whatever reaches it, and it answers each
 * call with src/rules' isAllowed on the current state, then records the access as an event
 * with applyEvent: the very functions `ward verify` proved (`rules-only-revoke`).
 *
 *   open (emulated; the path is what was actually opened, canonical, in the sandbox's view)
 *     read -> read; write or create -> write (append when O_APPEND); read-write -> both.
 *     Refused (EACCES) when a fired rule revoked one of them; otherwise the access happened:
 *     events "read P" and/or "write P". O_PATH opens are neither.
 *   execve, execveat (the program resolved from the sandbox's root, and its identity; see
 *     SECURITY-MODEL.md for the exec gap), and each file the kernel runs for it with no exec of
 *     its own: a script's `#!` interpreter, an ELF program's dynamic loader (event.via)
 *     refused (EACCES) when exec of it, or of a name it had at launch (a hard link, a rename),
 *     is revoked; otherwise event "exec P" for each of those names.
 *   connect (blind: the address is not read)
 *     refused (EACCES) once a fired rule revoked every destination (`network`, `connect *`).
 *     Revocations of some destinations, and connect events, are the egress broker's: it sees
 *     the name (launch.ts wires it to the same shared state).
 *   unlink(at), rmdir, rename(at, at2), link(at), symlink(at), mkdir(at), mknod(at), truncate,
 *   and chmod, chown, utime(s), utimensat, setxattr, removexattr (by path, or on an fd: the
 *     file it is) (performed by the supervisor on the resolved names, worker.ts handlePathOp,
 *     handleAttrOp)
 *     refused (EACCES) when writing any name they touch is revoked: the name removed, replaced
 *     or made, the old and new names of a rename or link, and the names the file had at launch
 *     (a hard link to a revoked file is refused too); otherwise each of those names is the
 *     event "write P" (one call is refused by `revoke: write P` exactly when it is an event of
 *     `after: write P`). Elsewhere they work, so git and npm keep working after a revocation.
 *     A rename that moves or replaces a directory (event.tree) touches everything below its
 *     names too: refused when writing any path at or below either name is revoked (src/rules
 *     isAllowedBelow: `mv proj proj2` when proj/src/** is revoked), and the events are
 *     eventsBelow (one path per waiting `after: write` pattern below it).
 *
 * anyTarget (a decision on registers only): true for the accesses no fired rule revokes and no
 * waiting `after` pattern needs to see, e.g. every write before `revoke: write` fires when no
 * rule waits for a write. The supervisor then lets the kernel make the call unread (CONTINUE):
 * the answer would have been "allowed, no event" whatever path it named.
 *
 * Errno: EACCES for everything, connect included ("Permission denied": a local rule said no;
 * ECONNREFUSED would read as "nobody listens" and invite retries).
 *
 * Each rule that fires is reported (ctx.report) with its trigger before the call that fired it
 * is answered, so its `revocation` record precedes every refusal it causes.
 */
import { allowsAnyTarget, eventsBelow, isAllowed, isAllowedBelow, matchEvent, revocations, revokes, type Access, type Event, type EventKind, type Match, type Rule } from '../rules/index.js';
import { matchBelow } from '../rules/pattern.js';
import { applyShared, loadRuleState, revocationReport, revokedBy, revokesNetwork, revokesWriting, writeRevoked } from './rules-state.js';
import type { Decide, DeciderContext, Decision, SupervisedEvent } from './types.js';

export interface RulesDeciderData {
  rules: Rule[];
  /** newSharedRuleState(rules): shared with the egress broker in Ward's main thread. */
  cells: SharedArrayBuffer;
  /** The files the rules' patterns named at launch, by identity (rules-aliases.ts). */
  aliases?: [string, string[]][];
}

const EACCES = 13;
const O_APPEND = 0o2000;
const O_ACCMODE = 0o3;
const O_RDWR = 0o2;
const ALLOW: Decision = { allow: true };

/** The accesses an open is, for the rules: what it must be allowed, and the events it then is. */
function openAccesses(e: SupervisedEvent): { check: Access[]; events: EventKind[] } {
  const write: Access = e.flags & O_APPEND ? 'append' : 'write';
  // A create is a write whatever the access mode (the worker reports it as read-write); it is
  // a read as well only when the file is also opened for reading and writing.
  if (e.create) return (e.flags & O_ACCMODE) === O_RDWR ? { check: ['read', write], events: ['read', 'write'] } : { check: [write], events: ['write'] };
  switch (e.access) {
    case 'read':
      return { check: ['read'], events: ['read'] };
    case 'write':
      return { check: [write], events: ['write'] };
    case 'read-write':
      return { check: ['read', write], events: ['read', 'write'] };
    default:
      return { check: [], events: [] }; // O_PATH: no access to the contents
  }
}

export function createDecider(data: RulesDeciderData, ctx?: DeciderContext): Decide {
  const { rules } = data;
  const cells = new Int32Array(data.cells);
  const aliases = new Map(data.aliases ?? []);
  const happened = (pid: number, syscall: string, event: Event) => {
    for (const r of applyShared(rules, cells, event)) {
      const rep = revocationReport(rules, r, event, pid, syscall);
      // Connections opened before the event must not carry out what it gave (the secret just
      // read): cut them now, before this call is answered and its fd injected. The broker's cut
      // (launch.ts) comes a moment later and covers revocations of some destinations only.
      if (ctx?.cutConnections && rules[r]!.revoke.some(revokesNetwork)) rep.connections_cut = ctx.cutConnections(pid);
      // Likewise a file opened for writing before a write revocation: its holder could go on
      // writing through it (the kernel cannot take the fd's access back), so it is killed.
      if (ctx?.killWriters && revokesWriting(rules[r]!)) {
        const killed = ctx.killWriters(pid, writeRevoked(loadRuleState(rules, cells), aliases));
        if (killed.length > 0) rep.killed = killed;
      }
      ctx?.report(rep);
    }
  };
  const why = (r: number | null, what: string) =>
    `${what} revoked by rules[${r ?? '?'}]${r === null ? '' : ` (after ${rules[r]!.after.map((m) => `${m.access} ${m.target}`).join(' and ')})`}`;

  const decide: Decide = (e) => {
    const state = loadRuleState(rules, cells);
    if (e.kind === 'connect') {
      // Blind: only a revocation of every destination can be decided here.
      const all = revocations(state).some(revokesNetwork);
      if (!all) return ALLOW;
      return { errno: EACCES, reason: why(revokedBy(state, revokesNetwork), 'network') };
    }
    if (e.kind !== 'open' && e.kind !== 'exec') {
      // Writes by path, decided on the resolved names (worker.ts handlePathOp); fd calls (no path) are not the rules' business.
      if (e.path === null) return ALLOW;
      const known = e.file === null ? undefined : aliases.get(e.file);
      const names = [e.path, ...(known ?? []).filter((p) => p !== e.path), ...(e.path2 ? [e.path2] : [])];
      // A directory moved or replaced as a whole (e.tree): its names stand for every path below them.
      const whole = (path: string) => e.tree === true && (path === e.path || path === e.path2);
      for (const path of names) {
        if (whole(path) ? isAllowedBelow(state, 'write', path) : isAllowed(state, 'write', path)) continue;
        const covers = (m: Match) => revokes(m, 'write') && (whole(path) ? m.access !== 'connect' && matchBelow(m.target, path) !== null : matchEvent(m, { access: 'write', target: path }));
        const r = revokedBy(state, covers);
        const inside = whole(path) && isAllowed(state, 'write', path) ? revocations(state).find(covers)?.target : undefined;
        const below = inside === undefined ? '' : ` (a directory moved or replaced as a whole, holding ${matchBelow(inside, path)})`;
        return { errno: EACCES, reason: `${e.kind} of ${path}: ${why(r, 'write')}${below}${path === e.path || path === e.path2 ? '' : ` (${e.path} is ${path}, linked or renamed)`}` };
      }
      // Every name that was judged is an event, the launch names of the file too: `truncate
      // alias` writes what P/f holds, and `revoke: write P` refuses it for that reason.
      for (const path of names) {
        const syscall = path === e.path || path === e.path2 ? e.syscall : `${e.syscall} of ${e.path}, the same file`;
        for (const ev of whole(path) ? eventsBelow(rules, 'write', path) : [{ access: 'write' as const, target: path }]) happened(e.pid, syscall, ev);
      }
      return ALLOW;
    }
    if (e.path === null) return ALLOW;
    // The file by every name the rules know it by: the one it was opened as, and the ones it had
    // at launch (a hard link or a rename since then changes its name, not what it holds).
    const known = e.file === null ? undefined : aliases.get(e.file);
    const paths = known ? [e.path, ...known.filter((p) => p !== e.path)] : [e.path];
    const { check, events }: { check: Access[]; events: EventKind[] } = e.kind === 'exec' ? { check: ['exec'], events: ['exec'] } : openAccesses(e);
    for (const a of check) {
      for (const path of paths) {
        if (isAllowed(state, a, path)) continue;
        const r = revokedBy(state, (m) => revokes(m, a) && matchEvent(m, { access: m.access as EventKind, target: path }));
        return { errno: EACCES, reason: `${why(r, a)}${path === e.path ? '' : ` (${e.path} is ${path}, linked or renamed)`}` };
      }
    }
    // An interpreter or a loader runs by the exec of another file: the trigger names that one.
    const by = e.via ? `${e.syscall} of ${e.via.file}, its ${e.via.as}` : e.syscall;
    for (const access of events) {
      for (const path of paths) happened(e.pid, path === e.path ? by : `${e.syscall} of ${e.path}, the same file${e.via ? `, the ${e.via.as} of ${e.via.file}` : ''}`, { access, target: path });
    }
    return ALLOW;
  };
  // Before a write revocation fires (and with no `after: write` pattern waiting), every write
  // is allowed and no event: the supervisor need not read which file it is (worker.ts).
  decide.anyTarget = (accesses) => allowsAnyTarget(loadRuleState(rules, cells), accesses);
  return decide;
}
