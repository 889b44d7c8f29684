/**
 * What the built-in profiles and the mandatory denies let a sandboxed command read, attacked the
 * way the profiles red-team review did: a fake $HOME full of credential stores, histories and
 * browser logins, stores moved by XDG_* and tool variables, a Node whose prefix is a home or
 * ~/.local, global npmrc files under nvm and ~/.npm-global, and dotenv variants in the workspace.
 * Usability is held beside each: npm, git, python and node still work under the same grants.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, linkSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadPolicy, run, type PolicyInput, type RunOptions } from '../../src/index.js';
import { HOME_CREDENTIAL_FILES } from '../../src/probes/fixtures.js';
import { hasCgroup, ROOT, sandboxFixture, tempDir, which } from '../helpers.js';

function setup(extraEnv: NodeJS.ProcessEnv = {}) {
  const fx = sandboxFixture();
  const env = { ...fx.env, ...extraEnv };
  const options: RunOptions = { workspace: fx.ws, env, stdin: 'ignore', allowDegraded: !hasCgroup };
  // Only the default profile sets limits (and so may need a degraded run without a cgroup); the others refuse --allow-degraded.
  const sh = async (script: string, p: PolicyInput, allowDegraded = options.allowDegraded) => {
    const r = await run(p, ['sh', '-c', script], { ...options, allowDegraded });
    return { ...r, out: r.stdout.toString(), err: r.stderr.toString() };
  };
  return { ...fx, env, sh };
}

function plant(file: string, content: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
}

const readHome: PolicyInput = { policy: { extends: ['default'], filesystem: { read: ['~'] } } };

/** `cat`s each file and prints `<i>:ok` or `<i>:<errno text>`, so a leak and the refusal both show. */
function catEach(files: string[]): string {
  return files.map((f, i) => `if cat '${f}' >/dev/null 2>/tmp/e; then echo '${i}:ok'; else echo "${i}:$(cat /tmp/e)"; fi`).join('\n');
}

