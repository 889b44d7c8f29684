/**
 * Randomized tampering, part 2: records deleted, swapped, inserted, and the log
 * truncated. Every change is detected, and the first bad line reported is the
 * line where the log stops being what Ward wrote.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromLines, rng } from './fixture.js';
import { checkpointLines, expectBad, fx, lines, N, seed, verify } from './tamper-setup.js';

describe(`audit log tampering: deletions, swaps, insertions, truncations (seed ${seed})`, () => {
  it('every single line deleted: detected at that line', () => {
    for (let k = 1; k <= N; k++) {
      const r = verify(fromLines(lines.filter((_, i) => i !== k - 1)));
      expectBad(r, k, `delete line ${k}`);
      assert.ok(['deleted', 'truncated'].includes(r.problem!.kind), `delete line ${k}: ${r.problem!.kind}`);
    }
    // Several at once: the first of them is named.
    const rand = rng(seed + 1);
    for (let n = 0; n < 300; n++) {
      const a = 1 + Math.floor(rand() * N);
      const count = 1 + Math.floor(rand() * 5);
      expectBad(verify(fromLines(lines.filter((_, i) => i < a - 1 || i >= a - 1 + count))), a, `delete ${count} lines from ${a}`);
    }
  });

  it('swaps of two lines (every adjacent pair, and 300 random pairs): detected at the first of them', () => {
    const swapped = (i: number, j: number) => {
      const copy = [...lines];
      [copy[i - 1], copy[j - 1]] = [copy[j - 1]!, copy[i - 1]!];
      return fromLines(copy);
    };
    for (let i = 1; i < N; i++) {
      const r = verify(swapped(i, i + 1));
      expectBad(r, i, `swap ${i},${i + 1}`);
      assert.equal(r.problem!.kind, 'reordered', `swap ${i},${i + 1}: ${r.problem!.message}`);
    }
    const rand = rng(seed + 2);
    for (let n = 0; n < 300; n++) {
      const i = 1 + Math.floor(rand() * N);
      let j = 1 + Math.floor(rand() * N);
      if (j === i) j = i === N ? 1 : i + 1;
      expectBad(verify(swapped(Math.min(i, j), Math.max(i, j))), Math.min(i, j), `swap ${i},${j}`);
    }
  });

  it('600 insertions of a copied line at a random place: detected where it was inserted', () => {
    const rand = rng(seed + 3);
    for (let n = 0; n < 600; n++) {
      const from = Math.floor(rand() * N);
      const at = Math.floor(rand() * (N + 1)); // insert before index `at` (N: at the end)
      const copy = [...lines];
      copy.splice(at, 0, lines[from]!);
      const r = verify(fromLines(copy));
      // A copy put right before its original is the same bytes: the second of the two is the one out of place.
      expectBad(r, from === at ? at + 2 : at + 1, `copy line ${from + 1} before line ${at + 1}`);
      assert.equal(r.problem!.kind, 'inserted', `copy line ${from + 1} before line ${at + 1}: ${r.problem!.message}`);
    }
  });

  it('truncation at 500 random byte offsets and at every record boundary, including just after each checkpoint', () => {
    const rand = rng(seed + 4);
    for (let n = 0; n < 500; n++) {
      const cut = Math.floor(rand() * fx.log.length);
      expectBad(verify(fx.log.subarray(0, cut)), null, `cut at byte ${cut}`);
    }
    for (let k = 0; k < N; k++) {
      const r = verify(fromLines(lines.slice(0, k)));
      expectBad(r, null, `keep ${k} lines`);
    }
    for (const c of checkpointLines.slice(0, -1)) {
      const r = verify(fromLines(lines.slice(0, c)));
      expectBad(r, c + 1, `cut right after the checkpoint on line ${c}`);
      assert.equal(r.problem!.kind, 'truncated');
      assert.match(r.problem!.message, new RegExp(`had ${N} records, but it has ${c}`));
    }
  });
});
