// `ward verify` reasons about the paths the sandbox is built on. plan/mounts.ts binds every
// grant, sets its Landlock rule and masks every deny at the path the host resolves it to, so a
// grant through a symlink exposes its target, and a deny under a grant leaves its own name
// listed (a mode-0000 mask is mounted there). Each case here is checked twice: what `ward
// verify` says, and what a real sandbox does with the same policy, so the model is held to
// the kernel, not to itself. The old verifier, which took the paths as written, PROVED every
// property these tests expect VIOLATED.
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { run, type PolicyInput, type RunOptions } from '../../src/index.js';
import { realPrefix } from '../../src/paths.js';
import { verifyPolicy, type VerifyReport } from '../../src/verify/properties/index.js';
import { sandboxFixture, tempDir, ward } from '../helpers.js';
import { prop } from './helpers.js';

function setup() {
  const fx = sandboxFixture();
  // No resource limits in these policies, so no cgroup is needed (and none allows a degraded run).
  const options: RunOptions = { workspace: fx.ws, env: fx.env, stdin: 'ignore' };
  const sh = async (policy: PolicyInput, script: string) => {
    const r = await run(policy, ['/bin/sh', '-c', script], options);
    return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
  };
  const verify = (policy: PolicyInput): Promise<VerifyReport> => verifyPolicy(policy, { workspace: fx.ws, env: fx.env });
  return { ...fx, sh, verify };
}

const mergedUsr = (() => {
  try {
    return lstatSync('/bin').isSymbolicLink() && realPrefix('/bin') === '/usr/bin';
  } catch {
    return false;
  }
})();

describe('realPrefix (src/paths.ts): where a path, or a pattern whose tail is missing, leads', () => {
  it('follows links on the way, dangling ones too, and keeps a missing tail as written', () => {
    const d = tempDir('ward-resolve-');
    mkdirSync(path.join(d, 'real', 'sub'), { recursive: true });
    symlinkSync(path.join(d, 'real'), path.join(d, 'abs'));
    symlinkSync('real/sub', path.join(d, 'rel'));
    assert.equal(realPrefix(path.join(d, 'rel', 'new')), path.join(d, 'real', 'sub', 'new'), 'a relative link');
    symlinkSync('../nowhere', path.join(d, 'real', 'dangling'));
    symlinkSync('loop', path.join(d, 'loop'));
    assert.equal(realPrefix(path.join(d, 'abs', 'sub')), path.join(d, 'real', 'sub'));
    assert.equal(realPrefix(path.join(d, 'abs', 'missing', 'x')), path.join(d, 'real', 'missing', 'x'));
    assert.equal(realPrefix(path.join(d, 'abs', 'dangling', 'x')), path.join(d, 'nowhere', 'x'));
    assert.equal(realPrefix(path.join(d, 'loop', 'x')), path.join(d, 'loop', 'x'), 'a loop is left as written');
  });
});

