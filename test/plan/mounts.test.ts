import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync, linkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { PolicyError } from '../../src/errors.js';
import { isWithin } from '../../src/policy/expand.js';
import { policyError } from '../helpers.js';
import { loadPolicyObject } from '../../src/policy/load.js';
import { planMounts, type MountOp } from '../../src/plan/mounts.js';
import { mountContext } from '../../src/plan/compile.js';
import { aliasesOf, identityOf, mountAt, parseMountinfo } from '../../src/plan/aliases.js';
import { accountHome } from '../../src/paths.js';
import { hostMountPointsMissing } from '../../src/sandbox/bwrap.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'ward-mounts-'));
const ws = path.join(root, 'ws');
const home = path.join(root, 'home');
for (const d of [ws, `${ws}/src`, `${ws}/secrets/sub`, home, `${home}/.ssh`, `${root}/data`]) mkdirSync(d, { recursive: true });
writeFileSync(`${ws}/.env`, 'K=V\n');
writeFileSync(`${home}/.ssh/id_ed25519`, 'key\n');
writeFileSync(`${root}/data/file`, 'x\n');
symlinkSync(`${root}/data`, `${home}/datalink`);
symlinkSync(`${home}/.ssh`, `${ws}/sshlink`);
symlinkSync(`${ws}/nowhere`, `${ws}/dangling`);

function plan(policy: Record<string, unknown>) {
  const p = loadPolicyObject(policy, { workspace: ws, home, env: { HOME: home } });
  return planMounts(p.effective, mountContext(p, { home, env: { HOME: home } }));
}
const find = (ops: MountOp[], kind: MountOp['kind'], dest: string) => ops.find((o) => o.kind === kind && o.dest === dest);

