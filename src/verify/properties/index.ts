/**
 * `ward verify`: properties of the policy proved with Z3, refinement against a baseline, and
 * translation validation of the compiled artefacts, each reported as PROVED, VIOLATED (with a
 * concrete counterexample: a path or a host:port), UNKNOWN (the solver ran out of budget, or
 * the artefacts could not be built) or ERROR (two deciders disagreed: see below). Nothing is
 * PROVED unless a check said so, and no PROVED rests on Z3 alone: every answer is compared
 * with an exact decision procedure in TypeScript (./exact.ts, used by ./decide.ts).
 *
 * Every property is a satisfiability query "exists x. Allowed(x) and Bad(x)" (Zelkova's
 * shape): unsat is a proof, a witness is the counterexample. Path questions are split into
 * small cells (./decide.ts): prefix reasoning settles the cells where it is exact (checked
 * against Z3 on random policies by test/verify/decide.test.ts), Z3 the rest. Each
 * counterexample is re-checked by a plain TypeScript matcher over the same sets, so an
 * encoding bug shows up as a disagreement instead of a wrong verdict. Dynamic rules and
 * invariants are in ./dynamic.ts.
 */
import { compile, preparePolicy, type PolicyInput } from '../../api.js';
import { WardError } from '../../errors.js';
import { homeDir } from '../../paths.js';
import type { EffectivePolicy, LoadedPolicy } from '../../policy/load.js';
import { validatePlan } from '../index.js';
import { encoder, type Encoder } from '../smt/encode.js';
import { check as z3Check, z3, type CheckFn } from '../smt/z3.js';
import {
  accessSets,
  appendOnlySet,
  grantsBehind,
  grantText,
  hostPatterns,
  isBounded,
  policySize,
  privateDirs,
  secretSet,
  visibleSet,
  wardStateSet,
  type PathSet,
} from './model.js';
import { decideDests, decidePaths, type Witness } from './decide.js';
import { checkInvariant, dynamicModel, modelRules, rulesOnlyRevoke } from './dynamic.js';
import { refinesChecks } from './refines.js';

export { inSet } from './model.js';

/**
 * ERROR: the verifier's own deciders disagree (Z3 against the exact procedure, or a witness
 * against the plain matcher), so neither PROVED nor VIOLATED can be trusted; the detail names
 * both answers. Like VIOLATED and UNKNOWN it fails `ward verify` and `--verify-strict`.
 */
export type Status = 'PROVED' | 'VIOLATED' | 'UNKNOWN' | 'ERROR';

export interface PropertyResult {
  id: string;
  title: string;
  status: Status;
  /** A concrete path or host:port (an access such as "write /x" for refinement). */
  counterexample?: string;
  /** Why: the grants behind a counterexample, the solver's reason for UNKNOWN, what was checked. */
  detail?: string;
  ms: number;
}

export interface VerifyReport {
  policy_sha256: string;
  /** The compiled plan's hash; null when the policy could not be compiled. */
  plan_sha256: string | null;
  base_sha256?: string;
  properties: PropertyResult[];
  ok: boolean;
  ms: { total: number; solver_init: number };
}

