/**
 * Paths no policy can grant: credentials an agent must never read, and Ward's own
 * state (an agent that could rewrite Ward's launcher, keys or audit log would own
 * every later run). They are added to every effective policy's `deny` list, so
 * they are covered by its hash and shown by `ward policy show`.
 *
 * They are masked only where a grant would otherwise expose them: a path nothing
 * grants is invisible already.
 */
import { readdirSync } from 'node:fs';
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

/**
 * Credential stores, browser profiles and histories under ~ that no tool inside a sandbox needs to
 * read (docs/policy.md lists each with the reason). Config that tools do need stays readable under a
 * grant of ~ even when a user may have put a token in it: ~/.gitconfig (git reads it; a token in a
 * url.insteadOf is not masked), ~/.config/git/config, caches (~/.npm, ~/.cache/pip: packages, no
 * credentials). Kept apart from SECRET_PATHS so each list reads as one decision.
 */
export const HOME_CREDENTIAL_PATHS: readonly string[] = [
  // Package registries and build tools: auth tokens and passwords. A pip.conf, NuGet.Config or
  // ~/.bundle/config is config too, but its index URL or source often carries the token.
  '~/.npmrc',
  '~/.yarnrc',
  '~/.yarnrc.yml',
  '~/.pypirc',
  '~/.config/pip/pip.conf',
  '~/.pip/pip.conf',
  '~/.config/pypoetry/auth.toml',
  '~/.local/share/uv/credentials',
  '~/.cargo/credentials',
  '~/.cargo/credentials.toml',
  '~/.m2/settings.xml',
  '~/.m2/settings-security.xml',
  '~/.gradle/gradle.properties',
  '~/.ivy2/.credentials',
  '~/.sbt/.credentials',
  '~/.gem/credentials',
  '~/.local/share/gem/credentials',
  '~/.bundle/config',
  '~/.config/composer/auth.json',
  '~/.composer/auth.json',
  '~/.nuget/NuGet/NuGet.Config',
  '~/.config/NuGet/NuGet.Config',
  '~/.npm-global/etc/npmrc',
  '~/.dockercfg',
  '~/.config/containers/auth.json',
  '~/.config/helm/registry/config.json',
  '~/.config/helm/repositories.yaml',
  // Forges, clouds, infrastructure and databases. Where a tool keeps programs or caches beside its
  // token (~/.fly/bin, ~/.pulumi/plugins, ~/.config/configstore for every npm CLI), only the file.
  '~/.config/git/credentials',
  '~/.authinfo',
  '~/.authinfo.gpg',
  '~/.netrc.gpg',
  '~/_netrc',
  '~/.config/hub',
  '~/.config/glab-cli/config.yml',
  '~/.circleci/cli.yml',
  '~/.travis/config.yml',
  '~/.terraformrc',
  '~/.terraform.d/credentials.tfrc.json',
  '~/.s3cfg',
  '~/.boto',
  '~/.config/rclone',
  '~/.oci',
  '~/.config/doctl/config.yaml',
  '~/.config/hcloud/cli.toml',
  '~/.fly/config.yml',
  '~/.pulumi/credentials.json',
  '~/.config/configstore/firebase-tools.json',
  '~/.wrangler/config/default.toml',
  '~/.config/.wrangler/config/default.toml',
  '~/.local/share/com.vercel.cli/auth.json',
  '~/.config/netlify/config.json',
  '~/.config/ngrok/ngrok.yml',
  '~/.ngrok2/ngrok.yml',
  '~/.config/stripe/config.toml',
  '~/.minikube',
  '~/.talos/config',
  '~/.databrickscfg',
  '~/.dbt/profiles.yml',
  '~/.config/snowflake/connections.toml',
  '~/.config/snowflake/config.toml',
  '~/.snowflake/connections.toml',
  '~/.snowflake/config.toml',
  '~/.snowsql/config',
  '~/.my.cnf',
  '~/.mylogin.cnf',
  '~/.env',
  // Private keys that decrypt a repository's secrets (sops, age).
  '~/.config/sops/age/keys.txt',
  '~/.config/age/keys.txt',
  // AI provider keys and agents' logins (the agent's own, which its commands must not reuse), and
  // their MCP server lists, whose entries carry the servers' tokens in env and headers.
  '~/.config/openai',
  '~/.config/anthropic',
  '~/.claude/.credentials.json',
  '~/.claude.json',
  '~/.claude.json.backup',
  '~/.codex/auth.json',
  '~/.gemini/oauth_creds.json',
  '~/.gemini/mcp-oauth-tokens.json',
  '~/.gemini/.env',
  '~/.local/share/opencode/auth.json',
  '~/.local/share/opencode/mcp-auth.json',
  '~/.config/github-copilot/hosts.json',
  '~/.config/github-copilot/apps.json',
  '~/.cursor/mcp.json',
  '~/.codeium/windsurf/mcp_config.json',
  '~/.continue/config.json',
  '~/.continue/config.yaml',
  '~/.aider.conf.yml',
  // Shell and REPL histories: commands typed with tokens and passwords in them.
  '~/.bash_history',
  '~/.zsh_history',
  '~/.zhistory',
  '~/.histfile',
  '~/.python_history',
  '~/.node_repl_history',
  '~/.psql_history',
  '~/.mysql_history',
  '~/.sqlite_history',
  '~/.rediscli_history',
  '~/.irb_history',
  '~/.lesshst',
  '~/.local/state/lesshst',
  '~/.local/share/lesshst',
  '~/.local/share/fish/fish_history',
  '~/.local/share/atuin/history.db',
  '~/.config/atuin/key',
  // Keyrings, password managers, browsers and editors' stored logins (and their extensions' tokens).
  '~/.local/share/keyrings',
  '~/.local/share/kwalletd',
  '~/.config/Bitwarden',
  '~/.config/Bitwarden CLI',
  '~/.config/1Password',
  '~/.mozilla',
  '~/.thunderbird',
  '~/.config/google-chrome',
  '~/.config/chromium',
  '~/.config/BraveSoftware',
  '~/.config/Code',
  '~/.config/VSCodium',
  '~/.config/Cursor',
  '~/.config/Windsurf',
  '~/.vscode-server/data/User/globalStorage',
  '~/.config/code-server/config.yaml',
  '~/.config/JetBrains',
];

