/**
 * For the egress broker tests: a fake relay (what the C relay inside the
 * sandbox does, from the broker's side), a DNS client over it, real servers on
 * loopback standing in for the internet, and a test certificate.
 *
 * Everything made here is closed and removed when the test file ends.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import tls from 'node:tls';
import { RELAY_KEY_LEN, startBroker, type Broker, type BrokerOptions, type NetEvent } from '../../src/net/broker.js';
import { buildQuery, qtypeNumber } from '../../src/net/dns.js';

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const f of cleanups.reverse()) await f();
});
export function onCleanup(f: () => unknown): void {
  cleanups.push(f);
}

export function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'ward-nettest-'));
  onCleanup(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

export interface TestBroker {
  broker: Broker;
  socketPath: string;
  events: NetEvent[];
  /** Resolves with the first event (already seen or still to come) matching `pred`. */
  event(pred: (e: NetEvent) => boolean, ms?: number): Promise<NetEvent>;
}

/** The key of the broker at each socket path: the fake relay sends it, as the real one does. */
const keys = new Map<string, Buffer>();

/** A fresh key for a broker about to listen at `socketPath`, which `relay` will then send. */
export function keyFor(socketPath: string): Buffer {
  const key = randomBytes(RELAY_KEY_LEN);
  keys.set(socketPath, key);
  return key;
}

/** A broker on a fresh socket; `resolve` defaults to mapping every name to 127.0.0.1. */
export async function testBroker(opts: Partial<BrokerOptions> = {}): Promise<TestBroker> {
  const socketPath = path.join(tempDir(), 'broker.sock');
  const events: NetEvent[] = [];
  const waiters: Array<() => void> = [];
  const broker = await startBroker({
    socketPath,
    key: keyFor(socketPath),
    allow: [],
    allowLocal: [],
    proxyPort: 3128,
    resolve: async () => '127.0.0.1',
    ...opts,
    onEvent: (e) => {
      events.push(e);
      for (const w of waiters.splice(0)) w();
    },
  });
  onCleanup(() => broker.close());
  const event = (pred: (e: NetEvent) => boolean, ms = 5000) =>
    new Promise<NetEvent>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching event in ${ms} ms; events: ${JSON.stringify(events)}`)), ms);
      const check = () => {
        const e = events.find(pred);
        if (e) {
          clearTimeout(timer);
          resolve(e);
        } else waiters.push(check);
      };
      check();
    });
  return { broker, socketPath, events, event };
}

/** The fake relay: a new connection to the broker, the key and the header line written, the socket returned. */
export async function relay(socketPath: string, header: string): Promise<net.Socket> {
  const key = keys.get(socketPath);
  if (!key) throw new Error(`no key for a broker at ${socketPath} (make it with keyFor)`);
  return connectWith(socketPath, Buffer.concat([key, Buffer.from(header, 'latin1')]));
}

/** Any other process that reaches the socket: `bytes` are all it sends (no key, unless it has one). */
export async function connectWith(socketPath: string, bytes: Buffer | string): Promise<net.Socket> {
  const sock = net.connect({ path: socketPath, allowHalfOpen: true });
  sock.on('error', () => {});
  onCleanup(() => sock.destroy());
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  sock.write(bytes);
  return sock;
}

export function relayTcp(socketPath: string, ip: string, port: number): Promise<net.Socket> {
  return relay(socketPath, `tcp ${ip} ${port}\n`);
}

export interface DnsAnswer {
  id: number;
  flags: number;
  rcode: number;
  qd: number;
  question?: { name: string; qtype: number; qclass: number };
  answers: Array<{ type: number; ttl: number; data: Buffer; address?: string }>;
}

/** Sends one framed DNS message over a fresh relay connection; the parsed answer, or null if the broker just closed. */
export async function dnsExchange(socketPath: string, msg: Buffer, framed = true): Promise<DnsAnswer | null> {
  const sock = await relay(socketPath, 'dns\n');
  if (framed) {
    const len = Buffer.alloc(2);
    len.writeUInt16BE(msg.length);
    sock.write(Buffer.concat([len, msg]));
  } else sock.write(msg);
  const reply = await readAll(sock);
  sock.end(); // as the relay does once it has the answer: the broker's side closes now, not after its grace period
  if (reply.length === 0) return null;
  const len = reply.readUInt16BE(0);
  if (reply.length !== 2 + len) throw new Error(`bad framing: ${reply.length} bytes for length ${len}`);
  return parseAnswer(reply.subarray(2));
}

export function dnsQuery(socketPath: string, name: string, qtype: string, id = 0x1234): Promise<DnsAnswer | null> {
  const t = qtypeNumber(qtype);
  if (t === undefined) throw new Error(`unknown qtype ${qtype}`);
  return dnsExchange(socketPath, buildQuery(id, name, t));
}

/**
 * Parses an answer independently of src/net/dns.ts (a test of the builder must
 * not reuse its own parser): header, an uncompressed question, answers whose
 * name is a pointer (all the broker writes).
 */
function parseAnswer(m: Buffer): DnsAnswer {
  const out: DnsAnswer = { id: m.readUInt16BE(0), flags: m.readUInt16BE(2), rcode: m.readUInt16BE(2) & 0xf, qd: m.readUInt16BE(4), answers: [] };
  const an = m.readUInt16BE(6);
  let p = 12;
  if (out.qd === 1) {
    const labels: string[] = [];
    while (m[p] !== 0) {
      const l = m[p]!;
      labels.push(m.toString('latin1', p + 1, p + 1 + l));
      p += 1 + l;
    }
    p += 1;
    out.question = { name: labels.join('.'), qtype: m.readUInt16BE(p), qclass: m.readUInt16BE(p + 2) };
    p += 4;
  }
  for (let i = 0; i < an; i++) {
    if ((m[p]! & 0xc0) !== 0xc0) throw new Error('answer name is not a pointer');
    p += 2;
    const type = m.readUInt16BE(p);
    const ttl = m.readUInt32BE(p + 4);
    const rdlen = m.readUInt16BE(p + 8);
    const data = m.subarray(p + 10, p + 10 + rdlen);
    out.answers.push({ type, ttl, data, ...(type === 1 && rdlen === 4 ? { address: [...data].join('.') } : {}) });
    p += 10 + rdlen;
  }
  if (p !== m.length) throw new Error(`trailing bytes in answer: ${m.length - p}`);
  return out;
}

/** Everything until the peer ends or closes. */
export function readAll(sock: net.Socket, ms = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => reject(new Error(`no end within ${ms} ms (got ${Buffer.concat(chunks).toString('latin1').slice(0, 200)})`)), ms);
    sock.on('data', (c: Buffer) => chunks.push(c));
    const done = () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    };
    sock.once('end', done);
    sock.once('close', done);
    sock.resume(); // a 'data' listener does not resume a socket paused explicitly (readHead does)
  });
}

/** `p`, or a rejection naming `what` after `ms`: every wait in these tests must fail, not hang. */
export function within<T>(p: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer!: NodeJS.Timeout;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Waits for a TLS client's handshake to complete (rejects on error or after `ms`). */
export function handshake(t: tls.TLSSocket, ms = 5000): Promise<void> {
  return within(new Promise<void>((resolve, reject) => t.once('secureConnect', resolve).once('error', reject)), 'TLS handshake', ms);
}

/** How a TLS client's attempt ended: 'connected', 'error' or 'closed' (rejects after `ms`). */
export function tlsOutcome(t: tls.TLSSocket, ms = 5000): Promise<'connected' | 'error' | 'closed'> {
  return within(
    new Promise((resolve) => {
      t.once('secureConnect', () => resolve('connected'));
      t.once('error', () => resolve('error'));
      t.once('close', () => resolve('closed'));
    }),
    'TLS outcome',
    ms,
  );
}

/** The next chunk the socket receives; rejects after `ms` (a test must fail, not hang). */
export function firstData(sock: net.Socket, ms = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no data within ${ms} ms`)), ms);
    sock.once('data', (c: Buffer) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
}

