/**
 * The policy as sets of accesses: plain data, no solver. Each set is "the paths under these
 * grants, minus the paths under these denies", which is exactly how the loader and the mount
 * planner read an effective policy (a directory grant covers everything below it; deny wins,
 * whatever the order). The SMT layer (../smt/encode.ts) turns each set into one regular
 * expression; keeping this step solver-free lets a reviewer check it against
 * plan/mounts.ts in one sitting.
 *
 * Rights follow Landlock's rules as compiled (plan/mounts.ts RIGHTS_OF): read -> r, write -> rw,
 * execute -> rx, append -> r (the sandbox gets read; its writes are made appends by the
 * supervisor, which alone writes through the append file's writable bind). `visible` paths are
 * neither readable nor writable by themselves: they only make a name exist. A grant above a
 * visible path still covers it here, as in Landlock (which cannot subtract); the supervisor's
 * refusal of its opens is accounted for by visible-not-readable (./index.ts).
 *
 * The sandbox is built on real paths: plan/mounts.ts binds each grant, sets its Landlock rule
 * and masks each deny at the path the host resolves it to. So every grant is in its set twice,
 * as written and as resolved (`/bin` and `/usr/bin` on a merged-/usr host; a link in a granted
 * directory and the workspace it points into): a property about either name sees it. A deny is
 * subtracted under every name that leads to what it masks: as written, as resolved, and its real
 * path seen through each grant's symlinked name. The property's own paths (secrets, Ward's
 * state, an invariant's pattern) are taken both ways too (patternForms). Over-approximating the
 * grants keeps every PROVED sound; the cost is a VIOLATED about a name the host's links would
 * send elsewhere (a link in a read-only grant, named by an invariant).
 *
 * A deny under a grant is enforced by a mode-0000 mask mounted at the denied path, so its name
 * is listed (`ls -la ~` shows `d--------- .ssh`) while its contents are gone: the `see` set
 * subtracts only what lies strictly below such a deny.
 */
import path from 'node:path';
import { expandPath, isWithin } from '../../policy/expand.js';
import type { EffectivePolicy } from '../../policy/load.js';
import { ALL_SECRET_PATHS, wardStatePaths } from '../../policy/secrets.js';
import { pathShape } from '../../rules/pattern.js';
import { realPrefix } from '../../paths.js';

/** A regular set of canonical absolute paths. */
export type PathPattern =
  /** `path` itself and everything below it. */
  | { kind: 'subtree'; path: string }
  /** Everything strictly below `path`, not `path` itself: what a mask at `path` hides while its name shows. */
  | { kind: 'below'; path: string }
  /** Any entry called `name` at any depth below `dir` (and everything below that entry). */
  | { kind: 'named-below'; dir: string; name: string };

export interface PathSet {
  include: PathPattern[];
  exclude: PathPattern[];
}

export type Access = 'read' | 'write' | 'append' | 'execute' | 'see';
export const ACCESSES: readonly Access[] = ['read', 'write', 'append', 'execute', 'see'];

/** A network destination pattern: a `network.allow` entry, or a `network.allow_local` port. */
export interface HostPattern {
  /** The destination pattern ("host:port"; for allow_local "127.0.0.1:PORT"). */
  entry: string;
  /** The policy key that grants it (absent: a pattern that is no grant, e.g. a rule's). */
  key?: 'network.allow' | 'network.allow_local';
  /** The exact host, or for `*.example.com` the suffix `example.com`. */
  host: string;
  wildcard: boolean;
  /** null: any port (`:*`). */
  port: number | null;
}

const subtrees = (paths: string[]): PathPattern[] => paths.map((p) => ({ kind: 'subtree', path: p }));

/** Where a path leads on this host (paths.ts realPrefix); tests pass their own. */
export type Resolve = (p: string) => string;

type GrantKey = 'read' | 'write' | 'execute' | 'append';
const GRANT_KEYS: readonly GrantKey[] = ['read', 'write', 'execute', 'append'];

