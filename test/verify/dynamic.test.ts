// `ward verify` over dynamic rules and invariants: rules-only-revoke is proved for the real
// semantics and caught for broken ones (injected), invariants are proved or violated with a
// concrete access and the sequence of events that leads to it, and invariant text errors name
// the invariant, the column and the fix.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { PolicyInput } from '../../src/api.js';
import { preparePolicy } from '../../src/api.js';
import { PolicyError } from '../../src/errors.js';
import { applyEvent, initialState, type Event, type RuleState } from '../../src/rules/index.js';
import { rulesOnlyRevoke } from '../../src/verify/properties/dynamic.js';
import { verifyPolicy, type VerifyReport } from '../../src/verify/properties/index.js';
import { accessSets } from '../../src/verify/properties/model.js';
import { encoder } from '../../src/verify/smt/encode.js';
import { z3 } from '../../src/verify/smt/z3.js';
import { prop, verifyEnv } from './helpers.js';

const base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'ward-dyn-')));
after(() => rmSync(base, { recursive: true, force: true }));
const ws = path.join(base, 'ws');
const home = path.join(base, 'home');
for (const d of [ws, `${ws}/secrets`, `${ws}/src`, `${ws}/docs`, `${home}/private`]) mkdirSync(d, { recursive: true });
const env = verifyEnv(home);

const policy = (p: Record<string, unknown>): PolicyInput => ({
  policy: { extends: ['minimal'], filesystem: { read: ['${WORKSPACE}', '~/private'], write: ['${WORKSPACE}/src', '${WORKSPACE}/docs'] }, network: { allow: ['api.github.com:443', '*.untrusted.example:443'] }, ...p },
});
const run = (input: PolicyInput): Promise<VerifyReport> => verifyPolicy(input, { workspace: ws, env });

const RULES = [
  { after: 'read ${WORKSPACE}/secrets/**', revoke: 'network' },
  { after: 'read ${WORKSPACE}/src', revoke: 'write ${WORKSPACE}/docs' },
];

describe('rules-only-revoke', () => {
  it('is PROVED for the real semantics, over every reachable state', async () => {
    const p = prop(await run(policy({ rules: RULES })), 'rules-only-revoke');
    assert.equal(p.status, 'PROVED', JSON.stringify(p));
    // 2 rules: 4 reachable states (neither, either, both fired).
    assert.match(p.detail!, /2 rules, \d+ event classes, 4 reachable states, \d+ transitions checked/);
  });

  it('is not reported for a policy without rules (its report is what it was)', async () => {
    const r = await run(policy({}));
    assert.equal(r.properties.some((p) => p.id === 'rules-only-revoke'), false);
  });

  async function withBroken(apply: (s: RuleState, e: Event) => { state: RuleState; fired: number[] }) {
    const eff = preparePolicy(policy({ rules: RULES }), { workspace: ws, env }).effective;
    return rulesOnlyRevoke(encoder(await z3()), eff, accessSets(eff), 10_000, apply);
  }

  it('catches an applyEvent that forgets earlier revocations, with the sequence that shows it', async () => {
    // The bug: the fired set is replaced by what fires on this event, not added to.
    const forgetful = (s: RuleState, e: Event) => {
      const r = applyEvent(s, e);
      return { state: { ...r.state, fired: r.state.fired.map((_, i) => r.fired.includes(i)) }, fired: r.fired };
    };
    const o = await withBroken(forgetful);
    assert.equal(o.status, 'VIOLATED', JSON.stringify(o));
    const cx = (o as { counterexample: string }).counterexample;
    // Either the network comes back after the src read, or docs becomes writable again after a secrets read.
    const net = new RegExp(`^connect [a-z0-9_.-]+:443 after read ${ws}/secrets(/\\S*)?, then .+$`);
    const docs = new RegExp(`^(write|append) ${ws}/docs(/\\S*)? after read ${ws}/src(/\\S*)?, then .+$`);
    assert.ok(net.test(cx) || docs.test(cx), cx);
    assert.match(o.detail, /revoked after .+, allowed again after the next event/);
  });

  it('catches an applyEvent that resets the state on every connect (per-connection "trust")', async () => {
    const resetting = (s: RuleState, e: Event) => (e.access === 'connect' ? { state: initialState(s.rules), fired: [] } : applyEvent(s, e));
    const o = await withBroken(resetting);
    assert.equal(o.status, 'VIOLATED', JSON.stringify(o));
    assert.match((o as { counterexample: string }).counterexample, / after .*, then connect /);
  });

  it('too many distinct trigger patterns to explore: UNKNOWN with the reason and the fix, never PROVED', async () => {
    const many = Array.from({ length: 11 }, (_, i) => ({ after: `read \${WORKSPACE}/secrets/k${i}`, revoke: 'network' }));
    const r = await run(policy({ rules: many, invariants: ['never connect * after read ${WORKSPACE}/secrets/k0'] }));
    for (const id of ['rules-only-revoke', 'invariant:1']) {
      const p = prop(r, id);
      assert.equal(p.status, 'UNKNOWN', JSON.stringify(p));
      assert.match(p.detail!, /too many to explore: 11 distinct "after read" patterns \(at most 10\)/);
    }
    assert.match(prop(r, 'rules-only-revoke').detail!, /fewer distinct patterns/);
  });

  it('the real applyEvent passed explicitly is PROVED (the injection point is the only difference)', async () => {
    assert.equal((await withBroken(applyEvent)).status, 'PROVED');
  });
});