describe('mount plan', () => {
  it('binds grants at their real paths, read-only unless writable, and starts in the workspace', () => {
    const m = plan({ filesystem: { read: ['/usr'], write: ['${WORKSPACE}'] } });
    assert.deepEqual(find(m.ops, 'bind', '/usr'), { kind: 'bind', src: '/usr', dest: '/usr', writable: false });
    assert.deepEqual(find(m.ops, 'bind', ws), { kind: 'bind', src: ws, dest: ws, writable: true });
    assert.equal(m.cwd, ws);
    assert.ok(find(m.ops, 'tmpfs', '/tmp') && find(m.ops, 'tmpfs', home), 'private /tmp and $HOME');
  });

  it('masks a denied file inside a grant (deny wins) and drops grants inside a deny', () => {
    const m = plan({ filesystem: { write: ['${WORKSPACE}', '${WORKSPACE}/secrets/sub'], deny: ['${WORKSPACE}/.env', '${WORKSPACE}/secrets'] } });
    assert.ok(find(m.ops, 'mask-file', `${ws}/.env`));
    assert.ok(find(m.ops, 'mask-dir', `${ws}/secrets`));
    assert.ok(!m.ops.some((o) => o.kind === 'bind' && o.dest.startsWith(`${ws}/secrets`)));
  });

  it('follows symlinks: a grant through a link binds the target and recreates the link', () => {
    const m = plan({ filesystem: { read: ['~/datalink'] } });
    assert.ok(find(m.ops, 'bind', `${root}/data`));
    assert.deepEqual(find(m.ops, 'symlink', `${home}/datalink`), { kind: 'symlink', target: `${root}/data`, dest: `${home}/datalink` });
  });

  it('a symlink in a grant that points at a secret does not expose it: the secret is masked at its real path', () => {
    const m = plan({ filesystem: { read: ['${WORKSPACE}/sshlink'] } });
    // ~/.ssh is a mandatory deny, so the grant through the link is dropped.
    assert.ok(!m.ops.some((o) => o.kind === 'bind' && o.dest.startsWith(`${home}/.ssh`)));
    assert.match(m.notes.join('\n'), /inside denied .*\.ssh.*dropped/);
  });

  it('masks mandatory secrets when a broad grant would expose them', () => {
    const m = plan({ filesystem: { read: ['~'] } });
    assert.ok(find(m.ops, 'bind', home));
    assert.ok(find(m.ops, 'mask-dir', `${home}/.ssh`));
  });

  it('skips child binds already covered with the same rights, keeps narrower rw binds', () => {
    const m = plan({ filesystem: { write: ['${WORKSPACE}'], read: ['${WORKSPACE}/src', '/usr'], execute: ['/usr/bin'] } });
    assert.ok(!find(m.ops, 'bind', `${ws}/src`), 'covered by the rw workspace bind');
    assert.ok(!find(m.ops, 'bind', '/usr/bin'), 'covered by /usr');
    const m2 = plan({ filesystem: { read: ['${WORKSPACE}'], write: ['${WORKSPACE}/src'] } });
    assert.ok(find(m2.ops, 'bind', `${ws}/src`));
  });

  it('orders operations parents first, masks after the binds they sit in', () => {
    const m = plan({ filesystem: { read: ['~'], write: ['${WORKSPACE}'], deny: ['${WORKSPACE}/.env'] } });
    const idx = (k: MountOp['kind'], d: string) => m.ops.findIndex((o) => o.kind === k && o.dest === d);
    assert.ok(idx('bind', home) < idx('mask-dir', `${home}/.ssh`));
    assert.ok(idx('bind', ws) < idx('mask-file', `${ws}/.env`));
    assert.deepEqual(new Set(m.ops.slice(0, 2).map((o) => o.kind)), new Set(['proc', 'dev']));
  });

  it('derives Landlock rules from the same grants', () => {
    const m = plan({ filesystem: { read: ['/usr'], execute: ['/usr/bin'], write: ['${WORKSPACE}'] } });
    assert.deepEqual(m.landlock.find((r) => r.path === '/usr'), { path: '/usr', rights: 'r' });
    assert.deepEqual(m.landlock.find((r) => r.path === '/usr/bin'), { path: '/usr/bin', rights: 'rx' });
    assert.deepEqual(m.landlock.find((r) => r.path === ws), { path: ws, rights: 'rw' });
  });

  it('refuses a required path that does not exist, skips an optional one', () => {
    assert.throws(() => plan({ filesystem: { read: ['/nonexistent-ward-path'] } }), (e: unknown) => e instanceof PolicyError && /does not exist/.test(e.message) && /optional: true/.test(e.fix ?? ''));
    const m = plan({ filesystem: { read: [{ path: '/nonexistent-ward-path', optional: true }] } });
    assert.ok(!m.ops.some((o) => o.dest === '/nonexistent-ward-path'));
  });

  it('notes what the static tier enforces more strictly than asked, and hard links', () => {
    linkSync(`${ws}/.env`, `${ws}/env-hardlink`);
    const m = plan({ filesystem: { write: ['${WORKSPACE}'], append: ['${WORKSPACE}/src'], deny: ['${WORKSPACE}/.env'] } });
    assert.match(m.notes.join('\n'), /append-only .* supervised/);
    assert.match(m.notes.join('\n'), /hard links/);
  });

  it('refuses a grant of / (or anything containing /proc, /dev, /sys), in every list, however it is written', () => {
    // A bind of / is mounted before (so over) the sandbox's own /proc and /dev: the host's would show.
    symlinkSync('/', `${root}/rootlink`);
    for (const key of ['read', 'write', 'execute', 'append', 'visible']) {
      for (const entry of ['/', '/**', `${root}/rootlink`, { path: '/', optional: true }]) {
        assert.throws(
          () => plan({ filesystem: { [key]: [entry] } }),
          (e: unknown) => e instanceof PolicyError && e.keyPath === `filesystem.${key}[0]` && /contains \/(proc|dev|sys)/.test(e.message) && /\/usr, \/etc, \/opt/.test(e.fix ?? ''),
          `${key}: ${JSON.stringify(entry)}`,
        );
      }
    }
  });

  it('a writable grant that is or contains $HOME is refused, naming the grant and the fix; a read-only grant of ~ is not', () => {
    // The workspace defaults to the current directory: `ward run` started from ~.
    const inHome = loadPolicyObject({ extends: ['default'] }, { workspace: home, home, env: { HOME: home } });
    const e = policyError(() => planMounts(inHome.effective, mountContext(inHome, { home, env: { HOME: home } })));
    assert.equal(e.message, `policy error in profile:default at filesystem.write[0]: the workspace ${home} is writable and is your home directory ${home}: a sandboxed command could rewrite ~/.bashrc, ~/.profile, systemd user units and other files that later run outside the sandbox, and Ward's own keys, audit log and launcher`);
    assert.match(e.fix!, /use a project directory as the workspace: `ward run --workspace DIR`, or cd into it first/);
    for (const grant of ['~', root]) {
      for (const key of ['write', 'append'] as const) {
        if (key === 'append' && grant === root) continue; // append is for files
        const g = policyError(() => plan({ filesystem: { [key]: [grant] } }));
        assert.equal(g.keyPath, `filesystem.${key}[0]`);
        assert.match(g.message, new RegExp(`filesystem\\.${key} ${grant === '~' ? home : root} is writable and ${grant === '~' ? 'is' : 'contains'} your home directory ${home}: a sandboxed command could rewrite ~/\\.bashrc`));
        assert.match(g.fix!, /grant write only on the directories the command must change \(e\.g\. the project\)/);
      }
    }
    assert.ok(find(plan({ filesystem: { read: ['~'] } }).ops, 'bind', home), 'reading ~ stays allowed (its secrets are masked)');
  });

  it("a writable grant that contains one of Ward's own directories is refused, wherever XDG_*_HOME puts it", () => {
    for (const name of ['XDG_STATE_HOME', 'XDG_CONFIG_HOME', 'XDG_CACHE_HOME']) {
      const env = { HOME: home, [name]: `${ws}/.xdg-${name}` };
      const p = loadPolicyObject({ filesystem: { write: ['${WORKSPACE}'] } }, { workspace: ws, home, env });
      const e = policyError(() => planMounts(p.effective, mountContext(p, { home, env })));
      assert.match(e.message, new RegExp(`the workspace ${ws} is writable and contains Ward's own directory ${ws}/\\.xdg-${name}/ward: a sandboxed command could plant what a later run executes on the host \\(the launcher\\)`), name);
      assert.match(e.fix!, /--workspace DIR.*or point XDG_STATE_HOME, XDG_CONFIG_HOME or XDG_CACHE_HOME .* outside that grant/);
    }
    // Made before planning, so their mandatory deny (required, not optional) always finds them.
    const fresh = `${root}/fresh-home`;
    mkdirSync(fresh);
    const p = loadPolicyObject({ filesystem: { read: ['~'] } }, { workspace: ws, home: fresh, env: { HOME: fresh } });
    const m = planMounts(p.effective, mountContext(p, { home: fresh, env: { HOME: fresh } }));
    for (const d of ['.local/state/ward', '.config/ward', '.cache/ward']) {
      assert.ok(find(m.ops, 'mask-dir', `${fresh}/${d}`), `${d} is masked on the first run too`);
      assert.ok(!p.effective.filesystem.deny.find((x) => x.path === `${fresh}/${d}`)!.optional, `${d} is a required deny`);
    }
  });

  it('a grant through a symlink inside a writable grant is refused, optional entries too, naming the link, its target and the fix', () => {
    const w = `${root}/wr`;
    mkdirSync(`${w}/inner`, { recursive: true });
    symlinkSync(`${root}/data`, `${w}/.pyenv`);
    symlinkSync(`${w}/inner`, `${w}/here`);
    for (const entry of [`${w}/.pyenv`, { path: `${w}/.pyenv`, optional: true as const }, `${w}/.pyenv/file`]) {
      for (const key of ['read', 'execute', 'write'] as const) {
        const e = policyError(() => plan({ filesystem: key === 'write' ? { write: [w, entry] } : { write: [w], [key]: [entry] } }));
        const literal = typeof entry === 'string' ? entry : entry.path;
        assert.match(e.message, new RegExp(`${literal} goes through the symlink ${w}/\\.pyenv -> ${root}/data, which lies inside the writable grant ${w}: a sandboxed command could have made that link`), `${key} ${JSON.stringify(entry)}`);
        assert.match(e.fix!, new RegExp(`remove it \\(\`rm ${w}/\\.pyenv\`\\).*grant the target by its real path \\(${root}/data`));
      }
    }
    // A link that stays inside the writable grant gives nothing the command could not reach already.
    assert.ok(find(plan({ filesystem: { write: [w], execute: [`${w}/here`] } }).ops, 'bind', w));
    // The same link outside any writable grant is the user's own: followed as before.
    assert.ok(find(plan({ filesystem: { read: [`${w}/.pyenv`] } }).ops, 'bind', `${root}/data`));
  });

  it('a deny, visible or append entry through any symlink inside a writable grant is refused, even one pointing inside it; a profile\'s deny is masked with a note', () => {
    const w = `${root}/wr2`;
    mkdirSync(`${w}/vault`, { recursive: true });
    writeFileSync(`${w}/vault/key`, 'k\n');
    symlinkSync('vault', `${w}/.secrets`);
    for (const key of ['deny', 'visible', 'append'] as const) {
      for (const entry of [`${w}/.secrets/key`, { path: `${w}/.secrets/key`, optional: true as const }]) {
        const e = policyError(() => plan({ filesystem: { write: [w], [key]: [entry] } }));
        assert.match(e.message, new RegExp(`${w}/\\.secrets/key goes through the symlink ${w}/\\.secrets -> vault, which lies inside the writable grant ${w}: a sandboxed command can re-aim that link`), `${key} ${JSON.stringify(entry)}`);
        assert.ok(e.fix!.includes(`filesystem.${key}: ["${w}/vault/key"]`) && e.fix!.includes(`\`rm ${w}/.secrets\``), e.fix);
      }
    }
    // Outside every writable grant the link is the user's own: followed as before.
    assert.ok(find(plan({ filesystem: { read: [w], deny: [`${w}/.secrets`] } }).ops, 'mask-dir', `${w}/vault`));
    // Ward's and the profiles' denies are not the user's to rename: masked where the link points, with a note.
    // (a name the default profile does not deny by itself: every top-level .env* is denied directly)
    writeFileSync(`${w}/dev-settings`, 'K=V\n');
    symlinkSync('dev-settings', `${w}/.env`);
    const p = loadPolicyObject({ extends: ['default'] }, { workspace: w, home, env: { HOME: home } });
    const m = planMounts(p.effective, mountContext(p, { home, env: { HOME: home } }));
    assert.ok(find(m.ops, 'mask-file', `${w}/dev-settings`));
    assert.match(m.notes.join('\n'), new RegExp(`denied ${w}/\\.env goes through the symlink ${w}/\\.env -> dev-settings inside the writable grant ${w}: ${w}/dev-settings is masked in this run only`));
    const q = loadPolicyObject({ extends: ['default'], filesystem: { deny: ['${WORKSPACE}/dev-settings'] } }, { workspace: w, home, env: { HOME: home } });
    assert.doesNotMatch(planMounts(q.effective, mountContext(q, { home, env: { HOME: home } })).notes.join('\n'), /in this run only/, 'denied by its real path too: no note');
  });

  it('every directory between a writable bind and a mask inside it is bound onto itself (renaming it would move the secret out from under the mask)', () => {
    mkdirSync(`${ws}/deep/er/gh`, { recursive: true });
    writeFileSync(`${ws}/deep/er/gh/hosts.yml`, 'oauth_token: x\n');
    const m = plan({ filesystem: { write: ['${WORKSPACE}'], deny: ['${WORKSPACE}/deep/er/gh/hosts.yml', '${WORKSPACE}/.env'] } });
    const i = (kind: MountOp['kind'], dest: string) => m.ops.findIndex((o) => o.kind === kind && o.dest === dest);
    for (const d of [`${ws}/deep`, `${ws}/deep/er`, `${ws}/deep/er/gh`]) {
      assert.deepEqual(find(m.ops, 'bind', d), { kind: 'bind', src: d, dest: d, writable: true }, d);
      assert.ok(i('bind', ws) < i('bind', d) && i('bind', d) < i('mask-file', `${ws}/deep/er/gh/hosts.yml`), `${d}: after the workspace, before the mask`);
    }
    assert.equal(m.ops.filter((o) => o.kind === 'bind' && isWithin(o.dest, ws)).length, 4, 'the workspace, and one bind per directory on the way: .env needs none');
    // Under a read-only bind nothing can be renamed: no extra binds.
    const ro = plan({ filesystem: { read: ['${WORKSPACE}'], deny: ['${WORKSPACE}/deep/er/gh/hosts.yml'] } });
    assert.equal(ro.ops.filter((o) => o.kind === 'bind' && isWithin(o.dest, ws)).length, 1);
  });

  it('a workspace of / is refused as such, with the --workspace fix', () => {
    const p = loadPolicyObject({ filesystem: { write: ['${WORKSPACE}'] } }, { workspace: '/', home, env: { HOME: home } });
    assert.throws(() => planMounts(p.effective, mountContext(p, { home, env: { HOME: home } })), (e: unknown) => e instanceof PolicyError && /the workspace \/ contains/.test(e.message) && /--workspace/.test(e.fix ?? ''));
  });

  it('a mount point Ward adds inside a bound host tree must exist there (bwrap would create it on the host)', () => {
    writeFileSync(`${root}/data/present`, '');
    const ops: MountOp[] = [{ kind: 'bind', src: `${root}/data`, dest: `${root}/data`, writable: true }];
    assert.deepEqual(hostMountPointsMissing(ops, [`${root}/data/present`, `${root}/data/absent`, '/.ward/launch']), [{ dest: `${root}/data/absent`, bind: `${root}/data` }]);
    symlinkSync(`${root}/data/nowhere`, `${root}/data/dangling`);
    assert.deepEqual(hostMountPointsMissing(ops, [`${root}/data/dangling`]).map((m) => m.dest), [`${root}/data/dangling`]);
  });

  it('a deny or visible path that does not exist is an error unless optional (nothing would hide it once created); an optional one a writable grant could create is noted', () => {
    for (const key of ['deny', 'visible']) {
      for (const p of ['${WORKSPACE}/nope', '${WORKSPACE}/dangling']) {
        assert.throws(
          () => plan({ filesystem: { write: ['${WORKSPACE}'], [key]: [p] } }),
          (e: unknown) => e instanceof PolicyError && e.keyPath === `filesystem.${key}[0]` && /does not exist: Ward can only hide what is there/.test(e.message) && /optional: true/.test(e.fix ?? ''),
          `${key} ${p}`,
        );
      }
    }
    const m = plan({ filesystem: { write: ['${WORKSPACE}'], deny: [{ path: '${WORKSPACE}/nope', optional: true }] } });
    assert.match(m.notes.join('\n'), new RegExp(`denied ${ws}/nope does not exist now: if the command creates it \\(inside writable ${ws}\\), nothing hides it`));
    // Ward's own optional denies, and the profiles', load anywhere and add no notes of this kind.
    for (const profile of ['minimal', 'node', 'python', 'default']) {
      const empty = mkdtempSync(path.join(os.tmpdir(), 'ward-mounts-empty-'));
      const [ews, ehome] = [`${empty}/ws`, `${empty}/home`];
      for (const d of [ews, ehome]) mkdirSync(d);
      const p = loadPolicyObject({ extends: [profile] }, { workspace: ews, home: ehome, env: { HOME: ehome } });
      const n = planMounts(p.effective, mountContext(p, { home: ehome, env: { HOME: ehome } }));
      assert.doesNotMatch(n.notes.join('\n'), /does not exist now/, profile);
    }
  });
});

