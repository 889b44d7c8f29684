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
const REQUEST_LINE = new RegExp(`^(${TOKEN}) (\\S+) HTTP/(1\\.[01])$`);
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
 * Reads a client's first bytes as they arrive and says whether they are an
 * HTTP/1.x request, and if so its head. Each call gets everything received so
 * far (a buffer that only grows) and looks only at bytes it has not examined,
 * so a head trickled in one byte at a time costs linear time, not quadratic;
 * the head is parsed once, when its empty line is there.
 *
 * "HTTP" is decided loosely on purpose (a method-like word, a space, and
 * "HTTP/" on the first line; leading empty lines skipped, as servers do): what
 * is called HTTP must then parse strictly, so a near-HTTP request a lenient
 * server would accept is 'malformed' instead of passed as not-HTTP. Anything
 * else ('SSH-2.0-...', 'USER anonymous', TLS) is 'not-http'.
 */
export function requestScanner(max = MAX_HEAD): (buf: Buffer) => Scan {
  let phase: 'lead' | 'method' | 'line' | 'head' = 'lead';
  let start = 0; // first byte after leading empty lines
  let pos = 0; // next byte to examine
  let result: Scan | null = null;
  const scan = (buf: Buffer): Scan => {
    if (phase === 'lead') {
      while (pos < buf.length && (buf[pos] === CR || buf[pos] === LF)) pos++;
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
        if (c !== 0x20 || pos === start) return 'not-http';
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
      if (!buf.toString('latin1', start, nl).includes('HTTP/')) return 'not-http';
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
