/**
 * The broker's side of "dial": a relay that can dial (header "tcp IP PORT dial") is told where
 * to connect and when the client's bytes may go there, and the broker writes the record from
 * the relay's count. The relay here is a fake written in the test (the C one is tested against
 * a fake broker in test/launcher/relay.test.ts, and both together in test/sandbox/egress.test.ts).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { addressOf, captureHello, listen, readAll, refragment, relay, type TestBroker, testBroker, within } from './helpers.js';


/** Collects what the broker says to the relay; `line(n)` resolves with its n-th line (0-based). */
function lines(sock: net.Socket) {
  let text = '';
  const waiters: Array<() => void> = [];
  sock.on('data', (d: Buffer) => {
    text += d.toString('latin1');
    for (const w of waiters.splice(0)) w();
  });
  // The fake relay half-closes like the real one: the broker's close shows as 'end'.
  const closed = new Promise<void>((r) => {
    sock.once('end', () => r());
    sock.once('close', () => r());
  });
  return {
    all: () => text,
    closed,
    line: (n: number) =>
      within(
        new Promise<string>((resolve) => {
          const check = () => {
            const parts = text.split('\n');
            if (parts.length > n + 1) resolve(parts[n]!);
            else waiters.push(check);
          };
          check();
        }),
        `line ${n} from the broker (so far ${JSON.stringify(text)})`,
      ),
  };
}

/** A TLS ClientHello for `servername`, as Node's tls writes it. */
function clientHello(servername: string): Promise<Buffer> {
  return captureHello({ servername });
}

function done(b: TestBroker, id: string, up: number, down: number, err = '-'): Promise<void> {
  return relay(b.socketPath, `done ${id} ${up} ${down} ${err}\n`).then((s) => {
    s.end();
  });
}

