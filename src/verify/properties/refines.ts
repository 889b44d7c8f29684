/**
 * `--refines BASE`: the policy stays inside the baseline on every dimension of the effective
 * policy that can give the sandbox more, not only on what it may open and where it may
 * connect. A refinement that keeps the baseline's file grants but turns Landlock off, lifts the
 * memory limit or passes AWS_SECRET_ACCESS_KEY through is not inside the baseline.
 *
 * Every key of the policy schema (src/policy/schema.ts) has an entry in REFINES_TABLE: a check
 * that compares it, or `none` with the reason it grants nothing. test/verify/refines.test.ts
 * walks the schema and fails when a key has no entry, so a new key cannot silently escape
 * refinement. The table is also what runs: refinesChecks() runs every check the table names.
 *
 * How each is decided:
 * - paths (filesystem.*) and destinations (network.*, a secret's hosts): set inclusion, Z3 (or
 *   prefix reasoning) confirmed by the exact procedure (./decide.ts), as every path and
 *   destination question of `ward verify`;
 * - everything else is finite data compared directly in TypeScript (no solver: there is
 *   nothing to search), by the order written next to each check below.
 */
import { canonicalJson } from '../../policy/canonical.js';
import type { EffectivePolicy } from '../../policy/load.js';
import { formatBytes } from '../../policy/units.js';
import type { Encoder } from '../smt/encode.js';
import type { CheckFn } from '../smt/z3.js';
import { decideDests, decidePaths } from './decide.js';
import { ACCESSES, accessSets, grantText, hostPatterns, parseHostEntry } from './model.js';
import { matchesHost } from './exact.js';

/** One finding of the comparison: a loosening (with the key and both values), or no answer. */
export type RefinesCheck =
  | { status: 'VIOLATED'; key: string; counterexample: string; detail: string }
  | { status: 'UNKNOWN' | 'ERROR'; key: string; detail: string };

export interface RefinesContext {
  enc: Encoder;
  mine: EffectivePolicy;
  base: EffectivePolicy;
  timeoutMs: number;
  check: CheckFn;
  /** The policy entries that cover a path (for a path counterexample's detail). */
  explain: (p: string) => string;
}

type Check = (c: RefinesContext) => Promise<RefinesCheck[]> | RefinesCheck[];

const loosened = (key: string, mine: string, base: string, why: string): RefinesCheck => ({
  status: 'VIOLATED',
  key,
  counterexample: `${key}: ${mine} (baseline: ${base})`,
  detail: why,
});

// ---------------------------------------------------------------------------
// Paths and destinations (solver, confirmed by the exact procedure)

const paths: Check = async (c) => {
  const mine = accessSets(c.mine);
  const theirs = accessSets(c.base);
  const out: RefinesCheck[] = [];
  // One witness per access, so a report names every kind of access that widened.
  for (const access of ACCESSES) {
    const w = await decidePaths(c.enc, [mine[access]], [theirs[access]], c.timeoutMs, undefined, c.check);
    if (w.status === 'error') out.push({ status: 'ERROR', key: 'filesystem', detail: `${access}: ${w.reason}` });
    else if (w.status === 'unknown') out.push({ status: 'UNKNOWN', key: 'filesystem', detail: `${access}: solver gave no answer within ${c.timeoutMs} ms (${w.reason})` });
    else if (w.status === 'sat') {
      out.push({ status: 'VIOLATED', key: 'filesystem', counterexample: `${access} ${w.path}`, detail: `${c.explain(w.path)}; the baseline does not allow ${access} there` });
    }
  }
  return out;
};

const destinations: Check = async (c) => {
  const mine = hostPatterns(c.mine);
  const theirs = hostPatterns(c.base);
  const r = await decideDests(c.enc, [mine], [theirs], c.timeoutMs, c.check);
  if (r.status === 'error') return [{ status: 'ERROR', key: 'network', detail: `connect: ${r.reason}` }];
  if (r.status === 'unknown') return [{ status: 'UNKNOWN', key: 'network', detail: `connect: solver gave no answer within ${c.timeoutMs} ms (${r.reason})` }];
  if (r.status === 'unsat') return [];
  const by = mine.filter((h) => matchesHost(r.dest, h)).map(grantText);
  if (by.length === 0 || theirs.some((h) => matchesHost(r.dest, h))) {
    return [{ status: 'ERROR', key: 'network', detail: `deciders disagree: the witness ${r.dest} is not confirmed by the TypeScript matcher` }];
  }
  return [{ status: 'VIOLATED', key: 'network', counterexample: `connect ${r.dest}`, detail: `allowed by ${by.join(', ')}; the baseline allows no entry matching it` }];
};

// ---------------------------------------------------------------------------
// Direct comparisons

type Limit = keyof EffectivePolicy['resources'];
const SIZES: readonly Limit[] = ['memory', 'file_size', 'output'];
const TIMES: readonly Limit[] = ['cpu_time', 'wall_time'];

function showLimit(k: Limit, v: number | null): string {
  if (v === null) return 'unlimited';
  if (SIZES.includes(k)) return formatBytes(v);
  if (TIMES.includes(k)) return `${v}s`;
  return String(v);
}

