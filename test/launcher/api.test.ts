/** The TypeScript API of src/launcher/launcher.ts: build, argument lists, status parsing. */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  compileLauncher,
  ensureLauncher,
  findCompiler,
  innerArgs,
  landlockAbi,
  launcherCacheDir,
  launcherFileName,
  launcherHash,
  launcherInCache,
  launcherSource,
  outerArgs,
  packageRoot,
  parseLauncherStatus,
} from '../../src/launcher/launcher.js';
import { tempDir } from './helpers.js';

const execFileAsync = promisify(execFile);
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('locating and building', () => {
  test('launcherSource is the absolute path of ward-launch.c in the package root', () => {
    assert.equal(packageRoot(), repoRoot);
    assert.equal(launcherSource(), join(repoRoot, 'src', 'launcher', 'ward-launch.c'));
    assert.ok(existsSync(launcherSource()));
  });

  test('the hash is 16 hex digits, stable, and changes with the source', () => {
    const h = launcherHash();
    assert.match(h, /^[0-9a-f]{16}$/);
    assert.equal(launcherHash(), h);
    assert.notEqual(launcherHash(Buffer.concat([readFileSync(launcherSource()), Buffer.from('\n')])), h);
    assert.equal(launcherFileName(h), `ward-launch-${h}`);
  });

  test('ensureLauncher returns an executable named by the hash, and caches it', () => {
    const path = ensureLauncher();
    assert.ok(path.endsWith(`/ward-launch-${launcherHash()}`), path);
    assert.ok(statSync(path).mode & 0o100);
    assert.equal(ensureLauncher(), path);
    assert.ok(
      path === join(repoRoot, 'build', launcherFileName()) || path === join(launcherCacheDir(), launcherFileName()),
      path,
    );
  });

  test('first call in a fresh process compiles into $XDG_CACHE_HOME/ward (mode 0700), atomically', () => {
    const cache = tempDir('xdg');
    try {
      const code = `const m = await import(${JSON.stringify(join(repoRoot, 'src/launcher/launcher.ts'))}); console.log(m.ensureLauncher());`;
      const env = { ...process.env, XDG_CACHE_HOME: cache };
      const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { env, encoding: 'utf8' }).trim();
      if (existsSync(join(repoRoot, 'build', launcherFileName()))) {
        assert.equal(out, join(repoRoot, 'build', launcherFileName()), 'a built launcher is preferred');
        return;
      }
      assert.equal(out, join(cache, 'ward', launcherFileName()));
      assert.equal(statSync(join(cache, 'ward')).mode & 0o777, 0o700);
      assert.equal(execFileSync(out, ['--version'], { encoding: 'utf8' }).split(' ')[0], 'ward-launch');
      // Only the final name is left: the temporary was renamed.
      assert.deepEqual(
        spawnSync('ls', [join(cache, 'ward')], { encoding: 'utf8' }).stdout.trim().split('\n'),
        [launcherFileName()],
      );
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });

  test('a cache directory writable by others is refused', () => {
    const cache = tempDir('xdg-open');
    try {
      execFileSync('mkdir', ['-m', '0777', join(cache, 'ward')]);
      const code = `const m = await import(${JSON.stringify(join(repoRoot, 'src/launcher/launcher.ts'))}); try { m.ensureLauncher(); console.log('accepted'); } catch (e) { console.log(e.message); }`;
      const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
        env: { ...process.env, XDG_CACHE_HOME: cache },
        encoding: 'utf8',
      });
      if (existsSync(join(repoRoot, 'build', launcherFileName()))) return; // the cache is not consulted
      assert.match(out, /refusing to use Ward's cache directory .*not writable by group or others/);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });

  test('a launcher in the cache that is a symlink, not ours, or writable by others is refused, never run', () => {
    const dir = tempDir('cache-plant');
    try {
      const cache = join(dir, 'ward');
      const target = join(cache, launcherFileName());
      mkdirSync(cache, { mode: 0o700 });
      // What a sandbox that could write the cache planted: a script in the launcher's name.
      writeFileSync(join(dir, 'evil'), '#!/bin/sh\ntouch "$0.ran"\n', { mode: 0o755 });
      symlinkSync(join(dir, 'evil'), target);
      assert.throws(() => launcherInCache(cache), new RegExp(`refusing to use Ward's launcher ${target}: it is a symlink; .*Remove it and Ward will rebuild it`));
      rmSync(target);
      writeFileSync(target, '#!/bin/sh\n', { mode: 0o755 });
      chmodSync(target, 0o775);
      assert.throws(() => launcherInCache(cache), /it is writable by group or others \(mode 775\)/);
      if (process.getuid?.() === 0) {
        chmodSync(target, 0o755);
        chownSync(target, 65534, 65534);
        assert.throws(() => launcherInCache(cache), /it is owned by uid 65534, not you \(0\)/);
      }
      rmSync(target);
      rmSync(cache, { recursive: true });
      symlinkSync(dir, cache);
      assert.throws(() => launcherInCache(cache), /refusing to use Ward's cache directory .*: it is a symlink/);
      assert.ok(!existsSync(join(dir, 'evil.ran')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('compileLauncher into a directory; parallel builds of the same hash are safe', async () => {
    const dir = tempDir('build');
    try {
      // Four processes compile the same hash at once into one directory.
      const code = `const m = await import(${JSON.stringify(join(repoRoot, 'src/launcher/launcher.ts'))}); console.log(m.compileLauncher(${JSON.stringify(dir)}));`;
      const runs = Array.from({ length: 4 }, () =>
        execFileAsync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { encoding: 'utf8' }).then((r) => r.stdout.trim()),
      );
      const paths = await Promise.all(runs);
      assert.ok(paths.every((p) => p === join(dir, launcherFileName())));
      assert.equal(compileLauncher(dir), join(dir, launcherFileName()), 'an existing binary is reused');
      assert.match(execFileSync(paths[0]!, ['--version'], { encoding: 'utf8' }), /^ward-launch /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('no compiler in the system directories: an error naming the problem and the fix', () => {
    const dir = tempDir('nocc');
    try {
      assert.equal(findCompiler(['/nonexistent']), null);
      assert.throws(() => compileLauncher(dir, 0o755, ['/nonexistent']), /no C compiler found to build Ward's launcher: install one with `apt-get install -y gcc libc6-dev`, or run `npm run build`/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a cc planted first on PATH (a workspace\'s node_modules/.bin) is never run; one in a directory others can write is refused', () => {
    const dir = tempDir('plantcc');
    const savedPath = process.env['PATH'];
    try {
      const bin = join(dir, 'bin');
      mkdirSync(bin, { mode: 0o755 });
      for (const name of ['cc', 'gcc', 'clang']) writeFileSync(join(bin, name), `#!/bin/sh\ntouch ${join(dir, 'ran')}\nexec /usr/bin/${name} "$@"\n`, { mode: 0o755 });
      process.env['PATH'] = `${bin}:${savedPath}`;
      assert.ok(!findCompiler()?.startsWith(bin), 'the compiler came from PATH');
      const out = compileLauncher(join(dir, 'out'));
      assert.match(execFileSync(out, ['--version'], { encoding: 'utf8' }), /^ward-launch /);
      assert.ok(!existsSync(join(dir, 'ran')), 'the planted compiler ran on the host');
      chmodSync(bin, 0o777);
      assert.throws(() => findCompiler([bin]), /refusing to run the C compiler \S+\/cc to build Ward's launcher: the directory \S+\/bin is writable by group or others/);
    } finally {
      process.env['PATH'] = savedPath;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('findCompiler finds cc here', () => {
    assert.match(findCompiler() ?? '', /\/(cc|gcc|clang)$/);
  });

  test('landlockAbi() asks the launcher', () => {
    assert.ok(landlockAbi() >= 1);
  });
});

describe('argument lists', () => {
  test('innerArgs builds every flag, ending with --', () => {
    assert.deepEqual(
      innerArgs({
        rlimits: { nofile: [16, 32], core: [0, 'unlimited'] },
        landlock: { mode: 'required', rules: [{ path: '/usr', rights: 'rx' }, { path: '/work', rights: 'rw' }], scope: true },
        chdir: '/work',
        statusFd: 3,
      }),
      ['inner', '--status-fd', '3', '--rlimit', 'nofile=16:32', '--rlimit', 'core=0:unlimited', '--landlock', 'required',
        '--ll', 'rx:/usr', '--ll', 'rw:/work', '--ll-scope', '--chdir', '/work', '--'],
    );
  });

  test('innerArgs with Landlock off leaves out rules and scope', () => {
    assert.deepEqual(innerArgs({ landlock: { mode: 'off', rules: [{ path: '/usr', rights: 'r' }], scope: true }, statusFd: 4 }), [
      'inner', '--status-fd', '4', '--landlock', 'off', '--',
    ]);
  });

  test('innerArgs rejects what the launcher would reject', () => {
    const base = { landlock: { mode: 'required' as const, rules: [] }, statusFd: 3 };
    assert.throws(() => innerArgs({ ...base, statusFd: 2 }), /statusFd/);
    assert.throws(() => innerArgs({ ...base, statusFd: 3.5 }), /statusFd/);
    assert.throws(() => innerArgs({ ...base, rlimits: { files: [1, 1] } }), /unknown rlimit 'files'/);
    assert.throws(() => innerArgs({ ...base, rlimits: { nofile: [-1, 1] } }), /not a non-negative integer/);
    assert.throws(() => innerArgs({ ...base, landlock: { mode: 'required', rules: [{ path: '/usr', rights: 'rq' }] } }), /rights 'rq'/);
    assert.throws(() => innerArgs({ ...base, landlock: { mode: 'required', rules: [{ path: '/usr', rights: '' }] } }), /rights ''/);
    assert.throws(() => innerArgs({ ...base, landlock: { mode: 'required', rules: [{ path: 'usr', rights: 'r' }] } }), /absolute/);
    assert.throws(() => innerArgs({ ...base, chdir: '' }), /chdir/);
  });

  test('outerArgs', () => {
    assert.deepEqual(outerArgs({ cgroupProcs: ['/sys/fs/cgroup/pids/x/cgroup.procs'], statusFd: 3 }), [
      'outer', '--status-fd', '3', '--cgroup-procs', '/sys/fs/cgroup/pids/x/cgroup.procs', '--',
    ]);
    assert.throws(() => outerArgs({ cgroupProcs: ['cgroup.procs'], statusFd: 3 }), /absolute/);
  });
});

describe('parseLauncherStatus', () => {
  const ready =
    '{"stage":"inner","protocol":1,"landlock":{"mode":"optional","abi":0,"status":"unavailable","rules":0,"scoped":false,"skipped":[],"errno":38},' +
    '"proc_status":{"NoNewPrivs":"1","CapEff":"0000000000000000"},"rlimits":{"nofile":[16,16],"core":[0,"unlimited"]}}';

  test('empty text: the launcher never reported', () => {
    assert.deepEqual(parseLauncherStatus(''), { ready: null, failure: null, ok: false });
  });

  test('a ready line alone (then EOF) means the exec happened', () => {
    const s = parseLauncherStatus(`${ready}\n`);
    assert.equal(s.ok, true);
    assert.equal(s.ready?.landlock.status, 'unavailable');
    assert.equal(s.ready?.landlock.errno, 38);
    assert.deepEqual(s.ready?.rlimits['core'], [0, 'unlimited']);
  });

  test('ready then an exec failure; the errno gets its name', () => {
    const s = parseLauncherStatus(`${ready}\n{"stage":"inner","step":"exec","error":"No such file or directory","errno":2,"detail":"x"}\n`);
    assert.equal(s.ok, false);
    assert.ok(s.ready);
    assert.deepEqual(s.failure, { stage: 'inner', step: 'exec', error: 'No such file or directory', errno: 2, detail: 'x', code: 'ENOENT' });
  });

  test('an outer failure with a hint; a last line without newline is read too', () => {
    const s = parseLauncherStatus('{"stage":"outer","step":"cgroup-join","error":"Permission denied","errno":13,"detail":"/f","hint":"h"}');
    assert.equal(s.failure?.code, 'EACCES');
    assert.equal(s.failure?.hint, 'h');
  });

  test('malformed input is an error, not a guess', () => {
    assert.throws(() => parseLauncherStatus('not json\n'), /not JSON/);
    assert.throws(() => parseLauncherStatus('{"stage":"inner"}\n'), /malformed/);
    assert.throws(() => parseLauncherStatus(ready.replace('"protocol":1', '"protocol":2')), /malformed/);
    assert.throws(() => parseLauncherStatus(`${ready}\n${ready}\n`), /second ready/);
    assert.throws(
      () => parseLauncherStatus('{"stage":"outer","step":"exec","error":"e","errno":2,"detail":""}\n' + ready),
      /follows a failure/,
    );
  });
});
