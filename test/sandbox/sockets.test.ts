/**
 * Unix sockets in granted trees: connect(2) ignores a read-only bind and Landlock does not
 * restrict it, so each attack here is a real server on the host that the sandbox must not reach
 * through a grant of the directory it lives in. And symlinks out of a denied directory: the
 * target of ~/.ssh/id_rsa -> ../dotfiles/ssh/.ssh/id_rsa must stay hidden under a grant of ~.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createServer, type Server } from 'node:net';
import { after, describe, it } from 'node:test';
import { compile, run, type PolicyInput, type RunOptions } from '../../src/index.js';
import { hasCgroup, isRoot, sandboxFixture, tempDir, which } from '../helpers.js';

const servers: Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

/** A server on the host at `file` that answers every connection with `reply`. */
async function serve(file: string, reply: string): Promise<void> {
  const s = createServer((c) => c.end(reply));
  servers.push(s);
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(file, resolve);
  });
}

/**
 * A fresh directory in the caller's home, outside every place where sockets live (/tmp, /run...),
 * which Ward walks whole: there a socket is found only by what the kernel says about it.
 */
function homeDir(): string {
  const d = realpathSync(mkdtempSync(path.join(os.homedir(), '.ward-test-sock-')));
  after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/**
 * A server in another process, as a host daemon is, that binds `final` the way `mode` says and
 * answers every connection with HOST-SERVER: link (OpenSSH's ControlMaster: bind a temporary
 * name, link it to the ControlPath, unlink the temporary one), rename, relative (chdir, bind the
 * basename: what a path over 107 bytes forces). Resolves once it listens; killed when the file ends.
 */
const SERVER = `
import socket, os, sys
mode, final = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
if mode == 'link':
    s.bind(final + '.Xy12ab'); os.link(final + '.Xy12ab', final); os.unlink(final + '.Xy12ab')
elif mode == 'rename':
    s.bind(final + '.tmp'); os.rename(final + '.tmp', final)
elif mode == 'relative':
    os.chdir(os.path.dirname(final)); s.bind(os.path.basename(final)); os.chdir('/')
else:
    s.bind(final)
s.listen(8)
print('ready', flush=True)
while True:
    c, _ = s.accept(); c.sendall(b'HOST-SERVER\\n'); c.close()
`;
async function daemon(mode: 'link' | 'rename' | 'relative' | 'direct', final: string): Promise<void> {
  const child = spawn('python3', ['-c', SERVER, mode, final], { stdio: ['ignore', 'pipe', 'inherit'] });
  after(() => child.kill());
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server ${mode} exited with ${code}`)));
    child.stdout.once('data', () => resolve());
  });
}

/** Prints what the server at each path answered, or the errno name connecting got. */
const CONNECT = `
import socket, sys, errno
for p in sys.argv[1:]:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(p); print(p, "answered", s.recv(100).decode().strip())
    except OSError as e:
        print(p, "refused", errno.errorcode.get(e.errno, e.errno))
`;

/** `limits`: the policy sets resource limits (the default profile), which without a cgroup only run degraded. */
function setup(policy: PolicyInput, limits = false) {
  const fx = sandboxFixture();
  const options: RunOptions = { workspace: fx.ws, env: fx.env, stdin: 'ignore', allowDegraded: limits && !hasCgroup };
  const exec = async (argv: string[], env: RunOptions['env'] = fx.env) => {
    const r = await run(policy, argv, { ...options, env });
    return { ...r, out: r.stdout.toString(), err: r.stderr.toString() };
  };
  return { ...fx, options, exec };
}

describe('unix sockets in granted trees', () => {
  it('a read-only grant of a directory does not let the sandbox connect to a server listening there; its files stay readable', async () => {
    const dir = tempDir('ward-sock-');
    mkdirSync(`${dir}/sub/deeper`, { recursive: true });
    writeFileSync(`${dir}/sub/notes.txt`, 'USABLE\n');
    await serve(`${dir}/daemon.sock`, 'HOST-SERVER');
    await serve(`${dir}/sub/deeper/bus`, 'HOST-SERVER');
    const t = setup({ policy: { extends: ['minimal'], filesystem: { read: [dir] } } });
    const r = await t.exec(['sh', '-c', `cat ${dir}/sub/notes.txt; python3 -c '${CONNECT}' ${dir}/daemon.sock ${dir}/sub/deeper/bus`]);
    assert.equal(r.exitCode, 0, r.err);
    assert.match(r.out, /USABLE/);
    assert.doesNotMatch(r.out, /HOST-SERVER/);
    assert.equal((r.out.match(/refused EACCES/g) ?? []).length, 2, r.out);
  });

  it('nor a writable grant (the workspace), and the socket cannot be moved out from under its mask', async () => {
    const t = setup({ profile: 'default' }, true);
    mkdirSync(`${t.ws}/run`);
    await serve(`${t.ws}/run/db.sock`, 'HOST-SERVER');
    const r = await t.exec(['sh', '-c', `mv run moved; mv run/db.sock x.sock; python3 -c '${CONNECT}' run/db.sock moved/db.sock x.sock`]);
    assert.doesNotMatch(r.out, /HOST-SERVER/);
    assert.match(r.out, /run\/db.sock refused EACCES/);
    assert.match(r.err, /Device or resource busy|Read-only/);
  });

  it('an ssh-agent in a granted /tmp-like directory signs nothing for the sandbox', async (ctx) => {
    if (!which('ssh-agent') || !which('ssh-keygen')) return ctx.skip('openssh-client is not installed');
    const tmp = tempDir('ward-tmp-');
    const agentDir = `${tmp}/ssh-XXXXabcd`;
    mkdirSync(agentDir, { mode: 0o700 });
    const sock = `${agentDir}/agent.1234`;
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: ['ignore', 'pipe', 'inherit'] });
    after(() => agent.kill());
    // -D prints the environment lines once the socket is listening.
    await new Promise<void>((resolve) => agent.stdout.once('data', () => resolve()));
    const key = `${tempDir('ward-key-')}/id`;
    assert.equal(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'AGENT-KEY', '-f', key]).status, 0);
    const added = spawnSync('ssh-add', ['-q', key], { env: { ...process.env, SSH_AUTH_SOCK: sock } });
    assert.equal(added.status, 0, added.stderr.toString());
    assert.match(spawnSync('ssh-add', ['-L'], { env: { ...process.env, SSH_AUTH_SOCK: sock }, encoding: 'utf8' }).stdout, /AGENT-KEY/);

    const t = setup({ policy: { extends: ['minimal'], filesystem: { read: [tmp] } } });
    // The sandbox is not told where the agent is (env.pass does not carry SSH_AUTH_SOCK): it looks, as an attacker would.
    const r = await t.exec(['sh', '-c', `ls -d ${tmp}/ssh-*/agent.*; SSH_AUTH_SOCK=$(ls -d ${tmp}/ssh-*/agent.* | head -1) ssh-add -L; echo rc=$?`], { ...t.env, SSH_AUTH_SOCK: undefined });
    assert.match(r.out, /agent\.1234/, 'the node is visible (the grant holds)');
    assert.doesNotMatch(r.out, /AGENT-KEY|ssh-ed25519/);
    assert.match(r.out, /rc=2/, r.out + r.err); // ssh-add: could not open a connection to the agent
  });

  it("the caller's own agent is hidden whole: the directory of $SSH_AUTH_SOCK is a mandatory deny", async () => {
    const tmp = tempDir('ward-tmp-');
    mkdirSync(`${tmp}/agent-dir`);
    writeFileSync(`${tmp}/agent-dir/other`, 'x\n');
    await serve(`${tmp}/agent-dir/agent.sock`, 'HOST-AGENT');
    const t = setup({ policy: { extends: ['minimal'], filesystem: { read: [tmp] } } });
    const plan = compile({ policy: { extends: ['minimal'], filesystem: { read: [tmp] } } }, { workspace: t.ws, env: { ...t.env, SSH_AUTH_SOCK: `${tmp}/agent-dir/agent.sock` } });
    assert.ok(plan.mounts.ops.some((o) => o.kind === 'mask-dir' && o.dest === `${tmp}/agent-dir`));
    const r = await t.exec(['sh', '-c', `ls ${tmp}/agent-dir; python3 -c '${CONNECT}' ${tmp}/agent-dir/agent.sock`], { ...t.env, SSH_AUTH_SOCK: `${tmp}/agent-dir/agent.sock` });
    assert.doesNotMatch(r.out, /HOST-AGENT|other/);
    assert.match(r.err, /Permission denied/);
  });

  it('a socket granted by its own path stays reachable, with a note', async () => {
    const dir = tempDir('ward-sock-');
    await serve(`${dir}/app.sock`, 'GRANTED-SERVER');
    await serve(`${dir}/other.sock`, 'HOST-SERVER');
    const policy = { policy: { extends: ['minimal'], filesystem: { read: [dir], write: [`${dir}/app.sock`] } } };
    const t = setup(policy);
    const plan = compile(policy, { workspace: t.ws, env: t.env });
    assert.match(plan.notes.join('\n'), /app\.sock is a unix socket granted by name: the command can connect to it/);
    const r = await t.exec(['python3', '-c', CONNECT, `${dir}/app.sock`, `${dir}/other.sock`]);
    assert.match(r.out, /app\.sock answered GRANTED-SERVER/);
    assert.match(r.out, /other\.sock refused EACCES/);
  });

  it("as root, a socket in another user's private directory needs no mask (neither bwrap nor the command can reach it) and the run starts", async (ctx) => {
    if (!isRoot) return ctx.skip('only root can make a directory of another user');
    const uid = Number(spawnSync('id', ['-u', 'wardtest'], { encoding: 'utf8' }).stdout.trim());
    if (!Number.isInteger(uid) || uid <= 0) return ctx.skip('no user wardtest here');
    const dir = tempDir('ward-sock-');
    mkdirSync(`${dir}/user`);
    await serve(`${dir}/user/bus`, 'USER-SERVER');
    chownSync(`${dir}/user`, uid, uid);
    chmodSync(`${dir}/user`, 0o700);
    const t = setup({ policy: { extends: ['minimal'], filesystem: { read: [dir] } } });
    const r = await t.exec(['python3', '-c', CONNECT, `${dir}/user/bus`]);
    assert.equal(r.exitCode, 0, r.err);
    assert.match(r.out, /bus refused EACCES/);
  });
});

describe('unix sockets not at the name they were bound by', () => {
  it('linked or renamed into place, bound by a relative name, or in a directory whose name holds a newline: none is reached through a grant', async () => {
    const dir = homeDir();
    mkdirSync(`${dir}/ssh`);
    mkdirSync(`${dir}/nl\ndir`);
    const socks = [`${dir}/ssh/cm-link`, `${dir}/ssh/cm-rename`, `${dir}/ssh/rel.sock`, `${dir}/nl\ndir/s.sock`];
    await Promise.all([daemon('link', socks[0]!), daemon('rename', socks[1]!), daemon('relative', socks[2]!), daemon('direct', socks[3]!)]);
    writeFileSync(`${dir}/ssh/config`, 'USABLE\n');
    const t = setup({ policy: { extends: ['minimal'], filesystem: { read: [dir] } } });
    const r = await t.exec(['python3', '-c', `${CONNECT}\nprint(open(${JSON.stringify(`${dir}/ssh/config`)}).read())`, ...socks]);
    assert.equal(r.exitCode, 0, r.err);
    assert.doesNotMatch(r.out, /HOST-SERVER/);
    assert.equal((r.out.match(/refused EACCES/g) ?? []).length, 4, r.out);
    assert.match(r.out, /USABLE/);
  });

  it('a real `git credential-cache` on a socket path over 107 bytes (bound by a relative name) hands the sandbox no password', async (ctx) => {
    if (!which('git')) return ctx.skip('git is not installed');
    const dir = homeDir();
    const sockDir = path.join(dir, 'cache', 'c'.repeat(60), 'g'.repeat(40));
    mkdirSync(sockDir, { recursive: true, mode: 0o700 });
    const sock = path.join(sockDir, 'socket');
    assert.ok(Buffer.byteLength(sock) > 107);
    const cache = (op: string, input: string) =>
      spawnSync('git', ['credential-cache', '--timeout', '120', '--socket', sock, op], { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'], timeout: 30_000 });
    // Stopped before the directory goes: a daemon left listening by a relative name would make every
    // other Ward planning on this host search for it.
    try {
      assert.equal(cache('store', 'protocol=https\nhost=example.com\nusername=u\npassword=ghp_REALTOKEN123\n\n').status, 0);
      assert.match(cache('get', 'protocol=https\nhost=example.com\n\n').stdout, /ghp_REALTOKEN123/, 'the cache holds it for the host');
      const t = setup({ policy: { extends: ['minimal'], filesystem: { read: [dir] } } });
      // git connects as it binds, from the socket's directory by the basename (python cannot: the path is too long).
      const r = await t.exec(['sh', '-c', `printf 'protocol=https\\nhost=example.com\\n\\n' | git credential-cache --socket '${sock}' get; echo rc=$?`]);
      assert.doesNotMatch(r.out, /ghp_REALTOKEN123/);
      assert.match(r.err, /unable to connect to cache daemon: Permission denied/, r.out + r.err);
    } finally {
      cache('exit', '');
    }
  });
});

describe('symlinks out of a denied directory', () => {
  it('a stow-style ~/.ssh/id_rsa link: its target is hidden under a grant of ~, the rest of the dotfiles stay readable', async () => {
    const t = setup({ policy: { extends: ['default'], filesystem: { read: ['~'] } } }, true);
    mkdirSync(`${t.home}/dotfiles/ssh/.ssh`, { recursive: true });
    mkdirSync(`${t.home}/dotfiles/git`, { recursive: true });
    mkdirSync(`${t.home}/.ssh`);
    writeFileSync(`${t.home}/dotfiles/ssh/.ssh/id_rsa`, 'STOWED-PRIVATE-KEY\n');
    writeFileSync(`${t.home}/dotfiles/git/.gitconfig`, '[user]\n  name = USABLE\n');
    symlinkSync('../dotfiles/ssh/.ssh/id_rsa', `${t.home}/.ssh/id_rsa`);
    symlinkSync('dotfiles/git/.gitconfig', `${t.home}/.gitconfig`);
    const r = await t.exec(['sh', '-c', 'cat ~/dotfiles/ssh/.ssh/id_rsa; cat ~/.ssh/id_rsa; cat ~/.gitconfig']);
    assert.doesNotMatch(r.out, /STOWED-PRIVATE-KEY/);
    assert.match(r.out, /USABLE/);
    assert.match(r.err, /dotfiles\/ssh\/\.ssh\/id_rsa: Permission denied/);
  });

  it('a denied file that is a symlink is denied at its real path', async () => {
    const t = setup({ policy: { extends: ['default'], filesystem: { read: ['~'] } } }, true);
    mkdirSync(`${t.home}/dotfiles`);
    writeFileSync(`${t.home}/dotfiles/netrc`, 'machine x password STOWED-NETRC\n');
    symlinkSync('dotfiles/netrc', `${t.home}/.netrc`);
    const r = await t.exec(['sh', '-c', 'cat ~/dotfiles/netrc; cat ~/.netrc']);
    assert.doesNotMatch(r.out, /STOWED-NETRC/);
    assert.equal((r.err.match(/Permission denied/g) ?? []).length, 2, r.err);
  });
});
