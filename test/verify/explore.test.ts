// The exploration behind rules-only-revoke and the invariants (src/verify/properties/dynamic.ts)
// claims that one witness event per class (the set of rule patterns an allowed event matches)
// reaches every reachable permission state. Checked here against brute force: on random rule
// sets, every state reached by trying every concrete event of a small universe (all paths of a
// small tree, a few destinations), in every order, is among the states the exploration found.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { preparePolicy } from '../../src/api.js';
import type { EffectivePolicy } from '../../src/policy/load.js';
import { applyEvent, initialState, type Event, type Match, type Rule, type RuleState } from '../../src/rules/index.js';
import { dynamicModel } from '../../src/verify/properties/dynamic.js';
import { accessSets, inSet } from '../../src/verify/properties/model.js';
import { encoder } from '../../src/verify/smt/encode.js';
import { z3 } from '../../src/verify/smt/z3.js';
import { rng } from '../helpers.js';

const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'ward-explore-')));
after(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(path.join(dir, 'ws'));

const SEGS = ['a', 'b', '.env'];
const PATHS: string[] = ['/r'];
for (const s1 of SEGS) {
  PATHS.push(`/r/${s1}`);
  for (const s2 of SEGS) {
    PATHS.push(`/r/${s1}/${s2}`);
    for (const s3 of SEGS) PATHS.push(`/r/${s1}/${s2}/${s3}`);
  }
}
const DESTS = ['x.example.com:443', 'a.example.org:443', 'b.c.example.org:443', 'x.example.com:80'];
const DEST_PATTERNS = ['*', 'x.example.com:443', '*.example.org:443', '*.c.example.org:443', 'x.example.com:*'];

function randomMatch(r: () => number, kinds: readonly Match['access'][]): Match {
  const access = kinds[Math.floor(r() * kinds.length)]!;
  if (access === 'connect') return { access, target: DEST_PATTERNS[Math.floor(r() * DEST_PATTERNS.length)]! };
  const p = PATHS[Math.floor(r() * PATHS.length)]!;
  return { access, target: r() < 0.25 ? `${p}/**/${r() < 0.5 ? '.env' : 'b'}` : p };
}

const key = (s: RuleState) => JSON.stringify([s.seen, s.fired]);

describe('event classes reach every reachable state (brute force)', () => {
  it('on 40 random rule sets', async () => {
    const enc = encoder(await z3());
    const template = preparePolicy({ policy: { extends: ['minimal'] } }, { workspace: path.join(dir, 'ws') }).effective;
    let total = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const r = rng(seed);
      const rules: Rule[] = Array.from({ length: 1 + Math.floor(r() * 3) }, () => ({
        after: Array.from({ length: 1 + Math.floor(r() * 2) }, () => randomMatch(r, ['read', 'write', 'exec', 'connect'])),
        revoke: [randomMatch(r, ['read', 'write', 'exec', 'append', 'connect'])],
      }));
      const eff: EffectivePolicy = {
        ...template,
        filesystem: { ...template.filesystem, read: [{ path: '/r' }], write: [{ path: '/r/a' }], execute: [{ path: '/r/b' }], deny: [{ path: '/r/b/.env' }] },
        network: { allow: ['x.example.com:443', '*.example.org:443'], allow_local: [] },
        rules,
      };
      const sets = accessSets(eff);
      const model = await dynamicModel(enc, eff, sets, 10_000);
      assert.ok(!('tooLarge' in model), `seed ${seed}`);
      const found = new Set(model.reachable.map((n) => key(n.state)));
      // Brute force: every allowed concrete event of the universe, from every state reached.
      const universe: Event[] = [
        ...PATHS.filter((p) => inSet(p, sets.read)).map((p): Event => ({ access: 'read', target: p })),
        ...PATHS.filter((p) => inSet(p, sets.write)).map((p): Event => ({ access: 'write', target: p })),
        ...PATHS.filter((p) => inSet(p, sets.execute)).map((p): Event => ({ access: 'exec', target: p })),
        ...DESTS.filter((d) => d !== 'x.example.com:80').map((d): Event => ({ access: 'connect', target: d })),
      ];
      const seen = new Map<string, RuleState>([[key(initialState(rules)), initialState(rules)]]);
      const queue = [...seen.values()];
      for (let i = 0; i < queue.length; i++) {
        for (const e of universe) {
          const next = applyEvent(queue[i]!, e).state;
          if (!seen.has(key(next))) {
            seen.set(key(next), next);
            queue.push(next);
          }
        }
      }
      for (const k of seen.keys()) assert.ok(found.has(k), `seed ${seed}: state ${k} reached by concrete events but not by the exploration; rules ${JSON.stringify(rules)}`);
      total += seen.size;
    }
    assert.ok(total > 80, `the random rules reached ${total} states in all`);
  });
});
