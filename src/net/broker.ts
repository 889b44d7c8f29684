/**
 * The egress broker: the one way out of the sandbox's empty network namespace.
 *
 * The relay (src/launcher/ward-launch.c: in the sandbox's network namespace,
 * outside everything else of it) accepts the sandbox's TCP connections and DNS
 * queries on loopback and, for each one, opens a new connection to this
 * broker's unix socket, sends the run's key (RELAY_KEY_LEN bytes, `key`
 * below) and says what it caught:
 *
 *   tcp <dst-ip> <dst-port>\n       then raw bytes both ways (half-close passed on)
 *   tcp <dst-ip> <dst-port> dial\n  the same, from a relay that can dial (below)
 *   dns\n                           then one DNS-over-TCP framed query; one framed answer back
 *   done <id> <up> <down> <err>\n   the relay's byte counts for a dialed connection
 *   over <dst-ip> <dst-port>\n      a connection the relay refused at its own cap (its fds)
 *   exit <why> <err>\n               the relay could not go on and is gone (after its counts)
 *
 * A relay that can dial has a dialer in the host's network namespace, so the
 * bytes of an allowed connection need not pass through Node. To such a relay
 * the broker's first line says who carries them:
 *
 *   pipe\n                           the broker does (what follows is for the client)
 *   dial <id> <ip> <port>[ connect <host>]\n
 *                                    the relay connects there and gives the
 *                                    upstream's bytes to the client (for a
 *                                    CONNECT, after writing the 200 itself, or
 *                                    a 502 if the connect fails); the client's
 *                                    bytes still come here, unforwarded, until
 *   pass <offset>\n                  the first message passed its check: the
 *                                    client's bytes from that offset on go
 *                                    upstream. Closing instead refuses.
 *
 * Either way the broker makes every decision and writes every record; the
 * relay only moves bytes where it is told and counts them ("done").
 *
 * The broker decides each one against the policy's `network.allow` rules and
 * `network.allow_local` ports, and reports every decision through `onEvent`:
 *
 *  - DNS never leaves the machine. An allowed name gets a synthetic address in
 *    127.100.0.0/16 (one per name, stable for the broker's life); anything else
 *    is NXDOMAIN. So a TXT query for "secret.evil.com" carries nothing out, and
 *    a client that ignores proxy variables still reaches allowed names: it
 *    dials the synthetic address, the relay catches it, and the broker knows
 *    which name it stands for.
 *  - A connection to a synthetic address goes to that name's real address if
 *    (name, port) is allowed. The client's first message is inspected before
 *    it is forwarded: a TLS ClientHello must not ask for another name (SNI),
 *    an HTTP request must not name another Host. That is domain fronting: an
 *    allowed CDN edge serves any site it hosts, chosen by SNI or Host.
 *  - 127.0.0.1:<proxyPort> is an HTTP proxy (CONNECT and absolute-form), for
 *    clients that honour HTTP(S)_PROXY; the same rules and checks apply.
 *  - 127.0.0.1:<port> for a port in allow_local reaches the host's loopback.
 *
 * The key is what makes a peer the relay. A pathname unix socket ignores
 * network namespaces and file modes do not stop the same user, so any process
 * that can reach the socket's path could otherwise speak this protocol: a
 * sandbox shown another run's socket would be let out by that run's policy, or
 * forge its byte counts. Without the key a connection is refused before one
 * line is obeyed (`not-the-relay`), and a dialed connection's id is random, so
 * its "done" names a connection only the relay was told about.
 *
 * What comes after the key is still the sandboxed agent's to choose (the relay
 * passes its bytes on), so everything read is hostile: each buffer is bounded,
 * each wait has a timeout (or a peer that can only hurt itself), and a failure
 * in one connection closes that connection and nothing else.
 */
import { randomInt, timingSafeEqual } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { chmodSync, closeSync, constants as fsConstants, lstatSync, openSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Duplex, Transform } from 'node:stream';
import tls from 'node:tls';
import { loopGrace } from '../loop-grace.js';
import type { RunCa } from './ca.js';
import { buildError, buildResponse, parseQuery, qtypeName, RCODE_NOERROR, RCODE_NXDOMAIN, RCODE_SERVFAIL, TYPE_A } from './dns.js';
import {
  bodyMayBeIgnored,
  headerValues,
  isHostname,
  MAX_HEAD,
  originRequest,
  parseAbsoluteTarget,
  parseAuthority,
  requestScanner,
  requestStream,
  serializeHead,
  textResponse,
  withConnectionClose,
  type RequestHead,
} from './http.js';
import { MAX_HELLO, parseClientHello, tlsOpening } from './sni.js';

export interface EgressRule {
  /** Lowercase; a leading '*.' matches any name with at least one more label. May be an IPv4 literal. */
  host: string;
  port: number;
}

export interface NetEvent {
  type: 'net';
  /** 'http': one request on a plain-HTTP connection (the connection has its own record). */
  kind: 'dns' | 'connect' | 'proxy' | 'http';
  verdict: 'allow' | 'deny';
  host?: string;
  port?: number;
  qtype?: string;
  reason?: string;
  rule?: string;
  /** null: not known (the relay carried the connection and gave no count; the note says so). */
  bytes_out?: number | null;
  bytes_in?: number | null;
  duration_ms?: number;
  /** Something the verdict alone does not say (e.g. cut before its first message was checked). */
  note?: string;
  /** Brokered credentials this connection carried out (names only; never a value). */
  secrets?: string[];
  /** kind 'http': the request's method, and its path without the query (at most 256 characters). */
  method?: string;
  path?: string;
  /** kind 'http': the length of the request target as sent (query included). */
  target_length?: number;
  /** A summary of refusals not recorded one by one: how many, first and last (ISO times). */
  count?: number;
  first?: string;
  last?: string;
}

/**
 * A credential the sandbox never sees: inside, `placeholder` stands in for it;
 * on a connection to one of `hosts` the broker terminates TLS (a leaf from the
 * run's CA), replaces the placeholder in the request head (only in `header`
 * when set) with `value`, and forwards over a new TLS connection to the real
 * host. A placeholder anywhere else (another host, another header) is refused.
 */
export interface BrokeredSecret {
  name: string;
  placeholder: string;
  value: string;
  hosts: EgressRule[];
  /** Lower-case header name the value may go in, or null for any header. */
  header: string | null;
}

export interface BrokerOptions {
  socketPath: string;
  /** RELAY_KEY_LEN random bytes: every connection must start with them (the relay's proof; see the top). */
  key: Buffer;
  allow: EgressRule[];
  allowLocal: number[];
  proxyPort: number;
  resolve?: (host: string) => Promise<string>;
  onEvent: (e: NetEvent) => void;
  /**
   * The relay said it could not go on ("exit"): the sandbox has no network from then on. `why`
   * is its words (the failing step and errno name), already checked to be plain.
   */
  onRelayExit?: (why: string) => void;
  maxConnections?: number;
  /** How long a client's first message may take once its first byte came (default FIRST_MESSAGE_TIMEOUT_MS; tests shorten it). */
  firstMessageTimeoutMs?: number;
  /** Brokered credentials (needs `tls`). */
  secrets?: BrokeredSecret[];
  /**
   * Dynamic rules (launch.ts): asked for every connection the static rules allow, with the
   * destination's name. null admits it (and counts it as having happened); a string refuses it,
   * and is the record's reason. Absent: the static rules alone decide.
   */
  admit?: (host: string, port: number) => string | null;
  /** The run's CA (leaves for brokered hosts) and, for tests, the CAs the real hosts are checked against (default: Node's). */
  tls?: { ca: RunCa; upstreamCa?: string[] };
}

export interface Broker {
  close(): Promise<void>;
  /**
   * Cuts every open allowed connection for which `why(host, port)` gives a reason (a dynamic
   * rule revoked its destination after it was opened); the reason goes into its record's note.
   * Returns how many were cut.
   */
  cut(why: (host: string, port: number) => string | null): number;
  /** name -> synthetic IPv4 handed out so far */
  names(): Map<string, string>;
}

/** The length of the relay's key (ward-launch.c RELAY_KEY_LEN). */
export const RELAY_KEY_LEN = 32;
/** Dialed connections' ids are drawn from [1, DIAL_ID_LIMIT): unguessable, and within the relay's parse and the "done" line's 15 digits. */
const DIAL_ID_LIMIT = 2 ** 48;
/** The relay's first line: "tcp 127.100.0.3 443" is 19 bytes; 256 is generous and still small. */
const HEADER_MAX = 256;
/** The relay writes its line at once; a peer that does not is not the relay. */
const HEADER_TIMEOUT_MS = 10_000;
/** A proxy client sends its request head right after connecting. */
const HEAD_TIMEOUT_MS = 30_000;
const DNS_TIMEOUT_MS = 5_000;
/** Queries are small (a name of at most 255 bytes, maybe an EDNS OPT); 1 KiB leaves room, bounds the buffer. */
const DNS_MAX = 1024;
/** Queries one TCP connection to port 53 may ask (each is recorded): enough for any resolver's retries. */
const DNS_TCP_MAX = 64;
const CONNECT_TIMEOUT_MS = 10_000;
/** How long a refused peer gets to read its 403/DNS answer before the socket is destroyed. */
const GRACE_MS = 5_000;
/** The relay sends its count just before it closes; this covers the two arriving in either order. */
const REPORT_WAIT_MS = 1_000;
/** How long close() waits for the counts of connections the relay still carries. */
const COUNT_GRACE_MS = 500;
const SYNTHETIC_MAX = 65534; // 127.100.0.1 .. 127.100.255.254
/**
 * How long a raw connection's first bytes are awaited before the relay is told to dial anyway.
 * Plain HTTP must stay in the broker (every request on the connection is checked), and the
 * relay must be told who carries the bytes before anything is forwarded; a client-first
 * protocol (HTTP, TLS) writes at once, so only a server-first one (SMTP, FTP, MySQL: the client
 * waits for a greeting) pays this wait. HTTP that comes later than this is refused (late-http),
 * so the wait is generous: a client descheduled between connect() and write() on a loaded
 * machine must not be refused.
 */
