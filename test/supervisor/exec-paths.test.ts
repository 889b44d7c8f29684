/**
 * Exec rules (`after: exec`, `revoke: exec`) judge what the kernel will run, however the exec
 * names it. Two ways round them, each shown failing in a real sandbox after its trigger (and
 * working before it, so the refusal is the rule's doing):
 *  - a path through a magic link (/proc/self/root, /proc/self/cwd, /dev/fd/N, a symlink to one):
 *    Ward's own lookup cannot follow it, and the exec was judged on the string and continued;
 *  - a file the kernel runs with no exec of its own: a script's `#!` interpreter (nested, relative,
 *    through a magic link, unreadable to Ward) and an ELF program's dynamic loader.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, readSync, closeSync, realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { run } from '../../src/index.js';
import type { RunRecord, RunResult } from '../../src/sandbox/launch.js';
import { elfInterpreter, HEAD_SIZE, scriptInterpreter } from '../../src/supervisor/exec-head.js';
import { fixtureRunOptions, sandboxFixture } from '../helpers.js';

const ID = realpathSync(execFileSync('sh', ['-c', 'command -v id'], { encoding: 'utf8' }).trim());
/** The name scripts give (a symlink on most hosts); rules name the real file, as the compiled plan would. */
const PY = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : null;
const PY_REAL = PY === null ? '' : realpathSync(PY);

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

