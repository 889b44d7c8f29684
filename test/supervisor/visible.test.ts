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
import { run } from '../../src/index.js';
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
    writeFileSync(path.join(fx.ws, 'tool.sh'), '#!/bin/sh\necho TOOL-RAN\n');
    chmodSync(path.join(fx.ws, 'tool.sh'), 0o755);
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
});
