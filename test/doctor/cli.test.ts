/**
 * `ward doctor` as a user meets it (the built CLI): readable lines, --json for
 * machines, exit 0/1 by whether a critical or high check failed, 125 for usage.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { DoctorReport } from '../../src/doctor/index.js';
import { tempDir, ward } from '../helpers.js';

function fixture() {
  const base = tempDir('ward-doctor-cli-');
  const home = path.join(base, 'home');
  const ws = path.join(base, 'ws');
  mkdirSync(home, { mode: 0o700 });
  mkdirSync(ws);
  return { base, home, ws, env: { ...process.env, HOME: home, XDG_CONFIG_HOME: '', XDG_STATE_HOME: '' } };
}

describe('ward doctor', () => {
  it('--json: {checks, score, degrades}, and the exit code is the one the report states', () => {
    const fx = fixture();
    const r = ward(['doctor', '--json'], { cwd: fx.ws, env: fx.env });
    const report = JSON.parse(r.stdout) as DoctorReport;
    assert.ok(Array.isArray(report.checks) && report.checks.length >= 10);
    assert.equal(typeof report.score, 'number');
    assert.ok(Array.isArray(report.degrades));
    assert.equal(r.code, report.exit_code, r.stderr);
    assert.ok(report.checks.some((c) => c.id === 'host.bwrap'));
  });

  it('text: a line per check and the score', () => {
    const fx = fixture();
    const r = ward(['doctor'], { cwd: fx.ws, env: fx.env });
    assert.ok(r.code === 0 || r.code === 1, r.stderr);
    assert.match(r.stdout, /^✓ host\.bwrap +\S+: bubblewrap /m);
    assert.match(r.stdout, /^score \d+\/100 · /m);
  });

  it('a readable audit key: exit 1, with the fix', () => {
    const fx = fixture();
    const dir = path.join(fx.home, '.config', 'ward');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'audit.key'), 'k\n');
    chmodSync(path.join(dir, 'audit.key'), 0o644);
    const r = ward(['doctor'], { cwd: fx.ws, env: fx.env });
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /^✗ keys\.audit-key .*\[high\]$/m);
    assert.match(r.stdout, /fix: `chmod 600 /);
  });

  it('--policy FILE: its grants are checked', () => {
    const fx = fixture();
    const shared = path.join(fx.base, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    writeFileSync(path.join(fx.ws, 'p.yaml'), `extends: [minimal]\nfilesystem:\n  read: ["${shared}"]\n`);
    const r = ward(['doctor', '--json', '--policy', 'p.yaml'], { cwd: fx.ws, env: fx.env });
    const report = JSON.parse(r.stdout) as DoctorReport;
    const c = report.checks.find((x) => x.id === 'policy.world-writable')!;
    assert.equal(c.status, 'fail');
    assert.match(c.evidence, /p\.yaml filesystem\.read\[0\]/);
    assert.equal(r.code, 1);
  });

  it('no bwrap: host.bwrap fails (critical) with the install command, exit 1', () => {
    const fx = fixture();
    const r = ward(['doctor', '--json'], { cwd: fx.ws, env: { ...fx.env, WARD_BWRAP: '/nonexistent/bwrap' } });
    const report = JSON.parse(r.stdout) as DoctorReport;
    const c = report.checks.find((x) => x.id === 'host.bwrap')!;
    assert.equal(c.status, 'fail');
    assert.equal(c.severity, 'critical');
    assert.match(c.fix!, /apt-get install -y bubblewrap/);
    assert.ok(report.degrades.some((d) => d.startsWith('host.bwrap: every sandbox')));
    assert.equal(r.code, 1);
  });

  it('usage errors exit 125', () => {
    const fx = fixture();
    const a = ward(['doctor', '--frobnicate'], { cwd: fx.ws, env: fx.env });
    assert.equal(a.code, 125);
    assert.match(a.stderr, /unknown option --frobnicate for ward doctor/);
    const b = ward(['doctor', '--policy'], { cwd: fx.ws, env: fx.env });
    assert.equal(b.code, 125);
    const c = ward(['doctor', '--policy', 'missing.yaml'], { cwd: fx.ws, env: fx.env });
    assert.equal(c.code, 125);
    assert.match(c.stderr, /missing\.yaml does not exist/);
  });
});