describe('profiles: credential stores under a grant of ~ are masked', () => {
  it('registry tokens, git and cloud credentials, histories, keyrings, browser logins, AI keys and global npmrc files cannot be read with ~ granted', async () => {
    const t = setup();
    const files = HOME_CREDENTIAL_FILES.map((f) => path.join(t.home, f));
    for (const f of files) plant(f, `LEAKED-${path.basename(f)}\n`);
    const r = await t.sh(catEach(files), readHome);
    assert.doesNotMatch(r.out, /:ok|LEAKED/, r.out);
    const lines = r.out.trim().split('\n');
    assert.equal(lines.length, files.length, r.out + r.err);
    for (const l of lines) assert.match(l, /Permission denied/, `${files[Number(l.split(':')[0])]}: ${l}`);
  });

  it('stores moved by XDG_CONFIG_HOME, XDG_DATA_HOME, XDG_STATE_HOME and the tools\' own variables are masked where they are (and where they would be by default)', async () => {
    const fx = sandboxFixture();
    const h = fx.home;
    const moved: NodeJS.ProcessEnv = {
      XDG_CONFIG_HOME: `${h}/xdg-config`,
      XDG_DATA_HOME: `${h}/xdg-data`,
      XDG_STATE_HOME: `${h}/xdg-state`,
      DOCKER_CONFIG: `${h}/dockercfg`,
      KUBECONFIG: `${h}/kube-a.yaml:${h}/kube-b.yaml`,
      GNUPGHOME: `${h}/gpg`,
      PASSWORD_STORE_DIR: `${h}/pass`,
      CARGO_HOME: `${h}/cargo`,
      AWS_SHARED_CREDENTIALS_FILE: `${h}/aws-creds`,
      AWS_CONFIG_FILE: `${h}/aws-config`,
      AWS_WEB_IDENTITY_TOKEN_FILE: `${h}/keys/web-identity-token`,
      GOOGLE_APPLICATION_CREDENTIALS: `${h}/keys/gcp-sa.json`,
      CLAUDE_CONFIG_DIR: `${h}/claude-cfg`,
      CODEX_HOME: `${h}/codex`,
      RCLONE_CONFIG: `${h}/rclone.conf`,
      GRADLE_USER_HOME: `${h}/gradle-home`,
      TF_CLI_CONFIG_FILE: `${h}/terraform.rc`,
      S3CMD_CONFIG: `${h}/s3cfg`,
      MYSQL_TEST_LOGIN_FILE: `${h}/mylogin.cnf`,
      REGISTRY_AUTH_FILE: `${h}/containers-auth.json`,
      DOCKER_CERT_PATH: `${h}/docker-certs`,
      PIP_CONFIG_FILE: `${h}/pip.conf`,
      NPM_CONFIG_PREFIX: `${h}/npm-prefix`,
      npm_config_prefix: `${h}/npm-prefix-lc`,
      POETRY_CONFIG_DIR: `${h}/poetry`,
      COMPOSER_HOME: `${h}/composer`,
      BUNDLE_USER_CONFIG: `${h}/bundle-config`,
      HELM_REGISTRY_CONFIG: `${h}/helm-registry.json`,
      OCI_CLI_CONFIG_FILE: `${h}/oci-config`,
      HCLOUD_CONFIG: `${h}/hcloud.toml`,
      SOPS_AGE_KEY_FILE: `${h}/age-keys.txt`,
      MINIKUBE_HOME: `${h}/mk`,
      TALOSCONFIG: `${h}/talosconfig`,
      DATABRICKS_CONFIG_FILE: `${h}/databrickscfg`,
      DBT_PROFILES_DIR: `${h}/dbt`,
      SNOWFLAKE_HOME: `${h}/snowflake`,
      BOTO_CONFIG: `${h}/boto`,
      BITWARDENCLI_APPDATA_DIR: `${h}/bw`,
      PSQL_HISTORY: `${h}/history/psql`,
      NODE_REPL_HISTORY: `${h}/history/node_repl`,
      MYSQL_HISTFILE: `${h}/history/mysql`,
      LESSHISTFILE: `${h}/history/less`,
      PYTHON_HISTORY: `${h}/history/python`,
      SQLITE_HISTORY: `${h}/history/sqlite`,
      REDISCLI_HISTFILE: `${h}/history/redis`,
    };
    const files = [
      `${h}/xdg-config/gh/hosts.yml`,
      `${h}/xdg-config/gcloud/credentials.db`,
      `${h}/xdg-config/git/credentials`,
      `${h}/xdg-config/github-copilot/hosts.json`,
      `${h}/xdg-config/containers/auth.json`,
      `${h}/xdg-data/keyrings/login.keyring`,
      `${h}/xdg-data/opencode/auth.json`,
      `${h}/xdg-data/uv/credentials/credentials.toml`,
      `${h}/xdg-state/lesshst`,
      `${h}/dockercfg/config.json`,
      `${h}/kube-a.yaml`,
      `${h}/kube-b.yaml`,
      `${h}/gpg/private-keys-v1.d/k.key`,
      `${h}/pass/mail.gpg`,
      `${h}/cargo/credentials.toml`,
      `${h}/aws-creds`,
      `${h}/aws-config`,
      `${h}/keys/web-identity-token`,
      `${h}/keys/gcp-sa.json`,
      `${h}/claude-cfg/.credentials.json`,
      `${h}/claude-cfg/.claude.json`,
      `${h}/codex/auth.json`,
      `${h}/rclone.conf`,
      `${h}/gradle-home/gradle.properties`,
      `${h}/terraform.rc`,
      `${h}/s3cfg`,
      `${h}/mylogin.cnf`,
      `${h}/containers-auth.json`,
      `${h}/docker-certs/key.pem`,
      `${h}/pip.conf`,
      `${h}/npm-prefix/etc/npmrc`,
      `${h}/npm-prefix-lc/etc/npmrc`,
      `${h}/poetry/auth.toml`,
      `${h}/composer/auth.json`,
      `${h}/bundle-config`,
      `${h}/helm-registry.json`,
      `${h}/oci-config`,
      `${h}/hcloud.toml`,
      `${h}/age-keys.txt`,
      `${h}/mk/.minikube/profiles/minikube/client.key`,
      `${h}/talosconfig`,
      `${h}/databrickscfg`,
      `${h}/dbt/profiles.yml`,
      `${h}/snowflake/connections.toml`,
      `${h}/boto`,
      `${h}/bw/data.json`,
      `${h}/history/psql`,
      `${h}/history/node_repl`,
      `${h}/history/mysql`,
      `${h}/history/less`,
      `${h}/history/python`,
      `${h}/history/sqlite`,
      `${h}/history/redis`,
      // The default places too, for a tool started without the variable.
      `${h}/.config/gh/hosts.yml`,
      `${h}/.local/share/keyrings/login.keyring`,
      `${h}/.local/state/lesshst`,
      `${h}/.claude/.credentials.json`,
      `${h}/.codex/auth.json`,
    ];
    // Where a variable names a tool's home, only its credential file is masked: the tool still
    // reads (and, given a writable grant, writes) the rest of the directory.
    const kept = [`${h}/gradle-home/caches/modules.lock`, `${h}/codex/config.toml`, `${h}/claude-cfg/settings.json`, `${h}/npm-prefix/lib/node_modules/x/package.json`, `${h}/dbt/dbt_project.yml`];
    for (const f of files) plant(f, 'LEAKED\n');
    for (const f of kept) plant(f, 'kept\n');
    const t = { ...fx, env: { ...fx.env, ...moved } };
    const r = await run(readHome, ['sh', '-c', catEach([...files, ...kept])], { workspace: t.ws, env: t.env, stdin: 'ignore', allowDegraded: !hasCgroup });
    const out = r.stdout.toString();
    const lines = out.trim().split('\n');
    assert.equal(lines.length, files.length + kept.length, out + r.stderr.toString());
    for (const l of lines.slice(0, files.length)) assert.match(l, /Permission denied/, `${files[Number(l.split(':')[0])]}: ${l}`);
    assert.deepEqual(lines.slice(files.length), kept.map((_, i) => `${files.length + i}:ok`), out);
  });

  it('a relative store variable is refused before anything runs: Ward cannot tell what it names', async () => {
    for (const [name, value] of [['KUBECONFIG', 'kube/config'], ['CLAUDE_CONFIG_DIR', '.claude-alt'], ['PSQL_HISTORY', 'psql_history'], ['XDG_STATE_HOME', 'state']] as const) {
      const t = setup({ [name]: value });
      await assert.rejects(t.sh('true', readHome), new RegExp(`${name} is "${value.replace(/[.]/g, '\\.')}", a relative path`));
    }
  });

  it("a history variable's \"no history\" value (LESSHISTFILE=-) is not a path, and is not refused", async () => {
    const t = setup({ LESSHISTFILE: '-' });
    const r = await t.sh('echo ran', readHome);
    assert.equal(r.exitCode, 0, r.err);
    assert.equal(r.out, 'ran\n');
  });

  it('what is not masked is said: git, npm and python still work with ~ granted and the masks in place', { skip: !which('git') && 'git is not installed' }, async () => {
    const t = setup();
    plant(path.join(t.home, '.gitconfig'), '[user]\n\tname = From Home\n\temail = h@example.invalid\n');
    plant(path.join(t.home, '.npmrc'), '//registry.npmjs.org/:_authToken=LEAKED\n');
    plant(path.join(t.home, '.bash_history'), 'export TOKEN=LEAKED\n');
    plant(path.join(t.home, '.python_history'), 'token = "LEAKED"\n');
    // pip reads its config files at every start: masked, they are skipped, not an error.
    plant(path.join(t.home, '.config/pip/pip.conf'), '[global]\nindex-url = https://u:LEAKED@pypi.example.invalid/simple\n');
    plant(path.join(t.home, '.pip/pip.conf'), '[global]\nextra-index-url = https://u:LEAKED@pypi.example.invalid/simple\n');
    const r = await t.sh(
      'git init -q && echo a > a && git add a && git commit -qm one && git log --format=%an && npm init -y >/dev/null && npm pkg set scripts.t="node -e \\"console.log(7)\\"" && npm run -s t && python3 -c "print(2*3)" && python3 -m pip config list && python3 -m pip --version >/dev/null && echo pip-ok',
      readHome,
    );
    assert.equal(r.exitCode, 0, r.err);
    assert.deepEqual(r.out.trim().split('\n').filter((l) => !/^[\w:.-]+=/.test(l)), ['From Home', '7', '6', 'pip-ok'], r.out);
    assert.doesNotMatch(r.out + r.err, /LEAKED/);
  });
});