describe('dial: the relay carries allowed connections', { timeout: 20_000 }, () => {
  it('raw connection, non-HTTP first bytes (SSH-like): dial once they show, pass at once; the record has the relay\'s counts', async () => {
    const b = await testBroker({ allow: [{ host: 'web.test', port: 8080 }], resolve: async () => '192.0.2.10' });
    const ip = await addressOf(b, 'web.test');
    const sock = await relay(b.socketPath, `tcp ${ip} 8080 dial\n`);
    const said = lines(sock);
    sock.write('SSH-2.0-client\r\n');
    const dial = await said.line(0);
    const m = /^dial (\d+) 192\.0\.2\.10 8080$/.exec(dial);
    assert.ok(m, dial);
    assert.equal(await said.line(1), 'pass 0');
    await done(b, m[1]!, 123, 4567);
    sock.end();
    const e = await b.event((x) => x.kind === 'connect' && x.verdict === 'allow');
    assert.equal(e.host, 'web.test');
    assert.equal(e.rule, 'web.test:8080');
    assert.equal(e.bytes_out, 123);
    assert.equal(e.bytes_in, 4567);
    assert.equal(e.note, undefined);
  });

  it('raw connection, plain HTTP: the broker says "pipe" and carries it (every request is checked), nothing is dialed', async () => {
    const up = net.createServer((s) => s.on('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok')));
    const port = await listen(up);
    const b = await testBroker({ allow: [{ host: 'web.test', port }] });
    const ip = await addressOf(b, 'web.test');
    const sock = await relay(b.socketPath, `tcp ${ip} ${port} dial\n`);
    // Half a request head: the broker waits for the rest before it says who carries it.
    sock.write('GET / HTTP/1.1\r\nHo');
    await new Promise((r) => setTimeout(r, 100));
    sock.write(`st: web.test:${port}\r\n\r\n`);
    const all = (await readAll(sock)).toString('latin1');
    assert.match(all, /^pipe\nHTTP\/1\.1 200 OK\r\n/);
    assert.doesNotMatch(all, /dial|pass/);
    up.close();
  });

  it('a silent client (server-first protocol) is dialed after a short wait; HTTP that comes after that is refused (late-http)', async () => {
    const b = await testBroker({ allow: [{ host: 'web.test', port: 8080 }], resolve: async () => '192.0.2.10' });
    const ip = await addressOf(b, 'web.test');
    const sock = await relay(b.socketPath, `tcp ${ip} 8080 dial\n`);
    const said = lines(sock);
    assert.match(await said.line(0), /^dial \d+ 192\.0\.2\.10 8080$/);
    sock.write('GET / HTTP/1.1\r\nHost: web.test\r\n\r\n');
    await within(said.closed, 'the broker closing the connection');
    assert.doesNotMatch(said.all(), /pass/);
    const e = await b.event((x) => x.kind === 'connect' && x.verdict === 'deny');
    assert.equal(e.reason, 'late-http');
  });

  it('plain HTTP inside a dialed CONNECT tunnel is refused (http-in-tunnel): only its first request could be checked', async () => {
    const b = await testBroker({ allow: [{ host: 'web.test', port: 80 }] });
    const sock = await relay(b.socketPath, 'tcp 127.0.0.1 3128 dial\n');
    const said = lines(sock);
    sock.write('CONNECT web.test:80 HTTP/1.1\r\nHost: web.test:80\r\n\r\n');
    assert.match(await said.line(0), /^dial \d+ 127\.0\.0\.1 80 connect web\.test$/);
    sock.write('GET / HTTP/1.1\r\nHost: web.test\r\n\r\n');
    await within(said.closed, 'the broker closing the connection');
    assert.doesNotMatch(said.all(), /pass/);
    const e = await b.event((x) => x.kind === 'proxy' && x.verdict === 'deny');
    assert.equal(e.reason, 'http-in-tunnel');
  });

  it('domain fronting over a dialed connection: no pass, the connection is closed, the record says why', async () => {
    const b = await testBroker({ allow: [{ host: 'web.test', port: 443 }] });
    const ip = await addressOf(b, 'web.test');
    const sock = await relay(b.socketPath, `tcp ${ip} 443 dial\n`);
    const said = lines(sock);
    assert.match(await said.line(0), /^dial \d+ 127\.0\.0\.1 443$/);
    sock.write(await clientHello('evil.test'));
    await within(said.closed, 'the broker closing the connection');
    assert.doesNotMatch(said.all(), /pass/);
    const e = await b.event((x) => x.kind === 'connect' && x.verdict === 'deny');
    assert.equal(e.reason, 'sni-mismatch');
  });

  it('TLS record tricks a lenient server (Go) reads as a handshake: refused as malformed-tls before pass, raw and in a CONNECT tunnel; a hello in many records and segments still passes', async () => {
    const evil = await clientHello('evil.test');
    const v00 = Buffer.from(evil);
    v00[1] = 0;
    v00[2] = 0;
    const tricks: Record<string, Buffer> = {
      'warning alert first': Buffer.concat([Buffer.from([21, 3, 1, 0, 2, 1, 100]), evil]),
      'record version 00 00': v00,
      'change_cipher_spec first': Buffer.concat([Buffer.from([20, 3, 3, 0, 1, 1]), evil]),
      'application data first': Buffer.concat([Buffer.from([23, 3, 3, 0, 1, 0]), evil]),
      'heartbeat first': Buffer.concat([Buffer.from([24, 3, 3, 0, 3, 1, 0, 0]), evil]),
      'SSLv2-format hello': Buffer.from([0x80, 0x2e, 1, 3, 1, 0, 0x15, 0, 0, 0, 0x10, ...Buffer.alloc(0x2b)]),
    };
    const b = await testBroker({ allow: [{ host: 'web.test', port: 443 }] });
    const ip = await addressOf(b, 'web.test');
    const CONNECT = 'CONNECT web.test:443 HTTP/1.1\r\nHost: web.test:443\r\n\r\n';
    /** Sends `bytes` (in `size`-byte writes) raw or in a tunnel; the broker's lines, once it has decided. */
    const attempt = async (bytes: Buffer, tunnel: boolean, size = bytes.length) => {
      const sock = await relay(b.socketPath, tunnel ? 'tcp 127.0.0.1 3128 dial\n' : `tcp ${ip} 443 dial\n`);
      const said = lines(sock);
      if (tunnel) sock.write(CONNECT);
      for (let i = 0; i < bytes.length; i += size) sock.write(bytes.subarray(i, i + size));
      const first = await said.line(0);
      assert.match(first, /^dial \d+ /);
      const second = await within(Promise.race([said.line(1), said.closed.then(() => 'closed')]), 'the broker deciding');
      sock.destroy();
      return second;
    };
    for (const [what, bytes] of Object.entries(tricks)) {
      for (const tunnel of [false, true]) {
        const n = b.events.length;
        assert.equal(await attempt(bytes, tunnel), 'closed', `${what}${tunnel ? ' (tunnel)' : ''}: passed`);
        const e = await b.event((x) => b.events.indexOf(x) >= n && x.verdict === 'deny');
        assert.deepEqual([e.kind, e.reason], [tunnel ? 'proxy' : 'connect', 'malformed-tls'], what);
      }
    }
    const good = refragment(await clientHello('web.test'), 40);
    assert.equal(await attempt(good, false, 13), 'pass 0');
    assert.equal(await attempt(good, true, 13), `pass ${CONNECT.length}`);
    const fronted = refragment(evil, 40);
    const n = b.events.length;
    assert.equal(await attempt(fronted, false, 13), 'closed');
    assert.equal((await b.event((x) => b.events.indexOf(x) >= n && x.verdict === 'deny')).reason, 'sni-mismatch');
  });

  it('a refusal with an answer (a proxy 403) says "pipe" first, then the answer', async () => {
    const b = await testBroker({ allow: [{ host: 'web.test', port: 443 }] });
    const sock = await relay(b.socketPath, 'tcp 127.0.0.1 3128 dial\n');
    sock.write('CONNECT other.test:443 HTTP/1.1\r\nHost: other.test:443\r\n\r\n');
    const all = (await readAll(sock)).toString('latin1');
    assert.match(all, /^pipe\nHTTP\/1\.1 403 /);
    assert.match(all, /add "other\.test:443" to network\.allow/);
  });

  it('CONNECT: "dial ... connect HOST"; pass from the end of the CONNECT request, after the ClientHello was checked', async () => {
    const b = await testBroker({ allow: [{ host: 'web.test', port: 443 }] });
    const sock = await relay(b.socketPath, 'tcp 127.0.0.1 3128 dial\n');
    const said = lines(sock);
    const connect = 'CONNECT web.test:443 HTTP/1.1\r\nHost: web.test:443\r\n\r\n';
    sock.write(connect);
    const dial = await said.line(0);
    const m = /^dial (\d+) 127\.0\.0\.1 443 connect web\.test$/.exec(dial);
    assert.ok(m, dial);
    sock.write(await clientHello('web.test'));
    assert.equal(await said.line(1), `pass ${Buffer.byteLength(connect)}`);
    await done(b, m[1]!, 10, 20);
    sock.end();
    const e = await b.event((x) => x.kind === 'proxy' && x.verdict === 'allow');
    assert.equal(e.host, 'web.test');
    assert.equal(e.bytes_in, 20);
  });

  it('a failed dial is recorded as the upstream error the relay reports', async () => {
    const b = await testBroker({ allow: [{ host: 'web.test', port: 8080 }] });
    const ip = await addressOf(b, 'web.test');
    const sock = await relay(b.socketPath, `tcp ${ip} 8080 dial\n`);
    const said = lines(sock);
    const id = /^dial (\d+) /.exec(await said.line(0))![1]!;
    sock.destroy();
    await done(b, id, 0, 0, 'ECONNREFUSED');
    const e = await b.event((x) => x.kind === 'connect');
    assert.equal(e.verdict, 'deny');
    assert.equal(e.reason, 'upstream-error: ECONNREFUSED');
    assert.equal(e.rule, undefined, 'a refusal names no allowing rule');
  });

  it('no count from the relay: the record is still written, saying so, its bytes unknown (null, not 0); a count for an unknown id is ignored', async () => {
    const b = await testBroker({ allow: [{ host: 'web.test', port: 8080 }] });
    const ip = await addressOf(b, 'web.test');
    await done(b, '999', 1, 1); // nothing has that id: no record, no crash
    const sock = await relay(b.socketPath, `tcp ${ip} 8080 dial\n`);
    const said = lines(sock);
    await said.line(0);
    sock.write('SSH-2.0-client\r\n'); // not HTTP or TLS: passes
    assert.equal(await said.line(1), 'pass 0');
    sock.end();
    sock.destroy();
    const e = await b.event((x) => x.kind === 'connect', 3000);
    assert.equal(e.verdict, 'allow');
    assert.equal(e.note, 'the relay gave no byte count: the bytes are unknown');
    // Unknown, not 0: whatever the relay carried went out uncounted.
    assert.equal(e.bytes_out, null);
    assert.equal(e.bytes_in, null);
    assert.equal(b.events.filter((x) => x.kind === 'connect').length, 1);
  });

  it('close() waits briefly for the relay\'s counts (the relay sends them as the sandbox ends), then writes every record', async () => {
    const b = await testBroker({ allow: [{ host: 'web.test', port: 8080 }] });
    const ip = await addressOf(b, 'web.test');
    const open = async () => {
      const sock = await relay(b.socketPath, `tcp ${ip} 8080 dial\n`);
      const said = lines(sock);
      sock.write('SSH-2.0-client\r\n'); // client-first: dialed as soon as it shows it is not HTTP
      const id = /^dial (\d+) /.exec(await said.line(0))![1]!;
      await said.line(1);
      sock.destroy();
      return id;
    };
    const counted = await open();
    await open(); // never counted
    await new Promise((r) => setTimeout(r, 50));
    const t0 = Date.now();
    const closing = b.broker.close();
    setTimeout(() => void done(b, counted, 5, 7), 50);
    await closing;
    const took = Date.now() - t0;
    assert.ok(took < 1000, `close() took ${took} ms: it waits a moment, not the full wait for a count`);
    const conns = b.events.filter((x) => x.kind === 'connect');
    assert.equal(conns.length, 2, JSON.stringify(conns));
    assert.ok(conns.some((e) => e.bytes_out === 5 && e.bytes_in === 7 && e.note === undefined), 'the count that came during close() is used');
    assert.ok(conns.some((e) => e.note === 'the relay gave no byte count: the bytes are unknown' && e.bytes_out === null), 'the other record says it has no count');
  });
});