describe('invariants', () => {
  it('never connect * after read secrets: PROVED with the revoking rule, VIOLATED without it, with the event sequence', async () => {
    const inv = ['never connect * after read ${WORKSPACE}/secrets/**'];
    const ok = prop(await run(policy({ rules: RULES, invariants: inv })), 'invariant:1');
    assert.equal(ok.status, 'PROVED', JSON.stringify(ok));
    assert.equal(ok.title, 'never connect * after read ${WORKSPACE}/secrets/**');
    const bad = prop(await run(policy({ rules: [RULES[1]], invariants: inv })), 'invariant:1');
    assert.equal(bad.status, 'VIOLATED');
    assert.match(bad.counterexample!, new RegExp(`^connect [a-z0-9_.-]+:443 after read ${ws}/secrets(/\\S*)?$`));
    assert.match(bad.detail!, /allowed by network\.allow .*; no fired rule revokes it/);
  });

  it('the lethal trifecta: a rule that needs both events does not protect after one of them', async () => {
    const trifecta = [{ after: ['read ~/private/**', 'connect *.untrusted.example:443'], revoke: 'network' }];
    const r = await run(policy({ rules: trifecta, invariants: ['never connect * after read ~/private/**', 'never connect api.github.com:443 after connect *.untrusted.example:443'] }));
    assert.equal(prop(r, 'rules-only-revoke').status, 'PROVED');
    // After the private read alone the network is still there (by design of the rule).
    const one = prop(r, 'invariant:1');
    assert.equal(one.status, 'VIOLATED');
    assert.match(one.counterexample!, new RegExp(`^connect \\S+ after read ${home}/private(/\\S*)?$`));
    assert.equal(prop(r, 'invariant:2').status, 'VIOLATED');
  });

  it('static invariants: never read/write/see, with the grant behind a counterexample', async () => {
    const r = await run(
      policy({
        filesystem: { read: ['${WORKSPACE}'], write: ['${WORKSPACE}/src'], deny: ['${WORKSPACE}/.env'] },
        invariants: ['never write ${WORKSPACE}/docs', 'never write ${WORKSPACE}/src/**', 'never read ${WORKSPACE}/**/.env', 'never see ~/.ssh', 'never execute ${WORKSPACE}', 'never connect *.github.com:443'],
      }),
    );
    assert.equal(prop(r, 'invariant:1').status, 'PROVED', 'docs is read-only in this policy');
    const w = prop(r, 'invariant:2');
    assert.equal(w.status, 'VIOLATED');
    assert.match(w.counterexample!, new RegExp(`^write ${ws}/src(/\\S*)?$`));
    assert.match(w.detail!, new RegExp(`write ${ws}/src`));
    // The top-level .env is denied; a nested one is not: the named-below pattern needs the solver.
    const env = prop(r, 'invariant:3');
    assert.equal(env.status, 'VIOLATED');
    assert.match(env.counterexample!, new RegExp(`^read ${ws}/.+/\\.env(/.*)?$`));
    assert.equal(prop(r, 'invariant:4').status, 'PROVED', '~/.ssh is a mandatory deny');
    assert.equal(prop(r, 'invariant:5').status, 'PROVED');
    const c = prop(r, 'invariant:6');
    assert.equal(c.status, 'VIOLATED');
    assert.equal(c.counterexample, 'connect api.github.com:443');
  });

  it('rules see allow_local connections as the broker names them: "connect 127.0.0.1:PORT" fires a rule and is revoked by "network"', async () => {
    const r = await run(
      policy({
        network: { allow: [], allow_local: [5432] },
        rules: [{ after: 'connect 127.0.0.1:5432', revoke: 'write ${WORKSPACE}/src' }, { after: 'read ${WORKSPACE}/secrets/**', revoke: 'network' }],
        invariants: ['never write ${WORKSPACE}/src/** after connect 127.0.0.1:5432', 'never connect * after read ${WORKSPACE}/secrets/**', 'never connect *'],
      }),
    );
    assert.equal(prop(r, 'rules-only-revoke').status, 'PROVED');
    assert.equal(prop(r, 'invariant:1').status, 'PROVED', JSON.stringify(prop(r, 'invariant:1')));
    assert.equal(prop(r, 'invariant:2').status, 'PROVED');
    const c = prop(r, 'invariant:3');
    assert.equal(c.status, 'VIOLATED', JSON.stringify(c));
    assert.equal(c.counterexample, 'connect 127.0.0.1:5432');
  });

  it('an invariant whose trigger the policy never allows holds vacuously, and says so', async () => {
    const p = prop(await run(policy({ invariants: ['never connect * after read /nonexistent-dir-for-ward'] })), 'invariant:1');
    assert.equal(p.status, 'PROVED');
    assert.match(p.detail!, /vacuously/);
  });

  it('text errors name the invariant, the column and the fix', () => {
    const load = (inv: string[]) => () => preparePolicy(policy({ invariants: inv }), { workspace: ws, env });
    const cases: [string, RegExp, RegExp][] = [
      ['nevr read /x', /invariant 1 "nevr read \/x", column 1: an invariant starts with "never"/, /never ACCESS PATTERN/],
      ['never raed /x', /column 7: unknown access kind "raed"/, /read, write, exec, append, see, connect/],
      ['never read', /column 11: "read" needs a pattern/, /e\.g\. "read \$\{WORKSPACE\}/],
      ['never read x/y', /column 12: "x\/y" is a relative path/, /WORKSPACE/],
      ['never connect * after', /"after" needs an event and a pattern/, /after read/],
      ['never connect * after see /x', /column 23: unknown event kind "see"/, /read, write, exec, connect/],
      ['never connect example.com', /not a destination pattern/, /host:port/],
    ];
    for (const [text, problem, fix] of cases) {
      assert.throws(load(['never read /tmp', text]), (e: unknown) => {
        assert.ok(e instanceof PolicyError, String(e));
        assert.equal(e.keyPath, 'invariants[1]', text);
        assert.match(e.message, problem.source.startsWith('invariant') ? new RegExp(problem.source.replace('invariant 1', 'invariant 2')) : problem, text);
        assert.match(e.fix!, fix, text);
        return true;
      });
    }
  });
});

describe('ward verify CLI with invariants', () => {
  it('shows each invariant as invariant:N with its text, and exits 1 when one is violated', async () => {
    const { writeFileSync } = await import('node:fs');
    const { verify } = await import('../../src/cli/commands/verify.js');
    const file = path.join(base, 'inv.yaml');
    writeFileSync(file, 'extends: [minimal]\nfilesystem:\n  read: ["${WORKSPACE}"]\ninvariants:\n  - never see ~/.ssh\n  - never read ${WORKSPACE}/secrets/**\n');
    let out = '';
    const code = await verify([file, '-w', ws], { write: (s: string) => (out += s) });
    assert.equal(code, 1);
    assert.match(out, /PROVED\s+invariant:1\s+-\n\s+"never see ~\/\.ssh"/);
    assert.match(out, new RegExp(`VIOLATED\\s+invariant:2\\s+read ${ws}/secrets(/\\S*)?\\n\\s+"never read \\$\\{WORKSPACE\\}/secrets/\\*\\*"\\n\\s+granted by: read ${ws}`));
  });
});
