/**
 * The DNS wire format (RFC 1035), just enough for the broker: parse one query,
 * build the one answer the broker gives. Nothing here talks to a real resolver:
 * the broker answers every query itself, so a DNS query can never carry data out
 * of the sandbox (no "secret.evil.com TXT" exfiltration), and an allowed name
 * resolves to a synthetic loopback address that the relay inside the sandbox
 * catches.
 *
 * Everything is pure (bytes in, bytes out) and treats its input as hostile:
 * every read is bounds-checked, compression pointers may only point backwards
 * (so a pointer loop cannot exist) and are followed at most MAX_JUMPS times.
 */

export const TYPE_A = 1;
export const TYPE_AAAA = 28;
export const CLASS_IN = 1;

export const RCODE_NOERROR = 0;
export const RCODE_FORMERR = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
export const RCODE_NOTIMP = 4;

/** Seconds: short, so a client does not keep a synthetic address beyond the broker's life for long. */
export const SYNTHETIC_TTL = 5;

const MAX_JUMPS = 16;
const MAX_NAME_WIRE = 255;

/** Names used in events; anything else is reported as its number. */
const TYPE_NAMES: Record<number, string> = {
  1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 15: 'MX', 16: 'TXT', 28: 'AAAA', 33: 'SRV',
  35: 'NAPTR', 43: 'DS', 48: 'DNSKEY', 52: 'TLSA', 64: 'SVCB', 65: 'HTTPS', 99: 'SPF', 255: 'ANY', 257: 'CAA',
};
const TYPE_NUMBERS = new Map(Object.entries(TYPE_NAMES).map(([n, name]) => [name, Number(n)]));

export function qtypeName(t: number): string {
  return TYPE_NAMES[t] ?? String(t);
}

export function qtypeNumber(name: string): number | undefined {
  const n = TYPE_NUMBERS.get(name.toUpperCase());
  if (n !== undefined) return n;
  return /^\d{1,5}$/.test(name) && Number(name) <= 0xffff ? Number(name) : undefined;
}

export interface Query {
  id: number;
  /** Recursion desired, copied into the answer. */
  rd: boolean;
  /** The labels as sent (case kept: some clients check that the answer echoes their 0x20 mixed case). */
  labels: string[];
  /** Lowercased, dot-joined, no trailing dot; '' for the root. */
  name: string;
  qtype: number;
  qclass: number;
}

/** Why a query was refused before it was understood. `id` is set when one could be read (answer FORMERR/NOTIMP). */
export interface BadQuery {
  error: string;
  id?: number;
  rd?: boolean;
  rcode: number;
}

/** Hostname characters Ward accepts in a label. A '.' inside a label would make the dotted name ambiguous. */
const LABEL_RE = /^[A-Za-z0-9_-]{1,63}$/;

/**
 * Parses a DNS query message (without the TCP length prefix). Never throws.
 * Additional records (an EDNS OPT) are ignored; only the one question matters.
 */
export function parseQuery(msg: Buffer): Query | BadQuery {
  if (msg.length < 2) return { error: 'shorter than a DNS header', rcode: RCODE_FORMERR };
  const id = msg.readUInt16BE(0);
  if (msg.length < 12) return { error: 'shorter than a DNS header', id, rcode: RCODE_FORMERR };
  const flags = msg.readUInt16BE(2);
  const rd = (flags & 0x0100) !== 0;
  if (flags & 0x8000) return { error: 'not a query (QR=1)', id, rd, rcode: RCODE_FORMERR };
  const opcode = (flags >> 11) & 0xf;
  if (opcode !== 0) return { error: `opcode ${opcode} not supported`, id, rd, rcode: RCODE_NOTIMP };
  const qdcount = msg.readUInt16BE(4);
  if (qdcount !== 1) return { error: `QDCOUNT ${qdcount}, expected 1`, id, rd, rcode: RCODE_FORMERR };

  const name = readName(msg, 12);
  if (typeof name === 'string') return { error: name, id, rd, rcode: RCODE_FORMERR };
  if (name.end + 4 > msg.length) return { error: 'question truncated', id, rd, rcode: RCODE_FORMERR };
  const qtype = msg.readUInt16BE(name.end);
  const qclass = msg.readUInt16BE(name.end + 2);
  if (qclass !== CLASS_IN) return { error: `class ${qclass}, expected IN`, id, rd, rcode: RCODE_FORMERR };
  return { id, rd, labels: name.labels, name: name.labels.join('.').toLowerCase(), qtype, qclass };
}

