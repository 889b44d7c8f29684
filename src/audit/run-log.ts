/**
 * The audit log, wired into a run: every record the launch path emits
 * (launch, denial, exit) is appended with the run's id, a checkpoint closes the
 * run, and a run Ward refuses is recorded as `launch-failed`.
 *
 * Fail closed: a run whose records cannot be written does not go on. If the
 * log cannot be opened, nothing starts; if the launch record cannot be
 * appended, the sandbox is killed; if the exit record cannot be appended, the
 * run reports a Ward error instead of the command's status.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { WardError } from '../errors.js';
import type { Plan } from '../plan/compile.js';
import { visibleInSandbox } from '../plan/visible.js';
import { realOr, stateDir } from '../paths.js';
import { launch, type LaunchOptions, type RunHandle, type RunRecord } from '../sandbox/launch.js';
import { WARD_VERSION } from '../version.js';
import { ensurePrivateDir, shortKeyId, type InitResult } from './keys.js';
import { AuditWriter } from './writer.js';

/** How long a network record may wait to be written with the ones after it. */
const NET_BATCH_MS = 5;
/** Records per append at most: a burst of any size is written in bounded pieces. */
const MAX_BATCH = 1000;

/** `audit` in RunOptions: a log file, an open writer, or false (not recorded). Default: the user's log. */
export type AuditOption = string | false | AuditWriter | undefined;

/** $XDG_STATE_HOME/ward/audit.jsonl (default ~/.local/state/ward/audit.jsonl). */
export function defaultAuditLog(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(stateDir(env), 'audit.jsonl');
}

/**
 * The writer for a run. The default log and key come from the same
 * environment the policy's mandatory denies are computed from, so the log is
 * always in a place the sandbox cannot see.
 */
export function openAudit(option: AuditOption, env: NodeJS.ProcessEnv = process.env, onKeyCreated?: (r: InitResult) => void): AuditWriter | null {
  if (option === false) return null;
  if (option instanceof AuditWriter) return option;
  if (option === undefined) ensurePrivateDir(stateDir(env));
  return new AuditWriter({ path: option ?? defaultAuditLog(env), env, onKeyCreated });
}

/** The notice `ward run` prints once, when it made the key. */
export function keyCreatedNotice(r: InitResult, log: string): string {
  return `ward: created the audit signing key ${r.privateKey} (key id ${shortKeyId(r.keyId)}); the checkpoints of ${log} are signed with it. Keep a copy of ${r.publicKey} off this machine to verify the log with \`ward audit verify --pubkey\`.`;
}

/**
 * The first place of `file` (its directory, its name there, what it resolves to) that the plan
 * shows the sandbox, or undefined when it is hidden. A file the command can see, it can read; in
 * a directory it can write, it can also replace the file by name, so that Ward's records go to
 * an unlinked inode and the name holds the command's own.
 */
export function seenInSandbox(plan: Plan, file: string): string | undefined {
  const dir = path.dirname(file);
  const places = [realOr(dir), path.join(realOr(dir), path.basename(file)), realOr(file)];
  return places.find((p) => visibleInSandbox(plan.mounts.ops, p));
}

/** Refuses a log (or its directory, where the head and lock files live) that the sandbox could read or write. */
export function assertLogHidden(writer: AuditWriter, plan: Plan): void {
  const seen = seenInSandbox(plan, writer.path);
  if (seen !== undefined) {
    throw new WardError(`the audit log ${writer.path} is inside a path this policy lets the sandbox see (${seen}): the command could read, cut or delete its own record`, {
      step: 'audit:log',
      fix: `keep the log outside every granted path: the default ${defaultAuditLog()} is always hidden, or pass --audit-log FILE elsewhere`,
    });
  }
}

/**
 * compile -> check the log is hidden -> launch, with every record appended.
 * `prepare` compiles the plan (its errors are recorded as launch-failed too);
 * `options` builds the launch options from the plan.
 */
