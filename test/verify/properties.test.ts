// `ward verify`: the SMT-proved policy properties. The built-in profiles prove what they
// should, each seeded flaw is caught with a counterexample that shows it, refinement finds
// the access that widens a baseline, and a spent budget is UNKNOWN (exit 1), never PROVED.
// Z3 is initialised once for the whole file (src/verify/smt/z3.ts caches it).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { PolicyInput } from '../../src/api.js';
import { verify } from '../../src/cli/commands/verify.js';
import { WardError } from '../../src/errors.js';
import { isWithin } from '../../src/policy/expand.js';
import { verifyPolicy, type VerifyOptions, type VerifyReport } from '../../src/verify/properties/index.js';
import { prop, verifyEnv } from './helpers.js';

const base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'ward-props-')));
after(() => rmSync(base, { recursive: true, force: true }));
const ws = path.join(base, 'ws');
const home = path.join(base, 'home');
for (const d of [ws, `${ws}/build`, `${ws}/docs`, home]) mkdirSync(d, { recursive: true });
for (const f of ['secret.txt', 'log.txt', '.env']) writeFileSync(`${ws}/${f}`, 'x\n');
const env = verifyEnv(home);

const run = (input: PolicyInput, opts: VerifyOptions = {}): Promise<VerifyReport> => verifyPolicy(input, { workspace: ws, env, ...opts });
const policy = (p: Record<string, unknown>): PolicyInput => ({ policy: { extends: ['minimal'], ...p } });
const POLICY_PROPS = ['no-secret-access', 'visible-not-readable', 'append-not-writable', 'ward-state-ungranted', 'egress'];

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await verify(args, { write: (s: string) => (out += s) });
  return { code, out };
}

describe('built-in profiles', () => {
  for (const name of ['minimal', 'node', 'python']) {
    it(`${name}: every property PROVED, compiled artefacts match`, async () => {
      const r = await run({ profile: name });
      for (const id of [...POLICY_PROPS, 'w-xor-x', 'compiled-artefacts']) assert.equal(prop(r, id).status, 'PROVED', `${name} ${id}: ${JSON.stringify(prop(r, id))}`);
      assert.equal(r.ok, true);
      assert.match(r.policy_sha256, /^[0-9a-f]{64}$/);
      assert.match(r.plan_sha256 ?? '', /^[0-9a-f]{64}$/);
    });
  }

  it('default: W^X VIOLATED by design with the workspace as counterexample; nested .env files are readable', async () => {
    const r = await run(undefined);
    const wx = prop(r, 'w-xor-x');
    assert.equal(wx.status, 'VIOLATED');
    assert.ok(isWithin(wx.counterexample!, ws), wx.counterexample);
    // The profile denies ${WORKSPACE}/.env only: a deeper .env is a real finding.
    const sec = prop(r, 'no-secret-access');
    assert.equal(sec.status, 'VIOLATED');
    assert.ok(isWithin(sec.counterexample!, ws) && sec.counterexample!.split('/').includes('.env'), sec.counterexample);
    assert.notEqual(sec.counterexample, `${ws}/.env`, 'the top-level .env is denied');
    for (const id of ['visible-not-readable', 'append-not-writable', 'ward-state-ungranted', 'egress', 'compiled-artefacts']) assert.equal(prop(r, id).status, 'PROVED', id);
    assert.equal(r.ok, false);
  });
});

