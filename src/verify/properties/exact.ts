/**
 * Exact decision procedures, in plain TypeScript, for the two kinds of question `ward verify`
 * asks Z3: "is there a canonical path in every `pos` set and in no `neg` set?" (over Ward's
 * path patterns) and "is there a well-formed destination host:port in every `pos` list and in
 * no `neg` list?". They are the independent second opinion every Z3 answer gets: an `unsat`
 * from Z3 becomes PROVED only when the procedure here finds no witness either, and any
 * disagreement is a verification ERROR (./decide.ts, ./index.ts).
 *
 * Both work by a small-model argument: membership of a path (a destination) in every pattern
 * depends on finitely many facts about it, each combination of facts that some path has is
 * also had by one of finitely many candidates built from the patterns' own pieces plus one
 * fresh piece, so trying every candidate with the plain matcher decides the question. Every
 * candidate found is a real witness (it is checked by the same matcher the counterexamples
 * are checked with); the arguments below are why not finding one means there is none.
 */
import { isWithin } from '../../policy/expand.js';
import { inPattern, inSet, type HostPattern, type PathPattern, type PathSet } from './model.js';

export type ExactAnswer<T> = { status: 'sat'; witness: T; candidates: number } | { status: 'unsat'; candidates: number } | { status: 'too-large'; reason: string };

/** More distinct names (of `**` / named-below patterns) than this at one place: 2^n candidates. */
export const MAX_NAMES = 12;

/** A canonical path segment: non-empty, no "/" or NUL, not "." or "..". (encode.ts SEG) */
export function isSegment(s: string): boolean {
  return s.length > 0 && !s.includes('/') && !s.includes('\u0000') && s !== '.' && s !== '..';
}

/** A canonical absolute path: "/" or ("/" SEG)+. (encode.ts CANON) */
export function isCanonical(p: string): boolean {
  return p === '/' || (p.startsWith('/') && p.slice(1).split('/').every(isSegment));
}

const segs = (p: string): string[] => (p === '/' ? [] : p.slice(1).split('/'));
const join = (base: string, rest: string[]): string => (rest.length === 0 ? base : (base === '/' ? '' : base) + rest.map((s) => `/${s}`).join(''));

function rootOf(p: PathPattern): string {
  return p.kind === 'named-below' ? p.dir : p.path;
}

/**
 * Is there a canonical path in every `pos` set and in no `neg` set?
 *
 * Why the candidates suffice. Let TRIE be the pattern roots (subtree and below paths,
 * named-below dirs) and all their ancestors, "/" included, and NAMES the names of the
 * named-below patterns.
 * Take any canonical witness p. Let T be the deepest TRIE node that is p or an ancestor of p
 * (there is one: "/"), and G the segments of p below T (the first of them, if any, is not a
 * child of T in TRIE, or T would not be the deepest). Then for every pattern:
 *   - subtree P (P in TRIE): P holds p iff P is T or an ancestor of T. (P on p's ancestor
 *     chain is a TRIE node on that chain, so at most as deep as T; and P deeper than T would
 *     need G's first segment to be a TRIE child of T.)
 *   - below P (P in TRIE): p is in it iff P is a proper ancestor of p. With G non-empty that
 *     is: P is T or an ancestor of T (as for subtree, p being deeper than T); with G empty
 *     (p = T): P is a proper ancestor of T.
 *   - named-below (D, N) (D in TRIE): p is in it iff D is a proper ancestor of p and N is a
 *     segment of p below D. D on p's chain is T or an ancestor of T (as above). If D is a
 *     proper ancestor of T, p is in it iff N is among T's segments below D or among G's; if
 *     D = T, iff N is among G's segments; otherwise p is not in it.
 * So membership depends only on T, on S = NAMES ∩ G and on whether G is empty. The candidate
 * T + [F, ...S], with F a fresh segment (no TRIE node's segment and no name, so never a TRIE
 * child), has the same T (F leaves the trie at once), the same S and a non-empty G, hence the
 * same membership as any such p; for S empty the candidates are T itself (G empty) and T + [F]
 * (G non-empty). It is canonical when p is: T is a prefix of p, S's names are
 * segments of p, F is a valid segment. Names irrelevant at T (no named-below pattern with its
 * dir on T's chain) never change membership and are left out; NAMES that are no canonical
 * segment ("." or "a/b") cannot occur in p and are left out. Candidates are |TRIE| × (2^|S| + 1).
 */