describe('grants through a symlink: verify reasons about what the sandbox binds', () => {
  it('reproducer A: `execute: [/bin, /lib, /lib64]` on a merged-/usr host gives /usr/bin: "never exec /usr/**" and "never read /usr/**" are VIOLATED, and --verify-strict refuses what runs /usr/bin/id', { skip: mergedUsr ? false : 'this host has no merged /usr (/bin is not a link to usr/bin)' }, async () => {
    const t = setup();
    const policy = { filesystem: { execute: ['/bin', '/lib', '/lib64'] }, invariants: ['never exec /usr/**', 'never read /usr/**'] };
    const r = await t.verify({ policy });
    for (const id of ['invariant:1', 'invariant:2']) {
      const p = prop(r, id);
      assert.equal(p.status, 'VIOLATED', `${id}: ${JSON.stringify(p)}`);
      assert.match(p.counterexample!, /^(exec|read) \/usr\/bin$/);
      assert.match(p.detail!, /execute \/bin \(which leads to \/usr\/bin\)/);
    }
    // The sandbox does run /usr/bin/id by that name: the verdict is the kernel's.
    const ran = await t.sh({ policy }, '/usr/bin/id -u');
    assert.equal(ran.code, 0, ran.err);
    assert.match(ran.out, /^\d+\n$/);
    // And `ward run --verify-strict` now refuses it before anything runs.
    const file = path.join(t.ws, '..', 'usr-links.json');
    writeFileSync(file, JSON.stringify(policy));
    const strict = ward(['run', '--verify-strict', '--audit-log', path.join(t.ws, '..', 'audit.jsonl'), '--policy', file, '--', '/bin/sh', '-c', '/usr/bin/id -u; echo RAN'], { cwd: t.ws, env: t.env, timeout: 120_000 });
    assert.equal(strict.code, 125, strict.stderr);
    assert.match(strict.stderr, /--verify-strict: .*invariant:1 VIOLATED/);
    assert.doesNotMatch(strict.stdout, /RAN/);
  });

  it('reproducer B: links in a granted directory point a read grant into the workspace and an execute grant at a writable directory', async () => {
    const t = setup();
    const x = path.join(t.ws, '..', 'x');
    mkdirSync(path.join(x, 'lnkdir'), { recursive: true });
    mkdirSync(path.join(x, 'out'));
    mkdirSync(path.join(t.ws, 'sub'));
    writeFileSync(path.join(t.ws, 'sub', '.env'), 'TOKEN=reproducer-b-secret\n');
    symlinkSync(path.join(x, 'out'), path.join(x, 'lnkdir', 'xbin'));
    symlinkSync(path.join(t.ws, 'sub'), path.join(x, 'lnkdir', 'cfg'));
    const policy: PolicyInput = {
      policy: {
        extends: ['minimal'],
        filesystem: { read: [`${x}/lnkdir`, `${x}/lnkdir/cfg`], write: [`${x}/out`], execute: [`${x}/lnkdir/xbin`] },
        invariants: [`never exec ${x}/out/**`, 'never read ${WORKSPACE}/**'],
      },
    };
    const r = await t.verify(policy);
    const secret = prop(r, 'no-secret-access');
    assert.equal(secret.status, 'VIOLATED', JSON.stringify(secret));
    assert.equal(secret.counterexample, path.join(t.ws, 'sub', '.env'));
    assert.match(secret.detail!, new RegExp(`read ${x}/lnkdir/cfg \\(which leads to ${t.ws}/sub\\)`));
    const wx = prop(r, 'w-xor-x');
    assert.equal(wx.status, 'VIOLATED', JSON.stringify(wx));
    assert.equal(wx.counterexample, path.join(x, 'out'));
    assert.equal(prop(r, 'invariant:1').status, 'VIOLATED');
    assert.equal(prop(r, 'invariant:1').counterexample, `exec ${x}/out`);
    assert.equal(prop(r, 'invariant:2').status, 'VIOLATED');
    assert.equal(prop(r, 'invariant:2').counterexample, `read ${t.ws}/sub`);
    assert.equal(r.ok, false);
    // In a real sandbox: the .env is read through the link, and a program written into the
    // writable directory runs, by its own name and through the link.
    const ran = await t.sh(policy, `cat ${x}/lnkdir/cfg/.env; cp /usr/bin/true ${x}/out/t && ${x}/out/t && ${x}/lnkdir/xbin/t && echo EXEC-OK`);
    assert.equal(ran.code, 0, ran.err);
    assert.match(ran.out, /TOKEN=reproducer-b-secret/);
    assert.match(ran.out, /EXEC-OK/);
  });

  it('a deny is subtracted under every name that leads to it: through a symlinked grant, and written through a link', async () => {
    const t = setup();
    const x = path.join(t.ws, '..', 'x');
    mkdirSync(x);
    for (const d of ['sub/secret', 'realsec']) mkdirSync(path.join(t.ws, d), { recursive: true });
    writeFileSync(path.join(t.ws, 'sub', 'secret', 'f'), 'S1\n');
    writeFileSync(path.join(t.ws, 'realsec', 'f'), 'S2\n');
    symlinkSync(path.join(t.ws, 'sub'), path.join(x, 'lnk'));
    symlinkSync('realsec', path.join(t.ws, 'sec-link'));
    const policy: PolicyInput = {
      policy: {
        extends: ['minimal'],
        // The workspace is granted by its own name; x/lnk reaches into it; the two denies are
        // one by real path seen through x/lnk, one written through a link in the workspace.
        filesystem: { read: ['${WORKSPACE}', `${x}/lnk`], deny: ['${WORKSPACE}/sub/secret', '${WORKSPACE}/sec-link'] },
        invariants: [`never read ${x}/lnk/secret/**`, 'never read ${WORKSPACE}/sub/secret/**', 'never read ${WORKSPACE}/realsec/**', `never read ${x}/lnk/**`],
      },
    };
    const r = await t.verify(policy);
    for (const id of ['invariant:1', 'invariant:2', 'invariant:3']) assert.equal(prop(r, id).status, 'PROVED', `${id}: ${JSON.stringify(prop(r, id))}`);
    // What the link does expose is still found, by either name.
    assert.equal(prop(r, 'invariant:4').status, 'VIOLATED');
    const ran = await t.sh(policy, `cat ${x}/lnk/secret/f; cat ${t.ws}/sub/secret/f; cat ${t.ws}/realsec/f; cat ${t.ws}/sec-link/f; ls ${x}/lnk/ && echo LISTED`);
    assert.doesNotMatch(ran.out, /S1|S2/);
    assert.match(ran.out, /LISTED/);
    assert.equal((ran.err.match(/Permission denied/g) ?? []).length, 4, ran.err);
  });
});

