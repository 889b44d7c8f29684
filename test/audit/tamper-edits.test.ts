/**
 * Randomized tampering, part 1: byte edits of the log and of its head file,
 * forged chains, the wrong key. Every change is detected, and for edits the
 * first bad line reported is the edited line. Each case edits a fresh copy of
 * the log's bytes.
 */
import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { describe, it } from 'node:test';
import { checkpointStatement, makeRecord, serializeHead, serializeRecord, type AuditRecord, type HeadFile } from '../../src/audit/format.js';
import { loadSigningKey, loadVerifyKey } from '../../src/audit/keys.js';
import { verifyLog } from '../../src/audit/verify.js';
import { freshEnv, fromLines, rng } from './fixture.js';
import { checkpointLines, expectBad, fx, lineOf, lines, N, seed, verify } from './tamper-setup.js';

describe(`audit log tampering: edits (seed ${seed})`, () => {
  it('the untouched log verifies: a few hundred records, many checkpoints, head file matching', () => {
    const r = verify(fx.log);
    assert.equal(r.ok, true, JSON.stringify(r.problem));
    assert.ok(N >= 250, `only ${N} records`);
    assert.equal(r.verified, N);
    assert.ok(r.checkpoints >= 40, `${r.checkpoints} checkpoints`);
    assert.equal(r.unsigned_tail, 0);
    assert.equal(r.head_file?.size, N);
    // The every-64 rule fired inside the burst: a checkpoint followed by a burst record.
    const gaps = checkpointLines.slice(1).map((l, i) => l - checkpointLines[i]!);
    assert.ok(Math.max(...gaps) <= 65, `a stretch of ${Math.max(...gaps)} lines without a checkpoint`);
  });

  it('2000 single-byte edits at random offsets: every one detected at the edited line', () => {
    const rand = rng(seed);
    const kinds = new Map<string, number>();
    for (let n = 0; n < 2000; n++) {
      const copy = Buffer.from(fx.log);
      const off = Math.floor(rand() * copy.length);
      const old = copy[off]!;
      let b = Math.floor(rand() * 256);
      if (b === old) b = (b + 1) % 256;
      copy[off] = b;
      const r = verify(copy);
      expectBad(r, lineOf[off]!, `byte ${off} ${old}->${b}`);
      kinds.set(r.problem!.kind, (kinds.get(r.problem!.kind) ?? 0) + 1);
    }
    assert.ok((kinds.get('edited') ?? 0) > 0 && (kinds.get('unparsable') ?? 0) > 0, JSON.stringify([...kinds]));
  });

  it('edits that keep the JSON valid and meaningful: a digit, a letter case, an escape', () => {
    const text = fx.log.toString('utf8');
    const cases: [string, RegExp, (m: string) => string][] = [
      ['exit code', /"exit_code":3/, () => '"exit_code":0'],
      ['escape case', /\\u001b/, () => '\\u001B'],
      ['key order', /"exit_code":0,"message":null/, () => '"message":null,"exit_code":0'],
      ['whitespace', /"reason":"exit"/, () => '"reason": "exit"'],
      ['seq', /"seq":40,/, () => '"seq":41,'],
      // A number pushed out of range parses as Infinity, which no canonical spelling has: a
      // random edit found that the verifier threw here instead of naming the line.
      ['number out of range', /"exit_code":3/, () => '"exit_code":3e999'],
    ];
    for (const [what, re, to] of cases) {
      const m = re.exec(text);
      assert.ok(m, what);
      const edited = Buffer.from(text.slice(0, m.index) + to(m[0]) + text.slice(m.index + m[0].length));
      expectBad(verify(edited), lineOf[Buffer.byteLength(text.slice(0, m.index))]!, what);
    }
  });

  it('the head file: missing, or any one of its bytes changed (each byte once), is detected', () => {
    expectBad(verify(fx.log, null), null, 'no head file');
    const rand = rng(seed + 5);
    for (let off = 0; off < fx.head.length; off++) {
      const copy = Buffer.from(fx.head);
      let b = Math.floor(rand() * 256);
      if (b === copy[off]) b = (b + 1) % 256;
      copy[off] = b;
      expectBad(verify(fx.log, copy.toString('latin1')), null, `head byte ${off}`);
    }
  });

  it('an attacker without the key who rewrites a record and recomputes every hash after it is caught by the next checkpoint', () => {
    const recs = lines.map((l) => JSON.parse(l.toString()) as AuditRecord);
    const target = recs.findIndex((r, i) => i > 10 && r.type === 'exit');
    const next = recs.findIndex((r, i) => i > target && r.type === 'checkpoint');
    const forged: AuditRecord[] = recs.slice(0, target);
    for (let i = target; i < recs.length; i++) {
      const { hash: _h, prev: _p, seq, ts, ...ev } = recs[i]!;
      if (i === target) ev.exit_code = 0;
      forged.push(makeRecord(ev as AuditRecord, seq, ts, forged[i - 1]!.hash));
    }
    const r = verify(Buffer.from(forged.map((x) => `${serializeRecord(x)}\n`).join('')));
    expectBad(r, next + 1, 'forged chain');
    assert.equal(r.problem!.kind, 'signature');
  });

  it('a log verified with another public key fails (exit 1 in the CLI), naming both keys', () => {
    const other = freshEnv();
    loadSigningKey({ env: other.env, create: true });
    const r = verifyLog(fx.log, fx.head, loadVerifyKey(undefined, other.env));
    expectBad(r, 1, 'wrong key');
    assert.equal(r.problem!.kind, 'wrong-key');
    assert.match(r.problem!.message, /wrong public key/);
  });

  it('records after the last checkpoint are reported as unsigned', () => {
    const extra = JSON.parse(lines[N - 2]!.toString()) as AuditRecord;
    const last = JSON.parse(lines[N - 1]!.toString()) as AuditRecord;
    const { hash: _h, prev: _p, seq: _s, ts: _t, ...ev } = extra;
    const appended = makeRecord(ev as AuditRecord, last.seq + 1, last.ts, last.hash);
    const r = verify(Buffer.concat([fx.log, Buffer.from(`${serializeRecord(appended)}\n`)]));
    expectBad(r, N + 1, 'unsigned tail');
    assert.equal(r.problem!.kind, 'unsigned-tail');
  });

  it('known limits, kept visible, and what --anchor adds: a rollback to an old head, or a rewrite re-signed with the key, verifies alone, and fails against a head saved elsewhere', () => {
    const logId = JSON.parse(lines[0]!.toString()).log_id as string;
    const headFor = (size: number, hash: string): string =>
      serializeHead({ format: 'ward-audit-head-v1', log_id: logId, size, head: hash, key_id: fx.key.keyId, sig: sign(null, Buffer.from(checkpointStatement(logId, size, hash)), fx.key.privateKey).toString('base64') } satisfies HeadFile);
    const anchor = [{ name: 'saved.head', text: fx.head }]; // the head as it was, kept off the host

    // 1. Rollback: the log cut back to an earlier checkpoint, with the head file saved back then.
    const c = checkpointLines[checkpointLines.length - 2]!;
    const cp = JSON.parse(lines[c - 1]!.toString()) as AuditRecord;
    const cut = fromLines(lines.slice(0, c));
    assert.equal(verify(cut, headFor(c, cp.hash)).ok, true);
    const r1 = verifyLog(cut, headFor(c, cp.hash), fx.verifyKey, null, anchor);
    expectBad(r1, c + 1, 'rollback against an anchor');
    assert.equal(r1.problem!.kind, 'truncated');

    // 2. Whoever holds the key (root) rewrites a record and re-signs everything after it.
    const recs = lines.map((l) => JSON.parse(l.toString()) as AuditRecord);
    const target = recs.findIndex((r, i) => i > 10 && r.type === 'exit');
    const out: AuditRecord[] = recs.slice(0, target);
    for (let i = target; i < recs.length; i++) {
      const { hash: _h, prev: _p, seq, ts, ...ev } = recs[i]!;
      if (i === target) ev.exit_code = 0;
      if (ev.type === 'checkpoint') {
        ev.head = out[i - 1]!.hash;
        ev.sig = sign(null, Buffer.from(checkpointStatement(logId, seq, out[i - 1]!.hash)), fx.key.privateKey).toString('base64');
      }
      out.push(makeRecord(ev as AuditRecord, seq, ts, out[i - 1]!.hash));
    }
    const rewritten = Buffer.from(out.map((x) => `${serializeRecord(x)}\n`).join(''));
    const newHead = headFor(out.length, out.at(-1)!.hash);
    assert.equal(verify(rewritten, newHead).ok, true);
    const r2 = verifyLog(rewritten, newHead, fx.verifyKey, null, anchor);
    expectBad(r2, N, 'rewrite against an anchor');
    assert.equal(r2.problem!.kind, 'anchor');
  });
});
