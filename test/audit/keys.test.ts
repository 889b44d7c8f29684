/**
 * `ward keys init`, and `ward audit verify` / `show` as a user meets them:
 * modes, refusals with their fix, exit codes 0 / 1 / 125, --json.
 */
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { AuditWriter } from '../../src/audit/writer.js';
import { ward } from '../helpers.js';
import { freshEnv, makeLog } from './fixture.js';

describe('ward keys init', () => {
  it('creates audit.key 0600 in a 0700 directory and audit.pub; refuses to overwrite without --force', () => {
    const { env } = freshEnv();
    const r = ward(['keys', 'init'], { env });
    assert.equal(r.code, 0, r.stderr);
    const dir = path.join(env.HOME!, '.config', 'ward');
    assert.equal(statSync(path.join(dir, 'audit.key')).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.match(readFileSync(path.join(dir, 'audit.key'), 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
    assert.match(readFileSync(path.join(dir, 'audit.pub'), 'utf8'), /^-----BEGIN PUBLIC KEY-----/);
    assert.match(r.stdout, /key id +[0-9a-f]{64}/);
    const before = readFileSync(path.join(dir, 'audit.key'), 'utf8');

    const again = ward(['keys', 'init'], { env });
    assert.equal(again.code, 125);
    assert.match(again.stderr, /an audit key already exists at .*audit\.key/);
    assert.match(again.stderr, /fix: .*ward keys init --force/);
    assert.equal(readFileSync(path.join(dir, 'audit.key'), 'utf8'), before);
  });

  it('honours XDG_CONFIG_HOME', () => {
    const { dir, env } = freshEnv();
    const cfg = path.join(dir, 'cfg');
    assert.equal(ward(['keys', 'init'], { env: { ...env, XDG_CONFIG_HOME: cfg } }).code, 0);
    assert.equal(existsSync(path.join(cfg, 'ward', 'audit.key')), true);
  });

  it('--force replaces the key, keeps the old public key, and moves the log it signed aside (still verifiable)', () => {
    // A user whose default log was written with the fixture's key.
    const fx = makeLog({ runs: 2, burst: 3 });
    const { env } = freshEnv();
    const cfg = path.join(env.HOME!, '.config', 'ward');
    const state = path.join(env.HOME!, '.local', 'state', 'ward');
    mkdirSync(cfg, { recursive: true, mode: 0o700 });
    mkdirSync(state, { recursive: true, mode: 0o700 });
    copyFileSync(fx.key.file, path.join(cfg, 'audit.key'));
    copyFileSync(path.join(fx.env.HOME!, '.config', 'ward', 'audit.pub'), path.join(cfg, 'audit.pub'));
    copyFileSync(fx.file, path.join(state, 'audit.jsonl'));
    copyFileSync(`${fx.file}.head`, path.join(state, 'audit.jsonl.head'));
    assert.equal(ward(['audit', 'verify'], { env }).code, 0);

    const r = ward(['keys', 'init', '--force'], { env });
    assert.equal(r.code, 0, r.stderr);
    const short = fx.key.keyId.slice(0, 16);
    const oldPub = path.join(cfg, `audit.${short}.pub`);
    const moved = path.join(state, `audit-${short}.jsonl`);
    assert.equal(existsSync(oldPub), true);
    assert.ok(r.stdout.includes(`moved to ${moved}`), r.stdout);
    assert.equal(existsSync(path.join(state, 'audit.jsonl')), false);
    assert.equal(ward(['audit', 'verify', moved, '--pubkey', oldPub], { env }).code, 0);
    // With the new key the old log does not verify: exit 1, never 0.
    const wrong = ward(['audit', 'verify', moved], { env });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stdout, /wrong public key/);
  });
});

describe('ward audit verify', () => {
  it('intact: exit 0; a wrong public key: exit 1 naming both keys; --json', () => {
    const fx = makeLog({ runs: 3, burst: 5 });
    const ok = ward(['audit', 'verify', fx.file], { env: fx.env });
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^intact: /);

    const other = freshEnv();
    assert.equal(ward(['keys', 'init'], { env: other.env }).code, 0);
    const otherPub = path.join(other.env.HOME!, '.config', 'ward', 'audit.pub');
    const bad = ward(['audit', 'verify', fx.file, '--pubkey', otherPub], { env: fx.env });
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /NOT VERIFIED: .*\n  wrong-key at line 1 \(seq 0\): the log is signed with key [0-9a-f]{16}, but the public key given is [0-9a-f]{16}/);

    const json = ward(['audit', 'verify', fx.file, '--json'], { env: fx.env });
    const report = JSON.parse(json.stdout);
    assert.equal(report.ok, true);
    assert.equal(report.problem, null);
    assert.equal(report.verified, readFileSync(fx.file, 'utf8').trim().split('\n').length);
  });

  it('tampered: exit 1 and the first bad line, in text and JSON', () => {
    const fx = makeLog({ runs: 3, burst: 5 });
    const lines = readFileSync(fx.file, 'utf8').split('\n');
    lines[4] = lines[4]!.replace('"exit_code":', '"exit_code":1');
    writeFileSync(fx.file, lines.join('\n'));
    const r = ward(['audit', 'verify', fx.file], { env: fx.env });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^TAMPERED: /);
    assert.match(r.stdout, /edited at line 5 \(seq 4\)/);
    const j = JSON.parse(ward(['audit', 'verify', fx.file, '--json'], { env: fx.env }).stdout);
    assert.deepEqual([j.ok, j.problem.kind, j.problem.line, j.problem.seq], [false, 'edited', 5, 4]);
  });

  it('--anchor: a head saved elsewhere catches a rollback that the head beside the log cannot', () => {
    const fx = makeLog({ runs: 2, burst: 3 });
    const early = path.join(fx.dir, 'early.head');
    copyFileSync(`${fx.file}.head`, early);
    const before = readFileSync(fx.file);
    new AuditWriter({ path: fx.file, key: fx.key }).append([{ type: 'denial', what: 'later' }], { checkpoint: true });
    const later = path.join(fx.dir, 'later.head');
    copyFileSync(`${fx.file}.head`, later);
    const ok = ward(['audit', 'verify', fx.file, '--anchor', early, '--anchor', later], { env: fx.env });
    assert.equal(ok.code, 0, ok.stdout);
    assert.match(ok.stdout, /contains the 2 anchored head\(s\) given/);
    // Roll back: the log and its head file as they were before the last append.
    writeFileSync(fx.file, before);
    copyFileSync(early, `${fx.file}.head`);
    assert.equal(ward(['audit', 'verify', fx.file], { env: fx.env }).code, 0);
    const caught = ward(['audit', 'verify', fx.file, '--anchor', later], { env: fx.env });
    assert.equal(caught.code, 1);
    assert.match(caught.stdout, /truncated at line \d+: the anchor .*later\.head says the log had \d+ records/);
  });

  it('no key to verify with, a missing log, a bad option: exit 125 with the fix', () => {
    const fx = makeLog({ runs: 1, burst: 1 });
    const { env } = freshEnv(); // a user with no key at all
    const nokey = ward(['audit', 'verify', fx.file], { env });
    assert.equal(nokey.code, 125);
    assert.match(nokey.stderr, /no public key to verify with: .*audit\.pub does not exist/);
    assert.match(nokey.stderr, /fix: pass --pubkey FILE .*`ward keys init`/);

    const missing = ward(['audit', 'verify', '/nonexistent/audit.jsonl'], { env: fx.env });
    assert.equal(missing.code, 125);
    assert.match(missing.stderr, /cannot read the audit log \/nonexistent\/audit\.jsonl: ENOENT/);

    assert.equal(ward(['audit', 'verify', fx.file, '--pubkey', '/nonexistent.pub'], { env: fx.env }).code, 125);
    assert.equal(ward(['audit', 'verify', '--frob'], { env: fx.env }).code, 125);
  });

  it('a signing key that others can read is refused by `ward run` before anything runs', () => {
    const { dir, env } = freshEnv();
    assert.equal(ward(['keys', 'init'], { env }).code, 0);
    const key = path.join(env.HOME!, '.config', 'ward', 'audit.key');
    chmodSync(key, 0o644);
    const r = ward(['run', '--', 'touch', path.join(dir, 'ran')], { cwd: dir, env });
    assert.equal(r.code, 125);
    assert.match(r.stderr, /the audit key .*audit\.key is readable or writable by others \(mode 0644\)/);
    assert.match(r.stderr, /fix: chmod 600 /);
    assert.equal(existsSync(path.join(dir, 'ran')), false);
  });
});

describe('ward audit show', () => {
  it('a timeline, and --json as an array of the records', () => {
    const fx = makeLog({ runs: 18, burst: 2 });
    const r = ward(['audit', 'show', fx.file], { env: fx.env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /log started: log [0-9a-f]{16}, key [0-9a-f]{16}/);
    assert.match(r.stdout, /run00000  launch  sh -c /);
    assert.match(r.stdout, /layers: Seccomp 2, NoNewPrivs 1, CapEff 0, Landlock ABI 7 \(43 rules\), cgroup v1 \(memory\.limit_in_bytes=4294967296, pids\.max=1024\)/);
    assert.match(r.stdout, /run00003  denial  cgroup pids refused/);
    assert.match(r.stdout, /run00004  exit 4  34 ms/);
    assert.match(r.stdout, /refused0  REFUSED at policy: policy error in p\.yaml:3/);
    assert.match(r.stdout, /checkpoint: \d+ records, head [0-9a-f]{16}, signed by/);
    const j = JSON.parse(ward(['audit', 'show', fx.file, '--json'], { env: fx.env }).stdout);
    assert.equal(j.length, readFileSync(fx.file, 'utf8').trim().split('\n').length);
    assert.equal(j[0].type, 'log-start');
  });
});