/** A grant as written and where it leads on this host. */
export interface HostGrant {
  key: GrantKey | 'visible';
  written: string;
  real: string;
}

/** The policy's paths as the sandbox is built on them (see the header). */
export interface HostView {
  grants: HostGrant[];
  /** Every name that leads to a denied place; `masked`: a grant's bind would expose it, so a mask is mounted there and its name shows. */
  denied: { path: string; masked: boolean; deny: string }[];
}

const unique = <T>(xs: T[]): T[] => [...new Set(xs)];

/** `inner` (a path within `outer`) moved under `to`: the same place, named through `to`. */
function rebase(inner: string, outer: string, to: string): string {
  const rel = path.posix.relative(outer, inner);
  return rel === '' ? to : path.posix.join(to, rel);
}

export function hostView(eff: EffectivePolicy, resolve: Resolve = realPrefix): HostView {
  const fs = eff.filesystem;
  const grants: HostGrant[] = [...GRANT_KEYS, 'visible' as const].flatMap((key) => fs[key].map((e) => ({ key, written: e.path, real: resolve(e.path) })));
  const real = grants.filter((g) => g.key !== 'visible');
  const denied: HostView['denied'] = [];
  for (const d of fs.deny) {
    const r = resolve(d.path);
    // The planner drops a grant at or below a denied real path, and masks a denied real path
    // below a grant: through a symlinked grant the same place has another name.
    const through = real.filter((g) => g.written !== g.real).flatMap((g) => (isWithin(r, g.real) ? [rebase(r, g.real, g.written)] : isWithin(g.real, r) ? [g.written] : []));
    for (const name of unique([d.path, r, ...through])) {
      // Masked when a grant's bind lies strictly above it (plan/mounts.ts masks only there).
      const masked = real.some((g) => name !== g.written && name !== g.real && (isWithin(name, g.written) || isWithin(name, g.real)));
      denied.push({ path: name, masked, deny: d.path });
    }
  }
  return { grants, denied };
}

const formsOf = (grants: HostGrant[], keys: readonly HostGrant['key'][]): string[] => unique(grants.filter((g) => keys.includes(g.key)).flatMap((g) => [g.written, g.real]));

/** What the policy lets a sandboxed process do, per kind of access, on the paths as written and as resolved. */
export function accessSets(eff: EffectivePolicy, resolve: Resolve = realPrefix): Record<Access, PathSet> {
  const view = hostView(eff, resolve);
  // One entry per name (two denies can lead to one place; being masked depends on the name only).
  const denied = [...new Map(view.denied.map((d) => [d.path, d] as const)).values()];
  const exclude = subtrees(denied.map((d) => d.path));
  const set = (...keys: GrantKey[]): PathSet => ({ include: subtrees(formsOf(view.grants, keys)), exclude });
  const visibleForms = formsOf(view.grants, ['visible']);
  // A masked deny hides what is below it, not its own name. One under a visible-only bind and
  // no grant is not masked at all (that bind shows it whole), so nothing of it is subtracted.
  const seeExclude = denied.flatMap((d): PathPattern[] => {
    if (d.masked) return [{ kind: 'below', path: d.path }];
    if (visibleForms.some((v) => isWithin(d.path, v) && d.path !== v)) return [];
    return [{ kind: 'subtree', path: d.path }];
  });
  return {
    read: set('read', 'write', 'execute', 'append'),
    write: set('write'),
    // Writing a file includes appending to it.
    append: set('append', 'write'),
    // Only Landlock restricts execute (the mount layer sets no noexec): without it, every
    // readable file can be run.
    execute: eff.sandbox.landlock === 'off' ? set('read', 'write', 'execute', 'append') : set('execute'),
    // The name exists in the sandbox: any grant at all, visible-only included.
    see: { include: subtrees(formsOf(view.grants, [...GRANT_KEYS, 'visible'])), exclude: seeExclude },
  };
}

