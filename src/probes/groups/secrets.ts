/**
 * Secrets never enter the sandbox: not through the environment (the caller's
 * holds secret-looking variables whose values carry the canary), not through
 * another process's /proc/PID/environ (pid 1 is bwrap; the supervisor is on the
 * host, out of the pid namespace), not through secret files in the workspace
 * (masked), not through Ward's own state (keys, audit log), and not through the
 * launcher's status channel, which pid 1 still holds.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { accountHome } from '../../paths.js';
import { wardStatePaths } from '../../policy/secrets.js';
import { FAKE_WARD_STATE, SECRET_ENV_NAMES, WORKSPACE_SECRETS } from '../fixtures.js';
import { broken, E, errnoName, expectErrno, held, kv, noResult, py, verdictFromErrnos } from '../lib.js';
import type { Probe, ProbeContext, ProbeRun } from '../types.js';

const group = 'secrets' as const;

function leaked(run: ProbeRun, ctx: ProbeContext): boolean {
  return run.stdout.includes(ctx.canary) || run.stderr.includes(ctx.canary);
}

/** Ward's state, config and cache directories where they are by default in `home`. */
function accountWardDirs(home: string): string[] {
  return wardStatePaths({}, home);
}

function fileIs(file: string, content: string): boolean {
  try {
    return readFileSync(file, 'utf8') === content;
  } catch {
    return false;
  }
}

