/**
 * What went out is in the audit log, however the connection ends: a request whose body never
 * finished, a relay count that arrives while the sandbox holds every connection slot, a first
 * message that never completes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addressOf, listen, relay, tcpServer, testBroker, within } from './helpers.js';

describe('every request whose head went upstream is recorded', { timeout: 30_000 }, () => {
  for (const dial of [false, true]) {
    it(`a chunked body cut off before its last chunk: recorded with the bytes forwarded and a note (${dial ? 'relay can dial' : 'relay cannot dial'})`, async () => {
      let got = 0;
      // As servers do: a client's EOF in the middle of a body ends the exchange.
      const server = tcpServer((s) => s.on('data', (d: Buffer) => (got += d.length)).on('end', () => s.end()));
      const port = await listen(server);
      const b = await testBroker({ allow: [{ host: 'web.test', port }] });
      const ip = await addressOf(b, 'web.test');
      const sock = await relay(b.socketPath, `tcp ${ip} ${port}${dial ? ' dial' : ''}\n`);
      const head = `POST /unfinished-path?q=1 HTTP/1.1\r\nHost: web.test:${port}\r\nTransfer-Encoding: chunked\r\n\r\n`;
      sock.write(head);
      const chunk = `10\r\n${'A'.repeat(16)}\r\n`;
      for (let i = 0; i < 5; i++) {
        sock.write(chunk);
        await new Promise((r) => setTimeout(r, 20));
      }
      const sent = head.length + 5 * chunk.length;
      await within(
        new Promise<void>((r) => {
          const t = setInterval(() => got >= sent && (clearInterval(t), r()), 10);
        }),
        'the server receiving the head and chunks',
      );
      sock.end();
      const rec = await b.event((e) => e.kind === 'http');
      assert.equal(rec.verdict, 'allow');
      assert.equal(rec.method, 'POST');
      assert.equal(rec.path, '/unfinished-path');
      assert.equal(rec.bytes_out, sent);
      assert.match(rec.note ?? '', /closed before the request's body ended/);
      const conn = await b.event((e) => e.kind === 'connect');
      assert.equal(conn.bytes_out, sent);
      assert.ok(b.events.indexOf(rec) < b.events.indexOf(conn), 'the request before its connection');
    });
  }

  it('a Content-Length body cut off when the broker closes (end of the run): recorded too', async () => {
    const server = tcpServer(() => {});
    const port = await listen(server);
    const b = await testBroker({ allow: [{ host: 'web.test', port }] });
    const ip = await addressOf(b, 'web.test');
    const sock = await relay(b.socketPath, `tcp ${ip} ${port}\n`);
    const head = `PUT /up HTTP/1.1\r\nHost: web.test:${port}\r\nContent-Length: 1000\r\n\r\n`;
    sock.write(head + 'x'.repeat(10));
    await new Promise((r) => setTimeout(r, 200));
    await b.broker.close();
    const rec = b.events.find((e) => e.kind === 'http');
    assert.ok(rec, JSON.stringify(b.events));
    assert.equal(rec.bytes_out, head.length + 10);
    assert.match(rec.note ?? '', /closed before/);
  });
});