const FIRST_BYTES_WAIT_MS = 1_000;
/**
 * How long a first message that has begun (a ClientHello, a request head) may take to be
 * complete; past it the connection is refused (first-message-timeout). Counted from its first
 * byte: a client that has said nothing yet may be waiting for a server that speaks first (the
 * relay carries the server's bytes to it meanwhile), and is left alone.
 */
const FIRST_MESSAGE_TIMEOUT_MS = 30_000;
/**
 * Connections whose relay line has not come yet. The relay writes its line as it connects, so
 * these are gone within moments; the bound is far above what the relay can have open at once
 * (1024 connections, and a "done" line for each), and is checked before a line is read. The
 * connection cap (maxConnections) is checked after it: a "done" line is never refused by it.
 */
const UNREAD_MAX = 4096;
/**
 * Refusals recorded one by one per run; after that they are counted per destination and written
 * as summaries, so an agent looping on refused connects cannot grow the audit log without
 * bound (the sandbox is still refused at once, every time). The supervisor does the same with
 * its denials (first ones one by one, the rest counted).
 */
export const DENY_RECORDS_MAX = 100;
/**
 * Allowed DNS answers recorded one by one per run; past that, counted like refusals (per name,
 * type and verdict, in the same summaries). An answer for an allowed name carries nothing out
 * (it is made here), but a query loop must not grow the audit log without bound either.
 */
export const DNS_ALLOW_RECORDS_MAX = 100;
/** How often counted refusals are written as summaries (and once more when the broker closes). */
export const DENY_SUMMARY_MS = 5_000;
/** Destinations summarised one by one per interval; refusals to any others share one summary per kind and reason. */
const DENY_SUMMARY_KEYS_MAX = 50;

export function ruleText(r: EgressRule): string {
  return `${r.host}:${r.port}`;
}

/**
 * The first rule allowing `host` (and `port`, unless undefined: DNS asks about
 * the name alone). Names are compared lowercased, without a trailing dot;
 * anything that is not a plain hostname or IPv4 literal matches nothing.
 */
export function matchRule(rules: EgressRule[], host: string, port?: number): EgressRule | null {
  if (!isHostname(host)) return null;
  const h = host.toLowerCase().replace(/\.$/, '');
  for (const r of rules) {
    if (port !== undefined && r.port !== port) continue;
    const rh = r.host.toLowerCase();
    if (rh.startsWith('*.')) {
      const suffix = rh.slice(1); // ".github.com"
      if (h.length > suffix.length && h.endsWith(suffix)) return r;
    } else if (rh === h) return r;
  }
  return null;
}

// ===== state =====

interface Ctx {
  opts: BrokerOptions;
  resolve: (host: string) => Promise<string>;
  maxConnections: number;
  byName: Map<string, string>;
  byIp: Map<string, string>;
  nextSynthetic: number;
  /** Every socket the broker holds (relay side and upstream), so close() can end them all. */
  sockets: Set<net.Socket>;
  conns: Set<Conn>;
  /** Connections counted against maxConnections (the sandbox's, not the relay's "done" lines). */
  admitted: number;
  /** Connections whose relay line has not been read yet (bounded by UNREAD_MAX). */
  unread: number;
  /** Connections handed to the relay ("dial"), by id (random), until the relay's "done" or their record. */
  dialed: Map<number, Conn>;
  closing: boolean;
  /** Refusals so far (recorded or counted): past DENY_RECORDS_MAX they are counted in `summaries`. */
  denied: number;
  /** Allowed DNS answers so far: past DNS_ALLOW_RECORDS_MAX they are counted in `summaries`. */
  dnsAllowed: number;
  summaries: Map<string, DenySummary>;
  summaryTimer?: NodeJS.Timeout;
}

/** Refusals (or allowed DNS answers) of one kind, destination and reason since the last summary was written. */
interface DenySummary {
  event: NetEvent;
  count: number;
  first: number;
  last: number;
}

/** One connection from the relay, and the upstream connection made for it. */
interface Conn {
  ctx: Ctx;
  down: net.Socket;
  up: net.Socket | null;
  upClosed: boolean;
  downClosed: boolean;
  started: number;
  /** What the event will say (filled in as the connection is understood). */
  ev: Omit<NetEvent, 'type' | 'verdict'>;
  /** A rule allowed it: the event is 'allow' and is sent when the connection ends. */
  allowed: boolean;
  /** Allowed so far, but the first message is still being checked: nothing has been forwarded. */
  checking?: boolean;
  /** The relay offered to dial; `mode` says what it was told ('await': nothing yet). */
  canDial: boolean;
  mode: 'await' | 'pipe' | 'dial';
  /** mode 'dial': the relay's count, once its "done" came. */
  counted?: { up: number; down: number; err: string | null };
  dialId?: number;
  /** Closed, waiting for the relay's count: the record is written when it comes, or after REPORT_WAIT_MS. */
  reportTimer?: NodeJS.Timeout;
  /** Closed while its first message was being checked (kept for the record written later). */
  cutWhileChecking?: boolean;
  reported: boolean;
  /** Counted in ctx.admitted (until it leaves ctx.conns). */
  admitted?: boolean;
  /** Plain HTTP carried here: what to do when the upstream ends (default: end the client's side). */
  onUpEnd?: () => void;
  /** Plain HTTP carried here: records a request still in flight, before the connection's own record. */
  onFinish?: () => void;
  /** Resolves once both sides are closed (and the connection reported): close() waits for it. */
  gone: Promise<void>;
  /** Called as either side closes: when both are, the connection leaves ctx.conns and `gone` resolves. */
  settle: () => void;
}

// ===== the server =====