describe('seeded flaws', () => {
  it('a write grant over the workspace with no .env deny exposes a .env file', async () => {
    const r = await run(policy({ filesystem: { write: ['${WORKSPACE}'] } }));
    const p = prop(r, 'no-secret-access');
    assert.equal(p.status, 'VIOLATED');
    assert.ok(isWithin(p.counterexample!, ws) && p.counterexample!.split('/').includes('.env'), p.counterexample);
    assert.match(p.detail!, new RegExp(`write ${ws}`));
  });

  it('a grant of HOME leaves the mandatory secrets denied', async () => {
    const r = await run(policy({ filesystem: { read: ['~'] }, sandbox: { home: 'none' } }));
    assert.equal(prop(r, 'no-secret-access').status, 'PROVED');
    assert.equal(prop(r, 'ward-state-ungranted').status, 'PROVED');
  });

  it('seeded flaw: a write grant over HOME with the mandatory ~/.ssh deny dropped is caught, with a path under ~/.ssh', async () => {
    // The loader always adds the mandatory denies, so the flaw is seeded after loading: the
    // property must not rely on the loader having done its job.
    const { preparePolicy } = await import('../../src/api.js');
    const loaded = preparePolicy(policy({ filesystem: { write: ['~'] }, sandbox: { home: 'none' } }), { workspace: ws, env });
    const ssh = path.join(home, '.ssh');
    const deny = loaded.effective.filesystem.deny.filter((e) => e.path !== ssh);
    assert.ok(deny.length < loaded.effective.filesystem.deny.length, 'the mandatory deny of ~/.ssh was there to drop');
    const flawed = { ...loaded, effective: { ...loaded.effective, filesystem: { ...loaded.effective.filesystem, deny } } };
    const p = prop(await run(flawed), 'no-secret-access');
    assert.equal(p.status, 'VIOLATED');
    assert.ok(isWithin(p.counterexample!, ssh), p.counterexample);
    assert.match(p.detail!, new RegExp(`write ${home}`));
  });

  it('w-xor-x PROVED says what it covers: exec of a file by path and memfds, not an interpreter or the dynamic loader reading a writable file', async () => {
    const p = prop(await run(policy({ filesystem: { write: ['${WORKSPACE}'] } })), 'w-xor-x');
    assert.equal(p.status, 'PROVED', JSON.stringify(p));
    assert.match(p.title, /execve\/execveat/);
    assert.match(p.title, /interpreter or the dynamic loader/);
    assert.match(p.detail!, /execve\/execveat/);
    assert.match(p.detail!, /MFD_NOEXEC_SEAL/);
    assert.match(p.detail!, /ld-linux-x86-64\.so\.2 \.\/f/);
    assert.match(p.detail!, /noexec/);
  });

  it('an execute grant over a writable directory breaks W^X inside that directory', async () => {
    const r = await run(policy({ filesystem: { write: ['${WORKSPACE}/build'], execute: ['${WORKSPACE}'] } }));
    const p = prop(r, 'w-xor-x');
    assert.equal(p.status, 'VIOLATED');
    assert.ok(isWithin(p.counterexample!, `${ws}/build`), p.counterexample);
  });

  it('a visible path under a read grant is readable by Landlock, refused by the supervisor: PROVED on that one layer, and said so', async () => {
    const r = await run(policy({ filesystem: { read: ['${WORKSPACE}'], visible: ['${WORKSPACE}/secret.txt'], deny: ['${WORKSPACE}/.env'] } }));
    assert.equal(prop(r, 'compiled-artefacts').status, 'PROVED');
    const p = prop(r, 'visible-not-readable');
    assert.equal(p.status, 'PROVED', JSON.stringify(p));
    assert.match(p.detail!, /^by the supervisor only: .*\/secret\.txt is readable at the Landlock layer/);
    // Outside every read grant, Landlock alone refuses: the plain proof.
    const alone = prop(await run(policy({ filesystem: { read: ['${WORKSPACE}/build'], visible: ['${WORKSPACE}/secret.txt'] } })), 'visible-not-readable');
    assert.equal(alone.status, 'PROVED');
    assert.doesNotMatch(alone.detail!, /supervisor/);
  });

  it('an append-only file under a write grant is writable', async () => {
    const r = await run(policy({ filesystem: { write: ['${WORKSPACE}'], append: ['${WORKSPACE}/log.txt'], deny: ['${WORKSPACE}/.env'] } }));
    const p = prop(r, 'append-not-writable');
    assert.equal(p.status, 'VIOLATED');
    assert.ok(isWithin(p.counterexample!, `${ws}/log.txt`), p.counterexample);
  });

  it('egress: a TLD wildcard and a port wildcard are broader than declared; a bounded wildcard is not', async () => {
    const tld = prop(await run(policy({ network: { allow: ['*.com:443'] } })), 'egress');
    assert.equal(tld.status, 'VIOLATED');
    assert.match(tld.counterexample!, /^[a-z0-9_.-]+\.com:443$/);
    const port = prop(await run(policy({ network: { allow: ['api.github.com:*'] } })), 'egress');
    assert.equal(port.status, 'VIOLATED');
    assert.match(port.counterexample!, /^api\.github\.com:\d+$/);
    const ok = await run(policy({ network: { allow: ['*.github.com:443', 'registry.npmjs.org:443'] } }));
    assert.equal(prop(ok, 'egress').status, 'PROVED');
    // The egress plan compiles: the artefacts are built and checked like any other policy's.
    assert.equal(prop(ok, 'compiled-artefacts').status, 'PROVED');
    assert.notEqual(ok.plan_sha256, null);
  });
});

