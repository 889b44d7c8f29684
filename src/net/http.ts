/**
 * HTTP/1.x request heads, for the broker's proxy and for the Host check on
 * plain-HTTP connections. Strict on purpose: the broker decides on what it
 * parsed, and the server acts on what *it* parses, so anything two parsers
 * might read differently (bare CR, folded headers, two Hosts, both
 * Content-Length and Transfer-Encoding) is refused rather than guessed.
 *
 * Pure: bytes in, data out; never throws on input.
 */

/** Largest request head Ward reads (request line + headers + the empty line). */
export const MAX_HEAD = 64 * 1024;

export interface RequestHead {
  method: string;
  target: string;
  /** '1.0' or '1.1' */
  version: string;
  /** In order, names as sent. Values are latin1 strings (bytes kept as they were). */
  headers: Array<[string, string]>;
  /** Bytes of the head, including any leading empty lines and the terminating empty line. */
  length: number;
}

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
// The target: no whitespace and no control character (a lenient server splits the line on
// those, JS's \\S does not cover them all: see isLooseSpace).
// eslint-disable-next-line no-control-regex
const REQUEST_LINE = new RegExp(`^(${TOKEN}) ([^\\s\\x00-\\x1f\\x7f\\x85]+) HTTP/(1\\.[01])$`);
const HEADER_LINE = new RegExp(`^(${TOKEN}):[ \\t]*(.*?)[ \\t]*$`);
// Control characters other than TAB have no place in a header value.
// eslint-disable-next-line no-control-regex
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;

/**
 * Parses the request head at the start of `buf`. 'incomplete' if the empty line
 * has not arrived yet (and the head is still under `max`), null if malformed
 * or too large. Leading empty lines are skipped, as servers do (RFC 9112 2.2).
 */
export function parseRequestHead(buf: Buffer, max = MAX_HEAD): RequestHead | 'incomplete' | null {
  const text = buf.toString('latin1', 0, Math.min(buf.length, max));
  let start = 0;
  while (text[start] === '\r' || text[start] === '\n') start++;
  const m = /\r?\n\r?\n/.exec(text.slice(start));
  if (!m) return buf.length >= max ? null : 'incomplete';
  const headEnd = start + m.index;
  const length = headEnd + m[0].length;
  const lines = text.slice(start, headEnd).split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (lines.some((l) => l.includes('\r'))) return null; // a bare CR: servers disagree on it
  const rl = REQUEST_LINE.exec(lines[0] ?? '');
  if (!rl) return null;
  const headers: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    if (line.startsWith(' ') || line.startsWith('\t')) return null; // obs-fold
    const h = HEADER_LINE.exec(line);
    if (!h || BAD_VALUE.test(h[2]!)) return null;
    headers.push([h[1]!, h[2]!]);
  }
  const head: RequestHead = { method: rl[1]!, target: rl[2]!, version: rl[3]!, headers, length };
  // Smuggling shapes: refuse rather than pick a reading.
  const te = headerValues(head, 'transfer-encoding');
  const cl = headerValues(head, 'content-length');
  if (te.length > 0 && cl.length > 0) return null;
  if (cl.length > 1 || (cl.length === 1 && !/^\d{1,15}$/.test(cl[0]!))) return null;
  return head;
}

export function headerValues(head: RequestHead, name: string): string[] {
  const n = name.toLowerCase();
  return head.headers.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v);
}

/** What a client's first bytes are, as far as the scanner has seen. */
export type Scan = 'incomplete' | 'not-http' | 'malformed' | RequestHead;

const CR = 0x0d;
const LF = 0x0a;

/**
 * Bytes a lenient server may take for the space between the parts of a request line, or may
 * skip before it: Python's http.server (and so Werkzeug, and others built on it) splits the
 * line with str.split(), which splits on every byte that is whitespace in latin1, CR included
 * (only the CR LF at the end is stripped first); gunicorn and others split on any whitespace
 * too. A request line separated by any of these must be held as HTTP (and refused, since the
 * strict parser takes single spaces only), never passed on as "not HTTP".
 */
function isLooseSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === CR || c === 0x0b || c === 0x0c || (c >= 0x1c && c <= 0x1f) || c === 0x85 || c === 0xa0;
}

