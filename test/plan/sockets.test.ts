import assert from 'node:assert/strict';
import { linkSync, mkdirSync, renameSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { PolicyError } from '../../src/errors.js';
import { mountContext } from '../../src/plan/compile.js';
import { planMounts } from '../../src/plan/mounts.js';
import { boundSocketPaths, boundSockets, nodeId, planSockets, SOCKET_WALK } from '../../src/plan/sockets.js';
import { loadPolicyObject } from '../../src/policy/load.js';
import { socketPlaces } from '../../src/policy/secrets.js';
import { policyError, tempDir } from '../helpers.js';

const servers: Server[] = [];

/** A server listening at `file` (here, in this process). */
async function listen(file: string): Promise<Server> {
  const s = createServer();
  servers.push(s);
  await new Promise<void>((r) => s.listen(file, r));
  return s;
}

/** What planSockets masks in `dir` (a tree outside every socket area) with this namespace's sockets. */
function masksIn(dir: string, extra: Partial<Parameters<typeof planSockets>[0]> = {}) {
  return planSockets({ roots: [dir], hidden: [], granted: new Set(), areas: [], bound: boundSockets().sockets, ...extra });
}
after(() => {
  for (const s of servers) s.close();
});

function plan(policy: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) {
  const home = tempDir('ward-home-');
  const e = { HOME: home, ...env };
  const p = loadPolicyObject(policy, { workspace: home, home, env: e });
  return planMounts(p.effective, mountContext(p, { home, env: e }));
}

describe('socket plan', () => {
  it('reads the paths of /proc/net/unix (spaces kept, abstract and unnamed sockets left out)', () => {
    const text = [
      'Num       RefCount Protocol Flags    Type St Inode Path',
      '0000000000000000: 00000002 00000000 00010000 0001 01 21893 /run/systemd/private',
      '0000000000000000: 00000002 00000000 00010000 0001 01 21894 @/tmp/.X11-unix/X0',
      '0000000000000000: 00000003 00000000 00000000 0001 03 21895',
      '0000000000000000: 00000002 00000000 00010000 0001 01 21896 /tmp/a dir/s.sock',
    ].join('\n');
    assert.deepEqual(boundSocketPaths(text), ['/run/systemd/private', '/tmp/a dir/s.sock']);
  });

  it('a listening socket outside the socket areas is found through /proc/net/unix, and one granted by name is kept', async () => {
    const dir = tempDir('ward-sock-');
    const s = createServer();
    servers.push(s);
    await new Promise<void>((r) => s.listen(`${dir}/x.sock`, r));
    // The tree is not in an area here (areas: none), so only /proc/net/unix can find the socket.
    const p = planSockets({ roots: [dir], hidden: [], granted: new Set(), areas: [], bound: boundSocketPaths().map((name) => ({ name })) });
    assert.deepEqual(p.masks, [`${dir}/x.sock`]);
    const g = planSockets({ roots: [dir], hidden: [], granted: new Set([`${dir}/x.sock`]), areas: [], bound: boundSocketPaths().map((name) => ({ name })) });
    assert.deepEqual([g.masks, g.granted], [[], [`${dir}/x.sock`]]);
    assert.deepEqual(planSockets({ roots: [dir], hidden: [dir], granted: new Set(), areas: [], bound: boundSocketPaths().map((name) => ({ name })) }).masks, []);
  });

  it('a path with a newline in /proc/net/unix is one name, not a name and a bogus line', () => {
    const text = ['Num       RefCount Protocol Flags    Type St Inode Path', '0000000000000000: 00000002 00000000 00010000 0001 01 21893 /home/u/a', 'dir/s.sock', '0000000000000000: 00000002 00000000 00010000 0001 01 21894 rel.sock', ''].join('\n');
    assert.deepEqual(boundSocketPaths(text), ['/home/u/a\ndir/s.sock', 'rel.sock']);
  });

  it('sock_diag gives each socket its node: the name it was bound by, with the node it names', async () => {
    const dir = tempDir('ward-sock-');
    await listen(`${dir}/x.sock`);
    const b = boundSockets();
    assert.equal(b.why, undefined, `sock_diag: ${b.why}`);
    assert.deepEqual(
      b.sockets.filter((s) => s.name === `${dir}/x.sock`).map((s) => s.node),
      [nodeId(`${dir}/x.sock`)],
    );
  });

  it('a socket linked or renamed into place after its bind (OpenSSH ControlMaster) is masked at its new name', async () => {
    const dir = tempDir('ward-sock-');
    // ControlMaster: bind a temporary name, link it to the ControlPath, unlink the temporary one.
    await listen(`${dir}/cm.sock.Xy12`);
    linkSync(`${dir}/cm.sock.Xy12`, `${dir}/cm.sock`);
    unlinkSync(`${dir}/cm.sock.Xy12`);
    await listen(`${dir}/r.sock.tmp`);
    renameSync(`${dir}/r.sock.tmp`, `${dir}/r.sock`);
    assert.deepEqual(masksIn(dir).masks, [`${dir}/cm.sock`, `${dir}/r.sock`]);
  });

  it('a socket bound in a directory whose name holds a newline is masked', async () => {
    const dir = tempDir('ward-sock-');
    mkdirSync(`${dir}/a\nb`);
    await listen(`${dir}/a\nb/s.sock`);
    assert.deepEqual(masksIn(dir).masks, [`${dir}/a\nb/s.sock`]);
  });

  it('a socket bound by a relative name is found by its node in the bound trees; one moved to another directory after its bind is not looked for (as one whose file was removed)', async (ctx) => {
    const dir = tempDir('ward-sock-');
    mkdirSync(`${dir}/a/b/c`, { recursive: true });
    mkdirSync(`${dir}/elsewhere`);
    const moved = await listen(`${dir}/elsewhere/moved.sock`);
    // Closed when the test ends: while it listens, every other Ward planning on this host must search for it too.
    ctx.after(() => void moved.close());
    renameSync(`${dir}/elsewhere/moved.sock`, `${dir}/a/b/c/moved.sock`);
    // A relative name (a path over 107 bytes forces one: `git credential-cache` chdirs and binds the basename).
    const node = nodeId(`${dir}/a/b/c/moved.sock`)!;
    const rel = { name: 'moved.sock', node, inode: 1 };
    assert.deepEqual(masksIn(dir, { bound: [rel] }).masks, [`${dir}/a/b/c/moved.sock`]);
    // By its absolute name, gone from there and from its directory: a documented gap (a removed
    // file, far more common, must not send every launch searching the grants).
    assert.deepEqual(masksIn(dir, { bound: [{ name: `${dir}/elsewhere/moved.sock`, node, inode: 1 }] }).masks, []);
    // Hidden, it is not reachable: nothing to mask, and the search ends without finding it.
    assert.deepEqual(masksIn(dir, { bound: [rel], hidden: [`${dir}/a/b`] }), { masks: [], granted: [], stale: [] });
  });

  it('a moved socket the search cannot finish looking for refuses the plan, naming it and the fix', async (ctx) => {
    const dir = tempDir('ward-sock-');
    const gone = await listen(`${dir}/gone.sock`);
    ctx.after(() => void gone.close());
    const node = nodeId(`${dir}/gone.sock`)!;
    unlinkSync(`${dir}/gone.sock`); // listening still, its node nowhere: only a whole search can tell
    const deep = tempDir('ward-deep-');
    mkdirSync(path.join(deep, ...Array.from({ length: SOCKET_WALK.depth + 1 }, (_, i) => `d${i}`)), { recursive: true });
    const p = masksIn(deep, { bound: [{ name: 'gone.sock', node, inode: 7 }] });
    assert.equal(p.lost?.root, deep);
    assert.match(p.lost?.stopped ?? '', /levels deep/);
    // A tree it can finish: not found anywhere there, so nothing is reachable and the plan goes on.
    assert.equal(masksIn(dir, { bound: [{ name: 'gone.sock', node, inode: 7 }] }).lost, undefined);
    // Through the planner (this namespace's real sockets): a server bound by a relative name
    // (as `git credential-cache` binds a long path) is searched for, and the plan refused with the fix.
    const cwd = process.cwd();
    process.chdir(dir);
    let rel: Server;
    try {
      rel = await listen('rel.sock');
    } finally {
      process.chdir(cwd);
    }
    ctx.after(() => void rel.close());
    const home = deep;
    const e = policyError(() => {
      const pol = loadPolicyObject({ filesystem: { read: [deep] } }, { workspace: home, home, env: { HOME: home } });
      const ctx = mountContext(pol, { home, env: { HOME: home } });
      // The tree is in /tmp here, a socket area: for the search to be what stops, it must not be one.
      planMounts(pol.effective, { ...ctx, socketAreas: [] });
    });
    assert.match(e.message, /no longer at that name/);
    assert.match(e.message, /socket inode \d+/);
    assert.match(e.fix ?? '', /grant only the subdirectories/);
  });

  it('a hard link to a file inside a denied directory is noted, and so is where the symlink check stopped going deeper', () => {
    const home = tempDir('ward-home-');
    mkdirSync(`${home}/.ssh/a/b/c/d/e/f/g/h/i`, { recursive: true });
    mkdirSync(`${home}/backup`);
    writeFileSync(`${home}/.ssh/id_rsa`, 'KEY\n');
    linkSync(`${home}/.ssh/id_rsa`, `${home}/backup/id_rsa_old`);
    writeFileSync(`${home}/dotkey`, 'KEY2\n');
    symlinkSync(`${home}/dotkey`, `${home}/.ssh/a/b/c/d/e/f/g/h/i/deep`);
    const p = loadPolicyObject({ filesystem: { read: [home] } }, { workspace: home, home, env: { HOME: home } });
    const notes = planMounts(p.effective, mountContext(p, { home, env: { HOME: home } })).notes.join('\n');
    assert.match(notes, new RegExp(`denied ${home}/\\.ssh/id_rsa has 2 hard links`));
    assert.match(notes, new RegExp(`denied ${home}/\\.ssh: directories more than \\d+ levels down \\(${home}/\\.ssh/a/b/c/d/e/f/g/h\\) were not checked`));
  });

  it('refuses a grant in a socket area too deep to walk whole, naming the fix', () => {
    const dir = tempDir('ward-deep-');
    mkdirSync(path.join(dir, ...Array.from({ length: SOCKET_WALK.depth + 1 }, (_, i) => `d${i}`)), { recursive: true });
    assert.throws(
      () => plan({ filesystem: { read: [dir] } }), // tempDir is in /tmp, a socket area
      (e: unknown) => e instanceof PolicyError && /place where unix sockets live/.test(e.message) && /levels deep/.test(e.message) && /grant only the subdirectories/.test(e.fix ?? ''),
    );
  });

  it("the caller's socket places are mandatory denies: $XDG_RUNTIME_DIR, and the directories of $SSH_AUTH_SOCK and the session bus, never a shared one", () => {
    assert.deepEqual(socketPlaces({ XDG_RUNTIME_DIR: '/run/user/1000/', SSH_AUTH_SOCK: '/tmp/ssh-Ab12/agent.99', DBUS_SESSION_BUS_ADDRESS: 'unix:path=/srv/u/bus,guid=1' }, '/home/u'), ['/run/user/1000', '/tmp/ssh-Ab12', '/srv/u']);
    // A socket straight in /tmp (or in the home itself) is denied alone, never its directory; a relative value names nothing.
    assert.deepEqual(socketPlaces({ XDG_RUNTIME_DIR: 'run', SSH_AUTH_SOCK: '/tmp/agent.sock', DBUS_SESSION_BUS_ADDRESS: 'unix:path=/home/u/bus' }, '/home/u'), ['/tmp/agent.sock', '/home/u/bus']);
    assert.deepEqual(socketPlaces({ XDG_RUNTIME_DIR: '/tmp' }, '/home/u'), []);
    const home = tempDir('ward-home-');
    const p = loadPolicyObject({}, { workspace: home, home, env: { HOME: home, XDG_RUNTIME_DIR: '/run/user/4242' } });
    assert.ok(p.effective.filesystem.deny.some((d) => d.path === '/run/user/4242' && d.optional));
    assert.ok(p.effective.filesystem.deny.some((d) => d.path === '/run/systemd'));
  });
});
