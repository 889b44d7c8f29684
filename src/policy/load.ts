/**
 * Policy loading: file -> validated sources -> expanded, merged effective policy.
 *
 * The merge, in one paragraph (documented in docs/policy.md too): `extends`
 * entries are resolved depth-first, left to right, each source merged once (the
 * first time it is reached); the file itself comes last. Path lists,
 * `network.allow`, `env.pass` and `syscalls.deny` are unions; scalars
 * (`resources.*`, `sandbox.*`, `syscalls.allow_ia32`) take the last value set;
 * `env.set` merges key by key, last value wins. Then Ward's mandatory denies are
 * added. Deny always wins over grants, whatever the order.
 */
import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { PolicyError } from '../errors.js';
import { accountHome, homeDir } from '../paths.js';
import { canonicalJson, sha256Hex } from './canonical.js';
import { expandPath, isWithin, type ExpandContext } from './expand.js';
import { isWorkspaceSecretName } from './profiles/default.js';
import { PROFILES, PROFILE_NAMES } from './profiles/index.js';
import { FS_KEYS, policySchema, type FsKey, type PathEntry, type PolicyFile } from './schema.js';
import { ALL_SECRET_PATHS, nvmNpmrcPaths, relocatedSecretPaths, socketPlaces, wardOwnDirs, wardStatePaths } from './secrets.js';
import { parseDuration, parseSize } from './units.js';
import type { Match, Rule } from '../rules/index.js';
import { parseAfter, parseInvariant, parseRevoke, type Invariant, type Parsed } from '../rules/parse.js';

export interface FsEntry {
  path: string;
  optional?: true;
}

/** What is enforced, fully expanded: the object that is hashed and recorded. */
export interface EffectivePolicy {
  version: 1;
  workspace: string;
  filesystem: Record<FsKey, FsEntry[]>;
  /** allow: lower-cased "host:port" entries; allow_local: host loopback ports. */
  network: { allow: string[]; allow_local: number[] };
  resources: {
    memory: number | null;
    pids: number | null;
    cpus: number | null;
    cpu_time: number | null;
    wall_time: number | null;
    file_size: number | null;
    open_files: number | null;
    output: number | null;
  };
  env: { pass: string[]; set: Record<string, string> };
  syscalls: { deny: string[]; allow_ia32: boolean };
  /** Brokered credentials by variable name (present only when the policy has some): where the value comes from, never the value. */
  secrets?: Record<string, { from_env?: string; from_file?: string; hosts: string[]; header: string | null }>;
  sandbox: { landlock: 'required' | 'optional' | 'off'; allow_degraded: boolean; home: 'tmpfs' | 'none' };
  /** Dynamic rules (present only when the policy has some, so other policies keep their hash). */
  rules?: Rule[];
  /** User-declared properties for `ward verify` (present only when the policy has some). */
  invariants?: Invariant[];
}

/** Where an entry came from, so a later check can point at the line a user wrote. */
export interface Origin {
  file: string;
  keyPath: string;
}

export interface LoadedPolicy {
  effective: EffectivePolicy;
  /** Canonical JSON of `effective`: the bytes the hash covers. */
  canonical: string;
  sha256: string;
  /** Profiles and files merged, in merge order. */
  sources: string[];
  /** `${list}\0${path}` or `network\0${entry}` -> where it was written. */
  origins: Map<string, Origin>;
}

export interface LoadOptions {
  /** A policy file, or a built-in profile name; neither means the `default` profile. */
  file?: string;
  profile?: string;
  workspace: string;
  home?: string;
  env?: NodeJS.ProcessEnv;
}

interface Source {
  label: string;
  policy: PolicyFile;
}

export function loadPolicy(opts: LoadOptions): LoadedPolicy {
  const env = opts.env ?? process.env;
  const home = policyHome(opts.home, env);
  const ctx: ExpandContext = { home, workspace: opts.workspace, nodePrefix: nodePrefix() };

  const sources: Source[] = [];
  const seen = new Set<string>();
  if (opts.file !== undefined && opts.profile !== undefined) {
    throw new PolicyError(opts.file, '', 'both a policy file and a profile were given', 'pass either --policy FILE or --profile NAME');
  }
  if (opts.file !== undefined) collectFile(path.resolve(opts.file), [], seen, sources);
  else collectProfile(opts.profile ?? 'default', '(command line)', [], seen, sources);

  return build(sources, ctx, env, home);
}

