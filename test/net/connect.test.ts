/**
 * Raw TCP through the broker, as a client that ignores proxy variables makes
 * it: resolve through the broker's DNS, dial the synthetic address, the relay
 * hands the connection over. Real servers on 127.0.0.1 stand in for the
 * internet (the test resolver maps every name there).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import { describe, it } from 'node:test';
import tls from 'node:tls';
import { addressOf, closedWithin, firstData, handshake, listen, readAll, relayTcp, tcpServer, testBroker, testCert, tlsOutcome, within } from './helpers.js';

/** An HTTP server answering "hello <Host>" that counts requests and records its sockets' byte counts. */
async function webServer() {
  const seen = { requests: 0, hosts: [] as string[], bytesRead: 0, bytesWritten: 0 };
  const server = http.createServer((req, res) => {
    seen.requests++;
    seen.hosts.push(req.headers.host ?? '');
    res.end(`hello ${req.headers.host}`);
  });
  server.on('connection', (s: net.Socket) =>
    s.on('close', () => {
      seen.bytesRead += s.bytesRead;
      seen.bytesWritten += s.bytesWritten;
    }),
  );
  const port = await listen(server);
  return { port, seen, server };
}


function get(sock: net.Socket, host: string, port: number, path = '/'): Promise<{ status: number; body: string }> {
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    // No agent: with one, Node ignores createConnection. Without one it sends Connection: close.
    const req = http.get({ createConnection: () => sock, host, port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
  return within(response, 'HTTP response');
}

describe('TCP to a synthetic address', { timeout: 20_000 }, () => {
  it('plain HTTP to an allowed name works; the event counts the bytes the server saw, once the connection ends', async () => {
    const web = await webServer();
    const b = await testBroker({ allow: [{ host: 'web.test', port: web.port }] });
    const ip = await addressOf(b, 'web.test');
    const sock = await relayTcp(b.socketPath, ip, web.port);
    const r = await get(sock, 'web.test', web.port);
    assert.deepEqual(r, { status: 200, body: `hello web.test:${web.port}` });
    const e = await b.event((e) => e.kind === 'connect');
    assert.equal(web.seen.requests, 1);
    assert.deepEqual(
      { ...e, duration_ms: typeof e.duration_ms },
      {
        type: 'net',
        kind: 'connect',
        verdict: 'allow',
        host: 'web.test',
        port: web.port,
        rule: `web.test:${web.port}`,
        bytes_out: web.seen.bytesRead,
        bytes_in: web.seen.bytesWritten,
        duration_ms: 'number',
      },
    );
    assert.ok(e.bytes_out! > 30 && e.bytes_in! > 30);
    assert.equal(b.events.filter((x) => x.kind === 'connect').length, 1);
  });

  it('an HTTP request naming another Host is refused before a byte reaches the server', async () => {
    const web = await webServer();
    const b = await testBroker({ allow: [{ host: 'web.test', port: web.port }] });
    const ip = await addressOf(b, 'web.test');
    const attempts = [
      ['GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n'],
      // cut into pieces, so no single chunk shows the Host
      ['GE', 'T / HTTP/1.1\r\nHo', 'st: evil.test\r\n\r\n'],
      // an empty line first: servers skip it, so must the check
      ['\r\nGET / HTTP/1.1\r\nHost: evil.test\r\n\r\n'],
      // the right Host, but an absolute target the server would prefer
      ['GET http://evil.test/ HTTP/1.1\r\nHost: web.test\r\n\r\n'],
      // two Hosts
      ['GET / HTTP/1.1\r\nHost: web.test\r\nHost: evil.test\r\n\r\n'],
    ];
    for (const chunks of attempts) {
      const sock = await relayTcp(b.socketPath, ip, web.port);
      for (const c of chunks) {
        sock.write(c);
        await new Promise((r) => setTimeout(r, 20));
      }
      await closedWithin(sock);
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(web.seen.requests, 0);
    assert.equal(web.seen.bytesRead, 0);
    const denials = b.events.filter((e) => e.kind === 'connect');
    assert.deepEqual(
      denials.map((e) => [e.verdict, e.reason, e.host]),
      attempts.map(() => ['deny', 'host-mismatch', 'web.test']),
    );
  });

  it('HTTPS with the right SNI works; another SNI (domain fronting) is cut before the server sees a hello', async () => {
    const { key, cert } = testCert();
    let handshakes = 0;
    const server = https.createServer({ key, cert }, (_req, res) => res.end('secret-ok'));
    server.on('secureConnection', () => handshakes++);
    const port = await listen(server);
    const b = await testBroker({ allow: [{ host: 'api.test', port }] });
    const ip = await addressOf(b, 'api.test');

    const good = tls.connect({ socket: await relayTcp(b.socketPath, ip, port), servername: 'api.test', ca: cert });
    await handshake(good);
    good.end('GET / HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n');
    const body = (await readAll(good)).toString();
    assert.match(body, /^HTTP\/1\.1 200/);
    assert.match(body, /secret-ok$/);
    const ok = await b.event((e) => e.kind === 'connect' && e.verdict === 'allow');
    assert.equal(ok.rule, `api.test:${port}`);

    const evil = tls.connect({ socket: await relayTcp(b.socketPath, ip, port), servername: 'evil.test', ca: cert, checkServerIdentity: () => undefined });
    const outcome = await tlsOutcome(evil);
    assert.notEqual(outcome, 'connected');
    const denied = await b.event((e) => e.reason === 'sni-mismatch');
    assert.deepEqual([denied.kind, denied.host, denied.port, denied.verdict], ['connect', 'api.test', port, 'deny']);
    assert.equal(handshakes, 1);
  });

  it('a ClientHello for another name sent in small pieces is still refused', async () => {
    // Capture a real hello for evil.test, then replay it 40 bytes at a time.
    let hello!: Buffer;
    const capture = tcpServer((s) => {
      let buf = Buffer.alloc(0);
      s.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
          hello = buf;
          s.destroy();
        }
      });
    });
    const cport = await listen(capture);
    const t = tls.connect({ host: '127.0.0.1', port: cport, servername: 'evil.test', rejectUnauthorized: false });
    t.on('error', () => {});
    await new Promise((r) => t.once('close', r));

    let upstreamBytes = 0;
    const sink = tcpServer((s) => s.on('data', (c: Buffer) => (upstreamBytes += c.length)));
    const port = await listen(sink);
    const b = await testBroker({ allow: [{ host: 'api.test', port }] });
    const sock = await relayTcp(b.socketPath, await addressOf(b, 'api.test'), port);
    for (let i = 0; i < hello.length && !sock.destroyed; i += 40) {
      sock.write(hello.subarray(i, i + 40));
      await new Promise((r) => setTimeout(r, 5));
    }
    await closedWithin(sock);
    await b.event((e) => e.reason === 'sni-mismatch');
    assert.equal(upstreamBytes, 0);
  });

  it('a server that speaks first (SSH-like) is heard at once; half-close passes both ways', async () => {
    const server = tcpServer((s) => {
      s.write('SSH-2.0-FakeServer\r\n');
      let got = '';
      s.on('data', (c: Buffer) => (got += c.toString()));
      // Answers only after the client half-closes: the broker must pass the
      // client's FIN on, and still carry the answer back.
      s.on('end', () => s.end(`bye after ${JSON.stringify(got)}\n`));
    });
    const port = await listen(server);
    const b = await testBroker({ allow: [{ host: 'git.test', port }] });
    const sock = await relayTcp(b.socketPath, await addressOf(b, 'git.test'), port);
    assert.equal((await firstData(sock)).toString(), 'SSH-2.0-FakeServer\r\n');
    sock.end('SSH-2.0-Client\r\n');
    const rest = (await readAll(sock)).toString();
    assert.equal(rest, 'bye after "SSH-2.0-Client\\r\\n"\n');
    const e = await b.event((e) => e.kind === 'connect');
    assert.equal(e.verdict, 'allow');
    assert.equal(e.bytes_out, 'SSH-2.0-Client\r\n'.length);
    assert.equal(e.bytes_in, 'SSH-2.0-FakeServer\r\n'.length + rest.length);

    // A client that half-closes before sending anything (nothing to inspect):
    // the server must still see the end, and its answer must still come back.
    const quiet = await relayTcp(b.socketPath, await addressOf(b, 'git.test'), port);
    quiet.end();
    assert.equal((await readAll(quiet)).toString(), 'SSH-2.0-FakeServer\r\nbye after ""\n');
  });

  it('a port not allowed for the name, and an address never handed out, are closed at once', async () => {
    const web = await webServer();
    const b = await testBroker({ allow: [{ host: 'web.test', port: web.port }] });
    const ip = await addressOf(b, 'web.test');
    const started = Date.now();
    await closedWithin(await relayTcp(b.socketPath, ip, web.port + 1 > 65535 ? 1 : web.port + 1), 1000);
    await closedWithin(await relayTcp(b.socketPath, '127.100.9.9', web.port), 1000);
    await closedWithin(await relayTcp(b.socketPath, '10.0.0.1', 443), 1000);
    assert.ok(Date.now() - started < 1000);
    assert.equal(web.seen.requests, 0);
    const kinds = b.events.filter((e) => e.kind === 'connect').map((e) => [e.verdict, e.reason, e.host]);
    assert.deepEqual(kinds, [
      ['deny', 'not-allowed', 'web.test'],
      ['deny', 'unknown-destination', '127.100.9.9'],
      ['deny', 'unknown-destination', '10.0.0.1'],
    ]);
  });

  it('upstream failures close the connection with an upstream-error event', async () => {
    const dead = tcpServer(() => {});
    const port = await listen(dead);
    await new Promise<void>((r) => dead.close(() => r())); // nothing listens there now
    const b = await testBroker({
      allow: [
        { host: 'down.test', port },
        { host: 'nx.test', port },
      ],
      resolve: async (h) => {
        if (h === 'nx.test') throw Object.assign(new Error('nope'), { code: 'ENOTFOUND' });
        return '127.0.0.1';
      },
    });
    await closedWithin(await relayTcp(b.socketPath, await addressOf(b, 'down.test'), port));
    await closedWithin(await relayTcp(b.socketPath, await addressOf(b, 'nx.test'), port));
    await b.event((e) => e.reason === 'upstream-error: ECONNREFUSED' && e.host === 'down.test');
    await b.event((e) => e.reason === 'upstream-error: ENOTFOUND' && e.host === 'nx.test');
  });

  it('the default resolver refuses a name that resolves to loopback (allow_local is the only way there)', async () => {
    const web = await webServer();
    const b = await testBroker({ allow: [{ host: 'localhost', port: web.port }], resolve: undefined });
    const sock = await relayTcp(b.socketPath, await addressOf(b, 'localhost'), web.port);
    await closedWithin(sock);
    await b.event((e) => e.reason === 'upstream-error: EBLOCKED');
    assert.equal(web.seen.requests, 0);
  });
});

describe('allow_local', { timeout: 20_000 }, () => {
  it('reaches a listed port on the host loopback without inspection; an unlisted one is closed at once', async () => {
    const listed = await webServer();
    const other = await webServer();
    const b = await testBroker({ allowLocal: [listed.port] });
    const sock = await relayTcp(b.socketPath, '127.0.0.1', listed.port);
    // Any Host is fine here: it is the user's own machine, there is nothing to front.
    const r = await get(sock, 'devserver.local', listed.port);
    assert.equal(r.status, 200);
    const e = await b.event((e) => e.kind === 'connect' && e.verdict === 'allow');
    assert.deepEqual([e.host, e.port, e.rule], ['127.0.0.1', listed.port, `127.0.0.1:${listed.port}`]);

    await closedWithin(await relayTcp(b.socketPath, '127.0.0.1', other.port), 1000);
    const d = await b.event((e) => e.verdict === 'deny');
    assert.deepEqual([d.kind, d.host, d.port, d.reason], ['connect', '127.0.0.1', other.port, 'not-allowed']);
    assert.equal(other.seen.requests, 0);
  });
});
