/**
 * The audit log's format: one record per line, hash-chained, with signed
 * checkpoints. Everything here is pure: bytes in, bytes out. The writer
 * (writer.ts) and the verifier (verify.ts) share it, so what one writes is what
 * the other recomputes.
 *
 * A record is one JSON object on one line:
 *
 *   {"seq":N,"ts":"2026-...Z","type":"launch", ...fields..., "prev":"<hex>","hash":"<hex>"}
 *
 *   hash = SHA-256("ward-audit-v1\n" || prev || canonicalJson(record without hash))
 *
 * `prev` is the previous record's hash (64 zeros for seq 0, the `log-start`
 * header). The fields between `type` and `prev` are in canonical order (keys
 * sorted, no whitespace), and the whole line must be byte-for-byte what
 * `serializeRecord` makes of its parsed value: a line that parses to the same
 * object but is spelled differently (an escape in another case, reordered keys,
 * a space) was not written by Ward, so an edit is caught even where JSON would
 * hide it.
 *
 * A checkpoint is a record too (`type: "checkpoint"`): it carries an Ed25519
 * signature over a short text statement naming the log, the number of records
 * before it and the hash of the last of them (`checkpointStatement`). The head
 * file beside the log (`<log>.head`) carries the same kind of statement for the
 * whole log, so a log cut exactly after a checkpoint is caught too.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../policy/canonical.js';

/** Domain separation: a Ward audit hash is never the hash of anything else. */
export const DOMAIN_TAG = 'ward-audit-v1\n';
export const ZERO_HASH = '0'.repeat(64);
export const HEAD_FORMAT = 'ward-audit-head-v1';
export const DEFAULT_CHECKPOINT_EVERY = 64;

/** Field names the log itself owns: an event cannot set them. */
export const RESERVED_FIELDS = ['seq', 'ts', 'prev', 'hash'] as const;
/** Record types only the writer makes. */
export const WRITER_TYPES = ['log-start', 'checkpoint'] as const;

export type RecordType = 'log-start' | 'launch' | 'denial' | 'exit' | 'launch-failed' | 'checkpoint' | (string & {});

/** What a caller appends: a type and its fields (no seq, ts, prev, hash). */
export interface AuditEvent {
  type: RecordType;
  [field: string]: unknown;
}

export interface AuditRecord {
  seq: number;
  ts: string;
  type: RecordType;
  prev: string;
  hash: string;
  [field: string]: unknown;
}

/** The signed head file beside the log: the statement for the log's last record. */
export interface HeadFile {
  format: typeof HEAD_FORMAT;
  log_id: string;
  /** Records in the log (the last one has seq size - 1). */
  size: number;
  /** Hash of record size - 1. */
  head: string;
  key_id: string;
  sig: string;
}

/**
 * The head file's one spelling. Every byte of it is either signed (log_id,
 * size, head) or checked (format, key_id, and sig, whose base64 must be the
 * canonical encoding: a base64 string has spare bits a signature check ignores).
 */
export function serializeHead(h: HeadFile): string {
  return `${JSON.stringify({ format: h.format, log_id: h.log_id, size: h.size, head: h.head, key_id: h.key_id, sig: h.sig })}\n`;
}

export const HEX64 = /^[0-9a-f]{64}$/;
/** Date.prototype.toISOString's exact shape, so that string order is time order. */
export const TS_FORMAT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * A record's line and hash, from one pass of canonical JSON over its fields:
 *
 *   line = {"seq":..,"ts":..,"type":.., <other fields, canonical order>, "prev":..,"hash":..}
 *   hash = SHA-256(DOMAIN_TAG || prev || canonicalJson(record without hash))
 *
 * The hash input is exactly canonicalJson() of the record without `hash`: the
 * same sorted top-level entries, each value in canonicalJson(); only the
 * spelling of the line puts seq, ts, type first and prev, hash last, for
 * people reading the file.
 */
export function encodeRecord(rec: Omit<AuditRecord, 'hash'> | AuditRecord): { line: string; hash: string } {
  const all = rec as AuditRecord;
  const entries: [string, string][] = [];
  for (const k of Object.keys(all)) {
    if (k === 'hash' || all[k] === undefined) continue;
    entries.push([k, `${JSON.stringify(k)}:${canonicalJson(all[k])}`]);
  }
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const hash = createHash('sha256')
    .update(DOMAIN_TAG)
    .update(String(all.prev))
    .update(`{${entries.map(([, e]) => e).join(',')}}`)
    .digest('hex');
  const first = ['seq', 'ts', 'type'].map((k) => entries.find(([n]) => n === k)?.[1]).filter((e): e is string => e !== undefined);
  const middle = entries.filter(([k]) => k !== 'seq' && k !== 'ts' && k !== 'type' && k !== 'prev').map(([, e]) => e);
  const prev = entries.find(([k]) => k === 'prev')?.[1];
  const parts = [...first, ...middle, ...(prev !== undefined ? [prev] : []), `"hash":${JSON.stringify(typeof all.hash === 'string' ? all.hash : hash)}`];
  return { line: `{${parts.join(',')}}`, hash };
}

/** The hash of a record: over the domain tag, its prev, and its canonical JSON without `hash`. */
export function recordHash(body: Omit<AuditRecord, 'hash'> | AuditRecord): string {
  return encodeRecord(body).hash;
}

/** The one spelling of a record (see encodeRecord). */
export function serializeRecord(rec: AuditRecord): string {
  return encodeRecord(rec).line;
}

/**
 * Plain data only: what JSON can carry, as JSON.parse will give it back
 * (undefined fields dropped, -0 as 0, Dates as strings), so the writer hashes
 * exactly what a verifier will parse.
 */
export function normalizeEvent(event: AuditEvent): AuditEvent {
  if (typeof event !== 'object' || event === null || typeof event.type !== 'string' || event.type === '') {
    throw new Error('audit: an event needs a non-empty string `type`');
  }
  for (const f of RESERVED_FIELDS) {
    if (f in event) throw new Error(`audit: an event cannot set "${f}" (the log assigns it)`);
  }
  return JSON.parse(JSON.stringify(event)) as AuditEvent;
}

/** Builds a full record from an event and the chain position, hash included. */
export function makeRecord(event: AuditEvent, seq: number, ts: string, prev: string): AuditRecord {
  const body = { ...event, seq, ts, prev } as Omit<AuditRecord, 'hash'>;
  return { ...body, hash: encodeRecord(body).hash } as AuditRecord;
}

/**
 * What a checkpoint's (and the head file's) Ed25519 signature covers: "the log
 * LOG_ID had SIZE records, and the last of them hashed to HEAD". A text
 * statement in the spirit of C2SP tlog-checkpoint: small, unambiguous, and
 * readable by anyone re-checking it with another tool.
 */
export function checkpointStatement(logId: string, size: number, head: string): string {
  return `ward-audit-checkpoint-v1\nlog ${logId}\nsize ${size}\nhead ${head}\n`;
}

/** ISO time, never earlier than `notBefore` (a clock step back must not break ts order). */
export function monotonicTs(notBefore: string | undefined): string {
  const now = new Date().toISOString();
  return notBefore !== undefined && notBefore > now ? notBefore : now;
}
