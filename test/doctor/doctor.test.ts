/**
 * The posture doctor against this machine and against hosts made bad on
 * purpose: a readable audit key, a log directory anyone can write, a policy
 * granting a world-writable directory, secrets in the environment. Every check
 * here looks at real files and runs real programs; nothing is mocked.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { auditKeyCheck, auditLogCheck } from '../../src/doctor/checks/audit.js';
import { looksSecret } from '../../src/doctor/checks/env.js';
import { envSecretsCheck } from '../../src/doctor/checks/env.js';
import { stateOutsideGrantsCheck, worldWritableGrantsCheck } from '../../src/doctor/checks/policy.js';
import { CHECKS, isBlocking, penalty, renderDoctor, runDoctor, score, type Check, type CheckResult } from '../../src/doctor/index.js';
import type { CgroupMount } from '../../src/sandbox/cgroup.js';
import { tempDir, wardWithReadOnlyCgroups, which } from '../helpers.js';

/** A private HOME with no XDG overrides, so Ward's directories are under it. */
function host(): { home: string; ws: string; env: NodeJS.ProcessEnv } {
  const base = tempDir('ward-doctor-');
  const home = path.join(base, 'home');
  const ws = path.join(base, 'ws');
  mkdirSync(home, { mode: 0o700 });
  mkdirSync(ws);
  return { home, ws, env: { ...process.env, HOME: home, XDG_CONFIG_HOME: '', XDG_STATE_HOME: '', XDG_CACHE_HOME: '' } };
}

function find(r: { checks: CheckResult[] }, id: string): CheckResult {
  const c = r.checks.find((x) => x.id === id);
  assert.ok(c, `no check ${id}`);
  return c;
}

