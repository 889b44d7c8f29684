// Translation validation of whole plans: the built-in profiles compile to artefacts that match
// their policy, and each seeded flaw in the mount ops or Landlock rules is caught with the path
// that shows it.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { compile, type PolicyInput } from '../../src/api.js';
import type { Plan } from '../../src/plan/compile.js';
import type { MountOp } from '../../src/plan/mounts.js';
import { resolveInSandbox, validateMounts, validatePlan } from '../../src/verify/index.js';
import { verifyEnv } from './helpers.js';

const base = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'ward-verify-')));
after(() => rmSync(base, { recursive: true, force: true }));
const ws = path.join(base, 'ws');
const home = path.join(base, 'home');
for (const d of [ws, `${ws}/src`, home, `${home}/.ssh`]) mkdirSync(d, { recursive: true });
writeFileSync(`${ws}/.env`, 'TOKEN=1\n');
writeFileSync(`${ws}/real-secret`, 'x\n');
symlinkSync(`${ws}/real-secret`, `${ws}/.npmrc`); // a denied name that is a symlink
writeFileSync(`${ws}/src/main.js`, '\n');
writeFileSync(`${home}/.ssh/id_ed25519`, 'key\n');
symlinkSync(`${home}/.ssh`, `${ws}/link-to-ssh`);
symlinkSync('/etc/passwd', `${ws}/link-to-passwd`);
const env = verifyEnv(home);
const extraPaths = [`${ws}/link-to-ssh`, `${ws}/link-to-ssh/id_ed25519`, `${ws}/link-to-passwd`, `${ws}/.npmrc`];

const plan = (input: PolicyInput): Plan => compile(input, { workspace: ws, env });
const withOps = (p: Plan, f: (ops: MountOp[]) => MountOp[]): Plan => ({ ...p, mounts: { ...p.mounts, ops: f([...p.mounts.ops]) } });

describe('validatePlan on compiled profiles', () => {
  const inputs: [string, PolicyInput][] = [
    ['default', undefined],
    ['minimal', { profile: 'minimal' }],
    ['node', { profile: 'node' }],
    ['python', { profile: 'python' }],
    ['ia32 + extra deny', { policy: { extends: ['default'], syscalls: { allow_ia32: true, deny: ['mknodat', 'ptrace'] } } }],
    ['home granted read-only', { policy: { extends: ['minimal'], filesystem: { write: ['${WORKSPACE}'], read: ['${HOME}'] }, sandbox: { home: 'none' } } }],
  ];
  for (const [name, input] of inputs) {
    it(`${name}: no findings`, () => {
      const r = validatePlan(plan(input), { extraPaths });
      assert.deepEqual(r.findings, []);
      assert.equal(r.ok, true);
      assert.ok(r.checked.syscalls > 1000 && r.checked.argCases > 100 && r.checked.paths > 50, JSON.stringify(r.checked));
    });
  }

  it('checks i386 argument cases only when ia32 is allowed', () => {
    const off = validatePlan(plan(undefined)).checked.argCases;
    const on = validatePlan(plan({ policy: { extends: ['default'], syscalls: { allow_ia32: true } } })).checked.argCases;
    assert.ok(on > off, `${on} > ${off}`);
  });
});

