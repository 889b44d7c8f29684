/**
 * "Is there a canonical path in every `pos` set and in no `neg` set?", answered by splitting
 * the question into many small ones (cells) instead of one large regular expression.
 *
 * Why: one membership query over the whole policy (a union of ~150 grants minus ~100 denies,
 * intersected with ~30 secrets) left Z3 without an answer after 10 s (BENCHMARKS.md). But the
 * sets have a simple shape: unions of patterns minus unions of patterns, where a pattern is a
 * subtree (`/a/b` and everything below), a below (everything strictly below `/a/b`) or a
 * named-below (`any entry called NAME below DIR`).
 * Distributing the intersection over the unions gives a disjunction of cells:
 *
 *   exists p. p in i_1 ∩ ... ∩ i_k  and  p in no exclude
 *
 * with one include chosen from each `pos` set, and for each `neg` set T either "p in none of
 * T's includes" or "p in one of T's excludes" (p ∉ T  <=>  p ∉ ∪T.include  or  p ∈ ∪T.exclude).
 * The answer is sat iff some cell is non-empty.
 *
 * Every pattern lies inside the subtree of its root (the subtree's or below's path, the
 * named-below's dir), and every pattern is closed downwards (if p is in it, so is every path below p). Two
 * facts follow, and they are all the prefix reasoning used here:
 *   1. Includes whose roots are not nested (neither within the other) are disjoint: the cell
 *      is empty. Otherwise the cell lies in the subtree of the deepest root, `root`.
 *   2. If `root` itself is in an exclude, the whole subtree of `root` is, so the cell is empty.
 * When every include is a subtree the cell *is* the subtree of `root` minus the excludes, so
 * it is non-empty exactly when `root` is not excluded, and `root` is the witness. When a
 * named-below or below include takes part, a few candidate paths are tried with the plain matcher (a
 * concrete path that is in the cell is a proof of sat on its own); if none is, the solver
 * decides that cell, with only the excludes that can meet it.
 *
 * test/verify/decide.test.ts checks every cell decided here against Z3 on random policies.
 *
 * No answer rests on Z3 (or on the prefix reasoning) alone: every answer of decidePaths and
 * decideDests is compared with an exact decision procedure written in TypeScript
 * (./exact.ts), and every witness with the plain matcher. An `unsat` becomes a proof only
 * when the exact procedure finds no witness either; any disagreement is an `error` (a
 * verification ERROR, never PROVED and never a silent VIOLATED), because it means one of the
 * two deciders is wrong and the report cannot say which answer to trust.
 */
import { isWithin } from '../../policy/expand.js';
import { destinations, type Encoder } from '../smt/encode.js';
import { check, type CheckFn } from '../smt/z3.js';
import { exactDests, exactPaths, isCanonical, isWellFormedDest, matchesHost, type DestList } from './exact.js';
import { inPattern, inSet, type PathPattern, type PathSet } from './model.js';

export interface Cell {
  /** The deepest include root: the cell lies in this subtree. */
  root: string;
  include: PathPattern[];
  exclude: PathPattern[];
}

/** `error`: the deciders disagree (see the header); the reason names both answers. */
export type Witness = { status: 'sat'; path: string } | { status: 'unsat' } | { status: 'unknown'; reason: string } | { status: 'error'; reason: string };
export type CellDecision = { status: 'sat'; path: string } | { status: 'unsat' } | { status: 'open' };

export interface DecideStats {
  cells: number;
  solverCalls: number;
  /** Candidates the exact second opinion tried. */
  exactCandidates?: number;
}

/** Above this many cells the split is abandoned for one query over the whole sets. */
export const MAX_CELLS = 200_000;

export function rootOf(p: PathPattern): string {
  return p.kind === 'named-below' ? p.dir : p.path;
}

/** The cells of the question (lazily: the caller stops at the first non-empty one). */
export function* splitCells(pos: PathSet[], neg: PathSet[]): Generator<Cell> {
  type Choice = { include?: PathPattern; exclude: PathPattern[] };
  const groups: Choice[][] = [
    ...pos.map((s) => s.include.map((i): Choice => ({ include: i, exclude: s.exclude }))),
    ...neg.map((t): Choice[] => [{ exclude: t.include }, ...t.exclude.map((e): Choice => ({ include: e, exclude: [] }))]),
  ];
  function* walk(k: number, root: string, include: PathPattern[], exclude: PathPattern[]): Generator<Cell> {
    // Fact 2: an exclude holding `root` holds the whole cell (later includes only shrink it).
    if (exclude.some((e) => inPattern(root, e))) return;
    if (k === groups.length) {
      yield { root, include, exclude };
      return;
    }
    for (const c of groups[k]!) {
      let r = root;
      if (c.include) {
        const ir = rootOf(c.include);
        if (isWithin(ir, r)) r = ir;
        else if (!isWithin(r, ir)) continue; // fact 1: disjoint
      }
      yield* walk(k + 1, r, c.include ? [...include, c.include] : include, c.exclude.length > 0 ? [...exclude, ...c.exclude] : exclude);
    }
  }
  yield* walk(0, '/', [], []);
}

