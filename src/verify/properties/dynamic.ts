/**
 * Properties over the policy's dynamic rules (`rules:`) and its user-declared invariants
 * (`invariants:`).
 *
 * The permission state is finite: which `after` patterns have been seen, which rules have
 * fired. So the reachable states are explored exhaustively, by running the very functions the
 * supervisor will run (src/rules: applyEvent) on one representative event per *class* of
 * events. A class is a set of `after` patterns an allowed event can match all of and no
 * other: a read of p belongs to class S when p is readable, in every pattern of S and in no
 * other read pattern. Which classes exist is itself a path question (decided by
 * ./decide.ts, Z3 where prefix reasoning is not exact) or a destination question (Z3). Events
 * of one class move every state the same way (matchEvent sees only which patterns match), so
 * one witness per class reaches every reachable state.
 *
 * In each state, "allowed" is the static policy's set minus what the fired rules revoke, so
 * every question is again "exists x in these sets and not in those": a path (decidePaths) or
 * a host:port (Z3 regular expressions). Every counterexample is re-checked with the plain
 * matchers and isAllowed, and comes with the sequence of events that leads to it.
 */
import { applyEvent as realApplyEvent, ACCESS_KINDS, initialState, isAllowed, revocations, revokes, type Access, type Event, type EventKind, type Match, type Rule, type RuleState } from '../../rules/index.js';
import { matchDest, matchPath, pathShape } from '../../rules/pattern.js';
import type { Invariant, InvariantAccess } from '../../rules/parse.js';
import type { EffectivePolicy } from '../../policy/load.js';
import { resolveRules } from '../../plan/rules.js';
import type { Encoder } from '../smt/encode.js';
import { check as z3Check, type CheckFn } from '../smt/z3.js';
import { decideDests, decidePaths, type DestWitness, type Witness } from './decide.js';
import type { DestList } from './exact.js';
import { grantText, hostPatterns, inPattern, inSet, patternForms, type HostPattern, type PathSet } from './model.js';

/**
 * The rules as the model explores them. The supervisor matches each path pattern resolved
 * through the symlinks on its way (plan/rules.ts resolveRules: what the plan carries), and the
 * kernel resolves a path named through such a link to the real one; but the static sets and
 * invariants here may name paths as written (a grant of /bin, `never read /bin/**` where
 * /bin -> usr/bin). So each pattern stands for both its forms: a revocation revokes both, and an
 * `after` is met by either. A rule says "either" only as one rule per choice of form for each
 * `after` pattern: together they fire once every pattern has been met in some form, and
 * revoke the same. A policy without links gets its own rules back.
 */
export function modelRules(rules: readonly Rule[], resolved: readonly Rule[] = resolveRules(rules)): Rule[] {
  const forms = (a: Match, b: Match): Match[] => (a.target === b.target ? [a] : [a, b]);
  return rules.flatMap((rule, i) => {
    const r = resolved[i]!;
    const revoke = rule.revoke.flatMap((m, j) => forms(m, r.revoke[j]!));
    let choices: Match[][] = [[]];
    rule.after.forEach((m, j) => {
      choices = choices.flatMap((c) => forms(m, r.after[j]!).map((f) => [...c, f]));
    });
    return choices.map((after) => ({ after, revoke }));
  });
}

export type ApplyEvent = (state: RuleState, event: Event) => { state: RuleState; fired: number[] };

/** More distinct `after` patterns of one kind than this: 2^n classes is too many to list. */
export const MAX_PATTERNS_PER_KIND = 10;
/** More reachable permission states than this: refused (UNKNOWN), never cut short. */
export const MAX_STATES = 4096;

export type DynOutcome =
  | { status: 'PROVED'; detail: string }
  | { status: 'VIOLATED'; counterexample: string; detail: string }
  | { status: 'UNKNOWN'; detail: string }
  | { status: 'ERROR'; detail: string };

type PathAccess = Exclude<Access, 'connect'> | 'see';
type SetsByAccess = Record<'read' | 'write' | 'append' | 'execute' | 'see', PathSet>;

const staticKey = (a: PathAccess): keyof SetsByAccess => (a === 'exec' ? 'execute' : a);