/** Credentials outside ~ that a grant of /etc (or of Node's prefix) would show. */
export const SYSTEM_CREDENTIAL_PATHS: readonly string[] = [
  // RHEL-family private keys (minimal grants only the certificate parts of /etc/pki).
  '/etc/pki/tls/private',
  '/etc/pki/CA/private',
  // npm's global config, where `npm config set -g` writes auth tokens.
  '/etc/npmrc',
  '${NODE_PREFIX}/etc/npmrc',
];

/** Every fixed mandatory deny of a credential (Ward's own directories and the relocated stores aside). */
export const ALL_SECRET_PATHS: readonly string[] = [...SECRET_PATHS, ...HOME_CREDENTIAL_PATHS, ...SYSTEM_CREDENTIAL_PATHS];

/** What a variable names: the store itself, or the credential files inside the tool's home it names. */
type Places = (value: string) => string[];
const itself: Places = (v) => [v];
const inside =
  (...names: string[]): Places =>
  (v) =>
    names.map((n) => path.join(v, n));
// minikube keeps its state in $MINIKUBE_HOME itself when it is named .minikube, else in $MINIKUBE_HOME/.minikube.
const minikube: Places = (v) => [path.basename(v) === '.minikube' ? v : path.join(v, '.minikube')];

/**
 * Variables that move a credential store away from its default place, and what they name. A tool
 * home (GRADLE_USER_HOME, CODEX_HOME...) holds caches and settings the tool reads and writes, so
 * only its credential files are named. `list`: several paths, separated by ":". `off`: values that
 * mean "none" to the tool (less: `LESSHISTFILE=-`), neither a path nor refused.
 */