/** Builds the effective policy from a policy object (the library API's entry point). */
export function loadPolicyObject(policy: unknown, opts: Omit<LoadOptions, 'file' | 'profile'> & { label?: string }): LoadedPolicy {
  const env = opts.env ?? process.env;
  const home = policyHome(opts.home, env);
  const label = opts.label ?? '(policy object)';
  const parsed = validate(policy, label, undefined);
  const sources: Source[] = [];
  const seen = new Set<string>();
  for (const ext of parsed.extends ?? []) {
    if (isProfileRef(ext)) collectProfile(ext, label, [label], seen, sources);
    else collectFile(path.resolve(ext), [label], seen, sources);
  }
  sources.push({ label, policy: parsed });
  return build(sources, { home, workspace: opts.workspace, nodePrefix: nodePrefix() }, env, home);
}

/** Bounds the kernel (or Ward's exact arithmetic) sets on resource values, checked at load so a bad value is a policy error, not a failed launch. */
const MAX_SIZE_TEXT = '8 PiB (2^53 - 1 bytes)';
const MAX_DURATION_S = 8760 * 3600;
/** PID_MAX_LIMIT on 64-bit Linux: pids.max refuses more. */
const MAX_PIDS = 4_194_304;
/** The most fs.nr_open can ever be (INT_MAX rounded down to a multiple of 64); RLIMIT_NOFILE is capped by it. */
const MAX_OPEN_FILES = 1_073_741_816;

/** The home `~` means: the caller's, or HOME's (absolute, or refused: see paths.ts homeDir). */
function policyHome(home: string | undefined, env: NodeJS.ProcessEnv): string {
  return home === undefined ? homeDir(env) : homeDir({ HOME: home });
}

function isProfileRef(ref: string): boolean {
  return !ref.includes('/') && !/\.(ya?ml|json)$/i.test(ref);
}

function collectProfile(name: string, from: string, stack: string[], seen: Set<string>, out: Source[]): void {
  const profile = PROFILES[name];
  if (!profile) {
    throw new PolicyError(from, 'extends', `unknown profile "${name}"`, `use one of: ${PROFILE_NAMES.join(', ')}, or a path to a policy file (e.g. ./base.yaml)`);
  }
  const label = `profile:${name}`;
  // Built-in profiles are typed constants, checked against the schema by the tests: no need
  // to pay for validation (and the schema's construction) on every `ward run`.
  collect(label, profile, stack, seen, out, path.dirname(from));
}

function collectFile(file: string, stack: string[], seen: Set<string>, out: Source[]): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const from = stack.at(-1);
    throw new PolicyError(
      from ?? file,
      from ? 'extends' : '',
      code === 'ENOENT' ? `policy file ${file} does not exist` : `cannot read policy file ${file}: ${(e as Error).message}`,
      code === 'ENOENT' ? 'check the path (relative paths in extends are relative to the file that names them)' : 'check its permissions',
    );
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false, strict: true });
  if (doc.errors.length > 0) {
    const err = doc.errors[0]!;
    const line = lines.linePos(err.pos[0]).line;
    throw new PolicyError(file, '', `not valid YAML/JSON: ${err.message.split('\n')[0]}`, 'fix the syntax at that line', line);
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch (e) {
    // The yaml library refuses an alias that expands too far (a "billion laughs" document) by throwing.
    throw new PolicyError(file, '', `not a usable policy: ${(e as Error).message.split('\n')[0]} (YAML aliases that expand into too large a document)`, 'write the lists out instead of nesting *alias references');
  }
  if (raw === null || raw === undefined) {
    throw new PolicyError(file, '', 'the policy file is empty', 'write at least `extends: [default]`, or use --profile NAME');
  }
  collect(file, validate(raw, file, { doc, lines }), stack, seen, out, path.dirname(file));
}

function collect(label: string, policy: PolicyFile, stack: string[], seen: Set<string>, out: Source[], dir: string): void {
  if (stack.includes(label)) {
    throw new PolicyError(stack.at(-1)!, 'extends', `extends cycle: ${[...stack, label].join(' -> ')}`, 'remove one of the extends entries that closes the loop');
  }
  if (seen.has(label)) return;
  seen.add(label);
  const next = [...stack, label];
  for (const ext of policy.extends ?? []) {
    if (isProfileRef(ext)) collectProfile(ext, label, next, seen, out);
    else collectFile(path.resolve(dir, ext), next, seen, out);
  }
  out.push({ label, policy });
}