describe('--refines compares what the sandboxes get', () => {
  it('a grant of a link in the workspace to a directory outside it widens a baseline that grants the workspace', async () => {
    const t = setup();
    const outside = path.join(t.ws, '..', 'outside');
    mkdirSync(outside);
    writeFileSync(path.join(outside, 'f'), 'OUTSIDE\n');
    symlinkSync(outside, path.join(t.ws, 'link'));
    const mine: PolicyInput = { policy: { extends: ['minimal'], filesystem: { read: ['${WORKSPACE}/link'] } } };
    const r = await verifyPolicy(mine, { workspace: t.ws, env: t.env, base: { policy: { extends: ['minimal'], filesystem: { read: ['${WORKSPACE}'] } } } });
    const p = prop(r, 'refines');
    assert.equal(p.status, 'VIOLATED', JSON.stringify(p));
    assert.equal(p.counterexample, `read ${outside}`);
    const ran = await t.sh(mine, `cat ${outside}/f`);
    assert.match(ran.out, /OUTSIDE/);
  });
});

describe('a deny under a grant is a mask: its name shows, its contents do not', () => {
  it('"never see ~/.ssh" with ~ granted is VIOLATED with ~/.ssh and a detail naming the mask; below it nothing is seen; ward-state-ungranted holds', async () => {
    const t = setup();
    mkdirSync(path.join(t.home, '.ssh'));
    writeFileSync(path.join(t.home, '.ssh', 'id_ed25519'), 'PRIVATE-KEY-MATERIAL\n');
    const policy: PolicyInput = { policy: { extends: ['minimal'], filesystem: { read: ['~'] }, sandbox: { home: 'none' }, invariants: ['never see ~/.ssh', 'never see ~/.ssh/id_ed25519', 'never read ~/.ssh/**'] } };
    const r = await t.verify(policy);
    const name = prop(r, 'invariant:1');
    assert.equal(name.status, 'VIOLATED', JSON.stringify(name));
    assert.equal(name.counterexample, `see ${t.home}/.ssh`);
    assert.match(name.detail!, /mode-0000 mask mounted at .*\.ssh, which hides its contents but not its name/);
    assert.match(name.detail!, /do not grant its parent/);
    assert.equal(prop(r, 'invariant:2').status, 'PROVED');
    assert.equal(prop(r, 'invariant:3').status, 'PROVED');
    assert.equal(prop(r, 'ward-state-ungranted').status, 'PROVED', JSON.stringify(prop(r, 'ward-state-ungranted')));
    // The sandbox lists the name and nothing below it.
    const ran = await t.sh(policy, 'ls -a ~; ls ~/.ssh');
    assert.match(ran.out, /^\.ssh$/m);
    assert.doesNotMatch(ran.out, /id_ed25519/);
    assert.match(ran.err, /Permission denied/);
    // Not granting ~: the name does not exist in the sandbox, and the invariant is PROVED.
    const none = await t.verify({ policy: { extends: ['minimal'], invariants: ['never see ~/.ssh'] } });
    assert.equal(prop(none, 'invariant:1').status, 'PROVED');
    const absent = await t.sh({ policy: { extends: ['minimal'] } }, 'ls -a ~/.ssh');
    assert.match(absent.err, /No such file or directory/);
  });

  it('seeded flaw: with the mandatory deny of Ward\'s state dropped, ward-state-ungranted is VIOLATED with a path inside it', async () => {
    const t = setup();
    const { preparePolicy } = await import('../../src/api.js');
    const { stateDir } = await import('../../src/paths.js');
    const loaded = preparePolicy({ policy: { extends: ['minimal'], filesystem: { read: ['~'] }, sandbox: { home: 'none' } } }, { workspace: t.ws, env: t.env });
    const state = stateDir(t.env);
    const deny = loaded.effective.filesystem.deny.filter((e) => e.path !== state);
    assert.ok(deny.length < loaded.effective.filesystem.deny.length, 'the mandatory deny of the state directory was there to drop');
    const flawed = { ...loaded, effective: { ...loaded.effective, filesystem: { ...loaded.effective.filesystem, deny } } };
    const p = prop(await t.verify(flawed), 'ward-state-ungranted');
    assert.equal(p.status, 'VIOLATED', JSON.stringify(p));
    assert.ok(p.counterexample!.startsWith(`${state}/`), p.counterexample);
  });
});