export function inCell(p: string, cell: Cell): boolean {
  return cell.include.every((i) => inPattern(p, i)) && !cell.exclude.some((e) => inPattern(p, e));
}

const join = (dir: string, ...segs: string[]): string => (dir === '/' ? '' : dir) + segs.map((s) => `/${s}`).join('') || '/';

/** Decides a cell without the solver where prefix reasoning is exact; `open` otherwise. */
export function decideCell(cell: Cell): CellDecision {
  const allSubtrees = cell.include.every((i) => i.kind === 'subtree');
  const names = [...new Set(cell.include.flatMap((i) => (i.kind === 'named-below' ? [i.name] : [])))];
  // A `below` include never holds its own path: its candidates lie under the root.
  const candidates = allSubtrees ? [cell.root] : [cell.root, ...(names.length > 0 ? [join(cell.root, ...names)] : []), join(cell.root, 'sub', ...names)];
  for (const c of candidates) if (inCell(c, cell)) return { status: 'sat', path: c };
  // All subtrees: the cell is subtree(root) minus the excludes, and root is out, so (every
  // exclude being closed downwards) the whole subtree is out.
  if (allSubtrees) return { status: 'unsat' };
  return { status: 'open' };
}

/** The excludes that can meet the cell: the others are disjoint from its subtree (fact 1). */
function relevantExcludes(cell: Cell): PathPattern[] {
  return cell.exclude.filter((e) => isWithin(rootOf(e), cell.root) || isWithin(cell.root, rootOf(e)));
}

/** Asks Z3 for a canonical path in every `include` set and in no `exclude` set. */
async function solve(enc: Encoder, include: PathSet[], exclude: PathSet[], timeoutMs: number, solverCheck: CheckFn = check): Promise<Witness> {
  const { ctx } = enc;
  const p = ctx.String.const('p');
  const re = enc.intersect(...include.map(enc.pathSet), ...exclude.map((s) => ctx.Complement(enc.pathSet(s))));
  const r = await solverCheck(ctx, ctx.InRe(p, re), timeoutMs);
  if (r.status !== 'sat') return r;
  // Ask again for a printable witness (any witness is a valid counterexample; a readable one
  // is a better one). If that second question has no answer, keep the first model.
  const nicer = await solverCheck(ctx, ctx.InRe(p, ctx.Intersect(re, enc.printable)), Math.min(timeoutMs, 2000));
  const model = nicer.status === 'sat' ? nicer.model : r.model;
  const v = model.eval(p, true);
  if (!ctx.isString(v)) return { status: 'unknown', reason: 'the model has no string value for the path' };
  return { status: 'sat', path: v.asString() };
}

/** Z3 on one cell: its includes intersected, minus the excludes that can meet it. */
export function solveCell(enc: Encoder, cell: Cell, timeoutMs: number, solverCheck: CheckFn = check): Promise<Witness> {
  const ex = relevantExcludes(cell);
  return solve(enc, cell.include.map((i) => ({ include: [i], exclude: [] })), ex.length > 0 ? [{ include: ex, exclude: [] }] : [], timeoutMs, solverCheck);
}

/** Z3 on the whole question at once, as before the split (the reference the split is tested against). */
export function solveWhole(enc: Encoder, pos: PathSet[], neg: PathSet[], timeoutMs: number, solverCheck: CheckFn = check): Promise<Witness> {
  return solve(enc, pos, neg, timeoutMs, solverCheck);
}

/**
 * A canonical path in every `pos` set and in no `neg` set, or a proof there is none: the split
 * procedure below (prefix reasoning, Z3 on the open cells), then the exact procedure's second
 * opinion (see the header). `solverCheck` is Z3's check unless a test injects a wrong one.
 */
export async function decidePaths(
  enc: Encoder,
  pos: PathSet[],
  neg: PathSet[],
  timeoutMs: number,
  stats: DecideStats = { cells: 0, solverCalls: 0 },
  solverCheck: CheckFn = check,
): Promise<Witness> {
  const first = await splitDecide(enc, pos, neg, timeoutMs, stats, solverCheck);
  if (first.status === 'unknown' || first.status === 'error') return first;
  const second = exactPaths(pos, neg);
  if (second.status === 'too-large') {
    return first.status === 'sat' ? first : { status: 'unknown', reason: `no independent confirmation of the solver's "no such path": ${second.reason}` };
  }
  stats.exactCandidates = (stats.exactCandidates ?? 0) + second.candidates;
  if (first.status === 'sat' && second.status === 'sat') return first;
  if (first.status === 'unsat' && second.status === 'unsat') return first;
  return first.status === 'unsat'
    ? { status: 'error', reason: `deciders disagree: Z3 and prefix reasoning found no such path, the exact procedure found ${JSON.stringify(second.status === 'sat' ? second.witness : '')} (confirmed by the matcher)` }
    : { status: 'error', reason: `deciders disagree: ${JSON.stringify(first.path)} is such a path (confirmed by the matcher), the exact procedure found none` };
}

