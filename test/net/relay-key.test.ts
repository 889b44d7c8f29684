/**
 * The broker obeys only the relay: every connection must begin with the run's key, which only
 * Ward and the relay hold. Anyone else who reaches the socket (a process of the same user, a
 * sandbox shown another run's socket) is refused before one line is obeyed, and cannot forge
 * the count of a connection the relay carries. The sandbox-level attacks are in
 * test/sandbox/broker-socket.test.ts.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { RELAY_KEY_LEN, startBroker } from '../../src/net/broker.js';
import { closedWithin, connectWith, dnsQuery, keyFor, listen, readAll, relay, tcpServer, tempDir, testBroker, within } from './helpers.js';

/** The broker's lines to the fake relay, as they come. */
function said(sock: net.Socket): { line: (n: number) => Promise<string> } {
  let text = '';
  const waiters: Array<() => void> = [];
  sock.on('data', (d: Buffer) => {
    text += d.toString('latin1');
    for (const w of waiters.splice(0)) w();
  });
  return {
    line: (n) =>
      within(
        new Promise<string>((resolve) => {
          const check = () => (text.split('\n').length > n + 1 ? resolve(text.split('\n')[n]!) : waiters.push(check));
          check();
        }),
        `line ${n} from the broker (so far ${JSON.stringify(text)})`,
      ),
  };
}

describe('the relay key', { timeout: 20_000 }, () => {
  it('a peer without it is refused before its line is obeyed: nothing reaches an allowed port, each try is recorded as not-the-relay', async () => {
    let got = '';
    const sink = tcpServer((s) => s.on('data', (d: Buffer) => (got += d.toString())).on('end', () => s.end()));
    const port = await listen(sink);
    const b = await testBroker({ allowLocal: [port] });
    const line = `tcp 127.0.0.1 ${port}\nHELLO\n`;
    const tries: Array<Buffer | string> = [
      line, // the relay's protocol, no key (shorter than a key: refused at its end)
      Buffer.concat([Buffer.alloc(RELAY_KEY_LEN), Buffer.from(line)]), // a wrong key
      Buffer.concat([Buffer.from(keyFor(tempDir())), Buffer.from(line)]), // another broker's key
      'dns\n\x00\x1d', // a DNS question
      `done 1 7 7 -\n`,
    ];
    for (const t of tries) {
      const s = await connectWith(b.socketPath, t);
      s.end();
      assert.equal((await readAll(s)).length, 0, 'the broker says nothing to it');
    }
    await b.event(() => b.events.length === tries.length);
    assert.ok(b.events.every((e) => e.verdict === 'deny' && e.reason === 'not-the-relay'), JSON.stringify(b.events));
    assert.equal(got, '', 'nothing reached the allowed port');
    // The relay itself is still served.
    const ok = await relay(b.socketPath, `tcp 127.0.0.1 ${port}\n`);
    ok.end('from the relay');
    await b.event((e) => e.verdict === 'allow');
    assert.equal(got, 'from the relay');
  });

  it('a wrong key of full length is refused at once, with no line after it', async () => {
    const b = await testBroker({});
    const wrong = await connectWith(b.socketPath, Buffer.alloc(RELAY_KEY_LEN, 0x41));
    await closedWithin(wrong, 1000);
    assert.equal((await dnsQuery(b.socketPath, 'nx.test', 'A'))?.rcode, 3, 'the relay is still served');
  });

  it('a forged count changes nothing: without the key it is refused, and with it an id never handed out matches nothing', async () => {
    const up = tcpServer(() => {});
    const port = await listen(up);
    const b = await testBroker({ allowLocal: [port] });
    const sock = await relay(b.socketPath, `tcp 127.0.0.1 ${port} dial\n`);
    const lines = said(sock);
    sock.write('SSH-2.0-client\r\n');
    const id = /^dial (\d+) 127\.0\.0\.1 \d+$/.exec(await lines.line(0))?.[1];
    assert.ok(id, 'dialed');
    assert.equal(await lines.line(1), 'pass 0');
    // Ids are random: a guesser counting up from 1, as the old sequential ids allowed, finds nothing.
    assert.ok(Number(id) > 2 ** 20, `id ${id}`);
    const stranger = await connectWith(b.socketPath, `done ${id} 7 7 -\n`);
    stranger.end();
    await readAll(stranger);
    for (const guess of [1, 2, 3]) (await relay(b.socketPath, `done ${guess} 7 7 -\n`)).end();
    // The relay's own count, on a connection of its own, is the one taken.
    (await relay(b.socketPath, `done ${id} 1000000 16 -\n`)).end();
    sock.end();
    const e = await b.event((x) => x.kind === 'connect' && x.verdict === 'allow');
    assert.equal(e.bytes_out, 1000000);
    assert.equal(e.bytes_in, 16);
    assert.ok(b.events.some((x) => x.reason === 'not-the-relay'), 'the stranger is recorded');
  });

  it('a broker without a key of the right length does not start', async () => {
    const socketPath = `${tempDir()}/b.sock`;
    await assert.rejects(startBroker({ socketPath, key: Buffer.alloc(8), allow: [], allowLocal: [], proxyPort: 3128, onEvent: () => {} }), /relay key must be 32 bytes/);
  });
});