export async function startBroker(opts: BrokerOptions): Promise<Broker> {
  if (opts.key.length !== RELAY_KEY_LEN) throw new Error(`egress broker: the relay key must be ${RELAY_KEY_LEN} bytes, got ${opts.key.length}`);
  const ctx: Ctx = {
    opts,
    resolve: opts.resolve ?? defaultResolve,
    maxConnections: opts.maxConnections ?? 512,
    byName: new Map(),
    byIp: new Map(),
    nextSynthetic: 1,
    sockets: new Set(),
    conns: new Set(),
    admitted: 0,
    unread: 0,
    dialed: new Map(),
    closing: false,
    denied: 0,
    dnsAllowed: 0,
    summaries: new Map(),
  };
  removeStaleSocket(opts.socketPath);
  // allowHalfOpen: the relay half-closes (shutdown SHUT_WR) when the sandboxed
  // client does, and the server's answer must still get back.
  const server = net.createServer({ allowHalfOpen: true }, (sock) => accept(ctx, sock));
  server.on('error', () => {}); // accept errors (EMFILE) must not take the broker down
  // Bound through the open directory: a unix socket's path holds 107 bytes, and Ward's state
  // directory may lie deeper (the relay connects from the directory, by the name alone). By this
  // process's pid, not /proc/self, and the directory kept open while the broker listens: the name
  // the kernel keeps then leads to the socket for any other Ward planning a run meanwhile, which
  // would otherwise have to search its granted trees for it (plan/sockets.ts).
  const dir = openSync(path.dirname(opts.socketPath), fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(`/proc/${process.pid}/fd/${dir}/${path.basename(opts.socketPath)}`, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    closeSync(dir);
    throw e;
  }
  server.once('close', () => closeSync(dir));
  // The parent directory is the real fence (the launcher makes it 0700); 0600
  // keeps other users out even if it is not.
  chmodSync(opts.socketPath, 0o600);

  // Once: a second server.close() would wait for a 'close' event that has already been.
  let closing: Promise<void> | null = null;
  const close = async () => {
    // The relay counts each connection it carried as it ends them, which it does as the sandbox
    // ends, just before Ward closes us: wait a moment for those counts before refusing them.
    const t0 = Date.now();
    while ([...ctx.dialed.values()].some((c) => !c.counted) && Date.now() - t0 < COUNT_GRACE_MS) {
      await new Promise((r) => setTimeout(r, 5));
    }
    ctx.closing = true;
    // Closed connections still waiting for the relay's count: write their records now.
    for (const c of [...ctx.conns]) {
      if (!c.reportTimer) continue;
      clearTimeout(c.reportTimer);
      c.reportTimer = undefined;
      finishDialed(c, true);
      c.settle();
    }
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const gone = [...ctx.conns].map((c) => c.gone);
    for (const s of ctx.sockets) s.destroy();
    await Promise.all([closed, ...gone]);
    // The refusals counted since the last summary: written now, before the run's last record.
    flushSummaries(ctx);
    rmSync(opts.socketPath, { force: true });
  };
  return {
    names: () => new Map(ctx.byName),
    cut: (why) => {
      let n = 0;
      for (const c of ctx.conns) {
        if (!c.allowed || c.downClosed || c.ev.host === undefined || c.ev.port === undefined) continue;
        const reason = why(c.ev.host, c.ev.port);
        if (reason === null) continue;
        c.ev.note = `cut: ${reason}`;
        destroyBoth(c);
        n++;
      }
      return n;
    },
    close: () => (closing ??= close()),
  };
}

function removeStaleSocket(p: string): void {
  try {
    // Only a socket left by an earlier broker; anything else at the path is not ours to delete.
    if (lstatSync(p).isSocket()) rmSync(p);
  } catch {
    /* absent */
  }
}

function accept(ctx: Ctx, down: net.Socket): void {
  down.on('error', () => {}); // every error ends in 'close', handled below
  if (ctx.closing) {
    down.destroy();
    return;
  }
  // The cap on the sandbox's connections is checked once the relay's line says what this one
  // is: the relay's count for a connection ("done") comes on a connection of its own, and a
  // sandbox holding every slot must not be able to have it refused (its record would lose the
  // bytes it carried).
  if (ctx.unread >= UNREAD_MAX) {
    emit(ctx, { type: 'net', kind: 'connect', verdict: 'deny', reason: 'overload' });
    down.destroy();
    return;
  }
  let gone!: () => void;
  const c: Conn = {
    ctx,
    down,
    up: null,
    upClosed: false,
    downClosed: false,
    started: Date.now(),
    ev: { kind: 'connect' },
    allowed: false,
    reported: false,
    canDial: false,
    mode: 'await',
    gone: new Promise<void>((r) => (gone = r)),
    settle: () => {
      // A client that is done while the upstream still flushes stays here: close() must still
      // see it, or its record would be lost when the run ends first. So does a dialed one
      // until its record is written (the relay's count may come just after the close).
      if (!c.downClosed || (c.up && !c.upClosed) || (c.mode === 'dial' && !c.reported)) return;
      if (ctx.conns.delete(c) && c.admitted) ctx.admitted--;
      gone();
    },
  };
  ctx.conns.add(c);
  ctx.sockets.add(down);
  down.on('close', () => {
    c.downClosed = true;
    ctx.sockets.delete(down);
    // Ended cleanly (both directions done): the upstream may still be flushing the
    // last bytes, leave it. Cut off: cut the upstream too.
    if (c.up && !(down.readableEnded && !down.errored)) c.up.destroy();
    finish(c);
    c.settle();
  });
  handle(c).catch(() => {
    // Fail closed: whatever went wrong closes this connection only.
    if (!ctx.closing) deny(c, 'malformed');
    else destroyBoth(c);
  });
}

async function handle(c: Conn): Promise<void> {
  c.ctx.unread++;
  const key = c.ctx.opts.key;
  // The key is judged only once all of it is here, and at once then: a verdict on a part would
  // tell a guesser which prefix is right.
  const isKey = (b: Buffer) => b.length >= RELAY_KEY_LEN && timingSafeEqual(b.subarray(0, RELAY_KEY_LEN), key);
  const { value: header, buf } = await readUntil(
    c.down,
    Buffer.alloc(0),
    HEADER_TIMEOUT_MS,
    (b, ended) => {
      if (b.length < RELAY_KEY_LEN) return ended ? ('not-the-relay' as const) : undefined;
      if (!isKey(b)) return 'not-the-relay' as const;
      const nl = b.indexOf(0x0a, RELAY_KEY_LEN);
      if (nl >= 0 && nl < RELAY_KEY_LEN + HEADER_MAX) return { line: b.toString('latin1', RELAY_KEY_LEN, nl), rest: nl + 1 };
      if (nl >= 0 || b.length >= RELAY_KEY_LEN + HEADER_MAX || ended) return null;
      return undefined;
    },
    (b) => (isKey(b) ? null : ('not-the-relay' as const)),
  ).finally(() => c.ctx.unread--);
  if (header === 'not-the-relay') return deny(c, 'not-the-relay');
  const h = header && parseHeader(header.line);
  if (!header || !h) return deny(c, 'malformed');
  const rest = buf.subarray(header.rest);
  if (h.type === 'done') return handleDone(c, h);
  if (h.type === 'exit') {
    c.reported = true;
    c.down.destroy();
    try {
      c.ctx.opts.onRelayExit?.(h.why);
    } catch {
      // The embedder's bug must not become the broker's crash.
    }
    return;
  }
  if (h.type === 'over') {
    // Not counted against maxConnections: the relay already closed it.
    c.ev = { kind: 'connect', host: h.ip, port: h.port, note: "past the relay's connection cap (its open-file limit)" };
    return deny(c, 'overload');
  }
  if (c.ctx.admitted >= c.ctx.maxConnections) return deny(c, 'overload');
  c.admitted = true;
  c.ctx.admitted++;
  if (h.type === 'dns') return handleDns(c, rest);
  c.canDial = h.dial;
  const { ip, port } = h;
  const { ctx } = c;
  if (ip === '127.0.0.1' && port === ctx.opts.proxyPort) return handleProxy(c, rest);
  // DNS over TCP to the resolver in resolv.conf: the same framing as the relay's "dns", several queries per connection.
  if (ip === '127.0.0.1' && port === 53) return handleDns(c, rest, true);
  if (ip === '127.0.0.1' && ctx.opts.allowLocal.includes(port)) {
    c.ev = { kind: 'connect', host: '127.0.0.1', port, rule: `127.0.0.1:${port}` };
    const revoked = ctx.opts.admit?.('127.0.0.1', port);
    if (revoked) return deny(c, revoked);
    return relay(c, rest, { kind: 'local', host: '127.0.0.1' }, port, false);
  }
  if (ip === '127.0.0.1') {
    c.ev = { kind: 'connect', host: ip, port };
    return deny(c, 'not-allowed');
  }
  const name = ctx.byIp.get(ip);
  if (name === undefined) {
    c.ev = { kind: 'connect', host: ip, port };
    return deny(c, 'unknown-destination');
  }
  c.ev = { kind: 'connect', host: name, port };
  const rule = matchRule(ctx.opts.allow, name, port);
  if (!rule) return deny(c, 'not-allowed');
  c.ev.rule = ruleText(rule);
  const revoked = ctx.opts.admit?.(name, port);
  if (revoked) return deny(c, revoked);
  const secrets = secretsFor(ctx, name, port);
  if (secrets.length > 0) return brokered(c, rest, name, port, secrets);
  return relay(c, rest, { kind: 'name', host: name }, port, true);
}

type Header =
  | { type: 'dns' }
  | { type: 'tcp'; ip: string; port: number; dial: boolean }
  | { type: 'done'; id: number; up: number; down: number; err: string | null }
  | { type: 'over'; ip: string; port: number }
  | { type: 'exit'; why: string };

/** The relay's line, exactly as the relay writes it (canonical dotted quad, decimal numbers); anything else is refused. */
function parseHeader(line: string): Header | null {
  if (line === 'dns') return { type: 'dns' };
  const d = /^done (\d{1,15}) (\d{1,20}) (\d{1,20}) (-|E[A-Z0-9]{1,30})$/.exec(line);
  if (d) {
    const [id, up, down] = [d[1], d[2], d[3]].map(Number) as [number, number, number];
    return { type: 'done', id, up, down, err: d[4] === '-' ? null : d[4]! };
  }
  const x = /^exit ([a-zA-Z0-9-]{1,30}) (E[A-Z0-9]{1,30})$/.exec(line);
  if (x) return { type: 'exit', why: `${x[1]}: ${x[2]}` };
  const m = /^(tcp|over) (\d{1,3}(?:\.\d{1,3}){3}) (\d{1,5})( dial)?$/.exec(line);
  if (!m || (m[1] === 'over' && m[4] !== undefined)) return null;
  const octets = m[2]!.split('.').map(Number);
  if (octets.some((o) => o > 255) || octets.join('.') !== m[2]) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535 || String(port) !== m[3]) return null;
  if (m[1] === 'over') return { type: 'over', ip: m[2]!, port };
  return { type: 'tcp', ip: m[2]!, port, dial: m[4] !== undefined };
}

/**
 * The relay's count for a dialed connection. The line comes on a connection of its own, which
 * is not a connection of the sandbox's and gets no record. Only the relay gets this far (the
 * key), and it names the connection by the random id it was given on that connection's own
 * socket: a count for an id never handed out, or already counted, changes nothing.
 */
function handleDone(c: Conn, h: Extract<Header, { type: 'done' }>): void {
  c.reported = true;
  c.down.destroy();
  const d = c.ctx.dialed.get(h.id);
  if (!d || d.counted) return;
  d.counted = { up: h.up, down: h.down, err: h.err };
  // The relay counts when it is done with the connection: we are done with it too.
  d.down.destroy();
  if (d.downClosed) {
    finish(d);
    d.settle();
  }
}

/**
 * Tells a relay that can dial that the broker carries this connection's bytes itself. Called
 * before anything is written to the client; a no-op for a relay that cannot dial.
 */
function pipeMode(c: Conn): void {
  if (!c.canDial || c.mode !== 'await') return;
  c.mode = 'pipe';
  c.down.write('pipe\n');
}

// ===== DNS =====

/**
 * DNS, framed as over TCP (a 2-byte length, then the message). From the relay's "dns" (one UDP
 * query) there is one message; on a TCP connection to port 53 a client may send several, one
 * after another (RFC 7766): each is answered and recorded, until the client ends, stays idle
 * for DNS_TIMEOUT_MS, or has sent DNS_TCP_MAX.
 */
async function handleDns(c: Conn, rest: Buffer, many = false): Promise<void> {
  c.ev = { kind: 'dns' };
  const { ctx } = c;
  let buf = rest;
  for (let n = 0; ; n++) {
    let read: Read<{ msg: Buffer | null; used: number }>;
    try {
      read = await readUntil(c.down, buf, DNS_TIMEOUT_MS, (b, ended) => {
        if (b.length < 2) return ended ? { msg: null, used: b.length } : undefined;
        const len = b.readUInt16BE(0);
        if (len > DNS_MAX) {
          // Do not buffer it: answer FORMERR to its ID if we have that, else just close.
          if (b.length >= 4) return { msg: b.subarray(2, 4), used: b.length };
          return ended ? { msg: null, used: b.length } : undefined;
        }
        if (b.length >= 2 + len) return { msg: b.subarray(2, 2 + len), used: 2 + len };
        return ended ? { msg: b.subarray(2), used: b.length } : undefined;
      });
    } catch (e) {
      if (n === 0) throw e; // nothing at all: refused as malformed by the caller
      return closeDns(c); // idle or gone after its queries
    }
    if (!read.value.msg) return n === 0 ? deny(c, 'malformed') : closeDns(c);
    const { reply, event } = answerDns(ctx, read.value.msg);
    emit(ctx, event);
    c.reported = true; // each query has its own record; the connection has none
    if (!reply) return destroyBoth(c);
    pipeMode(c);
    const more = many && event.reason !== 'malformed' && !read.ended && n + 1 < DNS_TCP_MAX;
    if (!more) return endGracefully(c.down, reply);
    c.down.write(reply);
    buf = read.buf.subarray(read.value.used);
  }
}

function closeDns(c: Conn): void {
  endGracefully(c.down, Buffer.alloc(0));
}

