// The exact decision procedures (src/verify/properties/exact.ts) and what they are for: no
// PROVED rests on one Z3 answer. Hand-picked tricky questions are checked against a brute
// force over every path of a small tree; a Z3 that lies (injected check function) turns the
// verdict into ERROR, never PROVED and never a silent VIOLATED; and the guard that keeps
// z3-solver's finalizers off a running check (src/verify/smt/z3.ts) refuses a concurrent call
// and keeps Z3's answers right while the GC runs mid-check.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { PolicyInput } from '../../src/api.js';
import { decideDests, decidePaths, solveWhole } from '../../src/verify/properties/decide.js';
import { exactDests, exactPaths, isCanonical, isWellFormedDest, type DestList } from '../../src/verify/properties/exact.js';
import { verifyPolicy, type PropertyResult, type VerifyOptions, type VerifyReport } from '../../src/verify/properties/index.js';
import { inSet, type HostPattern, type PathPattern, type PathSet } from '../../src/verify/properties/model.js';
import { encoder } from '../../src/verify/smt/encode.js';
import { check, guardStats, z3, type CheckFn } from '../../src/verify/smt/z3.js';
import { rng } from '../helpers.js';
import { prop, verifyEnv } from './helpers.js';

const sub = (p: string): PathPattern => ({ kind: 'subtree', path: p });
const named = (dir: string, name: string): PathPattern => ({ kind: 'named-below', dir, name });
const below = (p: string): PathPattern => ({ kind: 'below', path: p });
const set = (include: PathPattern[], exclude: PathPattern[] = []): PathSet => ({ include, exclude });

/** Every canonical path over `alphabet` up to `depth` segments: the brute-force reference. */
function allPaths(alphabet: string[], depth: number): string[] {
  const out = ['/'];
  let layer = [''];
  for (let d = 0; d < depth; d++) {
    layer = layer.flatMap((p) => alphabet.map((s) => `${p}/${s}`));
    out.push(...layer);
  }
  return out;
}
const holds = (p: string, pos: PathSet[], neg: PathSet[]) => pos.every((s) => inSet(p, s)) && !neg.some((s) => inSet(p, s));

