import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { PolicyError } from '../../src/errors.js';
import { mountContext } from '../../src/plan/compile.js';
import { planMounts } from '../../src/plan/mounts.js';
import { boundSocketPaths, planSockets, SOCKET_WALK } from '../../src/plan/sockets.js';
import { loadPolicyObject } from '../../src/policy/load.js';
import { socketPlaces } from '../../src/policy/secrets.js';
import { tempDir } from '../helpers.js';

const servers: Server[] = [];
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
    const p = planSockets({ roots: [dir], hidden: [], granted: new Set(), areas: [], bound: boundSocketPaths() });
    assert.deepEqual(p.masks, [`${dir}/x.sock`]);
    const g = planSockets({ roots: [dir], hidden: [], granted: new Set([`${dir}/x.sock`]), areas: [], bound: boundSocketPaths() });
    assert.deepEqual([g.masks, g.granted], [[], [`${dir}/x.sock`]]);
    assert.deepEqual(planSockets({ roots: [dir], hidden: [dir], granted: new Set(), areas: [], bound: boundSocketPaths() }).masks, []);
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