export function launchAudited(writer: AuditWriter | null, argv: string[], prepare: () => Plan, options: (plan: Plan) => LaunchOptions = () => ({})): RunHandle {
  const runId = randomBytes(8).toString('hex');
  const recordFailure = (e: unknown, phase: string) => {
    if (!writer) return;
    const w = e instanceof WardError ? e : null;
    try {
      writer.append(
        [
          {
            type: 'launch-failed',
            run_id: runId,
            step: w?.step ?? (w ? phase : 'internal'),
            message: (e as Error)?.message ?? String(e),
            fix: w?.fix ?? null,
            argv,
            cwd: process.cwd(),
            ward_version: WARD_VERSION,
          },
        ],
        { checkpoint: true },
      );
    } catch {
      // The refusal stands either way; a log that cannot take it says so on the next run.
    }
  };

  writer?.prepare(); // a log that cannot take this run's records stops it before anything runs
  let plan: Plan;
  try {
    plan = prepare();
    if (writer) assertLogHidden(writer, plan);
  } catch (e) {
    recordFailure(e, 'prepare');
    throw e;
  }

  const opts = options(plan);
  let handle: RunHandle | undefined;
  const sink = runRecordSink(writer, runId, () => handle?.kill());
  const write = sink.write;
  // Records come in bursts, and each append costs a lock, an open and a stat whatever its size.
  // Written one by one, a burst held Ward's event loop: a flood of supervisor refusals took
  // seconds on a loaded 2-core machine, during which no output was relayed, no connection decided,
  // and a launch's status report sat unread while its exit was seen (the run then failed as if bwrap
  // had). So records are queued and appended together, in order: network records within
  // NET_BATCH_MS of the first (written at once, the append sat between a connection's "dial" and
  // its "pass": bench/egress.js, +0.4-0.8 ms per connection), any other record at the end of this
  // turn of the event loop, the exit record (with its checkpoint) at once.
  let queue: RunRecord[] = [];
  let netTimer: NodeJS.Timeout | undefined;
  let turn: NodeJS.Immediate | undefined;
  const flush = () => {
    clearTimeout(netTimer);
    if (turn) clearImmediate(turn);
    netTimer = turn = undefined;
    const batch = queue;
    queue = [];
    write(batch);
  };
  const onRecord = (r: RunRecord) => {
    queue.push(r);
    if (r.type === 'exit' || queue.length >= MAX_BATCH) flush();
    else if (r.type !== 'net') turn ??= setImmediate(flush);
    else netTimer ??= setTimeout(flush, NET_BATCH_MS);
    opts.onRecord?.(r);
  };
  try {
    handle = launch(plan, argv, { ...opts, onRecord });
  } catch (e) {
    recordFailure(e, 'launch');
    throw e;
  }
  const result = handle.result.then(
    (r) => {
      const failure = sink.failure(r.exitCode, 'pass --audit-log FILE with a writable place outside the sandbox');
      if (failure) throw failure;
      return r;
    },
    (e: unknown) => {
      flush(); // what the run did before it failed comes before the failure
      recordFailure(e, 'launch');
      throw e;
    },
  );
  result.catch(() => {});
  return { pid: handle.pid, stdin: handle.stdin, kill: handle.kill, result };
}

/**
 * Where a run's records go: appended under its run_id, the exit record with a signed checkpoint.
 * The first append that fails is kept and nothing more is written; if it was not the exit record,
 * `kill` stops the run (a command Ward cannot record does not go on). `failure()` is then the
 * error the run's result must become, or null when every record was written.
 */
export function runRecordSink(writer: AuditWriter | null, runId: string, kill: () => void) {
  let error: unknown = null;
  let killed = false;
  const write = (records: RunRecord[]) => {
    if (!writer || error !== null || records.length === 0) return;
    const last = records.at(-1)!;
    try {
      writer.append(
        records.map((r) => ({ ...r, run_id: runId })),
        { checkpoint: last.type === 'exit' },
      );
    } catch (e) {
      error = e;
      if (last.type !== 'exit') {
        killed = true;
        kill();
      }
    }
  };
  const failure = (exitCode: number, fix: string): WardError | null => {
    if (error === null) return null;
    const e = error as Error;
    const what = killed ? 'the sandbox was killed' : `the command ended with status ${exitCode}, but that is not recorded`;
    return new WardError(`the audit log could not be written (${e.message}); ${what}`, {
      step: 'audit:log',
      fix: e instanceof WardError && e.fix ? e.fix : fix,
    });
  };
  return { write, failure };
}