describe('seeded mount and Landlock flaws', () => {
  it('a mask op removed: the .env becomes readable', () => {
    const good = plan(undefined);
    assert.ok(good.mounts.ops.some((o) => o.kind === 'mask-file' && o.dest === `${ws}/.env`));
    const bad = withOps(good, (ops) => ops.filter((o) => !(o.kind === 'mask-file' && o.dest === `${ws}/.env`)));
    const findings = validateMounts(bad, { extraPaths });
    assert.deepEqual(findings, [
      { layer: 'mounts', subject: `${ws}/.env`, expected: 'not readable (denied)', actual: `readable and writable through bind ${ws}` },
    ]);
  });

  it('a read-only bind turned writable', () => {
    const good = plan({ profile: 'minimal' });
    const bad = withOps(good, (ops) => ops.map((o) => (o.kind === 'bind' && o.dest === '/usr' ? { ...o, writable: true } : o)));
    const findings = validateMounts(bad);
    assert.ok(findings.length > 0);
    assert.ok(findings.some((f) => f.layer === 'mounts' && f.subject === '/usr' && f.expected === 'read-only' && f.actual === 'writable through bind /usr'), JSON.stringify(findings));
    assert.ok(findings.every((f) => f.layer === 'mounts' && f.expected === 'read-only'));
  });

  it('a Landlock rule given x on a writable directory the policy did not grant execute', () => {
    const good = plan({ policy: { extends: ['minimal'], filesystem: { write: ['${WORKSPACE}'] } } });
    assert.deepEqual(validateMounts(good, { extraPaths }), []);
    const landlock = good.mounts.landlock.map((r) => (r.path === ws ? { ...r, rights: 'rwx' } : r));
    assert.notDeepEqual(landlock, good.mounts.landlock);
    const findings = validateMounts({ ...good, mounts: { ...good.mounts, landlock } }, { extraPaths });
    assert.ok(findings.length > 0);
    assert.ok(findings.every((f) => f.layer === 'landlock' && f.actual.startsWith('rights "rwx"')));
    assert.ok(findings.some((f) => f.subject === ws && f.expected === 'rights "rw" (read+write)'), JSON.stringify(findings));
  });

  it('a deny that misses a symlink target: masking the link name instead of the file it points to', () => {
    const good = plan(undefined);
    assert.ok(good.mounts.ops.some((o) => o.kind === 'mask-file' && o.dest === `${ws}/real-secret`), 'the plan masks the real path');
    const bad = withOps(good, (ops) => ops.map((o) => (o.kind === 'mask-file' && o.dest === `${ws}/real-secret` ? { ...o, dest: `${ws}/.npmrc` } : o)));
    const subjects = validateMounts(bad, { extraPaths }).map((f) => f.subject);
    assert.ok(subjects.includes(`${ws}/real-secret`), JSON.stringify(subjects));
  });

  it('a secret behind a symlink in the workspace is caught once its mask is gone', () => {
    const good = plan({ policy: { extends: ['minimal'], filesystem: { write: ['${WORKSPACE}'], read: ['${HOME}'] }, sandbox: { home: 'none' } } });
    const bad = withOps(good, (ops) => ops.filter((o) => o.dest !== `${home}/.ssh`));
    const findings = validateMounts(bad, { extraPaths });
    const subjects = findings.map((f) => f.subject);
    assert.ok(subjects.includes(`${home}/.ssh`));
    assert.ok(subjects.includes(`${ws}/link-to-ssh/id_ed25519 (-> ${home}/.ssh/id_ed25519)`), JSON.stringify(subjects));
    assert.ok(findings.every((f) => f.layer === 'mounts' && f.expected === 'not readable (denied)'));
  });

  it('an extra bind exposes ungranted parents and siblings', () => {
    const good = plan(undefined);
    const bad = withOps(good, (ops) => [...ops, { kind: 'bind', src: base, dest: base, writable: false }]);
    const findings = validateMounts(bad, { extraPaths });
    const byPath = new Map(findings.map((f) => [f.subject, f]));
    assert.equal(byPath.get(base)?.expected, 'invisible (not granted)');
    assert.equal(byPath.get(`${home}/.ssh`)?.expected, 'not readable (denied)');
    // The bind at the end also hides the workspace's own writable bind: that is caught too.
    assert.equal(byPath.get(ws)?.expected, 'writable');
  });

  it('a granted path that is not mounted at all', () => {
    const good = plan({ profile: 'minimal' });
    const bad = withOps(good, (ops) => ops.filter((o) => !(o.kind === 'bind' && o.dest === '/usr')));
    const f = validateMounts(bad).find((x) => x.subject === '/usr');
    assert.ok(f);
    assert.equal(f.layer, 'mounts');
    assert.match(f.expected, /^readable/);
    assert.match(f.actual, /^invisible/);
  });
});

describe('resolveInSandbox', () => {
  const p = plan(undefined);
  it('resolves an absolute symlink inside the sandbox, not on the host', () => {
    // On the host this is the key; inside, ~ is a private tmpfs and the link leads nowhere.
    assert.equal(resolveInSandbox(p.mounts.ops, `${ws}/link-to-ssh/id_ed25519`).kind, 'private');
    assert.deepEqual(resolveInSandbox(p.mounts.ops, `${ws}/link-to-passwd`), { kind: 'host', path: '/etc/passwd', host: '/etc/passwd', writable: false, bind: '/etc/passwd' });
  });
  it('sees masks, binds and the empty root', () => {
    assert.equal(resolveInSandbox(p.mounts.ops, `${ws}/.env`).kind, 'masked');
    assert.equal(resolveInSandbox(p.mounts.ops, `${ws}/src/main.js`).kind, 'host');
    assert.equal(resolveInSandbox(p.mounts.ops, '/etc/shadow').kind, 'absent');
    assert.equal(resolveInSandbox(p.mounts.ops, '/proc/self').kind, 'special');
  });
});
