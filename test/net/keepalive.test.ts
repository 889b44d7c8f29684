/**
 * Plain HTTP stays in the broker, request by request: on a kept-alive or pipelined connection
 * every request is checked, not just the first, because a server at an allowed name's address
 * may serve other sites too (virtual hosting), chosen by each request's Host. Real HTTP
 * servers on 127.0.0.1 stand in for the internet; the relay is the test's fake (both the one
 * that cannot dial, where the broker carries everything, and the one that can, where the broker
 * says "pipe" for plain HTTP).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { describe, it } from 'node:test';
import { addressOf, listen, readAll, relay, testBroker, within } from './helpers.js';

/** A server that records "host method url body-length" of each request it gets, and answers "ok url length". */
async function vhostServer() {
  const seen: string[] = [];
  const bodies: number[] = [];
  const server = http.createServer((req, res) => {
    let n = 0;
    req.on('data', (d: Buffer) => (n += d.length));
    req.on('end', () => {
      seen.push(`${req.headers.host} ${req.method} ${req.url} ${n}`);
      bodies.push(n);
      const body = `ok ${req.url} ${n}\n`;
      res.writeHead(200, { 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  const port = await listen(server as unknown as net.Server);
  return { port, seen, bodies, close: () => server.close() };
}

/** Reads until `re` matches what came so far (or the connection ends): the text. */
function readUntil(sock: net.Socket, re: RegExp, ms = 5000): Promise<string> {
  return within(
    new Promise<string>((resolve) => {
      let text = '';
      const check = () => {
        if (re.test(text)) resolve(text);
      };
      sock.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        check();
      });
      sock.on('close', () => resolve(text));
    }),
    `a match for ${re}`,
    ms,
  );
}

const req = (host: string, path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`;

for (const dial of [false, true]) {
  const via = dial ? 'a relay that can dial (the broker says "pipe")' : 'a relay that cannot dial';
  describe(`plain HTTP, every request checked: ${via}`, { timeout: 30_000 }, () => {
    const open = async (extraAllow: string[] = []) => {
      const up = await vhostServer();
      const b = await testBroker({ allow: [{ host: 'web.test', port: up.port }, ...extraAllow.map((h) => ({ host: h, port: up.port }))] });
      const ip = await addressOf(b, 'web.test');
      const sock = await relay(b.socketPath, `tcp ${ip} ${up.port}${dial ? ' dial' : ''}\n`);
      return { up, b, sock, host: `web.test:${up.port}` };
    };
    /** Everything the client gets until the broker ends; to a relay that can dial, it says "pipe" first. */
    const answer = async (sock: net.Socket) => {
      const all = (await readAll(sock)).toString('latin1');
      sock.end(); // the relay closes once the client has what it was sent
      return dial ? all.replace(/^pipe\n/, '') : all;
    };

    it('two requests on one kept-alive connection: the second, for another Host, is refused with a 403 naming the rule, recorded, the connection closed', async () => {
      const { up, b, sock, host } = await open();
      sock.write(req(host, '/first'));
      await readUntil(sock, /ok \/first 0\n/);
      sock.write(req(`evil.test:${up.port}`, '/second'));
      const rest = await answer(sock);
      assert.match(rest, /HTTP\/1\.1 403 Forbidden/);
      assert.match(rest, new RegExp(`add "evil\\.test:${up.port}" to network\\.allow`));
      assert.deepEqual(up.seen, [`${host} GET /first 0`], 'the refused request never reached the server');
      const denied = await b.event((e) => e.kind === 'http' && e.verdict === 'deny');
      assert.equal(denied.reason, 'host-mismatch');
      assert.equal(denied.path, '/second');
      assert.equal(denied.method, 'GET');
      const allowed = b.events.filter((e) => e.kind === 'http' && e.verdict === 'allow');
      assert.deepEqual(allowed.map((e) => [e.path, e.bytes_out]), [['/first', Buffer.byteLength(req(host, '/first'))]]);
      const conn = await b.event((e) => e.kind === 'connect');
      assert.equal(conn.verdict, 'allow');
      assert.match(conn.note ?? '', /a later one was refused \(host-mismatch\)/);
      up.close();
    });

    it('a refused request for another allowed name says to open a new connection (one connection, one server)', async () => {
      const { up, sock, host } = await open(['other.test']);
      sock.write(req(host, '/a') + req(`other.test:${up.port}`, '/b'));
      const all = await answer(sock);
      assert.match(all, /ok \/a 0\n[\s\S]*HTTP\/1\.1 403 [\s\S]*Open a new connection to other\.test/);
      assert.deepEqual(up.seen, [`${host} GET /a 0`]);
      up.close();
    });

    it('pipelined requests (one write) are each checked, forwarded and recorded', async () => {
      const { up, b, sock, host } = await open();
      sock.write(req(host, '/1') + req(host, '/2') + req(host, '/3'));
      const text = await readUntil(sock, /ok \/3 0\n/);
      if (dial) assert.ok(text.startsWith('pipe\nHTTP/1.1 200'), text);
      assert.match(text, /ok \/1 0\n[\s\S]*ok \/2 0\n[\s\S]*ok \/3 0\n/);
      assert.deepEqual(up.seen, [`${host} GET /1 0`, `${host} GET /2 0`, `${host} GET /3 0`]);
      await b.event(() => b.events.filter((e) => e.kind === 'http').length === 3);
      assert.deepEqual(b.events.filter((e) => e.kind === 'http').map((e) => `${e.verdict} ${e.path}`), ['allow /1', 'allow /2', 'allow /3']);
      sock.destroy();
      up.close();
    });

    it('pipelined: the answers to the allowed requests come first, then the 403; nothing after the refused one is forwarded', async () => {
      const { up, sock, host } = await open();
      sock.write(req(host, '/1') + req('evil.test', '/2') + req(host, '/3'));
      const all = await answer(sock);
      assert.match(all, /^HTTP\/1\.1 200[\s\S]*ok \/1 0\n[\s\S]*HTTP\/1\.1 403/);
      assert.doesNotMatch(all, /ok \/3/);
      assert.deepEqual(up.seen, [`${host} GET /1 0`]);
      up.close();
    });

    it('a chunked body, then a second request: the body is delimited as the server reads it; the next head is checked', async () => {
      const { up, b, sock, host } = await open();
      // The chunked body holds text that looks like a request for evil.test: it is body, not a head.
      const inner = `GET /smuggled HTTP/1.1\r\nHost: evil.test\r\n\r\n`;
      const chunked = `POST /up HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n${inner.length.toString(16)}\r\n${inner}\r\n0\r\nX-Trailer: t\r\n\r\n`;
      sock.write(chunked + req(host, '/after'));
      await readUntil(sock, /ok \/after 0\n/);
      assert.deepEqual(up.seen, [`${host} POST /up ${5 + inner.length}`, `${host} GET /after 0`]);
      const posted = b.events.find((e) => e.kind === 'http' && e.method === 'POST');
      assert.equal(posted?.bytes_out, Buffer.byteLength(chunked));
      sock.write(req('evil.test', '/no'));
      const rest = await answer(sock);
      assert.match(rest, /403/);
      assert.equal(up.seen.length, 2);
      up.close();
    });

    it('request smuggling shapes are refused (400), first or later: Content-Length with Transfer-Encoding, a bad chunk line, "gzip, chunked"', async () => {
      const shapes = [
        `POST / HTTP/1.1\r\nHost: HOST\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
        `POST / HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n`, // bare LF after the size
        `POST / HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`,
        `POST / HTTP/1.1\r\nHost: HOST\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab`,
      ];
      for (const later of [false, true]) {
        for (const shape of shapes) {
          const { up, b, sock, host } = await open();
          const bad = shape.replace('HOST', host);
          sock.write((later ? req(host, '/ok') : '') + bad + req('evil.test', '/after'));
          const all = await answer(sock);
          assert.match(all, /HTTP\/1\.1 400 Bad Request/, `${JSON.stringify(bad)}: ${all}`);
          assert.deepEqual(up.seen, later ? [`${host} GET /ok 0`] : [], JSON.stringify(bad));
          assert.ok(b.events.some((e) => e.verdict === 'deny'), JSON.stringify(b.events));
          up.close();
        }
      }
    });

    it('Upgrade (plain ws://) and CONNECT inside the stream are refused with a 400 that says why', async () => {
      for (const r of [`GET /ws HTTP/1.1\r\nHost: HOST\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`, `CONNECT evil.test:80 HTTP/1.1\r\nHost: HOST\r\n\r\n`]) {
        const { up, sock, host } = await open();
        sock.write(req(host, '/ok') + r.replace('HOST', host));
        const all = await answer(sock);
        assert.match(all, /ok \/ok 0\n[\s\S]*HTTP\/1\.1 400[\s\S]*(Upgrade|CONNECT)/);
        assert.deepEqual(up.seen, [`${host} GET /ok 0`]);
        up.close();
      }
    });

    it('an absolute-form target naming another host is refused even with the right Host header', async () => {
      const { up, sock, host } = await open();
      sock.write(req(host, '/ok') + `GET http://evil.test/ HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      const all = await answer(sock);
      assert.match(all, /403/);
      assert.deepEqual(up.seen, [`${host} GET /ok 0`]);
      up.close();
    });

    it('a large body passes whole, and every count is exact', async () => {
      const { up, b, sock, host } = await open();
      const size = 8 * 1024 * 1024 + 17;
      const head = `PUT /big HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${size}\r\n\r\n`;
      sock.write(head);
      const body = Buffer.alloc(size, 0x61);
      sock.write(body);
      const second = req(host, '/after');
      sock.write(second);
      await readUntil(sock, /ok \/after 0\n/, 20_000);
      assert.deepEqual(up.seen, [`${host} PUT /big ${size}`, `${host} GET /after 0`]);
      const recs = b.events.filter((e) => e.kind === 'http');
      assert.deepEqual(recs.map((e) => e.bytes_out), [Buffer.byteLength(head) + size, Buffer.byteLength(second)]);
      sock.end();
      const conn = await b.event((e) => e.kind === 'connect');
      assert.equal(conn.bytes_out, Buffer.byteLength(head) + size + Buffer.byteLength(second));
      up.close();
    });
  });
}

describe('the proxy (absolute-form): every request on the client connection is checked', { timeout: 20_000 }, () => {
  it('a second request on the same proxy connection for a host not allowed is a 403 naming the rule; the first is answered', async () => {
    const up = await vhostServer();
    const b = await testBroker({ allow: [{ host: 'web.test', port: up.port }] });
    const sock = await relay(b.socketPath, 'tcp 127.0.0.1 3128\n');
    sock.write(`GET http://web.test:${up.port}/one HTTP/1.1\r\nHost: web.test:${up.port}\r\n\r\nGET http://evil.test:${up.port}/two HTTP/1.1\r\nHost: evil.test:${up.port}\r\n\r\n`);
    const all = (await readAll(sock)).toString('latin1');
    sock.end();
    assert.match(all, /ok \/one 0\n[\s\S]*HTTP\/1\.1 403[\s\S]*add "evil\.test:\d+" to network\.allow/);
    assert.deepEqual(up.seen, [`web.test:${up.port} GET /one 0`]);
    const denied = await b.event((e) => e.kind === 'http' && e.verdict === 'deny');
    assert.equal(denied.reason, 'not-allowed');
    up.close();
  });
});
