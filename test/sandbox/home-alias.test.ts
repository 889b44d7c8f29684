/**
 * The home and the places Ward hides, under names the real-path checks cannot see: a second
 * mount of the same files (a bind mount, a fstab `/home` bound from `/data/home`), and the
 * account's own home when HOME names a scratch directory. Each attack runs in a real sandbox
 * and must fail; the bind mounts are made in a private mount namespace (root only: see
 * helpers.ts wardInMountNamespace), the host's mounts are never touched.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isRoot, tempDir, ward, wardInMountNamespace } from '../helpers.js';

/** A home with a key and a startup file, a workspace beside it and an empty mount point. */
function fixture(homeAt = 'home') {
  const base = tempDir('ward-alias-');
  const home = path.join(base, homeAt, 'u');
  const ws = path.join(base, 'ws');
  const alias = path.join(base, 'alias');
  for (const d of [`${home}/.ssh`, ws, alias]) mkdirSync(d, { recursive: true });
  writeFileSync(`${home}/.ssh/id_rsa`, 'SSH-SECRET\n');
  writeFileSync(`${home}/.bashrc`, '# original\n');
  writeFileSync(`${home}/notes.txt`, 'PLAIN-NOTES\n');
  // HOME is the fixture's: Ward's key, log and cache are made there, so the run's own are at stake.
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  for (const name of ['XDG_STATE_HOME', 'XDG_CONFIG_HOME', 'XDG_CACHE_HOME']) delete env[name];
  return { base, home, ws, alias, env };
}

function policy(dir: string, name: string, fs: Record<string, string[]>): string {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, JSON.stringify({ extends: ['minimal'], filesystem: fs }));
  return file;
}

const rootOnly = isRoot ? false : 'bind mounts need root (a private mount namespace); an unprivileged user namespace maps the host files to nobody and Ward refuses its bwrap there';

describe('a second mount of the home', { skip: rootOnly }, () => {
  it('a read grant of a bind mount of the home: ~/.ssh and Ward\'s own files are masked there too, the rest is readable', () => {
    const fx = fixture();
    const p = policy(fx.base, 'read-alias', { read: [fx.alias] });
    const u = `${fx.alias}/u`;
    const script = `cat ${u}/notes.txt; cat ${u}/.ssh/id_rsa; cat ${u}/.config/ward/audit.key && echo KEY-READ; ls ${u}/.cache/ward && echo CACHE-LISTED; true`;
    const r = wardInMountNamespace('mount --bind "$SRC" "$DEST"', { SRC: path.dirname(fx.home), DEST: fx.alias }, ['run', '--policy', p, '--workspace', fx.ws, '--', 'sh', '-c', script], { cwd: fx.ws, env: fx.env });
    if (typeof r === 'string') return assert.fail(r);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(`${fx.home}/.config/ward/audit.key`), 'the run made its audit key in the home');
    assert.match(r.stdout, /PLAIN-NOTES/, 'the grant itself works');
    assert.doesNotMatch(r.stdout, /SSH-SECRET|KEY-READ|CACHE-LISTED/);
    assert.match(r.stderr, /id_rsa: Permission denied/);
  });

  it('a write grant of a bind mount of the home is refused before anything runs, naming both paths; ~/.bashrc and Ward\'s cache are untouched', () => {
    const fx = fixture();
    const p = policy(fx.base, 'write-alias', { write: [fx.alias] });
    const u = `${fx.alias}/u`;
    const script = `echo planted >> ${u}/.bashrc; mkdir -p ${u}/.cache/ward; touch ${u}/.cache/ward/planted`;
    const r = wardInMountNamespace('mount --bind "$SRC" "$DEST"', { SRC: path.dirname(fx.home), DEST: fx.alias }, ['run', '--policy', p, '--workspace', fx.ws, '--', 'sh', '-c', script], { cwd: fx.ws, env: fx.env });
    if (typeof r === 'string') return assert.fail(r);
    assert.equal(r.code, 125, r.stderr);
    assert.ok(r.stderr.includes(`contains ${u}, which is your home directory ${fx.home} under another name`), r.stderr);
    assert.equal(readFileSync(`${fx.home}/.bashrc`, 'utf8'), '# original\n');
    assert.ok(!existsSync(`${fx.home}/.cache/ward/planted`));
  });

  it('the fstab layout (the home\'s directory bound from another disk path): a grant of that path masks the home\'s secrets and a writable one is refused', () => {
    // data/home/u is the real place, bound onto home/: HOME is home/u, a mount whose root is not "/".
    const fx = fixture('data/home');
    const homeDir = path.join(fx.base, 'home');
    mkdirSync(homeDir);
    const env = { ...fx.env, HOME: path.join(homeDir, 'u') };
    const setup = { SRC: path.join(fx.base, 'data/home'), DEST: homeDir };
    const data = path.join(fx.base, 'data');
    const read = wardInMountNamespace('mount --bind "$SRC" "$DEST"', setup, ['run', '--policy', policy(fx.base, 'read-data', { read: [data] }), '--workspace', fx.ws, '--', 'sh', '-c', `cat ${fx.home}/notes.txt; cat ${fx.home}/.ssh/id_rsa; ls ${fx.home}/.config/ward && echo CONFIG-LISTED; true`], { cwd: fx.ws, env });
    if (typeof read === 'string') return assert.fail(read);
    assert.equal(read.code, 0, read.stderr);
    assert.match(read.stdout, /PLAIN-NOTES/);
    assert.doesNotMatch(read.stdout, /SSH-SECRET|CONFIG-LISTED/);
    const write = wardInMountNamespace('mount --bind "$SRC" "$DEST"', setup, ['run', '--policy', policy(fx.base, 'write-data', { write: [data] }), '--workspace', fx.ws, '--', 'sh', '-c', `echo planted >> ${fx.home}/.bashrc`], { cwd: fx.ws, env });
    if (typeof write === 'string') return assert.fail(write);
    assert.equal(write.code, 125, write.stderr);
    assert.match(write.stderr, /under another name/);
    assert.equal(readFileSync(`${fx.home}/.bashrc`, 'utf8'), '# original\n');
  });

  it('a writable bind mount of the workspace: a denied directory is masked there as in the workspace, and cannot be renamed out from under its mask', () => {
    const fx = fixture();
    mkdirSync(`${fx.ws}/secrets`);
    writeFileSync(`${fx.ws}/secrets/key`, 'WS-SECRET\n');
    const p = policy(fx.base, 'write-ws-alias', { write: [fx.alias], deny: [`${fx.ws}/secrets`] });
    const script = `cat ${fx.alias}/secrets/key; mv ${fx.alias}/secrets ${fx.alias}/moved && echo MOVED; echo ok > ${fx.alias}/out.txt`;
    const r = wardInMountNamespace('mount --bind "$SRC" "$DEST"', { SRC: fx.ws, DEST: fx.alias }, ['run', '--policy', p, '--workspace', fx.ws, '--', 'sh', '-c', script], { cwd: fx.ws, env: fx.env });
    if (typeof r === 'string') return assert.fail(r);
    assert.doesNotMatch(r.stdout, /WS-SECRET|MOVED/, r.stderr);
    assert.equal(readFileSync(`${fx.ws}/out.txt`, 'utf8'), 'ok\n', 'the writable grant works through the alias');
    assert.equal(readFileSync(`${fx.ws}/secrets/key`, 'utf8'), 'WS-SECRET\n');
  });

  it('an audit log whose directory a grant shows through a bind mount is refused before anything runs, as one inside the grant is', () => {
    const fx = fixture();
    const logs = path.join(fx.base, 'logs');
    mkdirSync(logs);
    const log = path.join(logs, 'audit.jsonl');
    const p = policy(fx.base, 'read-log-alias', { read: [fx.alias] });
    const r = wardInMountNamespace('mount --bind "$SRC" "$DEST"', { SRC: logs, DEST: fx.alias }, ['run', '--policy', p, '--workspace', fx.ws, '--audit-log', log, '--', 'sh', '-c', `cat ${fx.alias}/audit.jsonl >/dev/null && echo LOG-READ`], { cwd: fx.ws, env: fx.env });
    if (typeof r === 'string') return assert.fail(r);
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr, new RegExp(`the audit log ${log} is inside a path this policy lets the sandbox see`));
    assert.doesNotMatch(r.stdout, /LOG-READ/);
  });
});