describe('exact path decision', () => {
  // Each: the question and whether a witness exists, worked out by hand (and re-checked by the
  // brute force below, whose alphabet holds every name used plus one other).
  const cases: { what: string; pos: PathSet[]; neg: PathSet[]; sat: boolean }[] = [
    { what: 'a named-below inside an excluded subtree is excluded with it', pos: [set([named('/w', '.env')], [sub('/w/x')])], neg: [], sat: true },
    { what: '… and when every place it could be is excluded, there is none', pos: [set([named('/w', '.env')], [sub('/w')])], neg: [], sat: false },
    { what: 'the name at the very root below "/"', pos: [set([named('/', 'k')])], neg: [set([sub('/a')])], sat: true },
    { what: '"/" itself is in subtree("/") and in no named-below', pos: [set([sub('/')], [named('/', 'a')])], neg: [], sat: true },
    { what: 'a named-below never holds its own dir', pos: [set([named('/a', 'a')])], neg: [set([sub('/a/a')]), set([named('/a/a', 'a')])], sat: true },
    {
      what: 'the name repeated at several depths: /a/b/b is in "b below /a" but also in "b below /a/b"',
      pos: [set([named('/a', 'b')])],
      neg: [set([named('/a/b', 'b')]), set([sub('/a/c')])],
      sat: true, // /a/b itself, or /a/x/b
    },
    {
      what: 'every way to have the name below /a is excluded by a name below its dir or a subtree',
      pos: [set([named('/a', 'b')], [named('/', 'b')])],
      neg: [],
      sat: false,
    },
    { what: 'two names both needed, one of them excluded below a third', pos: [set([named('/r', 'x')]), set([named('/r', 'y')])], neg: [set([named('/r', 'z')])], sat: true },
    { what: 'disjoint subtrees', pos: [set([sub('/a')]), set([sub('/b')])], neg: [], sat: false },
    { what: 'nested subtree minus its parent', pos: [set([sub('/a/b')], [sub('/a')])], neg: [], sat: false },
    { what: 'include minus a deeper exclude leaves the include root', pos: [set([sub('/a')], [sub('/a/b')])], neg: [set([named('/', 'a')])], sat: false },
    { what: 'non-canonical names never match', pos: [set([named('/r', '..')])], neg: [], sat: false },
    { what: 'a root "/" subtree minus a named-below at "/"', pos: [set([sub('/')])], neg: [set([named('/', 'a')]), set([sub('/a')])], sat: true },
    // `below` (everything strictly below a path): what a mask hides while its own name shows.
    { what: 'a masked directory: its name is seen', pos: [set([sub('/h')], [below('/h/.ssh')]), set([sub('/h/.ssh')])], neg: [], sat: true },
    { what: '… and nothing below it', pos: [set([sub('/h')], [below('/h/.ssh')]), set([below('/h/.ssh')])], neg: [], sat: false },
    { what: 'a below never holds its own path: subtree minus below leaves the path alone', pos: [set([sub('/a')], [below('/a')])], neg: [set([sub('/b')])], sat: true },
    {
      what: 'below a path with every child the patterns name excluded: only a fresh child is a witness (the T + [F] candidate)',
      pos: [set([below('/a')], [sub('/a/b'), sub('/a/c')])],
      neg: [],
      sat: true,
    },
    { what: 'below "/" is every path but "/"', pos: [set([below('/')])], neg: [set([sub('/a')]), set([named('/', 'b')])], sat: true },
    { what: 'below "/" minus subtree "/" is empty', pos: [set([below('/')], [sub('/')])], neg: [], sat: false },
    { what: 'a name below a masked dir is hidden with it', pos: [set([named('/h', 'k')], [below('/h/m')]), set([sub('/h/m')])], neg: [], sat: false },
  ];
  for (const c of cases) {
    it(c.what, () => {
      const got = exactPaths(c.pos, c.neg);
      assert.equal(got.status, c.sat ? 'sat' : 'unsat', JSON.stringify(got));
      if (got.status === 'sat') {
        assert.ok(isCanonical(got.witness) && holds(got.witness, c.pos, c.neg), got.witness);
      }
      // The brute force over a small tree agrees (it finds a witness exactly when one exists
      // among short paths; each case above has a short one when it has any).
      const names = [...new Set([...c.pos, ...c.neg].flatMap((s) => [...s.include, ...s.exclude]).flatMap((p) => (p.kind === 'named-below' ? [...p.dir.split('/'), p.name] : p.path.split('/'))))]
        .filter((n) => n !== '' && n !== '..' && n !== '.');
      const brute = allPaths([...names, 'other'], 4).find((p) => holds(p, c.pos, c.neg));
      assert.equal(brute !== undefined, c.sat, `brute force found ${brute}`);
    });
  }
});

describe('exact destination decision', () => {
  const h = (host: string, port: number | null, wildcard = false): HostPattern => ({ entry: `${wildcard ? '*.' : ''}${host}:${port ?? '*'}`, host, wildcard, port });
  const cases: { what: string; pos: DestList[]; neg: DestList[]; sat: boolean }[] = [
    { what: 'a wildcard is not covered by its exact apex', pos: [[h('example.com', 443, true)]], neg: [[h('example.com', 443)]], sat: true },
    { what: 'a wildcard below a wildcard', pos: [[h('a.example.com', 443, true)]], neg: [[h('example.com', 443, true)]], sat: false },
    { what: 'the apex is not under its own wildcard', pos: [[h('example.com', 443)]], neg: [[h('example.com', null, true)]], sat: true },
    { what: 'any port minus every named port leaves a fresh one', pos: [[h('x.org', null)]], neg: [[h('x.org', 443), h('x.org', 80)]], sat: true },
    { what: 'a host that is not well-formed matches nothing', pos: [[h('Bad..Host', 443)]], neg: [], sat: false },
    { what: 'suffix without a label boundary (evilexample.com) does not match *.example.com', pos: [[h('evilexample.com', 443)]], neg: [[h('example.com', 443, true)]], sat: true },
    { what: 'every destination minus the wildcard "*" is empty', pos: [[h('a.b', 1)]], neg: ['any'], sat: false },
  ];
  for (const c of cases) {
    it(c.what, () => {
      const got = exactDests(c.pos, c.neg);
      assert.equal(got.status, c.sat ? 'sat' : 'unsat', JSON.stringify(got));
      if (got.status === 'sat') assert.ok(isWellFormedDest(got.witness), got.witness);
    });
  }
  it('agrees with Z3 on the same questions', async () => {
    const enc = encoder(await z3());
    for (const c of cases) {
      const r = await decideDests(enc, c.pos, c.neg, 10_000);
      assert.equal(r.status, c.sat ? 'sat' : 'unsat', `${c.what}: ${JSON.stringify(r)}`);
    }
  });
});

// ---------------------------------------------------------------------------
// A lying solver