describe('--refines', () => {
  it('an extra read grant widens the baseline: the counterexample is a path under it', async () => {
    const r = await run(policy({ filesystem: { read: ['${WORKSPACE}/docs'] } }), { base: { profile: 'minimal' } });
    const p = prop(r, 'refines');
    assert.equal(p.status, 'VIOLATED');
    const [access, where] = p.counterexample!.split(' ');
    assert.equal(access, 'read');
    assert.ok(isWithin(where!, `${ws}/docs`), p.counterexample);
  });

  it('a wildcard broader than the declared host is the widening access', async () => {
    const r = await run(policy({ network: { allow: ['*.github.com:443'] } }), { base: policy({ network: { allow: ['api.github.com:443'] } }) });
    const p = prop(r, 'refines');
    assert.equal(p.status, 'VIOLATED');
    const m = /^connect ([a-z0-9_.-]+)\.github\.com:443$/.exec(p.counterexample!);
    assert.ok(m && m[1] !== 'api', p.counterexample);
  });

  it('minimal with default\'s limits refines default (minimal alone has none: looser); default does not refine minimal', async () => {
    const limits = { memory: '4GiB', pids: 1024, wall_time: '1h', file_size: '8GiB', open_files: 4096 };
    assert.equal(prop(await run(policy({ resources: limits }), { base: { profile: 'default' } }), 'refines').status, 'PROVED');
    const bare = prop(await run({ profile: 'minimal' }, { base: { profile: 'default' } }), 'refines');
    assert.equal(bare.status, 'VIOLATED');
    assert.equal(bare.counterexample, 'resources.memory: unlimited (baseline: 4GiB)');
    assert.match(bare.detail!, /^5 loosenings: /);
    const back = prop(await run(undefined, { base: { profile: 'minimal' } }), 'refines');
    assert.equal(back.status, 'VIOLATED');
    assert.ok(isWithin(back.counterexample!.split(' ')[1]!, ws), back.counterexample);
  });
});

describe('budgets and limits', () => {
  it('a 1 ms budget never gives PROVED where the solver has to answer, and exits 1', async () => {
    // Questions settled by prefix reasoning alone (src/verify/properties/decide.ts) need no
    // solver time. This policy's no-secret-access does: the workspace is readable and the
    // easy witnesses for "a .env below it" (${WORKSPACE}/.env, ${WORKSPACE}/sub/.env)
    // are denied, so only Z3 can say whether another one exists. Z3 checks its timeout only
    // now and then, so a small query may still be answered within 1 ms: UNKNOWN or the real
    // answer, never PROVED.
    const p = policy({ filesystem: { read: ['${WORKSPACE}'], deny: ['${WORKSPACE}/.env', { path: '${WORKSPACE}/sub', optional: true }] } });
    const r = await run(p, { timeoutMs: 1 });
    const tight = prop(r, 'no-secret-access');
    assert.ok(tight.status === 'UNKNOWN' || tight.status === 'VIOLATED', JSON.stringify(tight));
    if (tight.status === 'UNKNOWN') assert.match(tight.detail!, /no answer within 1 ms/);
    assert.equal(r.ok, false);
    // With a budget, the question is answered: a deeper .env is readable.
    const full = prop(await run(p), 'no-secret-access');
    assert.equal(full.status, 'VIOLATED');
    assert.ok(isWithin(full.counterexample!, ws) && full.counterexample!.split('/').includes('.env'), full.counterexample);
    const file = path.join(base, 'budget.json');
    writeFileSync(file, JSON.stringify((p as { policy: unknown }).policy));
    const { code, out } = await cli([file, '-w', ws, '--timeout-ms', '1', '--json']);
    assert.equal(code, 1);
    const j = JSON.parse(out) as VerifyReport;
    assert.equal(j.ok, false);
    assert.notEqual(j.properties.find((x) => x.id === 'no-secret-access')?.status, 'PROVED');
  });

  it('the unsplit query over the default profile gets no answer in 1 ms: UNKNOWN is passed up, never turned into a proof', async () => {
    const { solveWhole } = await import('../../src/verify/properties/decide.js');
    const { accessSets, secretSet } = await import('../../src/verify/properties/model.js');
    const { encoder } = await import('../../src/verify/smt/encode.js');
    const { z3 } = await import('../../src/verify/smt/z3.js');
    const { preparePolicy } = await import('../../src/api.js');
    const eff = preparePolicy(undefined, { workspace: ws, env }).effective;
    const w = await solveWhole(encoder(await z3()), [secretSet(eff, env, home), accessSets(eff).read], [], 1);
    assert.equal(w.status, 'unknown', JSON.stringify(w));
  });

  it('a policy with more than 2000 entries is refused with exit 125', async () => {
    const read = Array.from({ length: 2001 }, (_, i) => `/opt/many/p${i}`);
    await assert.rejects(run(policy({ filesystem: { read } })), (e: unknown) => e instanceof WardError && e.exitCode === 125 && /too large/.test(e.message));
  });
});

