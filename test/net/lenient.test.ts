/**
 * What a lenient server reads, the broker must read too. The upstream here is a stand-in for
 * Python's http.server (lenientServer: the request line split on any whitespace, a body on GET
 * left unread); the relay is the test's fake, both the one that cannot dial and the one that
 * can (for which the broker must say "pipe", or refuse, never "pass", for anything HTTP).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { describe, it } from 'node:test';
import { addressOf, lenientServer, listen, readAll, relay, testBroker, within } from './helpers.js';

/** Everything the broker sends until it ends (the fake relay then closes its side, as the real one does). */
async function answer(sock: net.Socket): Promise<string> {
  const all = (await readAll(sock)).toString('latin1');
  sock.end();
  return all;
}

const SHAPES = [
  'GET\t/tab HTTP/1.1\r\nHost: evil.test\r\n\r\n',
  ' GET /lead HTTP/1.1\r\nHost: evil.test\r\n\r\n',
  '\t\r\nGET /tab-line HTTP/1.1\r\nHost: evil.test\r\n\r\n',
  'GET  /two-spaces HTTP/1.1\r\nHost: evil.test\r\n\r\n',
  'GET\x0b/vt HTTP/1.1\r\nHost: evil.test\r\n\r\n',
  'GET\r/cr HTTP/1.1\r\nHost: evil.test\r\n\r\n',
];

describe('a request line a lenient server accepts is HTTP to the broker too', { timeout: 30_000 }, () => {
  for (const dial of [false, true]) {
    it(`raw connection (${dial ? 'a relay that can dial' : 'a relay that cannot'}): a tab, leading whitespace, a run of spaces, a CR: 400, nothing reaches the server`, async () => {
      const up = await lenientServer();
      const b = await testBroker({ allow: [{ host: 'web.test', port: up.port }] });
      const ip = await addressOf(b, 'web.test');
      for (const shape of SHAPES) {
        const sock = await relay(b.socketPath, `tcp ${ip} ${up.port}${dial ? ' dial' : ''}\n`);
        sock.write(shape);
        const all = await within(answer(sock), JSON.stringify(shape));
        assert.doesNotMatch(all, /^dial|\npass/, `${JSON.stringify(shape)}: the relay must not carry it: ${JSON.stringify(all)}`);
        assert.match(all, dial ? /^pipe\nHTTP\/1\.1 400 Bad Request/ : /^HTTP\/1\.1 400 Bad Request/, JSON.stringify(shape));
      }
      assert.equal(up.raw(), '', 'the server received nothing');
      assert.deepEqual(up.seen, []);
      const refused = b.events.filter((e) => e.kind === 'connect' && e.verdict === 'deny');
      assert.equal(refused.length, SHAPES.length, JSON.stringify(b.events));
      assert.ok(refused.every((e) => e.reason === 'malformed'));
    });
  }

  it('inside a CONNECT tunnel the relay would carry: refused as http-in-tunnel, never passed', async () => {
    const up = await lenientServer();
    const b = await testBroker({ allow: [{ host: 'web.test', port: up.port }] });
    for (const shape of SHAPES) {
      const sock = await relay(b.socketPath, 'tcp 127.0.0.1 3128 dial\n');
      sock.write(`CONNECT web.test:${up.port} HTTP/1.1\r\nHost: web.test:${up.port}\r\n\r\n${shape}`);
      const all = await within(answer(sock), JSON.stringify(shape));
      assert.match(all, /^dial \d+ 127\.0\.0\.1 \d+ connect web\.test\n$/, JSON.stringify(all));
    }
    const refused = b.events.filter((e) => e.kind === 'proxy' && e.verdict === 'deny');
    assert.equal(refused.length, SHAPES.length, JSON.stringify(b.events));
    assert.ok(refused.every((e) => e.reason === 'http-in-tunnel'), JSON.stringify(refused));
  });

  it('inside a CONNECT tunnel the broker carries (a relay that cannot dial): 400, nothing reaches the server', async () => {
    const up = await lenientServer();
    const b = await testBroker({ allow: [{ host: 'web.test', port: up.port }] });
    for (const shape of SHAPES) {
      const sock = await relay(b.socketPath, 'tcp 127.0.0.1 3128\n');
      sock.write(`CONNECT web.test:${up.port} HTTP/1.1\r\nHost: web.test:${up.port}\r\n\r\n${shape}`);
      const all = await within(answer(sock), JSON.stringify(shape));
      assert.match(all, /^HTTP\/1\.1 200 Connection Established\r\n\r\nHTTP\/1\.1 400 Bad Request/, JSON.stringify(all));
    }
    assert.equal(up.raw(), '');
  });

  it('non-HTTP first bytes are still decided at once (TLS, SSH, binary): passed to the relay without waiting for more', async () => {
    const b = await testBroker({ allow: [{ host: 'web.test', port: 8080 }], resolve: async () => '192.0.2.10' });
    const ip = await addressOf(b, 'web.test');
    for (const first of ['SSH-2', '\x00\x01', 'get']) {
      const sock = await relay(b.socketPath, `tcp ${ip} 8080 dial\n`);
      let text = '';
      sock.on('data', (d: Buffer) => (text += d.toString('latin1')));
      sock.write(Buffer.from(first, 'latin1'));
      await within(
        new Promise<void>((r) => {
          const t = setInterval(() => /\npass 0\n/.test(text) && (clearInterval(t), r()), 10);
        }),
        `pass for ${JSON.stringify(first)}`,
        900, // under FIRST_BYTES_WAIT_MS: decided by the bytes, not by the wait
      );
      sock.destroy();
    }
  });
});

