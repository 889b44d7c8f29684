/**
 * Visible-only files (`filesystem.visible`) in a real sandbox: stat, lstat and a directory
 * listing show them with their real metadata; every open for reading or writing, and every
 * exec, fails with EACCES, by whatever name it is reached: the path itself, a symlink, a hard
 * link made on the host, /proc/self/fd and /dev/fd after an O_PATH open, execveat on an O_PATH
 * fd. Three places: a file inside the workspace (which `default` grants read, write and
 * execute on: Landlock alone would allow everything, only the supervisor refuses), a directory
 * inside it, and a file outside every grant.
 */
import assert from 'node:assert/strict';
import { chmodSync, linkSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { execFileSync } from 'node:child_process';
import { run, WardError } from '../../src/index.js';
import type { RunRecord } from '../../src/sandbox/launch.js';
import { fixtureRunOptions, sandboxFixture, which } from '../helpers.js';

const skip = !which('python3') && 'python3 missing';

/** Python: `attempt(name, f)` prints "name ok [result]" or "name refused errno=N"; `libc` for raw calls. */
const PY_ATTEMPT = `
import os, sys, ctypes, subprocess
libc = ctypes.CDLL(None, use_errno=True)
def attempt(name, f):
    try:
        r = f()
        print(name, 'ok', r if isinstance(r, (int, str)) else '')
    except OSError as e:
        print(name, 'refused errno=%s' % e.errno)
    sys.stdout.flush()`;

describe('visible-only files (filesystem.visible) in a real sandbox', { skip }, () => {
  it('stat and listing show the real file; every open and exec fails with EACCES, by every name', async () => {
    const fx = sandboxFixture();
    const ext = path.join(path.dirname(fx.ws), 'ext');
    mkdirSync(ext);
    mkdirSync(path.join(fx.ws, 'vdir'));
    writeFileSync(path.join(fx.ws, 'secret.key'), 'PRIVATE-KEY-BYTES\n');
    writeFileSync(path.join(fx.ws, 'vdir', 'inner.txt'), 'INNER\n');
    // No execute bit: one under the workspace's execute grant is refused at launch (test below).
    writeFileSync(path.join(fx.ws, 'tool.sh'), '#!/bin/sh\necho TOOL-RAN\n');
    chmodSync(path.join(fx.ws, 'tool.sh'), 0o644);
    writeFileSync(path.join(ext, 'outside.txt'), 'OUTSIDE\n');
    // A second name made on the host, before the run, in a granted directory.
    linkSync(path.join(fx.ws, 'secret.key'), path.join(fx.ws, 'innocent.txt'));
    const records: RunRecord[] = [];
    const policy = {
      extends: ['default'],
      filesystem: { visible: ['${WORKSPACE}/secret.key', '${WORKSPACE}/vdir', '${WORKSPACE}/tool.sh', path.join(ext, 'outside.txt')] },
    };
    const size = statSync(path.join(fx.ws, 'secret.key')).size;
    const code = `${PY_ATTEMPT}
attempt('stat', lambda: os.stat('secret.key').st_size)
attempt('lstat-ext', lambda: os.lstat('${ext}/outside.txt').st_size)
attempt('listed', lambda: 'yes' if 'secret.key' in os.listdir('.') else 'no')
attempt('stat-inner', lambda: os.stat('vdir/inner.txt').st_size)
attempt('read', lambda: open('secret.key').read())
attempt('read-bytes', lambda: open('secret.key', 'rb').read(1))
attempt('append', lambda: open('secret.key', 'a'))
attempt('write', lambda: open('secret.key', 'w'))
attempt('rdwr', lambda: os.open('secret.key', os.O_RDWR))
attempt('read-ext', lambda: open('${ext}/outside.txt').read())
attempt('read-inner', lambda: open('vdir/inner.txt').read())
attempt('list-vdir', lambda: os.listdir('vdir'))
attempt('read-hardlink', lambda: open('innocent.txt').read())
os.symlink('secret.key', 'sl')
attempt('read-symlink', lambda: open('sl').read())
os.symlink('/' + os.path.relpath(os.path.abspath('secret.key'), '/'), 'abs-sl')
attempt('read-abs-symlink', lambda: open('abs-sl').read())
p = os.open('secret.key', os.O_PATH)
attempt('opath', lambda: 'fd')
attempt('proc-fd-reopen', lambda: open('/proc/self/fd/%d' % p).read())
attempt('dev-fd-reopen', lambda: open('/dev/fd/%d' % p).read())
attempt('proc-fd-write', lambda: os.open('/proc/self/fd/%d' % p, os.O_WRONLY))
attempt('link', lambda: os.link('secret.key', 'hl2'))
attempt('unlink', lambda: os.unlink('secret.key'))
attempt('exec', lambda: subprocess.run(['./tool.sh'], check=True, capture_output=True).stdout.decode().strip())
def by_sh():
    r = subprocess.run(['sh', './tool.sh'], capture_output=True)
    if b'Permission denied' in r.stderr: raise OSError(13, 'sh could not read it')
    return (r.stdout + r.stderr).decode().strip() or 'empty'
attempt('exec-sh', by_sh)
t = os.open('tool.sh', os.O_PATH)
def execveat():
    pid = os.fork()
    if pid == 0:
        argv = (ctypes.c_char_p * 2)(b'tool', None)
        libc.syscall(322, t, b'', argv, None, 0x1000)
        os._exit(100 + ctypes.get_errno())
    _, st = os.waitpid(pid, 0)
    rc = os.waitstatus_to_exitcode(st)
    if rc >= 100: raise OSError(rc - 100, 'execveat')
    return 'ran rc=%d' % rc
attempt('execveat-opath', execveat)
`;
    const r = await run({ policy }, ['python3', '-c', code], fixtureRunOptions(fx, records));
    const out = r.stdout.toString() + r.stderr.toString();
    const line = (k: string) => new RegExp(`^${k} (.*)$`, 'm').exec(out)?.[1] ?? 'missing';
    assert.equal(line('stat'), `ok ${size}`, out);
    assert.equal(line('lstat-ext'), 'ok 8', out);
    assert.equal(line('listed'), 'ok yes', out);
    assert.equal(line('stat-inner'), 'ok 6', out);
    assert.match(line('opath'), /^ok/, out);
    for (const k of ['read', 'read-bytes', 'append', 'write', 'rdwr', 'read-ext', 'read-inner', 'list-vdir', 'read-hardlink', 'read-symlink', 'read-abs-symlink',
      'proc-fd-reopen', 'dev-fd-reopen', 'proc-fd-write', 'exec', 'exec-sh', 'execveat-opath']) {
      assert.equal(line(k), 'refused errno=13', `${k}: ${out}`);
    }
    // Its own read-only bind: no second name, no removal.
    assert.match(line('link'), /^refused errno=(18|13)$/, out);
    assert.match(line('unlink'), /^refused errno=(16|13)$/, out);
    assert.ok(!out.includes('PRIVATE-KEY') && !out.includes('INNER') && !out.includes('OUTSIDE') && !out.includes('TOOL-RAN'), out);
    assert.equal(readFileSync(path.join(fx.ws, 'secret.key'), 'utf8'), 'PRIVATE-KEY-BYTES\n');
    const sup = r.denials.filter((d) => d.layer === 'supervisor' && /visible-only/.test(d.detail));
    assert.ok(sup.some((d) => d.what === `openat ${path.join(fx.ws, 'secret.key')}`), JSON.stringify(r.denials));
    assert.ok(sup.some((d) => d.what.startsWith('execve') && d.what.endsWith('tool.sh')), JSON.stringify(r.denials));
  });

  it('directory entries (visible and append-only) cannot be carried off by renaming a directory above them, and their files are known by identity under other names', async () => {
    const fx = sandboxFixture();
    for (const d of ['cfg/vis', 'cfg/app', 'empty', 'other']) mkdirSync(path.join(fx.ws, d), { recursive: true });
    writeFileSync(path.join(fx.ws, 'cfg', 'vis', 'token'), 'VISIBLE-SECRET\n');
    writeFileSync(path.join(fx.ws, 'cfg', 'app', 'log.txt'), 'APPENDLOG\n');
    // Second names made on the host before the run, outside the entries.
    linkSync(path.join(fx.ws, 'cfg', 'vis', 'token'), path.join(fx.ws, 'hl-vis'));
    linkSync(path.join(fx.ws, 'cfg', 'app', 'log.txt'), path.join(fx.ws, 'hl-app'));
    const policy = { extends: ['default'], filesystem: { visible: ['${WORKSPACE}/cfg/vis'], append: ['${WORKSPACE}/cfg/app'] } };
    const code = `${PY_ATTEMPT}
def exchange(a, b):
    if libc.syscall(316, -100, a.encode(), -100, b.encode(), 2) != 0:  # renameat2(RENAME_EXCHANGE)
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
attempt('rename-ancestor', lambda: os.rename('cfg', 'cfg2'))
attempt('read-after', lambda: open('cfg2/vis/token').read())
attempt('trunc-after', lambda: open('cfg2/app/log.txt', 'w').write('REWRITTEN'))
attempt('exchange-ancestor', lambda: exchange('empty', 'cfg'))
attempt('rename-entry', lambda: os.rename('cfg/app', 'app2'))
attempt('read-hardlink', lambda: open('hl-vis').read())
attempt('trunc-hardlink', lambda: open('hl-app', 'w').write('REWRITTEN'))
attempt('rdwr-hardlink', lambda: os.open('hl-app', os.O_RDWR))
attempt('append-hardlink', lambda: open('hl-app', 'a').write('A1\\n'))
attempt('link-from-vis', lambda: os.link('cfg/vis/token', 'x'))
attempt('rename-other', lambda: os.rename('other', 'other2'))
`;
    const r = await run({ policy }, ['python3', '-c', code], fixtureRunOptions(fx, []));
    const out = r.stdout.toString() + r.stderr.toString();
    const line = (k: string) => new RegExp(`^${k} (.*)$`, 'm').exec(out)?.[1] ?? 'missing';
    for (const k of ['rename-ancestor', 'exchange-ancestor', 'read-hardlink', 'trunc-hardlink', 'rdwr-hardlink']) assert.equal(line(k), 'refused errno=13', `${k}: ${out}`);
    assert.match(line('read-after'), /^refused errno=2$/, out);
    assert.match(line('trunc-after'), /^refused errno=2$/, out);
    // The entry itself is a mount point (EBUSY), or refused; a link out of its bind crosses mounts (EXDEV).
    assert.match(line('rename-entry'), /^refused errno=(16|13)$/, out);
    assert.match(line('link-from-vis'), /^refused errno=(18|13|30)$/, out);
    assert.match(line('append-hardlink'), /^ok/, out);
    assert.match(line('rename-other'), /^ok/, out);
    assert.ok(!out.includes('VISIBLE-SECRET'), out);
    assert.equal(readFileSync(path.join(fx.ws, 'cfg', 'app', 'log.txt'), 'utf8'), 'APPENDLOG\nA1\n');
    assert.equal(readFileSync(path.join(fx.ws, 'cfg', 'vis', 'token'), 'utf8'), 'VISIBLE-SECRET\n');
  });
  it("a visible-only file the kernel could run as an interpreter (#!, PT_INTERP), unseen by the supervisor, is refused at launch: an execute bit under an execute grant, or with a second name", async () => {
    const fx = sandboxFixture();
    const ext = path.join(path.dirname(fx.ws), 'ext');
    mkdirSync(ext);
    // The red team's shape: a visible binary in the workspace (granted rwx) and a script naming it.
    writeFileSync(path.join(fx.ws, 'visbin'), '#!/bin/sh\necho VISIBLE-CODE-RAN\n', { mode: 0o755 });
    writeFileSync(path.join(fx.ws, 'sb.sh'), `#!${path.join(fx.ws, 'visbin')}\n`, { mode: 0o755 });
    const refusal = async (visible: string[]) => {
      try {
        await run({ policy: { extends: ['default'], filesystem: { visible } } }, ['./sb.sh'], fixtureRunOptions(fx, []));
      } catch (e) {
        assert.ok(e instanceof WardError, String(e));
        return `${e.message}\nfix: ${e.fix ?? ''}`;
      }
      return 'ran';
    };
    const direct = await refusal(['${WORKSPACE}/visbin']);
    assert.match(direct, new RegExp(`visible-only file ${path.join(fx.ws, 'visbin')} has an execute bit and execute is granted there`), direct);
    assert.match(direct, new RegExp(`fix: remove its execute bits on the host \\(chmod a-x ${path.join(fx.ws, 'visbin')}\\)`), direct);
    // Inside a directory entry.
    mkdirSync(path.join(fx.ws, 'vdir'));
    writeFileSync(path.join(fx.ws, 'vdir', 'readme'), 'text\n', { mode: 0o644 });
    writeFileSync(path.join(fx.ws, 'vdir', 'tool'), 'x\n', { mode: 0o700 });
    assert.match(await refusal(['${WORKSPACE}/vdir']), new RegExp(`visible-only file ${path.join(fx.ws, 'vdir', 'tool')} has an execute bit`));
    // Outside every execute grant Landlock refuses the interpreter's open itself; but not by a
    // second name in the workspace.
    writeFileSync(path.join(ext, 'outbin'), '#!/bin/sh\necho OUTSIDE-CODE-RAN\n', { mode: 0o755 });
    writeFileSync(path.join(fx.ws, 'sb.sh'), `#!${path.join(ext, 'outbin')}\n`, { mode: 0o755 });
    const r = await run({ policy: { extends: ['default'], filesystem: { visible: [path.join(ext, 'outbin')] } } }, ['sh', '-c', './sb.sh; echo "rc=$?"'], fixtureRunOptions(fx, []));
    const out = r.stdout.toString() + r.stderr.toString();
    assert.match(out, /rc=126/, out);
    assert.ok(!out.includes('OUTSIDE-CODE-RAN'), out);
    linkSync(path.join(ext, 'outbin'), path.join(fx.ws, 'second-name'));
    assert.match(await refusal([path.join(ext, 'outbin')]), /has an execute bit and it has 2 hard links, and another name may be where execute is granted/);
    assert.equal(readFileSync(path.join(fx.ws, 'visbin'), 'utf8'), '#!/bin/sh\necho VISIBLE-CODE-RAN\n');
  });

  it('a visible-only file without an execute bit named as an interpreter (#!, PT_INTERP) gives EACCES and shows nothing; no execute bit can be added to it, by a second name or by its own', { skip: !which('cc') && 'no C compiler' }, async () => {
    const fx = sandboxFixture();
    writeFileSync(path.join(fx.ws, 'vis.txt'), 'VISIBLE-TEXT\n', { mode: 0o644 });
    writeFileSync(path.join(fx.ws, 'vbin.c'), '#include <stdio.h>\nint main(void) { puts("VISIBLE-BINARY-RAN"); return 0; }\n');
    execFileSync('cc', ['-o', path.join(fx.ws, 'vbin'), path.join(fx.ws, 'vbin.c')]);
    chmodSync(path.join(fx.ws, 'vbin'), 0o644);
    // Second names made on the host before the run, outside the entries, where execute is granted.
    linkSync(path.join(fx.ws, 'vbin'), path.join(fx.ws, 'hl-bin'));
    linkSync(path.join(fx.ws, 'vis.txt'), path.join(fx.ws, 'hl-txt'));
    // An ELF whose PT_INTERP is the visible file.
    writeFileSync(path.join(fx.ws, 'hello.c'), 'int main(void) { return 0; }\n');
    execFileSync('cc', [`-Wl,--dynamic-linker=${path.join(fx.ws, 'vbin')}`, '-o', path.join(fx.ws, 'interp-elf'), path.join(fx.ws, 'hello.c')]);
    for (const [name, target] of [['s-txt', 'vis.txt'], ['s-bin', 'vbin'], ['s-hl', 'hl-bin']] as const) writeFileSync(path.join(fx.ws, name), `#!${path.join(fx.ws, target)}\n`, { mode: 0o755 });
    // A second name passes launch when there is no execute bit to use.
    assert.equal(statSync(path.join(fx.ws, 'vbin')).nlink, 2);
    const policy = { extends: ['default'], filesystem: { visible: ['${WORKSPACE}/vis.txt', '${WORKSPACE}/vbin'] } };
    const code = `${PY_ATTEMPT}
def execv(p):
    pid = os.fork()
    if pid == 0:
        try: os.execv(p, [p])
        except OSError as e: os._exit(100 + e.errno)
    _, st = os.waitpid(pid, 0)
    rc = os.waitstatus_to_exitcode(st)
    if rc >= 100: raise OSError(rc - 100, 'execv')
    return 'ran rc=%d' % rc
for s in ('s-txt', 's-bin', 's-hl', 'interp-elf'):
    attempt(s, lambda: execv('./' + s))
attempt('chmod-hl-bin', lambda: os.chmod('hl-bin', 0o755))
attempt('chmod-hl-txt', lambda: os.chmod('hl-txt', 0o700))
attempt('chmod-own', lambda: os.chmod('vbin', 0o755))
def fchmodat(p, mode):
    if libc.syscall(268, -100, p.encode(), mode, 0) != 0:  # fchmodat
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
attempt('fchmodat-hl', lambda: fchmodat('hl-bin', 0o755))
for s in ('s-bin', 's-hl', 'interp-elf'):
    attempt('after-' + s, lambda: execv('./' + s))
attempt('chmod-other', lambda: os.chmod('vbin.c', 0o600))
`;
    const r = await run({ policy }, ['python3', '-c', code], fixtureRunOptions(fx, []));
    const out = r.stdout.toString() + r.stderr.toString();
    const line = (k: string) => new RegExp(`^${k} (.*)$`, 'm').exec(out)?.[1] ?? 'missing';
    for (const k of ['s-txt', 's-bin', 's-hl', 'interp-elf', 'after-s-bin', 'after-s-hl', 'after-interp-elf']) assert.equal(line(k), 'refused errno=13', `${k}: ${out}`);
    for (const k of ['chmod-hl-bin', 'chmod-hl-txt', 'fchmodat-hl']) assert.equal(line(k), 'refused errno=13', `${k}: ${out}`);
    // Its own name is its read-only bind (EROFS), or refused by identity first.
    assert.match(line('chmod-own'), /^refused errno=(13|30)$/, out);
    assert.match(line('chmod-other'), /^ok/, out);
    assert.ok(!out.includes('VISIBLE-BINARY-RAN') && !out.includes('VISIBLE-TEXT'), out);
    for (const f of ['vbin', 'vis.txt']) assert.equal(statSync(path.join(fx.ws, f)).mode & 0o777, 0o644, f);
    assert.ok(r.denials.some((d) => d.layer === 'supervisor' && /its mode cannot be changed/.test(d.detail) && d.what.endsWith('hl-bin')), JSON.stringify(r.denials));
  });
});
