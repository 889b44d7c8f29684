/**
 * `after: write P` fires on every write into P, not only on opens and renames: a hard link, a
 * symlink, a directory or a node made there, a name removed, a file truncated by path, its mode,
 * owner, times or xattrs changed (by path or on an fd). The same calls `revoke: write P` refuses
 * are the ones `after: write P` counts. Each attack is the red-team shape: put something into the
 * guarded tree without opening anything there for writing, then read the secret the rule
 * revokes; before, every one of these read the secret with no rule firing.
 */
import assert from 'node:assert/strict';
import { existsSync, linkSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { compile, run } from '../../src/index.js';
import type { RunRecord } from '../../src/sandbox/launch.js';
import { fixtureRunOptions, sandboxFixture, which } from '../helpers.js';

const skip = !which('python3') && 'python3 missing';
const RULES = [{ after: 'write ${WORKSPACE}/guarded/**', revoke: 'read ${WORKSPACE}/secrets/**' }];

function setup() {
  const fx = sandboxFixture();
  for (const d of ['secrets', 'guarded', 'guarded/empty']) mkdirSync(path.join(fx.ws, d));
  writeFileSync(path.join(fx.ws, 'secrets', 'key'), 'TOPSECRET\n');
  writeFileSync(path.join(fx.ws, 'guarded', 'existing'), 'guarded contents\n');
  writeFileSync(path.join(fx.ws, 'payload'), 'PAYLOAD\n');
  // A second name outside the pattern, made before the run: the file is still guarded/existing.
  linkSync(path.join(fx.ws, 'guarded', 'existing'), path.join(fx.ws, 'alias'));
  const records: RunRecord[] = [];
  const policy = { extends: ['default'], rules: RULES };
  const options = fixtureRunOptions(fx, records);
  return { ...fx, policy, options, records };
}

/** Python: do `op`, then try the secret; prints op=ERRNO and read=ERRNO (0: it worked). */
const attack = (op: string) => `import os
def attempt(key, f):
    try:
        f(); print('%s=0' % key)
    except OSError as e:
        print('%s=%d' % (key, e.errno))
attempt('op', lambda: ${op})
attempt('read', lambda: open('secrets/key').read())
`;

describe('after: write P fires on every write into P, not only opens and renames', { skip }, () => {
  const cases: { name: string; op: string; trigger: string; ok?: number[] }[] = [
    { name: 'a hard link made into P (the new name)', op: "os.link('payload', 'guarded/linked')", trigger: 'guarded/linked' },
    { name: 'a symlink made in P', op: "os.symlink('/etc/passwd', 'guarded/sym')", trigger: 'guarded/sym' },
    { name: 'a directory made in P', op: "os.mkdir('guarded/d')", trigger: 'guarded/d' },
    { name: 'a FIFO made in P (mknod)', op: "os.mkfifo('guarded/fifo')", trigger: 'guarded/fifo' },
    { name: 'a file removed from P', op: "os.unlink('guarded/existing')", trigger: 'guarded/existing' },
    { name: 'a directory removed from P', op: "os.rmdir('guarded/empty')", trigger: 'guarded/empty' },
    { name: 'a file in P truncated by path (truncate(2))', op: "os.truncate('guarded/existing', 0)", trigger: 'guarded/existing' },
    { name: "a file in P's mode changed", op: "os.chmod('guarded/existing', 0o600)", trigger: 'guarded/existing' },
    { name: "a file in P's times changed", op: "os.utime('guarded/existing', (1, 1))", trigger: 'guarded/existing' },
    { name: "a file in P's owner set (chown to itself)", op: "os.chown('guarded/existing', -1, -1)", trigger: 'guarded/existing' },
    { name: 'a file in P chmod-ed through an fd opened read-only', op: "os.fchmod(os.open('guarded/existing', os.O_RDONLY), 0o600)", trigger: 'guarded/existing' },
    // The event happens when Ward decides the call, before it is made: a filesystem without
    // user xattrs (EOPNOTSUPP) still saw the attempt.
    { name: "a file in P's xattr set", op: "os.setxattr('guarded/existing', 'user.ward', b'1')", trigger: 'guarded/existing', ok: [0, 95] },
    // A name it had at launch is a name it still has: truncating it under another name writes P.
    { name: 'a file in P truncated through a hard link made before the run', op: "os.truncate('alias', 0)", trigger: 'guarded/existing' },
    { name: 'a file in P chmod-ed through a hard link made before the run', op: "os.chmod('alias', 0o600)", trigger: 'guarded/existing' },
  ];
  for (const c of cases) {
    it(`${c.name} fires the rule: the secret read after it is refused`, async () => {
      const t = setup();
      const r = await run({ policy: t.policy }, ['python3', '-c', attack(c.op)], t.options);
      const out = r.stdout.toString() + r.stderr.toString();
      assert.equal(r.exitCode, 0, out);
      const op = Number(/^op=(\d+)$/m.exec(out)?.[1] ?? NaN);
      // The rule only watches: the write itself is the kernel's (and Ward's) ordinary answer.
      assert.ok((c.ok ?? [0]).includes(op), `op: ${out}`);
      assert.match(out, /^read=13$/m, `the secret was read after ${c.op}: ${out}`);
      assert.equal(r.revocations.length, 1, JSON.stringify(r.revocations));
      assert.equal(r.revocations[0]!.trigger, `write ${path.join(t.ws, c.trigger)}`);
      assert.ok(r.denials.some((d) => d.layer === 'supervisor' && /read revoked by rules\[0\]/.test(d.detail)), JSON.stringify(r.denials));
    });
  }

  it('a unix socket bound into P (a write no supervisor can see: bind(2) names its path in memory) is refused by Landlock from the start', async () => {
    const t = setup();
    const r = await run({ policy: t.policy }, ['python3', '-c', attack("__import__('socket').socket(__import__('socket').AF_UNIX).bind('guarded/s.sock')")], t.options);
    const out = r.stdout.toString() + r.stderr.toString();
    assert.match(out, /^op=13$/m, out);
    assert.ok(!existsSync(path.join(t.ws, 'guarded', 's.sock')));
    // Nothing was written into P, so nothing fired.
    assert.match(out, /^read=0$/m, out);
    const launch = t.records.find((x) => x.type === 'launch') as { notes: string[] } | undefined;
    assert.ok(launch?.notes.some((n) => n.startsWith(`no unix socket can be bound to a path under ${t.ws}: a rule waits for a write to ${path.join(t.ws, 'guarded')}`)), JSON.stringify(launch?.notes));
  });

  it('the same calls outside P fire nothing; the secret stays readable', async () => {
    const t = setup();
    const ops = [
      "os.link('payload', 'linked')", "os.symlink('/etc/passwd', 'sym')", "os.mkdir('d')", "os.mkfifo('fifo')",
      "os.truncate('payload', 0)", "os.chmod('payload', 0o600)", "os.utime('payload', (1, 1))", "os.unlink('linked')", "os.rmdir('d')",
    ].join(', ');
    const r = await run({ policy: t.policy }, ['python3', '-c', attack(`(${ops})`)], t.options);
    const out = r.stdout.toString() + r.stderr.toString();
    assert.match(out, /^op=0$/m, out);
    assert.match(out, /^read=0$/m, out);
    assert.deepEqual(r.revocations, []);
    assert.ok(existsSync(path.join(t.ws, 'fifo')) && readFileSync(path.join(t.ws, 'payload'), 'utf8') === '');
  });

  it('reads stay in the kernel under the bench\'s write rule (after: write P, revoke: network): only what could write is notified, and a run reading 40 files is no more notified than one reading none', async () => {
    const t = setup();
    // bench/supervisor.js WAITING_RULES: nothing about reads, so no read-only open is notified.
    const policy = { extends: ['default'], rules: [{ after: 'write ${WORKSPACE}/guarded/**', revoke: 'network' }] };
    const plan = compile({ policy }, { workspace: t.ws, env: t.env });
    const sys = plan.rules!.syscalls;
    for (const s of ['linkat', 'symlinkat', 'mkdirat', 'mknodat', 'unlinkat', 'truncate', 'fchmodat', 'utimensat', 'fchmod']) assert.ok(sys.includes(s as never), `${s} is not supervised: ${sys.join(', ')}`);
    assert.ok(!sys.includes('open') && !sys.includes('openat'), 'open and openat only under the write condition');
    assert.deepEqual(plan.rules!.conditions, { writeOpens: true });
    for (let i = 0; i < 40; i++) writeFileSync(path.join(t.ws, `r${i}`), 'x');
    const reads = (n: number) => `for i in range(${n}):\n    open('r%d' % i).read()\nprint('done')\n`;
    const none = await run({ policy }, ['python3', '-c', reads(0)], t.options);
    const forty = await run({ policy }, ['python3', '-c', reads(40)], t.options);
    assert.equal(forty.exitCode, 0, forty.stderr.toString());
    assert.ok(none.supervisor && none.supervisor.notifications > 0, 'the run was supervised (exec is always notified)');
    assert.equal(forty.supervisor?.notifications, none.supervisor?.notifications, 'a read-only open reached the supervisor');
  });
});