export interface VerifyOptions {
  workspace?: string;
  env?: NodeJS.ProcessEnv;
  /** A baseline: every access the policy allows must be allowed by it. */
  base?: PolicyInput;
  /** Solver time per query (default 10 s). */
  timeoutMs?: number;
  /** Z3's check, replaced only by tests that inject a wrong answer to see it caught. */
  check?: CheckFn;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
/** Above this many path and host entries the encoding is refused rather than left to time out. */
export const MAX_ENTRIES = 2000;

export const PROPERTY_TITLES = {
  'no-secret-access': 'no secret path (the mandatory denies, Ward state, ${WORKSPACE}/**/.env) is readable or writable',
  'w-xor-x': 'W^X: no path is both writable and executable as a program (execve/execveat of the file); code in a writable file can still run through an interpreter or the dynamic loader',
  'visible-not-readable': 'visible-only paths are never readable',
  'append-not-writable': 'append-only paths are never writable (only appendable)',
  'ward-state-ungranted': "nothing inside Ward's audit log, key and state directories can be seen, read or written (where a grant covers their parent, each is masked: its own name shows, empty)",
  egress: 'egress: every allowed destination is a declared host with a specific port, wildcards only below a 2+ label domain',
  'rules-only-revoke': 'dynamic rules only ever remove permissions: after any sequence of events, what is allowed is a subset of what was allowed before',
  refines: 'every access allowed is allowed by the baseline, and no limit, layer, credential, variable, syscall rule or dynamic rule is looser',
  'compiled-artefacts': 'compiled artefacts (seccomp, mounts, Landlock) match the policy',
} as const;

export async function verifyPolicy(input: PolicyInput, options: VerifyOptions = {}): Promise<VerifyReport> {
  const t0 = performance.now();
  const env = options.env ?? process.env;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const check = options.check ?? z3Check;
  const loaded = preparePolicy(input, { workspace: options.workspace, env });
  const base = options.base === undefined ? undefined : preparePolicy(options.base, { workspace: options.workspace ?? loaded.effective.workspace, env });
  for (const p of [loaded, base]) {
    if (!p) continue;
    const n = policySize(p.effective);
    if (n > MAX_ENTRIES) {
      throw new WardError(`policy too large to verify: ${n} path and host entries after expansion (the limit is ${MAX_ENTRIES})`, {
        fix: 'grant common parent directories instead of many single paths, or split the policy',
        step: 'verify',
      });
    }
  }
  if (base && base.effective.workspace !== loaded.effective.workspace) {
    throw new WardError('the policy and its baseline were expanded with different workspaces', { step: 'verify' });
  }

  const tInit = performance.now();
  const ctx = await z3();
  const solverInit = performance.now() - tInit;
  const enc = encoder(ctx);
  const eff = loaded.effective;
  const home = homeDir(env);
  const sets = accessSets(eff);
  const properties: PropertyResult[] = [];
  const pathProp = (id: keyof typeof PROPERTY_TITLES, pos: PathSet[]) => pathProperty(enc, eff, id, pos, [], timeoutMs, check);

  properties.push(await pathProp('no-secret-access', [secretSet(eff, env, home), sets.read]));
  properties.push(wXorX(await pathProp('w-xor-x', [sets.write, sets.execute]), eff, home));
  // The compiled artefacts first (no solver): visible-not-readable rests on them below. Reported last, as before.
  const compiled = compiledProperty(loaded, options.workspace ?? eff.workspace, env);
  // visible-only paths are never readable. Two layers can refuse the read: Landlock, when no
  // read grant covers the path (sets.read here is the grants minus deny, i.e. Landlock's
  // view: it cannot subtract a visible path from a grant above it), and the supervisor, which
  // refuses every open but O_PATH of a visible-only path, by path and by identity, whatever
  // Landlock says. With no witness, Landlock alone refuses (PROVED). With a witness (a visible
  // path under a read grant), the read is refused by the supervisor only, and that holds
  // exactly when the compiled artefacts say the plan supervises every open and lists every
  // visible path in rules.visible (../mounts.ts, part of compiled-artefacts): PROVED then, with
  // the detail saying one layer; otherwise VIOLATED with the witness.
  // With Landlock off, the visible path's own read-only bind is readable at the mount layer
  // whatever grants are above it: every visible path is a witness, and only the supervisor's
  // refusal is left.
  const landlockOff = eff.sandbox.landlock === 'off';
  properties.push(visibleNotReadable(await pathProp('visible-not-readable', landlockOff ? [visibleSet(eff)] : [visibleSet(eff), sets.read]), compiled.result, landlockOff));
  // append-only paths are never writable (only appendable). What it rests on: no write grant
  // covers the path (this query), so Landlock gives the sandbox read only; the mount is
  // writable for the supervisor's own O_APPEND opens, and compiled-artefacts checks that
  // Landlock really is read-only there (no private tmpfs rw above it), that the plan lists the
  // path in rules.append and that every call that could rewrite it is supervised. The
  // supervisor gives appends; it never makes this property hold or fail.
  properties.push(await pathProp('append-not-writable', [appendOnlySet(eff), sets.write]));
  // What lies inside Ward's directories, not the directories: under a grant of their parent the
  // mandatory deny mounts a mask at each, and a mask's name is listed.
  properties.push(await pathProp('ward-state-ungranted', [wardStateSet(env, home), sets.see]));
  properties.push(await egressProperty(enc, eff, timeoutMs, check));
  // Dynamic rules and invariants: reported only for policies that have them, so the report of
  // every other policy is what it was.
  // Over the patterns the supervisor matches (resolved through symlinks), in both forms.
  const dynEff: EffectivePolicy = eff.rules ? { ...eff, rules: modelRules(eff.rules) } : eff;
  if ((eff.rules?.length ?? 0) > 0) {
    const t = performance.now();
    const o = await rulesOnlyRevoke(enc, dynEff, sets, timeoutMs, undefined, check);
    properties.push({ id: 'rules-only-revoke', title: PROPERTY_TITLES['rules-only-revoke'], ...o, ms: Math.round(performance.now() - t) });
  }
  const model = (eff.invariants?.length ?? 0) > 0 ? await dynamicModel(enc, dynEff, sets, timeoutMs, check) : undefined;
  for (const [i, inv] of (eff.invariants ?? []).entries()) {
    const t = performance.now();
    const o = await checkInvariant(model!, inv, (p) => explain(eff, p));
    properties.push({ id: `invariant:${i + 1}`, title: inv.text, ...o, ms: Math.round(performance.now() - t) });
  }
  if (base) properties.push(await refinesProperty(enc, eff, base.effective, timeoutMs, check));
  properties.push(compiled.result);

  return {
    policy_sha256: loaded.sha256,
    plan_sha256: compiled.planSha256,
    ...(base ? { base_sha256: base.sha256 } : {}),
    properties,
    ok: properties.every((p) => p.status === 'PROVED'),
    ms: { total: Math.round(performance.now() - t0), solver_init: Math.round(solverInit) },
  };
}

// ---------------------------------------------------------------------------
// Path properties

async function pathProperty(enc: Encoder, eff: EffectivePolicy, id: keyof typeof PROPERTY_TITLES, pos: PathSet[], neg: PathSet[], timeoutMs: number, check: CheckFn): Promise<PropertyResult> {
  const t = performance.now();
  const w = await pathWitness(enc, pos, neg, timeoutMs, check);
  const ms = Math.round(performance.now() - t);
  const title = PROPERTY_TITLES[id];
  if (w.status === 'unsat') return { id, title, status: 'PROVED', detail: CONFIRMED, ms };
  if (w.status === 'error') return { id, title, status: 'ERROR', detail: w.reason, ms };
  if (w.status === 'unknown') return { id, title, status: 'UNKNOWN', detail: `solver gave no answer within ${timeoutMs} ms (${w.reason})`, ms };
  return { id, title, status: 'VIOLATED', counterexample: w.path, detail: explain(eff, w.path), ms };
}

/** visible-not-readable with a Landlock-layer witness: refused by the supervisor only, if the artefacts say it is supervised. */
function visibleNotReadable(p: PropertyResult, compiled: PropertyResult, landlockOff: boolean): PropertyResult {
  if (p.status !== 'VIOLATED') return p;
  const where = landlockOff
    ? `${p.counterexample} is readable at the mount layer (sandbox.landlock: off; its own read-only bind)`
    : `${p.counterexample} is readable at the Landlock layer (${p.detail})`;
  if (compiled.status === 'PROVED') {
    const { counterexample: _c, ...rest } = p;
    return { ...rest, status: 'PROVED', detail: `by the supervisor only: ${where}; every open of it but O_PATH is refused by the supervisor, whose half compiled-artefacts checked (rules.visible lists it, every open and exec supervised)` };
  }
  return { ...p, detail: `${where}, and compiled-artefacts is ${compiled.status}, so the supervisor's refusal is not established` };
}

/**
 * W^X as enforced: execute is restricted by Landlock alone (the mount layer sets no noexec).
 * With `sandbox.landlock: off` the execute set is every readable path (./model.ts), and the
 * private tmpfs dirs, writable though no grant names them, are executable too. With Landlock
 * optional or degraded allowed, the proof holds on the runs that have it, and the detail says so.
 */
/**
 * What a PROVED w-xor-x covers, said in its detail as in its title, since "W^X" alone reads stronger. The
 * execute right is Landlock's, checked when a file is run by path; a memfd (no path) cannot be
 * made executable (the seccomp filter allows only MFD_NOEXEC_SEAL ones). An interpreter or the
 * dynamic loader only *reads* the file it runs, and reading a writable file is allowed: only a
 * noexec mount would stop the loader's mmap, and bwrap 0.8.0 cannot mount noexec.
 */
export const W_X_SCOPE = 'this covers running a file as a program (execve/execveat, Landlock) and memfds (only MFD_NOEXEC_SEAL ones can be made); code written to a writable path still runs when an interpreter or the dynamic loader reads it (sh ./f, python3 ./f, /lib64/ld-linux-x86-64.so.2 ./f): that needs noexec mounts, which bwrap 0.8.0 cannot set';

function wXorX(p: PropertyResult, eff: EffectivePolicy, home: string): PropertyResult {
  const mode = eff.sandbox.landlock;
  if (mode === 'off') {
    if (p.status === 'VIOLATED') return { ...p, detail: `${p.detail}; sandbox.landlock: off, so nothing restricts execute (the mount layer sets no noexec)` };
    const dir = p.status === 'PROVED' ? privateDirs(eff, home)[0] : undefined;
    if (dir === undefined) return p;
    const { detail: _d, ...rest } = p;
    return { ...rest, status: 'VIOLATED', counterexample: dir, detail: `a private tmpfs, writable by the sandbox; sandbox.landlock: off, so nothing restricts execute (the mount layer sets no noexec)` };
  }
  if (p.status !== 'PROVED') return p;
  const scoped = { ...p, detail: `${p.detail}; ${W_X_SCOPE}` };
  if (mode === 'optional' || eff.sandbox.allow_degraded) {
    return { ...scoped, detail: `${scoped.detail}; execute is restricted by Landlock alone, and ${mode === 'optional' ? 'sandbox.landlock: optional' : 'sandbox.allow_degraded: true'} lets a run go without it (recorded as degraded)` };
  }
  return scoped;
}

/** What a PROVED path or destination property rests on (in its detail, so `--json` shows it). */
const CONFIRMED = 'no witness: by Z3 (or prefix reasoning) and by the exact procedure, independently';

/** A canonical path in every `pos` set and in no `neg` set, or a proof there is none (./decide.ts). */
function pathWitness(enc: Encoder, pos: PathSet[], neg: PathSet[], timeoutMs: number, check: CheckFn): Promise<Witness> {
  return decidePaths(enc, pos, neg, timeoutMs, undefined, check);
}

/** The policy entries that cover a path: what a reviewer edits to fix a finding. */
function explain(eff: EffectivePolicy, p: string): string {
  return grantsBehind(eff, p);
}

// ---------------------------------------------------------------------------
// Network

async function egressProperty(enc: Encoder, eff: EffectivePolicy, timeoutMs: number, check: CheckFn): Promise<PropertyResult> {
  const t = performance.now();
  const all = hostPatterns(eff);
  const r = await decideDests(enc, [all], [all.filter(isBounded)], timeoutMs, check);
  const base = { id: 'egress', title: PROPERTY_TITLES.egress, ms: Math.round(performance.now() - t) };
  if (r.status === 'unsat') return { ...base, status: 'PROVED', detail: `${all.length > 0 ? `${all.length} entries, each enforced per connection by the egress broker; ` : ''}${CONFIRMED}` };
  if (r.status === 'unknown') return { ...base, status: 'UNKNOWN', detail: `solver gave no answer within ${timeoutMs} ms (${r.reason})` };
  if (r.status === 'error') return { ...base, status: 'ERROR', detail: r.reason };
  const culprits = all.filter((h) => !isBounded(h) && matchesTs(r.dest, h)).map(grantText);
  if (culprits.length === 0) return { ...base, status: 'ERROR', detail: `deciders disagree: the witness ${r.dest} is matched by no unbounded entry` };
  return { ...base, status: 'VIOLATED', counterexample: r.dest, detail: `allowed by ${culprits.join(', ')}` };
}

function matchesTs(dest: string, h: { host: string; wildcard: boolean; port: number | null }): boolean {
  const i = dest.lastIndexOf(':');
  const host = dest.slice(0, i);
  const port = Number(dest.slice(i + 1));
  const hostOk = h.wildcard ? host.endsWith(`.${h.host}`) && host.length > h.host.length + 1 : host === h.host;
  return hostOk && (h.port === null || h.port === port);
}

// ---------------------------------------------------------------------------
// Refinement

/**
 * Every dimension of the effective policy that can give the sandbox more (./refines.ts, whose
 * table covers every schema key): one result, VIOLATED when any dimension is looser, with the
 * first loosening as the counterexample and every one in the detail.
 */
async function refinesProperty(enc: Encoder, eff: EffectivePolicy, base: EffectivePolicy, timeoutMs: number, check: CheckFn): Promise<PropertyResult> {
  const t = performance.now();
  const found = await refinesChecks({ enc, mine: eff, base, timeoutMs, check, explain: (p) => explain(eff, p) });
  const done = (status: Status, extra: Partial<PropertyResult> = {}): PropertyResult => ({
    id: 'refines',
    title: PROPERTY_TITLES.refines,
    status,
    ...extra,
    ms: Math.round(performance.now() - t),
  });
  const errors = found.filter((f) => f.status === 'ERROR');
  if (errors.length > 0) return done('ERROR', { detail: errors.map((f) => `${f.key}: ${f.detail}`).join('; ') });
  const violated = found.flatMap((f) => (f.status === 'VIOLATED' ? [f] : []));
  const unknown = found.filter((f) => f.status === 'UNKNOWN');
  const unanswered = unknown.length > 0 ? `; no answer for ${unknown.map((f) => `${f.key}: ${f.detail}`).join('; ')}` : '';
  if (violated.length > 0) {
    const all = violated.length === 1 ? violated[0]!.detail : `${violated.length} loosenings: ${violated.map((v) => `${v.counterexample} (${v.detail})`).join('; ')}`;
    return done('VIOLATED', { counterexample: violated[0]!.counterexample, detail: `${all}${unanswered}` });
  }
  if (unknown.length > 0) return done('UNKNOWN', { detail: unanswered.slice(2) });
  return done('PROVED', { detail: `paths and destinations: ${CONFIRMED}; resources, env, secrets, syscalls, rules and sandbox compared directly` });
}

// ---------------------------------------------------------------------------
// Translation validation of the compiled plan

function compiledProperty(loaded: LoadedPolicy, workspace: string, env: NodeJS.ProcessEnv): { result: PropertyResult; planSha256: string | null } {
  const t = performance.now();
  const base = { id: 'compiled-artefacts', title: PROPERTY_TITLES['compiled-artefacts'] };
  let plan;
  try {
    plan = compile(loaded, { workspace, env });
  } catch (e) {
    const why = e instanceof WardError ? e.message : String(e);
    return { result: { ...base, status: 'UNKNOWN', detail: `not compiled, so nothing to validate: ${why}`, ms: Math.round(performance.now() - t) }, planSha256: null };
  }
  const v = validatePlan(plan);
  const ms = Math.round(performance.now() - t);
  const checked = `checked ${v.checked.syscalls} syscalls, ${v.checked.argCases} argument cases, ${v.checked.paths} paths${v.checked.rules > 0 ? `, ${v.checked.rules} rule events and revocations against the supervised syscalls` : ''}`;
  if (v.ok) return { result: { ...base, status: 'PROVED', detail: checked, ms }, planSha256: plan.sha256 };
  const f = v.findings[0]!;
  const more = v.findings.length > 1 ? ` (+${v.findings.length - 1} more findings)` : '';
  return {
    result: { ...base, status: 'VIOLATED', counterexample: `${f.layer}: ${f.subject}`, detail: `policy says ${f.expected}, artefact does ${f.actual}${more}; ${checked}`, ms },
    planSha256: plan.sha256,
  };
}
