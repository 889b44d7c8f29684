/**
 * The writer: the record format as specified, checkpoints every N records and
 * on request, one chain from several processes at once, the lock's stale-lock
 * recovery, and refusals when the log on disk is not what Ward left.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, truncateSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { WardError } from '../../src/errors.js';
import { DOMAIN_TAG, ZERO_HASH, type AuditRecord } from '../../src/audit/format.js';
import { canonicalJson } from '../../src/policy/canonical.js';
import { loadSigningKey, loadVerifyKey } from '../../src/audit/keys.js';
import { verifyLogFile } from '../../src/audit/verify.js';
import { AuditWriter } from '../../src/audit/writer.js';
import { eventually, ROOT } from '../helpers.js';
import { freshEnv, launchEvent } from './fixture.js';

function setup(checkpointEvery?: number) {
  const { dir, env } = freshEnv();
  const key = loadSigningKey({ env, create: true });
  const file = path.join(dir, 'logs', 'audit.jsonl');
  const writer = new AuditWriter({ path: file, key, checkpointEvery });
  const records = () => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);
  const verify = () => verifyLogFile(file, loadVerifyKey(undefined, env));
  return { dir, env, key, file, writer, records, verify };
}

describe('audit writer', () => {
  it('writes the format as specified: log-start at seq 0 after 64 zeros, each hash over tag || prev || canonical JSON', () => {
    const t = setup();
    t.writer.append([launchEvent(1, 'r1')]);
    t.writer.append([{ type: 'exit', run_id: 'r1', exit_code: 0 }], { checkpoint: true });
    const recs = t.records();
    assert.deepEqual(recs.map((r) => r.type), ['log-start', 'launch', 'checkpoint', 'exit', 'checkpoint']);
    assert.deepEqual(recs.map((r) => r.seq), [0, 1, 2, 3, 4]);
    assert.equal(recs[0]!.prev, ZERO_HASH);
    assert.equal(recs[0]!.key_id, t.key.keyId);
    assert.match(String(recs[0]!.log_id), /^[0-9a-f]{32}$/);
    for (const [i, r] of recs.entries()) {
      const { hash, ...body } = r;
      assert.equal(hash, createHash('sha256').update(DOMAIN_TAG).update(r.prev).update(canonicalJson(body)).digest('hex'), `record ${i}`);
      if (i > 0) assert.equal(r.prev, recs[i - 1]!.hash);
      if (i > 0) assert.ok(r.ts >= recs[i - 1]!.ts);
    }
    // The line begins with seq, ts, type, and ends with prev, hash.
    assert.match(readFileSync(t.file, 'utf8').split('\n')[1]!, /^\{"seq":1,"ts":"[^"]+","type":"launch","argv":.*,"prev":"[0-9a-f]{64}","hash":"[0-9a-f]{64}"\}$/);
    const cp = recs[4]!;
    assert.equal(cp.size, 4);
    assert.equal(cp.head, recs[3]!.hash);
    assert.equal(t.verify().ok, true);
    assert.equal(statSync(t.file).mode & 0o777, 0o600);
    assert.equal(statSync(path.dirname(t.file)).mode & 0o777, 0o700);
    assert.equal(statSync(`${t.file}.head`).mode & 0o777, 0o600);
    assert.equal(existsSync(`${t.file}.lock`), false);
  });

  it('a checkpoint at least every N records, and none twice in a row', () => {
    const t = setup(10);
    for (let i = 0; i < 45; i++) t.writer.append([{ type: 'denial', i }]);
    t.writer.checkpoint();
    t.writer.checkpoint();
    const recs = t.records();
    const cps = recs.filter((r) => r.type === 'checkpoint').map((r) => r.seq);
    let last = -1;
    for (const c of cps) {
      assert.ok(c - last - 1 <= 10, `${c - last - 1} records before the checkpoint at ${c}`);
      last = c;
    }
    assert.equal(recs.at(-1)!.type, 'checkpoint');
    assert.notEqual(recs.at(-2)!.type, 'checkpoint');
    assert.equal(t.verify().ok, true);
  });

  it('a batch that crosses N: the checkpoint lands inside it, the head file names that checkpoint, the rest is reported unsigned until the next one', () => {
    const t = setup(10);
    t.writer.prepare();
    const written = t.writer.append(Array.from({ length: 15 }, (_, i) => ({ type: 'denial', i })));
    const cp = written.find((r) => r.type === 'checkpoint')!;
    const head = JSON.parse(readFileSync(`${t.file}.head`, 'utf8'));
    assert.deepEqual([head.size, head.head], [cp.seq + 1, cp.hash]);
    const r = t.verify();
    assert.equal(r.problem?.kind, 'unsigned-tail', JSON.stringify(r.problem));
    assert.equal(r.unsigned_tail, written.length - written.indexOf(cp) - 1);
    t.writer.append([{ type: 'denial', i: 15 }]); // the writer goes on from the head's checkpoint
    t.writer.checkpoint();
    assert.equal(t.verify().ok, true);
  });

  it('refuses events that set the log\'s own fields or types', () => {
    const t = setup();
    assert.throws(() => t.writer.append([{ type: 'exit', seq: 5 }]), /cannot set "seq"/);
    assert.throws(() => t.writer.append([{ type: 'checkpoint' }]), /written by the log itself/);
  });

  /** Worker processes appending to t's log, each started by "go" on its stdin (append-worker.ts). */
  function workers(t: ReturnType<typeof setup>, jobs: Array<[name: string, count: string]>) {
    const worker = path.join(ROOT, 'test/audit/append-worker.ts');
    const procs = jobs.map(([name, count]) => spawn(process.execPath, ['--import', 'tsx', worker, t.file, t.key.file, name, count], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] }));
    const said = (p: (typeof procs)[number], word: string) =>
      new Promise<void>((resolve, reject) => {
        let out = '';
        p.stdout!.on('data', (c: Buffer) => {
          out += c.toString();
          if (out.includes(word)) resolve();
        });
        p.once('exit', (code) => (out.includes(word) ? resolve() : reject(new Error(`worker exited ${code} before "${word}"`))));
      });
    return {
      go: async () => {
        await Promise.all(procs.map((p) => said(p, 'ready')));
        for (const p of procs) p.stdin!.write('go\n');
      },
      done: () => Promise.all(procs.map((p) => said(p, 'done'))),
    };
  }

  it('4 processes appending 200 records each at once produce one valid chain with every record', async () => {
    const t = setup();
    t.writer.prepare();
    const w = workers(t, ['a', 'b', 'c', 'd'].map((name) => [name, '200']));
    await w.go();
    await w.done();
    const r = t.verify();
    assert.equal(r.ok, true, JSON.stringify(r.problem));
    const recs = t.records();
    for (const name of ['a', 'b', 'c', 'd']) {
      assert.deepEqual(recs.filter((x) => x.run_id === name).map((x) => x.i), Array.from({ length: 200 }, (_, i) => i), name);
    }
    const order = recs.filter((x) => x.type === 'denial').map((x) => x.run_id);
    const switches = order.filter((x, i) => i > 0 && x !== order[i - 1]).length;
    assert.ok(switches > 3, `the workers did not interleave (${switches} switches): the test did not test contention`);
  });

  it('a process appending nonstop does not starve another: each of its appends waits at most the other\'s turn', async () => {
    const t = setup();
    t.writer.prepare();
    const w = workers(t, [['hog', 'for:4000']]);
    await w.go();
    assert.ok(await eventually(() => t.records().length >= 50), 'the hog is appending');
    const ours = new AuditWriter({ path: t.file, key: t.key, lockTimeoutMs: 2000 });
    // Back to back for 2.5 s of the hog's 4 (each append throws if it waits out its timeout).
    for (let i = 0, end = Date.now() + 2500; Date.now() < end; i++) ours.append([{ type: 'denial', run_id: 'ours', i }]);
    await w.done();
    t.writer.checkpoint();
    assert.equal(t.verify().ok, true);
    const recs = t.records().filter((x) => x.type === 'denial');
    const at = recs.flatMap((x, k) => (x.run_id === 'ours' ? [k] : []));
    assert.ok(at.at(-1)! < recs.length - 1, 'the hog was still appending after our last record: the test tested contention');
    // Between two of our appends (made back to back) the hog's records are the ones it wrote while
    // we waited: at most its turn, 5 ms of its appends (about 35 here). The bound is 50 ms of them,
    // at the rate the hog kept in this run, so a faster or busier machine moves both alike.
    // Polling, we waited out 500 ms and more (thousands of records).
    const hog = recs.filter((x) => x.run_id === 'hog');
    const perMs = hog.length / Math.max(1, Date.parse(String(hog.at(-1)!.ts)) - Date.parse(String(hog[0]!.ts)));
    const gaps = at.slice(1).map((k, i) => k - at[i]! - 1);
    const bound = Math.max(50, Math.round(perMs * 50));
    assert.ok(gaps.length > 100 && Math.max(...gaps) <= bound, `the hog wrote up to ${Math.max(...gaps)} records (bound ${bound}) while one of ours waited (${gaps.length} gaps)`);
  });

  it('a lock left by a dead process, or by a reused pid, is broken; a live one is waited for, then named', () => {
    const t = setup();
    t.writer.prepare();
    const lock = `${t.file}.lock`;
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    writeFileSync(lock, `${dead} - ${os.hostname()} deadbeef\n`);
    t.writer.append([{ type: 'denial', what: 'after a dead holder' }], { checkpoint: true });
    assert.equal(existsSync(lock), false);

    writeFileSync(lock, `${process.pid} 1 ${os.hostname()} reused\n`); // our pid, another start time
    t.writer.append([{ type: 'denial', what: 'after a reused pid' }], { checkpoint: true });

    const ownStart = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[19];
    writeFileSync(lock, `${process.pid} ${ownStart} ${os.hostname()} alive\n`);
    const w = new AuditWriter({ path: t.file, key: t.key, lockTimeoutMs: 300 });
    assert.throws(() => w.append([{ type: 'denial' }]), (e: unknown) => e instanceof WardError && /locked by process/.test(e.message) && e.fix!.includes(lock));
    assert.deepEqual(readdirSync(`${lock}.queue`), [], 'the waiter that gave up left the queue');
    unlinkSync(lock);
    assert.equal(t.verify().ok, true);
  });

  it('the queue of waiters: a ticket older than everyone goes first; one left by a killed waiter is passed over and removed', async () => {
    const t = setup();
    t.writer.prepare();
    await new Promise((r) => setTimeout(r, 50)); // past this process's turn (5 ms), in which it would take the lock again at once
    const queue = `${t.file}.lock.queue`;
    mkdirSync(queue);
    // A live waiter that came before us (its ticket is touched): we wait our turn, then give up.
    const before = path.join(queue, `1-${process.pid}-live`);
    writeFileSync(before, '');
    const w = new AuditWriter({ path: t.file, key: t.key, lockTimeoutMs: 300 });
    assert.throws(() => w.append([{ type: 'denial' }]), (e: unknown) => e instanceof WardError && /locked by other Ward processes/.test(e.message) && /--audit-log FILE/.test(e.fix ?? ''));
    assert.equal(existsSync(`${t.file}.lock`), false, 'the lock was free all along: only the queue held us');
    // The same ticket, untouched for 10 s (its process is gone): passed over at once, and removed.
    const old = new Date(Date.now() - 10_000);
    utimesSync(before, old, old);
    t.writer.append([{ type: 'denial', what: 'after an abandoned ticket' }], { checkpoint: true });
    assert.deepEqual(readdirSync(queue), []);
    // One touched 10 s "in the future" (the clock was stepped back since): abandoned as well.
    writeFileSync(before, '');
    const ahead = new Date(Date.now() + 10_000);
    utimesSync(before, ahead, ahead);
    await new Promise((r) => setTimeout(r, 50));
    t.writer.append([{ type: 'denial', what: 'after a ticket from before a clock step' }], { checkpoint: true });
    assert.deepEqual(readdirSync(queue), []);
    assert.equal(t.verify().ok, true);
  });

  it('refuses to sign over a log changed since its last checkpoint, cut short, or without its head', () => {
    const t = setup();
    t.writer.append([{ type: 'denial', what: 'x' }], { checkpoint: true });
    t.writer.append([{ type: 'denial', what: 'unsigned' }]);
    const text = readFileSync(t.file, 'utf8');
    writeFileSync(t.file, text.replace('"what":"unsigned"', '"what":"UNSIGNED"'));
    assert.throws(() => t.writer.append([{ type: 'exit' }], { checkpoint: true }), /changed after its last checkpoint/);
    writeFileSync(t.file, text);

    const head = readFileSync(`${t.file}.head`);
    // Keep log-start and the first record: the checkpoint the head names is gone.
    truncateSync(t.file, text.split('\n').slice(0, 2).join('\n').length + 1);
    assert.throws(() => t.writer.append([{ type: 'exit' }]), /fewer records than its signed head says/);
    writeFileSync(t.file, text);

    unlinkSync(`${t.file}.head`);
    assert.throws(() => t.writer.append([{ type: 'exit' }]), /has no head file/);
    writeFileSync(`${t.file}.head`, head);

    appendFileSync(t.file, '{"seq":');
    assert.throws(() => t.writer.append([{ type: 'exit' }]), /incomplete line/);
    writeFileSync(t.file, text);
    t.writer.append([{ type: 'exit' }], { checkpoint: true });
    assert.equal(t.verify().ok, true);
  });

  it('an in-place edit between two appends of one writer is caught, even with the size and mtime put back', () => {
    // The writer skips re-reading a log that is exactly as it left it; "exactly" must include the
    // inode change time, which an edit cannot put back.
    const t = setup();
    t.writer.append([{ type: 'denial', what: 'x' }], { checkpoint: true });
    t.writer.append([{ type: 'denial', what: 'unsigned' }]);
    const before = statSync(t.file, { bigint: true });
    const text = readFileSync(t.file, 'utf8');
    writeFileSync(t.file, text.replace('"what":"unsigned"', '"what":"UNSIGNED"'));
    // touch takes nanoseconds (Node's utimes would round them).
    const ns = before.mtimeNs;
    spawnSync('touch', ['-m', '-d', `@${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`, t.file]);
    const after = statSync(t.file, { bigint: true });
    assert.equal(after.size, before.size);
    assert.equal(after.mtimeNs, before.mtimeNs, 'size and mtime are as the writer left them');
    assert.throws(() => t.writer.append([{ type: 'exit' }], { checkpoint: true }), /changed after its last checkpoint/);
  });

  it('a log signed with another key is not appended to', () => {
    const t = setup();
    t.writer.prepare();
    const other = freshEnv();
    const w = new AuditWriter({ path: t.file, key: loadSigningKey({ env: other.env, create: true }) });
    assert.throws(() => w.append([{ type: 'exit' }]), (e: unknown) => e instanceof WardError && /is signed with key/.test(e.message) && /move/.test(e.fix!));
  });
});
