/**
 * `ward verify FILE [--refines BASE] [--json] [--timeout-ms N] [--workspace DIR]`
 *
 * Proves the built-in properties of a policy with Z3, checks that it refines a baseline, and
 * validates the compiled artefacts against it (src/verify/properties). Each property is
 * PROVED, VIOLATED (with a counterexample: a path, a host:port, or an access) or UNKNOWN
 * (solver budget spent, or the policy could not be compiled). A policy with `rules:` also gets
 * `rules-only-revoke`, and each of its `invariants:` is a property `invariant:N` whose title is
 * the invariant's text (shown under its row). `--timeout-ms` is the solver's budget per query;
 * questions settled by prefix reasoning need none.
 *
 * ERROR means the verifier's deciders disagreed (Z3 against the exact TypeScript procedure).
 *
 * Exit status: 0 when every property is PROVED; 1 when any is VIOLATED, UNKNOWN or ERROR; 125 for
 * usage errors, an invalid policy, or a policy too large to verify.
 *
 * The default profile violates W^X on purpose: it grants the workspace write and execute
 * (an agent builds and runs code there), so `ward verify` on it exits 1 with the workspace
 * as the W^X counterexample. There is no waiver key: the finding is reported, not hidden.
 */
import type { PolicyInput } from '../../api.js';
import { WardError } from '../../errors.js';
import { PROFILE_NAMES } from '../../policy/profiles/index.js';
import { DEFAULT_TIMEOUT_MS, verifyPolicy, type VerifyReport } from '../../verify/properties/index.js';
import { takeValue } from '../main.js';

const USAGE = 'ward verify FILE|--profile NAME [--refines BASE] [--json] [--timeout-ms N] [--workspace DIR]';

interface Args {
  input: PolicyInput;
  label: string;
  base: PolicyInput | undefined;
  json: boolean;
  timeoutMs: number;
  workspace: string | undefined;
}

/** Runs the command; `out` is where the report goes (stdout; tests pass a collector). */
export async function verify(args: string[], out: { write(text: string): unknown } = process.stdout): Promise<number> {
  const a = parse(args);
  const report = await verifyPolicy(a.input, { workspace: a.workspace, base: a.base, timeoutMs: a.timeoutMs });
  out.write(a.json ? `${JSON.stringify(report, null, 2)}\n` : render(report, a.label));
  return report.ok ? 0 : 1;
}

function parse(args: string[]): Args {
  let input: PolicyInput;
  let label = '';
  let base: PolicyInput;
  let json = false;
  let timeoutMs = DEFAULT_TIMEOUT_MS;
  let workspace: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--json') json = true;
    else if (a === '--refines') base = policyRef(takeValue(args, i++, a, 'a policy file or profile name'));
    else if (a === '--workspace' || a === '-w') workspace = takeValue(args, i++, a, 'a directory');
    else if (a === '--timeout-ms') {
      const v = takeValue(args, i++, a, 'a number of milliseconds');
      if (!/^\d+$/.test(v) || Number(v) < 1) throw new WardError(`--timeout-ms ${v} is not a whole number of milliseconds >= 1`, { fix: USAGE });
      timeoutMs = Number(v);
    } else if (a === '--profile') {
      if (input) throw new WardError('give one policy: a FILE or --profile NAME', { fix: USAGE });
      const name = takeValue(args, i++, a, 'a name');
      input = { profile: name };
      label = `profile ${name}`;
    } else if (a.startsWith('-')) throw new WardError(`unknown option ${a} for ward verify`, { fix: USAGE });
    else if (input === undefined) {
      input = { file: a };
      label = a;
    } else throw new WardError(`unexpected argument "${a}"`, { fix: USAGE });
  }
  if (input === undefined) throw new WardError('no policy given', { fix: USAGE });
  return { input, label, base, json, timeoutMs, workspace };
}

/** `--refines` takes a file, or a built-in profile name (as `extends` does). */
function policyRef(ref: string): PolicyInput {
  return PROFILE_NAMES.includes(ref) && !ref.includes('/') ? { profile: ref } : { file: ref };
}

function render(r: VerifyReport, label: string): string {
  const rows = r.properties.map((p) => [p.status, p.id, p.counterexample ?? '-']);
  const w0 = Math.max(6, ...rows.map((x) => x[0]!.length));
  const w1 = Math.max(8, ...rows.map((x) => x[1]!.length));
  const line = (c: string[]) => `  ${c[0]!.padEnd(w0)}  ${c[1]!.padEnd(w1)}  ${c[2]}`.trimEnd();
  const out = [
    `ward verify: ${label}`,
    `  policy sha256 ${r.policy_sha256}`,
    `  plan sha256   ${r.plan_sha256 ?? '(not compiled)'}`,
    ...(r.base_sha256 ? [`  base sha256   ${r.base_sha256}`] : []),
    '',
    line(['STATUS', 'PROPERTY', 'COUNTEREXAMPLE']),
  ];
  for (const p of r.properties) {
    out.push(line([p.status, p.id, p.counterexample ?? '-']));
    // An invariant's title is the user's own text: show it, so the row says what was proved.
    if (p.id.startsWith('invariant:')) out.push(`  ${''.padEnd(w0)}  ${''.padEnd(w1)}  "${p.title}"`);
    if (p.status !== 'PROVED' && p.detail) out.push(`  ${''.padEnd(w0)}  ${''.padEnd(w1)}  ${p.detail}`);
  }
  const count = (s: string) => r.properties.filter((p) => p.status === s).length;
  out.push('', `${r.ok ? 'ok' : 'not ok'}: ${count('PROVED')} proved, ${count('VIOLATED')} violated, ${count('UNKNOWN')} unknown, ${count('ERROR')} error in ${r.ms.total} ms (solver start ${r.ms.solver_init} ms)`);
  return `${out.join('\n')}\n`;
}
