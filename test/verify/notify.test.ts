/**
 * Translation validation of supervised mode's notify filter: the filter Ward compiles for a
 * plan passes; filters seeded with one flaw each (a supervised call left out, the notify return
 * flipped to allow, i386 let through) are caught with the syscall as the counterexample; and
 * `ward verify` validates it for a policy with dynamic rules. The plan's supervised list is in
 * turn checked against the policy's rules: a list missing a call a rule needs is caught with
 * the rule and the call named.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { AUDIT_ARCH_X86_64, OFFSET_ARCH, OFFSET_NR, SECCOMP_RET_ALLOW, SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_USER_NOTIF, X32_SYSCALL_BIT } from '../../src/seccomp/abi.js';
import { X86_64_SYSCALLS } from '../../src/seccomp/arch/x86_64.js';
import { assemble, encode, jeq, jge, label, ldAbs, ret } from '../../src/seccomp/bpf.js';
import { compileNotifyFilter, SUPERVISABLE } from '../../src/supervisor/filter.js';
import { validateNotifyFilter } from '../../src/verify/notify.js';
import { verifyPolicy } from '../../src/verify/properties/index.js';
import { compile } from '../../src/api.js';
import type { Plan } from '../../src/plan/compile.js';
import { validatePlan, validateRuleCoverage } from '../../src/verify/index.js';
import { verifyEnv } from './helpers.js';

/** A notify filter written by hand, like the compiler's, with the chosen flaw. */
function handMade(notified: string[], opts: { arch?: 'kill' | 'allow'; notifyRet?: number } = {}): Buffer {
  return encode(
    assemble([
      ldAbs(OFFSET_ARCH),
      jeq(AUDIT_ARCH_X86_64, null, opts.arch === 'allow' ? 'allow' : 'kill'),
      ldAbs(OFFSET_NR),
      jge(X32_SYSCALL_BIT, 'kill', null),
      ...notified.map((n) => jeq(X86_64_SYSCALLS[n]!, 'notify', null)),
      label('allow'),
      ret(SECCOMP_RET_ALLOW),
      label('notify'),
      ret(opts.notifyRet ?? SECCOMP_RET_USER_NOTIF),
      label('kill'),
      ret(SECCOMP_RET_KILL_PROCESS),
    ]),
  );
}

describe('notify filter: translation validation', () => {
  it('accepts the filter Ward compiles, for one call and for every call it can supervise', () => {
    for (const set of [['connect'], ['openat', 'open', 'openat2', 'creat'], [...SUPERVISABLE]]) {
      const v = validateNotifyFilter(compileNotifyFilter(set).program, set);
      assert.deepEqual(v.findings, [], set.join(','));
      assert.ok(v.syscalls > 2 * 400, `every number of every ABI was run (${v.syscalls})`);
    }
  });

  it('a hand-made copy of the compiler\'s output passes too (the check judges behaviour, not bytes)', () => {
    assert.deepEqual(validateNotifyFilter(handMade(['connect', 'execve', 'execveat']), ['connect']).findings, []);
  });

  it('catches a supervised call the filter leaves out: it would escape the rules', () => {
    const f = validateNotifyFilter(handMade(['openat', 'execve', 'execveat']), ['openat', 'unlinkat']).findings;
    assert.deepEqual(f.map((x) => x.subject), [`notify filter: x86_64 unlinkat (${X86_64_SYSCALLS.unlinkat})`]);
    assert.match(f[0]!.expected, /USER_NOTIF/);
    assert.equal(f[0]!.actual, 'ALLOW');
  });

  it('catches a call notified that the plan did not ask for (and exec, which is always notified, missing)', () => {
    const f = validateNotifyFilter(handMade(['openat', 'connect']), ['openat']).findings;
    assert.deepEqual(f.map((x) => x.subject.replace(/ \(\d+\)$/, '')).sort(), ['notify filter: x86_64 connect', 'notify filter: x86_64 execve', 'notify filter: x86_64 execveat']);
  });

  it('catches the notify return flipped to allow: every supervised call is named', () => {
    const f = validateNotifyFilter(handMade(['connect', 'execve', 'execveat'], { notifyRet: SECCOMP_RET_ALLOW }), ['connect']).findings;
    assert.deepEqual(f.map((x) => x.subject.replace(/ \(\d+\)$/, '')).sort(), ['notify filter: x86_64 connect', 'notify filter: x86_64 execve', 'notify filter: x86_64 execveat']);
  });

  it('catches a filter that lets i386 and other architectures through', () => {
    const f = validateNotifyFilter(handMade(['connect', 'execve', 'execveat'], { arch: 'allow' }), ['connect']).findings;
    assert.ok(f.some((x) => x.subject.startsWith('notify filter: i386')), JSON.stringify(f.slice(0, 3)));
    assert.ok(f.some((x) => x.subject.startsWith('notify filter: aarch64')));
    assert.ok(f.every((x) => x.expected === 'KILL_PROCESS'));
  });

  it('reports a program the kernel would refuse instead of running it', () => {
    const f = validateNotifyFilter(Buffer.alloc(8 * 3), ['connect']).findings;
    assert.equal(f.length, 1);
    assert.match(f[0]!.actual, /rejected/);
  });
});