/** One query's answer (framed; null: not even an ID to answer to) and its record. */
function answerDns(ctx: Ctx, msg: Buffer): { reply: Buffer | null; event: NetEvent } {
  const q = parseQuery(msg);
  if ('error' in q) {
    const event: NetEvent = { type: 'net', kind: 'dns', verdict: 'deny', reason: 'malformed' };
    return { reply: q.id === undefined ? null : frame(buildError(q.id, q.rd ?? false, q.rcode)), event };
  }
  const base = { type: 'net' as const, kind: 'dns' as const, host: q.name, qtype: qtypeName(q.qtype) };
  const rule = q.name === '' ? null : matchRule(ctx.opts.allow, q.name);
  if (!rule) return { reply: frame(buildResponse(q, { rcode: RCODE_NXDOMAIN })), event: { ...base, verdict: 'deny', reason: 'not-allowed' } };
  const allowed: NetEvent = { ...base, rule: ruleText(rule), verdict: 'allow' };
  // NODATA for other types: the name exists, but only as the IPv4 address the relay catches.
  if (q.qtype !== TYPE_A) return { reply: frame(buildResponse(q, { rcode: RCODE_NOERROR })), event: allowed };
  const ip = synthetic(ctx, q.name);
  if (!ip) return { reply: frame(buildResponse(q, { rcode: RCODE_SERVFAIL })), event: { ...base, verdict: 'deny', reason: 'overload' } };
  return { reply: frame(buildResponse(q, { rcode: RCODE_NOERROR, a: ip })), event: allowed };
}

function synthetic(ctx: Ctx, name: string): string | null {
  const known = ctx.byName.get(name);
  if (known) return known;
  if (ctx.nextSynthetic > SYNTHETIC_MAX) return null;
  const n = ctx.nextSynthetic++;
  const ip = `127.100.${n >> 8}.${n & 255}`;
  ctx.byName.set(name, ip);
  ctx.byIp.set(ip, name);
  return ip;
}

function frame(msg: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length);
  return Buffer.concat([len, msg]);
}

// ===== the HTTP proxy =====

type Target = { kind: 'local' | 'name' | 'ip'; host: string };

/** Where a proxy request for host:port may go, or why not. */
function decide(ctx: Ctx, host: string, port: number): { target: Target; rule: string } | { local: boolean } {
  // Loopback means the host's loopback, granted port by port in allow_local only.
  if (host === '127.0.0.1' || host === 'localhost') {
    return ctx.opts.allowLocal.includes(port) ? { target: { kind: 'local', host: '127.0.0.1' }, rule: `127.0.0.1:${port}` } : { local: true };
  }
  // A client that resolved through our DNS may name the synthetic address.
  const name = ctx.byIp.get(host) ?? host;
  const rule = matchRule(ctx.opts.allow, name, port);
  if (!rule) return { local: false };
  return { target: { kind: net.isIPv4(name) ? 'ip' : 'name', host: name }, rule: ruleText(rule) };
}

function notAllowedBody(host: string, port: number, local: boolean): string {
  if (local) {
    return `ward: egress to ${host}:${port} is not allowed by the policy (network.allow_local). To allow it, add ${port} to network.allow_local.\n`;
  }
  return `ward: egress to ${host}:${port} is not allowed by the policy (network.allow). To allow it, add "${host}:${port}" to network.allow.\n`;
}

async function handleProxy(c: Conn, rest: Buffer): Promise<void> {
  c.ev = { kind: 'proxy' };
  const scan = requestScanner(MAX_HEAD);
  const { value: head, buf } = await readUntil(c.down, rest, HEAD_TIMEOUT_MS, (b, ended) => {
    const h = scan(b);
    if (h === 'incomplete') return ended ? null : undefined;
    return typeof h === 'string' ? null : h;
  });
  const bad = (why: string) => denyWith(c, 'malformed', textResponse(400, `ward: ${why}\n`));
  if (!head) return bad('malformed proxy request (expected CONNECT host:port or GET http://host/...)');
  const after = buf.subarray(head.length);
  const ctx = c.ctx;

  let host: string;
  let port: number;
  let absolute: { path: string; hostHeader: string } | null = null;
  if (head.method === 'CONNECT') {
    const a = parseAuthority(head.target);
    if (!a || a.port === undefined) return bad(`CONNECT needs host:port, got "${printable(head.target)}"`);
    ({ host, port } = a as { host: string; port: number });
  } else {
    const t = parseAbsoluteTarget(head.target);
    if (!t) return bad(`the proxy expects CONNECT host:port or an absolute http:// URL, got "${printable(head.target)}"`);
    ({ host, port } = t);
    absolute = { path: t.path, hostHeader: port === 80 ? host : `${host}:${port}` };
  }
  c.ev = { kind: 'proxy', host, port };

  const d = decide(ctx, host, port);
  if (!('target' in d)) return denyWith(c, 'not-allowed', textResponse(403, notAllowedBody(host, port, d.local)));
  const revoked = ctx.opts.admit?.(d.target.host, port);
  if (revoked) return denyWith(c, revoked, textResponse(403, `ward: egress to ${d.target.host}:${port} was allowed, and is no more: ${revoked}.\n`));
  if (absolute) {
    // The server routes on Host, not on the URL we checked: they must agree.
    const hosts = headerValues(head, 'host');
    if (hosts.length > 1) return bad('more than one Host header');
    const a = hosts.length === 1 ? parseAuthority(hosts[0]!) : { host };
    if (!a) return bad('malformed Host header');
    if (a.host !== host && a.host !== d.target.host) {
      return denyWith(c, 'host-mismatch', textResponse(403, `ward: the Host header (${a.host}) does not match the requested URL (${host}).\n`));
    }
  }
  c.ev = { kind: 'proxy', host: d.target.host, port, rule: d.rule };
  if (!absolute && d.target.kind === 'name') {
    const secrets = secretsFor(ctx, d.target.host, port);
    if (secrets.length > 0) {
      pipeMode(c);
      c.down.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      return brokered(c, after, d.target.host, port, secrets);
    }
  }
  if (absolute && carriesPlaceholder(ctx, buf.subarray(0, head.length))) {
    return denyWith(c, 'secret-to-other-host', textResponse(403, `ward: this request carries a brokered credential's placeholder, and ${host}:${port} is not a host it may go to.\n`));
  }
  c.allowed = true;
  if (!absolute && c.canDial) {
    // The client's stream: the CONNECT request (head.length bytes), then what goes upstream.
    return handOff(c, after, head.length, d.target, port, d.target.kind !== 'local', d.target.host);
  }
  pipeMode(c);

  let up: net.Socket;
  try {
    up = await openUpstream(c, d.target, port);
  } catch (err) {
    const code = errorCode(err);
    return denyWith(c, `upstream-error: ${code}`, textResponse(502, `ward: could not reach ${d.target.host}:${port} (${code}).\n`));
  }
  carryDown(c, up);
  if (absolute) {
    // Every request on the connection, this one included, is checked and rewritten.
    return httpStream(c, up, buf, c.down.readableEnded, proxyJudge(c, d.target, port));
  }
  c.down.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (d.target.kind === 'local') return splice(c, up, after, c.down.readableEnded);
  c.checking = true;
  const first = await firstMessage(c, after, d.target.host);
  c.checking = false;
  if (first.value === 'http') return httpStream(c, up, first.buf, first.ended, rawJudge(c, d.target.host, port));
  if (first.value !== 'pass') return deny(c, first.value);
  splice(c, up, first.buf, first.ended);
}

function printable(s: string): string {
  const t = s.replace(/[^\x20-\x7e]/g, '?');
  return t.length > 200 ? `${t.slice(0, 200)}...` : t;
}

// ===== connections to a name or a local port =====

/**
 * Connects upstream at once (so a server that speaks first is heard at once),
 * and, if `inspect`, holds the client's bytes until its first message shows
 * it is not asking the server for another name.
 */
async function relay(c: Conn, rest: Buffer, target: Target, port: number, inspect: boolean): Promise<void> {
  c.allowed = true;
  if (c.canDial && !inspect) return handOff(c, rest, 0, target, port, false, null);
  if (c.canDial) {
    // Who carries the bytes must be said before any is forwarded, and plain HTTP stays here:
    // wait for the client's first bytes to say whether they are HTTP.
    c.checking = true;
    let first: Read<Opening>;
    try {
      first = await readUntil(c.down, rest, FIRST_BYTES_WAIT_MS, openingOf(), (b) => (b.length === 0 ? 'silent' : 'http'));
    } catch (err) {
      if (c.downClosed) return; // closed before a word: recorded by finish() as such
      throw err;
    } finally {
      c.checking = false;
    }
    if (first.value !== 'http') return handOff(c, first.buf, 0, target, port, true, null);
    rest = first.buf;
    pipeMode(c);
  }
  const upP = openUpstream(c, target, port).then(
    (up) => {
      carryDown(c, up);
      return up;
    },
    (err) => {
      deny(c, `upstream-error: ${errorCode(err)}`);
      return null;
    },
  );
  const first = inspect
    ? await ((c.checking = true), firstMessage(c, rest, target.host)).finally(() => (c.checking = false))
    : { value: 'pass' as const, buf: rest, ended: c.down.readableEnded };
  if (first.value !== 'pass' && first.value !== 'http') return deny(c, first.value);
  const up = await upP;
  if (!up || c.downClosed) return;
  if (first.value === 'http') return httpStream(c, up, first.buf, first.ended, rawJudge(c, target.host, port));
  splice(c, up, first.buf, first.ended);
}

/** What a raw connection's first bytes are: HTTP (or not yet known: the broker carries it), something else, or nothing yet. */
type Opening = 'http' | 'other' | 'silent';

/**
 * Classifies the first bytes with the same scanner the checks use: 'other' only once it is
 * certain they are not HTTP (TLS, or a first line that is not an HTTP request line). A
 * malformed near-HTTP head is 'http': the broker carries it and refuses it.
 */
function openingOf(): (buf: Buffer, ended: boolean) => Opening | undefined {
  const scan = requestScanner(MAX_HEAD);
  return (buf, ended) => {
    if (buf.length === 0) return ended ? 'other' : undefined;
    const tls = tlsOpening(buf);
    if (tls === 'hello' || tls === 'refuse') return 'other';
    const r = scan(buf);
    if (r === 'not-http') return 'other';
    if (r === 'incomplete') return ended ? 'http' : undefined;
    return 'http';
  };
}

type Inspection = 'pass' | 'http' | 'sni-mismatch' | 'host-mismatch' | 'malformed' | 'malformed-tls' | 'secret-to-other-host' | 'first-message-timeout';

/**
 * Waits for the client's first message to `name` and judges it (firstMessageCheck). A message
 * begun and not finished within the first-message timeout (counted from its first byte) is
 * judged 'first-message-timeout': an incomplete ClientHello must not hold a connection, and
 * the broker's slot, for as long as the client likes.
 */
