/**
 * The broker's HTTP proxy (what HTTP_PROXY/HTTPS_PROXY point at inside the
 * sandbox): CONNECT for TLS, absolute-form for plain HTTP, 403 with the fix
 * for what the policy does not allow, 400 for garbage, 502 when the upstream
 * cannot be reached.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { describe, it } from 'node:test';
import tls from 'node:tls';
import { closedWithin, handshake, listen, readAll, readHead, relayTcp, tcpServer, testBroker, testCert, tlsOutcome, within } from './helpers.js';

const PROXY = 3128;

async function proxyConn(socketPath: string): Promise<net.Socket> {
  return relayTcp(socketPath, '127.0.0.1', PROXY);
}

/** Parses a complete HTTP response the broker wrote (status, headers, body). */
function parseResponse(raw: Buffer) {
  const text = raw.toString('utf8');
  const i = text.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = text.slice(0, i).split('\r\n');
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  return { status: Number(statusLine!.split(' ')[1]), statusLine: statusLine!, headers, body: text.slice(i + 4) };
}

/** An HTTP server recording what it was sent. */
async function recordingServer() {
  const seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }> = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      res.end(`upstream got ${req.method} ${req.url}`);
    });
  });
  return { port: await listen(server), seen };
}

function request(sock: net.Socket, opts: http.RequestOptions, body?: string): Promise<{ status: number; body: string }> {
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request({ ...opts, createConnection: () => sock }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (b += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
    });
    req.on('error', reject);
    req.end(body);
  });
  return within(response, 'HTTP response');
}

describe('HTTP proxy: CONNECT', { timeout: 20_000 }, () => {
  it('an allowed host:port gets 200 and a working TLS tunnel; the event is kind proxy with the rule', async () => {
    const { key, cert } = testCert();
    const server = https.createServer({ key, cert }, (_req, res) => res.end('tunnelled'));
    const port = await listen(server);
    const b = await testBroker({ allow: [{ host: '*.test', port }], proxyPort: PROXY });
    const sock = await proxyConn(b.socketPath);
    sock.write(`CONNECT api.test:${port} HTTP/1.1\r\nHost: api.test:${port}\r\n\r\n`);
    assert.equal(await readHead(sock), 'HTTP/1.1 200 Connection Established\r\n\r\n');
    const t = tls.connect({ socket: sock, servername: 'api.test', ca: cert });
    await handshake(t);
    t.end('GET / HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n');
    assert.match((await readAll(t)).toString(), /\r\n\r\ntunnelled$/);
    const e = await b.event((e) => e.kind === 'proxy');
    assert.deepEqual([e.verdict, e.host, e.port, e.rule], ['allow', 'api.test', port, `*.test:${port}`]);
    assert.ok(e.bytes_out! > 200 && e.bytes_in! > 500, JSON.stringify(e));
  });

  it('a host:port not allowed gets a 403 that names the rule to add, and a deny event', async () => {
    const b = await testBroker({ allow: [{ host: 'api.test', port: 443 }], proxyPort: PROXY });
    const sock = await proxyConn(b.socketPath);
    sock.write('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    const r = parseResponse(await readAll(sock));
    assert.equal(r.statusLine, 'HTTP/1.1 403 Forbidden');
    assert.equal(r.headers['content-type'], 'text/plain');
    assert.equal(r.headers['connection'], 'close');
    assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body));
    assert.equal(
      r.body,
      'ward: egress to example.com:443 is not allowed by the policy (network.allow). To allow it, add "example.com:443" to network.allow.\n',
    );
    // Allowed host, other port: still no.
    const other = await proxyConn(b.socketPath);
    other.write('CONNECT api.test:8443 HTTP/1.1\r\n\r\n');
    assert.equal(parseResponse(await readAll(other)).status, 403);
    assert.deepEqual(
      b.events.map((e) => [e.kind, e.verdict, e.reason, e.host, e.port]),
      [
        ['proxy', 'deny', 'not-allowed', 'example.com', 443],
        ['proxy', 'deny', 'not-allowed', 'api.test', 8443],
      ],
    );
  });

  it('inside an allowed tunnel, a ClientHello for another name is cut (sni-mismatch)', async () => {
    const { key, cert } = testCert();
    let handshakes = 0;
    const server = https.createServer({ key, cert }, (_req, res) => res.end('x'));
    server.on('secureConnection', () => handshakes++);
    const port = await listen(server);
    const b = await testBroker({ allow: [{ host: 'api.test', port }], proxyPort: PROXY });
    const sock = await proxyConn(b.socketPath);
    sock.write(`CONNECT api.test:${port} HTTP/1.1\r\n\r\n`);
    await readHead(sock);
    const t = tls.connect({ socket: sock, servername: 'evil.test', ca: cert, checkServerIdentity: () => undefined });
    const outcome = await tlsOutcome(t);
    assert.notEqual(outcome, 'connected');
    const e = await b.event((e) => e.verdict === 'deny');
    assert.deepEqual([e.kind, e.reason, e.host], ['proxy', 'sni-mismatch', 'api.test']);
    assert.equal(handshakes, 0);
  });

  it('upstream failures are a 502 with the error code, and an upstream-error event', async () => {
    const dead = tcpServer(() => {});
    const port = await listen(dead);
    await new Promise<void>((r) => dead.close(() => r()));
    const b = await testBroker({
      allow: [
        { host: 'down.test', port },
        { host: 'nx.test', port },
      ],
      proxyPort: PROXY,
      resolve: async (h) => {
        if (h === 'nx.test') throw Object.assign(new Error('no such name'), { code: 'ENOTFOUND' });
        return '127.0.0.1';
      },
    });
    for (const [host, code] of [
      ['down.test', 'ECONNREFUSED'],
      ['nx.test', 'ENOTFOUND'],
    ] as const) {
      const sock = await proxyConn(b.socketPath);
      sock.write(`CONNECT ${host}:${port} HTTP/1.1\r\n\r\n`);
      const r = parseResponse(await readAll(sock));
      assert.equal(r.status, 502);
      assert.equal(r.body, `ward: could not reach ${host}:${port} (${code}).\n`);
      const e = await b.event((e) => e.host === host);
      assert.deepEqual([e.kind, e.verdict, e.reason], ['proxy', 'deny', `upstream-error: ${code}`]);
    }
  });
});