/** The paths access `a` reaches that the fired rules of `s` revoke, as a set (no excludes). */
function revokedPaths(s: RuleState, a: PathAccess): PathSet {
  if (a === 'see') return { include: [], exclude: [] }; // rules never hide a name, only its use
  return { include: revocations(s).filter((m) => m.access !== 'connect' && revokes(m, a)).map((m) => pathShape(m.target)), exclude: [] };
}

function revokedDests(s: RuleState): string[] {
  return revocations(s)
    .filter((m) => m.access === 'connect')
    .map((m) => m.target);
}

/** A destination pattern ("*", "host:port", "*.suffix:port", "host:*") as the encoder's HostPattern; null for "*". */
function hostPattern(p: string): HostPattern | null {
  if (p === '*') return null;
  const i = p.lastIndexOf(':');
  const host = p.slice(0, i);
  const port = p.slice(i + 1);
  const wildcard = host.startsWith('*.');
  return { entry: p, host: wildcard ? host.slice(2) : host, wildcard, port: port === '*' ? null : Number(port) };
}

/**
 * A well-formed destination in every `pos` pattern list and in no `neg` list (a list is the
 * union of its patterns; `*` is every destination), or a proof there is none (./decide.ts:
 * Z3, confirmed by the exact procedure), re-checked with the runtime's own matcher.
 */
async function destQuestion(c: Ctx, pos: string[][], neg: string[][]): Promise<DestWitness> {
  const list = (l: string[]): DestList => (l.includes('*') ? 'any' : l.map((p) => hostPattern(p)!));
  const r = await decideDests(c.enc, pos.map(list), neg.map(list), c.timeoutMs, c.check);
  if (r.status !== 'sat') return r;
  const inList = (l: string[]) => l.some((p) => matchDest(p, r.dest));
  if (!pos.every(inList) || neg.some(inList)) return { status: 'error', reason: `deciders disagree: the destination ${r.dest} is not confirmed by the runtime's matcher (rules/pattern.ts)` };
  return r;
}

interface Ctx {
  enc: Encoder;
  eff: EffectivePolicy;
  sets: SetsByAccess;
  /** Every destination the policy grants (network.allow and allow_local), as destination patterns. */
  allowed: string[];
  timeoutMs: number;
  apply: ApplyEvent;
  check: CheckFn;
  unknown: string[];
  /** Disagreements between the deciders: any one makes the outcome ERROR. */
  errors: string[];
  /** Answers by question (the revocation lists involved), shared by transitions and states that ask the same. */
  cache: Map<string, Promise<Answer>>;
}

const subset = (m: Match): PathSet => ({ include: [pathShape(m.target)], exclude: [] });

/**
 * One witness event per class of allowed events of `kind` (see the header), optionally
 * restricted to events that also match `within` (an invariant's trigger).
 */
async function eventClasses(c: Ctx, kind: EventKind, within?: Match): Promise<Event[]> {
  const patterns = [...new Map(c.eff.rules!.flatMap((r) => r.after).filter((m) => m.access === kind).map((m) => [m.target, m] as const)).values()];
  if (patterns.length > MAX_PATTERNS_PER_KIND) throw new TooLarge(`${patterns.length} distinct "after ${kind}" patterns (at most ${MAX_PATTERNS_PER_KIND})`);
  // Is there an allowed event in every pattern of `inS` (and `within`) and in none of `outS`?
  const ask = async (inS: Match[], outS: Match[]): Promise<string | null> => {
    if (kind === 'connect') {
      const w = await destQuestion(c, [c.allowed, ...inS.map((m) => [m.target]), ...(within ? [[within.target]] : [])], outS.map((m) => [m.target]));
      if (w.status === 'unknown') c.unknown.push(`event class of connect: ${w.reason}`);
      if (w.status === 'error') c.errors.push(`event class of connect: ${w.reason}`);
      return w.status === 'sat' ? w.dest : null;
    }
    const w: Witness = await decidePaths(c.enc, [c.sets[staticKey(kind)], ...inS.map(subset), ...(within ? [subset(within)] : [])], outS.map(subset), c.timeoutMs, undefined, c.check);
    if (w.status === 'unknown') c.unknown.push(`event class of ${kind}: ${w.reason}`);
    if (w.status === 'error') c.errors.push(`event class of ${kind}: ${w.reason}`);
    return w.status === 'sat' ? w.path : null;
  };
  // Decide pattern by pattern whether the class is in it or not, dropping a branch as soon as
  // its constraints so far have no event: adding constraints never brings one back, so every
  // class with an event is still reached, with far fewer questions than 2^n.
  const out: Event[] = [];
  const walk = async (i: number, inS: Match[], outS: Match[]): Promise<void> => {
    const w = await ask(inS, outS);
    if (w === null) return;
    if (i === patterns.length) {
      out.push({ access: kind, target: w });
      return;
    }
    await walk(i + 1, [...inS, patterns[i]!], outS);
    await walk(i + 1, inS, [...outS, patterns[i]!]);
  };
  await walk(0, [], []);
  return out;
}