const base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'ward-exact-')));
after(() => rmSync(base, { recursive: true, force: true }));
const ws = path.join(base, 'ws');
const home = path.join(base, 'home');
for (const d of [ws, `${ws}/sub`, `${ws}/.env`, home]) mkdirSync(d, { recursive: true });
const env = verifyEnv(home);
const run = (input: PolicyInput, opts: VerifyOptions = {}): Promise<VerifyReport> => verifyPolicy(input, { workspace: ws, env, ...opts });

/** Says `unsat` to everything: the failure seen in CI, made certain. */
const alwaysUnsat: CheckFn = async () => ({ status: 'unsat' });
/** Says `sat`, with a model of a different question: a path/destination outside every set. */
const wrongSat: CheckFn = async (ctx, _formula, timeoutMs) =>
  check(ctx, ctx.Or(ctx.String.const('p').eq(ctx.String.val('/nowhere')), ctx.String.const('dst').eq(ctx.String.val('nowhere.invalid:1'))), timeoutMs);

describe('a wrong Z3 answer is an ERROR, never PROVED', () => {
  // The workspace is readable with its top .env and sub/ denied: a nested .env is still
  // readable, but not at the places prefix reasoning tries (ws/.env, ws/sub/.env), so only Z3
  // (and the exact procedure) can find it. `*.com:443` is unbounded: only Z3 answers egress.
  const policy: PolicyInput = {
    policy: {
      extends: ['minimal'],
      filesystem: { read: ['${WORKSPACE}'], deny: ['${WORKSPACE}/.env', '${WORKSPACE}/sub'] },
      network: { allow: ['*.com:443', 'api.github.com:443'] },
    },
  };
  const bounded: PolicyInput = { policy: { extends: ['minimal'], network: { allow: ['api.github.com:443'] } } };

  it('honest Z3: a nested .env and *.com:443 are VIOLATED with checked counterexamples', async () => {
    const r = await run(policy);
    assert.equal(prop(r, 'no-secret-access').status, 'VIOLATED');
    assert.equal(prop(r, 'egress').status, 'VIOLATED');
    assert.equal(prop(r, 'egress').counterexample?.endsWith('.com:443'), true);
  });

  it('a Z3 that answers unsat: the properties whose truth needs Z3 are ERROR, naming the witness it missed', async () => {
    const r = await run(policy, { check: alwaysUnsat });
    for (const id of ['no-secret-access', 'egress']) {
      const p = prop(r, id);
      assert.equal(p.status, 'ERROR', `${id}: ${JSON.stringify(p)}`);
      assert.match(p.detail ?? '', /deciders disagree: Z3 .*found no such .*the exact procedure found "/);
      assert.equal(p.counterexample, undefined, 'not shown as a counterexample: the report cannot say which decider is right');
    }
    assert.equal(r.ok, false);
    // The JSON report records it as such.
    assert.deepEqual(JSON.parse(JSON.stringify(r)).properties.filter((p: PropertyResult) => p.status === 'ERROR').map((p: PropertyResult) => p.id).sort(), ['egress', 'no-secret-access']);
  });

  it('a Z3 that answers sat with a model outside the sets: ERROR, not VIOLATED', async () => {
    // Egress of a bounded policy is PROVED, and the question goes to Z3.
    const honest = await run(bounded);
    assert.equal(prop(honest, 'egress').status, 'PROVED');
    assert.match(prop(honest, 'egress').detail ?? '', /exact procedure/);
    const r = await run(bounded, { check: wrongSat });
    const p = prop(r, 'egress');
    assert.equal(p.status, 'ERROR', JSON.stringify(p));
    assert.match(p.detail ?? '', /"nowhere.invalid:1" is not in the sets/);
    assert.equal(r.ok, false);
  });

  it('dynamic rules and invariants: a lying Z3 makes rules-only-revoke and the invariants ERROR', async () => {
    const dyn: PolicyInput = {
      policy: {
        extends: ['minimal'],
        filesystem: { read: ['${WORKSPACE}'] },
        network: { allow: ['api.github.com:443'] },
        rules: [{ after: 'read ${WORKSPACE}/sub/**', revoke: 'network' }],
        invariants: ['never connect * after read ${WORKSPACE}/sub/**', 'never connect api.github.com:443'],
      },
    };
    const honest = await run(dyn);
    assert.deepEqual(
      ['rules-only-revoke', 'invariant:1', 'invariant:2'].map((id) => prop(honest, id).status),
      ['PROVED', 'PROVED', 'VIOLATED'],
    );
    const r = await run(dyn, { check: alwaysUnsat });
    for (const id of ['rules-only-revoke', 'invariant:1', 'invariant:2']) {
      const p = prop(r, id);
      assert.equal(p.status, 'ERROR', `${id}: ${JSON.stringify(p)}`);
      assert.match(p.detail ?? '', /deciders disagree/);
    }
  });

  it('the split path decision, with a check that lies either way, on questions only Z3 settles', async () => {
    const enc = encoder(await z3());
    // "Some .env below /w, not /w/.env, not under /w/sub": the places prefix reasoning tries
    // are excluded, so the cell goes to Z3. /w/x/.env is a witness.
    const pos = [set([named('/w', '.env')], [sub('/w/.env'), sub('/w/sub')])];
    assert.equal((await decidePaths(enc, pos, [], 10_000)).status, 'sat');
    const lied = await decidePaths(enc, pos, [], 10_000, undefined, alwaysUnsat);
    assert.equal(lied.status, 'error', JSON.stringify(lied));
    // "Some .env below /w, but no .env anywhere": no witness; a made-up one is caught.
    const none = [set([named('/w', '.env')], [named('/', '.env')])];
    assert.equal((await decidePaths(enc, none, [], 10_000)).status, 'unsat');
    const made = await decidePaths(enc, none, [], 10_000, undefined, wrongSat);
    assert.equal(made.status, 'error', JSON.stringify(made));
  });
});

describe('Z3 call guard', () => {
  it('refuses a Z3 call while a check runs on the solver thread (the race that corrupted answers)', async () => {
    const ctx = await z3();
    const solver = new ctx.Solver();
    const s = ctx.String.const('s');
    solver.add(ctx.InRe(s, ctx.Intersect(ctx.Star(ctx.Re.toRe('ab')), ctx.Plus(ctx.Re.toRe('a')))));
    const before = guardStats.asyncCalls;
    const pending = solver.check();
    // The check starts after async-mutex's microtask; the answer needs a macrotask (a message
    // from the pthread), so spinning on microtasks lands inside the check.
    for (let i = 0; i < 1000 && guardStats.asyncCalls === before; i++) await Promise.resolve();
    assert.equal(guardStats.asyncCalls, before + 1, 'the check has started');
    assert.throws(() => ctx.String.const('t'), /called while a solver call runs on another thread/);
    assert.notEqual(await pending, 'unknown');
    // After it, the API works again.
    assert.equal(ctx.String.const('t').sexpr(), 't');
  });
});

describe('Z3 under garbage collection', () => {
  it('answers stay right while the GC runs z3-solver\'s finalizers during checks (what corrupted Z3 before the guard)', async (t) => {
    // A GC every 2 ms while checks run: the finalizers of earlier queries' terms fire on the
    // main thread mid-check. Before the guard this crashed Z3 or changed its answers in most
    // runs (SECURITY-MODEL.md); now the releases wait for the check to end.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const timer = setInterval(gc, 2);
    try {
      const enc = encoder(await z3());
      const deferredBefore = guardStats.deferred;
      const segsOf = ['a', 'b', '.env'];
      const r = rng(7);
      const pathOf = () => ['/r', ...Array.from({ length: Math.floor(r() * 3) }, () => segsOf[Math.floor(r() * 3)]!)].join('/');
      const pattern = (): PathPattern => (r() < 0.4 ? named(pathOf(), r() < 0.5 ? '.env' : 'b') : sub(pathOf()));
      const randomSet = () => set(Array.from({ length: 1 + Math.floor(r() * 3) }, pattern), Array.from({ length: Math.floor(r() * 3) }, pattern));
      for (let i = 0; i < 60; i++) {
        const pos = [randomSet()];
        const neg = r() < 0.5 ? [randomSet()] : [];
        // decidePaths compares with the exact procedure itself (error on disagreement); the
        // unsplit query is compared here, so every question reaches Z3 at least once.
        const split = await decidePaths(enc, pos, neg, 10_000);
        const exact = exactPaths(pos, neg);
        const whole = await solveWhole(enc, pos, neg, 10_000);
        const where = `question ${i}: ${JSON.stringify({ pos, neg })}`;
        assert.equal(split.status, exact.status, `${where}: ${JSON.stringify(split)}`);
        assert.equal(whole.status, exact.status, `${where}: whole ${JSON.stringify(whole)}`);
      }
      t.diagnostic(`releases deferred past a running check: ${guardStats.deferred - deferredBefore}`);
    } finally {
      clearInterval(timer);
    }
  });
});