/**
 * The private, empty, writable tmpfs directories the mount plan makes (plan/mounts.ts): /tmp,
 * and $HOME with `sandbox.home: tmpfs`, unless a grant at or above one binds the host's
 * directory there instead, or a deny covers it. They hold nothing of the host, so the path sets
 * leave them out; they matter where writing is half of the question (W^X).
 */
export function privateDirs(eff: EffectivePolicy, home: string, resolve: Resolve = realPrefix): string[] {
  const view = hostView(eff, resolve);
  const grants = formsOf(view.grants, GRANT_KEYS);
  const dirs = ['/tmp', ...(eff.sandbox.home === 'tmpfs' && home !== '/' ? [home] : [])];
  return dirs.filter((d) => !grants.some((g) => isWithin(d, g)) && !view.denied.some((x) => isWithin(d, x.path)));
}

/** The paths of `visible` entries (minus deny): names whose bytes must never be readable. */
export function visibleSet(eff: EffectivePolicy, resolve: Resolve = realPrefix): PathSet {
  const view = hostView(eff, resolve);
  return { include: subtrees(formsOf(view.grants, ['visible'])), exclude: subtrees(unique(view.denied.map((d) => d.path))) };
}

/** The paths of `append` entries: files that may grow but never be rewritten. */
export function appendOnlySet(eff: EffectivePolicy, resolve: Resolve = realPrefix): PathSet {
  return { include: subtrees(formsOf(hostView(eff, resolve).grants, ['append'])), exclude: [] };
}

/**
 * What lies inside Ward's own state (audit logs), config (signing keys) and cache (launcher),
 * for this user, by name and by real path. Inside, not the directories themselves: where a
 * grant covers their parent, the mandatory deny masks each one, and a mask's name shows.
 */
export function wardStateSet(env: NodeJS.ProcessEnv, home: string, resolve: Resolve = realPrefix): PathSet {
  const dirs = unique(wardStatePaths(env, home).flatMap((p) => [path.posix.normalize(p), resolve(path.posix.normalize(p))]));
  return { include: dirs.map((p): PathPattern => ({ kind: 'below', path: p })), exclude: [] };
}

/**
 * The secrets no policy may expose: Ward's mandatory list (ALL_SECRET_PATHS), Ward's own state,
 * and any file named `.env` at any depth in the workspace, each by name and by real path. The
 * list is the property's, not the policy's: a policy that forgets to deny one of these is what
 * the property catches.
 */
export function secretSet(eff: EffectivePolicy, env: NodeJS.ProcessEnv, home: string, resolve: Resolve = realPrefix): PathSet {
  const ctx = { home, workspace: eff.workspace, nodePrefix: '/' };
  const paths: string[] = [];
  for (const raw of [...ALL_SECRET_PATHS, ...wardStatePaths(env, home)]) {
    const r = expandPath(raw, ctx);
    if (r.ok) paths.push(r.path, resolve(r.path));
  }
  const envFiles = unique([eff.workspace, resolve(eff.workspace)]).map((dir): PathPattern => ({ kind: 'named-below', dir, name: '.env' }));
  return { include: [...subtrees(unique(paths)), ...envFiles], exclude: [] };
}

/**
 * A path pattern (rules/pattern.ts syntax: `/a/b`, `/a/**` + `/NAME`) as written and as it
 * resolves on this host: `never exec /bin/**` is about /usr/bin too on a merged-/usr host, and
 * a pattern whose tail does not exist yet resolves by its longest existing prefix.
 */
export function patternForms(pattern: string, resolve: Resolve = realPrefix): PathPattern[] {
  const s = pathShape(pattern);
  const r: PathPattern = s.kind === 'subtree' ? { kind: 'subtree', path: resolve(s.path) } : { kind: 'named-below', dir: resolve(s.dir), name: s.name };
  return JSON.stringify(r) === JSON.stringify(s) ? [s] : [s, r];
}

/**
 * The grants behind an access to `p`, as a reviewer finds them in the policy file (a grant
 * through a symlink named with where it leads), and when `p` is a masked deny, why its name shows.
 */
