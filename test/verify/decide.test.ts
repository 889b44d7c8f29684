// The split path decision (src/verify/properties/decide.ts) against Z3, on random policies.
// Every cell the prefix reasoning decides alone is re-asked to Z3 and must get the same
// answer; the split's overall answer must be the unsplit query's. The trees are small and the
// names collide on purpose (a, b, .env at several depths), so nested grants, denies above and
// below, and named-below patterns meet often. The exact procedure (src/verify/properties/exact.ts)
// is the third party: it must agree with both, on every question.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideCell, decidePaths, inCell, solveCell, solveWhole, splitCells } from '../../src/verify/properties/decide.js';
import { exactPaths } from '../../src/verify/properties/exact.js';
import { inSet, type PathPattern, type PathSet } from '../../src/verify/properties/model.js';
import { encoder } from '../../src/verify/smt/encode.js';
import { z3 } from '../../src/verify/smt/z3.js';
import { rng } from '../helpers.js';

const SEGS = ['a', 'b', '.env', 'c'];
function randomPath(r: () => number): string {
  const depth = Math.floor(r() * 4); // 0..3 below /r
  let p = '/r';
  for (let i = 0; i < depth; i++) p += `/${SEGS[Math.floor(r() * SEGS.length)]}`;
  return r() < 0.05 ? '/' : p;
}
function randomPattern(r: () => number, namedRate: number, belowRate: number): PathPattern {
  if (r() < namedRate) return { kind: 'named-below', dir: randomPath(r), name: r() < 0.6 ? '.env' : 'b' };
  // Drawn only when asked for, so the questions of the seeds without it stay what they were.
  if (belowRate > 0 && r() < belowRate) return { kind: 'below', path: randomPath(r) };
  return { kind: 'subtree', path: randomPath(r) };
}
function randomSet(r: () => number, namedRate: number, belowRate = 0): PathSet {
  const n = 1 + Math.floor(r() * 4);
  const m = Math.floor(r() * 4);
  return { include: Array.from({ length: n }, () => randomPattern(r, namedRate, belowRate)), exclude: Array.from({ length: m }, () => randomPattern(r, namedRate, belowRate)) };
}

describe('split path decision vs Z3 (differential)', () => {
  // Seeds 1..150: subtrees and named-belows, as always; 151..230 add `below` patterns (a mask's
  // contents), which prefix reasoning leaves to Z3 and the exact procedure answers with its
  // extra T + [F] candidate.
  it('every cell decided by prefix reasoning agrees with Z3, and the overall answers agree, on 230 random questions', async () => {
    const enc = encoder(await z3());
    let decidedCells = 0;
    let openCells = 0;
    let sat = 0;
    for (let seed = 1; seed <= 230; seed++) {
      const r = rng(seed);
      const namedRate = seed % 3 === 0 ? 0 : 0.3; // a third of the questions use subtrees only
      const belowRate = seed > 150 ? 0.3 : 0;
      const pos = Array.from({ length: 1 + Math.floor(r() * 2) }, () => randomSet(r, namedRate, belowRate));
      const neg = Array.from({ length: Math.floor(r() * 2) }, () => randomSet(r, namedRate, belowRate));
      const where = `seed ${seed}: pos ${JSON.stringify(pos)} neg ${JSON.stringify(neg)}`;
      for (const cell of splitCells(pos, neg)) {
        const d = decideCell(cell);
        if (d.status === 'open') {
          openCells++;
          continue;
        }
        decidedCells++;
        const z = await solveCell(enc, cell, 10_000);
        assert.notEqual(z.status, 'unknown', where);
        assert.equal(d.status, z.status, `${where}: cell ${JSON.stringify(cell)} decided ${JSON.stringify(d)}, Z3 says ${JSON.stringify(z)}`);
        if (d.status === 'sat') assert.ok(inCell(d.path, cell), where);
      }
      const split = await decidePaths(enc, pos, neg, 10_000);
      const whole = await solveWhole(enc, pos, neg, 10_000);
      const exact = exactPaths(pos, neg);
      assert.notEqual(whole.status, 'unknown', where);
      assert.equal(split.status, whole.status, `${where}: split ${JSON.stringify(split)}, whole ${JSON.stringify(whole)}`);
      assert.equal(exact.status, whole.status, `${where}: exact ${JSON.stringify(exact)}, whole ${JSON.stringify(whole)}`);
      if (split.status === 'sat') {
        sat++;
        assert.ok(pos.every((s) => inSet(split.path, s)) && !neg.some((s) => inSet(split.path, s)), `${where}: witness ${split.path}`);
      }
    }
    // The random questions exercised both answers and both deciders.
    assert.ok(decidedCells > 150 && openCells > 0 && sat > 20 && sat < 210, `decided ${decidedCells}, open ${openCells}, sat ${sat}`);
  });

  it('the two facts it rests on: disjoint roots give no cell; an exclude holding the root empties the cell', () => {
    const sub = (path: string): PathPattern => ({ kind: 'subtree', path });
    assert.deepEqual([...splitCells([{ include: [sub('/a')], exclude: [] }, { include: [sub('/b')], exclude: [] }], [])], []);
    assert.deepEqual([...splitCells([{ include: [sub('/a/b')], exclude: [sub('/a')] }], [])], []);
    // A named-below exclude holding the root: /r/.env/x is inside `any .env below /r`, and so is all below it.
    assert.deepEqual([...splitCells([{ include: [sub('/r/.env/x')], exclude: [{ kind: 'named-below', dir: '/r', name: '.env' }] }], [])], []);
    // An exclude below the root leaves the root itself as the witness.
    const cells = [...splitCells([{ include: [sub('/a')], exclude: [sub('/a/b')] }], [])];
    assert.equal(cells.length, 1);
    assert.deepEqual(decideCell(cells[0]!), { status: 'sat', path: '/a' });
  });
});