/**
 * Reads a (possibly compressed) name at `offset`. Returns the labels and the
 * offset just after the name where it started (not where a pointer led), or a
 * string saying what is wrong.
 */
export function readName(msg: Buffer, offset: number): { labels: string[]; end: number } | string {
  const labels: string[] = [];
  let pos = offset;
  let end = -1;
  let jumps = 0;
  let wire = 1; // the final zero byte
  for (;;) {
    if (pos >= msg.length) return 'name runs past the message';
    const len = msg[pos]!;
    if (len === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    const tag = len & 0xc0;
    if (tag === 0xc0) {
      if (pos + 1 >= msg.length) return 'compression pointer truncated';
      const target = ((len & 0x3f) << 8) | msg[pos + 1]!;
      // Only backwards: with every jump going strictly back, no loop can exist;
      // the jump bound is a second fence.
      if (target >= pos) return 'compression pointer does not point backwards';
      if (++jumps > MAX_JUMPS) return 'too many compression pointers';
      if (end < 0) end = pos + 2;
      pos = target;
      continue;
    }
    if (tag !== 0) return 'reserved label type';
    if (pos + 1 + len > msg.length) return 'label runs past the message';
    const label = msg.toString('latin1', pos + 1, pos + 1 + len);
    if (!LABEL_RE.test(label)) return 'label has characters outside [A-Za-z0-9_-]';
    wire += 1 + len;
    if (wire > MAX_NAME_WIRE) return 'name longer than 255 bytes';
    labels.push(label);
    pos += 1 + len;
  }
  return { labels, end };
}

export interface Answer {
  /** IPv4 address for an A answer; omit for NODATA or an error. */
  a?: string;
  rcode: number;
  ttl?: number;
}

/**
 * Builds the answer to a parsed query: same ID, QR=1, RD copied, RA=1, the
 * question echoed, and at most one A record (the name as a pointer to the
 * question at offset 12).
 */
export function buildResponse(q: Query, ans: Answer): Buffer {
  const question = Buffer.concat([encodeName(q.labels), u16(q.qtype), u16(q.qclass)]);
  const answers: Buffer[] = [];
  if (ans.a !== undefined) {
    answers.push(Buffer.concat([u16(0xc00c), u16(TYPE_A), u16(CLASS_IN), u32(ans.ttl ?? SYNTHETIC_TTL), u16(4), ipv4Bytes(ans.a)]));
  }
  return Buffer.concat([header(q.id, q.rd, ans.rcode, 1, answers.length), question, ...answers]);
}

/** FORMERR / NOTIMP to a query that could not be understood: header only, no question. */
export function buildError(id: number, rd: boolean, rcode: number): Buffer {
  return header(id, rd, rcode, 0, 0);
}

/** A query, as a stub resolver would send it (used by tests and diagnostics). */
export function buildQuery(id: number, name: string, qtype: number, opts: { rd?: boolean } = {}): Buffer {
  const labels = name.replace(/\.$/, '').split('.').filter((l) => l !== '');
  const flags = opts.rd === false ? 0 : 0x0100;
  const h = Buffer.concat([u16(id), u16(flags), u16(1), u16(0), u16(0), u16(0)]);
  return Buffer.concat([h, encodeName(labels), u16(qtype), u16(CLASS_IN)]);
}

function header(id: number, rd: boolean, rcode: number, qd: number, an: number): Buffer {
  // QR=1, opcode 0, AA=0, TC=0, RD copied, RA=1, Z=0.
  const flags = 0x8000 | (rd ? 0x0100 : 0) | 0x0080 | (rcode & 0xf);
  return Buffer.concat([u16(id), u16(flags), u16(qd), u16(an), u16(0), u16(0)]);
}

function encodeName(labels: string[]): Buffer {
  const parts: Buffer[] = [];
  for (const l of labels) {
    const b = Buffer.from(l, 'latin1');
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function ipv4Bytes(ip: string): Buffer {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`not an IPv4 address: ${ip}`);
  return Buffer.from(parts);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n & 0xffff);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}
