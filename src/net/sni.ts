/**
 * Reads the server name (SNI, RFC 6066) from a TLS ClientHello, so the broker
 * can refuse a connection to an allowed address whose TLS handshake asks for
 * another name (domain fronting: connect to an allowed CDN edge, ask it for
 * evil.com).
 *
 * The ClientHello may arrive split across TCP chunks and even across TLS
 * records (a handshake message may be fragmented over several records, and a
 * client trying to hide its SNI would do exactly that), so the records are
 * reassembled first. The caller passes everything received so far and gets
 * 'incomplete' until the whole ClientHello is there.
 *
 * Input is hostile: every length is checked against what is present, and a
 * malformed hello gives null, never an exception.
 */

/** Bytes of handshake message Ward will buffer. A ClientHello with post-quantum key shares is ~2 KiB. */
export const MAX_HELLO = 16 * 1024;

const CONTENT_HANDSHAKE = 22;
// Record content types a TLS server's record layer reads: change_cipher_spec (20), alert,
// handshake, application_data, heartbeat (24).
const CONTENT_FIRST = 20;
const CONTENT_LAST = 24;
const SSL2_CLIENT_HELLO = 1;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const MAX_RECORD = 16384 + 2048;

export interface ClientHello {
  /** The host_name, lowercased, trailing dot removed; null when the hello has no SNI extension. */
  sni: string | null;
}

/**
 * What a connection's first bytes are to a TLS server, decided before anything else reads them:
 * - 'hello': a handshake record (content type 22, major version 3): parse the ClientHello;
 * - 'refuse': bytes a lenient TLS server still reads as a handshake whose ClientHello cannot be
 *   checked here. Go's crypto/tls skips a warning alert sent before the hello and takes any record
 *   version below 0x1000 on the first record, so an alert record (or any other content type, 20-24)
 *   first, or a handshake record whose major version is not 3, would carry an unchecked SNI past
 *   the check if it were read as "not TLS". An SSLv2-format hello (length with the high bit set,
 *   message type 1) carries no SNI and is refused too: no current client needs it;
 * - 'other': not TLS (SSH, a database protocol, HTTP);
 * - undefined: too few bytes to tell (only while an SSLv2 header could still be forming).
 */
export function tlsOpening(buf: Buffer): 'hello' | 'refuse' | 'other' | undefined {
  if (buf.length === 0) return undefined;
  const type = buf[0]!;
  if (type === CONTENT_HANDSHAKE) return buf.length < 2 || buf[1] === 3 ? 'hello' : 'refuse';
  if (type >= CONTENT_FIRST && type <= CONTENT_LAST) return 'refuse';
  if (type & 0x80) {
    if (buf.length < 3) return undefined;
    return buf[2] === SSL2_CLIENT_HELLO ? 'refuse' : 'other';
  }
  return 'other';
}

/**
 * Parses the ClientHello at the start of `buf` (TLS records as received).
 * Returns 'incomplete' if more bytes are needed, null if the bytes are not a
 * well-formed ClientHello (or it is larger than MAX_HELLO). Bytes after the
 * ClientHello are ignored.
 */
export function parseClientHello(buf: Buffer): ClientHello | 'incomplete' | null {
  try {
    return parse(buf);
  } catch {
    // The reader throws on any overrun inside a message that claimed to be complete.
    return null;
  }
}

