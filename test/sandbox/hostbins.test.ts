/**
 * The programs Ward runs on the host (bwrap, the compiler) and what bwrap builds: a sandbox must
 * not be able to plant the bwrap the next launch runs outside every sandbox, and a bwrap that
 * leaves a layer out (seccomp, a namespace) must not get a command run without it.
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { hostBinaryProblem } from '../../src/hostbin.js';
import { findBwrap } from '../../src/sandbox/preflight.js';
import { isRoot, sandboxFixture, tempDir, ward } from '../helpers.js';

/** A workspace, a minimal policy writing it (no limits: no cgroup needed), and a marker outside it. */
function fixture() {
  const fx = sandboxFixture();
  const base = path.dirname(fx.ws);
  writeFileSync(path.join(base, 'p.yaml'), 'extends: [minimal]\nfilesystem: {write: ["${WORKSPACE}"]}\n');
  return { ...fx, base, policy: path.join(base, 'p.yaml'), marker: path.join(base, 'host-ran') };
}

/** A bwrap wrapper outside every grant: python that edits bwrap's options (from --args FD) and argv, then execs the real one. */
function wrapper(dir: string, name: string, edit: string): string {
  const file = path.join(dir, name);
  writeFileSync(
    file,
    `#!/usr/bin/python3
import os, sys
argv = sys.argv[1:]
if '--args' not in argv:
    os.execv('/usr/bin/bwrap', ['bwrap'] + argv)
k = argv.index('--args')
fd = int(argv[k + 1])
data = b''
while True:
    chunk = os.read(fd, 65536)
    if not chunk:
        break
    data += chunk
opts = [o.decode() for o in data.split(b'\\0')[:-1]]
def drop(lst, name, n):
    while name in lst:
        i = lst.index(name)
        del lst[i:i + n]
${edit}
r, w = os.pipe()
os.write(w, b''.join(o.encode() + b'\\0' for o in opts))
os.close(w)
os.set_inheritable(r, True)
argv[k + 1] = str(r)
os.execv('/usr/bin/bwrap', ['bwrap'] + argv)
`,
    { mode: 0o755 },
  );
  return file;
}

const PLANT = 'mkdir -p node_modules/.bin && printf "#!/bin/sh\\ntouch $MARK\\nexec /usr/bin/bwrap \\"\\$@\\"\\n" > node_modules/.bin/bwrap && chmod 755 node_modules/.bin/bwrap && cp node_modules/.bin/bwrap bwrap';

describe('host programs: never from PATH, never one a sandbox could change', () => {
  it('a bwrap planted by one run in node_modules/.bin (first on PATH under `npm run`) or ./ is never run by the next', () => {
    const fx = fixture();
    const env: NodeJS.ProcessEnv = { ...fx.env, PATH: `${path.join(fx.ws, 'node_modules/.bin')}:.:${fx.env.PATH}` };
    delete env.WARD_BWRAP;
    const plant = ward(['run', '--policy', fx.policy, '--', 'sh', '-c', PLANT.replaceAll('$MARK', fx.marker)], { cwd: fx.ws, env });
    assert.equal(plant.code, 0, plant.stderr);
    assert.ok(existsSync(path.join(fx.ws, 'node_modules/.bin/bwrap')), 'the sandbox could write the workspace');
    const next = ward(['run', '--policy', fx.policy, '--', 'true'], { cwd: fx.ws, env });
    assert.equal(next.code, 0, next.stderr);
    assert.ok(!existsSync(fx.marker), 'the planted bwrap ran on the host');

    // Named explicitly, it is refused: the policy's workspace grant can change it.
    const named = ward(['run', '--policy', fx.policy, '--', 'true'], { cwd: fx.ws, env: { ...env, WARD_BWRAP: path.join(fx.ws, 'node_modules/.bin/bwrap') } });
    assert.equal(named.code, 125);
    assert.match(named.stderr, /refusing to run WARD_BWRAP=\S+node_modules\/\.bin\/bwrap on the host: the directory \S+ can be changed from inside the sandbox/);
    assert.match(named.stderr, /fix: point WARD_BWRAP at a bwrap in a directory only root \(or you\) can write/);
    assert.ok(!existsSync(fx.marker));

    // ward doctor says the same for the policy it checks.
    const doctor = ward(['doctor', '--json', '--policy', fx.policy], { cwd: fx.ws, env: { ...env, WARD_BWRAP: path.join(fx.ws, 'node_modules/.bin/bwrap') } });
    const check = (JSON.parse(doctor.stdout) as { checks: { id: string; status: string; evidence: string }[] }).checks.find((c) => c.id === 'host.bwrap')!;
    assert.equal(check.status, 'fail');
    assert.match(check.evidence, /can be changed from inside the sandbox/);
    assert.ok(!existsSync(fx.marker));
  });

  it('a bwrap others could change is refused: group/other-writable directory, relative path, symlink through such a directory', () => {
    const dir = tempDir('ward-hostbin-');
    const open = path.join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    writeFileSync(path.join(open, 'bwrap'), '#!/bin/sh\n', { mode: 0o755 });
    assert.match(hostBinaryProblem(path.join(open, 'bwrap')) ?? '', /the directory \S+\/open is writable by group or others \(mode 777\)/);
    assert.match(hostBinaryProblem('bwrap') ?? '', /is not an absolute path/);
    const mine = path.join(dir, 'mine');
    mkdirSync(mine, { mode: 0o755 });
    symlinkSync(path.join(open, 'bwrap'), path.join(mine, 'bwrap'));
    assert.match(hostBinaryProblem(path.join(mine, 'bwrap')) ?? '', /\/open is writable by group or others/, 'the link is followed, and the directories on its way checked');
    writeFileSync(path.join(mine, 'group'), '#!/bin/sh\n', { mode: 0o775 });
    chmodSync(path.join(mine, 'group'), 0o775);
    assert.match(hostBinaryProblem(path.join(mine, 'group')) ?? '', /the file \S+ is writable by group or others \(mode 775\)/);
    assert.throws(() => findBwrap({ WARD_BWRAP: path.join(mine, 'bwrap') }), /refusing to run WARD_BWRAP=\S+ on the host: the directory \S+\/open is writable by group or others/);
    assert.equal(hostBinaryProblem('/usr/bin/bwrap'), null, 'the system bwrap is root\'s');
    if (isRoot) {
      const theirs = path.join(dir, 'theirs');
      mkdirSync(theirs, { mode: 0o755 });
      writeFileSync(path.join(theirs, 'bwrap'), '#!/bin/sh\n', { mode: 0o755 });
      chownSync(theirs, 65534, 65534);
      assert.match(hostBinaryProblem(path.join(theirs, 'bwrap')) ?? '', /the directory \S+\/theirs is owned by uid 65534, neither root nor you \(uid 0\)/);
    }
  });
});

