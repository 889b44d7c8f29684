/**
 * The audit log wired into real runs: `ward run` and the library record every
 * launch, denial, exit and refusal, the result verifies, and the sandbox has no
 * way to the log.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { run, start } from '../../src/api.js';
import type { AuditRecord } from '../../src/audit/format.js';
import { loadVerifyKey } from '../../src/audit/keys.js';
import { verifyLogFile } from '../../src/audit/verify.js';
import { hasCgroup, sandboxFixture, ward } from '../helpers.js';

const degraded = hasCgroup ? [] : ['--allow-degraded'];

/** A workspace and a home of its own; Ward's config and state under that home. */
function fixture() {
  const fx = sandboxFixture();
  const env: NodeJS.ProcessEnv = { ...fx.env, XDG_CONFIG_HOME: '', XDG_STATE_HOME: '' };
  const state = path.join(fx.home, '.local', 'state', 'ward');
  const log = path.join(state, 'audit.jsonl');
  const records = (file = log) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);
  const verify = (file = log) => verifyLogFile(file, loadVerifyKey(undefined, env));
  return { ...fx, env, state, log, records, verify };
}

describe('audit log: ward run', () => {
  it('records launch, denial, exit and refusals with one run_id per run, and the log verifies', () => {
    const fx = fixture();
    const first = ward(['run', ...degraded, '--', 'sh', '-c', 'exit 3'], { cwd: fx.ws, env: fx.env });
    assert.equal(first.code, 3, first.stderr);
    // The key is made on first use, and the user is told where.
    assert.match(first.stderr, /created the audit signing key .*\.config\/ward\/audit\.key/);
    writeFileSync(path.join(fx.ws, 'slow.yaml'), 'extends: [default]\nresources: {wall_time: 1s}\n');
    assert.equal(ward(['run', ...degraded, '--policy', 'slow.yaml', '--', 'sleep', '20'], { cwd: fx.ws, env: fx.env }).code, 124);
    writeFileSync(path.join(fx.ws, 'bad.yaml'), 'filesystem:\n  raed: ["/etc"]\n');
    const refused = ward(['run', '--policy', 'bad.yaml', '--', 'touch', 'ran'], { cwd: fx.ws, env: fx.env });
    assert.equal(refused.code, 125);
    assert.doesNotMatch(refused.stderr, /created the audit signing key/);

    const v = fx.verify();
    assert.equal(v.ok, true, JSON.stringify(v.problem));
    assert.equal(statSync(fx.log).mode & 0o777, 0o600);
    assert.equal(statSync(fx.state).mode & 0o777, 0o700);

    const recs = fx.records();
    const runs = [...new Set(recs.filter((r) => r.run_id).map((r) => r.run_id as string))];
    assert.equal(runs.length, 3);
    const ofRun = (id: string) => recs.filter((r) => r.run_id === id);
    const [a, b, c] = runs.map(ofRun) as [AuditRecord[], AuditRecord[], AuditRecord[]];
    assert.deepEqual(a.map((r) => r.type), ['launch', 'exit']);
    assert.equal(a[1]!.exit_code, 3);
    assert.deepEqual(a[0]!.argv, ['sh', '-c', 'exit 3']);
    assert.match(String(a[0]!.policy_sha256), /^[0-9a-f]{64}$/);
    const observed = a[0]!.observed as { proc_status: Record<string, string> };
    assert.equal(observed.proc_status.Seccomp, '2');
    assert.equal(observed.proc_status.NoNewPrivs, '1');
    assert.deepEqual(b.map((r) => r.type), ['launch', 'denial', 'exit']);
    assert.deepEqual([b[1]!.layer, b[1]!.what, b[1]!.verdict], ['timeout', 'wall_time', 'killed']);
    assert.deepEqual([b[2]!.exit_code, b[2]!.reason], [124, 'timeout']);
    assert.deepEqual(c.map((r) => r.type), ['launch-failed']);
    assert.equal(c[0]!.step, 'policy');
    assert.match(String(c[0]!.message), /unknown key "raed"/);
    // Each run ends with a checkpoint.
    for (const id of runs) {
      const last = recs.map((r) => r.run_id).lastIndexOf(id);
      assert.equal(recs[last + 1]?.type, 'checkpoint', `run ${id}`);
    }

    const shown = ward(['audit', 'show'], { env: fx.env });
    assert.match(shown.stdout, /launch  sh -c 'exit 3'/);
    assert.match(shown.stdout, /exit 124 \(timeout\)/);
    assert.match(shown.stdout, /REFUSED at policy/);
    assert.equal(ward(['audit', 'verify'], { env: fx.env }).code, 0);
  });

  it('--audit-log FILE writes there; a log inside a granted path is refused before anything runs', () => {
    const fx = fixture();
    const outside = path.join(path.dirname(fx.ws), 'elsewhere', 'runs.jsonl');
    assert.equal(ward(['run', ...degraded, '--audit-log', outside, '--', 'true'], { cwd: fx.ws, env: fx.env }).code, 0);
    assert.equal(fx.verify(outside).ok, true);
    assert.equal(existsSync(fx.log), false);

    const inside = ward(['run', ...degraded, '--audit-log', path.join(fx.ws, 'audit.jsonl'), '--', 'touch', 'ran'], { cwd: fx.ws, env: fx.env });
    assert.equal(inside.code, 125);
    assert.match(inside.stderr, /the audit log .*audit\.jsonl is inside a path this policy lets the sandbox see/);
    assert.equal(existsSync(path.join(fx.ws, 'ran')), false);
  });

  it('a log Ward cannot write stops the run before anything runs', () => {
    const fx = fixture();
    writeFileSync(path.join(path.dirname(fx.ws), 'afile'), '');
    const r = ward(['run', ...degraded, '--audit-log', path.join(path.dirname(fx.ws), 'afile', 'audit.jsonl'), '--', 'touch', 'ran'], { cwd: fx.ws, env: fx.env });
    assert.equal(r.code, 125);
    assert.match(r.stderr, /cannot create the audit log's directory/);
    assert.equal(existsSync(path.join(fx.ws, 'ran')), false);
  });

  it('the sandbox cannot reach the log: not with the default policy, not when the policy grants all of ~ to read; a writable ~ never runs', () => {
    const fx = fixture();
    assert.equal(ward(['run', ...degraded, '--', 'true'], { cwd: fx.ws, env: fx.env }).code, 0);
    const attack = ['sh', '-c', `cat ${fx.log}; echo "cat=$?"; ls ${fx.state}; echo "ls=$?"; echo x >> ${fx.log}; echo "append=$?"; ls -l /proc/self/fd/ /proc/1/fd/ 2>&1 | grep -c audit`];
    // The default policy: $HOME is a private tmpfs, so the path does not exist inside.
    const a = ward(['run', ...degraded, '--', ...attack], { cwd: fx.ws, env: fx.env });
    assert.match(a.stdout, /cat=1/);
    assert.match(a.stdout, /ls=[12]/);
    assert.match(a.stdout, /append=[12]/);
    assert.match(a.stdout, /^0$/m); // no descriptor of the sandbox points at the log
    // A policy granting all of ~ to read: the state dir is on the mandatory deny list, masked.
    // (A writable ~ is refused before anything runs: see the end.)
    writeFileSync(path.join(fx.ws, 'home.yaml'), 'extends: [default]\nfilesystem:\n  read: ["~"]\n');
    const shown = ward(['policy', 'show', 'home.yaml'], { cwd: fx.ws, env: fx.env });
    assert.ok(JSON.parse(shown.stdout.split('\n')[0]!).filesystem.deny.some((d: { path: string }) => d.path === fx.state), 'the state dir is denied');
    const b = ward(['run', ...degraded, '--policy', 'home.yaml', '--', ...attack], { cwd: fx.ws, env: fx.env });
    assert.match(b.stderr, /Permission denied/);
    assert.match(b.stdout, /cat=1/);
    assert.match(b.stdout, /ls=[12]/);
    assert.match(b.stdout, /append=[12]/);
    assert.match(b.stdout, /^0$/m);
    writeFileSync(path.join(fx.ws, 'home-rw.yaml'), 'extends: [default]\nfilesystem:\n  write: ["~"]\n');
    const c = ward(['run', ...degraded, '--policy', 'home-rw.yaml', '--', ...attack], { cwd: fx.ws, env: fx.env });
    assert.equal(c.code, 125, c.stdout + c.stderr);
    assert.match(c.stderr, /is writable and is your home directory/);
    const v = fx.verify();
    assert.equal(v.ok, true, JSON.stringify(v.problem));
    assert.equal(fx.records().filter((r) => r.type === 'launch').length, 3);
  });
});

describe('audit log: library', () => {
  const opts = (fx: ReturnType<typeof fixture>) => ({ workspace: fx.ws, env: fx.env, stdin: 'ignore' as const, allowDegraded: !hasCgroup });

  it('run() records to the default log of its env by default, to a file when given one, and nowhere with audit: false', async () => {
    const fx = fixture();
    const r = await run({ profile: 'default' }, ['sh', '-c', 'echo hi'], opts(fx));
    assert.equal(r.exitCode, 0);
    assert.equal(fx.verify().ok, true);
    assert.deepEqual(fx.records().filter((x) => x.run_id).map((x) => x.type), ['launch', 'exit']);

    const file = path.join(path.dirname(fx.ws), 'lib', 'audit.jsonl');
    await run({ profile: 'default' }, ['true'], { ...opts(fx), audit: file });
    assert.equal(fx.verify(file).ok, true);

    const before = readFileSync(fx.log, 'utf8');
    const quiet = fixture();
    await run({ profile: 'default' }, ['true'], { ...opts(quiet), audit: false });
    assert.equal(existsSync(quiet.log), false);
    assert.equal(existsSync(path.join(quiet.home, '.config', 'ward', 'audit.key')), false);
    assert.equal(readFileSync(fx.log, 'utf8'), before);
  });

  it('fail closed: a log that stops taking records mid-run kills the sandbox, and the run is an error', async () => {
    const fx = fixture();
    const file = path.join(path.dirname(fx.ws), 'broken', 'audit.jsonl');
    const started = Date.now();
    const h = start({ profile: 'default' }, ['sleep', '20'], { ...opts(fx), audit: file });
    // The log was checked (prepare) before the sandbox started; break it before the launch record comes.
    unlinkSync(`${file}.head`);
    await assert.rejects(h.result, /the audit log could not be written \(.*has no head file.*\); the sandbox was killed/);
    assert.ok(Date.now() - started < 10_000, 'the sandbox was not killed');
  });

  it('a burst of refusals is written in batches: every denial, in the order made, before the exit, and the log verifies', async () => {
    // Records are appended together per turn of the event loop (run-log.ts): the batching must
    // keep every record, in order, ahead of the exit record that ends the run.
    const fx = fixture();
    mkdirSync(path.join(fx.ws, 'secrets'));
    mkdirSync(path.join(fx.ws, 'src'));
    writeFileSync(path.join(fx.ws, 'secrets', 'key'), 'k\n');
    const policy = { extends: ['default'], rules: [{ after: 'read ${WORKSPACE}/secrets/**', revoke: 'write ${WORKSPACE}/src/**' }] };
    const n = 400;
    const script = `cat secrets/key >/dev/null; i=0; while [ $i -lt ${n} ]; do { true > src/f$i; } 2>/dev/null && echo made $i; i=$((i+1)); done; echo done`;
    const r = await run({ policy }, ['sh', '-c', script], opts(fx));
    assert.equal(r.exitCode, 0, r.stderr.toString());
    assert.equal(r.stdout.toString(), 'done\n', 'every write after the read was refused');
    const v = fx.verify();
    assert.equal(v.ok, true, JSON.stringify(v.problem));
    const mine = fx.records().filter((x) => x.run_id); // the only run in this log
    const made = mine.flatMap((x) => {
      const m = x.type === 'denial' ? /\/src\/f(\d+)$/.exec(String(x.what)) : null;
      return m ? [Number(m[1])] : [];
    });
    assert.deepEqual(made, Array.from({ length: n }, (_, i) => i));
    assert.equal(mine.at(-1)!.type, 'exit');
    assert.equal(mine[0]!.type, 'launch');
  });

  it('parallel runs in one process share one chain; a refused policy is recorded as launch-failed', async () => {
    const fx = fixture();
    mkdirSync(fx.state, { recursive: true });
    const results = await Promise.all(Array.from({ length: 4 }, (_, i) => run({ profile: 'default' }, ['sh', '-c', `exit ${i}`], opts(fx))));
    assert.deepEqual(results.map((r) => r.exitCode), [0, 1, 2, 3]);
    await assert.rejects(run({ policy: { network: { allow: ['example.com:*'] } } }, ['true'], opts(fx)), /network\.allow/);
    const v = fx.verify();
    assert.equal(v.ok, true, JSON.stringify(v.problem));
    const recs = fx.records();
    assert.equal(recs.filter((r) => r.type === 'exit').length, 4);
    const failed = recs.filter((r) => r.type === 'launch-failed');
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.step, 'policy');
  });
});