class TooLarge extends Error {}

interface Node {
  state: RuleState;
  seq: Event[];
}

const key = (s: RuleState) => JSON.stringify([s.seen, s.fired]);
const showSeq = (seq: Event[]) => (seq.length === 0 ? 'no event' : seq.map((e) => `${e.access} ${e.target}`).join(', then '));

/** Every state reachable from `from` with `events` (breadth first: shortest sequences first), and each transition. */
function explore(c: Ctx, from: Node[], events: Event[], onEdge?: (a: Node, e: Event, b: Node) => void): Node[] {
  const seen = new Map<string, Node>();
  const queue: Node[] = [];
  for (const n of from) {
    if (seen.has(key(n.state))) continue;
    seen.set(key(n.state), n);
    queue.push(n);
  }
  for (let i = 0; i < queue.length; i++) {
    const n = queue[i]!;
    for (const e of events) {
      const next: Node = { state: c.apply(n.state, e).state, seq: [...n.seq, e] };
      onEdge?.(n, e, next);
      if (seen.has(key(next.state))) continue;
      if (seen.size >= MAX_STATES) throw new TooLarge(`more than ${MAX_STATES} reachable permission states`);
      seen.set(key(next.state), next);
      queue.push(next);
    }
  }
  return queue;
}

async function allEvents(c: Ctx): Promise<Event[]> {
  const out: Event[] = [];
  for (const kind of ['read', 'write', 'exec', 'connect'] as const) out.push(...(await eventClasses(c, kind)));
  return out;
}

function makeCtx(enc: Encoder, eff: EffectivePolicy, sets: SetsByAccess, timeoutMs: number, apply: ApplyEvent, check: CheckFn): Ctx {
  return { enc, eff, sets, allowed: hostPatterns(eff).map((h) => h.entry), timeoutMs, apply, check, unknown: [], errors: [], cache: new Map() };
}

/** A question's answer: a witness, none (a proof), no answer (the reason), or a disagreement. */
type Answer = { found: string } | { none: true } | { unknown: string } | { error: string };

/** Looks an answer up by its question (shared by transitions and states that ask the same), noting an unanswered or disputed one in this context. */
async function cached(c: Ctx, k: string, ask: () => Promise<Answer>): Promise<string | null> {
  if (!c.cache.has(k)) c.cache.set(k, ask());
  const a = await c.cache.get(k)!;
  if ('unknown' in a) c.unknown.push(a.unknown);
  if ('error' in a) c.errors.push(a.error);
  return 'found' in a ? a.found : null;
}

const fromPaths = (w: Witness): Answer =>
  w.status === 'sat' ? { found: w.path } : w.status === 'unsat' ? { none: true } : w.status === 'error' ? { error: w.reason } : { unknown: w.reason };
const fromDests = (w: DestWitness): Answer =>
  w.status === 'sat' ? { found: w.dest } : w.status === 'unsat' ? { none: true } : w.status === 'error' ? { error: w.reason } : { unknown: w.reason };

/** ERROR if the deciders disagreed anywhere in this exploration (checked before any other verdict). */
const disputed = (c: Ctx): DynOutcome | null => (c.errors.length > 0 ? { status: 'ERROR', detail: `${c.errors.length} disagreement(s) between the deciders; first: ${c.errors[0]}` } : null);

