/**
 * The rules decider and the rules' shared state, without a sandbox: how each supervised call is
 * read as an access and an event, and that two threads applying the halves of two-event rules
 * at the same time fire every rule exactly once (rules-state.ts's claim).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import type { Rule } from '../../src/rules/index.js';
import { createDecider } from '../../src/supervisor/rules-decider.js';
import { applyShared, loadRuleState, newSharedRuleState, type RevocationReport } from '../../src/supervisor/rules-state.js';
import type { SupervisedEvent } from '../../src/supervisor/types.js';

const O_WRONLY = 1;
const O_RDWR = 2;
const O_CREAT = 0o100;
const O_APPEND = 0o2000;

function decider(rules: Rule[], aliases: [string, string[]][] = []) {
  const reports: RevocationReport[] = [];
  const cells = newSharedRuleState(rules);
  const decide = createDecider({ rules, cells, aliases }, { report: (d) => reports.push(d as RevocationReport) });
  const open = (path: string, access: SupervisedEvent['access'], flags = 0, extra: Partial<SupervisedEvent> = {}) =>
    decide({ pid: 7, syscall: 'openat', kind: 'open', path, access, create: false, flags, file: null, ...extra });
  const blind = (syscall: 'connect' | 'unlinkat' | 'renameat2', kind: 'connect' | 'unlink' | 'rename') =>
    decide({ pid: 7, syscall, kind, path: null, access: kind === 'connect' ? 'connect' : 'write', create: false, flags: 0, file: null });
  return { decide, open, blind, reports, cells: new Int32Array(cells) };
}

describe('the rules decider', () => {
  it('a read is the event, and the revocation binds from the next call on (the triggering open itself is allowed)', () => {
    const d = decider([{ after: [{ access: 'read', target: '/ws/secrets' }], revoke: [{ access: 'connect', target: '*' }] }]);
    assert.deepEqual(d.blind('connect', 'connect'), { allow: true });
    assert.deepEqual(d.open('/ws/secrets/k', 'read'), { allow: true });
    assert.equal(d.reports.length, 1);
    assert.deepEqual(d.reports[0], { kind: 'revocation', rule: 0, after: ['read /ws/secrets'], revoked: ['connect *'], trigger: 'read /ws/secrets/k', pid: 7, by: 'openat' });
    const r = d.blind('connect', 'connect');
    assert.equal('errno' in r && r.errno, 13);
    assert.match('reason' in r ? String(r.reason) : '', /^network revoked by rules\[0\] \(after read \/ws\/secrets\)$/);
    // A second read fires nothing more.
    d.open('/ws/secrets/k2', 'read');
    assert.equal(d.reports.length, 1);
  });

  it('anyTarget follows the shared state: writes are blind until the read that revokes them, reads never (a read is the event)', () => {
    const d = decider([{ after: [{ access: 'read', target: '/ws/secrets' }], revoke: [{ access: 'write', target: '/ws/src' }] }]);
    assert.equal(d.decide.anyTarget?.(['write']), true);
    assert.equal(d.decide.anyTarget?.(['write', 'append']), true);
    assert.equal(d.decide.anyTarget?.(['read']), false, 'a read could be the event');
    assert.equal(d.decide.anyTarget?.(['read', 'write']), false);
    d.open('/ws/secrets/k', 'read');
    assert.equal(d.decide.anyTarget?.(['write']), false, 'write of /ws/src is revoked now');
    // Another thread's decider over the same cells sees it too (the broker's side shares them).
    const other = createDecider({ rules: [{ after: [{ access: 'read', target: '/ws/secrets' }], revoke: [{ access: 'write', target: '/ws/src' }] }], cells: d.cells.buffer as SharedArrayBuffer }, { report: () => {} });
    assert.equal(other.anyTarget?.(['write']), false);
  });

  it('writes: create and O_WRONLY are write events; O_RDWR is read and write; O_APPEND is checked as append; O_PATH is nothing', () => {
    const rules: Rule[] = [
      { after: [{ access: 'write', target: '/ws/out' }], revoke: [{ access: 'read', target: '/ws/in' }] },
      { after: [{ access: 'read', target: '/ws/both' }], revoke: [{ access: 'append', target: '/ws/log' }] },
    ];
    const d = decider(rules);
    assert.deepEqual(d.open('/ws/out/x', 'path', 0o10000000), { allow: true });
    assert.equal(d.reports.length, 0, 'O_PATH gives no access: no event');
    d.open('/ws/out/new', 'read-write', O_CREAT | O_WRONLY, { create: true });
    assert.deepEqual(d.reports.map((r) => r.rule), [0]);
    assert.equal('errno' in d.open('/ws/in/a', 'read'), true);
    d.open('/ws/both/f', 'read-write', O_RDWR);
    assert.deepEqual(d.reports.map((r) => r.rule), [0, 1], 'O_RDWR is a read too');
    assert.equal('errno' in d.open('/ws/log/app', 'write', O_WRONLY | O_APPEND), true, 'append revoked');
    assert.deepEqual(d.open('/ws/log/app', 'write', O_WRONLY), { allow: true }, 'a plain write is not an append (revoking append revokes only append)');
  });

  it('unlink, rename and link are decided on their resolved paths: refused inside a revoked pattern only, and not before', () => {
    const d = decider([{ after: [{ access: 'read', target: '/ws/s' }], revoke: [{ access: 'write', target: '/ws/src' }] }]);
    const op = (syscall: 'unlinkat' | 'renameat2' | 'linkat', kind: 'unlink' | 'rename' | 'link', p: string, p2: string | null = null) =>
      d.decide({ pid: 7, syscall, kind, path: p, path2: p2, access: 'write', create: false, flags: 0, file: null });
    assert.deepEqual(op('unlinkat', 'unlink', '/ws/src/a.c'), { allow: true });
    d.open('/ws/s/x', 'read');
    const u = op('unlinkat', 'unlink', '/ws/src/a.c');
    assert.equal('errno' in u && u.errno, 13);
    assert.match('reason' in u ? String(u.reason) : '', /^unlink of \/ws\/src\/a\.c: write revoked by rules\[0\]/);
    assert.deepEqual(op('unlinkat', 'unlink', '/ws/other.c'), { allow: true }, 'outside the pattern an unlink still works');
    // A rename is a write of both names: into or out of the pattern is refused.
    assert.equal('errno' in op('renameat2', 'rename', '/ws/tmp', '/ws/src/a.c'), true);
    assert.equal('errno' in op('renameat2', 'rename', '/ws/src/a.c', '/ws/tmp'), true);
    assert.deepEqual(op('renameat2', 'rename', '/ws/.git/index.lock', '/ws/.git/index'), { allow: true });
    // A new name for a revoked file is refused (it would be written under that name later).
    assert.equal('errno' in op('linkat', 'link', '/ws/src/a.c', '/ws/alias'), true);
    // connect is untouched by a write revocation.
    assert.deepEqual(d.blind('connect', 'connect'), { allow: true });
  });

  it('a file known by identity is the path it had at launch too (a hard link or rename does not hide it)', () => {
    const d = decider([{ after: [{ access: 'read', target: '/ws/secrets' }], revoke: [{ access: 'write', target: '/ws/src' }] }], [['8:1', ['/ws/secrets/k']], ['8:2', ['/ws/src/main.c']]]);
    d.open('/ws/alias.c', 'write', O_WRONLY, { file: '8:2' });
    assert.equal(d.reports.length, 0);
    d.open('/ws/innocent', 'read', 0, { file: '8:1' });
    assert.equal(d.reports[0]?.trigger, 'read /ws/secrets/k');
    assert.match(d.reports[0]!.by, /openat of \/ws\/innocent, the same file/);
    const w = d.open('/ws/alias.c', 'write', O_WRONLY, { file: '8:2' });
    assert.equal('errno' in w && w.errno, 13);
    assert.match('reason' in w ? String(w.reason) : '', /\/ws\/alias\.c is \/ws\/src\/main\.c, linked or renamed/);
  });
});

describe('the rules\' shared state', () => {
  it('one thread: an event sets its cells, a rule fires once', () => {
    const rules: Rule[] = [{ after: [{ access: 'read', target: '/a' }, { access: 'connect', target: '*' }], revoke: [{ access: 'connect', target: '*' }] }];
    const cells = new Int32Array(newSharedRuleState(rules));
    assert.deepEqual(applyShared(rules, cells, { access: 'read', target: '/a/x' }), []);
    assert.deepEqual(loadRuleState(rules, cells).seen, [[true, false]]);
    assert.deepEqual(applyShared(rules, cells, { access: 'connect', target: 'h:1' }), [0]);
    assert.deepEqual(applyShared(rules, cells, { access: 'connect', target: 'h:1' }), []);
    assert.deepEqual(loadRuleState(rules, cells).fired, [true]);
  });

  it('two threads applying the two halves of 300 rules at once: every rule fires, exactly once', async () => {
    const n = 300;
    const rules: Rule[] = Array.from({ length: n }, (_, i) => ({ after: [{ access: 'read', target: `/a/${i}` }, { access: 'read', target: `/b/${i}` }], revoke: [{ access: 'connect', target: '*' }] }));
    for (let round = 0; round < 5; round++) {
      const buf = newSharedRuleState(rules);
      const api = import.meta.resolve('tsx/esm/api');
      const state = new URL('../../src/supervisor/rules-state.ts', import.meta.url).href;
      const go = new SharedArrayBuffer(4);
      const code = `import(${JSON.stringify(api)}).then(async (m) => { m.register(); const { applyShared } = await import(${JSON.stringify(state)});
        const { parentPort, workerData: { rules, buf, side, go } } = await import('node:worker_threads');
        const cells = new Int32Array(buf); const flag = new Int32Array(go);
        Atomics.add(flag, 0, 1); while (Atomics.load(flag, 0) < 2) {}
        const fired = []; for (let i = 0; i < rules.length; i++) fired.push(...applyShared(rules, cells, { access: 'read', target: '/' + side + '/' + i }));
        parentPort.postMessage(fired); });`;
      const runSide = (side: string) =>
        new Promise<number[]>((resolve, reject) => {
          const w = new Worker(code, { eval: true, workerData: { rules, buf, side, go } });
          w.once('message', (m: number[]) => (resolve(m), void w.terminate()));
          w.once('error', reject);
        });
      const [a, b] = await Promise.all([runSide('a'), runSide('b')]);
      const all = [...a, ...b].sort((x, y) => x - y);
      assert.deepEqual(all, rules.map((_, i) => i), `round ${round}: fired ${all.length} of ${n}, duplicates or losses`);
      assert.ok(loadRuleState(rules, new Int32Array(buf)).fired.every(Boolean));
    }
  });
});
