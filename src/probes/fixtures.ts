/**
 * Each probe's world, made fresh and removed afterwards:
 *
 *   <root>/<n>-<id>/
 *     ws/        the workspace: a README, a planted .env (and variants)/.envrc/.npmrc/.yarnrc.yml/.pypirc/.netrc
 *     home/      the fake $HOME the sandbox is given: SSH keys, cloud and token
 *                files, registry credentials, histories, browser logins, shell rc files, Ward's state dir with a fake audit key
 *     outside/   outside every grant: a secret file, a place for writes to land
 *
 * Every planted secret contains the suite's canary, a random token: a probe
 * whose output or host-side marks contain it has leaked something.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Credential files planted in the fake $HOME (relative paths), each holding the canary. */
export const HOME_SECRETS = [
  '.ssh/id_ed25519',
  '.ssh/id_rsa',
  '.aws/credentials',
  '.azure/accessTokens.json',
  '.config/gcloud/application_default_credentials.json',
  '.kube/config',
  '.docker/config.json',
  '.gnupg/private-keys-v1.d/key.key',
  '.netrc',
  '.git-credentials',
  '.config/gh/hosts.yml',
  '.password-store/email.gpg',
  '.pgpass',
  '.vault-token',
] as const;

/**
 * Credential stores, browser logins and histories planted in the fake $HOME beside HOME_SECRETS:
 * the mandatory denies added for them (policy/secrets.ts HOME_CREDENTIAL_PATHS), one file each.
 */
export const HOME_CREDENTIAL_FILES = [
  '.npmrc',
  '.yarnrc.yml',
  '.pypirc',
  '.cargo/credentials.toml',
  '.m2/settings.xml',
  '.gradle/gradle.properties',
  '.config/git/credentials',
  '.config/hub',
  '.terraform.d/credentials.tfrc.json',
  '.s3cfg',
  '.config/rclone/rclone.conf',
  '.my.cnf',
  '.env',
  '.config/anthropic/api_key',
  '.bash_history',
  '.zsh_history',
  '.python_history',
  '.node_repl_history',
  '.local/share/fish/fish_history',
  '.local/share/keyrings/login.keyring',
  '.mozilla/firefox/p.default/logins.json',
  '.config/google-chrome/Default/Login Data',
  '.config/Code/User/globalStorage/state.vscdb',
  '.npm-global/etc/npmrc',
  '.nvm/versions/node/v20.0.0/etc/npmrc',
  // Stores the red team read with ~ granted before they were on the list.
  '.dockercfg',
  '.config/containers/auth.json',
  '.config/helm/registry/config.json',
  '.config/pip/pip.conf',
  '.pip/pip.conf',
  '.config/pypoetry/auth.toml',
  '.local/share/uv/credentials/credentials.toml',
  '.nuget/NuGet/NuGet.Config',
  '.config/composer/auth.json',
  '.composer/auth.json',
  '.bundle/config',
  '.local/share/gem/credentials',
  '.ivy2/.credentials',
  '.sbt/.credentials',
  '.config/glab-cli/config.yml',
  '.config/doctl/config.yaml',
  '.fly/config.yml',
  '.pulumi/credentials.json',
  '.oci/oci_api_key.pem',
  '.config/hcloud/cli.toml',
  '.config/configstore/firebase-tools.json',
  '.wrangler/config/default.toml',
  '.config/.wrangler/config/default.toml',
  '.local/share/com.vercel.cli/auth.json',
  '.config/netlify/config.json',
  '.config/ngrok/ngrok.yml',
  '.config/stripe/config.toml',
  '.minikube/profiles/minikube/client.key',
  '.talos/config',
  '.databrickscfg',
  '.dbt/profiles.yml',
  '.config/snowflake/connections.toml',
  '.snowsql/config',
  '.boto',
  '.authinfo',
  '.authinfo.gpg',
  '.netrc.gpg',
  '_netrc',
  '.config/sops/age/keys.txt',
  '.config/age/keys.txt',
  '.claude.json',
  '.gemini/oauth_creds.json',
  '.local/share/opencode/auth.json',
  '.config/github-copilot/hosts.json',
  '.config/github-copilot/apps.json',
  '.cursor/mcp.json',
  '.local/state/lesshst',
  '.config/atuin/key',
  '.local/share/atuin/history.db',
  '.config/Bitwarden CLI/data.json',
  '.config/Bitwarden/data.json',
  '.config/code-server/config.yaml',
  '.config/Cursor/User/globalStorage/state.vscdb',
  '.config/Windsurf/User/globalStorage/state.vscdb',
  '.vscode-server/data/User/globalStorage/state.vscdb',
  '.config/JetBrains/IntelliJIdea2024.1/c.kdbx',
] as const;

/** Secret-looking files planted in the workspace that the default profile hides. */
export const WORKSPACE_SECRETS = ['.env', '.env.local', '.npmrc', '.pypirc', '.netrc', '.env.development', '.env.production.local', '.envrc', '.yarnrc.yml'] as const;

/** Shell start-up files planted in the fake $HOME: a write to them is persistence on the host. */
export const RC_FILES = ['.bashrc', '.profile', '.zshrc', '.bash_profile'] as const;

/** Where the fake Ward state lives inside the fake $HOME (XDG_STATE_HOME is not set for probes). */
export const FAKE_WARD_STATE = '.local/state/ward';

/** Secret environment variables every probe's caller environment carries (values hold the canary). */
export const SECRET_ENV_NAMES = ['AWS_SECRET_ACCESS_KEY', 'GITHUB_TOKEN', 'OPENAI_API_KEY', 'ANTHROPIC_API_KEY', 'NPM_TOKEN', 'WARD_PROBE_CANARY'] as const;

export interface Fixture {
  dir: string;
  ws: string;
  home: string;
  outside: string;
}

export function makeFixture(root: string, index: number, id: string, canary: string): Fixture {
  const dir = path.join(root, `${String(index).padStart(3, '0')}-${id.replace(/[^a-z0-9.-]/gi, '_')}`);
  const ws = path.join(dir, 'ws');
  const home = path.join(dir, 'home');
  const outside = path.join(dir, 'outside');
  for (const d of [ws, home, outside]) mkdirSync(d, { recursive: true, mode: 0o700 });

  writeFileSync(path.join(ws, 'README.md'), '# probe workspace\n');
  for (const f of WORKSPACE_SECRETS) writeFileSync(path.join(ws, f), `TOKEN=${canary}-ws${f}\n`);

  for (const f of [...HOME_SECRETS, ...HOME_CREDENTIAL_FILES]) plant(path.join(home, f), `${canary}-home/${f}\n`, 0o600);
  for (const f of RC_FILES) plant(path.join(home, f), `# ${f}: planted by the probe suite\n`, 0o644);
  plant(path.join(home, '.gitconfig'), '[user]\n\tname = probe\n', 0o644);
  plant(path.join(home, FAKE_WARD_STATE, 'audit.key'), `${canary}-ward-audit-key\n`, 0o600);
  plant(path.join(home, FAKE_WARD_STATE, 'audit.log'), `{"seq":0,"canary":"${canary}"}\n`, 0o600);

  plant(path.join(outside, 'secret.txt'), `${canary}-outside\n`, 0o600);
  return { dir, ws, home, outside };
}

function plant(file: string, content: string, mode: number): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, content, { mode });
  chmodSync(file, mode);
}