/**
 * Reads a client's first bytes as they arrive and says whether they are an
 * HTTP/1.x request, and if so its head. Each call gets everything received so
 * far (a buffer that only grows) and looks only at bytes it has not examined,
 * so a head trickled in one byte at a time costs linear time, not quadratic;
 * the head is parsed once, when its empty line is there.
 *
 * "HTTP" is decided loosely on purpose, as loosely as a lenient server reads
 * a request line: any whitespace (and empty lines) before it, an upper-case
 * method-like word, any run of whitespace after it (isLooseSpace), and
 * "HTTP/" (in any case) somewhere on the first line. What is called HTTP must
 * then parse strictly: a request line that is not exactly "METHOD SP target
 * SP HTTP/1.x" after optional empty lines is 'malformed' as soon as the line
 * is complete (refused with a 400, never passed as not-HTTP), and so is any
 * other near-HTTP head a lenient server would accept. Anything else
 * ('SSH-2.0-...', 'USER anonymous', TLS, binary) is 'not-http', decided at the
 * first byte that shows it, so a client protocol whose first message is a
 * word sent without a newline does not stall waiting for a line that never
 * comes (which is also why a lower-case word is not taken as a method: see
 * SECURITY-MODEL.md, "Egress").
 */
export function requestScanner(max = MAX_HEAD): (buf: Buffer) => Scan {
  let phase: 'lead' | 'method' | 'line' | 'head' = 'lead';
  let start = 0; // first byte of the method (after any leading whitespace)
  let loose = false; // the leading bytes held more than empty lines (a space, a tab...)
  let pos = 0; // next byte to examine
  let result: Scan | null = null;
  const scan = (buf: Buffer): Scan => {
    if (phase === 'lead') {
      for (; pos < buf.length; pos++) {
        const c = buf[pos]!;
        if (c === LF || c === CR) continue;
        if (!isLooseSpace(c)) break;
        loose = true;
      }
      if (pos >= max) return 'malformed';
      if (pos === buf.length) return 'incomplete';
      start = pos;
      phase = 'method';
    }
    if (phase === 'method') {
      for (; pos < buf.length; pos++) {
        const c = buf[pos]!;
        if ((c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x2d) {
          if (pos - start >= 20) return 'not-http';
          continue;
        }
        // A method alone on its line is no request line to anyone.
        if (!isLooseSpace(c) || pos === start) return 'not-http';
        phase = 'line';
        pos++;
        break;
      }
      if (phase === 'method') return 'incomplete';
    }
    if (phase === 'line') {
      const nl = buf.indexOf(LF, pos);
      if (nl < 0) {
        pos = buf.length;
        return buf.length >= max ? 'malformed' : 'incomplete';
      }
      const line = buf.toString('latin1', start, nl);
      if (!/HTTP\//i.test(line)) return 'not-http';
      // HTTP to a lenient reader: it must be exactly what a strict one reads too.
      if (loose || !REQUEST_LINE.test(line.endsWith('\r') ? line.slice(0, -1) : line)) return 'malformed';
      phase = 'head';
      pos = nl;
    }
    // phase 'head': find a LF followed by an empty line (LF, or CR LF).
    for (;;) {
      const nl = buf.indexOf(LF, pos);
      if (nl < 0 || nl + 1 >= buf.length) {
        pos = nl < 0 ? buf.length : nl;
        return buf.length >= max ? 'malformed' : 'incomplete';
      }
      let end = -1;
      if (buf[nl + 1] === LF) end = nl + 2;
      else if (buf[nl + 1] === CR) {
        if (nl + 2 >= buf.length) {
          pos = nl;
          return buf.length >= max ? 'malformed' : 'incomplete';
        }
        if (buf[nl + 2] === LF) end = nl + 3;
      }
      if (end < 0) {
        pos = nl + 1;
        continue;
      }
      if (end > max) return 'malformed';
      const head = parseRequestHead(buf.subarray(0, end), max);
      return head === null || head === 'incomplete' ? 'malformed' : head;
    }
  };
  return (buf) => {
    if (result) return result;
    const r = scan(buf);
    if (r !== 'incomplete') result = r;
    return r;
  };
}

export interface Authority {
  /** Lowercased, no trailing dot, no brackets around an IPv6 literal. */
  host: string;
  port?: number;
}

/** "host", "host:port", "[v6]:port". null if malformed (empty host, bad port, userinfo). */
export function parseAuthority(s: string): Authority | null {
  let host: string;
  let rest: string;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0) return null;
    host = s.slice(1, close);
    if (!/^[0-9A-Fa-f:.]+$/.test(host)) return null;
    rest = s.slice(close + 1);
  } else {
    const colon = s.indexOf(':');
    host = colon < 0 ? s : s.slice(0, colon);
    rest = colon < 0 ? '' : s.slice(colon);
    if (!isHostname(host)) return null;
  }
  host = host.toLowerCase().replace(/\.$/, '');
  if (rest === '') return { host };
  const pm = /^:(\d{1,5})$/.exec(rest);
  if (!pm) return null;
  const port = Number(pm[1]);
  if (port < 1 || port > 65535) return null;
  return { host, port };
}