describe('HTTP proxy: absolute-form', { timeout: 20_000 }, () => {
  it('forwards an allowed GET in origin-form with Connection: close and without Proxy-* headers', async () => {
    const up = await recordingServer();
    const b = await testBroker({ allow: [{ host: 'web.test', port: up.port }], proxyPort: PROXY });
    const r = await request(await proxyConn(b.socketPath), {
      host: 'web.test',
      port: up.port,
      path: `http://web.test:${up.port}/path/x?q=1#frag`,
      headers: { 'Proxy-Connection': 'keep-alive', 'Proxy-Authorization': 'Basic dXNlcjpwYXNz', 'X-Keep': 'yes' },
    });
    assert.deepEqual(r, { status: 200, body: 'upstream got GET /path/x?q=1' });
    assert.equal(up.seen.length, 1);
    const h = up.seen[0]!.headers;
    assert.equal(h.connection, 'close');
    assert.equal(h.host, `web.test:${up.port}`);
    assert.equal(h['x-keep'], 'yes');
    assert.equal(h['proxy-connection'], undefined);
    assert.equal(h['proxy-authorization'], undefined);
    const e = await b.event((e) => e.kind === 'proxy');
    assert.deepEqual([e.verdict, e.host, e.port, e.rule], ['allow', 'web.test', up.port, `web.test:${up.port}`]);
  });

  it('forwards a POST body, whether it came with the head or after it', async () => {
    const up = await recordingServer();
    const b = await testBroker({ allow: [{ host: 'web.test', port: up.port }], proxyPort: PROXY });
    const sock = await proxyConn(b.socketPath);
    const body = 'a'.repeat(10) + 'b'.repeat(10);
    sock.write(`POST http://web.test:${up.port}/submit HTTP/1.1\r\nHost: web.test:${up.port}\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 10)}`);
    await new Promise((r) => setTimeout(r, 30));
    sock.write(body.slice(10));
    const r = parseResponse(await readAll(sock));
    assert.equal(r.status, 200);
    assert.deepEqual([up.seen[0]?.method, up.seen[0]?.url, up.seen[0]?.body], ['POST', '/submit', body]);
  });

  it('a Host header naming another host is a 403 (host-mismatch); a name not allowed is a 403; https:// is a 400', async () => {
    const up = await recordingServer();
    const b = await testBroker({ allow: [{ host: 'web.test', port: up.port }], proxyPort: PROXY });
    const s1 = await proxyConn(b.socketPath);
    s1.write(`GET http://web.test:${up.port}/ HTTP/1.1\r\nHost: evil.test\r\n\r\n`);
    assert.equal(parseResponse(await readAll(s1)).status, 403);
    const s2 = await proxyConn(b.socketPath);
    s2.write('GET http://evil.test/ HTTP/1.1\r\nHost: evil.test\r\n\r\n');
    const r2 = parseResponse(await readAll(s2));
    assert.equal(r2.status, 403);
    assert.match(r2.body, /add "evil\.test:80" to network\.allow/);
    const s3 = await proxyConn(b.socketPath);
    s3.write(`GET https://web.test:${up.port}/ HTTP/1.1\r\n\r\n`);
    assert.equal(parseResponse(await readAll(s3)).status, 400);
    const s4 = await proxyConn(b.socketPath);
    s4.write(`GET http://web.test:${up.port}@evil.test/ HTTP/1.1\r\n\r\n`);
    assert.equal(parseResponse(await readAll(s4)).status, 400);
    assert.equal(up.seen.length, 0);
    assert.deepEqual(
      b.events.map((e) => [e.verdict, e.reason, e.host]),
      [
        ['deny', 'host-mismatch', 'web.test'],
        ['deny', 'not-allowed', 'evil.test'],
        ['deny', 'malformed', undefined],
        ['deny', 'malformed', undefined],
      ],
    );
  });
});