// ---------------------------------------------------------------------------
// Validation with errors a person can act on

interface DocInfo {
  doc: Document;
  lines: LineCounter;
}

function validate(raw: unknown, file: string, info: DocInfo | undefined): PolicyFile {
  const r = policySchema().safeParse(raw);
  if (r.success) return r.data;
  const issue = pickIssue(r.error.issues);
  const keyPath = formatKeyPath(issue.path);
  const line = info ? lineOf(info, issue.path, issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined) : undefined;
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    const known = knownKeysAt(issue.path);
    const guess = closest(key, known);
    const at = keyPath ? `${keyPath}.${key}` : key;
    throw new PolicyError(
      file,
      at,
      `unknown key "${key}"`,
      `${guess ? `did you mean "${guess}"? ` : ''}known keys here: ${known.join(', ')} (an unknown key is never ignored: a typo could weaken the policy)`,
      line,
    );
  }
  const described = describeAt(issue.path);
  const got = valueAt(raw, issue.path);
  const problem =
    issue.code === 'invalid_type' && got === undefined
      ? 'missing value'
      : `invalid value ${truncate(JSON.stringify(got) ?? String(got))}`;
  throw new PolicyError(file, keyPath, problem, described ? `expected ${described}` : issue.message, line);
}

type Issue = z.core.$ZodIssue;

/** For a union, report the branch that got furthest, so the message is about the user's intent. */
function pickIssue(issues: readonly Issue[]): Issue {
  const first = issues[0]!;
  if (first.code !== 'invalid_union') return first;
  let best: Issue | undefined;
  for (const branch of first.errors) {
    for (const inner of branch) {
      if (inner.code === 'invalid_type' && inner.path.length === 0) continue; // wrong shape entirely
      const candidate = { ...inner, path: [...first.path, ...inner.path] } as Issue;
      if (!best || candidate.path.length > best.path.length) best = candidate;
    }
  }
  return best ? pickIssue([best]) : first;
}