describe('what bwrap built is checked before the command runs', () => {
  it('a bwrap that drops --seccomp: refused with 125 at the launcher\'s confinement check, the command never runs', () => {
    const fx = fixture();
    const bwrap = wrapper(fx.base, 'bwrap-noseccomp', "drop(opts, '--seccomp', 2)");
    const r = ward(['run', '--policy', fx.policy, '--', 'touch', fx.marker], { cwd: fx.ws, env: { ...fx.env, WARD_BWRAP: bwrap } });
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr, /could not be completed at step confinement: .*Seccomp is 0, not 2: no seccomp filter is in force/);
    assert.ok(!existsSync(fx.marker), 'the command ran without seccomp');
  });

  it("a bwrap that does not unshare the IPC namespace (the host's System V shared memory): refused, the command never runs", () => {
    const fx = fixture();
    const bwrap = wrapper(fx.base, 'bwrap-hostipc', "drop(opts, '--unshare-ipc', 1)");
    const r = ward(['run', '--policy', fx.policy, '--', 'touch', fx.marker], { cwd: fx.ws, env: { ...fx.env, WARD_BWRAP: bwrap } });
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr, /step confinement: .*the ipc namespace is the host's/);
    assert.ok(!existsSync(fx.marker));
  });

  it('a bwrap that also strips the launcher\'s requirements: Ward\'s own check of the report kills the command and fails the run', () => {
    const fx = fixture();
    const bwrap = wrapper(
      fx.base,
      'bwrap-strip',
      `drop(opts, '--seccomp', 2)
for name, n in (('--require-seccomp', 2), ('--require-ns', 2), ('--require-unprivileged', 1)):
    drop(argv, name, n)`,
    );
    const r = ward(['run', '--policy', fx.policy, '--', 'true'], { cwd: fx.ws, env: { ...fx.env, WARD_BWRAP: bwrap } });
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr, /the sandbox is not confined as Ward asked \(Seccomp is 0, not 2: no seccomp filter is in force\): the launcher did not check it before the command started, so the command was killed/);
  });

  it('user namespaces refused (bwrap fails before its init starts): the diagnosis and its fix, not the watchdog\'s "no sandbox init"', () => {
    const fx = fixture();
    const bwrap = path.join(fx.base, 'bwrap-nouserns');
    writeFileSync(bwrap, '#!/bin/sh\necho "bwrap: setting up uid map: Permission denied" >&2\nexit 1\n', { mode: 0o755 });
    // Each time: whether the watchdog's report or bwrap's exit reaches Ward first must not matter.
    for (let i = 0; i < 3; i++) {
      const r = ward(['run', '--policy', fx.policy, '--', 'true'], { cwd: fx.ws, env: { ...fx.env, WARD_BWRAP: bwrap } });
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr, /user namespaces are refused on this host, so bwrap cannot build the sandbox/);
      assert.match(r.stderr, /fix: .*(apparmor|sysctl)/i);
      assert.doesNotMatch(r.stderr, /no sandbox init/);
    }
  });
});