/** A limit: equal or tighter (null is no limit, the loosest). */
const limit =
  (k: Limit): Check =>
  (c) => {
    const m = c.mine.resources[k];
    const b = c.base.resources[k];
    if (b === null || (m !== null && m <= b)) return [];
    return [loosened(`resources.${k}`, showLimit(k, m), showLimit(k, b), m === null ? 'no limit where the baseline has one' : 'a higher limit')];
  };

/** A list where each extra element gives more (env.pass): a subset of the baseline's. */
const subsetOf =
  (key: string, get: (e: EffectivePolicy) => string[], why: string): Check =>
  (c) => {
    const b = new Set(get(c.base));
    const extra = get(c.mine).filter((x) => !b.has(x));
    return extra.length === 0 ? [] : [loosened(key, `[${get(c.mine).join(', ')}]`, `[${get(c.base).join(', ')}]`, `${extra.join(', ')} ${why}`)];
  };

/**
 * env.set: every variable the policy sets, the baseline sets to the same value. A variable the
 * sandbox starts with acts before the agent's own code does (LD_PRELOAD, NODE_OPTIONS,
 * PYTHONPATH, a proxy) and its value can carry data in; there is no order on values, so only
 * "the same" is inside the baseline. Setting fewer variables is accepted (the sandbox can set
 * any variable itself once running; what it cannot do is choose what it starts under).
 */
const envSet: Check = (c) => {
  const out: RefinesCheck[] = [];
  for (const [name, v] of Object.entries(c.mine.env.set)) {
    const b = c.base.env.set[name];
    if (b === v) continue;
    out.push(loosened(`env.set.${name}`, JSON.stringify(v), b === undefined ? 'not set' : JSON.stringify(b), 'a variable the sandbox starts with that the baseline does not set so'));
  }
  return out;
};

/**
 * Brokered credentials: each one the policy declares, the baseline declares too, from the same
 * source, for destinations inside the baseline's (Z3 and the exact procedure) and in the same
 * header (a baseline without a header allows any). A credential the baseline does not have, or
 * one read from elsewhere, is another secret the sandbox can use.
 */
const secrets: Check = async (c) => {
  const out: RefinesCheck[] = [];
  const mine = c.mine.secrets ?? {};
  const base = c.base.secrets ?? {};
  for (const [name, s] of Object.entries(mine)) {
    const b = base[name];
    const key = `secrets.${name}`;
    if (!b) {
      out.push(loosened(key, `from ${s.from_env !== undefined ? `env ${s.from_env}` : `file ${s.from_file}`} to [${s.hosts.join(', ')}]`, 'absent', 'a brokered credential the baseline does not give'));
      continue;
    }
    const src = (x: typeof s) => (x.from_env !== undefined ? `from_env ${x.from_env}` : `from_file ${x.from_file}`);
    if (src(s) !== src(b)) out.push(loosened(`${key}.${s.from_env !== undefined ? 'from_env' : 'from_file'}`, src(s), src(b), 'the credential is read from another source'));
    if (b.header !== null && s.header !== b.header) out.push(loosened(`${key}.header`, s.header ?? 'any header', b.header, 'the credential may go into another header'));
    const r = await decideDests(c.enc, [s.hosts.map(parseHostEntry)], [b.hosts.map(parseHostEntry)], c.timeoutMs, c.check);
    if (r.status === 'error') out.push({ status: 'ERROR', key: `${key}.hosts`, detail: r.reason });
    else if (r.status === 'unknown') out.push({ status: 'UNKNOWN', key: `${key}.hosts`, detail: `solver gave no answer within ${c.timeoutMs} ms (${r.reason})` });
    else if (r.status === 'sat') out.push(loosened(`${key}.hosts`, `[${s.hosts.join(', ')}]`, `[${b.hosts.join(', ')}]`, `the credential may be sent to ${r.dest}`));
  }
  return out;
};

/** syscalls.deny: a superset of the baseline's (each refused syscall stays refused). */
const syscallDeny: Check = (c) => {
  const m = new Set(c.mine.syscalls.deny);
  const missing = c.base.syscalls.deny.filter((s) => !m.has(s));
  return missing.length === 0
    ? []
    : [loosened('syscalls.deny', `[${c.mine.syscalls.deny.join(', ')}]`, `[${c.base.syscalls.deny.join(', ')}]`, `${missing.join(', ')} no longer refused`)];
};

/** A flag whose `true` gives more: false in the baseline stays false. */
const flag =
  (key: string, get: (e: EffectivePolicy) => boolean, why: string): Check =>
  (c) =>
    get(c.mine) && !get(c.base) ? [loosened(key, 'true', 'false', why)] : [];

/** A mode on a scale from strictest to loosest: at most as loose as the baseline's. */
const scale =
  <T extends string>(key: string, get: (e: EffectivePolicy) => T, order: readonly T[], why: string): Check =>
  (c) =>
    order.indexOf(get(c.mine)) > order.indexOf(get(c.base)) ? [loosened(key, get(c.mine), get(c.base), why)] : [];