/** The account's home from the password database; undefined when there is no usable one. */
function account(): string | undefined {
  try {
    const h = os.userInfo().homedir;
    return path.isAbsolute(h) && h !== '/' && existsSync(h) ? h : undefined;
  } catch {
    return undefined;
  }
}

describe('HOME set to a scratch directory: the account\'s own home', { skip: account() === undefined ? 'this user has no home directory in the password database' : false }, () => {
  const real = account()!;

  it("a read grant of the account's home: Ward's own directories there (key, log, cache of runs made with the real HOME) are masked", () => {
    // Ward's directories in the real home, as any run with the real HOME makes them.
    const made = ward(['policy', 'show', '--profile', 'minimal', '--plan'], { env: { ...process.env, HOME: real, XDG_STATE_HOME: '', XDG_CONFIG_HOME: '', XDG_CACHE_HOME: '' } });
    assert.equal(made.code, 0, made.stderr);
    const own = ['.config/ward', '.local/state/ward', '.cache/ward'].map((d) => path.join(real, d));
    for (const d of own) assert.ok(existsSync(d), d);
    const scratch = tempDir('ward-scratch-home-');
    const ws = tempDir('ward-scratch-ws-');
    const p = policy(scratch, 'read-real-home', { read: [real] });
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: scratch, XDG_STATE_HOME: '', XDG_CONFIG_HOME: '', XDG_CACHE_HOME: '' };
    const script = own.map((d) => `ls -a ${d} >/dev/null && echo LISTED ${d}`).join('; ') + `; ls -d ${real} && echo HOME-SHOWN; true`;
    const r = ward(['run', '--policy', p, '--workspace', ws, '--', 'sh', '-c', script], { cwd: ws, env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /HOME-SHOWN/, 'the grant itself works');
    assert.doesNotMatch(r.stdout, /LISTED/);
  });

  it("a writable grant of the account's home is refused, by `ward policy check` and by `ward run` before anything runs", () => {
    const scratch = tempDir('ward-scratch-home-');
    const ws = tempDir('ward-scratch-ws-');
    const p = policy(scratch, 'write-real-home', { write: [real] });
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: scratch, XDG_STATE_HOME: '', XDG_CONFIG_HOME: '', XDG_CACHE_HOME: '' };
    const check = ward(['policy', 'check', p, '--workspace', ws], { cwd: ws, env });
    assert.notEqual(check.code, 0, check.stdout);
    assert.ok(check.stderr.includes(`is your home directory ${real}`), check.stderr);
    // The command only says that it ran: on a failure the test must not have written into the real home.
    const r = ward(['run', '--policy', p, '--workspace', ws, '--', 'echo', 'RAN'], { cwd: ws, env });
    assert.equal(r.code, 125, r.stderr);
    assert.doesNotMatch(r.stdout, /RAN/);
    assert.ok(r.stderr.includes(`is your home directory ${real}`), r.stderr);
  });
});
