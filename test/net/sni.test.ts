/**
 * sni.ts on real ClientHellos (captured from Node's TLS client), on the same
 * hello cut into TCP chunks and into many TLS records, and on truncated or
 * hostile input: it must say 'incomplete' or null, never throw.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseClientHello, tlsOpening } from '../../src/net/sni.js';
import { captureHello, refragment } from './helpers.js';

/** A minimal hand-made ClientHello record with the given extensions (type, data). */
function helloWith(exts: Array<[number, Buffer]>): Buffer {
  const extBytes = Buffer.concat(exts.map(([t, d]) => Buffer.concat([u16(t), u16(d.length), d])));
  const body = Buffer.concat([Buffer.from([3, 3]), Buffer.alloc(32), Buffer.from([0]), u16(2), Buffer.from([0x13, 0x01]), Buffer.from([1, 0]), u16(extBytes.length), extBytes]);
  const hs = Buffer.concat([Buffer.from([1, 0, body.length >> 8, body.length & 255]), body]);
  return Buffer.concat([Buffer.from([22, 3, 1]), u16(hs.length), hs]);
}

function sniExt(...names: string[]): Buffer {
  const list = Buffer.concat(names.map((n) => Buffer.concat([Buffer.from([0]), u16(n.length), Buffer.from(n, 'latin1')])));
  return Buffer.concat([u16(list.length), list]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

describe('SNI from a ClientHello (sni.ts)', { timeout: 20_000 }, () => {
  it('reads the server name from a real ClientHello, lowercased', async () => {
    const hello = await captureHello({ servername: 'api.test' });
    assert.equal(tlsOpening(hello), 'hello');
    assert.deepEqual(parseClientHello(hello), { sni: 'api.test' });
    const upper = await captureHello({ servername: 'API.Example.COM' });
    assert.deepEqual(parseClientHello(upper), { sni: 'api.example.com' });
  });

  it('a hello without SNI (client connecting to an IP) gives sni null', async () => {
    const hello = await captureHello({});
    assert.deepEqual(parseClientHello(hello), { sni: null });
  });

  it("every strict prefix is 'incomplete'; bytes after the hello are ignored", async () => {
    const hello = await captureHello({ servername: 'api.test' });
    for (let i = 0; i < hello.length; i++) assert.equal(parseClientHello(hello.subarray(0, i)), 'incomplete', `prefix ${i}`);
    assert.deepEqual(parseClientHello(Buffer.concat([hello, Buffer.from([23, 3, 3, 0, 5, 1, 2])])), { sni: 'api.test' });
  });

  it('reassembles a ClientHello fragmented over many TLS records (and cut anywhere between them)', async () => {
    const hello = await captureHello({ servername: 'fronted.example.net' });
    for (const size of [1, 7, 100]) {
      const frag = refragment(hello, size);
      assert.ok(frag.length > hello.length);
      assert.deepEqual(parseClientHello(frag), { sni: 'fronted.example.net' }, `fragments of ${size}`);
      for (const cut of [3, 5, 6, Math.floor(frag.length / 2), frag.length - 1]) {
        assert.equal(parseClientHello(frag.subarray(0, cut)), 'incomplete', `fragments of ${size}, cut at ${cut}`);
      }
    }
  });

  it('hand-made hellos: one name read; two names, two SNI extensions, a non-host_name entry are refused', () => {
    assert.deepEqual(parseClientHello(helloWith([[0, sniExt('a.test.')]])), { sni: 'a.test' });
    assert.deepEqual(parseClientHello(helloWith([[10, Buffer.from([0, 2, 0, 29])]])), { sni: null });
    assert.equal(parseClientHello(helloWith([[0, sniExt('a.test', 'b.test')]])), null);
    assert.equal(parseClientHello(helloWith([[0, sniExt('a.test')], [0, sniExt('b.test')]])), null);
    assert.equal(parseClientHello(helloWith([[0, sniExt('bad name')]])), null);
    const hostType1 = sniExt('a.test');
    hostType1[2] = 1;
    assert.equal(parseClientHello(helloWith([[0, hostType1]])), null);
  });

  it('truncated lengths inside a complete record, other record types, and garbage give null', async () => {
    const hello = await captureHello({ servername: 'api.test' });
    // Extensions length one byte longer than what is there.
    const bad = helloWith([[0, sniExt('a.test')]]);
    const extLenAt = 5 + 4 + 2 + 32 + 1 + 2 + 2 + 2;
    bad.writeUInt16BE(bad.readUInt16BE(extLenAt) + 1, extLenAt);
    assert.equal(parseClientHello(bad), null);
    // A handshake that is not a ClientHello (a ServerHello, type 2).
    const sh = Buffer.from(hello);
    sh[5] = 2;
    assert.equal(parseClientHello(sh), null);
    // Application data, an SSH banner, HTTP.
    assert.equal(parseClientHello(Buffer.from([23, 3, 3, 0, 1, 0])), null);
    assert.equal(parseClientHello(Buffer.from('SSH-2.0-OpenSSH_9.6\r\n')), null);
    assert.equal(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n')), null);
    assert.equal(tlsOpening(Buffer.from('GET')), 'other');
    // A record claiming a handshake larger than the bound.
    const big = Buffer.from([22, 3, 1, 0x40, 0x00, 1, 0xff, 0xff, 0xff]);
    assert.equal(parseClientHello(big), null);
    // A zero-length record.
    assert.equal(parseClientHello(Buffer.from([22, 3, 1, 0, 0])), null);
  });

  it('tlsOpening: other record types first, a record version not 3.x and SSLv2 hellos are refused; a hello cut anywhere is a hello', async () => {
    const hello = await captureHello({ servername: 'api.test' });
    for (let i = 1; i <= hello.length; i++) assert.equal(tlsOpening(hello.subarray(0, i)), 'hello', `prefix ${i}`);
    assert.equal(tlsOpening(refragment(hello, 7)), 'hello');
    // What Go's crypto/tls reads as a handshake: a warning alert before it, version bytes 00 00.
    const alert = Buffer.from([21, 3, 1, 0, 2, 1, 100]);
    assert.equal(tlsOpening(Buffer.concat([alert, hello])), 'refuse');
    const v00 = Buffer.from(hello);
    v00[1] = 0;
    v00[2] = 0;
    assert.equal(tlsOpening(v00), 'refuse');
    assert.equal(tlsOpening(v00.subarray(0, 2)), 'refuse');
    for (const type of [20, 21, 23, 24]) assert.equal(tlsOpening(Buffer.from([type])), 'refuse', `content type ${type}`);
    // An SSLv2-format ClientHello: 2-byte length with the high bit, message type 1, version 3.1.
    const v2 = Buffer.from([0x80, 0x2e, 1, 3, 1, 0, 0x15, 0, 0, 0, 0x10]);
    assert.equal(tlsOpening(v2.subarray(0, 2)), undefined);
    assert.equal(tlsOpening(v2), 'refuse');
    // Not TLS: other protocols with a high first byte (memcached's binary magic), SSH, HTTP, a NUL.
    assert.equal(tlsOpening(Buffer.from([0x80, 0x00, 0x00, 0x05, 0])), 'other');
    for (const s of ['SSH-2.0-x\r\n', 'GET / HTTP/1.1\r\n', '\0\0\0\x08']) assert.equal(tlsOpening(Buffer.from(s, 'latin1')), 'other', JSON.stringify(s));
    assert.equal(tlsOpening(Buffer.alloc(0)), undefined);
  });

  it('never throws: random mutations of a real hello, and random bytes', async () => {
    const hello = await captureHello({ servername: 'api.test' });
    let seed = 7;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
    for (let i = 0; i < 3000; i++) {
      const m = Buffer.from(hello);
      for (let k = 0; k < 1 + rnd(4); k++) m[5 + rnd(m.length - 5)] = rnd(256);
      const r = parseClientHello(m.subarray(0, rnd(m.length + 1)));
      assert.ok(r === null || r === 'incomplete' || typeof r.sni === 'string' || r.sni === null);
      const g = Buffer.from(Array.from({ length: rnd(300) }, () => rnd(256)));
      if (g.length) g[0] = 22;
      parseClientHello(g);
    }
  });
});