/** Is some x allowed in `after` that is not allowed in `before`, for access `a`? (the static part is the same) */
function grows(c: Ctx, before: RuleState, after: RuleState, a: Access): Promise<string | null> {
  // The question depends only on the revocations that bear on `a`, before and after: many
  // transitions share it. (No syntactic shortcut such as "the list only grew": the sets are
  // compared by the decision procedure, so a revocation replaced by a narrower one is caught.)
  const bearing = (s: RuleState) => (a === 'connect' ? revokedDests(s) : revokedPaths(s, a).include);
  return cached(c, JSON.stringify(['grows', a, bearing(before), bearing(after)]), async () => {
    if (a === 'connect') {
      const w = revokedDests(before);
      if (w.length === 0) return { none: true };
      return fromDests(await destQuestion(c, [c.allowed, w], [revokedDests(after)]));
    }
    const w = revokedPaths(before, a);
    if (w.include.length === 0) return { none: true };
    return fromPaths(await decidePaths(c.enc, [c.sets[staticKey(a)], w], [revokedPaths(after, a)], c.timeoutMs, undefined, c.check));
  });
}

/**
 * `rules-only-revoke`: along every transition between reachable states, nothing becomes
 * allowed that was not allowed before, so after any sequence of events the permission set is
 * a subset of the initial one. `apply` is the semantics under test (the real applyEvent
 * unless a test injects a broken one).
 */
export async function rulesOnlyRevoke(
  enc: Encoder,
  eff: EffectivePolicy,
  sets: SetsByAccess,
  timeoutMs: number,
  apply: ApplyEvent = realApplyEvent,
  check: CheckFn = z3Check,
): Promise<DynOutcome> {
  const rules: Rule[] = eff.rules ?? [];
  const c = makeCtx(enc, eff, sets, timeoutMs, apply, check);
  try {
    const events = await allEvents(c);
    const edges: [Node, Event, Node][] = [];
    const nodes = explore(c, [{ state: initialState(rules), seq: [] }], events, (a, e, b) => edges.push([a, e, b]));
    for (const [a, e, b] of edges) {
      for (const access of ACCESS_KINDS) {
        const g = await grows(c, a.state, b.state, access);
        const bad = disputed(c);
        if (bad) return bad;
        if (g === null) continue;
        // Re-check with the runtime's own isAllowed: allowed after the step, not before it.
        if (!isAllowed(b.state, access, g) || isAllowed(a.state, access, g)) {
          return { status: 'ERROR', detail: `deciders disagree: ${access} ${g} is not confirmed by isAllowed` };
        }
        return {
          status: 'VIOLATED',
          counterexample: `${access} ${g} after ${showSeq(b.seq)}`,
          detail: `revoked after ${showSeq(a.seq)}, allowed again after the next event (${e.access} ${e.target})`,
        };
      }
    }
    const bad = disputed(c);
    if (bad) return bad;
    if (c.unknown.length > 0) return { status: 'UNKNOWN', detail: `solver gave no answer within ${timeoutMs} ms: ${c.unknown[0]}` };
    return { status: 'PROVED', detail: `${rules.length} rules, ${events.length} event classes, ${nodes.length} reachable states, ${edges.length} transitions checked; every answer confirmed by the exact procedure` };
  } catch (e) {
    if (e instanceof TooLarge) return { status: 'UNKNOWN', detail: `too many to explore: ${e.message}; split the rules into fewer distinct patterns` };
    throw e;
  }
}

/** Is some x in `target` allowed (static policy minus revocations) for `access` in state `s`? */
function allowedIn(c: Ctx, s: RuleState, access: InvariantAccess, target: string): Promise<string | null> {
  // The answer depends on the revocations in force only, not on what else was seen.
  return cached(c, JSON.stringify(['allowed', access, target, access === 'connect' ? revokedDests(s) : revokedPaths(s, access).include]), async () => {
    if (access === 'connect') return fromDests(await destQuestion(c, [c.allowed, [target]], [revokedDests(s)]));
    return fromPaths(await decidePaths(c.enc, [c.sets[staticKey(access)], { include: patternForms(target), exclude: [] }], [revokedPaths(s, access)], c.timeoutMs, undefined, c.check));
  });
}

/** The reachable states under the real semantics, shared by every invariant of a policy. */
export interface DynamicModel {
  c: Ctx;
  events: Event[];
  reachable: Node[];
}