function formatKeyPath(p: readonly PropertyKey[]): string {
  return p.reduce<string>((acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${String(seg)}` : String(seg)), '');
}

/** Walks the schema along a key path, unwrapping optionals, collecting the innermost description. */
function schemaAt(p: readonly PropertyKey[]): { schema: unknown; description: string | undefined } {
  let s: any = policySchema();
  let description: string | undefined = s.description;
  for (const seg of p) {
    for (;;) {
      description = s?.description ?? description;
      const t = s?._zod?.def?.type;
      if (t === 'optional' || t === 'nullable' || t === 'default') s = s._zod.def.innerType;
      else break;
    }
    const t = s?._zod?.def?.type;
    if (t === 'object') s = s.shape?.[seg as string];
    else if (t === 'array') s = s._zod.def.element;
    else if (t === 'record') s = s._zod.def.valueType;
    else if (t === 'union') {
      s = (s._zod.def.options as any[]).find((o) => o?._zod?.def?.type === 'object' && o.shape?.[seg as string]) ?? s;
      if (s?._zod?.def?.type === 'object') s = s.shape[seg as string];
    } else s = undefined;
    if (s === undefined) break;
    description = s?.description ?? description;
  }
  while (s && (s._zod?.def?.type === 'optional' || s._zod?.def?.type === 'nullable')) {
    s = s._zod.def.innerType;
    description = s?.description ?? description;
  }
  return { schema: s, description };
}

function describeAt(p: readonly PropertyKey[]): string | undefined {
  return schemaAt(p).description;
}

function knownKeysAt(p: readonly PropertyKey[]): string[] {
  const s: any = schemaAt(p).schema;
  if (s?._zod?.def?.type === 'object') return Object.keys(s.shape);
  if (s?._zod?.def?.type === 'union') {
    const obj = (s._zod.def.options as any[]).find((o) => o?._zod?.def?.type === 'object');
    if (obj) return Object.keys(obj.shape);
  }
  return [];
}

function valueAt(raw: unknown, p: readonly PropertyKey[]): unknown {
  let v: any = raw;
  for (const seg of p) v = v?.[seg as any];
  return v;
}

function lineOf(info: DocInfo, p: readonly PropertyKey[], key?: string): number | undefined {
  let node: any = info.doc.contents;
  let offset: number | undefined = node?.range?.[0];
  for (const seg of key === undefined ? p : [...p, key]) {
    if (isMap(node)) {
      const pair: any = node.items.find((it: any) => it.key?.value === seg);
      if (!pair) break;
      offset = pair.key?.range?.[0] ?? offset;
      node = pair.value;
      if (seg !== key) offset = node?.range?.[0] ?? offset;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
      offset = node?.range?.[0] ?? offset;
    } else break;
  }
  return offset === undefined ? undefined : info.lines.linePos(offset).line;
}

function closest(word: string, options: string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const o of options) {
    const d = editDistance(word.toLowerCase(), o.toLowerCase());
    if (d < bestD) [best, bestD] = [o, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

// ---------------------------------------------------------------------------
// Merge

function build(sources: Source[], ctx: ExpandContext, env: NodeJS.ProcessEnv, home: string): LoadedPolicy {
  const origins = new Map<string, Origin>();
  const fs = Object.fromEntries(FS_KEYS.map((k) => [k, new Map<string, FsEntry>()])) as Record<FsKey, Map<string, FsEntry>>;
  const network = new Set<string>();
  const local = new Set<number>();
  const secrets = new Map<string, NonNullable<EffectivePolicy['secrets']>[string]>();
  const pass = new Set<string>();
  const set: Record<string, string> = {};
  const deny = new Set<string>();
  // Rules and invariants: the union over all sources, in merge order, each once.
  const rules = new Map<string, Rule>();
  const invariants = new Map<string, Invariant>();
  const eff: EffectivePolicy = {
    version: 1,
    workspace: ctx.workspace,
    filesystem: { read: [], write: [], execute: [], append: [], visible: [], deny: [] },
    network: { allow: [], allow_local: [] },
    resources: { memory: null, pids: null, cpus: null, cpu_time: null, wall_time: null, file_size: null, open_files: null, output: null },
    env: { pass: [], set: {} },
    syscalls: { deny: [], allow_ia32: false },
    sandbox: { landlock: 'required', allow_degraded: false, home: 'tmpfs' },
  };

  for (const { label, policy } of sources) {
    for (const key of FS_KEYS) {
      (policy.filesystem?.[key] ?? []).forEach((entry: PathEntry, i: number) => {
        const raw = typeof entry === 'string' ? entry : entry.path;
        const optional = typeof entry === 'string' ? false : entry.optional === true;
        const r = expandPath(raw, ctx);
        const keyPath = `filesystem.${key}[${i}]`;
        if (!r.ok) throw new PolicyError(label, keyPath, r.problem, r.fix);
        const prev = fs[key].get(r.path);
        // Required wins over optional: if any source insists on the path, its absence is an error.
        fs[key].set(r.path, optional && (prev === undefined || prev.optional) ? { path: r.path, optional: true } : { path: r.path });
        if (!origins.has(`${key}\0${r.path}`)) origins.set(`${key}\0${r.path}`, { file: label, keyPath });
      });
    }
    (policy.network?.allow ?? []).forEach((hp, i) => {
      network.add(hp.toLowerCase());
      if (!origins.has(`network\0${hp.toLowerCase()}`)) origins.set(`network\0${hp.toLowerCase()}`, { file: label, keyPath: `network.allow[${i}]` });
    });
    (policy.network?.allow_local ?? []).forEach((entry, i) => {
      const port = typeof entry === 'number' ? entry : Number(entry.slice(entry.lastIndexOf(':') + 1));
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        throw new PolicyError(label, `network.allow_local[${i}]`, `"${entry}" is not a port between 1 and 65535`, 'write a port number such as 3000 or "127.0.0.1:3000"');
      }
      local.add(port);
    });
    for (const [name, sec] of Object.entries(policy.secrets ?? {})) {
      const keyPath = `secrets.${name}`;
      if ((sec.from_env === undefined) === (sec.from_file === undefined)) {
        throw new PolicyError(label, keyPath, 'a secret needs exactly one of from_env and from_file', `write "from_env: ${name}" or "from_file: ~/.config/ward/${name.toLowerCase()}"`);
      }
      let fromFile: string | undefined;
      if (sec.from_file !== undefined) {
        const r = expandPath(sec.from_file, ctx);
        if (!r.ok) throw new PolicyError(label, `${keyPath}.from_file`, r.problem, r.fix);
        fromFile = r.path;
      }
      // A later source replaces a secret of the same name as a whole.
      secrets.set(name, {
        ...(sec.from_env !== undefined ? { from_env: sec.from_env } : {}),
        ...(fromFile !== undefined ? { from_file: fromFile } : {}),
        hosts: [...new Set(sec.hosts.map((h) => h.toLowerCase()))].sort(),
        header: sec.header?.toLowerCase() ?? null,
      });
      if (!origins.has(`secrets\0${name}`)) origins.set(`secrets\0${name}`, { file: label, keyPath });
    }
    (policy.rules ?? []).forEach((rule, i) => {
      const keyPath = `rules[${i}]`;
      const list = (v: string | string[]) => (typeof v === 'string' ? [v] : v);
      const parseAll = (key: 'after' | 'revoke', parse: (t: string, c: ExpandContext) => Parsed<Match>): Match[] =>
        list(rule[key]).map((text, j) => {
          const r = parse(text, ctx);
          if (!r.ok) throw new PolicyError(label, `${keyPath}.${key}${typeof rule[key] === 'string' ? '' : `[${j}]`}`, `"${text}", column ${r.column}: ${r.problem}`, r.fix);
          return r.value;
        });
      const parsed: Rule = { after: parseAll('after', parseAfter), revoke: parseAll('revoke', parseRevoke) };
      const key = canonicalJson(parsed);
      if (!rules.has(key)) rules.set(key, parsed);
    });
    (policy.invariants ?? []).forEach((text, i) => {
      const r = parseInvariant(text, ctx);
      if (!r.ok) throw new PolicyError(label, `invariants[${i}]`, `invariant ${i + 1} "${text}", column ${r.column}: ${r.problem}`, r.fix);
      const key = canonicalJson(r.value);
      if (!invariants.has(key)) invariants.set(key, r.value);
    });
    const res = policy.resources ?? {};
    // Scalars: the last source to set one is where it was written (for errors found later, e.g. at compile).
    for (const k of Object.keys(res)) origins.set(`resources\0${k}`, { file: label, keyPath: `resources.${k}` });
    const bad = (k: string, problem: string, fix: string) => new PolicyError(label, `resources.${k}`, `${JSON.stringify(res[k as keyof typeof res])} ${problem}`, fix);
    for (const k of ['memory', 'file_size', 'output'] as const) {
      if (res[k] === undefined) continue;
      const v = parseSize(res[k]);
      // Checked after parsing: "0k" and "0.5" pass the schema's pattern and round down to 0.
      if (v !== null && v < 1) throw bad(k, 'is less than one byte', 'write a size of at least 1 byte, e.g. "64MiB", or "unlimited"');
      // The kernel takes these as 64-bit integers, Ward as exact ones: beyond 2^53 neither holds.
      if (v !== null && v > Number.MAX_SAFE_INTEGER) throw bad(k, `is more than ${MAX_SIZE_TEXT}`, 'write a smaller size, or "unlimited"');
      eff.resources[k] = v;
    }
    for (const k of ['cpu_time', 'wall_time'] as const) {
      if (res[k] === undefined) continue;
      const v = parseDuration(res[k]);
      // Ward counts wall_time in milliseconds and cpu_time in whole seconds (RLIMIT_CPU): a
      // value that rounds to 0 would kill the command at once.
      if (v !== null && (k === 'wall_time' ? Math.round(v * 1000) < 1 : v <= 0)) throw bad(k, 'is no time at all', `write a duration of at least ${k === 'wall_time' ? '1ms' : '1s'}, e.g. "30s", or "unlimited"`);
      if (v !== null && v > MAX_DURATION_S) throw bad(k, 'is more than a year', 'write a shorter duration (at most "8760h"), or "unlimited"');
      eff.resources[k] = v;
    }
    for (const k of ['pids', 'open_files'] as const) {
      if (res[k] === undefined) continue;
      const v = res[k] === 'unlimited' ? null : res[k];
      const max = k === 'pids' ? MAX_PIDS : MAX_OPEN_FILES;
      if (v !== null && v > max) throw bad(k, `is more than the kernel accepts (${max})`, `write at most ${max}, or "unlimited"`);
      eff.resources[k] = v;
    }
    if (res.cpus !== undefined) {
      const v = res.cpus === 'unlimited' ? null : res.cpus;
      if (v !== null && Math.round(v * 100_000) < 1000) throw bad('cpus', 'is less than the kernel\'s smallest CPU quota (0.01 cores: 1 ms per 100 ms period)', 'write at least 0.01, or "unlimited"');
      eff.resources.cpus = v;
    }
    for (const name of policy.env?.pass ?? []) pass.add(name);
    Object.assign(set, policy.env?.set ?? {});
    for (const name of policy.syscalls?.deny ?? []) deny.add(name);
    if (policy.syscalls?.allow_ia32 !== undefined) eff.syscalls.allow_ia32 = policy.syscalls.allow_ia32;
    if (policy.sandbox?.landlock !== undefined) eff.sandbox.landlock = policy.sandbox.landlock;
    if (policy.sandbox?.allow_degraded !== undefined) eff.sandbox.allow_degraded = policy.sandbox.allow_degraded;
    if (policy.sandbox?.home !== undefined) eff.sandbox.home = policy.sandbox.home;
  }

  // The node profile grants ${NODE_PREFIX}/bin as Node's own programs; with a Node at ~/bin/node
  // (or /home/bin/node) that is the user's own bin, and a grant of it (or of more) was never meant.
  if (sources.some((s) => s.label === 'profile:node') && isWithin(home, ctx.nodePrefix)) {
    throw new PolicyError(
      'profile:node',
      'filesystem.execute',
      `the Node.js running Ward is ${process.execPath}, so \${NODE_PREFIX} is ${ctx.nodePrefix}, which is or contains your home (${home}): the node profile grants \${NODE_PREFIX}/bin as Node's own programs, and ${ctx.nodePrefix}/bin holds yours`,
      'run Ward with a Node installed under a prefix of its own (the system\'s /usr/bin/node, nvm, or an unpacked release such as ~/.local/node-v20/bin/node), or use a policy that extends minimal and grants that Node binary by path',
    );
  }

  if (sources.some((s) => s.label === 'profile:default')) {
    for (const name of workspaceSecretFiles(ctx.workspace)) {
      // A name Ward cannot write as a policy path would stay readable: refused, never skipped.
      const r = /[*?[\]{}$\n]/.test(name) ? { ok: false as const, problem: 'it contains a glob character, "$" or a newline' } : expandPath(`\${WORKSPACE}/${name}`, ctx);
      if (!r.ok) throw new PolicyError('profile:default', 'filesystem.deny', `${path.join(ctx.workspace, name)} looks like a secrets file the default profile hides, but it cannot be masked: ${r.problem}`, 'rename it without glob characters or "$", or move it out of the workspace');
      if (!fs.deny.has(r.path)) fs.deny.set(r.path, { path: r.path, optional: true });
      if (!origins.has(`deny\0${r.path}`)) origins.set(`deny\0${r.path}`, { file: 'profile:default', keyPath: 'filesystem.deny' });
    }
  }

  // Mandatory denies: never granted, whatever the policy says.
  const lastLabel = sources.at(-1)?.label ?? '(policy)';
  const own = wardOwnDirs(env, home);
  const relocated = relocatedSecretPaths(env === process.env ? [env] : [env, process.env]);
  if (relocated.problem) {
    const { name, value } = relocated.problem;
    throw new PolicyError('ward:mandatory-deny', 'filesystem.deny', `${name} is "${value}", a relative path: it names a credential store Ward masks, and Ward cannot tell where it is`, `set ${name} to an absolute path, or unset it`);
  }
  // The account's own home too (the password database's), when HOME names another place (a
  // harness's or CI's scratch HOME): its credential stores, and Ward's files of runs made with
  // the real HOME, are still there. Ward's directories there are optional: Ward does not make them.
  const account = accountHome();
  const other = account !== undefined && account !== home ? account : undefined;
  const inOther = other === undefined ? [] : [...ALL_SECRET_PATHS.filter((p) => p.startsWith('~')), ...nvmNpmrcPaths(other), ...wardStatePaths({}, other)];
  const mandatory = [
    ...[...ALL_SECRET_PATHS, ...relocated.paths, ...nvmNpmrcPaths(home), ...own, ...socketPlaces(env, home)].map((raw) => ({ raw, ctx })),
    ...inOther.map((raw) => ({ raw, ctx: { ...ctx, home: other! } })),
  ];
  for (const { raw, ctx: at } of mandatory) {
    const r = expandPath(raw, at);
    // A deny that cannot be resolved would leave its secret (or Ward's own key) unhidden.
    if (!r.ok) {
      const where = at.home === home ? '' : ` in your account's home ${at.home} (from the password database; HOME is ${home})`;
      throw new PolicyError('ward:mandatory-deny', 'filesystem.deny', `Ward's mandatory deny ${raw}${where} cannot be resolved (${r.problem}), so it could not be hidden`, at.home === home ? 'set HOME (and any XDG_STATE_HOME, XDG_CONFIG_HOME, XDG_CACHE_HOME) to plain absolute paths, without ., .., $, or glob characters' : 'give the account a home directory with a plain absolute path, without ., .., $, or glob characters (`usermod -d`)');
    }
    // Ward's own directories are required, not optional: compilePlan creates them before it
    // plans, so one that is missing then is a fault to stop on, never a mask silently skipped.
    if (at === ctx && own.includes(raw)) fs.deny.set(r.path, { path: r.path });
    else if (!fs.deny.has(r.path)) fs.deny.set(r.path, { path: r.path, optional: true });
    if (!origins.has(`deny\0${r.path}`)) origins.set(`deny\0${r.path}`, { file: 'ward:mandatory-deny', keyPath: 'filesystem.deny' });
  }

  for (const key of FS_KEYS) eff.filesystem[key] = [...fs[key].values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  eff.network.allow = [...network].sort();
  eff.network.allow_local = [...local].sort((a, b) => a - b);
  if (secrets.size > 0) eff.secrets = Object.fromEntries([...secrets.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
  for (const name of ['PATH', 'HOME', 'LANG', 'TERM']) pass.add(name);
  eff.env.pass = [...pass].sort();
  eff.env.set = Object.fromEntries(Object.entries(set).sort(([a], [b]) => (a < b ? -1 : 1)));
  eff.syscalls.deny = [...deny].sort();
  if (rules.size > 0) eff.rules = [...rules.values()];
  if (invariants.size > 0) eff.invariants = [...invariants.values()];

  checkContradictions(eff, origins, lastLabel);
  const canonical = canonicalJson(eff);
  return { effective: eff, canonical, sha256: sha256Hex(canonical), sources: sources.map((s) => s.label), origins };
}

/** Grants that cannot both hold for one path are a policy bug, reported where they were written. */
function checkContradictions(eff: EffectivePolicy, origins: Map<string, Origin>, fallback: string): void {
  const pairs: [FsKey, FsKey, string][] = [
    ['visible', 'read', 'a visible path is one whose bytes must never be read'],
    ['visible', 'write', 'a visible path is one whose bytes must never be read or changed'],
    ['visible', 'execute', 'executing a file reads it'],
    ['append', 'write', 'append-only means the file may not be rewritten'],
  ];
  for (const [a, b, why] of pairs) {
    const inB = new Set(eff.filesystem[b].map((e) => e.path));
    for (const e of eff.filesystem[a]) {
      if (!inB.has(e.path)) continue;
      const o = origins.get(`${a}\0${e.path}`) ?? origins.get(`${b}\0${e.path}`);
      throw new PolicyError(
        o?.file ?? fallback,
        o?.keyPath ?? `filesystem.${a}`,
        `contradictory grants: ${e.path} is in both filesystem.${a} and filesystem.${b} (${why})`,
        `keep it in one of the two lists`,
      );
    }
  }
}

let cachedNodePrefix: string | undefined;
function nodePrefix(): string {
  if (cachedNodePrefix === undefined) {
    let exe = process.execPath;
    try {
      exe = realpathSync(exe);
    } catch {
      /* keep execPath */
    }
    cachedNodePrefix = path.dirname(path.dirname(exe));
  }
  return cachedNodePrefix;
}

/** The names at the top of `workspace` the default profile hides (isWorkspaceSecretName); none when it cannot be listed (a missing workspace is reported by the plan). */
function workspaceSecretFiles(workspace: string): string[] {
  try {
    return readdirSync(workspace).filter(isWorkspaceSecretName).sort();
  } catch {
    return [];
  }
}
