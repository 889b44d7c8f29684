/**
 * The targets dynamic rules and invariants talk about: path patterns and destination
 * patterns, parsed from policy text and matched against concrete paths and host:port strings.
 * Pure functions (the only outside fact is the ExpandContext passed in).
 *
 * Path patterns (after `~` and `${...}` expansion, exactly as filesystem paths are expanded):
 *   /a/b  or  /a/b/**   the path and everything below it
 *   /a/** /NAME         any entry called NAME at any depth below /a, and everything below it
 *                       (written without the space; NAME is one plain segment, e.g. .env)
 * Destination patterns: `*` (any destination), `host:port`, `*.example.com:port` (any name
 * below example.com), `host:*` (any port). Host names are compared in lower case.
 *
 * Matching assumes canonical paths (absolute, no `.`/`..`, no symlinks): the enforcer
 * canonicalises before it asks, as the static layers do.
 */
import { expandPath, isWithin, type ExpandContext } from '../policy/expand.js';

export type ParseResult = { ok: true; pattern: string } | { ok: false; problem: string; fix: string };

const NAMED = '/**/';

/** Parses a path pattern into its expanded form (`/a/b`, or `/a/**` + `/NAME` for a named-below). */
export function parsePathPattern(raw: string, ctx: ExpandContext): ParseResult {
  const i = raw.indexOf(NAMED);
  if (i >= 0) {
    const name = raw.slice(i + NAMED.length);
    if (name === '' || name.includes('/') || /[*?[\]{}\u0000-\u001f]/.test(name) || name === '.' || name === '..') {
      return { ok: false, problem: `"${raw}": after "/**/" comes one plain name (such as .env)`, fix: 'write DIR/**/NAME, e.g. "${WORKSPACE}/**/.env", or DIR/** for everything below DIR' };
    }
    const dir = expandPath(raw.slice(0, i) || '/', ctx);
    if (!dir.ok) return dir;
    return { ok: true, pattern: `${dir.path === '/' ? '' : dir.path}${NAMED}${name}` };
  }
  const r = expandPath(raw, ctx);
  return r.ok ? { ok: true, pattern: r.path } : r;
}

/** A parsed path pattern as data: a subtree, or a name at any depth below a directory. */
export type PathShape = { kind: 'subtree'; path: string } | { kind: 'named-below'; dir: string; name: string };

export function pathShape(pattern: string): PathShape {
  const i = pattern.indexOf(NAMED);
  if (i < 0) return { kind: 'subtree', path: pattern };
  return { kind: 'named-below', dir: pattern.slice(0, i) || '/', name: pattern.slice(i + NAMED.length) };
}

/**
 * The pattern with its root (the subtree, or the directory of a named-below) replaced by
 * `real(root)`: the real path the kernel reaches by that name (src/paths.ts realPrefix, passed
 * in so that this module stays pure). Matching is on canonical paths, so a pattern written
 * through a symlink (`/bin/**` where /bin -> usr/bin) matches nothing until resolved.
 */
export function resolvePathPattern(pattern: string, real: (p: string) => string): string {
  const s = pathShape(pattern);
  if (s.kind === 'subtree') return real(s.path);
  const dir = real(s.dir);
  return `${dir === '/' ? '' : dir}${NAMED}${s.name}`;
}

/** Is the canonical path `p` matched by the (expanded) path pattern? */
export function matchPath(pattern: string, p: string): boolean {
  const s = pathShape(pattern);
  if (s.kind === 'subtree') return isWithin(p, s.path);
  const prefix = s.dir === '/' ? '/' : `${s.dir}/`;
  return p.startsWith(prefix) && p.slice(prefix.length).split('/').includes(s.name);
}

/**
 * A canonical path at or below the directory `dir` that the (expanded) path pattern matches, or
 * null when it matches nothing there. Exact for both shapes: a call that moves or replaces a
 * directory as a whole (a rename) changes every path below it, so it touches the pattern
 * exactly when this is not null, and the path returned is one such change (the event the call
 * is, for a rule waiting on the pattern). `matchPath(pattern, x)` for some x at or below `dir`
 * holds if and only if this is not null, and then it holds for the path returned.
 */
export function matchBelow(pattern: string, dir: string): string | null {
  if (matchPath(pattern, dir)) return dir;
  const s = pathShape(pattern);
  const join = (d: string, name: string) => (d === '/' ? `/${name}` : `${d}/${name}`);
  // A subtree pattern matches below `dir` only where its root is: nothing above the root matches.
  if (s.kind === 'subtree') return isWithin(s.path, dir) ? s.path : null;
  // Below its directory, a named-below pattern matches NAME under any directory at all.
  if (isWithin(dir, s.dir) || isWithin(s.dir, dir)) return join(isWithin(dir, s.dir) ? dir : s.dir, s.name);
  return null;
}

const DEST = /^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*:(\d{1,5}|\*)$/;

/** Parses a destination pattern (lower-cased); `*` is any destination. */
export function parseDestPattern(raw: string): ParseResult {
  const d = raw.trim().toLowerCase();
  if (d === '*') return { ok: true, pattern: '*' };
  const port = d.slice(d.lastIndexOf(':') + 1);
  if (!DEST.test(d) || (port !== '*' && (Number(port) < 1 || Number(port) > 65535))) {
    return { ok: false, problem: `"${raw}" is not a destination pattern`, fix: 'write "*" (any destination), "host:port", "*.example.com:443" or "host:*"' };
  }
  return { ok: true, pattern: d };
}

/** Is the destination "host:port" matched by the pattern? */
export function matchDest(pattern: string, dest: string): boolean {
  if (pattern === '*') return true;
  const i = dest.lastIndexOf(':');
  const j = pattern.lastIndexOf(':');
  if (i < 0 || j < 0) return false;
  const [host, port] = [dest.slice(0, i).toLowerCase(), dest.slice(i + 1)];
  const [phost, pport] = [pattern.slice(0, j), pattern.slice(j + 1)];
  if (pport !== '*' && pport !== port) return false;
  if (phost.startsWith('*.')) {
    const suffix = phost.slice(1); // ".example.com"
    return host.endsWith(suffix) && host.length > suffix.length;
  }
  return host === phost;
}