describe('ward verify CLI', () => {
  it('--json on a proved profile: exit 0, hashes and every property', async () => {
    const { code, out } = await cli(['--profile', 'minimal', '--workspace', ws, '--json']);
    assert.equal(code, 0);
    const j = JSON.parse(out) as VerifyReport;
    assert.equal(j.ok, true);
    assert.match(j.policy_sha256, /^[0-9a-f]{64}$/);
    assert.deepEqual(j.properties.map((p) => p.id), [...POLICY_PROPS.slice(0, 1), 'w-xor-x', ...POLICY_PROPS.slice(1), 'compiled-artefacts']);
  });

  it('table output for a file with --refines: exit 1 and the widening access', async () => {
    const file = path.join(base, 'wide.yaml');
    writeFileSync(file, 'extends: [minimal]\nfilesystem:\n  read: ["${WORKSPACE}/docs"]\n');
    const { code, out } = await cli([file, '--refines', 'minimal', '-w', ws]);
    assert.equal(code, 1);
    assert.match(out, /policy sha256 [0-9a-f]{64}/);
    assert.match(out, new RegExp(`VIOLATED\\s+refines\\s+read ${ws}/docs`));
    // The read grant also exposes ${WORKSPACE}/docs/**/.env: a second, real finding.
    assert.match(out, new RegExp(`VIOLATED\\s+no-secret-access\\s+${ws}/docs/(.+/)?\\.env`));
    assert.match(out, /not ok: 6 proved, 2 violated, 0 unknown, 0 error in \d+ ms \(solver start \d+ ms\)/);
  });

  it('usage errors and invalid policies exit 125', async () => {
    for (const args of [[], ['--timeout-ms', '0', '--profile', 'minimal'], ['--bogus'], ['a.yaml', 'b.yaml']]) {
      await assert.rejects(cli(args), (e: unknown) => e instanceof WardError && e.exitCode === 125, args.join(' '));
    }
    const bad = path.join(base, 'bad.yaml');
    writeFileSync(bad, 'filesystem:\n  reed: ["/x"]\n');
    await assert.rejects(cli([bad, '-w', ws]), (e: unknown) => e instanceof WardError && e.exitCode === 125);
  });
});

describe('a verification in the launch record', () => {
  it('run() keeps a verification of this very policy and plan, and refuses one about another', async () => {
    const { run } = await import('../../src/index.js');
    const { hasCgroup } = await import('../helpers.js');
    const minimal: PolicyInput = { profile: 'minimal' };
    const report = await verifyPolicy(minimal, { workspace: ws });
    const summary = { policy_sha256: report.policy_sha256, plan_sha256: report.plan_sha256, ok: report.ok, properties: report.properties.map((p) => ({ id: p.id, status: p.status })), ms: 1 };
    const opts = { workspace: ws, stdin: 'ignore' as const, audit: false as const, allowDegraded: !hasCgroup };
    const r = await run(minimal, ['true'], { ...opts, verification: summary });
    assert.equal(r.exitCode, 0);
    assert.deepEqual(r.launch.verification, summary);
    assert.equal(r.launch.plan_sha256, report.plan_sha256);
    // The same verification offered for the default profile: another policy, refused before anything runs.
    await assert.rejects(run({ profile: 'default' }, ['true'], { ...opts, verification: summary }), /another policy or plan/);
  });
});