export function exactPaths(pos: PathSet[], neg: PathSet[]): ExactAnswer<string> {
  const patterns = [...pos, ...neg].flatMap((s) => [...s.include, ...s.exclude]);
  const trie = new Set<string>(['/']);
  const vocabulary = new Set<string>();
  for (const pat of patterns) {
    const r = rootOf(pat);
    // A root that is not canonical is on no canonical path's chain: it adds no candidate T
    // (its patterns still take part through the matcher, where they match nothing).
    if (!isCanonical(r)) continue;
    const ss = segs(r);
    for (let i = 0; i <= ss.length; i++) trie.add(join('/', ss.slice(0, i)));
    for (const s of ss) vocabulary.add(s);
    if (pat.kind === 'named-below') vocabulary.add(pat.name);
  }
  let fresh = 'ward-fresh';
  for (let i = 0; vocabulary.has(fresh); i++) fresh = `ward-fresh-${i}`;

  const holds = (p: string) => pos.every((s) => inSet(p, s)) && !neg.some((s) => inSet(p, s));
  // Pruning that keeps completeness: a candidate at T (T itself, or T/F/...) is held by an
  // include only if the include's root is T or an ancestor of T (F is on no root's way). So
  // when some pos set has no such include, no candidate at T is a witness.
  const includes = pos.map((s) => s.include);
  let candidates = 0;
  for (const t of trie) {
    if (!includes.every((inc) => inc.some((i) => isWithin(t, rootOf(i))))) continue;
    const names = [
      ...new Set(
        patterns.flatMap((pat) => (pat.kind === 'named-below' && isWithin(t, pat.dir) && isSegment(pat.name) ? [pat.name] : [])),
      ),
    ].sort();
    if (names.length > MAX_NAMES) return { status: 'too-large', reason: `${names.length} distinct names of "**/NAME" patterns below ${t} (at most ${MAX_NAMES})` };
    for (let mask = 0; mask < 1 << names.length; mask++) {
      const chosen = names.filter((_, i) => mask & (1 << i));
      for (const c of chosen.length === 0 ? [t, join(t, [fresh])] : [join(t, [fresh, ...chosen])]) {
        candidates++;
        if (holds(c)) return { status: 'sat', witness: c, candidates };
      }
    }
  }
  return { status: 'unsat', candidates };
}

// ---------------------------------------------------------------------------
// Destinations

/** The grammar of encode.ts `destinations().wellFormed`, as a JavaScript regular expression. */
const LABEL = '[a-z0-9_][a-z0-9_-]*';
const DNS = `${LABEL}(?:\\.${LABEL})*`;
const IPV6 = '\\[[0-9a-f:]+\\]';
const WELL_FORMED_HOST = new RegExp(`^(?:${DNS}|${IPV6})$`);

export function isWellFormedDest(dest: string): boolean {
  const i = dest.lastIndexOf(':');
  if (i < 0) return false;
  const port = dest.slice(i + 1);
  return WELL_FORMED_HOST.test(dest.slice(0, i)) && /^[1-9][0-9]{0,4}$/.test(port) && Number(port) <= 65535;
}

/** Does `dest` ("host:port") match the pattern? (The same reading as encode.ts `matching`.) */
export function matchesHost(dest: string, h: HostPattern): boolean {
  const i = dest.lastIndexOf(':');
  const host = dest.slice(0, i);
  const port = Number(dest.slice(i + 1));
  const hostOk = h.wildcard ? host.endsWith(`.${h.host}`) : host === h.host;
  return hostOk && (h.port === null || h.port === port);
}

/** A list of patterns: their union; `'any'` is every well-formed destination. */
export type DestList = HostPattern[] | 'any';

/**
 * Is there a well-formed destination in every `pos` list and in no `neg` list?
 *
 * Why the candidates suffice. A destination is host:port, and every pattern constrains the
 * two independently. Port: a pattern's port is one number or any, so all ports named by no
 * pattern behave alike; the candidates are the named ports and one port named by none. Host:
 * a pattern's host is an exact name H, or `*.S` (any host ending in "." + S). For a host h,
 * what matters is whether h equals some H, and the set M(h) of suffixes S it ends in ".S"
 * with. If h equals some H, H is a candidate. Otherwise, if M(h) is empty, a fresh single
 * label (equal to no H, and with no "." so ending in no ".S") behaves like h; if not, let
 * S_max be the longest element of M(h): every other S in M(h) is also a dot-suffix of h no
 * longer than S_max, hence a dot-suffix of S_max, so "fresh." + S_max (equal to no H, as
 * its first label is fresh) has exactly M(h). Well-formedness is kept: the representative of
 * a well-formed h is well-formed (S_max is a tail of h's labels after a ".", so a well-formed
 * name, and the fresh label is a valid label). Candidates are (|H| + |S| + 1) × (ports + 1).
 */
export function exactDests(pos: DestList[], neg: DestList[]): ExactAnswer<string> {
  const all = [...pos, ...neg].flatMap((l) => (l === 'any' ? [] : l));
  const labels = new Set(all.flatMap((h) => h.host.split('.')));
  let fresh = 'wardfresh';
  for (let i = 0; labels.has(fresh); i++) fresh = `wardfresh${i}`;
  const hosts = new Set<string>([fresh]);
  for (const h of all) hosts.add(h.wildcard ? `${fresh}.${h.host}` : h.host);
  const named = new Set(all.flatMap((h) => (h.port === null ? [] : [h.port])));
  let freePort = 1;
  while (named.has(freePort)) freePort++;
  const ports = [...named, freePort];
  const inList = (d: string, l: DestList) => (l === 'any' ? true : l.some((h) => matchesHost(d, h)));
  let candidates = 0;
  for (const host of hosts) {
    for (const port of ports) {
      const d = `${host}:${port}`;
      candidates++;
      if (isWellFormedDest(d) && pos.every((l) => inList(d, l)) && !neg.some((l) => inList(d, l))) return { status: 'sat', witness: d, candidates };
    }
  }
  return { status: 'unsat', candidates };
}

/** For tests: is the path `p` in the pattern (re-exported so the tests use the one matcher). */
export { inPattern };
