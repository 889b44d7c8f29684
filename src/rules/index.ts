/**
 * Dynamic rules (policy key `rules:`): their data and their pure semantics. No I/O, no clock,
 * no globals: the supervisor (supervised mode, issue 6) and the verifier
 * (src/verify/properties/dynamic.ts) run exactly these functions.
 *
 * The whole API:
 *
 *   initialState(rules)                 -> RuleState   nothing seen, nothing revoked
 *   applyEvent(state, event)            -> { state, fired }
 *                                          an event that happened (the access was allowed and
 *                                          done); rules whose every `after` pattern has now
 *                                          been seen fire, once, and their revocations hold
 *                                          from then on. Never mutates `state`.
 *   isAllowed(state, access, target)    -> boolean     false when a fired rule revoked it
 *   revocations(state)                  -> Match[]     what the fired rules revoked
 *   allowsAnyTarget(state, accesses)    -> boolean     every target allowed for these accesses,
 *                                          and no such access could be an event that matters
 *   isAllowedBelow(state, access, dir)  -> boolean     isAllowed for every path at or below dir
 *   eventsBelow(rules, kind, dir)       -> Event[]     the events an access to a whole tree is
 *   matchEvent(match, event)            -> boolean
 *
 * `isAllowed` answers for the dynamic part only: the static policy (mounts, Landlock,
 * seccomp, the egress broker) still decides first, so an access happens only when both allow
 * it. Rules only ever take permissions away; `ward verify` proves that of these functions for
 * the policy's actual rules (property `rules-only-revoke`).
 *
 * Targets are canonical paths (absolute, no `.`/`..`, symlinks resolved) or "host:port"
 * destinations; patterns are parsed by ./pattern.ts. A revocation of `write` also revokes
 * `append` (appending is writing); `read`, `exec` and `append` revoke only themselves;
 * `network` is `connect *`.
 */
import { matchBelow, matchDest, matchPath } from './pattern.js';

/** What an event can be: an access that happened. */
export type EventKind = 'read' | 'write' | 'exec' | 'connect';
/** What a rule can revoke. */
export type Access = EventKind | 'append';
export const EVENT_KINDS: readonly EventKind[] = ['read', 'write', 'exec', 'connect'];
export const ACCESS_KINDS: readonly Access[] = ['read', 'write', 'exec', 'append', 'connect'];

/** An access kind and a pattern: an expanded path pattern, or a destination pattern for connect. */
export interface Match {
  access: Access;
  target: string;
}

/** One rule: once every `after` pattern has been matched by some event (in any order), `revoke` holds. */
export interface Rule {
  after: Match[];
  revoke: Match[];
}

/** A concrete event: a canonical path, or "host:port" for connect. */
export interface Event {
  access: EventKind;
  target: string;
}

export interface RuleState {
  readonly rules: readonly Rule[];
  /** seen[r][i]: rule r's i-th `after` pattern has been matched. */
  readonly seen: readonly (readonly boolean[])[];
  /** fired[r]: rule r's revocations are in force. */
  readonly fired: readonly boolean[];
}

export function initialState(rules: readonly Rule[]): RuleState {
  return { rules, seen: rules.map((r) => r.after.map(() => false)), fired: rules.map(() => false) };
}

function matchTarget(m: Match, target: string): boolean {
  return m.access === 'connect' ? matchDest(m.target, target) : matchPath(m.target, target);
}

export function matchEvent(m: Match, e: Event): boolean {
  return m.access === e.access && matchTarget(m, e.target);
}

export function applyEvent(state: RuleState, event: Event): { state: RuleState; fired: number[] } {
  const fired: number[] = [];
  const seen = state.rules.map((rule, r) => rule.after.map((m, i) => state.seen[r]![i]! || matchEvent(m, event)));
  const nowFired = state.rules.map((_, r) => {
    if (state.fired[r]) return true;
    if (seen[r]!.every(Boolean)) {
      fired.push(r);
      return true;
    }
    return false;
  });
  return { state: { rules: state.rules, seen, fired: nowFired }, fired };
}

export function revocations(state: RuleState): Match[] {
  return state.rules.flatMap((rule, r) => (state.fired[r] ? rule.revoke : []));
}

/** Does a revocation of `m.access` cover `access`? (revoking write revokes append too.) */
export function revokes(m: Match, access: Access): boolean {
  return m.access === access || (m.access === 'write' && access === 'append');
}

export function isAllowed(state: RuleState, access: Access, target: string): boolean {
  return !revocations(state).some((m) => revokes(m, access) && matchTarget(m, target));
}

/**
 * A call that moves or replaces the directory `dir` as a whole (a rename of it, or of a
 * directory onto it) does `access` to every path below it: renaming `proj` rewrites what
 * `proj/src/main.c` holds as surely as opening it for writing. So it is allowed only when no
 * fired rule revokes `access` on any path at or below `dir` (pattern.ts matchBelow, exact):
 * isAllowed for every path at or below `dir`, whatever the tree holds now.
 */
export function isAllowedBelow(state: RuleState, access: Access, dir: string): boolean {
  return !revocations(state).some((m) => revokes(m, access) && m.access !== 'connect' && matchBelow(m.target, dir) !== null);
}

/**
 * The events such a call is, when it happens: `dir` itself, and for each `after` pattern of
 * kind `kind` that matches something at or below `dir`, one path it matches there. Each is an
 * ordinary event on a canonical path, so applyEvent (and the verifier, which explores events as
 * paths) sees nothing new: the call counts as an access to each of those paths, as writing a
 * file into the moved tree would have.
 */
export function eventsBelow(rules: readonly Rule[], kind: EventKind, dir: string): Event[] {
  const targets = new Set<string>([dir]);
  for (const rule of rules) {
    for (const m of rule.after) {
      if (m.access !== kind || kind === 'connect') continue;
      const w = matchBelow(m.target, dir);
      if (w !== null) targets.add(w);
    }
  }
  return [...targets].map((target) => ({ access: kind, target }));
}

/** The event an access is when it happens (appending is writing). */
function eventOf(access: Access): EventKind {
  return access === 'append' ? 'write' : access;
}

/**
 * True when, in `state`, each of `accesses` is allowed on *every* target and happening on any
 * target would change nothing: no fired rule revokes it, and no rule still waiting has an
 * unseen \`after\` pattern of its kind. A decision that holds for every target needs no target:
 * the supervisor can then let the kernel run the call without reading which path it names
 * (src/supervisor/worker.ts, "decided blind"), and a thread that swaps the path afterwards
 * gains nothing the rules would refuse or needed to see. A revocation makes it false for good;
 * a pattern still waiting makes it false until an event has matched it.
 */
export function allowsAnyTarget(state: RuleState, accesses: readonly Access[]): boolean {
  for (const access of accesses) {
    if (revocations(state).some((m) => revokes(m, access))) return false;
    const kind = eventOf(access);
    const waiting = state.rules.some((rule, r) => !state.fired[r] && rule.after.some((m, i) => m.access === kind && !state.seen[r]![i]));
    if (waiting) return false;
  }
  return true;
}

/** A rule pattern as policy text ("read /x", "connect *"): for messages and `ward policy check`. */
export function showMatch(m: Match): string {
  return `${m.access} ${m.target}`;
}