function firstMessage(c: Conn, rest: Buffer, name: string): Promise<Read<Inspection>> {
  const ms = c.ctx.opts.firstMessageTimeoutMs ?? FIRST_MESSAGE_TIMEOUT_MS;
  return readUntil(c.down, rest, ms, firstMessageCheck(name, c.ctx), () => 'first-message-timeout', true);
}

/**
 * Decides on the client's first message to `name` (called with everything
 * received so far, after each chunk), or undefined to wait for more. A TLS
 * ClientHello must carry no SNI or this name; an HTTP/1.x request must name
 * this host (Host header, and the target if absolute-form or CONNECT).
 * Other TLS openings a lenient server would still read as a handshake (tlsOpening) are refused.
 * Anything else (SSH, a database protocol) passes: it cannot choose a virtual
 * host the way TLS and HTTP can. Buffering is bounded by the ClientHello and
 * request-head limits.
 */
function firstMessageCheck(name: string, ctx?: Ctx): (buf: Buffer, ended: boolean) => Inspection | undefined {
  const scan = requestScanner(MAX_HEAD);
  let searched = 0; // bytes already searched for placeholders: each chunk costs its own length
  return (buf, ended) => {
    if (buf.length === 0) return ended ? 'pass' : undefined;
    // In plaintext we can see it: a placeholder going to a host that is not its own.
    if (ctx && carriesPlaceholder(ctx, buf, searched)) return 'secret-to-other-host';
    searched = buf.length;
    const tls = tlsOpening(buf);
    if (tls === 'refuse') return 'malformed-tls';
    if (tls === undefined && !ended) return undefined;
    if (tls === 'hello') {
      const hello = parseClientHello(buf);
      if (hello === 'incomplete') return ended || buf.length > MAX_HELLO + 4096 ? 'malformed' : undefined;
      if (hello === null) return 'malformed';
      return hello.sni === null || hello.sni === name ? 'pass' : 'sni-mismatch';
    }
    const r = scan(buf);
    if (r === 'incomplete') return ended ? 'malformed' : undefined;
    if (r === 'not-http') return 'pass';
    // Plain HTTP: every request on the connection is checked (httpStream), this one included;
    // a malformed one too, so that it gets a 400 saying what is wrong.
    return 'http';
  };
}

function requestNames(head: RequestHead, name: string): boolean {
  const hosts = headerValues(head, 'host');
  if (hosts.length !== 1) return false;
  if (parseAuthority(hosts[0]!)?.host !== name) return false;
  // A server must prefer an absolute-form target's authority over Host (RFC 9112 3.2.2),
  // and a CONNECT asks the server to go somewhere itself: both must name this host too.
  if (head.method === 'CONNECT') return parseAuthority(head.target)?.host === name;
  const abs = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(head.target);
  if (abs) return !abs[1]!.includes('@') && parseAuthority(abs[1]!)?.host === name;
  return true;
}

/**
 * The relay carries an allowed connection's bytes (see "dial" at the top): we resolve the
 * name, tell the relay where to connect, check the client's first message as it comes (the
 * relay forwards none of it until "pass"), then wait for the relay's count. `from` is where
 * in the client's byte stream forwarding starts (after a CONNECT request: its length).
 * `connectHost`: the relay answers the CONNECT (200, or 502 naming this host).
 */
async function handOff(c: Conn, rest: Buffer, from: number, target: Target, port: number, inspect: boolean, connectHost: string | null): Promise<void> {
  const { ctx } = c;
  let addr: string;
  try {
    addr = target.kind === 'local' ? '127.0.0.1' : await timeLimit(ctx.resolve(target.host), CONNECT_TIMEOUT_MS);
    if (!net.isIPv4(addr)) throw Object.assign(new Error(`resolver returned "${addr}"`), { code: 'EBADRESOLVE' });
  } catch (err) {
    const code = errorCode(err);
    if (connectHost === null) return deny(c, `upstream-error: ${code}`);
    return denyWith(c, `upstream-error: ${code}`, textResponse(502, `ward: could not reach ${connectHost}:${port} (${code}).\n`));
  }
  if (c.downClosed || ctx.closing) return;
  let id: number;
  do id = randomInt(1, DIAL_ID_LIMIT);
  while (ctx.dialed.has(id));
  ctx.dialed.set(id, c);
  c.dialId = id;
  c.mode = 'dial';
  c.down.write(`dial ${id} ${addr} ${port}${connectHost === null ? '' : ` connect ${connectHost}`}\n`);
  if (inspect) {
    c.checking = true;
    const first = await firstMessage(c, rest, target.host).finally(() => (c.checking = false));
    // Plain HTTP on a connection the relay would carry: only its first request could be
    // checked, so it is refused (the broker carries plain HTTP, but the relay was told to dial
    // before it showed: a CONNECT tunnel, or a client silent for FIRST_BYTES_WAIT_MS).
    if (first.value === 'http') return deny(c, connectHost === null ? 'late-http' : 'http-in-tunnel');
    if (first.value !== 'pass') return deny(c, first.value);
  }
  if (c.downClosed) return;
  c.down.write(`pass ${from}\n`);
  // The relay sends no more, but bytes it sent before our "pass" may still come: drop them.
  // Its EOF from now on means it is done (after "pass" it half-closes nothing; it closes after
  // its count): end our side, so the socket closes and the record is written.
  c.down.on('data', () => {});
  c.down.on('end', () => c.down.end());
  c.down.resume();
}

/** Forwards what was held back, then pipes client -> upstream (upstream -> client is already piped). */
function splice(c: Conn, up: net.Socket, first: Buffer, ended: boolean): void {
  if (first.length > 0) up.write(first);
  if (ended) up.end();
  else c.down.pipe(up);
}

/**
 * Upstream -> client, for everything the broker carries. The client's side is ended by us, not
 * by the pipe: a refused plain-HTTP request is answered (403) after the responses to the
 * requests before it, once the upstream is done.
 */
function carryDown(c: Conn, up: net.Socket, to: net.Socket = c.down, through?: Transform): void {
  const from = through ? up.pipe(through) : up;
  from.pipe(to, { end: false });
  from.once('end', () => {
    if (c.onUpEnd) c.onUpEnd();
    else to.end();
  });
}

/** How long a response's last bytes may be held because they could begin a credential's value. */
const REDACT_HOLD_MS = 20;

/**
 * A brokered host's responses, with every exact occurrence of a credential's value masked
 * ('*' for each byte) before they reach the sandbox: a server that echoes request headers
 * (httpbin-style, an error page quoting the request) would otherwise hand the value to the
 * agent the broker keeps it from. Masked, not replaced by the placeholder: the length must stay
 * the same, or Content-Length and chunk sizes would no longer frame the response.
 *
 * A value split across reads is still found. The bytes at the end of a read that could begin a
 * value are held until the next read, but for REDACT_HOLD_MS at most (a kept-alive response must
 * not wait for a next one); then they go out masked, never as they are (the rest of the value,
 * coming later, would no longer match on its own), and are kept to be matched with what comes
 * next, which is masked where it continues a value. If it does not, those few bytes were masked
 * for nothing: a response a little wrong is better than a leaked prefix. Only the exact bytes: a
 * value compressed, encoded (base64, JSON or URL escapes) or cut by chunk framing is not
 * recognised (SECURITY-MODEL.md, "Egress").
 */
function redactor(values: string[]): Transform {
  const needles = values.filter((v) => v.length > 0).map((v) => Buffer.from(v, 'latin1'));
  const longest = Math.max(0, ...needles.map((n) => n.length));
  // The stream's last bytes that could begin a value: as the server sent them (`tail`, to match
  // what comes next against) and as they go out (`tailOut`: masked where a value ended in them,
  // or once the hold is over). The first `sent` of them have gone out already.
  let tail = Buffer.alloc(0);
  let tailOut = Buffer.alloc(0);
  let sent = 0;
  let timer: NodeJS.Timeout | undefined;
  /** The length of the longest end of `buf` that is the start of a value (not all of it). */
  const partial = (buf: Buffer): number => {
    for (let n = Math.min(longest - 1, buf.length); n > 0; n--) {
      const end = buf.subarray(buf.length - n);
      if (needles.some((v) => v.length > n && end.equals(v.subarray(0, n)))) return n;
    }
    return 0;
  };
  /** The held bytes, masked: what goes out when the hold is over or the stream ends. */
  const release = (): Buffer => {
    tailOut.fill(0x2a, sent);
    const out = Buffer.from(tailOut.subarray(sent));
    sent = tailOut.length;
    return out;
  };
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (timer) clearTimeout(timer);
      timer = undefined;
      const buf = Buffer.concat([tail, chunk]);
      const out = Buffer.concat([tailOut, chunk]);
      for (const v of needles) {
        for (let i = buf.indexOf(v); i >= 0; i = buf.indexOf(v, i + v.length)) out.fill(0x2a, i, i + v.length);
      }
      const from = buf.length - partial(buf);
      const ready = from > sent ? out.subarray(sent, from) : Buffer.alloc(0);
      // Of the new tail, what went out already: the part of the old one it still covers.
      sent = Math.max(0, sent - from);
      tail = Buffer.from(buf.subarray(from));
      tailOut = Buffer.from(out.subarray(from));
      if (tail.length > sent) {
        timer = setTimeout(() => {
          timer = undefined;
          this.push(release());
        }, REDACT_HOLD_MS);
      }
      cb(null, ready);
    },
    flush(cb) {
      if (timer) clearTimeout(timer);
      // The stream ends inside what could have been a value: its start goes out masked too.
      cb(null, release());
    },
  });
}

// ===== plain HTTP, request by request =====

/** What to do with one request head: forward these bytes (null: the head as sent), or refuse with an answer. */
type Judgement = { forward: Buffer | null } | { reason: string; status: number; body: string };

/**
 * Carries a plain-HTTP connection, checking every request on it (kept-alive, pipelined), not
 * just the first: each head is judged before any of it goes upstream, each body is delimited
 * as the server will delimit it (requestStream), so the next head is judged where the server
 * will read it. Each request is recorded (kind 'http'). A refused request is not forwarded; the
 * responses to the requests before it still reach the client, then it gets its answer and the
 * connection closes. The first request refused refuses the connection itself.
 */