/**
 * Resolves when the broker has closed its side (EOF or close; the fake relay is
 * half-open like the real one, so a close reaches it as 'end'); rejects if the
 * connection is still open after `ms`.
 */
export function closedWithin(sock: net.Socket, ms = 2000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (sock.destroyed || sock.readableEnded) return resolve();
    const timer = setTimeout(() => reject(new Error(`still open after ${ms} ms`)), ms);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    sock.resume();
    sock.once('end', done);
    sock.once('close', done);
  });
}

/** Reads an HTTP response head (up to the empty line); bytes after it are put back. */
export function readHead(sock: net.Socket, ms = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error(`no head within ${ms} ms`)), ms);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const i = buf.indexOf('\r\n\r\n');
      if (i < 0) return;
      sock.off('data', onData);
      sock.off('close', onClose);
      sock.pause();
      clearTimeout(timer);
      const rest = buf.subarray(i + 4);
      if (rest.length) sock.unshift(rest);
      resolve(buf.toString('latin1', 0, i + 4));
    };
    const onClose = () => {
      clearTimeout(timer);
      reject(new Error(`closed before a head: ${JSON.stringify(buf.toString('latin1'))}`));
    };
    sock.on('data', onData);
    sock.on('close', onClose);
  });
}

/** How to end a tcpServer's open connections (net.Server has no closeAllConnections). */
const enders = new WeakMap<net.Server, () => void>();

/** Listens on 127.0.0.1 on a free port; closed (with its connections) at cleanup. */
export async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onCleanup(
    () =>
      new Promise<void>((resolve) => {
        // close() on a server a test already closed waits for a 'close' that has been and gone.
        if (!server.listening) return resolve();
        enders.get(server)?.();
        (server as net.Server & { closeAllConnections?: () => void }).closeAllConnections?.();
        server.close(() => resolve());
      }),
  );
  return (server.address() as net.AddressInfo).port;
}

/** A net server (half-open allowed) that tracks its sockets so cleanup can end them. */
export function tcpServer(onConn: (s: net.Socket) => void): net.Server {
  const socks = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    socks.add(s);
    s.on('error', () => {});
    s.on('close', () => socks.delete(s));
    onConn(s);
  });
  enders.set(server, () => {
    for (const s of socks) s.destroy();
  });
  return server;
}