describe('profiles: the node profile grants Node, not its prefix', () => {
  // A real Node binary at a prefix that is a home or ~/.local, as the review had it. A hard link
  // where the filesystem allows it (the binary is ~100 MB), a copy where it does not.
  function nodeAt(file: string): void {
    mkdirSync(path.dirname(file), { recursive: true });
    try {
      linkSync(process.execPath, file);
    } catch {
      copyFileSync(process.execPath, file);
      chmodSync(file, 0o755);
    }
  }
  function wardWith(nodeBin: string, args: string[], fx: { ws: string; env: NodeJS.ProcessEnv }) {
    const r = spawnSync(nodeBin, [path.join(ROOT, 'bin/ward.js'), ...args], { cwd: fx.ws, env: fx.env, encoding: 'utf8', timeout: 120_000 });
    return { code: r.status, out: r.stdout, err: r.stderr };
  }
  const degraded = hasCgroup ? [] : ['--allow-degraded'];

  it('a Node at ~/.local/bin/node: its bin and lib/node_modules are granted, not the rest of ~/.local (keyrings, app data, its etc/npmrc)', async () => {
    const fx = sandboxFixture();
    const local = path.join(fx.home, '.local');
    nodeAt(path.join(local, 'bin/node'));
    plant(path.join(local, 'lib/node_modules/tool/index.js'), 'console.log("tool ran")\n');
    plant(path.join(local, 'share/app/token'), 'LEAKED-app-token\n');
    plant(path.join(local, 'secret.txt'), 'LEAKED-local\n');
    plant(path.join(local, 'etc/npmrc'), '//registry.npmjs.org/:_authToken=LEAKED-npmrc\n');
    const script = `node ${local}/lib/node_modules/tool/index.js; ${catEach([`${local}/share/app/token`, `${local}/secret.txt`, `${local}/etc/npmrc`])}`;
    const r = wardWith(path.join(local, 'bin/node'), ['run', '--profile', 'node', '--', 'sh', '-c', script], fx);
    assert.equal(r.out.split('\n')[0], 'tool ran', r.err);
    assert.doesNotMatch(r.out, /:ok|LEAKED/, r.out);
    assert.match(r.out, /0:.*No such file or directory/);
    assert.match(r.out, /1:.*No such file or directory/);
    assert.match(r.out, /2:.*(Permission denied|No such file or directory)/);
  });

  it('a Node at ~/bin/node (prefix = $HOME) is refused with the reason and the fix, and nothing runs', () => {
    const fx = sandboxFixture();
    nodeAt(path.join(fx.home, 'bin/node'));
    plant(path.join(fx.home, '.config/app/token'), 'LEAKED\n');
    const r = wardWith(path.join(fx.home, 'bin/node'), ['run', ...degraded, '--', 'sh', '-c', `cat ${fx.home}/.config/app/token; touch ran`], fx);
    assert.equal(r.code, 125, r.err);
    assert.match(r.err, /NODE_PREFIX\} is .*, which is or contains your home/);
    assert.match(r.err, /fix: run Ward with a Node installed under a prefix of its own/);
    assert.doesNotMatch(r.out, /LEAKED/);
    assert.throws(() => readFileSync(path.join(fx.ws, 'ran')), /ENOENT/);
  });

  it('global npmrc files under ~/.npm-global and every nvm-installed Node are masked; the rest of nvm works', async () => {
    const t = setup();
    const nvmNode = path.join(t.home, '.nvm/versions/node/v20.1.0');
    plant(path.join(nvmNode, 'etc/npmrc'), '//registry.npmjs.org/:_authToken=LEAKED-nvm\n');
    plant(path.join(nvmNode, 'lib/node_modules/x/index.js'), 'console.log("nvm lib")\n');
    plant(path.join(t.home, '.npm-global/etc/npmrc'), '//registry.npmjs.org/:_authToken=LEAKED-global\n');
    const r = await t.sh(`node ${nvmNode}/lib/node_modules/x/index.js; ${catEach([`${nvmNode}/etc/npmrc`, `${t.home}/.npm-global/etc/npmrc`])}`, { profile: 'node' }, false);
    assert.doesNotMatch(r.out, /:ok|LEAKED/, r.out);
    assert.deepEqual(r.out.trim().split('\n').map((l) => l.replace(/^(\d:).*Permission denied.*/, '$1denied')), ['nvm lib', '0:denied', '1:denied']);
  });
});