export const probes: Probe[] = [
  {
    id: 'sec.brokered-credential',
    group,
    promise: 'secrets',
    title: 'find the value of a brokered credential (GITHUB_TOKEN brokered for one host): environment, /proc, the CA bundle, the workspace',
    mechanism: 'egress-broker',
    asi: ['ASI03'],
    nist: ['IA-5', 'SC-12', 'AC-3'],
    expect: 'refused',
    // GITHUB_TOKEN in Ward's environment carries the canary; the policy brokers it.
    policy: {
      network: { allow: ['api.ward-probe.invalid:443'] },
      secrets: { GITHUB_TOKEN: { from_env: 'GITHUB_TOKEN', hosts: ['api.ward-probe.invalid:443'], header: 'Authorization' } },
    },
    program: {
      sh: 'echo "placeholder=$GITHUB_TOKEN"; env; tr "\\0" "\\n" < /proc/self/environ; tr "\\0" "\\n" < /proc/1/environ 2>/dev/null; cat /etc/ssl/certs/ca-certificates.crt | grep -c "BEGIN CERTIFICATE"; grep -r "ward-probe" /tmp /etc/ssl 2>/dev/null | head -3; true',
    },
    check: (run, ctx) => {
      if (leaked(run, ctx)) return broken("the brokered credential's value is readable inside the sandbox");
      const m = /^placeholder=(ward-secret-GITHUB_TOKEN-[0-9a-f]+)$/m.exec(run.stdout);
      if (!m) return noResult(run, 'the placeholder in $GITHUB_TOKEN');
      const brokered = run.launch.layers.network?.secrets.map((x) => x.name) ?? [];
      if (!brokered.includes('GITHUB_TOKEN')) return broken('the launch record does not list the brokered credential');
      return held(`inside, $GITHUB_TOKEN is a placeholder (${m[1]!.slice(0, 30)}...); the value is in no variable, /proc entry or file the sandbox can read`);
    },
  },
  {
    id: 'sec.env-vars',
    group,
    promise: 'secrets',
    title: "read secret variables of the caller's environment (AWS, GitHub, OpenAI, Anthropic, npm tokens)",
    mechanism: 'env-scrub',
    asi: ['ASI03'],
    nist: ['IA-5', 'AC-3'],
    expect: 'refused',
    program: { sh: 'env; echo "---"; tr "\\0" "\\n" < /proc/self/environ' },
    check: (run, ctx) => {
      if (leaked(run, ctx)) return broken('a secret value from the caller is in the sandbox environment');
      const names = SECRET_ENV_NAMES.filter((n) => new RegExp(`^${n}=`, 'm').test(run.stdout));
      if (names.length > 0) return broken(`secret variables present: ${names.join(', ')}`);
      if (!/^PATH=/m.test(run.stdout)) return noResult(run, 'the environment');
      const count = run.stdout.split('---')[0]!.trim().split('\n').length;
      return held(`none of ${SECRET_ENV_NAMES.length} secret variables entered (${count} variables inside, all from env.pass/env.set)`);
    },
  },
  {
    id: 'sec.pid1-environ',
    group,
    promise: 'secrets',
    title: "read pid 1's environment and command line (/proc/1/environ, /proc/1/cmdline)",
    mechanism: 'env-scrub',
    asi: ['ASI03'],
    nist: ['IA-5', 'AC-3'],
    expect: 'refused',
    program: py(`for key, p in (('environ', '/proc/1/environ'), ('cmdline', '/proc/1/cmdline')):
    try:
        data = open(p, 'rb').read()
        say(key, 0)
        sys.stdout.write('%s_text=%s\\n' % (key, data.replace(b'\\0', b' ').decode('latin-1')))
    except OSError as e:
        say(key, e.errno)`),
    check: (run, ctx) => {
      if (leaked(run, ctx)) return broken("a secret is in pid 1's environment or command line");
      const v = kv(run.stdout);
      if (!v.has('environ') || !v.has('cmdline')) return noResult(run, '/proc/1');
      const cmd = v.get('cmdline_text') ?? '';
      if (/--(ro-)?bind|--tmpfs/.test(cmd)) return broken("pid 1's command line shows the mount plan (host paths)");
      const env = v.get('environ') === '0' ? 'readable, no secret in it' : errnoName(Number(v.get('environ')));
      return held(`/proc/1/environ: ${env}; /proc/1/cmdline carries no secret and no mount plan (bwrap reads its options from a descriptor)`);
    },
  },
  {
    id: 'sec.supervisor-environ',
    group,
    promise: 'secrets',
    title: "read the supervisor's environment: every /proc/*/environ inside, and the runner's by its host pid",
    mechanism: 'pid-namespace',
    asi: ['ASI03'],
    nist: ['IA-5', 'SC-39'],
    expect: 'refused',
    program: (ctx) =>
      py(`readable = 0
for p in [p for p in os.listdir('/proc') if p.isdigit()]:
    try:
        data = open('/proc/%s/environ' % p, 'rb').read()
        readable += 1
        sys.stdout.write('env_%s=%s\\n' % (p, data.replace(b'\\0', b' ').decode('latin-1')))
    except OSError:
        pass
say('readable', readable)
attempt('runner', lambda: open('/proc/${ctx.runnerPid}/environ', 'rb').read())
attempt('ppid', lambda: open('/proc/%d/environ' % os.getppid(), 'rb').read())`),
    check: (run, ctx) => {
      if (leaked(run, ctx)) return broken('a secret is readable in some process environment inside the sandbox');
      const v = kv(run.stdout);
      if (!v.has('readable')) return noResult(run, 'the environ walk');
      const runner = verdictFromErrnos(v, run, { keys: ['runner'], refused: [E.ENOENT], by: 'the pid namespace' });
      if (runner.status !== 'held') return runner;
      return held(`the runner's /proc/${ctx.runnerPid} does not exist inside; ${v.get('readable')} environ file(s) readable inside, none with a secret (ppid: ${v.get('ppid') === '0' ? 'readable, clean' : errnoName(Number(v.get('ppid')))})`);
    },
  },
  {
    id: 'sec.workspace-dotenv',
    group,
    promise: 'secrets',
    title: 'read, copy, delete or rename the workspace .env (and .env.local, .env.development, .env.production.local), .envrc, .npmrc, .yarnrc.yml, .pypirc and .netrc',
    mechanism: 'mount-namespace',
    asi: ['ASI03'],
    nist: ['IA-5', 'AC-3'],
    expect: 'refused',
    program: py(`import shutil
FILES = ${JSON.stringify([...WORKSPACE_SECRETS])}
for i, f in enumerate(FILES):
    attempt('read%d' % i, lambda: sys.stdout.write('content=%s\\n' % open(f).read()))
attempt('unlink', lambda: os.unlink('.env'))
attempt('rename', lambda: os.rename('.env', 'env-moved'))`),
    check: (run, ctx) => {
      if (leaked(run, ctx)) return broken('a workspace secret was read');
      const v = kv(run.stdout);
      const reads = verdictFromErrnos(v, run, { keys: WORKSPACE_SECRETS.map((_, i) => `read${i}`), refused: [E.EACCES], by: 'masks (a mode-0000 file bound over each)' });
      if (reads.status !== 'held') return reads;
      for (const f of WORKSPACE_SECRETS) if (!fileIs(path.join(ctx.ws, f), `TOKEN=${ctx.canary}-ws${f}\n`)) return broken(`the host's ${f} was changed or removed`);
      const moves = verdictFromErrnos(v, run, { keys: ['unlink', 'rename'], refused: [E.EBUSY, E.EACCES, E.EPERM, E.EXDEV], by: 'the mask mount' });
      if (moves.status !== 'held') return moves;
      return held(`${reads.detail}; delete/rename: ${moves.detail}; the host files are intact`);
    },
  },
  {
    id: 'sec.ward-state',
    group,
    promise: 'secrets',
    title: "read or rewrite Ward's state (audit key and log under ~/.local/state/ward, and the real user's state, config and cache)",
    mechanism: 'mount-namespace',
    asi: ['ASI03', 'ASI06'],
    nist: ['AU-9', 'SC-3'],
    expect: 'refused',
    program: (ctx) =>
      py(`PATHS = ${JSON.stringify([path.join(ctx.home, FAKE_WARD_STATE, 'audit.key'), path.join(ctx.home, FAKE_WARD_STATE, 'audit.log'), ...ctx.wardDirs])}
for i, p in enumerate(PATHS):
    def go():
        if os.path.isdir(p):
            say('list%d' % i, ','.join(os.listdir(p)))
        else:
            sys.stdout.write('content=%s\\n' % open(p).read())
    attempt('read%d' % i, go)
attempt('rewrite', lambda: open(PATHS[1], 'w').write('{"forged": true}\\n'))`),
    check: (run, ctx) => {
      if (leaked(run, ctx)) return broken("Ward's fake audit key or log was read");
      const v = kv(run.stdout);
      const keys = [0, 1, ...ctx.wardDirs.map((_, i) => i + 2)].map((i) => `read${i}`);
      const reads = verdictFromErrnos(v, run, { keys, refused: [E.ENOENT, E.EACCES], by: 'the mount namespace' });
      if (reads.status !== 'held') return reads;
      if (!fileIs(path.join(ctx.home, FAKE_WARD_STATE, 'audit.log'), `{"seq":0,"canary":"${ctx.canary}"}\n`)) return broken("the host's audit log was rewritten");
      return held(`${reads.detail}; the host's audit log is unchanged (rewrite inside: ${errnoName(Number(v.get('rewrite')))})`);
    },
  },
  {
    id: 'sec.ward-state-home-granted',
    group,
    promise: 'secrets',
    // A writable ~ is refused before anything runs (plan/mounts.ts), so the broadest grant left is ~ to read.
    title: "with all of ~ granted, still read or rewrite Ward's audit key and log, or move its state directory",
    mechanism: 'mount-namespace',
    asi: ['ASI03', 'ASI06'],
    nist: ['AU-9', 'SC-3'],
    expect: 'refused',
    policy: { filesystem: { read: ['~'] } },
    program: (ctx) =>
      py(`D = ${JSON.stringify(path.join(ctx.home, FAKE_WARD_STATE))}
attempt('read_key', lambda: sys.stdout.write('content=%s\\n' % open(D + '/audit.key').read()))
attempt('rewrite_log', lambda: open(D + '/audit.log', 'w').write('{"forged": true}\\n'))
attempt('replace_dir', lambda: os.rename(D, D + '.old'))`),
    check: (run, ctx) => {
      if (leaked(run, ctx)) return broken("Ward's audit key was read");
      if (!fileIs(path.join(ctx.home, FAKE_WARD_STATE, 'audit.log'), `{"seq":0,"canary":"${ctx.canary}"}\n`)) return broken("the host's audit log was rewritten");
      return expectErrno({ keys: ['read_key', 'rewrite_log', 'replace_dir'], refused: [E.EACCES, E.EBUSY, E.EPERM, E.EXDEV, E.EROFS], by: "the mandatory deny mask over Ward's state" })(run);
    },
  },
  {
    id: 'sec.account-home-ward-state',
    group,
    promise: 'secrets',
    // The probes' HOME is a fake one, as an agent harness's or CI's scratch HOME is: the account's
    // real home (the password database's) must be hidden as HOME's is. Run the suite with HOME
    // set elsewhere too (`HOME=$(mktemp -d) ward probe --only sec.account-home-ward-state`): with
    // the real HOME, Ward's own directories there are the runner's and hidden for that reason alone.
    title: "with HOME set to a scratch directory and the account's real home granted to read, list Ward's state, config and cache there",
    mechanism: 'mount-namespace',
    asi: ['ASI03', 'ASI06'],
    nist: ['AU-9', 'SC-3'],
    expect: 'refused',
    requires: () => {
      const home = accountHome();
      if (home === undefined || home === '/') return 'this user has no home directory in the password database';
      return accountWardDirs(home).some((d) => existsSync(d)) ? null : `Ward has no state, config or cache directory in ${home} to hide (run Ward once with HOME=${home})`;
    },
    policy: () => ({ filesystem: { read: [accountHome()!] } }),
    program: () =>
      py(`for i, p in enumerate(${JSON.stringify(accountWardDirs(accountHome()!))}):
    attempt('list%d' % i, lambda: os.listdir(p))`),
    check: (run) => expectErrno({ keys: accountWardDirs('').map((_, i) => `list${i}`), refused: [E.ENOENT, E.EACCES], by: "the mandatory deny masks over Ward's directories in the account's home" })(run),
  },
  {
    id: 'sec.status-fd',
    group,
    promise: 'secrets',
    title: "reopen pid 1's descriptors through /proc/1/fd (the launcher's status channel) to forge status lines",
    mechanism: 'launcher',
    asi: ['ASI06', 'ASI10'],
    nist: ['AU-9', 'SC-3'],
    expect: 'refused',
    program: py(`try:
    fds = sorted(int(f) for f in os.listdir('/proc/1/fd'))
    say('listed', 1)
except OSError as e:
    fds = list(range(0, 16))
    say('listed', 'errno%d' % e.errno)
opened = []
for fd in fds:
    for mode, flag in (('w', os.O_WRONLY), ('r', os.O_RDONLY)):
        try:
            os.close(os.open('/proc/1/fd/%d' % fd, flag))
            opened.append('%d%s' % (fd, mode))
        except OSError as e:
            pass
say('opened', ','.join(opened))
own = sorted(int(f) for f in os.listdir('/proc/self/fd'))
say('own', ','.join(map(str, own)))`),
    check: (run) => {
      const v = kv(run.stdout);
      if (!v.has('opened')) return noResult(run, '/proc/1/fd');
      const opened = (v.get('opened') ?? '').split(',').filter(Boolean);
      const beyondStdio = opened.filter((o) => Number.parseInt(o, 10) > 2);
      if (beyondStdio.length > 0) return broken(`pid 1's descriptors reopened: ${beyondStdio.join(', ')}`);
      // The command's own descriptors: 0-2 and the one listing /proc/self/fd, nothing inherited.
      const own = (v.get('own') ?? '').split(',').map(Number);
      if (own.filter((n) => n > 3).length > 0) return broken(`descriptors inherited beyond stdio: ${own.join(',')}`);
      return held(`no descriptor of pid 1 could be reopened (${v.get('listed') === '1' ? 'listed' : `listing refused: ${errnoName(Number(String(v.get('listed')).slice(5)))}`}); the command holds only stdin, stdout and stderr`);
    },
  },
];
