/**
 * From the policy's `network` section to what the egress path needs: the
 * broker's rules, the host loopback ports, and the ports the relay listens
 * on inside the sandbox. Entries the broker cannot enforce exactly are
 * refused here, at compile time, with the fix.
 */
import { readFileSync } from 'node:fs';
import type { MountOp } from '../plan/mounts.js';
import { bindShowing } from '../plan/visible.js';
import { realOr } from '../paths.js';
import type { LoadedPolicy } from '../policy/load.js';
import { PolicyError, WardError } from '../errors.js';
import { matchRule, type EgressRule } from './broker.js';

/** Where the HTTP proxy listens inside the sandbox (its own loopback). */
export const PROXY_PORT = 3128;

export interface NetworkPlan {
  allow: EgressRule[];
  allowLocal: number[];
  proxyPort: number;
  /** TCP ports the relay listens on inside the sandbox (53 for DNS is implicit). */
  ports: number[];
  /** Set in the sandbox: clients that honour proxy variables use the proxy; others connect directly. */
  env: Record<string, string>;
  /** Brokered credentials: where each may go and how its value is read (at launch, outside the sandbox). */
  secrets: PlannedSecret[];
}

export interface PlannedSecret {
  name: string;
  hosts: EgressRule[];
  header: string | null;
  /** Where the value comes from, for records and errors ("env GITHUB_TOKEN", "file /home/u/.token"). */
  source: string;
  /** Reads the value; throws a WardError naming the fix when it is missing. Not part of the plan's hash. */
  read: () => string;
}

