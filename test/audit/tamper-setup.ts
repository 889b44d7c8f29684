/**
 * Shared by the tampering tests (split in two files so the test runner runs
 * them in parallel): one log made through the writer, its lines, and a seeded
 * PRNG (WARD_TAMPER_SEED=N replays a failure).
 */
import assert from 'node:assert/strict';
import { verifyLog, type VerifyReport } from '../../src/audit/verify.js';
import { lineOfEachByte, makeLog, toLines } from './fixture.js';

export const seed = Number(process.env.WARD_TAMPER_SEED ?? Date.now() % 1_000_000);
export const fx = makeLog();
export const lines = toLines(fx.log);
export const N = lines.length;
export const lineOf = lineOfEachByte(fx.log);
export const checkpointLines = lines.map((l, i) => (JSON.parse(l.toString()).type === 'checkpoint' ? i + 1 : 0)).filter((n) => n > 0);

export function verify(log: Buffer, head: string | null = fx.head): VerifyReport {
  return verifyLog(log, head, fx.verifyKey);
}

/** Not intact; and when `line` is given, that is the first bad line reported. */
export function expectBad(r: VerifyReport, line: number | null, what: string): void {
  assert.equal(r.ok, false, `${what}: not detected (seed ${seed})`);
  if (line !== null) assert.equal(r.problem?.line, line, `${what}: reported ${JSON.stringify(r.problem)} (seed ${seed})`);
}