function parse(buf: Buffer): ClientHello | 'incomplete' | null {
  const fragments: Buffer[] = [];
  let have = 0; // bytes of handshake message in `fragments`
  let pos = 0;
  for (;;) {
    let partial: Buffer | null = null;
    if (pos + 5 > buf.length) {
      // Validate what we can of a partial record header, so garbage fails early.
      if (pos < buf.length && buf[pos] !== CONTENT_HANDSHAKE) return null;
      if (pos + 1 < buf.length && buf[pos + 1] !== 3) return null;
      partial = Buffer.alloc(0);
    } else {
      if (buf[pos] !== CONTENT_HANDSHAKE || buf[pos + 1] !== 3) return null;
      const rlen = buf.readUInt16BE(pos + 3);
      // A zero-length handshake fragment is forbidden (RFC 8446 5.1).
      if (rlen === 0 || rlen > MAX_RECORD) return null;
      if (pos + 5 + rlen > buf.length) partial = buf.subarray(pos + 5);
      else {
        fragments.push(buf.subarray(pos + 5, pos + 5 + rlen));
        have += rlen;
        pos += 5 + rlen;
      }
    }
    // The handshake header, from the reassembled bytes plus a partial record's:
    // enough to refuse a wrong type or a size over the bound early. Fragments are
    // never empty, so the first four hold it (constant work per record).
    const lead = fragments.length >= 4 ? fragments.slice(0, 4) : partial ? [...fragments, partial] : fragments;
    const head = Buffer.concat(lead.map((f) => f.subarray(0, 4))).subarray(0, 4);
    if (head.length >= 1 && head[0] !== HANDSHAKE_CLIENT_HELLO) return null;
    if (head.length === 4) {
      const len = head.readUIntBE(1, 3);
      if (len > MAX_HELLO) return null;
      if (!partial && have >= 4 + len) return parseHello(Buffer.concat(fragments).subarray(4, 4 + len));
    }
    if (partial) return 'incomplete';
  }
}

function parseHello(body: Buffer): ClientHello | null {
  const r = reader(body);
  r.skip(2); // legacy_version
  r.skip(32); // random
  const sid = r.u8();
  if (sid > 32) return null;
  r.skip(sid);
  const suites = r.u16();
  if (suites < 2 || suites % 2 !== 0) return null;
  r.skip(suites);
  const comp = r.u8();
  if (comp < 1) return null;
  r.skip(comp);
  if (r.left() === 0) return { sni: null }; // no extensions at all (old clients)
  const extLen = r.u16();
  if (extLen !== r.left()) return null;
  let sni: string | null = null;
  const seen = new Set<number>();
  while (r.left() > 0) {
    const type = r.u16();
    const len = r.u16();
    const data = r.bytes(len);
    // A repeated extension is illegal (RFC 8446 4.2); two server_name extensions
    // could be read differently by us and by the server.
    if (seen.has(type)) return null;
    seen.add(type);
    if (type !== EXT_SERVER_NAME) continue;
    const name = parseServerName(data);
    if (name === null) return null;
    sni = name;
  }
  return { sni };
}

/** server_name extension data: a list holding exactly one host_name (RFC 6066 3). */
function parseServerName(data: Buffer): string | null {
  // An empty server_name extension is what a server sends back; from a client it says nothing.
  if (data.length === 0) return null;
  const r = reader(data);
  const listLen = r.u16();
  if (listLen !== r.left() || listLen === 0) return null;
  let host: string | null = null;
  while (r.left() > 0) {
    const type = r.u8();
    const len = r.u16();
    const name = r.bytes(len);
    if (type !== 0 || host !== null) return null; // only host_name, and only one
    const s = name.toString('latin1');
    if (!/^[A-Za-z0-9_.-]{1,253}\.?$/.test(s) || s.startsWith('.') || s.includes('..')) return null;
    host = s.toLowerCase().replace(/\.$/, '');
  }
  return host;
}

function reader(b: Buffer) {
  let p = 0;
  const need = (n: number) => {
    if (p + n > b.length) throw new RangeError('truncated');
  };
  return {
    left: () => b.length - p,
    u8: () => (need(1), b[p++]!),
    u16: () => {
      need(2);
      const v = b.readUInt16BE(p);
      p += 2;
      return v;
    },
    skip: (n: number) => {
      need(n);
      p += n;
    },
    bytes: (n: number) => {
      need(n);
      const s = b.subarray(p, p + n);
      p += n;
      return s;
    },
  };
}