function httpStream(c: Conn, up: net.Socket, first: Buffer, ended: boolean, judge: (head: RequestHead) => Judgement, brokeredTo?: net.Socket): void {
  const { ctx } = c;
  // A brokered host's connection: the client's side is the TLS Ward terminates, and placeholders
  // are judge's to replace (in the head) or to leave (in a body, going to the credential's host).
  const client = brokeredTo ?? c.down;
  const feed = requestStream(MAX_HEAD);
  let current: { head: RequestHead; bytes: number; note?: string } | null = null;
  let forwarded = 0; // requests whose head went upstream
  let stopped = false;
  // A request went with a body its server may ignore (bodyMayBeIgnored): it was the last one.
  let lastOne: RequestHead | null = null;
  let tail = Buffer.alloc(0); // the last bytes of the body so far: a placeholder may straddle two chunks

  const record = (head: RequestHead, verdict: 'allow' | 'deny', extra: Partial<NetEvent>) => {
    const q = head.target.indexOf('?');
    const path = q < 0 ? head.target : head.target.slice(0, q);
    emit(ctx, {
      type: 'net',
      kind: 'http',
      host: c.ev.host,
      port: c.ev.port,
      ...(verdict === 'allow' && c.ev.rule ? { rule: c.ev.rule } : {}),
      verdict,
      method: head.method,
      path: path.length > 256 ? `${path.slice(0, 256)}...` : path,
      target_length: head.target.length,
      ...extra,
    });
  };
  const refuse = (head: RequestHead | null, reason: string, status: number, body: string) => {
    stopped = true;
    client.off('data', onData);
    // The request in flight gets this record (deny), not an unfinished one at the end.
    current = null;
    const reply = textResponse(status, body);
    if (forwarded === 0) {
      // Nothing went upstream: the connection itself is refused (and its record says why).
      if (head) c.ev = { ...c.ev, method: head.method };
      return denyWith(c, reason, reply, client);
    }
    if (head) record(head, 'deny', { reason });
    else emit(ctx, { type: 'net', kind: 'http', host: c.ev.host, port: c.ev.port, verdict: 'deny', reason });
    c.ev.note = `closed by Ward after ${forwarded} request(s): a later one was refused (${reason})`;
    // The responses to the earlier requests are still coming: end the upstream's input, let
    // them through, then answer. A server that does not end within GRACE_MS is cut.
    const answer = () => endGracefully(client, reply);
    if (up.readableEnded || c.upClosed) return answer();
    c.onUpEnd = answer;
    up.end();
    setTimeout(() => destroyBoth(c), GRACE_MS).unref();
  };
  // A placeholder outside a brokered host's connection, in a head or a body.
  const placeholderRefused = (head: RequestHead | null) =>
    refuse(head, 'secret-to-other-host', 403, `ward: this request carries a brokered credential's placeholder, and ${String(c.ev.host)}:${String(c.ev.port)} is not a host it may go to.\n`);
  let draining = false;
  const send = (b: Buffer) => {
    if (b.length === 0) return;
    // The upstream is slower than the client: stop reading until it drains (one listener at a time).
    if (!up.write(b) && !draining) {
      draining = true;
      client.pause();
      up.once('drain', () => {
        draining = false;
        if (!stopped) client.resume();
      });
    }
  };
  const onData = (chunk: Buffer) => {
    for (const item of feed(chunk)) {
      if (stopped) return;
      if (item.type === 'head') {
        if (!brokeredTo && carriesPlaceholder(ctx, item.raw)) {
          return placeholderRefused(item.head);
        }
        if (lastOne) {
          return refuse(
            item.head,
            'after-ignorable-body',
            403,
            `ward: the request before this one on the connection (${lastOne.method} with a body) was the last one it carries: a server that ignores a body on ${lastOne.method} would read that body as a request, so it went with "Connection: close" and nothing after it is forwarded. Send this request on a new connection.\n`,
          );
        }
        // A body on GET (HEAD, DELETE, OPTIONS, TRACE): Elasticsearch and others read it, a
        // server that ignores it (Python's http.server) reads it as the next request, which the
        // broker would have counted as body and never checked. Refusing would break the first
        // kind; so the request goes on with "Connection: close" (the server reads nothing after
        // it), and nothing more is forwarded on this connection (a later request gets a 403).
        const closing = bodyMayBeIgnored(item.head);
        const head = closing ? withConnectionClose(item.head) : item.head;
        const v = judge(head);
        if (!('forward' in v)) return refuse(item.head, v.reason, v.status, v.body);
        const out = v.forward ?? (closing ? serializeHead(head) : item.raw);
        if (closing) lastOne = item.head;
        current = { head: item.head, bytes: out.length, ...(closing ? { note: `a body on ${item.head.method}: sent with Connection: close, the last request forwarded on this connection` } : {}) };
        forwarded++;
        tail = Buffer.alloc(0);
        send(out);
      } else if (item.type === 'body') {
        if (!brokeredTo) {
          const look = Buffer.concat([tail, item.data]);
          if (carriesPlaceholder(ctx, look)) {
            return placeholderRefused(current?.head ?? null);
          }
          tail = look.subarray(Math.max(0, look.length - 256));
        }
        if (current) current.bytes += item.data.length;
        send(item.data);
      } else if (item.type === 'end') {
        if (current) record(current.head, 'allow', { bytes_out: current.bytes, ...(current.note ? { note: current.note } : {}) });
        current = null;
      } else {
        const why: Record<string, string> = {
          upgrade: 'Upgrade (e.g. ws://) is not carried on plain HTTP: after it the bytes are another protocol, which Ward cannot follow; use https/wss (TLS goes end to end)',
          'connect-in-stream': 'CONNECT inside a connection to a server is not carried; send CONNECT to the proxy ($HTTPS_PROXY)',
          'transfer-encoding': 'Transfer-Encoding other than exactly "chunked" is not carried (servers read it differently)',
        };
        return refuse(item.head ?? current?.head ?? null, item.reason === 'malformed' || item.reason === 'not-http' ? 'malformed' : item.reason, 400, `ward: ${why[item.reason] ?? `malformed HTTP request (${item.reason}); each request on a connection must be well-formed HTTP/1.x`}.\n`);
      }
    }
  };
  // Its head went upstream, so it is recorded even if its body never ends (the client or the
  // server closed first, or the run ended): with the bytes forwarded so far, and a note.
  c.onFinish = () => {
    if (!current) return;
    const note = `the connection closed before the request's body ended (${current.bytes} bytes of it, head included, were forwarded)`;
    record(current.head, 'allow', { bytes_out: current.bytes, note: current.note ? `${current.note}; ${note}` : note });
    current = null;
  };
  onData(first);
  if (stopped) return;
  if (ended) {
    up.end();
    return;
  }
  client.on('data', onData);
  client.once('end', () => {
    if (!stopped) up.end();
  });
  client.resume();
}

/** A raw connection to `name`: every request must be for `name` (Host, and an absolute target). */
function rawJudge(c: Conn, name: string, port: number): (head: RequestHead) => Judgement {
  return (head) => {
    if (requestNames(head, name)) return { forward: null };
    const asked = askedHost(head);
    const allowed = asked !== null && matchRule(c.ctx.opts.allow, asked, port) !== null;
    const fix =
      asked === null
        ? 'Send exactly one Host header naming it.'
        : allowed
          ? `Open a new connection to ${asked}.`
          : `To allow ${asked}, add "${asked}:${port}" to network.allow (and open a new connection to it).`;
    return {
      reason: 'host-mismatch',
      status: 403,
      body: `ward: this connection goes to ${name}:${port}, and a request on it names ${asked ?? 'no single host'}: refused (a server at that address may serve other sites than the one allowed). ${fix}\n`,
    };
  };
}

/** The host a request asks for (absolute target first, as servers prefer it; else Host), or null. */
function askedHost(head: RequestHead): string | null {
  const abs = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(head.target);
  if (abs) return parseAuthority(abs[1]!)?.host ?? null;
  const hosts = headerValues(head, 'host');
  return hosts.length === 1 ? (parseAuthority(hosts[0]!)?.host ?? null) : null;
}

/**
 * The proxy's absolute-form requests on one client connection: each must ask for the host:port
 * the upstream connection goes to (a client wanting another opens a new connection: the
 * response to the first carries "Connection: close"), with a Host that agrees, and no
 * placeholder; it goes upstream in origin form.
 */
function proxyJudge(c: Conn, target: Target, port: number): (head: RequestHead) => Judgement {
  const { ctx } = c;
  return (head) => {
    const t = parseAbsoluteTarget(head.target);
    if (!t) return { reason: 'malformed', status: 400, body: `ward: the proxy expects an absolute http:// URL, got "${printable(head.target)}"\n` };
    const d = decide(ctx, t.host, t.port);
    if (!('target' in d)) return { reason: 'not-allowed', status: 403, body: notAllowedBody(t.host, t.port, d.local) };
    if (d.target.host !== target.host || t.port !== port) {
      return {
        reason: 'host-mismatch',
        status: 403,
        body: `ward: this proxy connection carries requests to ${target.host}:${port}; a request for ${t.host}:${t.port} needs a connection of its own.\n`,
      };
    }
    const revoked = ctx.opts.admit?.(d.target.host, port);
    if (revoked) return { reason: revoked, status: 403, body: `ward: egress to ${d.target.host}:${port} was allowed, and is no more: ${revoked}.\n` };
    const hosts = headerValues(head, 'host');
    if (hosts.length > 1) return { reason: 'malformed', status: 400, body: 'ward: more than one Host header\n' };
    const a = hosts.length === 1 ? parseAuthority(hosts[0]!) : { host: t.host };
    if (!a) return { reason: 'malformed', status: 400, body: 'ward: malformed Host header\n' };
    if (a.host !== t.host && a.host !== d.target.host) {
      return { reason: 'host-mismatch', status: 403, body: `ward: the Host header (${a.host}) does not match the requested URL (${t.host}).\n` };
    }
    return { forward: originRequest(head, t.port === 80 ? t.host : `${t.host}:${t.port}`, t.path) };
  };
}

