/**
 * Verifies an audit log: recomputes the chain line by line and stops at the
 * first line that is wrong, saying exactly what is wrong with it.
 *
 * For each line, in order:
 *   1. it is complete (ends with a newline), valid UTF-8 and JSON, and has the
 *      record shape (seq, ts, type, prev, hash);
 *   2. it is byte-for-byte Ward's serialization of what it parses to, and its
 *      hash matches its content: otherwise the line was EDITED;
 *   3. it is in its place: seq is the previous seq + 1 and prev the previous
 *      hash. If not, the record itself is intact but misplaced, and the rest of
 *      the file tells how: a copy of another line (INSERTED), the missing seq
 *      found further on (REORDERED), or nowhere (DELETED);
 *   4. ts does not go backwards;
 *   5. line 1 is the log-start and names the key given; every checkpoint's size
 *      and head match the chain at that point, and its Ed25519 signature holds.
 * Then the whole file: each anchor (a copy of an earlier head file kept off the
 * host) and the signed head file (`<log>.head`) name a record that exists and
 * matches (a log cut exactly after a checkpoint is caught here), and the log
 * ends with a checkpoint (records after it are not signed yet).
 *
 * A log is intact only if all of that holds. Pure: bytes and a key in, a report out.
 */
import { isUtf8 } from 'node:buffer';
import { verify as verifySignature, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { WardError } from '../errors.js';
import { checkpointStatement, encodeRecord, HEAD_FORMAT, HEX64, serializeHead, TS_FORMAT, ZERO_HASH, type AuditRecord, type HeadFile } from './format.js';
import { shortKeyId } from './keys.js';

export type ProblemKind =
  | 'unparsable' // not UTF-8 / not JSON
  | 'malformed' // JSON, but not a record
  | 'edited' // the record does not match its own hash or spelling
  | 'deleted' // a gap in seq
  | 'reordered' // a record out of its place
  | 'inserted' // a copy of another record, or a second log-start
  | 'chain' // in sequence, but prev is not the previous hash: replaced by a forged record
  | 'timestamp' // ts goes backwards
  | 'wrong-key' // the log names another key than the one given
  | 'signature' // a checkpoint that does not hold
  | 'truncated' // an incomplete last line, an empty log, or fewer records than the signed head says
  | 'head' // the head file is missing, invalid, or disagrees with the log
  | 'anchor' // a head saved elsewhere (--anchor) names a record the log no longer has: rewritten
  | 'unsigned-tail'; // records after the last checkpoint

export interface Problem {
  kind: ProblemKind;
  /** 1-based line of the first bad record (the line after the last one when records are missing at the end). */
  line: number | null;
  /** The seq on that line, when it has one. */
  seq: number | null;
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  file: string | null;
  lines: number;
  /** Records that verified, from line 1 (all of them when ok). */
  verified: number;
  log_id: string | null;
  key_id: string | null;
  checkpoints: number;
  last_checkpoint: { line: number; seq: number; size: number; head: string } | null;
  /** The last verified record. */
  head: { seq: number; hash: string } | null;
  head_file: { size: number; head: string } | null;
  unsigned_tail: number;
  problem: Problem | null;
}

export interface VerifyKey {
  publicKey: KeyObject;
  keyId: string;
}

/**
 * Signature checks already done, by key, statement and signature: a pure
 * function of its inputs, so re-verifying a log (after every probe, say) does
 * not pay ~120 us again for each checkpoint it has seen.
 */
const signatureMemo = new Map<string, boolean>();

export function signatureHolds(key: VerifyKey, statement: string, sig: string): boolean {
  const memoKey = `${key.keyId}\n${statement}${sig}`;
  const known = signatureMemo.get(memoKey);
  if (known !== undefined) return known;
  const ok = verifySignature(null, Buffer.from(statement), key.publicKey, Buffer.from(sig, 'base64'));
  if (signatureMemo.size >= 65_536) signatureMemo.clear();
  signatureMemo.set(memoKey, ok);
  return ok;
}

/** Verifies log bytes and the head file's text (null: there is none). */
export function verifyLog(log: Buffer, headText: string | null, key: VerifyKey, file: string | null = null, anchors: { name: string; text: string }[] = []): VerifyReport {
  const report: VerifyReport = {
    ok: false,
    file,
    lines: 0,
    verified: 0,
    log_id: null,
    key_id: null,
    checkpoints: 0,
    last_checkpoint: null,
    head: null,
    head_file: null,
    unsigned_tail: 0,
    problem: null,
  };
  const raw = splitLines(log);
  report.lines = raw.lines.length;
  const problem = (kind: ProblemKind, line: number | null, seq: number | null, message: string): VerifyReport => {
    report.problem = { kind, line, seq, message };
    return report;
  };
  if (raw.lines.length === 0) return problem('truncated', 1, null, 'the log is empty');

  const seen = new Map<string, number>(); // hash -> line
  const good: AuditRecord[] = [];
  for (let i = 0; i < raw.lines.length; i++) {
    const lineNo = i + 1;
    const bytes = raw.lines[i]!;
    if (i === raw.lines.length - 1 && raw.partialLast) {
      return problem('truncated', lineNo, null, `line ${lineNo} is incomplete (the file does not end with a newline): the log was cut here, or the line was edited`);
    }
    if (!isUtf8(bytes)) return problem('unparsable', lineNo, null, `line ${lineNo} is not valid UTF-8: edited`);
    const text = bytes.toString('utf8');
    let rec: AuditRecord;
    try {
      rec = JSON.parse(text) as AuditRecord;
    } catch {
      return problem('unparsable', lineNo, null, `line ${lineNo} is not JSON: edited, or two lines were merged or split`);
    }
    const shape = shapeError(rec);
    if (shape) return problem('malformed', lineNo, seqOf(rec), `line ${lineNo} is not an audit record (${shape}): edited`);
    let encoded: { line: string; hash: string };
    try {
      encoded = encodeRecord(rec);
    } catch {
      // A value Ward never writes (e.g. a number edited into 1e999, which parses as Infinity).
      return problem('edited', lineNo, seqOf(rec), `line ${lineNo} holds a value Ward never writes (such as a number out of range): edited`);
    }
    if (encoded.line !== text) {
      return problem('edited', lineNo, rec.seq, `line ${lineNo} (seq ${rec.seq}) is not spelled the way Ward writes it: edited`);
    }
    if (encoded.hash !== rec.hash) {
      return problem('edited', lineNo, rec.seq, `line ${lineNo} (seq ${rec.seq}): its hash does not match its content: edited`);
    }

    // Intact by itself; now, is it in its place?
    const prev = good[i - 1];
    const expectedSeq = prev ? prev.seq + 1 : 0;
    const expectedPrev = prev ? prev.hash : ZERO_HASH;
    if (rec.seq !== expectedSeq || rec.prev !== expectedPrev) {
      const p = misplaced(raw.lines, i, rec, expectedSeq, seen);
      return problem(p.kind, lineNo, rec.seq, p.message);
    }
    if (prev && rec.ts < prev.ts) {
      return problem('timestamp', lineNo, rec.seq, `line ${lineNo} (seq ${rec.seq}): its time ${rec.ts} is earlier than the previous record's ${prev.ts}`);
    }

    if (i === 0) {
      if (rec.type !== 'log-start' || typeof rec.log_id !== 'string' || typeof rec.key_id !== 'string') {
        return problem('malformed', lineNo, rec.seq, 'line 1 is not a log-start record: the log\'s beginning was replaced');
      }
      report.log_id = rec.log_id;
      report.key_id = rec.key_id;
      if (rec.key_id !== key.keyId) {
        return problem('wrong-key', 1, 0, `the log is signed with key ${shortKeyId(rec.key_id)}, but the public key given is ${shortKeyId(key.keyId)}: the wrong public key, or a log re-signed by someone else`);
      }
    } else if (rec.type === 'log-start') {
      return problem('inserted', lineNo, rec.seq, `line ${lineNo} (seq ${rec.seq}) is a second log-start: inserted`);
    }
    if (rec.type === 'checkpoint') {
      const bad = checkpointError(rec, report.log_id!, key);
      if (bad) return problem('signature', lineNo, rec.seq, `line ${lineNo} (seq ${rec.seq}): checkpoint ${bad}`);
      report.checkpoints++;
      report.last_checkpoint = { line: lineNo, seq: rec.seq, size: rec.size as number, head: rec.head as string };
    }
    seen.set(rec.hash, lineNo);
    good.push(rec);
    report.verified = good.length;
    report.head = { seq: rec.seq, hash: rec.hash };
  }

  const n = good.length;
  const last = good[n - 1]!;
  report.unsigned_tail = n - (report.last_checkpoint ? report.last_checkpoint.line : 0);

  // Anchors: copies of earlier head files kept off this host. Whoever holds the
  // key can rewrite and re-sign the log, but not change what an anchor names.
  for (const a of anchors) {
    const ah = parseHead(a.text);
    if (typeof ah === 'string') return problem('anchor', null, null, `the anchor ${a.name} is not a head file: ${ah}`);
    if (ah.log_id !== report.log_id) return problem('anchor', null, null, `the anchor ${a.name} belongs to another log (${ah.log_id}): this log was replaced, or the wrong anchor was given`);
    if (ah.key_id !== key.keyId || !signatureHolds(key, checkpointStatement(ah.log_id, ah.size, ah.head), ah.sig)) {
      return problem('anchor', null, null, `the anchor ${a.name}'s signature does not hold with this key`);
    }
    if (ah.size > n) return problem('truncated', n + 1, null, `the anchor ${a.name} says the log had ${ah.size} records, but it has ${n}: records from line ${n + 1} on were removed`);
    if (good[ah.size - 1]!.hash !== ah.head) {
      return problem('anchor', ah.size, ah.size - 1, `line ${ah.size} (seq ${ah.size - 1}) is not the record the anchor ${a.name} names: the log was rewritten up to there (and re-signed by someone holding the key)`);
    }
  }

  // The head file: the signed statement of how long the log was at its last checkpoint.
  if (headText === null) {
    return problem('head', null, null, 'the head file is missing: a log cut after a checkpoint could not be told from a whole one');
  }
  const hf = parseHead(headText);
  if (typeof hf === 'string') return problem('head', null, null, `the head file is not valid: ${hf}`);
  if (hf.log_id !== report.log_id) return problem('head', null, null, `the head file belongs to another log (${hf.log_id})`);
  if (hf.key_id !== key.keyId || !signatureHolds(key, checkpointStatement(hf.log_id, hf.size, hf.head), hf.sig)) {
    return problem('head', null, null, 'the head file\'s signature does not hold with this key: forged or edited');
  }
  report.head_file = { size: hf.size, head: hf.head };
  if (hf.size > n) {
    return problem('truncated', n + 1, null, `the signed head says the log had ${hf.size} records, but it has ${n}: ${hf.size - n} record(s) from line ${n + 1} on were removed`);
  }
  if (good[hf.size - 1]!.hash !== hf.head) {
    return problem('head', hf.size, hf.size - 1, `line ${hf.size} (seq ${hf.size - 1}) is not the record the signed head names: the log was rewritten from there`);
  }
  if (report.unsigned_tail > 0) {
    const from = n - report.unsigned_tail + 1;
    return problem(
      'unsigned-tail',
      from,
      good[from - 1]!.seq,
      `${report.unsigned_tail} record(s) after the last checkpoint (lines ${from}-${n}) are not signed: a run in progress, a Ward that was killed, or records added or cut after the last checkpoint; the next checkpoint signs them`,
    );
  }
  if (hf.size < n) {
    return problem('head', hf.size + 1, hf.size, `the head file names seq ${hf.size - 1}, but the log goes on, signed, to seq ${last.seq}: an older head file was put back, or Ward stopped between writing a checkpoint and its head`);
  }
  report.ok = true;
  return report;
}

/** Reads FILE and FILE.head and verifies them (missing log: WardError, exit 125). */
export function verifyLogFile(file: string, key: VerifyKey, anchorFiles: string[] = []): VerifyReport {
  const anchors = anchorFiles.map((a) => {
    try {
      return { name: a, text: readFileSync(a, 'utf8') };
    } catch (e) {
      throw new WardError(`cannot read the anchor ${a}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { step: 'audit:verify', fix: '--anchor takes a copy of the log\'s .head file kept elsewhere' });
    }
  });
  const headFile = `${file}.head`;
  const readHead = (): string | null => {
    try {
      return readFileSync(headFile, 'utf8');
    } catch {
      return null;
    }
  };
  // Head first, then the log: a writer appends before it replaces the head, so
  // the log read second is never shorter than the head read first.
  const head = readHead();
  let log: Buffer;
  try {
    log = readFileSync(file);
  } catch (e) {
    throw new WardError(`cannot read the audit log ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      step: 'audit:verify',
      fix: 'give the log file (the default is ~/.local/state/ward/audit.jsonl; `ward run --audit-log FILE` writes elsewhere)',
    });
  }
  const report = verifyLog(log, head, key, file, anchors);
  // A checkpoint written between the two reads leaves the head read behind: read it again once.
  if (report.problem?.kind === 'head' && report.head_file && report.head_file.size < report.verified) return verifyLog(log, readHead(), key, file, anchors);
  return report;
}

// ---------------------------------------------------------------------------

function splitLines(buf: Buffer): { lines: Buffer[]; partialLast: boolean } {
  const lines: Buffer[] = [];
  let start = 0;
  for (;;) {
    const nl = buf.indexOf(0x0a, start);
    if (nl < 0) break;
    lines.push(buf.subarray(start, nl));
    start = nl + 1;
  }
  const partialLast = start < buf.length;
  if (partialLast) lines.push(buf.subarray(start));
  return { lines, partialLast };
}

function seqOf(rec: unknown): number | null {
  const s = (rec as { seq?: unknown } | null)?.seq;
  return typeof s === 'number' && Number.isSafeInteger(s) ? s : null;
}

function shapeError(rec: unknown): string | null {
  if (typeof rec !== 'object' || rec === null || Array.isArray(rec)) return 'not an object';
  const r = rec as Record<string, unknown>;
  if (typeof r.seq !== 'number' || !Number.isSafeInteger(r.seq) || r.seq < 0) return 'no valid seq';
  if (typeof r.ts !== 'string' || !TS_FORMAT.test(r.ts) || Number.isNaN(Date.parse(r.ts))) return 'no valid ts';
  if (typeof r.type !== 'string' || r.type === '') return 'no type';
  if (typeof r.prev !== 'string' || !HEX64.test(r.prev)) return 'no valid prev';
  if (typeof r.hash !== 'string' || !HEX64.test(r.hash)) return 'no valid hash';
  return null;
}

function checkpointError(rec: AuditRecord, logId: string, key: VerifyKey): string | null {
  if (rec.size !== rec.seq) return `says size ${String(rec.size)}, but ${rec.seq} records precede it`;
  if (rec.head !== rec.prev) return 'names a head that is not the previous record\'s hash';
  if (rec.key_id !== key.keyId) return `is signed by key ${shortKeyId(String(rec.key_id))}, not by the log's key ${shortKeyId(key.keyId)}`;
  if (typeof rec.sig !== 'string' || !isCanonicalBase64(rec.sig) || !signatureHolds(key, checkpointStatement(logId, rec.size as number, rec.head as string), rec.sig)) {
    return 'signature does not hold: forged';
  }
  return null;
}

/** An intact record that is not where it belongs: say how it got there. */
function misplaced(lines: Buffer[], i: number, rec: AuditRecord, expectedSeq: number, seen: Map<string, number>): { kind: ProblemKind; message: string } {
  const lineNo = i + 1;
  const earlier = seen.get(rec.hash);
  if (earlier !== undefined) return { kind: 'inserted', message: `line ${lineNo} (seq ${rec.seq}) is a copy of line ${earlier}: inserted` };
  let expectedAt: number | null = null;
  for (let j = i + 1; j < lines.length; j++) {
    let later: AuditRecord;
    try {
      later = JSON.parse(lines[j]!.toString('utf8')) as AuditRecord;
    } catch {
      continue;
    }
    if (later?.hash === rec.hash) return { kind: 'inserted', message: `line ${lineNo} (seq ${rec.seq}) appears again at line ${j + 1}: a copy was inserted` };
    if (expectedAt === null && later?.seq === expectedSeq) expectedAt = j + 1;
  }
  if (rec.seq > expectedSeq) {
    if (expectedAt !== null) return { kind: 'reordered', message: `line ${lineNo} holds seq ${rec.seq} where seq ${expectedSeq} belongs, and seq ${expectedSeq} is at line ${expectedAt}: records were moved` };
    const missing = rec.seq - expectedSeq;
    return { kind: 'deleted', message: `line ${lineNo} holds seq ${rec.seq} where seq ${expectedSeq} belongs: ${missing} record(s) (seq ${expectedSeq}${missing > 1 ? `-${rec.seq - 1}` : ''}) were deleted before it` };
  }
  if (rec.seq < expectedSeq) return { kind: 'reordered', message: `line ${lineNo} holds seq ${rec.seq} after seq ${expectedSeq - 1}: moved here from earlier` };
  return { kind: 'chain', message: `line ${lineNo} (seq ${rec.seq}) does not chain to line ${lineNo - 1}: its prev is not that record's hash (a forged or foreign record)` };
}

/** Node's base64 decoder ignores spare bits and accepts the URL alphabet: only one spelling is Ward's. */
function isCanonicalBase64(s: string): boolean {
  return Buffer.from(s, 'base64').toString('base64') === s;
}

function parseHead(text: string): HeadFile | string {
  let h: HeadFile;
  try {
    h = JSON.parse(text) as HeadFile;
  } catch {
    return 'not JSON';
  }
  if (typeof h !== 'object' || h === null || h.format !== HEAD_FORMAT) return `not a ${HEAD_FORMAT} file`;
  if (typeof h.log_id !== 'string' || !Number.isSafeInteger(h.size) || h.size < 1 || typeof h.head !== 'string' || !HEX64.test(h.head) || typeof h.sig !== 'string' || typeof h.key_id !== 'string') {
    return 'fields missing or of the wrong type';
  }
  if (!isCanonicalBase64(h.sig)) return 'its signature is not in canonical base64: edited';
  if (serializeHead(h) !== text) return 'it is not spelled the way Ward writes it: edited';
  return h;
}