export function grantsBehind(eff: EffectivePolicy, p: string, resolve: Resolve = realPrefix): string {
  const view = hostView(eff, resolve);
  const covering = view.grants.flatMap((g) => (isWithin(p, g.written) ? [`${g.key} ${g.written}`] : isWithin(p, g.real) ? [`${g.key} ${g.written} (which leads to ${g.real})`] : []));
  if (covering.length === 0) return 'covered by no grant';
  const mask = view.denied.find((d) => d.masked && d.path === p);
  if (mask) {
    return `granted by: ${covering.join(', ')}; deny ${mask.deny} is enforced there by a mode-0000 mask mounted at ${p}, which hides its contents but not its name (\`ls\` lists it); to hide the name too, do not grant its parent: grant only the directories the command needs`;
  }
  return `granted by: ${covering.join(', ')}; no deny covers it`;
}

/** Is the canonical path `p` in the pattern? (The plain matcher every solver answer is checked against.) */
export function inPattern(p: string, pat: PathPattern): boolean {
  if (pat.kind === 'subtree') return isWithin(p, pat.path);
  if (pat.kind === 'below') return p !== pat.path && isWithin(p, pat.path);
  const prefix = pat.dir === '/' ? '/' : `${pat.dir}/`;
  return p.startsWith(prefix) && p.slice(prefix.length).split('/').includes(pat.name);
}

/** Is the canonical path `p` in the set (in an include, in no exclude)? */
export function inSet(p: string, s: PathSet): boolean {
  return s.include.some((i) => inPattern(p, i)) && !s.exclude.some((e) => inPattern(p, e));
}

/**
 * Every destination the policy lets the sandbox connect to: the `network.allow` entries
 * (already validated by the schema and lower-cased by the loader), and each
 * `network.allow_local` port as `127.0.0.1:PORT`, the name the egress broker gives that
 * connection in its events and checks rule revocations against (src/net/broker.ts). Leaving
 * allow_local out would let "never connect *" be proved for a policy that reaches the host's
 * database.
 */
export function hostPatterns(eff: EffectivePolicy): HostPattern[] {
  const allow = eff.network.allow.map((entry): HostPattern => ({ ...parseHostEntry(entry), key: 'network.allow' }));
  const local = eff.network.allow_local.map((port): HostPattern => ({ entry: `${LOOPBACK}:${port}`, key: 'network.allow_local', host: LOOPBACK, wildcard: false, port }));
  return [...allow, ...local];
}

/** A "host:port" entry of the schema's HostPort form (lower-cased), as a pattern. */
export function parseHostEntry(entry: string): HostPattern {
  const i = entry.lastIndexOf(':');
  const host = entry.slice(0, i);
  const port = entry.slice(i + 1);
  const wildcard = host.startsWith('*.');
  return { entry, host: wildcard ? host.slice(2) : host, wildcard, port: port === '*' ? null : Number(port) };
}

/** The host the broker names an allow_local connection by (whatever the client wrote: 127.0.0.1 or localhost). */
export const LOOPBACK = '127.0.0.1';

/** The policy entry behind a destination grant, as a reviewer finds it in the policy file. */
export function grantText(h: HostPattern): string {
  return h.key === 'network.allow_local' ? `network.allow_local ${h.port}` : `network.allow ${h.entry}`;
}

/**
 * The egress scope a policy may declare without being "broader than declared": a specific
 * port, and either an exact host or a wildcard below a domain of two or more labels
 * (`*.github.com:443` is bounded; `*.com:443` and `api.github.com:*` are not).
 */
export function isBounded(h: HostPattern): boolean {
  if (h.port === null) return false;
  return !h.wildcard || h.host.split('.').filter(Boolean).length >= 2;
}

/** Number of path and host entries: the size the solver has to reason about. */
export function policySize(eff: EffectivePolicy): number {
  return Object.values(eff.filesystem).reduce((n, l) => n + l.length, 0) + eff.network.allow.length + eff.network.allow_local.length;
}
