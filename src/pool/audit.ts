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
import { runRecordSink } from '../audit/run-log.js';
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
  let handle: RunHandle | null = null;
  const sink = runRecordSink(writer, runId, () => handle?.kill());
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
    onRecord: (r) => sink.write([r]),
    failed,
    wrap(h) {
      handle = h;
      const result = h.result.then(
        (r: RunResult) => {
          const failure = sink.failure(r.exitCode, 'pass audit: FILE with a writable place outside the sandbox');
          if (failure) throw failure;
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
