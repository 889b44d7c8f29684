/**
 * `ward verify` on what supervised mode enforces: append-only files (their own writable bind,
 * Landlock read-only, plan.rules.append, the calls that could rewrite them supervised),
 * visible-only files (a read-only bind, no Landlock rule, plan.rules.visible, every open and exec
 * supervised), and the notify filter as installed, with its argument conditions. A policy with
 * append, visible and a write revocation is PROVED; each seeded flaw is caught, naming the path
 * or the syscall (and its arguments).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { compile } from '../../src/api.js';
import type { Plan } from '../../src/plan/compile.js';
import { compileNotifyFilter, WRITE_OPEN_FLAGS } from '../../src/supervisor/filter.js';
import { validateNotifyFilter } from '../../src/verify/notify.js';
import { validatePlan, type Finding } from '../../src/verify/index.js';
import { verifyPolicy } from '../../src/verify/properties/index.js';
import { verifyEnv } from './helpers.js';

// Not under /tmp: the sandbox's private /tmp carries Landlock rw, which an append-only file
// below it must not get (a case of its own, tested below).
const base = realpathSync(mkdtempSync(path.join('/var/tmp', 'ward-vsup-')));
after(() => rmSync(base, { recursive: true, force: true }));
const ws = path.join(base, 'ws');
const home = path.join(base, 'home');
for (const d of [ws, `${ws}/src`, `${ws}/docs`, home]) mkdirSync(d, { recursive: true });
for (const f of ['audit.log', 'secret.txt', '.env', 'src/main.c']) writeFileSync(`${ws}/${f}`, 'x\n');
const env = verifyEnv(home);
const LOG = `${ws}/audit.log`;
const SECRET = `${ws}/secret.txt`;

const policy = {
  policy: {
    extends: ['minimal'],
    filesystem: { read: ['${WORKSPACE}'], write: ['${WORKSPACE}/src'], append: ['${WORKSPACE}/audit.log'], visible: ['${WORKSPACE}/secret.txt'], deny: ['${WORKSPACE}/.env'] },
    rules: [{ after: 'read ${WORKSPACE}/docs/**', revoke: 'write ${WORKSPACE}/**' }],
  },
};
const compiled = (): Plan => compile(policy, { workspace: ws, env });
const show = (f: Finding[]) => f.map((x) => `${x.layer}: ${x.subject}: want ${x.expected}, got ${x.actual}`).join('\n');

describe('append-only and visible-only: compiled artefacts', () => {
  it('a policy with append, visible and a write revocation verifies with compiled-artefacts PROVED', async () => {
    const p = compiled();
    assert.deepEqual(p.rules?.append, [LOG]);
    assert.deepEqual(p.rules?.visible, [SECRET]);
    const v = validatePlan(p);
    assert.deepEqual(v.findings, [], show(v.findings));
    const r = await verifyPolicy(policy, { workspace: ws, env });
    const c = r.properties.find((x) => x.id === 'compiled-artefacts');
    assert.equal(c?.status, 'PROVED', JSON.stringify(c));
    assert.equal(r.properties.find((x) => x.id === 'append-not-writable')?.status, 'PROVED');
  });

  it('an append entry dropped from plan.rules.append is caught, naming the path', () => {
    const p = compiled();
    const f = validatePlan({ ...p, rules: { ...p.rules!, append: [] } }).findings;
    assert.ok(f.some((x) => x.layer === 'supervisor' && x.subject === `append-only ${LOG}` && /rules\.append/.test(x.expected)), show(f));
  });

  it('a visible path given a Landlock read rule is caught, naming the path', () => {
    const p = compiled();
    const f = validatePlan({ ...p, mounts: { ...p.mounts, landlock: [...p.mounts.landlock, { path: SECRET, rights: 'r' }] } }).findings;
    // Under the read grant on the workspace the union of rights is the same "r": only the rule
    // of its own gives it away, and that is what must be named.
    assert.ok(f.some((x) => x.layer === 'landlock' && x.subject === SECRET && /no Landlock rule/.test(x.expected)), show(f));
  });

  for (const drop of ['ftruncate', 'fallocate', 'pwritev2', 'openat2', 'truncate', 'fchmod']) {
    it(`${drop} dropped from the supervised list is caught, naming the path and the call`, () => {
      const p = compiled();
      const f = validatePlan({ ...p, rules: { ...p.rules!, syscalls: p.rules!.syscalls.filter((s) => s !== drop) } }).findings;
      assert.ok(f.some((x) => x.subject === `append-only ${LOG}: ${drop}`), show(f));
    });
  }

  it('the write-open and F_SETFL conditions dropped (and open, openat, fcntl not supervised) are caught', () => {
    const p = compiled();
    const f = validatePlan({ ...p, rules: { ...p.rules!, conditions: {}, syscalls: p.rules!.syscalls.filter((s) => !['open', 'openat'].includes(s)) } }).findings;
    for (const s of ['open', 'openat', 'fcntl']) assert.ok(f.some((x) => x.subject === `append-only ${LOG}: ${s}`), `${s}\n${show(f)}`);
  });

  it('the append file bound read-only (the old static tier) or inside another bind is caught', () => {
    const p = compiled();
    const ro = p.mounts.ops.map((o) => (o.kind === 'bind' && o.dest === LOG ? { ...o, writable: false } : o));
    const f1 = validatePlan({ ...p, mounts: { ...p.mounts, ops: ro } }).findings;
    assert.ok(f1.some((x) => x.layer === 'mounts' && x.subject === LOG && /own bind/.test(x.expected) && /read-only/.test(x.actual)), show(f1));
    const gone = p.mounts.ops.filter((o) => !(o.kind === 'bind' && o.dest === LOG));
    const f2 = validatePlan({ ...p, mounts: { ...p.mounts, ops: gone } }).findings;
    assert.ok(f2.some((x) => x.layer === 'mounts' && x.subject === LOG && /through bind \//.test(x.actual)), show(f2));
  });

  it('an append file given Landlock write is caught', () => {
    const p = compiled();
    const f = validatePlan({ ...p, mounts: { ...p.mounts, landlock: [...p.mounts.landlock, { path: LOG, rights: 'rw' }] } }).findings;
    assert.ok(f.some((x) => x.layer === 'landlock' && x.subject === LOG && /"r"/.test(x.expected) && /"rw"/.test(x.actual)), show(f));
  });

  it('the visible file bound writable, hidden, or not listed in plan.rules.visible, or its opens not supervised, is caught', () => {
    const p = compiled();
    const rw = p.mounts.ops.map((o) => (o.kind === 'bind' && o.dest === SECRET ? { ...o, writable: true } : o));
    const f1 = validatePlan({ ...p, mounts: { ...p.mounts, ops: rw } }).findings;
    assert.ok(f1.some((x) => x.layer === 'mounts' && x.subject === SECRET && /read-only/.test(x.expected)), show(f1));
    const hidden = [...p.mounts.ops.filter((o) => !(o.kind === 'bind' && o.dest === SECRET)), { kind: 'mask-file' as const, dest: SECRET }];
    const f2 = validatePlan({ ...p, mounts: { ...p.mounts, ops: hidden } }).findings;
    assert.ok(f2.some((x) => x.layer === 'mounts' && x.subject === SECRET && /present, visible-only/.test(x.expected)), show(f2));
    const f3 = validatePlan({ ...p, rules: { ...p.rules!, visible: [] } }).findings;
    assert.ok(f3.some((x) => x.subject === `visible-only ${SECRET}` && /rules\.visible/.test(x.expected)), show(f3));
    const f4 = validatePlan({ ...p, rules: { ...p.rules!, syscalls: p.rules!.syscalls.filter((s) => s !== 'openat') } }).findings;
    assert.ok(f4.some((x) => x.subject === `visible-only ${SECRET}: openat`), show(f4));
  });

  it('without rules, append and visible still run supervised, and that list is no rules finding; rules smuggled into such a plan are', () => {
    const p = compile({ policy: { extends: ['minimal'], filesystem: { read: ['${WORKSPACE}'], append: ['${WORKSPACE}/audit.log'], visible: ['${WORKSPACE}/secret.txt'], deny: ['${WORKSPACE}/.env'] } } }, { workspace: ws, env });
    assert.deepEqual(p.rules?.rules, []);
    assert.deepEqual(validatePlan(p).findings, [], show(validatePlan(p).findings));
    const smuggled = { ...p, rules: { ...p.rules!, rules: [{ after: [], revoke: [{ access: 'read' as const, target: '/' }] }] } };
    assert.ok(validatePlan(smuggled).findings.some((x) => x.subject === 'rules' && /carries 1 rules/.test(x.actual)));
  });

  it('a plan that is not supervised at all is caught', () => {
    const f = validatePlan({ ...compiled(), rules: null }).findings;
    assert.ok(f.some((x) => x.layer === 'supervisor' && /not supervised|nothing is supervised/.test(x.actual) && x.subject.includes(LOG)), show(f));
  });

  it('visible-not-readable under a read grant rests on the supervisor: VIOLATED when compiled-artefacts fails', async () => {
    // An append file under the private /tmp makes compiled-artefacts fail (below), so the
    // supervisor's half is not established and the Landlock-layer witness stands.
    const t = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'ward-vsup-')));
    try {
      writeFileSync(`${t}/a.log`, '');
      writeFileSync(`${t}/secret.txt`, '');
      const r = await verifyPolicy({ policy: { extends: ['minimal'], filesystem: { read: [t], append: [`${t}/a.log`], visible: [`${t}/secret.txt`] } } }, { workspace: t, env });
      assert.equal(r.properties.find((x) => x.id === 'compiled-artefacts')?.status, 'VIOLATED');
      const p = r.properties.find((x) => x.id === 'visible-not-readable')!;
      assert.equal(p.status, 'VIOLATED', JSON.stringify(p));
      assert.equal(p.counterexample, `${t}/secret.txt`);
      assert.match(p.detail!, /compiled-artefacts is VIOLATED/);
    } finally {
      rmSync(t, { recursive: true, force: true });
    }
  });

  it('an append file below the private /tmp (whose Landlock rule is rw) is a finding, not a note', () => {
    const t = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'ward-vsup-')));
    try {
      writeFileSync(`${t}/a.log`, '');
      const p = compile({ policy: { extends: ['minimal'], filesystem: { append: [`${t}/a.log`] } } }, { workspace: t, env });
      const f = validatePlan(p).findings;
      assert.ok(f.some((x) => x.layer === 'landlock' && x.subject === `${t}/a.log` && /"rw"/.test(x.actual)), show(f));
    } finally {
      rmSync(t, { recursive: true, force: true });
    }
  });
});

/** The notify filter's instructions as [code, jt, jf, k] (struct sock_filter, little-endian). */
const decode = (b: Buffer) => Array.from({ length: b.length / 8 }, (_, i) => [b.readUInt16LE(i * 8), b[i * 8 + 2]!, b[i * 8 + 3]!, b.readUInt32LE(i * 8 + 4)] as [number, number, number, number]);
const encodeInsns = (insns: [number, number, number, number][]) => {
  const b = Buffer.alloc(insns.length * 8);
  insns.forEach(([c, jt, jf, k], i) => {
    b.writeUInt16LE(c, i * 8);
    b[i * 8 + 2] = jt;
    b[i * 8 + 3] = jf;
    b.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  return b;
};
const JSET_K = 0x45;
const JEQ_K = 0x15;
const LD_ABS_W = 0x20;

describe('notify filter with its argument conditions', () => {
  const conds = { writeOpens: true, setfl: true };
  const list = compiled().rules!.syscalls.filter((s) => !['open', 'openat', 'fcntl'].includes(s));
  const installed = () => compileNotifyFilter(list, conds).program;

  it('the program installed for an append-only policy passes, run on both sides of each condition', () => {
    const p = compiled();
    assert.deepEqual(p.rules?.conditions, conds);
    const v = validateNotifyFilter(compileNotifyFilter(p.rules!.syscalls, conds).program, p.rules!.syscalls, conds);
    assert.deepEqual(v.findings, [], show(v.findings));
    // Conditions only matter when the call is not also listed unconditionally.
    const w = validateNotifyFilter(installed(), list, conds);
    assert.deepEqual(w.findings, [], show(w.findings));
    assert.ok(w.syscalls > 2 * 400 + 1000, `argument cases were run (${w.syscalls})`);
  });

  it('is not vacuous: the same program judged as if it had no conditions disagrees, on the writing opens and F_SETFL', () => {
    const f = validateNotifyFilter(installed(), list, {}).findings;
    assert.ok(f.some((x) => /^notify filter: x86_64 openat \(257\) flags=0x1 \(O_WRONLY\)$/.test(x.subject) && x.actual === 'USER_NOTIF'), show(f.slice(0, 5)));
    assert.ok(f.some((x) => /fcntl \(72\) cmd=0x4 \(F_SETFL\)$/.test(x.subject)));
    assert.ok(!f.some((x) => /flags=0x0 \(O_RDONLY\)/.test(x.subject)), 'read-only opens are allowed either way');
  });

  it('a condition flipped (jset with its branches swapped) is caught on both sides: O_RDONLY notified, O_WRONLY allowed', () => {
    const insns = decode(installed());
    const i = insns.findIndex(([c, , , k]) => c === JSET_K && k === WRITE_OPEN_FLAGS);
    assert.ok(i >= 0, 'the compiled filter tests the write flags with jset');
    const [c, jt, jf, k] = insns[i]!;
    insns[i] = [c, jf, jt, k];
    const f = validateNotifyFilter(encodeInsns(insns), list, conds).findings;
    assert.ok(f.some((x) => /x86_64 open(at)? \(\d+\) flags=0x0 \(O_RDONLY\)$/.test(x.subject) && x.actual === 'USER_NOTIF' && /ALLOW/.test(x.expected)), show(f.slice(0, 5)));
    assert.ok(f.some((x) => /flags=0x2 \(O_RDWR\)$/.test(x.subject) && x.actual === 'ALLOW' && /USER_NOTIF/.test(x.expected)), show(f.slice(0, 5)));
  });

  it('a write flag missing from the condition (O_TRUNC) is caught, naming the flags', () => {
    const insns = decode(installed()).map(([c, jt, jf, k]) => [c, jt, jf, c === JSET_K && k === WRITE_OPEN_FLAGS ? k & ~0o1000 : k] as [number, number, number, number]);
    const f = validateNotifyFilter(encodeInsns(insns), list, conds).findings;
    assert.ok(f.length > 0 && f.every((x) => /O_TRUNC/.test(x.subject) && x.actual === 'ALLOW'), show(f.slice(0, 5)));
    assert.ok(f.some((x) => /openat \(257\) flags=0x200 \(O_TRUNC\)$/.test(x.subject)), show(f.slice(0, 5)));
  });

  it('fcntl notified on F_GETFL instead of F_SETFL is caught', () => {
    const insns = decode(installed()).map(([c, jt, jf, k], i, all) => [c, jt, jf, c === JEQ_K && k === 4 && all[i - 1]?.[0] === LD_ABS_W ? 3 : k] as [number, number, number, number]);
    const f = validateNotifyFilter(encodeInsns(insns), list, conds).findings;
    assert.ok(f.some((x) => /fcntl \(72\) cmd=0x4 \(F_SETFL\)$/.test(x.subject) && x.actual === 'ALLOW'), show(f.slice(0, 5)));
    assert.ok(f.some((x) => /fcntl \(72\) cmd=0x3 \(F_GETFL\)$/.test(x.subject) && x.actual === 'USER_NOTIF'), show(f.slice(0, 5)));
  });

  it('the condition tested on the wrong argument (openat\'s args[1], the path, instead of args[2]) is caught', () => {
    // openat's condition body is the load just before its jset; point it at args[1] (offset 24).
    const insns = decode(installed());
    const loads = insns.map((x, i) => [x, i] as const).filter(([[c, , , k]]) => c === LD_ABS_W && k === 16 + 8 * 2);
    assert.equal(loads.length, 1, 'one load of args[2] (openat flags)');
    insns[loads[0]![1]] = [LD_ABS_W, 0, 0, 16 + 8 * 1];
    const f = validateNotifyFilter(encodeInsns(insns), list, conds).findings;
    assert.ok(f.length > 0 && f.every((x) => x.subject.includes('openat')), show(f.slice(0, 5)));
  });
});
