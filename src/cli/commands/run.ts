import { closeSync, openSync, writeFileSync } from 'node:fs';
import { WardError } from '../../errors.js';
import { compile, type PolicyInput } from '../../api.js';
import { defaultAuditLog, keyCreatedNotice, launchAudited, openAudit, seenInSandbox } from '../../audit/run-log.js';
import { policyFromFlag, takeValue } from '../main.js';
import type { VerificationSummary } from '../../sandbox/launch.js';
import { verifyPolicy } from '../../verify/properties/index.js';
import { printable } from '../../printable.js';

/**
 * `ward run [options] [--] COMMAND [ARGS...]`
 *
 * Every run is recorded in the audit log (--audit-log FILE, default
 * ~/.local/state/ward/audit.jsonl). There is deliberately no option to run
 * unrecorded: a command line an agent can influence must not be able to switch
 * the evidence off, and a log Ward cannot write is a refusal (exit 125).
 */
export async function runCommand(args: string[]): Promise<number> {
  let policy: PolicyInput;
  let workspace: string | undefined;
  let allowDegraded = false;
  let record: string | undefined;
  let auditLog: string | undefined;
  let quiet = false;
  let session: string | undefined;
  // --verify: prove the policy's properties first (ward verify) and keep the result in the
  // launch record; --verify-strict: and refuse to run unless every property is PROVED.
  let verify: 'record' | 'strict' | undefined;
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-')) break;
    switch (a) {
      case '--policy':
      case '-p':
      case '--profile':
        policy = policyFromFlag(args, i++, policy, 'a policy file can `extends: [PROFILE]`');
        break;
      case '--workspace':
      case '-w':
        workspace = takeValue(args, i++, a, 'a directory');
        break;
      case '--allow-degraded':
        allowDegraded = true;
        break;
      case '--record':
        record = takeValue(args, i++, a, 'a file');
        break;
      case '--audit-log':
        auditLog = takeValue(args, i++, a, 'a file');
        break;
      case '--quiet':
      case '-q':
        quiet = true;
        break;
      case '--verify':
        verify = verify === 'strict' ? verify : 'record';
        break;
      case '--verify-strict':
        verify = 'strict';
        break;
      case '--session':
        session = takeValue(args, i++, a, 'a session name');
        break;
      default:
        throw new WardError(`unknown option ${a} for ward run`, { fix: 'see `ward --help`; put `--` before the command if the option is the command\'s' });
    }
  }
  const argv = args.slice(i);
  if (argv.length === 0) throw new WardError('no command given', { fix: 'ward run [options] -- COMMAND [ARGS...]' });
  // Opened before the command runs: a record that cannot be written must refuse the run, not
  // fail after it and turn the command's exit status into Ward's.
  const recordFd = record === undefined ? undefined : openRecord(record);

  // The log is opened (and the key made on first use) before anything else: no log, no run,
  // and a refusal (a --verify-strict failure included) is recorded in it as launch-failed.
  const logPath = auditLog ?? defaultAuditLog();
  const audit = openAudit(auditLog, process.env, (k) => {
    if (!quiet) process.stderr.write(`${keyCreatedNotice(k, logPath)}\n`);
  });

  let verification: VerificationSummary | undefined;
  let refusal: WardError | undefined;
  if (verify) {
    const report = await verifyPolicy(policy, { workspace });
    verification = {
      policy_sha256: report.policy_sha256,
      plan_sha256: report.plan_sha256,
      ok: report.ok,
      properties: report.properties.map((p) => ({ id: p.id, status: p.status, ...(p.counterexample !== undefined ? { counterexample: p.counterexample } : {}) })),
      ms: Math.round(report.ms.total),
    };
    const failed = report.properties.filter((p) => p.status !== 'PROVED');
    if (verify === 'strict' && failed.length > 0) {
      refusal = new WardError(`--verify-strict: ${failed.map((p) => `${p.id} ${p.status}${p.counterexample ? ` (${p.counterexample})` : ''}`).join('; ')} (policy sha256 ${report.policy_sha256})`, {
        step: 'verify',
        fix: 'see `ward verify` for each property and its counterexample; fix the policy, or run with --verify to record the result without requiring it',
      });
    }
  }

  // Output goes straight to the terminal (a TTY stays a TTY) unless the policy caps it,
  // which needs Ward in the middle to count.
  const handle = launchAudited(
    audit,
    argv,
    () => {
      // Thrown inside launchAudited so that the refusal is written to the audit log.
      if (refusal) throw refusal;
      const plan = compile(policy, { workspace });
      const seen = record === undefined ? undefined : seenInSandbox(plan, record);
      if (seen !== undefined) {
        throw new WardError(`--record ${record} is inside a path this policy lets the sandbox see (${seen}): the command could read it, or replace it with records of its own`, {
          step: 'record',
          fix: 'write the record outside every granted path (e.g. in a directory beside the workspace, not inside it)',
        });
      }
      return plan;
    },
    (plan) => ({ allowDegraded, stdin: 'inherit', ...(verification ? { verification } : {}), ...(session !== undefined ? { session } : {}), output: plan.outputBytes === null ? 'inherit' : { stdout: process.stdout, stderr: process.stderr } }),
  );
  let r;
  try {
    r = await handle.result;
    if (recordFd !== undefined) {
      writeFileSync(recordFd, `${JSON.stringify(r.launch)}\n${JSON.stringify({ type: 'exit', exit_code: r.exitCode, raw_exit_code: r.rawExitCode, reason: r.reason, denials: r.denials, revocations: r.revocations, duration_ms: Math.round(r.durationMs) })}\n`);
    }
  } finally {
    if (recordFd !== undefined) closeSync(recordFd);
  }
  // A stderr that stopped taking the command's output would not take these lines either (they are
  // in the audit log).
  if (!quiet && !r.outputCut.includes(2)) {
    for (const d of r.launch.degraded) process.stderr.write(`ward: degraded: ${printable(d)}\n`);
    if (r.message) process.stderr.write(`ward: ${printable(r.message)}\n`);
    for (const rv of r.revocations) {
      process.stderr.write(`ward: rules[${rv.rule}] fired on ${printable(rv.trigger)}${rv.pid !== null ? ` (pid ${rv.pid}, ${printable(rv.by)})` : ` (${printable(rv.by)})`}: ${rv.revoked.map(printable).join(', ')} revoked for the rest of the run${rv.connections_cut ? ` (${rv.connections_cut} open connection(s) cut)` : ''}\n`);
      for (const k of rv.killed ?? []) process.stderr.write(`ward: killed pid ${k.pid}: it could still write ${printable(k.file)} (${k.through === 'fd' ? 'opened for writing' : 'mapped shared from a file opened for writing'} before rules[${rv.rule}] revoked it)\n`);
    }
    // The supervisor may refuse thousands of calls of one kind (a build retrying a revoked
    // write): one line per kind, with a count and the first call, not one line per call.
    const kinds = new Map<string, { n: number; first: string }>();
    for (const d of r.denials) {
      // A limit's kill is r.message already; the relay's end is not.
      if (d.verdict === 'killed' && d.layer !== 'network') continue;
      if (d.layer !== 'supervisor') {
        process.stderr.write(`ward: ${printable(d.detail)}\n`);
        continue;
      }
      const k = kinds.get(d.detail);
      if (k) k.n++;
      else kinds.set(d.detail, { n: 1, first: d.what });
    }
    for (const [detail, k] of kinds) process.stderr.write(`ward: refused ${printable(k.first)}${k.n > 1 ? ` (and ${k.n - 1} more like it)` : ''}: ${printable(detail)}\n`);
    // One line per destination refused, with the rule that would allow it: the usual next step.
    const refused = new Map<string, string>();
    for (const e of r.net) {
      if (e.verdict !== 'deny' || !e.host) continue;
      const what = printable(e.port !== undefined ? `${e.host}:${e.port}` : e.host);
      if (refused.has(what)) continue;
      const hint = e.reason === 'not-allowed' ? (e.port !== undefined ? ` (to allow it: add "${what}" to network.allow)` : ' (not in network.allow)') : '';
      refused.set(what, `ward: network: ${printable(e.kind)} ${what} refused: ${printable(String(e.reason))}${hint}`);
    }
    for (const line of refused.values()) process.stderr.write(`${line}\n`);
  }
  return r.exitCode;
}

/** --record FILE, opened for appending (created if missing), or a refusal naming what is wrong with it. */
function openRecord(file: string): number {
  try {
    return openSync(file, 'a', 0o644);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const problem =
      code === 'ENOENT' ? 'its directory does not exist' : code === 'EISDIR' ? 'it is a directory' : code === 'ENOTDIR' ? 'a parent of it is not a directory' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (e as Error).message;
    throw new WardError(`--record ${file}: cannot open it for writing (${problem}); nothing was run`, { fix: '--record takes a file (the launch and exit records are appended to it) in an existing, writable directory' });
  }
}