export function planNetwork(policy: LoadedPolicy, callerEnv: NodeJS.ProcessEnv = process.env): NetworkPlan | null {
  const { allow, allow_local: allowLocal } = policy.effective.network;
  const declared = policy.effective.secrets ?? {};
  if (allow.length === 0 && allowLocal.length === 0) {
    const first = Object.keys(declared)[0];
    if (first !== undefined) {
      const o = policy.origins.get(`secrets\0${first}`);
      throw new PolicyError(o?.file ?? '(policy)', o?.keyPath ?? 'secrets', `secret ${first} has hosts, but network.allow is empty: it could never be sent`, `add its hosts to network.allow, or remove the secret`);
    }
    return null;
  }
  const rules: EgressRule[] = [];
  for (const entry of allow) {
    const o = policy.origins.get(`network\0${entry}`);
    const refuse = (problem: string, fix: string): never => {
      throw new PolicyError(o?.file ?? '(policy)', o?.keyPath ?? 'network.allow', problem, fix);
    };
    if (entry.startsWith('[')) {
      refuse(`"${entry}": IPv6 destinations are not supported yet (the sandbox has IPv4 loopback only)`, 'name the host instead, or use its IPv4 address');
    }
    const colon = entry.lastIndexOf(':');
    const host = entry.slice(0, colon);
    const portText = entry.slice(colon + 1);
    if (portText === '*') {
      refuse(`"${entry}": a wildcard port cannot be enforced for raw connections`, `list each port, e.g. "${host}:443"`);
    }
    const port = Number(portText);
    if (!Number.isInteger(port) || port < 1 || port > 65535) refuse(`"${entry}": ${portText} is not a port between 1 and 65535`, 'use a port such as 443');
    if (host === '*' || host === '*.' || /^\*\.[^.]+$/.test(host)) {
      refuse(`"${entry}": a wildcard over a whole top-level domain allows nearly everything`, 'name the domain, e.g. "*.github.com:443"');
    }
    if (host.includes('*', 1) || (host.includes('*') && !host.startsWith('*.'))) refuse(`"${entry}": "*" is allowed only as the first label ("*.example.com")`, 'write "*.example.com:443"');
    if (/^127\.|^0\.|^localhost$/.test(host)) refuse(`"${entry}": the host's loopback is reached through network.allow_local`, `use network.allow_local: [${port}]`);
    if (port === 53) refuse(`"${entry}": port 53 is Ward's own DNS inside the sandbox`, 'DNS is answered by Ward for allowed names; remove the entry');
    if (port === PROXY_PORT) refuse(`"${entry}": port ${PROXY_PORT} is Ward's HTTP proxy inside the sandbox`, 'this port cannot be allowed yet');
    rules.push({ host, port });
  }
  for (const port of allowLocal) {
    if (port === 53 || port === PROXY_PORT) {
      throw new PolicyError(policy.sources.at(-1) ?? '(policy)', 'network.allow_local', `port ${port} is used by Ward inside the sandbox (DNS, HTTP proxy)`, 'serve the local service on another port');
    }
  }
  const ports = [...new Set([...rules.map((r) => r.port), ...allowLocal, PROXY_PORT])].sort((a, b) => a - b);
  if (ports.length > 64) {
    throw new PolicyError(policy.sources.at(-1) ?? '(policy)', 'network.allow', `${ports.length} distinct ports; the relay listens on at most 64`, 'allow fewer distinct ports');
  }
  const proxy = `http://127.0.0.1:${PROXY_PORT}`;
  const env: Record<string, string> = {
    HTTP_PROXY: proxy,
    HTTPS_PROXY: proxy,
    http_proxy: proxy,
    https_proxy: proxy,
    NO_PROXY: 'localhost,127.0.0.1,::1',
    no_proxy: 'localhost,127.0.0.1,::1',
    // Node >= 24 reads the variables above only when told to.
    NODE_USE_ENV_PROXY: '1',
  };
  const secrets = planSecrets(policy, rules, callerEnv);
  if (secrets.length > 0) {
    // Clients find the run's CA (added to the system bundle at launch) through the usual variables.
    const bundle = '/etc/ssl/certs/ca-certificates.crt';
    for (const k of ['SSL_CERT_FILE', 'NODE_EXTRA_CA_CERTS', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO', 'PIP_CERT']) env[k] = bundle;
  }
  return { allow: rules, allowLocal: [...allowLocal], proxyPort: PROXY_PORT, ports, env, secrets };
}

/**
 * A brokered credential's file must be out of the sandbox's sight. Checked on the plan's mounts,
 * by real path: a grant of a symlink binds what it points to, and a from_file naming a symlink
 * is read through it, so a check on the names written lets a link carry the file into a grant.
 */
export function refuseVisibleSecretFiles(policy: LoadedPolicy, ops: MountOp[]): void {
  for (const [name, sec] of Object.entries(policy.effective.secrets ?? {})) {
    if (sec.from_file === undefined) continue;
    const file = sec.from_file;
    const real = realOr(file); // missing: refused when read at launch; a name inside a grant is refused now
    const o = policy.origins.get(`secrets\0${name}`);
    const refuse = (problem: string, fix: string): never => {
      throw new PolicyError(o?.file ?? '(policy)', `${o?.keyPath ?? `secrets.${name}`}.from_file`, problem, fix);
    };
    const shows = bindShowing(ops, real);
    if (shows) refuse(`${file}${real !== file ? ` (really ${real})` : ''} is visible inside the sandbox through the grant of ${shows.dest}, so the sandbox could read the credential itself`, `keep the file outside every granted path, or add "${real}" to filesystem.deny`);
    const link = real !== file ? bindShowing(ops, file) : null;
    if (link) refuse(`${file} lies inside the grant of ${link.dest}: the sandbox could point it at another file, which Ward would read and send as the credential`, `name the file by its real path (${real}), outside every granted path`);
  }
}

function planSecrets(policy: LoadedPolicy, rules: EgressRule[], env: NodeJS.ProcessEnv): PlannedSecret[] {
  const eff = policy.effective;
  const out: PlannedSecret[] = [];
  for (const [name, sec] of Object.entries(eff.secrets ?? {})) {
    const o = policy.origins.get(`secrets\0${name}`);
    const refuse = (key: string, problem: string, fix: string): never => {
      throw new PolicyError(o?.file ?? '(policy)', `${o?.keyPath ?? `secrets.${name}`}${key}`, problem, fix);
    };
    const hosts: EgressRule[] = sec.hosts.map((entry) => {
      const colon = entry.lastIndexOf(':');
      const host = entry.slice(0, colon);
      const port = Number(entry.slice(colon + 1));
      if (host.includes('*') || !Number.isInteger(port)) refuse('.hosts', `"${entry}": a brokered credential goes to named hosts, not patterns`, 'list each host:port');
      if (!matchRule(rules, host, port)) refuse('.hosts', `"${entry}" is not in network.allow, so the credential could never be sent there`, `add "${entry}" to network.allow`);
      return { host, port };
    });
    // The point is that the sandbox never sees the value: a variable it is given would hand it over.
    // (Whether from_file is visible is checked on the mount plan: refuseVisibleSecretFiles.)
    if (sec.from_env !== undefined) {
      const v = sec.from_env;
      if (eff.env.pass.includes(v)) {
        refuse('.from_env', `$${v} is passed into the sandbox (env.pass; PATH, HOME, LANG and TERM always are), so the sandbox would get the credential's real value in its environment`, `remove ${v} from env.pass (the broker adds the value on the way out; the sandbox never needs it), or keep the credential in a variable the sandbox is not given and name that in from_env`);
      }
      if (Object.hasOwn(eff.env.set, v)) refuse('.from_env', `$${v} is also set by env.set: the sandbox's ${v} would not be the credential's placeholder`, `remove ${v} from env.set, or read the credential from another variable`);
    }
    const source = sec.from_env !== undefined ? `env ${sec.from_env}` : `file ${sec.from_file}`;
    const read = (): string => {
      let v: string | undefined;
      if (sec.from_env !== undefined) {
        v = env[sec.from_env];
        if (v === undefined || v === '') throw new WardError(`secret ${name}: $${sec.from_env} is not set in Ward's environment`, { step: 'secrets', fix: `export ${sec.from_env}=... before running Ward, or use from_file` });
      } else {
        try {
          v = readFileSync(sec.from_file!, 'utf8').split('\n')[0]!.trim();
        } catch (e) {
          throw new WardError(`secret ${name}: cannot read ${sec.from_file}: ${(e as Error).message}`, { step: 'secrets', fix: 'create the file (mode 0600) with the value on its first line' });
        }
        if (!v) throw new WardError(`secret ${name}: ${sec.from_file} is empty`, { step: 'secrets', fix: 'put the value on the first line' });
      }
      if (/[\r\n]/.test(v)) throw new WardError(`secret ${name}: the value contains a line break`, { step: 'secrets', fix: 'a header value is one line' });
      return v;
    };
    out.push({ name, hosts, header: sec.header, source, read });
  }
  return out;
}