/** The split procedure (the header): a matcher-confirmed witness, `unsat`, `unknown`, or `error`. */
async function splitDecide(enc: Encoder, pos: PathSet[], neg: PathSet[], timeoutMs: number, stats: DecideStats, solverCheck: CheckFn): Promise<Witness> {
  // A witness the matcher rejects (or that is no canonical path) means Z3, the encoding or the
  // prefix reasoning answered wrongly: an error, as a wrong `sat` would otherwise be shown as
  // a counterexample that is none.
  const confirm = (path: string): Witness =>
    isCanonical(path) && pos.every((s) => inSet(path, s)) && !neg.some((s) => inSet(path, s))
      ? { status: 'sat', path }
      : { status: 'error', reason: `deciders disagree: the witness ${JSON.stringify(path)} is not a canonical path in the sets by the TypeScript matcher` };
  const open: Cell[] = [];
  for (const cell of splitCells(pos, neg)) {
    if (++stats.cells > MAX_CELLS) {
      stats.solverCalls++;
      const w = await solveWhole(enc, pos, neg, timeoutMs, solverCheck);
      return w.status === 'sat' ? confirm(w.path) : w;
    }
    const d = decideCell(cell);
    if (d.status === 'sat') return confirm(d.path);
    if (d.status === 'open') open.push(cell);
  }
  // Only cells the prefix reasoning could not settle reach the solver: any of them non-empty
  // is a counterexample; all of them empty (and every other cell empty) is the proof.
  const unknown: string[] = [];
  for (const cell of open) {
    stats.solverCalls++;
    const w = await solveCell(enc, cell, timeoutMs, solverCheck);
    if (w.status === 'sat') return confirm(w.path);
    if (w.status === 'error') return w;
    if (w.status === 'unknown') unknown.push(w.reason);
  }
  if (unknown.length > 0) return { status: 'unknown', reason: `${unknown.length} of ${open.length} solver queries unanswered (${unknown[0]})` };
  return { status: 'unsat' };
}

// ---------------------------------------------------------------------------
// Destinations

export type DestWitness = { status: 'sat'; dest: string } | { status: 'unsat' } | { status: 'unknown'; reason: string } | { status: 'error'; reason: string };

/**
 * A well-formed destination ("host:port") in every `pos` list and in no `neg` list (a list is
 * the union of its patterns, `'any'` every destination), or a proof there is none: Z3 over the
 * regular expressions of ../smt/encode.ts, its witness checked by the plain matcher, and every
 * answer compared with the exact procedure (./exact.ts), a disagreement being an `error`.
 */
export async function decideDests(enc: Encoder, pos: DestList[], neg: DestList[], timeoutMs: number, solverCheck: CheckFn = check): Promise<DestWitness> {
  const inList = (d: string, l: DestList) => l === 'any' || l.some((h) => matchesHost(d, h));
  let first: DestWitness;
  if (pos.some((l) => l !== 'any' && l.length === 0)) first = { status: 'unsat' }; // an empty union: nothing to find
  else {
    const { ctx } = enc;
    const d = destinations(ctx);
    const re = (l: DestList) => (l === 'any' ? d.wellFormed : d.matching(l));
    const dst = ctx.String.const('dst');
    const negs = neg.filter((l) => l === 'any' || l.length > 0);
    const all = ctx.Intersect(d.wellFormed, ...pos.map(re), ...negs.map((l) => ctx.Complement(re(l))));
    const r = await solverCheck(ctx, ctx.InRe(dst, all), timeoutMs);
    if (r.status === 'unknown') return r;
    if (r.status === 'unsat') first = r;
    else {
      const v = r.model.eval(dst, true);
      if (!ctx.isString(v)) return { status: 'unknown', reason: 'the model has no value for the destination' };
      const dest = v.asString();
      if (!isWellFormedDest(dest) || !pos.every((l) => inList(dest, l)) || neg.some((l) => inList(dest, l))) {
        return { status: 'error', reason: `deciders disagree: Z3's destination ${JSON.stringify(dest)} is not in the sets by the TypeScript matcher` };
      }
      first = { status: 'sat', dest };
    }
  }
  const second = exactDests(pos, neg);
  if (second.status === 'too-large') return first.status === 'sat' ? first : { status: 'unknown', reason: second.reason };
  if (first.status === second.status) return first;
  return first.status === 'unsat'
    ? { status: 'error', reason: `deciders disagree: Z3 found no such destination, the exact procedure found ${JSON.stringify(second.status === 'sat' ? second.witness : '')} (confirmed by the matcher)` }
    : { status: 'error', reason: `deciders disagree: ${JSON.stringify(first.status === 'sat' ? first.dest : '')} is such a destination (confirmed by the matcher), the exact procedure found none` };
}
