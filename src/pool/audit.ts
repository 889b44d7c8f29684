/**
 * The audit log for pooled commands: the same records and the same fail-closed rules as
 * run() (src/audit/run-log.ts launchAudited), but per hand-out rather than per launch. A warm
 * sandbox that never takes a command writes nothing: nothing ran.
 *
 *   launch (with pooled.warm_ms) -> denial... -> exit + checkpoint, all with one run_id;
 *   a launch record that cannot be written kills the sandbox; an exit record that cannot be
 *   written turns the result into a Ward error; a refused hand-out is a `launch-failed`.
 */
import { randomBytes } from 'node:crypto';
import { WardError } from '../errors.js';
import type { AuditWriter } from '../audit/writer.js';
import type { RunHandle, RunRecord, RunResult } from '../sandbox/launch.js';
import { WARD_VERSION } from '../version.js';

export interface RunAudit {
  /** Receives the run's records (the warm sandbox's onRecord forwards here once handed out). */
  onRecord(r: RunRecord): void;
  /** The handle the caller gets: its result fails if the records could not be written. */
  wrap(handle: RunHandle): RunHandle;
  /** A hand-out that failed before the command ran. */
  failed(e: unknown): void;
}

export function runAudit(writer: AuditWriter | null, argv: string[], cwd: string): RunAudit {
  const runId = randomBytes(8).toString('hex');
  let auditError: unknown = null;
  let killed = false;
  let handle: RunHandle | null = null;
  const write = (records: RunRecord[]) => {
    if (!writer || auditError !== null || records.length === 0) return;
    const last = records.at(-1)!;
    try {
      writer.append(
        records.map((r) => ({ ...r, run_id: runId })),
        { checkpoint: last.type === 'exit' },
      );
    } catch (e) {
      auditError = e;
      if (last.type !== 'exit') {
        killed = true;
        handle?.kill(); // a command Ward cannot record does not go on
      }
    }
  };
  const failed = (e: unknown) => {
    if (!writer) return;
    const w = e instanceof WardError ? e : null;
    try {
      writer.append(
        [{ type: 'launch-failed', run_id: runId, step: w?.step ?? 'internal', message: (e as Error)?.message ?? String(e), fix: w?.fix ?? null, argv, cwd, ward_version: WARD_VERSION, pooled: true }],
        { checkpoint: true },
      );
    } catch {
      // The refusal stands either way; a log that cannot take it says so on the next run.
    }
  };
  return {
    onRecord: (r) => write([r]),
    failed,
    wrap(h) {
      handle = h;
      const result = h.result.then(
        (r: RunResult) => {
          if (auditError !== null) {
            const e = auditError as Error;
            const what = killed ? 'the sandbox was killed' : `the command ended with status ${r.exitCode}, but that is not recorded`;
            throw new WardError(`the audit log could not be written (${e.message}); ${what}`, {
              step: 'audit:log',
              fix: e instanceof WardError && e.fix ? e.fix : 'pass audit: FILE with a writable place outside the sandbox',
            });
          }
          return r;
        },
        (e: unknown) => {
          failed(e);
          throw e;
        },
      );
      result.catch(() => {});
      return { ...h, result };
    },
  };
}