let certCache: { key: Buffer; cert: Buffer } | null = null;
/** A self-signed certificate for api.test, made with openssl (once per test file). */
export function testCert(): { key: Buffer; cert: Buffer } {
  if (certCache) return certCache;
  const d = tempDir();
  execFileSync(
    '/usr/bin/openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=api.test', '-addext', 'subjectAltName=DNS:api.test', '-days', '1', '-keyout', path.join(d, 'key.pem'), '-out', path.join(d, 'cert.pem')],
    { stdio: 'ignore' },
  );
  certCache = { key: readFileSync(path.join(d, 'key.pem')), cert: readFileSync(path.join(d, 'cert.pem')) };
  return certCache;
}

/**
 * A UDP DNS server on loopback that passes each datagram through the fake
 * relay, as the C relay does for port 53: lets a real resolver (c-ares, via
 * dns.Resolver) check the broker's answers.
 */
export async function udpDnsBridge(socketPath: string): Promise<number> {
  const sock = dgram.createSocket('udp4');
  sock.on('message', (msg, rinfo) => {
    void (async () => {
      const r = await relay(socketPath, 'dns\n');
      const len = Buffer.alloc(2);
      len.writeUInt16BE(msg.length);
      r.write(Buffer.concat([len, msg]));
      const reply = await readAll(r);
      if (reply.length > 2) sock.send(reply.subarray(2), rinfo.port, rinfo.address);
    })().catch(() => {});
  });
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  onCleanup(() => new Promise<void>((resolve) => sock.close(() => resolve())));
  return sock.address().port;
}

/** The first TLS record a client sends (its ClientHello), read by length from the record header. */
export async function captureHello(opts: tls.ConnectionOptions): Promise<Buffer> {
  let got!: (b: Buffer) => void;
  const hello = new Promise<Buffer>((r) => (got = r));
  const server = tcpServer((s) => {
    let buf = Buffer.alloc(0);
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
        got(buf.subarray(0, 5 + buf.readUInt16BE(3)));
        s.destroy();
      }
    });
  });
  const port = await listen(server);
  const client = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
  client.on('error', () => {});
  const b = await hello;
  client.destroy();
  return b;
}

/** Re-frames a ClientHello's handshake message as records of at most `size` bytes each. */
export function refragment(record: Buffer, size: number): Buffer {
  const hs = record.subarray(5);
  const out: Buffer[] = [];
  for (let i = 0; i < hs.length; i += size) {
    const frag = hs.subarray(i, i + size);
    const h = Buffer.from([22, 3, 1, 0, 0]);
    h.writeUInt16BE(frag.length, 3);
    out.push(h, frag);
  }
  return Buffer.concat(out);
}

/** Asks the broker's DNS for `name` and returns the synthetic address it hands out. */
export async function addressOf(b: TestBroker, name: string): Promise<string> {
  const a = (await dnsQuery(b.socketPath, name, 'A'))?.answers[0]?.address;
  if (!a) throw new Error(`no address for ${name}`);
  return a;
}

/**
 * A server as lenient as Python's http.server (SimpleHTTPRequestHandler): the request line is
 * split on any whitespace, a body is read only for POST/PUT/PATCH (a body on GET is left
 * unread, so its bytes are read as the next request), the connection is kept alive unless the
 * request says `Connection: close`. `seen`: "host method path" of every request it served;
 * `raw`: every byte it received.
 */
export async function lenientServer(): Promise<{ port: number; seen: string[]; raw: () => string }> {
  const seen: string[] = [];
  let raw = '';
  const server = tcpServer((s) => {
    let buf = '';
    let closed = false;
    s.on('data', (d: Buffer) => {
      raw += d.toString('latin1');
      if (closed) return;
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.search(/\r?\n\r?\n/);
        if (end < 0) return;
        const sep = /\r?\n\r?\n/.exec(buf.slice(end))![0];
        const lines = buf.slice(0, end).replace(/^[\r\n]+/, '').split(/\r?\n/);
        let rest = buf.slice(end + sep.length);
        // eslint-disable-next-line no-control-regex
        const words = lines[0]!.split(/[\s\x1c-\x1f\x85\xa0]+/).filter((w) => w !== '');
        const headers = new Map(lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()] as const));
        if (words.length !== 3 || !words[2]!.startsWith('HTTP/')) {
          s.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
          closed = true;
          return;
        }
        if (['POST', 'PUT', 'PATCH'].includes(words[0]!)) rest = rest.slice(Number(headers.get('content-length') ?? 0));
        seen.push(`${headers.get('host') ?? '-'} ${words[0]} ${words[1]}`);
        const body = `served ${words[1]}\n`;
        s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
        buf = rest;
        if ((headers.get('connection') ?? '').toLowerCase() === 'close') {
          closed = true;
          s.end();
          return;
        }
      }
    });
  });
  const port = await listen(server);
  return { port, seen, raw: () => raw };
}
