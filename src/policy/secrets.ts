/**
 * Paths no policy can grant: credentials an agent must never read, and Ward's own
 * state (an agent that could rewrite Ward's launcher, keys or audit log would own
 * every later run). They are added to every effective policy's `deny` list, so
 * they are covered by its hash and shown by `ward policy show`.
 *
 * They are masked only where a grant would otherwise expose them: a path nothing
 * grants is invisible already.
 */
import { homeDir, xdgHome } from '../paths.js';

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
  // Host sockets that hand out root: binding /run or /var/run must never bring them in.
  '/run/docker.sock',
  '/var/run/docker.sock',
  '/run/containerd',
  '/run/podman',
];

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