describe('network.allow_local is a destination the policy can connect to (as the broker names it, 127.0.0.1:PORT)', () => {
  it('"never connect *" with allow_local [5432] is VIOLATED with 127.0.0.1:5432, naming allow_local', async () => {
    const r = await run({ policy: { extends: ['default'], network: { allow_local: [5432] }, invariants: ['never connect *', 'never connect 127.0.0.1:5432', 'never connect 127.0.0.1:5433'] } });
    const any = prop(r, 'invariant:1');
    assert.equal(any.status, 'VIOLATED', JSON.stringify(any));
    assert.equal(any.counterexample, 'connect 127.0.0.1:5432');
    assert.match(any.detail!, /network\.allow_local 5432/);
    assert.equal(prop(r, 'invariant:2').status, 'VIOLATED');
    assert.equal(prop(r, 'invariant:3').status, 'PROVED', 'only the listed port is reachable');
    // A specific loopback port is a declared destination with a specific port: egress holds.
    assert.equal(prop(r, 'egress').status, 'PROVED');
  });

  it('--refines: an allow_local port the baseline does not list widens it; the same port refines', async () => {
    const p = prop(await run(policy({ network: { allow_local: [5432] } }), { base: { profile: 'minimal' } }), 'refines');
    assert.equal(p.status, 'VIOLATED', JSON.stringify(p));
    assert.match(p.counterexample!, /127\.0\.0\.1:5432/);
    assert.match(p.detail!, /allow_local/);
    const same = prop(await run(policy({ network: { allow_local: [5432] } }), { base: policy({ network: { allow_local: [5432, 6379] } }) }), 'refines');
    assert.equal(same.status, 'PROVED', JSON.stringify(same));
  });
});

describe('sandbox.landlock: off takes away the only layer that restricts execute', () => {
  it('w-xor-x: a write grant is executable too (VIOLATED with a path under it); "never execute" there is VIOLATED', async () => {
    const r = await run(policy({ filesystem: { write: ['${WORKSPACE}/build'] }, sandbox: { landlock: 'off' }, invariants: ['never execute ${WORKSPACE}/build/**'] }));
    const wx = prop(r, 'w-xor-x');
    assert.equal(wx.status, 'VIOLATED', JSON.stringify(wx));
    assert.ok(isWithin(wx.counterexample!, `${ws}/build`), wx.counterexample);
    assert.match(wx.detail!, /sandbox\.landlock: off/);
    assert.equal(prop(r, 'invariant:1').status, 'VIOLATED');
    // The same policy with Landlock: PROVED (nothing is granted execute).
    assert.equal(prop(await run(policy({ filesystem: { write: ['${WORKSPACE}/build'] } })), 'w-xor-x').status, 'PROVED');
  });

  it('w-xor-x: with no write grant at all, the private /tmp is writable and executable', async () => {
    const wx = prop(await run(policy({ sandbox: { landlock: 'off' } })), 'w-xor-x');
    assert.equal(wx.status, 'VIOLATED', JSON.stringify(wx));
    assert.equal(wx.counterexample, '/tmp');
    assert.match(wx.detail!, /private tmpfs/);
    // Denied, /tmp is no private tmpfs; $HOME is not made either with home: none.
    assert.equal(prop(await run(policy({ filesystem: { deny: ['/tmp'] }, sandbox: { landlock: 'off', home: 'none' } })), 'w-xor-x').status, 'PROVED');
  });

  it('visible-not-readable: a visible path outside every read grant is refused by the supervisor only, and said so', async () => {
    const r = await run(policy({ filesystem: { read: ['${WORKSPACE}/build'], visible: ['${WORKSPACE}/secret.txt'] }, sandbox: { landlock: 'off' } }));
    const p = prop(r, 'visible-not-readable');
    assert.equal(p.status, 'PROVED', JSON.stringify(p));
    assert.match(p.detail!, /^by the supervisor only: .*\/secret\.txt is readable at the mount layer \(sandbox\.landlock: off/);
  });
});