describe('profiles: minimal grants the certificates of /etc/pki, not its private keys', () => {
  it('the effective policy grants no /etc/pki path above tls/private or CA/private, and denies both', () => {
    const eff = loadPolicy({ profile: 'minimal', workspace: tempDir() }).effective;
    const grants = [...eff.filesystem.read, ...eff.filesystem.execute, ...eff.filesystem.write].map((e) => e.path);
    for (const key of ['/etc/pki/tls/private', '/etc/pki/CA/private']) {
      assert.deepEqual(grants.filter((g) => key === g || key.startsWith(g + '/')), [], `${key} is inside a grant`);
      assert.ok(eff.filesystem.deny.some((d) => d.path === key), `${key} is not denied`);
    }
  });

  // The real files: /etc/pki of a RHEL-family host, made in a private mount namespace (an overlay
  // on /etc for this one process tree; the host's /etc is untouched). Root only.
  it('a host key in /etc/pki/tls/private cannot be read under minimal, nor with /etc granted; the CA bundle can', { skip: (process.getuid?.() !== 0 || !which('unshare')) && 'needs root and unshare(1) for a private /etc overlay' }, () => {
    const d = tempDir('ward-pki-');
    for (const dir of ['upper/pki/tls/private', 'upper/pki/tls/certs', 'upper/pki/CA/private', 'work']) mkdirSync(path.join(d, dir), { recursive: true });
    writeFileSync(path.join(d, 'upper/pki/tls/private/localhost.key'), 'LEAKED-tls-key\n');
    writeFileSync(path.join(d, 'upper/pki/CA/private/cakey.pem'), 'LEAKED-ca-key\n');
    writeFileSync(path.join(d, 'upper/pki/tls/certs/ca-bundle.crt'), 'CERTS\n');
    const fx = sandboxFixture();
    const pol = path.join(d, 'etc.json');
    writeFileSync(pol, JSON.stringify({ version: 1, extends: ['minimal'], filesystem: { read: ['/etc'] } }));
    const inside = `cat /etc/pki/tls/certs/ca-bundle.crt; ${catEach(['/etc/pki/tls/private/localhost.key', '/etc/pki/CA/private/cakey.pem'])}`;
    writeFileSync(path.join(d, 'inside.sh'), inside);
    const ward = `node ${path.join(ROOT, 'bin/ward.js')} run`;
    // The inner script is passed as it is: a command substitution's result is not parsed again.
    const script = `mount -t overlay overlay -o lowerdir=/etc,upperdir=${d}/upper,workdir=${d}/work /etc && cd ${fx.ws} && ${ward} --profile minimal -- sh -c "$(cat ${d}/inside.sh)" && echo == && ${ward} --policy ${pol} -- sh -c "$(cat ${d}/inside.sh)"`;
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { env: fx.env, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const [minimal, withEtc] = r.stdout.split('==\n');
    // Under minimal the keys are not in the sandbox at all; with /etc granted they are masked.
    for (const [out, refusal] of [[minimal!, /No such file or directory/], [withEtc!, /Permission denied/]] as const) {
      assert.match(out, /^CERTS\n/);
      assert.doesNotMatch(out, /:ok|LEAKED/, out);
      for (const l of out.trim().split('\n').slice(1)) assert.match(l, refusal, out);
    }
  });
});

describe('profiles: the default profile hides secrets files at the top of the workspace', () => {
  it('.env variants, .envrc and .yarnrc.yml cannot be read; other dotfiles and nested files can (a documented gap)', async () => {
    const t = setup();
    const hidden = ['.env', '.env.development', '.env.production.local', '.env.test', '.envrc', '.yarnrc.yml'];
    for (const f of hidden) writeFileSync(path.join(t.ws, f), `LEAKED-${f}\n`);
    writeFileSync(path.join(t.ws, '.editorconfig'), 'root = true\n');
    const r = await t.sh(`${catEach(hidden)}; cat .editorconfig`, { profile: 'default' });
    assert.doesNotMatch(r.out, /:ok|LEAKED/, r.out);
    const lines = r.out.trim().split('\n');
    assert.deepEqual(lines.slice(0, hidden.length).map((l) => /Permission denied/.test(l)), hidden.map(() => true), r.out);
    assert.equal(lines.at(-1), 'root = true');
    for (const f of hidden) assert.equal(readFileSync(path.join(t.ws, f), 'utf8'), `LEAKED-${f}\n`, `the host's ${f} is untouched`);
  });
});