/** Letters, digits, '-', '_', dot-separated, non-empty labels, an optional trailing dot. */
export function isHostname(s: string): boolean {
  return s.length >= 1 && s.length <= 254 && /^[A-Za-z0-9_-]{1,63}(\.[A-Za-z0-9_-]{1,63})*\.?$/.test(s);
}

/**
 * An absolute-form target `http://host[:port]/path?query` (RFC 9112 3.2.2).
 * Only http: an https:// target asks the proxy to speak TLS for the client,
 * which Ward does not do (clients use CONNECT for https).
 */
export function parseAbsoluteTarget(target: string): { host: string; port: number; path: string } | null {
  const m = /^http:\/\/([^/?#]*)([^#]*)/i.exec(target);
  if (!m) return null;
  if (m[1]!.includes('@')) return null; // userinfo: "http://allowed.com@evil.com/" confuses people and parsers
  const a = parseAuthority(m[1]!);
  if (!a) return null;
  let path = m[2]!;
  if (path === '') path = '/';
  else if (path.startsWith('?')) path = `/${path}`;
  return { host: a.host, port: a.port ?? 80, path };
}

/**
 * Methods whose request body has no defined meaning (RFC 9110 9.3): a server may ignore such a
 * body without reading it, and then reads its bytes as the next request on the connection.
 */
const BODY_MEANINGLESS = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE']);

/**
 * Whether the broker and the server may disagree on where the request after this one starts:
 * a body (Content-Length > 0, or chunked) on a method whose body a server may ignore.
 */
export function bodyMayBeIgnored(head: RequestHead): boolean {
  if (!BODY_MEANINGLESS.has(head.method)) return false;
  const cl = headerValues(head, 'content-length');
  return headerValues(head, 'transfer-encoding').length > 0 || (cl.length === 1 && Number(cl[0]) > 0);
}

/** The head with its Connection (and Keep-Alive) headers replaced by `Connection: close`; `length` stays the original's. */
export function withConnectionClose(head: RequestHead): RequestHead {
  const headers = head.headers.filter(([k]) => !['connection', 'keep-alive'].includes(k.toLowerCase()));
  headers.push(['Connection', 'close']);
  return { ...head, headers };
}

/** The head as bytes (the request line and headers as parsed; values are latin1, kept as they were). */
export function serializeHead(head: RequestHead): Buffer {
  const lines = [`${head.method} ${head.target} HTTP/${head.version}`, ...head.headers.map(([k, v]) => `${k}: ${v}`)];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

/** Headers a proxy must not pass on (hop-by-hop, or meant for the proxy itself). */
const DROP = new Set(['connection', 'proxy-connection', 'proxy-authorization', 'keep-alive']);

/**
 * The request to send upstream for an absolute-form proxy request: origin-form
 * target, proxy headers dropped, Host set if it was missing, `Connection: close`
 * so the server ends the exchange after one response (the broker inspected only
 * this request, not any that might follow on the same connection).
 */
export function originRequest(head: RequestHead, hostHeader: string, path: string): Buffer {
  const lines = [`${head.method} ${path} HTTP/${head.version}`];
  let hasHost = false;
  for (const [k, v] of head.headers) {
    const lk = k.toLowerCase();
    if (DROP.has(lk)) continue;
    if (lk === 'host') hasHost = true;
    lines.push(`${k}: ${v}`);
  }
  if (!hasHost) lines.splice(1, 0, `Host: ${hostHeader}`);
  lines.push('Connection: close');
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

const REASONS: Record<number, string> = {
  200: 'Connection Established',
  400: 'Bad Request',
  403: 'Forbidden',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

/** A complete response with a text body, closing the connection. */
export function textResponse(status: number, body: string): Buffer {
  const b = Buffer.from(body, 'utf8');
  return Buffer.concat([
    Buffer.from(
      `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: ${b.length}\r\n\r\n`,
      'latin1',
    ),
    b,
  ]);
}

// ===== a stream of requests (kept-alive and pipelined plain HTTP) =====

/** Largest chunk-size line or trailer section Ward reads in a chunked body. */
const MAX_CHUNK_LINE = 4096;

/** What a request stream says about the bytes it was fed, in order. */
export type StreamItem =
  /** A complete request head (`raw`: its bytes, to forward only once the head is judged). */
  | { type: 'head'; head: RequestHead; raw: Buffer }
  /** Bytes of the current request's body (with chunk framing, as sent): forward as they are. */
  | { type: 'body'; data: Buffer }
  /** The current request's body is complete (`bytes`: its length on the wire, framing included). */
  | { type: 'end'; bytes: number }
  /** The stream is not HTTP Ward can follow from here on: refuse; nothing after this is read. `head`: the request it was in, if known. */
  | { type: 'error'; reason: string; head?: RequestHead };

/**
 * Follows a client's plain-HTTP byte stream request by request, so that every
 * request on a kept-alive or pipelined connection is seen, not just the first.
 * Each request head is parsed strictly (parseRequestHead); its body is
 * delimited exactly as the server must delimit it (Content-Length, or chunked
 * framing read chunk by chunk), so the next head is found where the server
 * will find it. Whatever cannot be delimited the same way by every server is
 * an error, not a guess: Transfer-Encoding other than exactly "chunked", a
 * malformed chunk line (bare LF included), an Upgrade (the bytes after it are
 * another protocol only if the server agrees, which the broker does not see),
 * a CONNECT (a tunnel inside the connection). Body bytes are handed out as
 * they arrive (never buffered whole); only a head (MAX_HEAD) or a chunk line
 * (MAX_CHUNK_LINE) is held. After an error the stream yields nothing more.
 */
export function requestStream(max = MAX_HEAD): (chunk: Buffer) => StreamItem[] {
  type State =
    | { s: 'head'; store: Buffer; len: number; scan: (b: Buffer) => Scan }
    | { s: 'length'; left: number; bytes: number }
    | { s: 'size'; line: Buffer; bytes: number }
    | { s: 'data'; left: number; bytes: number }
    | { s: 'crlf'; got: Buffer; bytes: number }
    | { s: 'trailer'; buf: Buffer; bytes: number }
    | { s: 'dead' };
  const newHead = (): State => ({ s: 'head', store: Buffer.alloc(0), len: 0, scan: requestScanner(max) });
  let st: State = newHead();

  return (chunk) => {
    const out: StreamItem[] = [];
    const fail = (reason: string, head?: RequestHead) => {
      st = { s: 'dead' };
      out.push({ type: 'error', reason, ...(head ? { head } : {}) });
    };
    let rest = chunk;
    /** Hands the next `n` bytes on as body (chunk framing included: the server reads it). */
    const forward = (n: number): void => {
      out.push({ type: 'body', data: rest.subarray(0, n) });
      rest = rest.subarray(n);
    };
    while (rest.length > 0 && st.s !== 'dead') {
      switch (st.s) {
        case 'head': {
          // Held in a buffer grown by doubling: a head trickled in byte by byte costs linear time.
          let buf: Buffer;
          if (st.len === 0) buf = rest;
          else {
            if (st.len + rest.length > st.store.length) {
              const bigger = Buffer.allocUnsafe(Math.max(2 * st.store.length, st.len + rest.length));
              st.store.copy(bigger, 0, 0, st.len);
              st.store = bigger;
            }
            rest.copy(st.store, st.len);
            buf = st.store.subarray(0, st.len + rest.length);
          }
          const r = st.scan(buf);
          if (r === 'incomplete') {
            if (st.len === 0) {
              st.store = Buffer.allocUnsafe(Math.max(4096, rest.length * 2));
              rest.copy(st.store); // a copy: the caller may reuse its chunk
            }
            st.len = buf.length;
            rest = Buffer.alloc(0);
            break;
          }
          if (r === 'not-http') return fail('not-http'), out;
          if (r === 'malformed') return fail('malformed'), out;
          const head = r;
          rest = buf.subarray(head.length);
          // Refused before the head is handed out: none of it may be forwarded.
          if (head.method === 'CONNECT') return fail('connect-in-stream', head), out;
          if (headerValues(head, 'upgrade').length > 0) return fail('upgrade', head), out;
          const te = headerValues(head, 'transfer-encoding');
          const cl = headerValues(head, 'content-length');
          // Only "chunked" alone: a server that decodes "gzip, chunked" or "chunked, x"
          // differently from us would find the next head somewhere else.
          if (te.length > 0 && (te.length !== 1 || te[0]!.trim().toLowerCase() !== 'chunked')) return fail('transfer-encoding', head), out;
          out.push({ type: 'head', head, raw: Buffer.from(buf.subarray(0, head.length)) });
          if (te.length > 0) {
            st = { s: 'size', line: Buffer.alloc(0), bytes: 0 };
          } else if (cl.length === 1 && Number(cl[0]) > 0) {
            st = { s: 'length', left: Number(cl[0]), bytes: 0 };
          } else {
            out.push({ type: 'end', bytes: 0 });
            st = newHead();
          }
          break;
        }
        case 'length': {
          const n = Math.min(st.left, rest.length);
          forward(n);
          st.left -= n;
          st.bytes += n;
          if (st.left === 0) {
            out.push({ type: 'end', bytes: st.bytes });
            st = newHead();
          }
          break;
        }
        case 'size': {
          // "HEX[;ext]\r\n": strict CRLF (a bare LF is read differently by different servers).
          const nl = rest.indexOf(0x0a);
          const take = nl < 0 ? rest.length : nl + 1;
          const line = Buffer.concat([st.line, rest.subarray(0, take)]);
          forward(take);
          st.bytes += take;
          if (nl < 0) {
            if (line.length > MAX_CHUNK_LINE) return fail('chunk-line'), out;
            st.line = line;
            break;
          }
          const text = line.toString('latin1');
          // Extensions allowed (token chars, '=', quoted strings); no control characters.
          const m = /^([0-9A-Fa-f]{1,15})(;[\x20-\x7e\t]*)?\r\n$/.exec(text);
          if (!m) return fail('chunk-line'), out;
          const size = parseInt(m[1]!, 16);
          st = size === 0 ? { s: 'trailer', buf: Buffer.alloc(0), bytes: st.bytes } : { s: 'data', left: size, bytes: st.bytes };
          break;
        }
        case 'data': {
          const n = Math.min(st.left, rest.length);
          forward(n);
          st.left -= n;
          st.bytes += n;
          if (st.left === 0) st = { s: 'crlf', got: Buffer.alloc(0), bytes: st.bytes };
          break;
        }
        case 'crlf': {
          const n = Math.min(2 - st.got.length, rest.length);
          const got = Buffer.concat([st.got, rest.subarray(0, n)]);
          forward(n);
          st.bytes += n;
          if (got.length < 2) {
            st.got = got;
            break;
          }
          if (got[0] !== 0x0d || got[1] !== 0x0a) return fail('chunk-data'), out;
          st = { s: 'size', line: Buffer.alloc(0), bytes: st.bytes };
          break;
        }
        case 'trailer': {
          // Trailer fields, then an empty line ("\r\n"); the whole section bounded.
          const buf = Buffer.concat([st.buf, rest]);
          const text = buf.toString('latin1');
          let end = -1;
          if (text.startsWith('\r\n')) end = 2;
          else {
            const i = text.indexOf('\r\n\r\n');
            if (i >= 0) end = i + 4;
          }
          if (end < 0) {
            if (buf.length > MAX_CHUNK_LINE) return fail('chunk-trailer'), out;
            st.bytes += rest.length;
            st.buf = buf;
            forward(rest.length);
            break;
          }
          const section = text.slice(0, end);
          // eslint-disable-next-line no-control-regex
          if (/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(section) || /(^|[^\r])\n|\r(?!\n)/.test(section)) return fail('chunk-trailer'), out;
          const used = end - st.buf.length;
          forward(used);
          out.push({ type: 'end', bytes: st.bytes + used });
          st = newHead();
          break;
        }
      }
    }
    return out;
  };
}