describe('ward verify on a policy with dynamic rules', () => {
  const base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'ward-notify-')));
  after(() => rmSync(base, { recursive: true, force: true }));
  const ws = path.join(base, 'ws');
  const home = path.join(base, 'home');
  mkdirSync(path.join(ws, 'secrets'), { recursive: true });
  mkdirSync(home, { recursive: true });
  writeFileSync(path.join(ws, 'secrets', 'token'), 'x\n');
  const env = verifyEnv(home);

  it('validates the notify filter with the rest of the compiled artefacts', async () => {
    const r = await verifyPolicy(
      { policy: { extends: ['minimal'], filesystem: { read: ['${WORKSPACE}'] }, rules: [{ after: 'read ${WORKSPACE}/secrets/**', revoke: 'network' }] } },
      { workspace: ws, env },
    );
    const p = r.properties.find((x) => x.id === 'compiled-artefacts');
    assert.equal(p?.status, 'PROVED', JSON.stringify(p));
    assert.ok(r.plan_sha256, 'the plan was compiled');
  });
});

describe('supervised syscalls against the rules', () => {
  const base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'ward-cover-')));
  after(() => rmSync(base, { recursive: true, force: true }));
  const ws = path.join(base, 'ws');
  const home = path.join(base, 'home');
  for (const d of [`${ws}/secrets`, `${ws}/docs`, `${ws}/bin`, home]) mkdirSync(d, { recursive: true });
  const env = verifyEnv(home);
  // Every kind of event and revocation, so every row of the table is needed at least once.
  const rules = [
    { after: 'read ${WORKSPACE}/secrets/**', revoke: 'network' },
    { after: 'exec ${WORKSPACE}/bin/**', revoke: 'write ${WORKSPACE}/docs' },
    { after: 'write ${WORKSPACE}/docs/**', revoke: 'exec ${WORKSPACE}/bin/**' },
  ];
  const compiled = (): Plan =>
    compile({ policy: { extends: ['minimal'], filesystem: { read: ['${WORKSPACE}'], write: ['${WORKSPACE}/docs'], execute: ['${WORKSPACE}/bin'] }, rules } }, { workspace: ws, env });
  /** The plan with `drop` removed from its supervised list (the seeded flaw: a planner that forgot it). */
  const without = (drop: string): Plan => {
    const p = compiled();
    return { ...p, rules: { ...p.rules!, syscalls: p.rules!.syscalls.filter((s) => s !== drop) } };
  };

  it('the planner\'s list covers every rule', () => {
    const v = validateRuleCoverage(compiled());
    assert.deepEqual(v.findings, []);
    assert.equal(v.checked, 6);
  });

  for (const [drop, rule] of [
    ['unlinkat', /^rule 2 \(revoke write .*\/docs\): unlinkat$/],
    // Metadata is part of `revoke: write` (mkdir, chmod, ... by path and by fd).
    ['mkdirat', /^rule 2 \(revoke write .*\/docs\): mkdirat$/],
    ['fchmodat', /^rule 2 \(revoke write .*\/docs\): fchmodat$/],
    ['fsetxattr', /^rule 2 \(revoke write .*\/docs\): fsetxattr$/],
    ['connect', /^rule 1 \(revoke connect \*\): connect$/],
    ['openat2', /^rule 1 \(after read .*\/secrets\): openat2$/],
    ['execveat', /^rule 2 \(after exec .*\/bin\): execveat$/],
  ] as const) {
    it(`a list missing ${drop} is caught, naming the rule and the call`, () => {
      const v = validatePlan(without(drop));
      const f = v.findings.filter((x) => x.layer === 'supervisor');
      assert.ok(f.length > 0 && f.every((x) => x.subject.endsWith(`: ${drop}`)), JSON.stringify(f));
      assert.ok(f.some((x) => rule.test(x.subject)), f.map((x) => x.subject).join('; '));
      assert.equal(v.ok, false);
    });
  }

  it('an `after: write` event is every call a write revocation refuses: the planner lists them, and a list missing one is caught', () => {
    const p = compile({ policy: { extends: ['minimal'], filesystem: { read: ['${WORKSPACE}'], write: ['${WORKSPACE}/docs'] }, rules: [{ after: 'write ${WORKSPACE}/docs/**', revoke: 'network' }] } }, { workspace: ws, env });
    assert.deepEqual(validatePlan(p).findings, []);
    // Each of these writes docs/ without an open or a rename (ln, ln -s, mkdir, mkfifo, rm, rmdir, truncate, chmod, touch -d, setfattr, chmod on a read-only fd).
    for (const drop of ['linkat', 'symlinkat', 'mkdirat', 'mknodat', 'unlinkat', 'rmdir', 'truncate', 'fchmodat', 'utimensat', 'setxattr', 'fchmod']) {
      const f = validateRuleCoverage({ ...p, rules: { ...p.rules!, syscalls: p.rules!.syscalls.filter((s) => s !== drop) } }).findings;
      assert.equal(f.length, 1, `${drop}: ${JSON.stringify(f)}`);
      assert.match(f[0]!.subject, new RegExp(`^rule 1 \\(after write .*/docs\\): ${drop}$`));
      assert.match(f[0]!.expected, /the event happens through it/);
    }
  });

  it('open and openat under the write condition cover a rule about writes, never one about reads', () => {
    const writes = compile({ policy: { extends: ['minimal'], filesystem: { read: ['${WORKSPACE}'], write: ['${WORKSPACE}/docs'] }, rules: [{ after: 'write ${WORKSPACE}/docs/**', revoke: 'append ${WORKSPACE}/docs' }] } }, { workspace: ws, env });
    assert.deepEqual(writes.rules?.conditions, { writeOpens: true });
    assert.ok(!writes.rules!.syscalls.includes('openat'));
    assert.deepEqual(validateRuleCoverage(writes).findings, []);
    // The condition dropped: nothing notifies a write open any more.
    const f = validateRuleCoverage({ ...writes, rules: { ...writes.rules!, conditions: {} } }).findings;
    for (const s of ['open', 'openat']) {
      assert.ok(f.some((x) => /^rule 1 \(after write .*\/docs\): /.test(x.subject) && x.subject.endsWith(`: ${s}`) && /conditions\.writeOpens/.test(x.actual)), `${s}: ${JSON.stringify(f)}`);
      assert.ok(f.some((x) => /^rule 1 \(revoke append .*\/docs\): /.test(x.subject) && x.subject.endsWith(`: ${s}`)), `${s}: ${JSON.stringify(f)}`);
    }
    // A read rule given only the condition (open and openat taken off the list) is caught: a read-only open is its event.
    const p = compiled();
    const reads = validateRuleCoverage({ ...p, rules: { ...p.rules!, conditions: { writeOpens: true }, syscalls: p.rules!.syscalls.filter((s) => s !== 'openat') } }).findings;
    assert.ok(reads.some((x) => /^rule 1 \(after read .*\/secrets\): openat$/.test(x.subject)), JSON.stringify(reads));
  });

  it('a plan with the rules dropped, or with other rules than the policy\'s, is caught', () => {
    const p = compiled();
    assert.match(validateRuleCoverage({ ...p, rules: null }).findings[0]!.actual, /no rules in the plan/);
    const swapped = { ...p, rules: { ...p.rules!, rules: p.rules!.rules.slice(1) } };
    assert.ok(validateRuleCoverage(swapped).findings.some((x) => x.subject === 'rules' && /different rules/.test(x.actual)));
  });
});
