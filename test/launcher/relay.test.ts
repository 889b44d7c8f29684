/**
 * ward-launch's network relay, against a stand-in broker (a unix socket
 * server): it joins the sandbox's network namespace, listens on the ports it
 * is given and 53, and carries connections and DNS queries to the broker.
 * The command does not start before it listens; without a broker, every
 * connection fails at once (fail closed, no hang).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { outerArgs } from '../../src/launcher/launcher.js';
import { tempDir } from '../helpers.js';
import { BWRAP, launcher, outerUsage } from './helpers.js';

const STATUS = 4;
const LIFELINE = 6;
const INFO = 7;
const BLOCK = 8;

interface Stand {
  server: Server;
  heads: string[];
  sockets: Set<Socket>;
}

function standInBroker(socketPath: string): Promise<Stand> {
  const stand: Stand = { server: createServer(), heads: [], sockets: new Set() };
  stand.server.on('connection', (c) => {
    stand.sockets.add(c);
    c.on('close', () => stand.sockets.delete(c));
    c.on('error', () => {});
    let buf = Buffer.alloc(0);
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const nl = buf.indexOf(10);
      if (nl < 0 || stand.heads.length > 100) return;
      const head = buf.subarray(0, nl).toString();
      if (!stand.heads.includes(head)) stand.heads.push(head);
      if (head === 'dns' && buf.length >= nl + 3) {
        const len = buf.readUInt16BE(nl + 1);
        if (buf.length >= nl + 3 + len) c.end(Buffer.from([0, 3, 0xaa, 0xbb, 0xcc]));
      } else if (head.startsWith('tcp ') && buf.length > nl + 1) {
        c.end(`broker saw ${JSON.stringify(buf.subarray(nl + 1).toString())}\n`);
      }
    });
  });
  return new Promise((r) => stand.server.listen(socketPath, () => r(stand)));
}

/** Run `python3 -c code` in a bwrap sandbox with a new network namespace, through outer with the relay. */
async function sandboxed(socketPath: string, ports: number[], code: string, cmd: string[] = ['python3', '-c', code]): Promise<{ code: number | null; out: string; status: string }> {
  const args = outerArgs({ cgroupProcs: [], statusFd: STATUS, watchdog: { lifelineFd: LIFELINE, infoFd: INFO }, relay: { socket: socketPath, ports, blockFd: BLOCK } });
  // --dev makes an unprivileged bwrap map uid 0 first and move into a nested user namespace later:
  // the relay must take the capabilities of the user namespace that owns the network namespace.
  const bwrap = [BWRAP, '--unshare-all', '--die-with-parent', '--ro-bind', '/', '/', '--proc', '/proc', '--dev', '/dev', '--info-fd', String(INFO), '--block-fd', String(BLOCK), '--', ...cmd];
  const child = spawn(launcher(), [...args, ...bwrap], { stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'pipe', 'ignore', 'pipe'] });
  let out = '';
  let status = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const stdio = child.stdio as unknown as Readable[];
  stdio[STATUS]!.setEncoding('utf8').on('data', (d: string) => (status += d));
  const code_ = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
  stdio[LIFELINE]!.destroy();
  return { code: code_, out, status };
}

const PY_CONNECT = `import socket, errno
def tcp(port, payload=b'hi'):
    try:
        s = socket.create_connection(('127.0.0.1', port), timeout=3)
        s.sendall(payload)
        data = s.recv(200)
        print('tcp', port, repr(data.decode()) if data else 'closed')
    except OSError as e:
        print('tcp', port, errno.errorcode.get(e.errno, e.errno))
def dns():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(3)
    try:
        u.sendto(b'QUERY', ('127.0.0.1', 53)); print('dns', u.recv(100).hex())
    except OSError as e:
        print('dns', 'timeout' if isinstance(e, socket.timeout) else errno.errorcode.get(e.errno, e.errno))
`;

