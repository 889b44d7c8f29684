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
 */
import path from 'node:path';
import { expandPath, isWithin } from '../../policy/expand.js';
import type { EffectivePolicy } from '../../policy/load.js';
import { SECRET_PATHS, wardStatePaths } from '../../policy/secrets.js';

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

/** What the policy lets a sandboxed process do, per kind of access. */
export function accessSets(eff: EffectivePolicy): Record<Access, PathSet> {
  const fs = eff.filesystem;
  const of = (...keys: (keyof EffectivePolicy['filesystem'])[]) => keys.flatMap((k) => fs[k].map((e) => e.path));
  const exclude = subtrees(of('deny'));
  const set = (...keys: (keyof EffectivePolicy['filesystem'])[]): PathSet => ({ include: subtrees(of(...keys)), exclude });
  return {
    read: set('read', 'write', 'execute', 'append'),
    write: set('write'),
    // Writing a file includes appending to it.
    append: set('append', 'write'),
    // Only Landlock restricts execute (the mount layer sets no noexec): without it, every
    // readable file can be run.
    execute: eff.sandbox.landlock === 'off' ? set('read', 'write', 'execute', 'append') : set('execute'),
    // The name exists in the sandbox: any grant at all, visible-only included.
    see: set('read', 'write', 'execute', 'append', 'visible'),
  };
}

/**
 * The private, empty, writable tmpfs directories the mount plan makes (plan/mounts.ts): /tmp,
 * and $HOME with `sandbox.home: tmpfs`, unless a grant at or above one binds the host's
 * directory there instead, or a deny covers it. They hold nothing of the host, so the path sets
 * leave them out; they matter where writing is half of the question (W^X).
 */
export function privateDirs(eff: EffectivePolicy, home: string): string[] {
  const fs = eff.filesystem;
  const grants = [...fs.read, ...fs.write, ...fs.execute, ...fs.append].map((e) => e.path);
  const dirs = ['/tmp', ...(eff.sandbox.home === 'tmpfs' && home !== '/' ? [home] : [])];
  return dirs.filter((d) => !grants.some((g) => isWithin(d, g)) && !fs.deny.some((e) => isWithin(d, e.path)));
}

/** The paths of `visible` entries (minus deny): names whose bytes must never be readable. */
export function visibleSet(eff: EffectivePolicy): PathSet {
  return { include: subtrees(eff.filesystem.visible.map((e) => e.path)), exclude: subtrees(eff.filesystem.deny.map((e) => e.path)) };
}

/** The paths of `append` entries: files that may grow but never be rewritten. */
export function appendOnlySet(eff: EffectivePolicy): PathSet {
  return { include: subtrees(eff.filesystem.append.map((e) => e.path)), exclude: [] };
}

/** Ward's own state (audit logs), config (signing keys) and cache (launcher), for this user. */
export function wardStateSet(env: NodeJS.ProcessEnv, home: string): PathSet {
  return { include: subtrees(wardStatePaths(env, home).map((p) => path.posix.normalize(p))), exclude: [] };
}

/**
 * The secrets no policy may expose: Ward's mandatory list (SECRET_PATHS), Ward's own state,
 * and any file named `.env` at any depth in the workspace. The list is the property's, not the
 * policy's: a policy that forgets to deny one of these is what the property catches.
 */
export function secretSet(eff: EffectivePolicy, env: NodeJS.ProcessEnv, home: string): PathSet {
  const ctx = { home, workspace: eff.workspace, nodePrefix: '/' };
  const paths: string[] = [];
  for (const raw of [...SECRET_PATHS, ...wardStatePaths(env, home)]) {
    const r = expandPath(raw, ctx);
    if (r.ok) paths.push(r.path);
  }
  return { include: [...subtrees(paths), { kind: 'named-below', dir: eff.workspace, name: '.env' }], exclude: [] };
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