/**
 * rules: every baseline rule is in the policy, word for word (after the loader's expansion);
 * the policy may add rules. Sound because rules are independent (a rule's state depends on the
 * events and its own `after` patterns only, src/rules/index.ts) and only revoke: with static
 * grants inside the baseline's (the path and destination checks) and the baseline's rules
 * among its own, every sequence of events the policy allows is one the baseline allows, and
 * after it the policy has revoked at least what the baseline has. Conservative: a baseline rule
 * replaced by a stricter one (a wider `after`, more revoked) is reported too; keep the
 * baseline's rule and add the stricter one next to it.
 */
const rules: Check = (c) => {
  const mine = new Set((c.mine.rules ?? []).map((r) => canonicalJson(r)));
  const show = (r: NonNullable<EffectivePolicy['rules']>[number]) =>
    `{after: ${r.after.map((m) => `${m.access} ${m.target}`).join(' and ')}, revoke: ${r.revoke.map((m) => `${m.access} ${m.target}`).join(', ')}}`;
  return (c.base.rules ?? []).flatMap((r, i) =>
    mine.has(canonicalJson(r))
      ? []
      : [{ status: 'VIOLATED' as const, key: `rules`, counterexample: `rules: baseline rules[${i}] ${show(r)} missing`, detail: `the baseline's rule ${show(r)} is not among the policy's ${c.mine.rules?.length ?? 0} rules: what it revokes stays allowed here` }],
  );
};

// ---------------------------------------------------------------------------
// The table

export type RefinesEntry = { check: string; run: Check } | { none: string };

const PATHS = { check: 'paths', run: paths };
const DESTS = { check: 'destinations', run: destinations };
const SECRETS = { check: 'secrets', run: secrets };
const RULES = { check: 'rules', run: rules };
const lim = (k: Limit) => ({ check: `resources.${k}`, run: limit(k) });

/**
 * Every schema key (dotted; `secrets.*.x` for a record's value, `rules[].x` for a list's
 * element) and how refinement decides it. Keys sharing a check (the six filesystem lists are
 * one question per access) name the same one; it runs once.
 */
export const REFINES_TABLE: Record<string, RefinesEntry> = {
  version: { none: 'the format version; it grants nothing' },
  extends: { none: 'merged into the effective policy before the comparison, whose every key is compared here' },
  'filesystem.read': PATHS,
  'filesystem.write': PATHS,
  'filesystem.execute': PATHS,
  'filesystem.append': PATHS,
  'filesystem.visible': PATHS,
  // Deny is subtracted from every access set; a deny marked optional hides the same path when
  // it exists, and there is nothing to hide when it does not.
  'filesystem.deny': PATHS,
  'network.allow': DESTS,
  'network.allow_local': DESTS,
  'resources.memory': lim('memory'),
  'resources.pids': lim('pids'),
  'resources.cpus': lim('cpus'),
  'resources.cpu_time': lim('cpu_time'),
  'resources.wall_time': lim('wall_time'),
  'resources.file_size': lim('file_size'),
  'resources.open_files': lim('open_files'),
  'resources.output': lim('output'),
  'env.pass': { check: 'env.pass', run: subsetOf('env.pass', (e) => e.env.pass, "passed in from the caller's environment, which the baseline does not pass") },
  'env.set': { check: 'env.set', run: envSet },
  'secrets.*.from_env': SECRETS,
  'secrets.*.from_file': SECRETS,
  'secrets.*.hosts': SECRETS,
  'secrets.*.header': SECRETS,
  'syscalls.deny': { check: 'syscalls.deny', run: syscallDeny },
  'syscalls.allow_ia32': { check: 'syscalls.allow_ia32', run: flag('syscalls.allow_ia32', (e) => e.syscalls.allow_ia32, '32-bit programs run where the baseline kills them') },
  'rules[].after': RULES,
  'rules[].revoke': RULES,
  invariants: { none: "claims `ward verify` proves about each policy on its own; they grant nothing (the policy's own report says whether they hold)" },
  'sandbox.landlock': {
    check: 'sandbox.landlock',
    run: scale('sandbox.landlock', (e) => e.sandbox.landlock, ['required', 'optional', 'off'] as const, 'the second filesystem layer (and the only one that restricts execute) may be missing'),
  },
  'sandbox.allow_degraded': { check: 'sandbox.allow_degraded', run: flag('sandbox.allow_degraded', (e) => e.sandbox.allow_degraded, '`ward run --allow-degraded` may run it with a missing layer') },
  'sandbox.home': {
    check: 'sandbox.home',
    run: scale('sandbox.home', (e) => e.sandbox.home, ['none', 'tmpfs'] as const, '$HOME exists as a private writable directory where the baseline has none'),
  },
};

/** Runs every check the table names, each once, paths and destinations first. */
export async function refinesChecks(c: RefinesContext): Promise<RefinesCheck[]> {
  const runs = new Map<string, Check>();
  for (const e of Object.values(REFINES_TABLE)) if ('check' in e && !runs.has(e.check)) runs.set(e.check, e.run);
  const out: RefinesCheck[] = [];
  for (const run of runs.values()) out.push(...(await run(c)));
  return out;
}