const RELOCATING_VARS: readonly { name: string; places: Places; list?: true; off?: readonly string[] }[] = [
  { name: 'DOCKER_CONFIG', places: itself },
  { name: 'DOCKER_CERT_PATH', places: itself },
  { name: 'REGISTRY_AUTH_FILE', places: itself },
  { name: 'KUBECONFIG', places: itself, list: true },
  { name: 'MINIKUBE_HOME', places: minikube },
  { name: 'TALOSCONFIG', places: itself },
  { name: 'HELM_REGISTRY_CONFIG', places: itself },
  { name: 'HELM_REPOSITORY_CONFIG', places: itself },
  { name: 'GNUPGHOME', places: itself },
  { name: 'PASSWORD_STORE_DIR', places: itself },
  { name: 'BITWARDENCLI_APPDATA_DIR', places: itself },
  { name: 'SOPS_AGE_KEY_FILE', places: itself },
  { name: 'CARGO_HOME', places: inside('credentials', 'credentials.toml') },
  { name: 'GRADLE_USER_HOME', places: inside('gradle.properties') },
  { name: 'POETRY_CONFIG_DIR', places: inside('auth.toml') },
  { name: 'COMPOSER_HOME', places: inside('auth.json') },
  { name: 'BUNDLE_USER_CONFIG', places: itself },
  { name: 'BUNDLE_USER_HOME', places: inside('config') },
  { name: 'PIP_CONFIG_FILE', places: itself },
  { name: 'NPM_CONFIG_USERCONFIG', places: itself },
  { name: 'npm_config_userconfig', places: itself },
  { name: 'NPM_CONFIG_GLOBALCONFIG', places: itself },
  { name: 'npm_config_globalconfig', places: itself },
  // `npm config set -g` writes tokens to the prefix's etc/npmrc.
  { name: 'NPM_CONFIG_PREFIX', places: inside('etc/npmrc') },
  { name: 'npm_config_prefix', places: inside('etc/npmrc') },
  { name: 'AWS_SHARED_CREDENTIALS_FILE', places: itself },
  { name: 'AWS_CONFIG_FILE', places: itself },
  { name: 'AWS_WEB_IDENTITY_TOKEN_FILE', places: itself },
  { name: 'CLOUDSDK_CONFIG', places: itself },
  { name: 'GOOGLE_APPLICATION_CREDENTIALS', places: itself },
  { name: 'BOTO_CONFIG', places: itself },
  { name: 'GH_CONFIG_DIR', places: itself },
  { name: 'AZURE_CONFIG_DIR', places: itself },
  { name: 'OCI_CLI_CONFIG_FILE', places: itself },
  { name: 'HCLOUD_CONFIG', places: itself },
  { name: 'TF_CLI_CONFIG_FILE', places: itself },
  { name: 'RCLONE_CONFIG', places: itself },
  { name: 'S3CMD_CONFIG', places: itself },
  { name: 'DATABRICKS_CONFIG_FILE', places: itself },
  { name: 'DBT_PROFILES_DIR', places: inside('profiles.yml') },
  { name: 'SNOWFLAKE_HOME', places: inside('connections.toml', 'config.toml') },
  { name: 'MYSQL_TEST_LOGIN_FILE', places: itself },
  { name: 'NETRC', places: itself },
  { name: 'PGPASSFILE', places: itself },
  { name: 'CLAUDE_CONFIG_DIR', places: inside('.credentials.json', '.claude.json', '.claude.json.backup') },
  { name: 'CODEX_HOME', places: inside('auth.json') },
  { name: 'HISTFILE', places: itself },
  { name: 'PSQL_HISTORY', places: itself },
  { name: 'NODE_REPL_HISTORY', places: itself },
  { name: 'MYSQL_HISTFILE', places: itself },
  { name: 'LESSHISTFILE', places: itself, off: ['-'] },
  { name: 'PYTHON_HISTORY', places: itself },
  { name: 'SQLITE_HISTORY', places: itself },
  { name: 'REDISCLI_HISTFILE', places: itself },
];

/** The XDG base directories and the default each home entry below it is written with. */
const XDG_BASES = [
  ['XDG_CONFIG_HOME', '~/.config/'],
  ['XDG_DATA_HOME', '~/.local/share/'],
  ['XDG_STATE_HOME', '~/.local/state/'],
] as const;

/**
 * The same stores where the environment puts them: every ~/.config/X, ~/.local/share/X and
 * ~/.local/state/X entry again under XDG_CONFIG_HOME / XDG_DATA_HOME / XDG_STATE_HOME, and the
 * files and directories the variables above name. Both places are denied, the default and the
 * moved one: a tool run without the variable still looks in the default. Found from `envs` (the
 * run's and Ward's own), as Ward finds its own directories. A relative value is refused: Ward
 * cannot tell what it names, so cannot mask it.
 */
export function relocatedSecretPaths(envs: readonly NodeJS.ProcessEnv[]): { paths: string[]; problem?: { name: string; value: string } } {
  const out = new Set<string>();
  const homeEntries = [...SECRET_PATHS, ...HOME_CREDENTIAL_PATHS];
  for (const env of envs) {
    for (const [name, prefix] of XDG_BASES) {
      const base = env[name];
      if (!base) continue;
      if (!path.isAbsolute(base)) return { paths: [], problem: { name, value: base } };
      for (const p of homeEntries) if (p.startsWith(prefix)) out.add(path.join(base, p.slice(prefix.length)));
    }
    for (const { name, places, list, off } of RELOCATING_VARS) {
      const value = env[name];
      if (!value || off?.includes(value)) continue;
      const parts = list ? value.split(':').filter((v) => v !== '') : [value];
      for (const v of parts) {
        if (!path.isAbsolute(v)) return { paths: [], problem: { name, value } };
        // The sandbox has its own /dev, /proc and /sys: a store "there" (KUBECONFIG=/dev/null) is no host file.
        if (/^\/(dev|proc|sys)(\/|$)/.test(path.normalize(v))) continue;
        for (const p of places(path.normalize(v))) out.add(p);
      }
    }
  }
  return { paths: [...out] };
}

/**
 * Each nvm-installed Node's global npmrc (~/.nvm/versions/node/VERSION/etc/npmrc), listed when the
 * policy is loaded: the node profile grants ~/.nvm, and `npm config set -g` writes tokens there.
 */
export function nvmNpmrcPaths(home: string): string[] {
  const dir = path.join(home, '.nvm/versions/node');
  let versions: string[];
  try {
    versions = readdirSync(dir);
  } catch {
    return [];
  }
  // A name Ward could not write as a policy path (glob characters) is not an nvm version.
  return versions.filter((v) => /^[\w.+-]+$/.test(v) && v !== '.' && v !== '..').sort().map((v) => path.join(dir, v, 'etc/npmrc'));
}

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
