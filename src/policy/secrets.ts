/**
 * Paths no policy can grant: credentials an agent must never read, and Ward's own
 * state (an agent that could rewrite Ward's launcher, keys or audit log would own
 * every later run). They are added to every effective policy's `deny` list, so
 * they are covered by its hash and shown by `ward policy show`.
 *
 * They are masked only where a grant would otherwise expose them: a path nothing
 * grants is invisible already.
 */
import path from 'node:path';
import { homeDir, xdgHome } from '../paths.js';
import { isWithin } from './expand.js';

export const SECRET_PATHS: readonly string[] = [
  '~/.ssh',
  '~/.gnupg',
  '~/.aws',
  '~/.azure',
  '~/.config/gcloud',
  '~/.kube',
  '~/.docker',
  '~/.netrc',
  '~/.git-credentials',
  '~/.config/gh',
  '~/.password-store',
  '~/.pgpass',
  '~/.vault-token',
  '/etc/shadow',
  '/etc/gshadow',
  '/etc/shadow-',
  '/etc/gshadow-',
  '/etc/sudoers',
  '/etc/sudoers.d',
  '/etc/ssh',
  '/etc/ssl/private',
  '/root/.ssh',
  // Unix sockets and their directories. connect(2) ignores a read-only bind and Landlock does not
  // restrict it, so a socket in a granted tree reaches its server, which acts outside the sandbox:
  // as root (dockerd, containerd, podman, systemd's /run/systemd/private: `systemd-run`, the
  // system bus) or as the user (the session bus and user systemd in /run/user/UID, agents, X11).
  // The planner masks every socket it finds in a granted tree (plan/sockets.ts); these are masked
  // whole, so a server that starts there after the launch is hidden too.
  '/run/docker.sock',
  '/var/run/docker.sock',
  '/run/docker',
  '/run/containerd',
  '/run/podman',
  '/run/user',
  '/run/systemd',
  '/run/dbus',
  '/var/run/dbus',
  '/run/snapd.socket',
  '/run/snapd-snap.socket',
  '/run/libvirt',
  '/run/crio',
  '/run/lxd',
  '/tmp/.X11-unix',
  '/tmp/.ICE-unix',
];

/** Shared places a socket's directory may be, which are never masked whole (the socket alone is). */
const SHARED_DIRS = ['/', '/tmp', '/var/tmp', '/run', '/var/run', '/dev/shm'];

/**
 * The caller's own socket places, from its environment: $XDG_RUNTIME_DIR,
 * and the directories of $SSH_AUTH_SOCK and the session bus's unix:path= socket (the
 * socket alone when its directory is a shared one like /tmp). Absolute paths only: a relative or
 * empty value names nothing Ward could mask.
 */
export function socketPlaces(env: NodeJS.ProcessEnv, home: string): string[] {
  const out: string[] = [];
  const add = (p: string | undefined, dirOf: boolean) => {
    if (!p || !path.isAbsolute(p) || p.includes('\0')) return;
    const n = path.normalize(p).replace(/(.)\/+$/, '$1');
    const dir = dirOf ? path.dirname(n) : n;
    // Never a shared directory, or one that is or holds the home: masking it would hide the sandbox's own /tmp or the whole home.
    const place = SHARED_DIRS.includes(dir) || isWithin(home, dir) ? (dirOf ? n : undefined) : dir;
    if (place && !out.includes(place)) out.push(place);
  };
  add(env.XDG_RUNTIME_DIR, false);
  add(env.SSH_AUTH_SOCK, true);
  add(/(?:^|;)unix:path=([^,;]+)/.exec(env.DBUS_SESSION_BUS_ADDRESS ?? '')?.[1], true);
  return out;
}

/** Ward's own state, config and cache: keys, audit logs, the compiled launcher. */
export function wardStatePaths(env: NodeJS.ProcessEnv, home: string): string[] {
  // The same resolution as the code that writes them (paths.ts): a relative value is refused there and here.
  return (['XDG_STATE_HOME', 'XDG_CONFIG_HOME', 'XDG_CACHE_HOME'] as const).map((name) => `${xdgHome(env, name, home)}/ward`);
}

/**
 * Every directory of Ward's own a run depends on: those of `env` (the audit key and log the run
 * is recorded with) and, when the caller passed another environment, those of the process itself
 * (its launcher cache and mask file, and the real user's key and log).
 */
export function wardOwnDirs(env: NodeJS.ProcessEnv, home: string): string[] {
  const dirs = wardStatePaths(env, home);
  if (env !== process.env) for (const d of wardStatePaths(process.env, homeDir(process.env))) if (!dirs.includes(d)) dirs.push(d);
  return dirs;
}