async function openUpstream(c: Conn, target: Target, port: number): Promise<net.Socket> {
  const { ctx } = c;
  const addr = target.kind === 'local' ? '127.0.0.1' : await timeLimit(ctx.resolve(target.host), CONNECT_TIMEOUT_MS);
  if (!net.isIP(addr)) throw Object.assign(new Error(`resolver returned "${addr}"`), { code: 'EBADRESOLVE' });
  if (c.downClosed || ctx.closing) throw Object.assign(new Error('client gone'), { code: 'ECLOSED' });
  return new Promise<net.Socket>((resolve, reject) => {
    // noDelay: we forward what the sandbox wrote as soon as it arrives; with Nagle a request
    // written in two pieces waits ~40 ms for the server's delayed ACK.
    const up = net.connect({ host: addr, port, allowHalfOpen: true, noDelay: true });
    ctx.sockets.add(up);
    let connected = false;
    const timer = setTimeout(() => up.destroy(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' })), CONNECT_TIMEOUT_MS);
    up.on('error', (err) => {
      if (!connected) reject(err);
    });
    up.on('close', () => {
      clearTimeout(timer);
      ctx.sockets.delete(up);
      if (!connected) {
        reject(Object.assign(new Error('closed before connecting'), { code: 'ECLOSED' }));
        return;
      }
      c.upClosed = true;
      // The server cut the connection (no clean end): cut the client too. A clean
      // end reaches the client through the pipe.
      if (!up.readableEnded || up.errored) c.down.destroy();
      finish(c);
      c.settle();
    });
    up.once('connect', () => {
      clearTimeout(timer);
      if (c.downClosed || c.down.destroyed || ctx.closing) {
        up.destroy();
        return;
      }
      connected = true;
      c.up = up;
      resolve(up);
    });
  });
}

/** `p`, or an ETIMEDOUT error after `ms` (a resolver that never answers must not hold a connection forever). */
function timeLimit<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer!: NodeJS.Timeout;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/**
 * dns.lookup, IPv4 first. A *name* that resolves to this host's loopback, to
 * "this network" or to link-local (cloud metadata at 169.254.169.254) is
 * refused: allow_local is the only way to the host's loopback, and an allowed
 * wildcard whose DNS someone else controls must not become one.
 */
async function defaultResolve(host: string): Promise<string> {
  if (net.isIPv4(host)) return host; // a literal in the policy means what it says
  const all = await lookup(host, { all: true });
  const pick = all.find((a) => a.family === 4) ?? all[0];
  if (!pick) throw Object.assign(new Error(`no address for ${host}`), { code: 'ENOTFOUND' });
  if (isInternal(pick.address)) throw Object.assign(new Error(`${host} resolves to ${pick.address}`), { code: 'EBLOCKED' });
  return pick.address;
}

function isInternal(ip: string): boolean {
  const v4 = net.isIPv4(ip) ? ip : /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1];
  if (v4) {
    const [a, b] = v4.split('.').map(Number) as [number, number];
    return a === 127 || a === 0 || (a === 169 && b === 254) || a >= 224;
  }
  const l = ip.toLowerCase();
  return l === '::1' || l === '::' || /^fe[89ab]/.test(l);
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Z0-9_]{1,32}$/.test(code) ? code : 'EUNKNOWN';
}

// ===== reading, deciding, reporting =====

interface Read<T> {
  value: T;
  /** Everything read, including what `value` came from. */
  buf: Buffer;
  /** The peer half-closed while we read. */
  ended: boolean;
}

/**
 * Reads from `sock` until `step` returns something other than undefined (it is
 * asked again after every chunk, and once with ended=true at EOF, when it must
 * decide). Leaves the socket paused, so bytes after are kept for the next
 * reader or a pipe. Rejects on close or after `timeoutMs` (0: no timeout).
 */
