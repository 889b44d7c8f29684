/**
 * Appends records to an audit log: one lock, one read of the tail, one write.
 *
 *   1. take the lock beside the log (lock.ts);
 *   2. read where the chain stands: the first line (log id, key id), the signed
 *      head file, and the tail back to the record the head names; check that
 *      tail chains (so Ward never signs over a log changed since its last
 *      checkpoint) and that the log is not shorter than its head says (skipped
 *      when the log and head are exactly as this writer left them);
 *   3. build the new records (seq, ts, prev, hash), a checkpoint every N records
 *      and wherever the caller asks (the end of every run);
 *   4. write them with one write(2) on an O_APPEND descriptor;
 *   5. after a checkpoint: fdatasync the log, then replace the head file
 *      (temporary file, fsync, rename).
 *
 * Everything is synchronous: records arrive through LaunchOptions.onRecord,
 * which is a plain callback, and an append is well under a millisecond without
 * contention. Descriptors are opened and closed inside one append (and Node
 * opens them close-on-exec), so none is ever open when a sandbox is spawned.
 */
import { randomBytes, sign } from 'node:crypto';
import { closeSync, constants, existsSync, fdatasyncSync, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { WardError } from '../errors.js';
import { WARD_VERSION } from '../version.js';
import {
  checkpointStatement,
  DEFAULT_CHECKPOINT_EVERY,
  HEAD_FORMAT,
  HEX64,
  makeRecord,
  monotonicTs,
  normalizeEvent,
  recordHash as hashOf,
  serializeHead,
  serializeRecord,
  WRITER_TYPES,
  ZERO_HASH,
  type AuditEvent,
  type AuditRecord,
  type HeadFile,
} from './format.js';
import { loadSigningKey, shortKeyId, type InitResult, type SigningKey } from './keys.js';
import { acquireLock } from './lock.js';
import { signatureHolds } from './verify.js';

export interface AuditWriterOptions {
  /** The log file; created (mode 0600, directory 0700) on the first append. */
  path: string;
  /** The signing key; default: the user's key (keys.ts), created on first use unless createKey is false. */
  key?: SigningKey;
  /** Where the default key lives (XDG_CONFIG_HOME, HOME). */
  env?: NodeJS.ProcessEnv;
  createKey?: boolean;
  /** Told when a key was created for this writer. */
  onKeyCreated?: (r: InitResult) => void;
  /** A checkpoint after at most this many records (default 64). */
  checkpointEvery?: number;
  lockTimeoutMs?: number;
}

interface ChainState {
  logId: string;
  seq: number;
  hash: string;
  ts: string | undefined;
  lastCheckpointSeq: number;
}

const FAIL_FIX = (file: string) =>
  `keep ${file} and ${file}.head as evidence and check them with \`ward audit verify ${file}\`; to go on recording, move both aside (Ward then starts a new log) or pass --audit-log NEW_FILE`;

export class AuditWriter {
  readonly path: string;
  readonly headPath: string;
  readonly lockPath: string;
  readonly key: SigningKey;
  readonly checkpointEvery: number;
  private readonly lockTimeoutMs: number | undefined;
  /**
   * Where the chain stood after our own last append, with the identity of the
   * log and head files as we left them. When both are unchanged (same inode,
   * size and mtime), nobody has written since, and step 2's re-read and
   * re-verification (a signature check and up to N hashes: ~1 ms, which an
   * egress-heavy run pays per record) can be skipped. Any other writer, or
   * any edit, changes one of them and the full check runs again.
   */
  private verified: { log: string; head: string; state: ChainState } | null = null;

  constructor(opts: AuditWriterOptions) {
    this.path = path.resolve(opts.path);
    this.headPath = `${this.path}.head`;
    this.lockPath = `${this.path}.lock`;
    this.key = opts.key ?? loadSigningKey({ env: opts.env, create: opts.createKey ?? true, onCreate: opts.onKeyCreated });
    this.checkpointEvery = opts.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
    if (!Number.isInteger(this.checkpointEvery) || this.checkpointEvery < 1) throw new Error('audit: checkpointEvery must be a positive integer');
    this.lockTimeoutMs = opts.lockTimeoutMs;
  }

  /** Appends the events in order; returns the records written (checkpoints included). */
  append(events: AuditEvent[], opts: { checkpoint?: boolean } = {}): AuditRecord[] {
    const normalized = events.map((e) => {
      const n = normalizeEvent(e);
      if ((WRITER_TYPES as readonly string[]).includes(n.type)) throw new Error(`audit: "${n.type}" records are written by the log itself`);
      return n;
    });
    try {
      mkdirSync(path.dirname(this.path), { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new WardError(`cannot create the audit log's directory ${path.dirname(this.path)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
        step: 'audit:log',
        fix: 'pass --audit-log FILE in a directory this user can write (the default is ~/.local/state/ward/audit.jsonl)',
      });
    }
    const lock = acquireLock(this.lockPath, { timeoutMs: this.lockTimeoutMs });
    try {
      const fd = openLog(this.path);
      try {
        const stat = fstatSync(fd, { bigint: true });
        const size = Number(stat.size);
        const out: AuditRecord[] = [];
        let state: ChainState;
        const isNew = size === 0;
        if (isNew) {
          if (existsSync(this.headPath)) {
            throw new WardError(`the audit log ${this.path} is empty, but its signed head file says it had records: it was emptied or replaced`, { step: 'audit:log', fix: FAIL_FIX(this.path) });
          }
          const start = makeRecord({ type: 'log-start', log_id: randomBytes(16).toString('hex'), key_id: this.key.keyId, ward_version: WARD_VERSION }, 0, monotonicTs(undefined), ZERO_HASH);
          out.push(start);
          state = { logId: start.log_id as string, seq: 0, hash: start.hash, ts: start.ts, lastCheckpointSeq: -1 };
        } else {
          const cached = this.verified;
          state = cached && cached.log === fileIdentity(stat) && cached.head === headIdentity(this.headPath) ? { ...cached.state } : this.readState(fd, size);
        }
        const push = (rec: AuditRecord) => {
          out.push(rec);
          state.seq = rec.seq;
          state.hash = rec.hash;
          state.ts = rec.ts;
        };
        for (const ev of normalized) {
          push(makeRecord(ev, state.seq + 1, monotonicTs(state.ts), state.hash));
          if (state.seq - state.lastCheckpointSeq >= this.checkpointEvery) this.pushCheckpoint(state, push);
        }
        if ((opts.checkpoint || isNew) && state.lastCheckpointSeq !== state.seq) this.pushCheckpoint(state, push);

        writeAll(fd, Buffer.from(out.map((r) => `${serializeRecord(r)}\n`).join('')));
        const lastCheckpoint = [...out].reverse().find((r) => r.type === 'checkpoint');
        if (lastCheckpoint) {
          fdatasyncSync(fd);
          this.writeHead(state.logId, lastCheckpoint);
        }
        this.verified = { log: fileIdentity(fstatSync(fd, { bigint: true })), head: headIdentity(this.headPath), state: { ...state } };
        return out;
      } finally {
        closeSync(fd);
      }
    } finally {
      lock.release();
    }
  }

  /**
   * Checks, before anything runs, that this log can take records: creates it if
   * new, otherwise takes the lock and checks its key, its head file and the
   * chain since its last checkpoint. Writes nothing to an existing log.
   */
  prepare(): void {
    this.append([]);
  }

  /** A checkpoint now (no-op when the log already ends with one). */
  checkpoint(): AuditRecord[] {
    return this.append([], { checkpoint: true });
  }

  private pushCheckpoint(state: ChainState, push: (r: AuditRecord) => void): void {
    const size = state.seq + 1;
    const sig = sign(null, Buffer.from(checkpointStatement(state.logId, size, state.hash)), this.key.privateKey).toString('base64');
    push(makeRecord({ type: 'checkpoint', size, head: state.hash, key_id: this.key.keyId, sig }, size, monotonicTs(state.ts), state.hash));
    state.lastCheckpointSeq = size;
  }

  /** The head file names the last checkpoint: the log had `checkpoint.seq + 1` records, ending with it. */
  private writeHead(logId: string, checkpoint: AuditRecord): void {
    const size = checkpoint.seq + 1;
    const head: HeadFile = {
      format: HEAD_FORMAT,
      log_id: logId,
      size,
      head: checkpoint.hash,
      key_id: this.key.keyId,
      sig: sign(null, Buffer.from(checkpointStatement(logId, size, checkpoint.hash)), this.key.privateKey).toString('base64'),
    };
    const tmp = `${this.headPath}.tmp-${process.pid}`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeAll(fd, Buffer.from(serializeHead(head)));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // No fsync of the directory: after a power cut the rename may be lost and the
    // previous head come back. That head is older, never wrong: `ward audit verify`
    // says the head is behind, and the next checkpoint writes it again.
    renameSync(tmp, this.headPath);
  }

  /** Where the chain stands, after checking the log against its signed head. */
  private readState(fd: number, size: number): ChainState {
    const fail = (what: string): never => {
      throw new WardError(`the audit log ${this.path} ${what}`, { step: 'audit:log', fix: FAIL_FIX(this.path) });
    };
    const first = parseLine(readFirstLine(fd, size), 1, fail);
    if (first.type !== 'log-start' || first.seq !== 0 || typeof first.log_id !== 'string') fail('does not start with a log-start record');
    if (first.key_id !== this.key.keyId) {
      throw new WardError(`the audit log ${this.path} is signed with key ${shortKeyId(String(first.key_id))}, not with the current key ${shortKeyId(this.key.keyId)} (${this.key.file})`, {
        step: 'audit:key',
        fix: `one log, one key: move ${this.path} and ${this.path}.head aside (verify them with the old audit.pub, kept as audit.${shortKeyId(String(first.key_id))}.pub by \`ward keys init --force\`) and Ward starts a new log, or pass --audit-log NEW_FILE`,
      });
    }
    const logId = first.log_id as string;

    let head: HeadFile;
    try {
      head = JSON.parse(readFileSync(this.headPath, 'utf8')) as HeadFile;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return fail(`has no head file ${this.headPath} (deleted, or a crash while the log was created)`);
      return fail(`has an unreadable head file ${this.headPath}`);
    }
    if (head.format !== HEAD_FORMAT || head.log_id !== logId || !Number.isSafeInteger(head.size) || head.size < 1 || typeof head.head !== 'string' || !HEX64.test(head.head) || typeof head.sig !== 'string') {
      fail(`has a head file that does not belong to it (${this.headPath})`);
    }
    if (!signatureHolds(this.key, checkpointStatement(logId, head.size, head.head), head.sig)) {
      fail(`has a head file whose signature is not valid (${this.headPath})`);
    }

    // The tail, from the record the head names to the end, must chain.
    const anchorSeq = head.size - 1;
    const lines = readTailFrom(fd, size, anchorSeq, fail);
    if (lines.length === 0) return fail(`has fewer records than its signed head says (${head.size}): it was truncated`);
    const records = lines.map((l, i) => parseLine(l, i, fail));
    // A value Ward never writes (a number edited out of range) cannot be hashed: an edit like any other.
    const recordHash = (r: AuditRecord): string => {
      try {
        return hashOf(r);
      } catch {
        return fail(`was changed after its last checkpoint (at seq ${String(r.seq)}: a value Ward never writes); Ward will not sign over it`);
      }
    };
    const anchor = records[0]!;
    if (anchor.hash !== head.head || recordHash(anchor) !== anchor.hash || serializeRecord(anchor) !== lines[0]) fail(`does not match its signed head at seq ${anchorSeq}: the record was changed or replaced`);
    for (let i = 1; i < records.length; i++) {
      const r = records[i]!;
      const p = records[i - 1]!;
      if (r.seq !== p.seq + 1 || r.prev !== p.hash || recordHash(r) !== r.hash || serializeRecord(r) !== lines[i]) {
        fail(`was changed after its last checkpoint (at seq ${p.seq + 1}); Ward will not sign over it`);
      }
    }
    const last = records.at(-1)!;
    return { logId, seq: last.seq, hash: last.hash, ts: last.ts, lastCheckpointSeq: anchorSeq };
  }
}

// ---------------------------------------------------------------------------

/** Inode, size and mtime (ns): what changes when anyone writes or edits the file. */
function fileIdentity(st: { ino: bigint; size: bigint; mtimeNs: bigint; ctimeNs: bigint }): string {
  return `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

function headIdentity(file: string): string {
  try {
    return fileIdentity(statSync(file, { bigint: true }));
  } catch {
    return 'absent';
  }
}

function openLog(file: string): number {
  try {
    return openSync(file, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new WardError(`cannot open the audit log ${file}: ${code === 'ELOOP' ? 'it is a symbolic link' : code ?? (e as Error).message}`, {
      step: 'audit:log',
      fix: 'pass --audit-log FILE with a regular file in a directory this user can write (the default is ~/.local/state/ward/audit.jsonl)',
    });
  }
}

function writeAll(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

function readAt(fd: number, start: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, start + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

function readFirstLine(fd: number, size: number): string {
  for (let want = 4096; ; want *= 4) {
    const buf = readAt(fd, 0, Math.min(want, size));
    const nl = buf.indexOf(0x0a);
    if (nl >= 0) return buf.subarray(0, nl).toString('utf8');
    if (buf.length >= size) return buf.toString('utf8');
  }
}

const MAX_TAIL_BYTES = 256 * 1024 * 1024;

/** The lines from the one with seq === anchorSeq to the end ([] if there is none). */
function readTailFrom(fd: number, size: number, anchorSeq: number, fail: (what: string) => never): string[] {
  const lastByte = readAt(fd, size - 1, 1);
  if (lastByte[0] !== 0x0a) fail('ends with an incomplete line (a write was cut short, or the file was edited)');
  for (let window = 16 * 1024; ; window *= 4) {
    const start = Math.max(0, size - window);
    const text = readAt(fd, start, size - start).toString('utf8');
    const lines = text.slice(0, -1).split('\n');
    if (start > 0) lines.shift(); // partial
    for (let i = lines.length - 1; i >= 0; i--) {
      const m = /^\{"seq":(\d+),/.exec(lines[i]!);
      if (!m) fail(`has a malformed line near its end`);
      const seq = Number(m![1]);
      if (seq === anchorSeq) return lines.slice(i);
      if (seq < anchorSeq) return [];
    }
    if (start === 0) return [];
    if (window >= MAX_TAIL_BYTES) fail('has more than 256 MiB of records after its last checkpoint');
  }
}

function parseLine(line: string, index: number, fail: (what: string) => never): AuditRecord {
  let rec: AuditRecord;
  try {
    rec = JSON.parse(line) as AuditRecord;
  } catch {
    return fail(`has an unparsable line (${index})`);
  }
  if (typeof rec !== 'object' || rec === null || !Number.isSafeInteger(rec.seq) || typeof rec.hash !== 'string' || typeof rec.prev !== 'string') fail(`has a malformed record (${index})`);
  return rec;
}

