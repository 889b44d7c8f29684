/**
 * Policy text -> rule and invariant data. Pure (the ExpandContext carries home and workspace).
 * Errors carry the 1-based column where the problem starts and the fix, so the loader can
 * name the entry, the position and what to write instead.
 *
 *   rules:      after: "<event> <pattern>" | [list, all of which must have happened]
 *               revoke: "network" | "<access> <pattern>" | [list]
 *   invariants: "never <access> <pattern> [after <event> <pattern>]"
 *
 * events: read, write, exec, connect; accesses: those and append (rules), plus see
 * (invariants: the name exists in the sandbox); `execute` is accepted for `exec`.
 */
import type { ExpandContext } from '../policy/expand.js';
import type { Access, EventKind, Match } from './index.js';
import { parseDestPattern, parsePathPattern } from './pattern.js';

export type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string; fix: string; column: number };

interface Token {
  text: string;
  column: number;
}

function tokens(text: string): Token[] {
  const out: Token[] = [];
  for (const m of text.matchAll(/\S+/g)) out.push({ text: m[0], column: m.index! + 1 });
  return out;
}

const fail = <T>(column: number, problem: string, fix: string): Parsed<T> => ({ ok: false, problem, fix, column });

const ALIASES: Record<string, string> = { execute: 'exec' };

/** `<kind> <pattern>` starting at tokens[0]; `kinds` are the accepted first words. */
function parseMatchTokens<K extends string>(toks: Token[], kinds: readonly K[], ctx: ExpandContext, what: string): Parsed<{ access: K; target: string }> {
  const [kindTok, targetTok, extra] = toks;
  const list = kinds.join(', ');
  if (!kindTok) return fail(1, `an empty ${what}`, `write "${kinds[0]} PATTERN"; ${what}s start with one of: ${list}`);
  const kind = (ALIASES[kindTok.text] ?? kindTok.text) as K;
  if (!kinds.includes(kind)) return fail(kindTok.column, `unknown ${what} kind "${kindTok.text}"`, `use one of: ${list}`);
  if (!targetTok) {
    return fail(kindTok.column + kindTok.text.length, `"${kindTok.text}" needs a pattern after it`, kind === 'connect' ? 'write e.g. "connect *" or "connect api.example.com:443"' : `write e.g. "${kind} \${WORKSPACE}/secrets/**"`);
  }
  if (extra) return fail(extra.column, `unexpected "${extra.text}" after the pattern`, 'one pattern per entry: use a list for several');
  if (kind === 'connect') {
    const d = parseDestPattern(targetTok.text);
    return d.ok ? { ok: true, value: { access: kind, target: d.pattern } } : fail(targetTok.column, d.problem, d.fix);
  }
  const p = parsePathPattern(targetTok.text, ctx);
  return p.ok ? { ok: true, value: { access: kind, target: p.pattern } } : fail(targetTok.column, p.problem, p.fix);
}

const EVENTS: readonly EventKind[] = ['read', 'write', 'exec', 'connect'];
const REVOKES: readonly Access[] = ['read', 'write', 'exec', 'append', 'connect'];

/** One `after` entry: "read ~/secrets/**", "connect *". */
export function parseAfter(text: string, ctx: ExpandContext): Parsed<Match> {
  return parseMatchTokens(tokens(text), EVENTS, ctx, 'event');
}

/** One `revoke` entry: "network", "write ${WORKSPACE}/src/**", "connect *.example.com:443". */
export function parseRevoke(text: string, ctx: ExpandContext): Parsed<Match> {
  const toks = tokens(text);
  if (toks[0]?.text === 'network') {
    if (toks[1]) return fail(toks[1].column, `unexpected "${toks[1].text}" after "network"`, '"network" revokes every connection; to revoke one destination write "connect HOST:PORT"');
    return { ok: true, value: { access: 'connect', target: '*' } };
  }
  return parseMatchTokens(toks, REVOKES, ctx, 'revocation');
}

export type InvariantAccess = Access | 'see';

/** A user-declared property: `never` holds in every reachable state (after `after`, when given). */
export interface Invariant {
  text: string;
  never: { access: InvariantAccess; target: string };
  after?: Match;
}

const INV_ACCESSES: readonly InvariantAccess[] = ['read', 'write', 'exec', 'append', 'see', 'connect'];
const INV_FIX = 'write "never ACCESS PATTERN" or "never ACCESS PATTERN after EVENT PATTERN", e.g. "never read ~/secrets/**", "never connect * after read ${WORKSPACE}/secrets/**"';

export function parseInvariant(text: string, ctx: ExpandContext): Parsed<Invariant> {
  const toks = tokens(text);
  if (toks[0]?.text !== 'never') return fail(toks[0]?.column ?? 1, toks[0] ? `an invariant starts with "never", not "${toks[0].text}"` : 'an empty invariant', INV_FIX);
  const a = toks.findIndex((t, i) => i > 0 && t.text === 'after');
  const head = parseMatchTokens(toks.slice(1, a < 0 ? undefined : a), INV_ACCESSES, ctx, 'access');
  if (!head.ok) return head.column === 1 && !toks[1] ? fail(text.length + 1, '"never" needs an access and a pattern', INV_FIX) : head;
  if (a < 0) return { ok: true, value: { text: text.trim(), never: head.value } };
  const tail = toks.slice(a + 1);
  if (tail.length === 0) return fail(toks[a]!.column + 5, '"after" needs an event and a pattern', 'write e.g. "after read ${WORKSPACE}/secrets/**" (events: read, write, exec, connect)');
  const ev = parseMatchTokens(tail, EVENTS, ctx, 'event');
  if (!ev.ok) return ev;
  return { ok: true, value: { text: text.trim(), never: head.value, after: ev.value } };
}
