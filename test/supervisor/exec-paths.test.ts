/**
 * Exec rules (`after: exec`, `revoke: exec`) judge what the kernel will run, however the exec
 * names it, shown failing in a real sandbox after its trigger (and working before it, so the
 * refusal is the rule's doing): a path through a magic link (/proc/self/root, /proc/self/cwd,
 * /dev/fd/N, a symlink to one), which Ward's own lookup cannot follow: the exec was judged on the
 * string and continued.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { run } from '../../src/index.js';
import type { RunRecord, RunResult } from '../../src/sandbox/launch.js';
import { fixtureRunOptions, sandboxFixture } from '../helpers.js';

const ID = realpathSync(execFileSync('sh', ['-c', 'command -v id'], { encoding: 'utf8' }).trim());

function setup(rules: unknown[]) {
  const fx = sandboxFixture();
  mkdirSync(path.join(fx.ws, 'secrets'));
  mkdirSync(path.join(fx.ws, 'src'));
  writeFileSync(path.join(fx.ws, 'secrets', 'key.txt'), 'TOPSECRET\n');
  const records: RunRecord[] = [];
  const policy = { extends: ['default'], rules };
  const sh = async (script: string): Promise<RunResult & { out: string; err: string }> => {
    const r = await run({ policy }, ['sh', '-c', script], fixtureRunOptions(fx, records));
    return { ...r, out: r.stdout.toString(), err: r.stderr.toString() };
  };
  return { ...fx, sh };
}

const supDenials = (r: RunResult) => r.denials.filter((d) => d.layer === 'supervisor');

describe('exec rules through magic links', () => {
  const dir = path.dirname(ID);
  const base = path.basename(ID);

  it('after the trigger, a revoked program is refused through /proc/self/root, /proc/thread-self/root, /proc/self/cwd, /dev/fd/N, /proc/self/fd/N, symlinks to them and another process\'s /proc/N/root', async () => {
    const t = setup([{ after: 'read ${WORKSPACE}/secrets/**', revoke: `exec ${ID}` }]);
    const r = await t.sh(`/proc/self/root${ID} -u >/dev/null && echo before-ok
cat secrets/key.txt >/dev/null
${ID} -u; echo direct=$?
/proc/self/root${ID} -u; echo root=$?
/proc/thread-self/root${ID} -u; echo thread=$?
(cd ${dir} && /proc/self/cwd/${base} -u); echo cwd=$?
exec 3<${dir}
/dev/fd/3/${base} -u; echo devfd=$?
/proc/self/fd/3/${base} -u; echo procfd=$?
ln -s /proc/self/root r; ./r${ID} -u; echo link-root=$?
ln -s /dev/fd/3 d3; ./d3/${base} -u; echo link-fd=$?
sleep 30 & s=$!
/proc/$s/root${ID} -u; echo other=$?
kill $s`);
    assert.equal(r.out, 'before-ok\ndirect=126\nroot=126\nthread=126\ncwd=126\ndevfd=126\nprocfd=126\nlink-root=126\nlink-fd=126\nother=126\n', r.out + r.err);
    // Followed to the program itself: refused as the revoked program, by the rule.
    assert.equal(supDenials(r).filter((d) => d.what === `execve ${ID}` && /exec revoked by rules\[0\]/.test(d.detail)).length, 8, JSON.stringify(supDenials(r)));
    // Another process's link is not followed: refused as such while an exec rule applies.
    assert.ok(supDenials(r).some((d) => /a link of another process than the caller's; refused while an exec rule/.test(d.detail)), JSON.stringify(supDenials(r)));
  });

  it('an exec through a magic link is the exec event of the program it leads to: `after: exec` fires', async () => {
    for (const how of [`/proc/self/root${ID}`, `cd ${dir} && /proc/self/cwd/${base}`, `exec 3<${dir}; /dev/fd/3/${base}`]) {
      const t = setup([{ after: `exec ${ID}`, revoke: 'write ${WORKSPACE}/src/**' }]);
      const r = await t.sh(`echo x > src/a.c; echo before=$?; (${how} -u >/dev/null); echo ran=$?; echo x > src/b.c; echo after=$?`);
      assert.match(r.out, /^before=0\nran=0\nafter=[12]\n$/, `${how}: ${r.out}${r.err}`);
      assert.deepEqual(r.revocations.map((x) => x.trigger), [`exec ${ID}`], how);
    }
  });
});