describe('a body on GET (and HEAD, DELETE, OPTIONS, TRACE) ends the connection', { timeout: 30_000 }, () => {
  const inner = 'GET /smuggled HTTP/1.1\r\nHost: evil.test\r\n\r\n';
  for (const dial of [false, true]) {
    it(`the body is not read as a request by a server that ignores it; a request after it gets a 403 (${dial ? 'relay can dial' : 'relay cannot dial'})`, async () => {
      const up = await lenientServer();
      const b = await testBroker({ allow: [{ host: 'web.test', port: up.port }] });
      const ip = await addressOf(b, 'web.test');
      const host = `web.test:${up.port}`;
      const sock = await relay(b.socketPath, `tcp ${ip} ${up.port}${dial ? ' dial' : ''}\n`);
      const first = `GET /first HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\nContent-Length: ${inner.length}\r\n\r\n${inner}`;
      sock.write(first + `GET /after HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      const all = await within(answer(sock), 'the answers');
      assert.deepEqual(up.seen, [`${host} GET /first`], 'the server served /first only: the body was not a request to it, /after was never forwarded');
      assert.match(up.raw(), /^GET \/first HTTP\/1\.1\r\nHost: [^\r]+\r\nContent-Length: \d+\r\nConnection: close\r\n\r\nGET \/smuggled/);
      assert.match(all, /served \/first\n[\s\S]*HTTP\/1\.1 403 Forbidden[\s\S]*new connection/);
      const reqs = b.events.filter((e) => e.kind === 'http');
      assert.deepEqual(reqs.map((e) => `${e.verdict} ${e.path} ${e.reason ?? ''}`), ['allow /first ', 'deny /after after-ignorable-body']);
      assert.match(reqs[0]!.note ?? '', /Connection: close/);
    });
  }

  it('a server that reads GET bodies (Elasticsearch-style _search) gets the request and its body, and answers', async () => {
    const got: string[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        got.push(`${req.method} ${req.url} ${body} ${req.headers.connection}`);
        res.end(`hits for ${body}\n`);
      });
    });
    const port = await listen(server as unknown as net.Server);
    const b = await testBroker({ allow: [{ host: 'es.test', port }] });
    const ip = await addressOf(b, 'es.test');
    for (const chunked of [false, true]) {
      const sock = await relay(b.socketPath, `tcp ${ip} ${port}\n`);
      const q = '{"query":{"match_all":{}}}';
      const bodyPart = chunked ? `Transfer-Encoding: chunked\r\n\r\n${q.length.toString(16)}\r\n${q}\r\n0\r\n\r\n` : `Content-Length: ${q.length}\r\n\r\n${q}`;
      sock.write(`GET /idx/_search HTTP/1.1\r\nHost: es.test:${port}\r\nContent-Type: application/json\r\n${bodyPart}`);
      const all = await within(answer(sock), 'the answer');
      assert.match(all, /^HTTP\/1\.1 200 OK[\s\S]*hits for \{"query"/);
    }
    assert.deepEqual(got, ['GET /idx/_search {"query":{"match_all":{}}} close', 'GET /idx/_search {"query":{"match_all":{}}} close']);
    server.close();
  });
});
