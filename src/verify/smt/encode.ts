/**
 * Path and host sets as Z3 regular expressions.
 *
 * Why one regular expression per set: Z3 answers `p InRe R` for a string variable quickly and
 * with a model, while mixing prefixOf / contains / InRe on one variable often ends in
 * `unknown` (measured: /work/shared/design/verification.md). So "p is under grant g"
 * (`p == g or prefixOf(g + "/", p)`) is written as the language `g(/.*)?`, deny is regex
 * difference, and a property "exists p. A(p) and B(p)" is one membership in A ∩ B ∩ CANON.
 *
 * CANON is the set of canonical absolute paths: "/" or ("/" SEG)+ where SEG is a non-empty
 * run of characters other than "/" and NUL, and never "." or "..". The verifier reasons about
 * canonical paths only; the enforcer canonicalises (realpath in plan/mounts.ts, Landlock on
 * inodes), so `/w/../.ssh` never meets a grant textually.
 */
import type { Re } from 'z3-solver';
import type { HostPattern, PathPattern, PathSet } from '../properties/model.js';
import type { Z3Context } from './z3.js';

type R = Re<'ward'>;

export interface Encoder {
  ctx: Z3Context;
  /** All canonical absolute paths. */
  canon: R;
  /** Printable ASCII strings: used only to ask for a readable counterexample. */
  printable: R;
  pathSet(set: PathSet): R;
  /** Paths in every one of `sets` (and canonical). */
  intersect(...res: R[]): R;
  empty: R;
}

export function encoder(ctx: Z3Context): Encoder {
  const reSort = ctx.Re.sort(ctx.String.sort());
  const lit = (s: string): R => ctx.Re.toRe(s);
  const any = ctx.AllChar(reSort);
  const empty = ctx.Empty(reSort);
  const seg = ctx.Intersect(ctx.Plus(any.diff(ctx.Union(lit('/'), lit('\u0000')))), ctx.Complement(ctx.Union(lit('.'), lit('..'))));
  const canon = ctx.Union(lit('/'), ctx.Plus(ctx.ReConcat(lit('/'), seg)));
  const below = ctx.Option(ctx.ReConcat(lit('/'), ctx.Star(any)));
  const printable = ctx.Star(ctx.Range(' ', '~'));

  const pattern = (p: PathPattern): R => {
    if (p.kind === 'subtree') return p.path === '/' ? canon : ctx.ReConcat(lit(p.path), below);
    if (p.kind === 'below') return ctx.ReConcat(lit(p.path === '/' ? '/' : `${p.path}/`), ctx.Plus(any));
    const dir = p.dir === '/' ? '' : p.dir;
    return ctx.ReConcat(lit(`${dir}/`), ctx.Star(ctx.ReConcat(seg, lit('/'))), lit(p.name), below);
  };
  const union = (ps: PathPattern[]): R => (ps.length === 0 ? empty : ps.length === 1 ? pattern(ps[0]!) : ctx.Union(...ps.map(pattern)));

  return {
    ctx,
    canon,
    printable,
    empty,
    pathSet: (set) => (set.exclude.length === 0 ? union(set.include) : union(set.include).diff(union(set.exclude))),
    intersect: (...res) => ctx.Intersect(canon, ...res),
  };
}

/**
 * Network destinations as strings "host:port", so that, like paths, every destination set is
 * one regular expression and every question one membership (mixing string equality, InRe and
 * integer constraints on a host/port pair took seconds per query; this takes milliseconds).
 */
export interface Destinations {
  /** Well-formed destinations: a DNS-style name or [ipv6], ":", a port 1..65535 in decimal. */
  wellFormed: R;
  /** The destinations matched by one of `patterns`. */
  matching(patterns: HostPattern[]): R;
}

export function destinations(ctx: Z3Context): Destinations {
  const lit = (s: string): R => ctx.Re.toRe(s);
  const reSort = ctx.Re.sort(ctx.String.sort());
  const digit = ctx.Range('0', '9');
  // A label starts with a letter, digit or underscore (never "-"), so counterexamples read as
  // names a resolver would accept.
  const label = ctx.ReConcat(ctx.Union(ctx.Range('a', 'z'), digit, lit('_')), ctx.Star(ctx.Union(ctx.Range('a', 'z'), digit, lit('-'), lit('_'))));
  const dnsName = ctx.ReConcat(label, ctx.Star(ctx.ReConcat(lit('.'), label)));
  const ipv6 = ctx.ReConcat(lit('['), ctx.Plus(ctx.Union(digit, ctx.Range('a', 'f'), lit(':'))), lit(']'));
  // 1..65535 without leading zeros.
  const port = ctx.Union(
    ctx.ReConcat(ctx.Range('1', '9'), digit.loop(0, 3)),
    ctx.ReConcat(ctx.Range('1', '5'), digit.power(4)),
    ctx.ReConcat(lit('6'), ctx.Range('0', '4'), digit.power(3)),
    ctx.ReConcat(lit('65'), ctx.Range('0', '4'), digit.power(2)),
    ctx.ReConcat(lit('655'), ctx.Range('0', '2'), digit),
    ctx.ReConcat(lit('6553'), ctx.Range('0', '5')),
  );
  const one = (h: HostPattern): R => {
    // `*.example.com` is a suffix constraint on whole labels: a.example.com and a.b.example.com
    // match; example.com and evilexample.com do not.
    const host = h.wildcard ? ctx.ReConcat(dnsName, lit(`.${h.host}`)) : lit(h.host);
    return ctx.ReConcat(host, lit(':'), h.port === null ? port : lit(String(h.port)));
  };
  return {
    wellFormed: ctx.ReConcat(ctx.Union(dnsName, ipv6), lit(':'), port),
    matching: (patterns) => (patterns.length === 0 ? ctx.Empty(reSort) : ctx.Union(...patterns.map(one))),
  };
}