function readUntil<T>(
  sock: net.Socket,
  initial: Buffer,
  timeoutMs: number,
  step: (buf: Buffer, ended: boolean) => T | undefined,
  /** Decides at the timeout instead of rejecting (given what was read by then). */
  onTimeout?: (buf: Buffer) => T,
  /** The timeout runs from the first byte read (or at once if `initial` has some), not from now. */
  fromFirstByte = false,
): Promise<Read<T>> {
  return new Promise((resolve, reject) => {
    // Grown by doubling, so many small chunks cost linear time, not a copy each.
    let store = initial;
    let len = initial.length;
    let buf = initial;
    // Ends only after a poll since it fired: bytes that came while Ward's loop was busy are read first.
    let timer: ReturnType<typeof loopGrace> | undefined;
    const done = (r: Read<T> | Error) => {
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.off('close', onClose);
      timer?.cancel();
      sock.pause();
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    const decide = (ended: boolean) => {
      let v: T | undefined;
      try {
        v = step(buf, ended);
      } catch (err) {
        done(err instanceof Error ? err : new Error(String(err)));
        return true;
      }
      if (v !== undefined) done({ value: v, buf, ended });
      else if (ended) done(new Error('peer ended before a decision'));
      return v !== undefined || ended;
    };
    const arm = () => {
      timer = loopGrace(timeoutMs, true);
      void timer.start().then(() => done(onTimeout ? { value: onTimeout(buf), buf, ended: false } : new Error('timed out')));
    };
    const onData = (chunk: Buffer) => {
      if (timeoutMs > 0 && !timer && chunk.length > 0) arm();
      if (len + chunk.length > store.length || store === initial) {
        const bigger = Buffer.allocUnsafe(Math.max(2 * store.length, len + chunk.length, 4096));
        store.copy(bigger, 0, 0, len);
        store = bigger;
      }
      chunk.copy(store, len);
      len += chunk.length;
      buf = store.subarray(0, len);
      decide(false);
    };
    const onEnd = () => decide(true);
    const onClose = () => done(new Error('closed'));
    if (decide(sock.readableEnded)) return;
    if (sock.destroyed) return done(new Error('closed'));
    sock.on('data', onData);
    sock.on('end', onEnd);
    sock.on('close', onClose);
    if (timeoutMs > 0 && (!fromFirstByte || initial.length > 0)) arm();
    sock.resume();
  });
}

function emit(ctx: Ctx, e: NetEvent): void {
  if (e.verdict === 'deny' && ++ctx.denied > DENY_RECORDS_MAX) return countDenial(ctx, e);
  if (e.verdict === 'allow' && e.kind === 'dns' && ++ctx.dnsAllowed > DNS_ALLOW_RECORDS_MAX) return countDenial(ctx, e);
  send(ctx, e);
}

function send(ctx: Ctx, e: NetEvent): void {
  try {
    ctx.opts.onEvent(e);
  } catch {
    // The embedder's bug must not become the broker's crash.
  }
}

/**
 * A refusal past the first DENY_RECORDS_MAX (or an allowed DNS answer past the first
 * DNS_ALLOW_RECORDS_MAX): counted under its kind, destination and reason (or type).
 * Destinations are bounded too (an agent can invent names, e.g. random DNS labels): past
 * DENY_SUMMARY_KEYS_MAX in one interval, the rest share a summary per kind and reason, with
 * no host. Summaries are written every DENY_SUMMARY_MS and when the broker closes.
 */
function countDenial(ctx: Ctx, e: NetEvent): void {
  const allow = e.verdict === 'allow';
  // An allowed answer is counted per name and type (its rule goes with it), a refusal per reason.
  const why = allow ? `allow\0${e.qtype ?? ''}` : (e.reason ?? '');
  let key = `${e.kind}\0${e.host ?? ''}\0${e.port ?? ''}\0${why}`;
  const verdict = allow ? { verdict: 'allow' as const, ...(e.rule !== undefined ? { rule: e.rule } : {}) } : { verdict: 'deny' as const, reason: e.reason ?? 'unknown' };
  let base: NetEvent = { type: 'net', kind: e.kind, ...(e.host !== undefined ? { host: e.host } : {}), ...(e.port !== undefined ? { port: e.port } : {}), ...(e.qtype !== undefined ? { qtype: e.qtype } : {}), ...verdict };
  if (!ctx.summaries.has(key) && ctx.summaries.size >= DENY_SUMMARY_KEYS_MAX) {
    key = `${e.kind}\0*\0\0${why}`;
    base = { type: 'net', kind: e.kind, ...(allow && e.qtype !== undefined ? { qtype: e.qtype } : {}), ...(allow ? { verdict: 'allow' as const } : verdict), note: 'other destinations' };
  }
  const now = Date.now();
  const s = ctx.summaries.get(key);
  if (s) {
    s.count++;
    s.last = now;
  } else ctx.summaries.set(key, { event: base, count: 1, first: now, last: now });
  if (!ctx.summaryTimer) {
    ctx.summaryTimer = setTimeout(() => {
      ctx.summaryTimer = undefined;
      flushSummaries(ctx);
    }, DENY_SUMMARY_MS);
    ctx.summaryTimer.unref();
  }
}

function flushSummaries(ctx: Ctx): void {
  if (ctx.summaryTimer) clearTimeout(ctx.summaryTimer);
  ctx.summaryTimer = undefined;
  const all = [...ctx.summaries.values()];
  ctx.summaries.clear();
  for (const s of all) {
    const note =
      s.event.verdict === 'allow'
        ? `${s.count} answer(s) like this one, counted, not recorded one by one (the first ${DNS_ALLOW_RECORDS_MAX} allowed DNS answers of the run were)`
        : `${s.count} refusal(s) like this one, counted, not recorded one by one (the first ${DENY_RECORDS_MAX} of the run were)`;
    send(ctx, {
      ...s.event,
      note: s.event.note ? `${note}; ${s.event.note}` : note,
      count: s.count,
      first: new Date(s.first).toISOString(),
      last: new Date(s.last).toISOString(),
    });
  }
}

function report(c: Conn, e: NetEvent): void {
  if (c.reported) return;
  c.reported = true;
  if (c.dialId !== undefined) c.ctx.dialed.delete(c.dialId);
  if (c.reportTimer) clearTimeout(c.reportTimer);
  emit(c.ctx, e);
}

function destroyBoth(c: Conn): void {
  c.down.destroy();
  c.up?.destroy();
}

/** Refuses at once: report, cut both sides (a raw connection gets no explanation; the client sees a reset/EOF). */
function deny(c: Conn, reason: string): void {
  if (!c.reported) report(c, { type: 'net', ...withoutRule(c.ev), verdict: 'deny', reason });
  destroyBoth(c);
}

/**
 * Refuses with a message the client can read (a 403, a DNS error), then closes. `to`: where the
 * client reads it (a brokered host's TLS, which Ward terminates; else the connection itself).
 */
function denyWith(c: Conn, reason: string, reply: Buffer, to: net.Socket = c.down): void {
  report(c, { type: 'net', ...withoutRule(c.ev), verdict: 'deny', reason });
  c.up?.destroy();
  pipeMode(c);
  endGracefully(to, reply);
}

function withoutRule(ev: Conn['ev']): Conn['ev'] {
  const { rule: _rule, ...rest } = ev;
  return rest;
}

function endGracefully(sock: net.Socket, data: Buffer): void {
  if (sock.destroyed) return;
  // Keep reading (and discarding): closing with unread data could reset the
  // connection and lose the reply we just wrote.
  sock.on('data', () => {});
  sock.resume();
  sock.end(data);
  setTimeout(() => sock.destroy(), GRACE_MS).unref();
}

/** Called when either side closes: once both are gone, an allowed connection is reported. */
function finish(c: Conn): void {
  if (!c.downClosed || (c.up && !c.upClosed)) return;
  c.onFinish?.();
  c.onFinish = undefined;
  if (c.reported) return;
  if (c.allowed && c.mode === 'dial') return finishDialed(c);
  if (c.allowed) {
    report(c, {
      // Cut (by the client, or by the end of the run) before its first message was judged:
      // nothing the sandbox sent went upstream.
      ...(c.checking ? { note: 'closed before its first message was checked; nothing was forwarded' } : {}),
      type: 'net',
      ...c.ev,
      verdict: 'allow',
      bytes_out: c.up?.bytesWritten ?? 0,
      bytes_in: c.up?.bytesRead ?? 0,
      duration_ms: Date.now() - c.started,
    });
  } else if (!c.ctx.closing) {
    // Closed before anything was decided (no header, half a request head).
    report(c, { type: 'net', ...c.ev, verdict: 'deny', reason: 'malformed' });
  }
}

/**
 * The record of a connection the relay carried, from the relay's count. The count comes on a
 * connection of its own, just before the relay closes this one: they may arrive in either
 * order, so a close without a count waits for it (REPORT_WAIT_MS at most; at once when the
 * broker is closing). No count at all (the relay died) is said in the record.
 */
function finishDialed(c: Conn, waited = false): void {
  c.cutWhileChecking ??= c.checking === true;
  if (!c.counted && !waited && !c.ctx.closing) {
    c.reportTimer ??= setTimeout(() => {
      c.reportTimer = undefined;
      finishDialed(c, true);
      c.settle();
    }, REPORT_WAIT_MS);
    return;
  }
  const k = c.counted;
  if (k?.err) {
    report(c, { type: 'net', ...withoutRule(c.ev), verdict: 'deny', reason: `upstream-error: ${k.err}` });
    return;
  }
  const base = { type: 'net' as const, ...c.ev };
  const notes = [
    ...(c.cutWhileChecking ? ['closed before its first message was checked; nothing was forwarded'] : []),
    ...(k ? [] : ['the relay gave no byte count: the bytes are unknown']),
  ];
  report(c, {
    ...(notes.length > 0 ? { note: notes.join('; ') } : {}),
    ...base,
    verdict: 'allow',
    // Unknown, not 0: a relay that died (or was cut off) may have carried any amount.
    bytes_out: k ? k.up : null,
    bytes_in: k ? k.down : null,
    duration_ms: Date.now() - c.started,
  });
}

// ===== brokered credentials =====

function secretsFor(ctx: Ctx, name: string, port: number): BrokeredSecret[] {
  return (ctx.opts.secrets ?? []).filter((sec) => sec.hosts.some((h) => h.host === name && h.port === port));
}

/** Whether `buf` holds a placeholder ending after `from` (the bytes before it were searched already). */
function carriesPlaceholder(ctx: Ctx, buf: Buffer, from = 0): boolean {
  return (ctx.opts.secrets ?? []).some((sec) => buf.includes(sec.placeholder, Math.max(0, from - sec.placeholder.length + 1), 'latin1'));
}

/** The sandbox side as a plain stream, `first` (already read) in front: TLS is spoken over it. */
function bridge(c: Conn, first: Buffer): Duplex {
  const d = new Duplex({
    read() {
      c.down.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      if (c.down.destroyed) return cb();
      c.down.write(chunk, () => cb());
    },
    final(cb) {
      c.down.end();
      cb();
    },
    destroy(err, cb) {
      c.down.destroy();
      cb(err);
    },
  });
  if (first.length > 0) d.push(first);
  c.down.on('data', (b: Buffer) => {
    if (!d.push(b)) c.down.pause();
  });
  c.down.on('end', () => d.push(null));
  c.down.resume();
  return d;
}

/** Rewrites the head: placeholders replaced where allowed, one request per connection. Null: a placeholder is misused. */
function substitute(head: RequestHead, secrets: BrokeredSecret[], all: BrokeredSecret[]): Buffer | null {
  const lines = [`${head.method} ${head.target} HTTP/${head.version}`];
  for (const [k, v0] of head.headers) {
    const key = k.toLowerCase();
    if (key === 'proxy-connection') continue;
    let v = v0;
    for (const sec of secrets) if (sec.header === null || sec.header === key) v = v.split(sec.placeholder).join(sec.value);
    lines.push(`${k}: ${v}`);
  }
  // Checked on the rewritten head minus the values we put in: any placeholder left is in the wrong place.
  const leftover = lines.join('\n');
  if (all.some((sec) => leftover.includes(sec.placeholder))) return null;
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

/**
 * A connection to a host with a brokered credential: TLS is terminated here with
 * a leaf from the run's CA (trusted only inside this run's sandbox), the request
 * head is checked and rewritten, and a new TLS connection, verified against the
 * real CAs, carries it to the host. Every request on the connection is parsed as the server
 * will read it (httpStream), and each head passes through substitute(): kept-alive connections
 * get the credential, and the same checks, on every request.
 */
async function brokered(c: Conn, rest: Buffer, name: string, port: number, secrets: BrokeredSecret[]): Promise<void> {
  const { ctx } = c;
  pipeMode(c);
  c.ev = { ...c.ev, secrets: secrets.map((sec) => sec.name) };
  const tlsOpts = ctx.opts.tls;
  if (!tlsOpts) return deny(c, 'malformed'); // a broker configured with secrets but no CA: refuse, never pass through
  c.allowed = true;
  c.checking = true;
  let down: tls.TLSSocket;
  try {
    const { certPem, keyPem } = tlsOpts.ca.leaf(name);
    down = new tls.TLSSocket(bridge(c, rest), { isServer: true, cert: certPem, key: keyPem, ALPNProtocols: ['http/1.1'] });
  } catch (err) {
    return deny(c, `tls-error: ${errorCode(err)}`);
  }
  down.on('error', () => c.down.destroy());
  const secured = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), HEAD_TIMEOUT_MS);
    down.once('secure', () => (clearTimeout(timer), resolve(true)));
    down.once('error', () => (clearTimeout(timer), resolve(false)));
    down.once('close', () => (clearTimeout(timer), resolve(false)));
  });
  if (!secured) return deny(c, 'tls-error: handshake');
  const sni = (down as tls.TLSSocket & { servername?: string | false }).servername;
  if (sni && sni.toLowerCase() !== name) return deny(c, 'sni-mismatch');

  const scan = requestScanner(MAX_HEAD);
  let got: Read<RequestHead | null>;
  try {
    got = await readUntil(down as net.Socket, Buffer.alloc(0), HEAD_TIMEOUT_MS, (b, ended) => {
      const h = scan(b);
      if (h === 'incomplete') return ended ? null : undefined;
      return typeof h === 'string' ? null : h;
    });
  } catch {
    return deny(c, 'malformed');
  }
  const head = got.value;
  if (!head) return deny(c, 'malformed');
  // The first request is judged before the host is dialed: a refusal costs no upstream connection.
  const judge = brokeredJudge(c, name, port, secrets);
  const first = judge(head);
  if (!('forward' in first)) return deny(c, first.reason);

  let raw: net.Socket;
  try {
    raw = await openUpstream(c, { kind: 'name', host: name }, port);
  } catch (err) {
    return deny(c, `upstream-error: ${errorCode(err)}`);
  }
  const up = tls.connect({ socket: raw, servername: name, ALPNProtocols: ['http/1.1'], ...(tlsOpts.upstreamCa ? { ca: tlsOpts.upstreamCa } : {}) });
  up.on('error', () => {});
  const ok = await new Promise<boolean>((resolve) => {
    up.once('secureConnect', () => resolve(true));
    up.once('error', () => resolve(false));
    up.once('close', () => resolve(false));
  });
  if (!ok) return deny(c, 'upstream-error: tls');
  c.checking = false;
  // Every request on the connection, the first one again included, is checked and rewritten:
  // a server may keep the connection open after the first answer.
  carryDown(c, up, down, redactor(secrets.map((sec) => sec.value)));
  httpStream(c, up, got.buf, got.ended, judge, down);
}

/** A brokered host's requests: each must name the host, and each head gets the credential. */
function brokeredJudge(c: Conn, name: string, port: number, secrets: BrokeredSecret[]): (head: RequestHead) => Judgement {
  const sameHost = rawJudge(c, name, port);
  return (head) => {
    const v = sameHost(head);
    if (!('forward' in v)) return v;
    // TRACE answers with the request as the server got it: the credential, into the sandbox.
    if (head.method === 'TRACE') {
      return { reason: 'trace-brokered', status: 403, body: `ward: TRACE is not carried to ${name}:${port}: the server would echo the brokered credential back into the sandbox.\n` };
    }
    const rewritten = substitute(head, secrets, c.ctx.opts.secrets ?? []);
    if (!rewritten) {
      const where = secrets.map((sec) => (sec.header === null ? `${sec.name} in any header` : `${sec.name} in ${sec.header}`)).join(', ');
      return { reason: 'secret-misuse', status: 403, body: `ward: a brokered credential's placeholder is in a place the policy does not put it (${where}, to ${name}:${port}): refused.\n` };
    }
    return { forward: rewritten };
  };
}