describe('other names of a place in the host mount table', () => {
  // id parent major:minor root mount-point options - type source super-options (proc(5)).
  const line = (id: number, parent: number, dev: string, root: string, dest: string, type = 'ext4') => `${id} ${parent} ${dev} ${root} ${dest} rw,relatime - ${type} /dev/x rw`;

  it('a bind mount of a directory shows what lies under it at the mount point; the place itself is not its own alias', () => {
    const t = parseMountinfo([line(1, 0, '8:1', '/', '/'), line(2, 1, '8:1', '/home/u', '/srv/alias')].join('\n'));
    assert.deepEqual(identityOf('/home/u/.ssh', t), { dev: '8:1', path: '/home/u/.ssh' });
    assert.deepEqual(aliasesOf('/home/u/.ssh', t), ['/srv/alias/.ssh']);
    assert.deepEqual(aliasesOf('/home/u', t), ['/srv/alias']);
    assert.deepEqual(aliasesOf('/home/other', t), [], 'outside the bound directory');
    assert.deepEqual(aliasesOf('/srv/alias/.ssh', t), ['/home/u/.ssh'], 'and back');
  });

  it('the fstab layout (/home bound from /data/home) and btrfs subvolumes are known by the filesystem root their mount shows', () => {
    const fstab = parseMountinfo([line(1, 0, '8:1', '/', '/'), line(2, 1, '8:1', '/data/home', '/home')].join('\n'));
    assert.deepEqual(identityOf('/home/u', fstab), { dev: '8:1', path: '/data/home/u' });
    assert.deepEqual(aliasesOf('/home/u/.ssh', fstab), ['/data/home/u/.ssh']);
    // One btrfs: subvolume @ at /, @home at /home, the top level at /mnt/top; all share the superblock's device.
    const btrfs = parseMountinfo([line(1, 0, '0:30', '/@', '/', 'btrfs'), line(2, 1, '0:30', '/@home', '/home', 'btrfs'), line(3, 1, '0:30', '/', '/mnt/top', 'btrfs')].join('\n'));
    assert.deepEqual(aliasesOf('/home/u/.ssh', btrfs), ['/mnt/top/@home/u/.ssh']);
    assert.deepEqual(aliasesOf('/etc/shadow', btrfs), ['/mnt/top/@/etc/shadow']);
  });

  it('an alias covered by a later mount, or on another device, is no alias; stacked mounts count only at the top', () => {
    const covered = parseMountinfo([line(1, 0, '8:1', '/', '/'), line(2, 1, '8:1', '/home', '/srv/alias'), line(3, 2, '0:40', '/', '/srv/alias/u', 'tmpfs')].join('\n'));
    assert.deepEqual(aliasesOf('/home/u/.ssh', covered), [], 'a tmpfs over /srv/alias/u hides the bound home there');
    assert.deepEqual(aliasesOf('/home/v', covered), ['/srv/alias/v']);
    // A second mount stacked on /srv/alias (parent: the first) hides the first.
    const stacked = parseMountinfo([line(1, 0, '8:1', '/', '/'), line(2, 1, '8:1', '/home', '/srv/alias'), line(3, 2, '8:2', '/', '/srv/alias')].join('\n'));
    assert.equal(mountAt('/srv/alias/u', stacked)?.id, '3');
    assert.deepEqual(aliasesOf('/home/u', stacked), []);
    // Names with spaces are octal-escaped in mountinfo.
    const escaped = parseMountinfo([line(1, 0, '8:1', '/', '/'), line(2, 1, '8:1', '/home/u', '/srv/my\\040alias')].join('\n'));
    assert.deepEqual(aliasesOf('/home/u/.ssh', escaped), ['/srv/my alias/.ssh']);
  });

  it("with HOME elsewhere, the account's home gets the mandatory home denies (optional) and Ward's directories there, and a writable grant of it is refused", (t) => {
    const account = accountHome();
    if (account === undefined || account === home || !existsSync(account) || account === '/') return t.skip('this user has no usable home in the password database');
    const p = loadPolicyObject({ filesystem: { write: [account] } }, { workspace: ws, home, env: { HOME: home } });
    const denied = new Map(p.effective.filesystem.deny.map((e) => [e.path, e]));
    for (const d of ['.ssh', '.aws', '.bash_history', '.config/ward', '.local/state/ward', '.cache/ward']) {
      // Ward's directories there are required when they are also this process's own (its HOME is the account's).
      const runnersOwn: boolean = d.endsWith('/ward') && process.env.HOME === account;
      assert.deepEqual(denied.get(path.join(account, d)), { path: path.join(account, d), ...(runnersOwn ? {} : { optional: true }) }, d);
      assert.equal(p.origins.get(`deny\0${path.join(account, d)}`)?.file, 'ward:mandatory-deny');
    }
    assert.ok(denied.has(`${home}/.ssh`), "HOME's as before");
    const e = policyError(() => planMounts(p.effective, mountContext(p, { home, env: { HOME: home } })));
    assert.match(e.message, new RegExp(`filesystem\\.write ${account} is writable and is your home directory ${account}:`));
  });
});