describe('ward doctor on this machine', () => {
  it('runs every check, each with id, title, severity, status and evidence; the score and exit code follow from them', async () => {
    const h = host();
    const r = await runDoctor({ workspace: h.ws, env: h.env });
    assert.equal(r.checks.length, CHECKS.length);
    assert.equal(new Set(r.checks.map((c) => c.id)).size, r.checks.length, 'ids are unique');
    for (const c of r.checks) {
      assert.match(c.id, /^[a-z]+\.[a-z0-9-]+$/);
      assert.ok(c.title && c.evidence, c.id);
      assert.ok(['critical', 'high', 'medium', 'low', 'info'].includes(c.severity), c.id);
      assert.ok(['pass', 'fail', 'warn', 'info'].includes(c.status), c.id);
      if (c.status === 'fail' || c.status === 'warn') assert.ok(c.fix, `${c.id} ${c.status} without a fix`);
      if (c.degrades) assert.ok(c.status === 'fail' || c.status === 'warn', `${c.id} degrades while ${c.status}`);
    }
    assert.equal(r.score, score(r.checks));
    assert.ok(r.score >= 0 && r.score <= 100);
    assert.equal(r.exit_code, r.checks.some(isBlocking) ? 1 : 0);
    assert.deepEqual(r.degrades, r.checks.filter((c) => c.degrades).map((c) => `${c.id}: ${c.degrades}`));
    assert.equal(r.summary.pass + r.summary.fail + r.summary.warn + r.summary.info, r.checks.length);
  });

  it('bwrap present: host.bwrap passes with its version; user namespaces, seccomp, Landlock and the cgroup are really tried', async (t) => {
    if (!which('bwrap')) return t.skip('bwrap is not installed here');
    const h = host();
    const r = await runDoctor({ workspace: h.ws, env: h.env });
    const bwrap = find(r, 'host.bwrap');
    assert.equal(bwrap.status, 'pass', bwrap.evidence);
    assert.match(bwrap.evidence, /bubblewrap \d+\.\d+/);
    assert.equal(find(r, 'host.bwrap-setuid').status, 'pass');
    const userns = find(r, 'host.userns');
    assert.equal(userns.status, 'pass', userns.evidence);
    assert.match(userns.evidence, /user\.max_user_namespaces=\d+/);
    assert.equal(find(r, 'host.seccomp').status, 'pass');
    assert.match(find(r, 'host.seccomp-notify').evidence, /user_notif/);
    // The check `ward run` makes before a policy with rules, made by the doctor too.
    assert.match(find(r, 'host.seccomp-notify').evidence, /supervised mode can run here/);
    assert.match(find(r, 'host.landlock').evidence, /^ABI \d+/);
    const cg = find(r, 'host.cgroup');
    if (process.getuid?.() === 0) {
      assert.equal(cg.status, 'pass', cg.evidence);
      assert.match(cg.evidence, /created and removed a cgroup v[12] .*pids/);
    }
    assert.equal(find(r, 'host.root').status, process.getuid?.() === 0 ? 'info' : 'pass');
  });

  it('host.cgroup with a cpu_time policy: CPU accounting is tried too, and without a cgroup the per-process fallback is named', async () => {
    const h = host();
    const r = await runDoctor({ workspace: h.ws, env: h.env, policy: { policy: { extends: ['minimal'], resources: { cpu_time: '2s' } } } });
    const cg = find(r, 'host.cgroup');
    if (cg.status === 'pass') assert.match(cg.evidence, /CPU accounting \(for cpu_time\)/);
    else {
      assert.equal(cg.severity, 'high', 'the policy wants the cgroup (cpu_time)');
      assert.match(cg.evidence, /cpu_time/);
      assert.match(cg.degrades ?? '', /RLIMIT_CPU/);
    }
    if (process.getuid?.() === 0) assert.equal(cg.status, 'pass', cg.evidence);
  });

  it("host.cgroup tries the controllers the policy's own limits need: with the cpu controller read-only, a policy with cpus fails the check as its run fails, one without passes as its run does", (t) => {
    const h = host();
    // v1's cpu controller alone (cpu.cfs_quota_us, for cpus); cpuacct, memory and pids stay writable.
    const cpuOnly = (m: CgroupMount) => m.type === 'cgroup' && m.options.includes('cpu');
    const doctorAndRun = (resources: Record<string, unknown>) => {
      const file = path.join(h.ws, '..', 'policy.json');
      writeFileSync(file, JSON.stringify({ extends: ['minimal'], resources }));
      const d = wardWithReadOnlyCgroups(cpuOnly, ['doctor', '--json', '--policy', file, '--workspace', h.ws], { env: h.env });
      const r = wardWithReadOnlyCgroups(cpuOnly, ['run', '--policy', file, '--workspace', h.ws, '--', 'true'], { env: h.env });
      if (typeof d === 'string' || typeof r === 'string') return typeof d === 'string' ? d : (r as string);
      return { check: find(JSON.parse(d.stdout) as { checks: CheckResult[] }, 'host.cgroup'), run: r };
    };
    const withCpus = doctorAndRun({ memory: '256MiB', pids: 64, cpus: 1 });
    if (typeof withCpus === 'string') return t.skip(withCpus);
    assert.equal(withCpus.run.code, 125, 'the run cannot make its cgroup');
    assert.match(withCpus.run.stderr, /cannot apply the policy's resource limits .*cpus 1/);
    assert.equal(withCpus.check.status, 'fail', withCpus.check.evidence);
    assert.equal(withCpus.check.severity, 'high');
    assert.match(withCpus.check.evidence, /cannot apply the policy's resource limits \(memory 268435456, pids 64, cpus 1\): .*EROFS.*\/sys\/fs\/cgroup\/cpu/);
    const without = doctorAndRun({ memory: '256MiB', pids: 64 });
    if (typeof without === 'string') return t.skip(without);
    assert.equal(without.run.code, 0, without.run.stderr);
    assert.equal(without.check.status, 'pass', without.check.evidence);
    assert.match(without.check.evidence, /memory\.limit_in_bytes=268435456 .*pids\.max=64/);
  });

  it('renders one line per check with ✓ ✗ ! i, the score and what would degrade', async () => {
    const h = host();
    const r = await runDoctor({ workspace: h.ws, env: h.env });
    const text = renderDoctor(r);
    for (const c of r.checks) assert.match(text, new RegExp(`^[✓✗!i] ${c.id.replace('.', '\\.')} `, 'm'));
    assert.match(text, new RegExp(`^score ${r.score}/100 · `, 'm'));
    assert.match(text, /^what would degrade/m);
  });
});

describe('the audit key (keys.audit-key)', () => {
  it('missing: a warning whose fix is `ward keys init`', async () => {
    const h = host();
    const c = find(await runDoctor({ workspace: h.ws, env: h.env, checks: [auditKeyCheck] }), 'keys.audit-key');
    assert.equal(c.status, 'warn');
    assert.match(c.evidence, new RegExp(`no key at ${h.home}/\\.config/ward/audit\\.key`));
    assert.match(c.fix!, /ward keys init/);
    assert.match(c.degrades!, /signed audit checkpoints/);
  });

  it('0644: fails (high) with the mode in the evidence and chmod 600 as the fix', async () => {
    const h = host();
    const dir = path.join(h.home, '.config', 'ward');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(path.join(dir, 'audit.key'), 'not a real key\n', { mode: 0o644 });
    chmodSync(path.join(dir, 'audit.key'), 0o644);
    const r = await runDoctor({ workspace: h.ws, env: h.env, checks: [auditKeyCheck] });
    const c = find(r, 'keys.audit-key');
    assert.equal(c.status, 'fail');
    assert.equal(c.severity, 'high');
    assert.match(c.evidence, /mode 0644: readable by every user/);
    assert.match(c.fix!, new RegExp(`chmod 600 ${path.join(dir, 'audit.key')}`));
    assert.equal(r.exit_code, 1, 'a high failure fails the doctor');
  });

  it('0600 and ours: passes; a group-writable directory around it fails', async () => {
    const h = host();
    const dir = path.join(h.home, '.config', 'ward');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(path.join(dir, 'audit.key'), 'k\n', { mode: 0o600 });
    const ok = find(await runDoctor({ workspace: h.ws, env: h.env, checks: [auditKeyCheck] }), 'keys.audit-key');
    assert.equal(ok.status, 'pass', ok.evidence);
    assert.match(ok.evidence, /mode 0600/);
    chmodSync(dir, 0o770);
    const bad = find(await runDoctor({ workspace: h.ws, env: h.env, checks: [auditKeyCheck] }), 'keys.audit-key');
    assert.equal(bad.status, 'fail');
    assert.match(bad.evidence, /writable by its group \(mode 0770\): the key can be replaced/);
  });
});

describe('the audit log (audit.log)', () => {
  it('no state directory yet: information, with where it will be', async () => {
    const h = host();
    const c = find(await runDoctor({ workspace: h.ws, env: h.env, checks: [auditLogCheck] }), 'audit.log');
    assert.equal(c.status, 'info');
    assert.match(c.evidence, /\.local\/state\/ward\/audit\.jsonl/);
  });

  it('0700 with 0600 files: passes; a file others can write is critical; a directory others can write is critical', async () => {
    const h = host();
    const dir = path.join(h.home, '.local', 'state', 'ward');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const log = path.join(dir, 'audit.jsonl');
    writeFileSync(log, '{}\n', { mode: 0o600 });
    const ok = find(await runDoctor({ workspace: h.ws, env: h.env, checks: [auditLogCheck] }), 'audit.log');
    assert.equal(ok.status, 'pass', ok.evidence);
    assert.match(ok.evidence, /mode 0700.*1 file \(the default log audit\.jsonl among them\), all private/);

    chmodSync(log, 0o666);
    const file = await runDoctor({ workspace: h.ws, env: h.env, checks: [auditLogCheck] });
    assert.equal(find(file, 'audit.log').status, 'fail');
    assert.equal(find(file, 'audit.log').severity, 'critical');
    assert.match(find(file, 'audit.log').evidence, /audit\.jsonl is writable by every user \(mode 0666\)/);
    assert.equal(file.exit_code, 1);

    chmodSync(log, 0o600);
    chmodSync(dir, 0o777);
    const d = find(await runDoctor({ workspace: h.ws, env: h.env, checks: [auditLogCheck] }), 'audit.log');
    assert.equal(d.status, 'fail');
    assert.equal(d.severity, 'critical');
    assert.match(d.evidence, /writable by every user \(mode 0777\): anyone can replace or delete the log/);
    assert.match(d.fix!, /chmod 700/);

    chmodSync(dir, 0o755);
    const readable = find(await runDoctor({ workspace: h.ws, env: h.env, checks: [auditLogCheck] }), 'audit.log');
    assert.equal(readable.status, 'warn', 'readable by others is a warning, not a failure');
    assert.equal(readable.severity, 'low');
  });
});

describe('what a policy grants (policy.world-writable, policy.state-dir)', () => {
  it('a world-writable directory the policy grants is flagged, with where the grant was written', async () => {
    const h = host();
    const open = path.join(tempDir('ward-ww-'), 'shared');
    mkdirSync(open);
    chmodSync(open, 0o777);
    const r = await runDoctor({ workspace: h.ws, env: h.env, policy: { policy: { extends: ['minimal'], filesystem: { read: [open] } } }, checks: [worldWritableGrantsCheck] });
    const c = find(r, 'policy.world-writable');
    assert.equal(c.status, 'fail');
    assert.equal(c.severity, 'high');
    assert.match(c.evidence, new RegExp(`filesystem\\.read ${open} \\(\\(policy object\\) filesystem\\.read\\[0\\]\\): ${open} is writable by every user \\(mode 0777\\)`));
    assert.match(c.fix!, /grant a private directory instead/);
    assert.equal(r.exit_code, 1);
  });

  it('a private directory under a world-writable parent without the sticky bit is flagged; under a sticky one (/tmp) it is not', async () => {
    const h = host();
    const parent = path.join(tempDir('ward-ww-'), 'open');
    mkdirSync(parent);
    chmodSync(parent, 0o777);
    const inner = path.join(parent, 'inner');
    mkdirSync(inner, { mode: 0o755 });
    const bad = find(await runDoctor({ workspace: h.ws, env: h.env, policy: { policy: { extends: ['minimal'], filesystem: { write: [inner] } } }, checks: [worldWritableGrantsCheck] }), 'policy.world-writable');
    assert.equal(bad.status, 'fail');
    assert.match(bad.evidence, new RegExp(`${parent}, above it, is world-writable without the sticky bit \\(mode 0777\\)`));

    const priv = tempDir('ward-private-'); // under /tmp: 1777, sticky
    chmodSync(priv, 0o700);
    const ok = find(await runDoctor({ workspace: h.ws, env: h.env, policy: { policy: { extends: ['minimal'], filesystem: { write: [priv] } } }, checks: [worldWritableGrantsCheck] }), 'policy.world-writable');
    assert.equal(ok.status, 'pass', ok.evidence);
  });

  it('the default policy grants nothing others can write (here)', async () => {
    const h = host();
    const c = find(await runDoctor({ workspace: h.ws, env: h.env, checks: [worldWritableGrantsCheck] }), 'policy.world-writable');
    assert.equal(c.status, 'pass', c.evidence);
    assert.match(c.evidence, /granted paths of profile:minimal .* checked/);
  });

  it("Ward's state inside a grant: masked (a warning) under a read grant; a writable grant over it is refused (a failure naming the refusal)", async () => {
    const h = host();
    const writable = { policy: { extends: ['minimal'], filesystem: { write: ['~/.local'] } } };
    mkdirSync(path.join(h.home, '.local'), { recursive: true });
    const refused = find(await runDoctor({ workspace: h.ws, env: h.env, policy: writable, checks: [stateOutsideGrantsCheck] }), 'policy.state-dir');
    assert.equal(refused.status, 'fail');
    assert.match(refused.evidence, new RegExp(`Ward refuses to run this policy here: .*filesystem\\.write ${h.home}/\\.local is writable and contains Ward's own directory ${h.home}/\\.local/state/ward`));
    assert.match(refused.fix!, /grant write only on the directories the command must change/);

    const home = { policy: { extends: ['minimal'], filesystem: { read: ['~'] } } };
    const masked = find(await runDoctor({ workspace: h.ws, env: h.env, policy: home, checks: [stateOutsideGrantsCheck] }), 'policy.state-dir');
    assert.equal(masked.status, 'warn', masked.evidence);
    assert.match(masked.evidence, /masked by the mandatory deny/);

    const outside = find(await runDoctor({ workspace: h.ws, env: h.env, checks: [stateOutsideGrantsCheck] }), 'policy.state-dir');
    assert.equal(outside.status, 'pass', outside.evidence);
  });
});

describe('secrets in the environment (env.secrets)', () => {
  const VALUE = 'sk-live-DO-NOT-PRINT-4f7c2a9e';

  it('secret-looking names are reported, their values never', async () => {
    const h = host();
    const env = { ...h.env, WARD_TEST_SERVICE_TOKEN: VALUE, WARD_TEST_DB_PASSWORD: VALUE, OPENAI_API_KEY: VALUE, WARD_TEST_HARMLESS: VALUE };
    const r = await runDoctor({ workspace: h.ws, env, checks: [envSecretsCheck] });
    const c = find(r, 'env.secrets');
    assert.equal(c.status, 'warn');
    for (const n of ['WARD_TEST_SERVICE_TOKEN', 'WARD_TEST_DB_PASSWORD', 'OPENAI_API_KEY']) assert.ok(c.evidence.includes(n), n);
    assert.ok(!c.evidence.includes('WARD_TEST_HARMLESS'));
    assert.match(c.evidence, /Ward does not pass them into a sandbox/);
    assert.ok(!JSON.stringify(r).includes(VALUE), 'no value anywhere in the report');
    assert.ok(!renderDoctor(r).includes(VALUE));
  });

  it('a policy that passes one of them into the sandbox fails (high)', async () => {
    const h = host();
    const env = { ...h.env, WARD_TEST_SERVICE_TOKEN: VALUE };
    const r = await runDoctor({ workspace: h.ws, env, policy: { policy: { extends: ['minimal'], env: { pass: ['WARD_TEST_SERVICE_TOKEN'] } } }, checks: [envSecretsCheck] });
    const c = find(r, 'env.secrets');
    assert.equal(c.status, 'fail');
    assert.equal(c.severity, 'high');
    assert.match(c.evidence, /env\.pass hands WARD_TEST_SERVICE_TOKEN to every sandboxed command/);
    assert.ok(!JSON.stringify(r).includes(VALUE));
  });

  it('names: credentials yes, settings and look-alikes no', () => {
    for (const n of ['GITHUB_TOKEN', 'AWS_SECRET_ACCESS_KEY', 'AWS_ACCESS_KEY_ID', 'ANTHROPIC_API_KEY', 'PGPASSWORD', 'NPM_TOKEN', 'DATABASE_URL', 'GOOGLE_APPLICATION_CREDENTIALS', 'MY_KEY']) assert.ok(looksSecret(n), n);
    for (const n of ['PATH', 'HOME', 'PWD', 'KEYBOARD', 'LESSKEY', 'AWS_REGION', 'AWS_CA_BUNDLE', 'GITHUB_WORKSPACE', 'SSH_AUTH_SOCK']) assert.ok(!looksSecret(n), n);
  });
});

describe('score and exit code', () => {
  const fixed = (id: string, severity: CheckResult['severity'], status: CheckResult['status']): Check => ({
    id,
    title: id,
    severity,
    run: () => ({ status, evidence: `${status} on purpose`, fix: 'x', degrades: `${id} layer` }),
  });

  it("SecureClaw's penalties: 15/8/3/1 for a failure, half (rounded up) for a warning, floor 0", () => {
    assert.equal(penalty({ status: 'fail', severity: 'critical' }), 15);
    assert.equal(penalty({ status: 'fail', severity: 'high' }), 8);
    assert.equal(penalty({ status: 'fail', severity: 'medium' }), 3);
    assert.equal(penalty({ status: 'fail', severity: 'low' }), 1);
    assert.equal(penalty({ status: 'warn', severity: 'critical' }), 8);
    assert.equal(penalty({ status: 'warn', severity: 'medium' }), 2);
    assert.equal(penalty({ status: 'pass', severity: 'critical' }), 0);
    assert.equal(penalty({ status: 'info', severity: 'high' }), 0);
    assert.equal(score(Array.from({ length: 8 }, () => ({ status: 'fail' as const, severity: 'critical' as const }))), 0);
  });

  it('exit 1 only when a critical or high check fails; degrades lists the layers of failed and warned checks', async () => {
    const h = host();
    const medium = await runDoctor({ workspace: h.ws, env: h.env, checks: [fixed('t.a', 'medium', 'fail'), fixed('t.b', 'critical', 'warn'), fixed('t.c', 'high', 'pass')] });
    assert.equal(medium.exit_code, 0);
    assert.equal(medium.score, 100 - 3 - 8);
    assert.deepEqual(medium.degrades, ['t.a: t.a layer', 't.b: t.b layer']);
    const high = await runDoctor({ workspace: h.ws, env: h.env, checks: [fixed('t.a', 'high', 'fail')] });
    assert.equal(high.exit_code, 1);
    assert.match(renderDoctor(high), /^✗ t\.a +t\.a \[high\]$/m);
    assert.match(renderDoctor(high), /exit 1: t\.a failed/);
  });

  it('a check that throws is reported as a warning, and the others still run', async () => {
    const h = host();
    const boom: Check = { id: 't.boom', title: 'boom', severity: 'high', run: () => { throw new Error('kaboom'); } };
    const r = await runDoctor({ workspace: h.ws, env: h.env, checks: [boom, fixed('t.ok', 'low', 'pass')] });
    assert.equal(find(r, 't.boom').status, 'warn');
    assert.match(find(r, 't.boom').evidence, /kaboom/);
    assert.equal(find(r, 't.ok').status, 'pass');
  });
});