describe('outer: the network relay', () => {
  it('carries TCP (with the dialed address) and UDP DNS to the broker; other ports are closed', async () => {
    const dir = tempDir();
    const sock = path.join(dir, 'b.sock');
    const stand = await standInBroker(sock);
    try {
      const r = await sandboxed(sock, [8080, 443], `${PY_CONNECT}
tcp(8080)          # first thing the command does: the relay must already listen
tcp(443, b'x')
dns()
tcp(9999)
try:
    socket.create_connection(('1.1.1.1', 443), timeout=3); print('internet OPEN')
except OSError as e: print('internet', errno.errorcode.get(e.errno, e.errno))`);
      assert.equal(r.code, 0, r.out + r.status);
      assert.match(r.out, /^tcp 8080 'broker saw "hi"\\n'$/m);
      assert.match(r.out, /^tcp 443 'broker saw "x"\\n'$/m);
      assert.match(r.out, /^dns aabbcc$/m);
      assert.match(r.out, /^tcp 9999 ECONNREFUSED$/m);
      assert.match(r.out, /^internet ENETUNREACH$/m);
      assert.deepEqual(stand.heads.sort(), ['dns', 'tcp 127.0.0.1 443', 'tcp 127.0.0.1 8080']);
      assert.equal(r.status, '', 'the relay reports nothing when all went well');
    } finally {
      stand.server.close();
    }
  });

  it('attaches on every launch: 25 in a row bind the privileged DNS port (no race with bwrap\'s nested user namespace)', async () => {
    const dir = tempDir();
    const sock = path.join(dir, 'b.sock');
    const stand = await standInBroker(sock);
    try {
      for (let i = 0; i < 25; i++) {
        const r = await sandboxed(sock, [443], '', ['true']);
        assert.equal(r.status, '', `launch ${i}: ${r.status}`);
        assert.equal(r.code, 0, `launch ${i}: ${r.out}`);
      }
    } finally {
      stand.server.close();
    }
  });

  it('without a broker, connections fail at once and DNS gets no answer: no route out, no hang', async () => {
    const dir = tempDir();
    const sock = path.join(dir, 'b.sock');
    const stand = await standInBroker(sock);
    // The broker dies before the command runs: the socket file is gone.
    await new Promise<void>((r) => stand.server.close(() => r()));
    rmSync(sock, { force: true });
    const t0 = Date.now();
    const r = await sandboxed(sock, [8080], `${PY_CONNECT}\ntcp(8080)\ndns()`);
    assert.match(r.out, /^tcp 8080 (closed|ECONNRESET)$/m, r.out);
    assert.match(r.out, /^dns timeout$/m);
    assert.ok(Date.now() - t0 < 10_000, 'nothing waited for a dead broker beyond the client timeout');
  });

  it('a broker that goes away mid-run cuts live connections and refuses new ones', async () => {
    const dir = tempDir();
    const sock = path.join(dir, 'b.sock');
    const stand = await standInBroker(sock);
    // As soon as the first connection reaches it, the broker dies; the client waits for the
    // marker file written after that, then reads its live connection and opens a new one.
    const flag = path.join(dir, 'killed');
    const watcher = setInterval(() => {
      if (stand.heads.length > 0 && stand.server.listening) {
        stand.server.close();
        for (const s of stand.sockets) s.destroy();
        rmSync(sock, { force: true });
        writeFileSync(flag, '');
      }
    }, 20);
    try {
      const r = await sandboxed(sock, [8080], `${PY_CONNECT}
import os, time
s = socket.create_connection(('127.0.0.1', 8080), timeout=5)
for _ in range(250):
    if os.path.exists(${JSON.stringify(flag)}): break
    time.sleep(0.02)
try:
    print('live', 'closed' if s.recv(10) == b'' else 'data')
except OSError as e: print('live', errno.errorcode.get(e.errno, e.errno))
tcp(8080)`);
      assert.match(r.out, /^live (closed|ECONNRESET)$/m, r.out);
      assert.match(r.out, /^tcp 8080 (closed|ECONNRESET)$/m, r.out);
    } finally {
      clearInterval(watcher);
      stand.server.close();
    }
  });

  it('--relay without --block-fd, a relative socket path, --relay-port without --relay: usage errors', async () => {
    const cases: [string[], RegExp][] = [
      [['--lifeline-fd', String(LIFELINE), '--info-fd', String(INFO), '--relay', '/tmp/x.sock'], /--relay needs --block-fd/],
      [['--relay', 'x.sock'], /not an absolute socket path/],
      [['--relay-port', '80'], /--relay-port without --relay/],
      [['--relay-port', '0'], /not a port number/],
    ];
    for (const [opts, message] of cases) {
      const r = await outerUsage(opts);
      assert.equal(r.code, 125, opts.join(' '));
      assert.match(r.stderr, message);
    }
  });
});