export async function dynamicModel(enc: Encoder, eff: EffectivePolicy, sets: SetsByAccess, timeoutMs: number, check: CheckFn = z3Check): Promise<DynamicModel | { tooLarge: string }> {
  const rules: Rule[] = eff.rules ?? [];
  const c = makeCtx(enc, { ...eff, rules }, sets, timeoutMs, realApplyEvent, check);
  try {
    const events = rules.length > 0 ? await allEvents(c) : [];
    return { c, events, reachable: explore(c, [{ state: initialState(rules), seq: [] }], events) };
  } catch (e) {
    if (e instanceof TooLarge) return { tooLarge: e.message };
    throw e;
  }
}

/** An invariant: `never ACCESS PATTERN` in every reachable state, or in every state after the trigger. */
export async function checkInvariant(model: DynamicModel | { tooLarge: string }, inv: Invariant, explain: (p: string) => string): Promise<DynOutcome> {
  if ('tooLarge' in model) return { status: 'UNKNOWN', detail: `too many to explore: ${model.tooLarge}` };
  const { events, reachable } = model;
  // A fresh list of unanswered questions per invariant (the caches are shared: same questions).
  // Disagreements met while building the model taint every invariant.
  const c: Ctx = { ...model.c, unknown: [], errors: [...model.c.errors] };
  const rules = c.eff.rules ?? [];
  const sets = c.sets;
  try {
    let states = reachable;
    if (inv.after) {
      const triggers = await eventClasses(c, inv.after.access as EventKind, inv.after);
      if (triggers.length === 0) {
        const bad = disputed(c);
        if (bad) return bad;
        if (c.unknown.length > 0) return { status: 'UNKNOWN', detail: `solver gave no answer within ${c.timeoutMs} ms: ${c.unknown[0]}` };
        return { status: 'PROVED', detail: `vacuously: the policy allows no ${inv.after.access} matching ${inv.after.target}` };
      }
      const post = reachable.flatMap((n) => triggers.map((e) => ({ state: c.apply(n.state, e).state, seq: [...n.seq, e] })));
      states = explore(c, post, events);
    }
    for (const n of states) {
      const x = await allowedIn(c, n.state, inv.never.access, inv.never.target);
      const bad = disputed(c);
      if (bad) return bad;
      if (x === null) continue;
      const staticOk = inv.never.access === 'connect' ? c.allowed.some((p) => matchDest(p, x)) : inSet(x, sets[staticKey(inv.never.access)]);
      const dynOk = inv.never.access === 'see' || isAllowed(n.state, inv.never.access, x);
      // The pattern as written (the runtime's matcher) or as it resolves on this host (./model.ts).
      const inTarget = inv.never.access === 'connect' ? matchDest(inv.never.target, x) : matchPath(inv.never.target, x) || patternForms(inv.never.target).some((f) => inPattern(x, f));
      if (!staticOk || !dynOk || !inTarget) return { status: 'ERROR', detail: `deciders disagree: ${inv.never.access} ${x} is not confirmed by the TypeScript matchers` };
      const why = inv.never.access === 'connect' ? `allowed by ${hostPatterns(c.eff).filter((h) => matchDest(h.entry, x)).map(grantText).join(', ')}` : explain(x);
      const revoking = rules.length === 0 ? 'the policy has no dynamic rules' : 'no fired rule revokes it';
      return {
        status: 'VIOLATED',
        counterexample: n.seq.length === 0 ? `${inv.never.access} ${x}` : `${inv.never.access} ${x} after ${showSeq(n.seq)}`,
        detail: `${why}; ${revoking}`,
      };
    }
    const bad = disputed(c);
    if (bad) return bad;
    if (c.unknown.length > 0) return { status: 'UNKNOWN', detail: `solver gave no answer within ${c.timeoutMs} ms: ${c.unknown[0]}` };
    return { status: 'PROVED', detail: `${states.length} state${states.length === 1 ? '' : 's'} checked; every answer confirmed by the exact procedure` };
  } catch (e) {
    if (e instanceof TooLarge) return { status: 'UNKNOWN', detail: `too many to explore: ${e.message}` };
    throw e;
  }
}