describe('HTTP proxy: allow_local and bad requests', { timeout: 20_000 }, () => {
  it('reaches a listed loopback port (CONNECT and GET); an unlisted one is a 403 naming allow_local', async () => {
    const listed = await recordingServer();
    const other = await recordingServer();
    const b = await testBroker({ allowLocal: [listed.port], proxyPort: PROXY });
    const r = await request(await proxyConn(b.socketPath), { host: 'localhost', port: listed.port, path: `http://localhost:${listed.port}/dev` });
    assert.deepEqual(r, { status: 200, body: 'upstream got GET /dev' });

    const c = await proxyConn(b.socketPath);
    c.write(`CONNECT 127.0.0.1:${listed.port} HTTP/1.1\r\n\r\n`);
    await readHead(c);
    c.write('GET /tunnel HTTP/1.1\r\nHost: whatever\r\nConnection: close\r\n\r\n');
    assert.match((await readAll(c)).toString(), /upstream got GET \/tunnel$/);
    c.end(); // the server ended its side; the tunnel is over once the client ends too
    await b.event(() => b.events.filter((e) => e.verdict === 'allow').length === 2);

    const d = await proxyConn(b.socketPath);
    d.write(`CONNECT localhost:${other.port} HTTP/1.1\r\n\r\n`);
    const denied = parseResponse(await readAll(d));
    assert.equal(denied.status, 403);
    assert.equal(denied.body, `ward: egress to localhost:${other.port} is not allowed by the policy (network.allow_local). To allow it, add ${other.port} to network.allow_local.\n`);
    assert.equal(other.seen.length, 0);
    const allows = b.events.filter((e) => e.verdict === 'allow' && e.kind !== 'http');
    assert.deepEqual(
      allows.map((e) => e.rule),
      [`127.0.0.1:${listed.port}`, `127.0.0.1:${listed.port}`],
    );
    // The absolute-form GET has a record of its own (every plain-HTTP request is checked).
    const req = b.events.find((e) => e.kind === 'http');
    assert.equal(req?.method, 'GET');
    assert.equal(req?.path, `http://localhost:${listed.port}/dev`);
  });

  it('a malformed head is a 400; an oversized head is refused without waiting; the proxy keeps serving', async () => {
    const up = await recordingServer();
    const b = await testBroker({ allow: [{ host: 'web.test', port: up.port }], proxyPort: PROXY });
    const cases = [
      'NOT A REQUEST\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: web.test\r\n\r\n', // origin-form: not a proxy request
      `GET http://web.test:${up.port}/ HTTP/1.1\r\nX: a\rb\r\n\r\n`, // bare CR
      `GET http://web.test:${up.port}/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n`,
      'CONNECT web.test HTTP/1.1\r\n\r\n', // no port
    ];
    for (const c of cases) {
      const sock = await proxyConn(b.socketPath);
      sock.write(c);
      assert.equal(parseResponse(await readAll(sock)).status, 400, c);
    }
    const big = await proxyConn(b.socketPath);
    big.write(`GET http://web.test:${up.port}/ HTTP/1.1\r\n`);
    for (let i = 0; i < 70 && !big.destroyed; i++) big.write(`X-Pad-${i}: ${'p'.repeat(1000)}\r\n`);
    await closedWithin(big, 2000);
    assert.equal(up.seen.length, 0);
    assert.equal(b.events.filter((e) => e.reason === 'malformed').length, cases.length + 1);

    const r = await request(await proxyConn(b.socketPath), { host: 'web.test', port: up.port, path: `http://web.test:${up.port}/after` });
    assert.equal(r.body, 'upstream got GET /after');
  });
});
