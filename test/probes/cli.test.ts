/**
 * `ward probe` as a user meets it (the built CLI): a readable table, --json with
 * the documented keys, exit 0 only when every probe held, 1 when a promise is
 * broken, 125 when Ward refuses; every probe's run recorded in the audit log.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ALL_PROBES, type ProbeReport } from '../../src/probes/index.js';
import { hasCgroup, tempDir, ward, wardWithReadOnlyCgroups } from '../helpers.js';
import { ALLOWED_BROKEN } from './known-gaps.js';

const degraded = hasCgroup ? [] : ['--allow-degraded'];

function fixture() {
  const base = tempDir('ward-test-probe-cli-');
  const home = path.join(base, 'home');
  const ws = path.join(base, 'ws');
  mkdirSync(home, { mode: 0o700 });
  mkdirSync(ws);
  // TMPDIR: the suite's scratch directories go inside this test's own, not beside other tests' in /tmp.
  // The log where Ward keeps it by default, under its state directory: hidden by the mandatory
  // denies even from the probe that grants the temporary directories (net.egress-broker-socket).
  return { base, home, ws, log: path.join(home, '.local', 'state', 'ward', 'audit.jsonl'), env: { ...process.env, HOME: home, XDG_CONFIG_HOME: '', XDG_STATE_HOME: '', TMPDIR: base } };
}

describe('ward probe', () => {
  it('--json: the whole suite, every probe with the documented keys, the exit code matching the results', () => {
    const fx = fixture();
    const r = ward(['probe', '--json', ...degraded, '--audit-log', fx.log], { cwd: fx.ws, env: fx.env, timeout: 120_000 });
    const out = JSON.parse(r.stdout) as ProbeReport;
    assert.equal(out.probes.length, ALL_PROBES.length);
    for (const p of out.probes) for (const k of ['id', 'group', 'promise', 'mechanism', 'asi', 'nist', 'status', 'detail']) assert.ok(k in p, `${p.id} lacks ${k}`);
    assert.match(out.policy_sha256, /^[0-9a-f]{64}$/);
    assert.deepEqual(Object.keys(out.summary).sort(), ['broken', 'error', 'held', 'skipped']);
    const bad = out.probes.filter((p) => p.status === 'error' || (p.status === 'broken' && !ALLOWED_BROKEN.has(p.id)));
    assert.deepEqual(bad.map((p) => `${p.id}: ${p.detail}`), []);
    assert.equal(r.code, out.summary.broken + out.summary.error === 0 ? 0 : 1, r.stderr);

    // Every probe's sandbox is in the audit log: a launch and an exit record each (plus the preflight).
    const records = readFileSync(fx.log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string });
    // A probe ran when its sandbox did (it has the run's exit code): a skip may come after its run
    // (res.memory-shared without a cgroup) or before it (a missing tool), and a probe held by Ward
    // refusing its policy (fs.deny-link-reaim) has that policy's hash but no run.
    const ran = out.probes.filter((p) => p.exit_code !== null);
    assert.equal(records.filter((x) => x.type === 'launch').length, ran.length + 1);
    assert.equal(records.filter((x) => x.type === 'exit').length, ran.length + 1);
    assert.ok(ran.every((p) => (p.audit_records ?? 0) >= 2));
    assert.equal(out.audit_log, fx.log);
    const verify = ward(['audit', 'verify', fx.log], { env: fx.env });
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  });

  it('as root with every cgroup mount read-only and --allow-degraded: the fork bomb holds because Ward refuses to run it; the shared-memory hog is skipped, RLIMIT_DATA not counting it', (t) => {
    const fx = fixture();
    const policy = path.join(fx.base, 'degraded.json');
    // No pids in the policy itself (the suite's own first run would be refused): the probe's overlay adds it.
    writeFileSync(policy, JSON.stringify({ extends: ['minimal', 'python'], filesystem: { write: ['${WORKSPACE}'] }, sandbox: { allow_degraded: true } }));
    const r = wardWithReadOnlyCgroups(() => true, ['probe', '--json', '--policy', policy, '--allow-degraded', '--only', 'res.fork-bomb,res.memory-shared', '--audit-log', fx.log], { cwd: fx.ws, env: fx.env });
    if (typeof r === 'string') return t.skip(r);
    const out = JSON.parse(r.stdout) as ProbeReport;
    const bomb = out.probes.find((p) => p.id === 'res.fork-bomb')!;
    assert.equal(bomb.status, 'held', bomb.detail);
    assert.match(bomb.detail, /nothing stands in for pids as root: Ward refused to run the bomb \(cannot apply the policy's pids limit \(32\) without a cgroup, even degraded\)/);
    const shared = out.probes.find((p) => p.id === 'res.memory-shared')!;
    assert.equal(shared.status, 'skipped', shared.detail);
    assert.match(shared.detail, /RLIMIT_DATA does not count shared memory/);
    assert.ok(shared.degraded.some((d) => /^memory: RLIMIT_DATA per process only .*not shared memory/.test(d)), shared.degraded.join('\n'));
    assert.equal(r.code, 0, r.stderr);
    const records = readFileSync(fx.log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; step?: string });
    assert.ok(records.some((x) => x.type === 'launch-failed' && x.step === 'cgroup'), 'the refused bomb is in the audit log');
  });

  it('a readable table: groups, ✓ per held probe, a summary; exit 0 when everything held', () => {
    const fx = fixture();
    const r = ward(['probe', '--only', 'network,terminal', ...degraded, '--audit-log', fx.log], { cwd: fx.ws, env: fx.env });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^network \(\d+\/\d+ held\)$/m);
    assert.match(r.stdout, /^terminal \(6\/6 held\)$/m);
    assert.match(r.stdout, /✓ held\s+term\.tiocsti\s+seccomp/);
    assert.match(r.stdout, /^summary: \d+ held, 0 broken, 0 error, 0 skipped/m);
    assert.doesNotMatch(r.stdout, /filesystem|BROKEN/);
  });

  it('a broken promise is loud and exits 1: a policy without the .env deny', () => {
    const fx = fixture();
    writeFileSync(path.join(fx.ws, 'weak.yaml'), 'extends: [minimal, node, python]\nfilesystem:\n  write: ["${WORKSPACE}"]\n  execute: ["${WORKSPACE}"]\n');
    const r = ward(['probe', '--policy', 'weak.yaml', '--only', 'sec.workspace-dotenv', '--audit-log', fx.log], { cwd: fx.ws, env: fx.env });
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /✗ BROKEN\s+sec\.workspace-dotenv/);
    assert.match(r.stdout, /PROMISE BROKEN: a workspace secret was read/);
    assert.match(r.stdout, /1 PROMISE BROKEN: sec\.workspace-dotenv/);
    const j = ward(['probe', '--policy', 'weak.yaml', '--only', 'sec.workspace-dotenv', '--json', '--audit-log', fx.log], { cwd: fx.ws, env: fx.env });
    assert.equal(j.code, 1);
    assert.equal((JSON.parse(j.stdout) as ProbeReport).probes[0]!.status, 'broken');
  });

  it('Ward refusals exit 125 with the fix: an unknown probe, an unknown option, an invalid policy', () => {
    const fx = fixture();
    const a = ward(['probe', '--only', 'nonsense', '--audit-log', fx.log], { cwd: fx.ws, env: fx.env });
    assert.equal(a.code, 125);
    assert.match(a.stderr, /unknown probe group or id: nonsense/);
    const b = ward(['probe', '--frobnicate'], { cwd: fx.ws, env: fx.env });
    assert.equal(b.code, 125);
    assert.match(b.stderr, /unknown option --frobnicate/);
    writeFileSync(path.join(fx.ws, 'bad.yaml'), 'filesystem:\n  raed: ["/etc"]\n');
    const c = ward(['probe', '--policy', 'bad.yaml', '--audit-log', fx.log], { cwd: fx.ws, env: fx.env });
    assert.equal(c.code, 125);
    assert.match(c.stderr, /policy error in .*bad\.yaml/);
  });

  it('--only with an empty list and --report naming a file are refused before any probe runs, without a stack trace', () => {
    const fx = fixture();
    for (const only of ['', ' , ']) {
      const r = ward(['probe', '--only', only, ...degraded, '--audit-log', fx.log], { cwd: fx.ws, env: fx.env });
      assert.equal(r.code, 125, r.stdout + r.stderr);
      assert.match(r.stderr, /--only was given no group or probe id/);
      assert.equal(existsSync(fx.log), false, 'no probe ran');
    }
    const file = path.join(fx.base, 'a-file');
    writeFileSync(file, 'x');
    const r = ward(['probe', '--only', 'terminal', ...degraded, '--audit-log', fx.log, '--report', file], { cwd: fx.ws, env: fx.env });
    assert.equal(r.code, 125, r.stdout + r.stderr);
    assert.doesNotMatch(r.stderr, /internal error|    at /);
    assert.match(r.stderr, /--report .*a-file.* exists and is not a directory|report writer not available/);
    assert.equal(existsSync(fx.log), false, 'no probe ran');
  });

  it('--report DIR hands the results to the report writer (or says it is not available)', () => {
    const fx = fixture();
    const dir = path.join(fx.base, 'report');
    const r = ward(['probe', '--only', 'terminal', ...degraded, '--audit-log', fx.log, '--report', dir], { cwd: fx.ws, env: fx.env });
    if (r.code === 125) {
      assert.match(r.stderr, /report writer not available/);
      return;
    }
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(path.join(dir, 'report.json')), r.stderr);
    const doc = JSON.parse(readFileSync(path.join(dir, 'report.json'), 'utf8')) as { probes: ProbeReport };
    assert.equal(doc.probes.probes.length, 6);
  });
});