/** The file's first HEAD_SIZE bytes, zero-padded, and a reader of the rest: what the kernel sees. */
function kernelView(file: string) {
  const fd = openSync(file, 'r');
  const read = (len: number, offset: number): Buffer | null => {
    const b = Buffer.alloc(len);
    return readSync(fd, b, 0, len, offset) === len ? b : null;
  };
  const head = Buffer.alloc(HEAD_SIZE);
  readSync(fd, head, 0, HEAD_SIZE, 0);
  return { head, read, close: () => closeSync(fd) };
}

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
    assert.ok(supDenials(r).some((d) => /a link of another process \(or thread\) than the caller's; refused while an exec rule/.test(d.detail)), JSON.stringify(supDenials(r)));
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

describe('exec rules and `#!` interpreters', { skip: PY === null && 'no /usr/bin/python3' }, () => {
  const scripts = (ws: string) => {
    writeFileSync(path.join(ws, 's.py'), `#!${PY}\nprint("python ran")\n`, { mode: 0o755 });
    // Nested: n.sh's interpreter is the script s2 (a name relative to the cwd), whose interpreter is python.
    writeFileSync(path.join(ws, 'n.sh'), '#!./s2\n', { mode: 0o755 });
    writeFileSync(path.join(ws, 's2'), `#!${PY}\nprint("python ran")\n`, { mode: 0o755 });
    writeFileSync(path.join(ws, 'm.py'), `#! \t/proc/self/root${PY} -u\nprint("python ran")\n`, { mode: 0o755 });
    // Executable but not readable: the kernel still runs its interpreter, and Ward cannot see which.
    writeFileSync(path.join(ws, 'u.py'), `#!${PY}\nprint("python ran")\n`, { mode: 0o111 });
    writeFileSync(path.join(ws, 'ok.sh'), '#!/bin/sh\necho sh-ok\n', { mode: 0o755 });
  };

  it('after `revoke: exec` of python, a script naming it in its #! line is refused (nested, through a magic link, unreadable); a script with another interpreter still runs', async () => {
    const t = setup([{ after: 'read ${WORKSPACE}/secrets/**', revoke: `exec ${PY_REAL}` }]);
    scripts(t.ws);
    const r = await t.sh('./s.py; echo before=$?; cat secrets/key.txt >/dev/null; ./s.py; echo script=$?; ./n.sh; echo nested=$?; ./m.py; echo magic=$?; ./u.py; echo unreadable=$?; ./ok.sh; echo other=$?');
    assert.equal(r.out, 'python ran\nbefore=0\nscript=126\nnested=126\nmagic=126\nunreadable=126\nsh-ok\nother=0\n', r.out + r.err);
    const d = supDenials(r);
    assert.ok(d.some((x) => x.what === `execve ${PY_REAL}` && /exec revoked by rules\[0\]/.test(x.detail) && x.detail.includes(`the interpreter of ${path.join(t.ws, 's.py')}`)), JSON.stringify(d));
    assert.ok(d.some((x) => x.detail.includes(`the interpreter of ${path.join(t.ws, 's2')}`)), JSON.stringify(d));
    assert.ok(d.some((x) => x.what === `execve ${path.join(t.ws, 'u.py')}` && /Ward cannot read it/.test(x.detail)), JSON.stringify(d));
  });

  it('a script run with `after: exec` of its interpreter pending is that exec event: the rule fires and the secret stays unread', async () => {
    const t = setup([{ after: `exec ${PY_REAL}`, revoke: 'read ${WORKSPACE}/secrets' }]);
    scripts(t.ws);
    const r = await t.sh('cat secrets/key.txt >/dev/null; echo before=$?; ./s.py; cat secrets/key.txt; echo after=$?');
    assert.equal(r.out, 'before=0\npython ran\nafter=1\n', r.out + r.err);
    assert.deepEqual(r.revocations.map((x) => [x.trigger, x.by]), [[`exec ${PY_REAL}`, `execve of ${path.join(t.ws, 's.py')}, its interpreter`]]);
  });
});

describe('exec rules and the dynamic loader', () => {
  const view = kernelView(ID);
  const loader = elfInterpreter(view.head, view.read);
  view.close();

  it('a dynamically linked program runs its PT_INTERP: `revoke: exec` of the loader refuses it', { skip: loader === null && `${ID} is not dynamically linked` }, async () => {
    const real = realpathSync(loader!.toString());
    const t = setup([{ after: 'read ${WORKSPACE}/secrets/**', revoke: `exec ${real}` }]);
    const r = await t.sh(`${ID} -u >/dev/null && echo before-ok; cat secrets/key.txt >/dev/null; ${ID} -u; echo after=$?`);
    assert.equal(r.out, 'before-ok\nafter=126\n', r.out + r.err);
    assert.ok(supDenials(r).some((x) => x.what === `execve ${real}` && x.detail.includes(`the loader of ${ID}`)), JSON.stringify(supDenials(r)));
  });
});

describe('what the kernel runs, read as the kernel reads it (exec-head.ts)', () => {
  const head = (text: string | Buffer) => {
    const b = Buffer.alloc(HEAD_SIZE);
    Buffer.from(text).copy(b);
    return b;
  };
  const name = (text: string | Buffer) => scriptInterpreter(head(text))?.toString() ?? null;

  it('parses `#!` lines as binfmt_script does', () => {
    assert.equal(name('#!/bin/sh\n'), '/bin/sh');
    assert.equal(name('#! \t/usr/bin/env  python3 -u\n'), '/usr/bin/env');
    assert.equal(name('#!/bin/sh   \n'), '/bin/sh');
    assert.equal(name('#!/bin/sh'), '/bin/sh'); // no newline, ends at the file's end (NUL padding)
    assert.equal(name('#!python3\n'), 'python3'); // relative: the kernel looks it up from the cwd
    assert.equal(name('#!\n'), null);
    assert.equal(name('#!   \n'), null);
    assert.equal(name('# !/bin/sh\n'), null);
    assert.equal(name('\x7fELF'), null);
    // No newline and no end to the name within 256 bytes: it may be cut off, so the kernel refuses it.
    assert.equal(name(`#!/${'a'.repeat(300)}`), null);
    // No newline, but the name ends within 256 bytes: the kernel runs it.
    assert.equal(name(`#!/bin/sh ${'a'.repeat(300)}`), '/bin/sh');
    // A NUL ends the name.
    assert.equal(name(Buffer.from('#!/bin/sh\0junk\n')), '/bin/sh');
  });

  it('finds an ELF program\'s PT_INTERP, and none where the kernel would refuse the file', () => {
    const view = kernelView(ID);
    const loader = elfInterpreter(view.head, view.read);
    view.close();
    const fromFile = execFileSync('sh', ['-c', `command -v readelf >/dev/null && readelf -l ${ID} | sed -n 's/.*Requesting program interpreter: \\(.*\\)]/\\1/p' || true`], { encoding: 'utf8' }).trim();
    if (fromFile !== '') assert.equal(loader?.toString(), fromFile);
    const elf = readFileSync(ID);
    const bad = Buffer.from(elf);
    bad.writeUInt16LE(3, 18); // EM_386: not this loader's (the i386 compat loader's, see SECURITY-MODEL.md)
    assert.equal(elfInterpreter(bad.subarray(0, HEAD_SIZE), (l, o) => bad.subarray(o, o + l)), null);
    const odd = Buffer.from(elf);
    odd.writeUInt16LE(40, 54); // e_phentsize the kernel does not know: ENOEXEC
    assert.equal(elfInterpreter(odd.subarray(0, HEAD_SIZE), (l, o) => odd.subarray(o, o + l)), null);
  });
});
