#!/usr/bin/env node
// Ward's egress benchmark: `npm run build && node bench/egress.js`.
//
// What a sandboxed client pays to reach an allowed host, per connection and in
// throughput, measured *inside* one sandbox run each (sandbox start-up is not
// counted), side by side in one run:
//
//   direct       the client on the host, to 127.0.0.1:PORT (the baseline)
//   ward_raw     inside Ward, connect() to bench.test:PORT: Ward's DNS answers a
//                synthetic 127.100.x.y, the relay (ward-launch.c) catches the
//                connection and asks the broker (src/net/broker.ts, in this
//                process), which decides, has the relay's dialer connect to the
//                server and checks the first message; then the relay carries the
//                bytes (Node is not in the data path)
//   ward_proxy   inside Ward, HTTP CONNECT bench.test:PORT through $HTTPS_PROXY
//                (127.0.0.1:3128 inside: the same relay, the broker's proxy)
//   ward_raw_noaudit  ward_raw with run(..., {audit: false}) (diagnostic: the
//                audit log appends one record per connection, in this process)
//   srt_connect  inside srt (CLI, allowedDomains ["127.0.0.1:PORT"]), HTTP CONNECT
//                through its $HTTPS_PROXY (localhost:3128 inside: socat -> unix
//                socket -> socat -> srt's Node proxy), with its Proxy-Authorization
//   srt_socks    the same through srt's SOCKS5 proxy (localhost:1080, user/pass
//                from $FTP_PROXY): srt's path for raw TCP
// and, to show where the time goes: host_node_hop (one Node pipe process between
// client and server, as the broker pipes), host_socat_hop (one `socat -b 65536`,
// a C copy loop like the relay's), and AuditWriter.append timed alone.
//
// The server is a separate Node process on the host (127.0.0.1, random port), so
// it shares no event loop with Ward's broker. The client is this file (run with
// --role client) under process.execPath, copied into the workspace so every
// sandbox can read it. Per connection it times, with process.hrtime: connect,
// proxy handshake, "ping\n" sent -> first response byte, and close. Then
// requests on one open connection, written in one write and in two (a hop that
// leaves Nagle's algorithm on stalls the second piece until the first is ACKed);
// then one transfer each way (the server sends N MiB; the client sends N MiB and
// waits for the server's "ok"). Each round runs every case once, in a shuffled
// order, so a slow phase of a noisy machine hits every case alike.
//
// Options:
//   --n N           timed connections per case, over all rounds (default 200)
//   --warmup N      untimed connections per case, over all rounds (default 20)
//   --rounds N      rounds (default 5); also the number of transfers each way
//   --mib N         transfer size in MiB (default 100; 0 skips the transfers)
//   --keep-n N      requests per case on one open connection, each way of writing, over all rounds (default 100)
//   --dns-n N       DNS lookups timed inside Ward, over all rounds (default 100)
//   --no-hops       skip the host hop diagnostics
//   --no-srt        skip srt      --srt-dir DIR   where srt is (or gets) installed (default /tmp/ward-bench-srt)
//   --out FILE      raw samples (default bench/results/egress-latest.json)
import { spawn } from 'node:child_process';
import { cpSync, existsSync, writeFileSync } from 'node:fs';
import dns from 'node:dns';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// The client role runs from a lone copy of this file inside a sandbox, so the roles
// other than main use nothing from bench/lib.js (main imports it when it starts).
const now = () => process.hrtime.bigint();
const msSince = (t0) => Number(now() - t0) / 1e6;

// The transfers carry this 1 MiB pseudo-random pattern, repeated (the byte at stream offset i
// is PATTERN[i % 1 MiB]). The receiver checks the first and last bytes of every chunk it gets
// against it, and the exact count: a hop that drops, duplicates, reorders or alters bytes shows
// up, at a cost of two short compares per chunk, the same for every case. A full compare of
// 100 MiB takes ~20 ms here (sha256 ~200 ms), a fifth of the direct case's ~100 ms: added to
// every case alike, it would shrink the gap between direct and a slower hop.
const PATTERN = (() => {
  const b = Buffer.alloc(1 << 20);
  let x = 0x9e3779b9;
  for (let i = 0; i < b.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b.writeUInt32LE(x >>> 0, i);
  }
  return b;
})();
const SAMPLE = 64;

/** Checks chunk d, which starts at stream offset `at`, against PATTERN at its first and last SAMPLE bytes. */
function patternOk(d, at) {
  const check = (from, to) => {
    for (let i = from; i < to; ) {
      const p = (at + i) % PATTERN.length;
      const k = Math.min(to - i, PATTERN.length - p);
      if (d.compare(PATTERN, p, p + k, i, i + k) !== 0) return false;
      i += k;
    }
    return true;
  };
  const n = Math.min(SAMPLE, d.length);
  return check(0, n) && check(d.length - n, d.length);
}

const role = process.argv[2] === '--role' ? process.argv[3] : 'main';
if (role === 'server') serverMain();
else if (role === 'pipe') pipeMain(Number(process.argv[4]));
else if (role === 'client') await clientMain(process.argv.slice(4));
else await main();

// ===========================================================================
// Server (a child process on the host)
// ===========================================================================
//
// One line from the client, then:
//   "ping"    -> "pong\n", close
//   "down N"  -> N bytes, close
//   "up N"    -> read N bytes, "ok\n", close

function serverMain() {
  const chunk = PATTERN;
  const srv = net.createServer({ noDelay: true }, (s) => {
    s.on('error', () => {});
    let buf = Buffer.alloc(0);
    const onData = (d) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      const nl = buf.indexOf(10);
      if (nl < 0) {
        if (buf.length > 256) s.destroy();
        return;
      }
      s.off('data', onData);
      const [cmd, arg] = buf.toString('latin1', 0, nl).split(' ');
      const rest = buf.subarray(nl + 1);
      const n = Number(arg);
      if (cmd === 'ping') s.end('pong\n');
      else if (cmd === 'keep') {
        // One reply line per request line, until the client ends.
        let line = rest.toString('latin1');
        const onLine = (d) => {
          line += d.toString('latin1');
          let nl2;
          while ((nl2 = line.indexOf('\n')) >= 0) {
            line = line.slice(nl2 + 1);
            s.write('re\n');
          }
        };
        s.on('data', onLine);
        s.on('end', () => s.end());
        onLine(Buffer.alloc(0));
      }
      else if (cmd === 'down' && Number.isSafeInteger(n)) {
        let left = n;
        const pump = () => {
          while (left > 0) {
            const c = left >= chunk.length ? chunk : chunk.subarray(0, left);
            left -= c.length;
            if (!s.write(c)) return void s.once('drain', pump);
          }
          s.end();
        };
        pump();
      } else if (cmd === 'up' && Number.isSafeInteger(n)) {
        let got = rest.length;
        let bad = rest.length > 0 && !patternOk(rest, 0) ? 0 : -1;
        const check = () => {
          if (got >= n) {
            s.off('data', count);
            s.resume();
            s.end(got === n && bad < 0 ? 'ok\n' : `bad: ${got} bytes${bad >= 0 ? `, not the pattern in the chunk at ${bad}` : ''}\n`);
          }
        };
        const count = (d) => {
          if (bad < 0 && !patternOk(d, got)) bad = got;
          got += d.length;
          check();
        };
        s.on('data', count);
        check();
      } else s.destroy();
    };
    s.on('data', onData);
  });
  srv.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: srv.address().port })}\n`));
  // The bench closes our stdin when it is done (or dies).
  process.stdin.on('close', () => process.exit(0));
  process.stdin.resume();
}

// A TCP hop on the host, written the way the broker pipes an allowed connection
// (allowHalfOpen, socket.pipe both ways, Node's socket defaults): the cost of one
// Node copy hop with no sandbox, relay or policy around it (diagnostic).
function pipeMain(to) {
  const srv = net.createServer({ allowHalfOpen: true }, (down) => {
    const up = net.connect({ host: '127.0.0.1', port: to, allowHalfOpen: true });
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
    down.pipe(up);
    up.pipe(down);
  });
  srv.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: srv.address().port })}\n`));
  process.stdin.on('close', () => process.exit(0));
  process.stdin.resume();
}

// ===========================================================================
// Client (on the host, or inside a sandbox)
// ===========================================================================

async function clientMain(argv) {
  const a = {};
  for (let i = 0; i < argv.length; i += 2) a[argv[i].replace(/^--/, '')] = argv[i + 1];
  const mode = a.mode; // direct | raw | proxy | socks
  const host = a.host;
  const port = Number(a.port);
  const n = Number(a.n ?? 0);
  const warmup = Number(a.warmup ?? 0);
  const bytes = Number(a.bytes ?? 0);
  const dnsN = Number(a['dns-n'] ?? 0);
  const keepN = Number(a['keep-n'] ?? 0);
  const out = { mode, host, port, dns: [], resolveMs: null, addr: null, conns: [], keep: null, down: null, up: null };

  // Where the first hop goes, and what to say there.
  let hop;
  if (mode === 'direct') hop = { host, port };
  else if (mode === 'raw') {
    // Resolved once (as the direct case needs no lookup); lookups are timed separately.
    const t0 = now();
    const { address } = await dns.promises.lookup(host, { family: 4 });
    out.resolveMs = msSince(t0);
    out.addr = address;
    hop = { host: address, port };
    for (let i = 0; i < dnsN; i++) {
      const t = now();
      await dns.promises.lookup(host, { family: 4 });
      out.dns.push(msSince(t));
    }
  } else if (mode === 'proxy' || mode === 'socks') {
    // srt's $HTTPS_PROXY says localhost (which may resolve to ::1 first; its socat listens on IPv4).
    const env = mode === 'proxy' ? process.env.HTTPS_PROXY ?? process.env.https_proxy : process.env.FTP_PROXY ?? process.env.ALL_PROXY;
    if (!env) throw new Error(`no proxy in the environment for mode ${mode}`);
    const u = new URL(env);
    if (mode === 'socks' && !u.protocol.startsWith('socks5')) throw new Error(`not a SOCKS5 URL: ${u.protocol}`);
    hop = {
      host: u.hostname === 'localhost' ? '127.0.0.1' : u.hostname,
      port: Number(u.port),
      user: decodeURIComponent(u.username),
      pass: decodeURIComponent(u.password),
    };
  } else throw new Error(`unknown mode ${mode}`);
  out.hop = `${hop.host}:${hop.port}`;

  for (let i = 0; i < warmup + n; i++) {
    const r = await pingOnce(mode, hop, host, port);
    if (i >= warmup) out.conns.push(r);
  }
  if (keepN > 0) out.keep = await keepAlive(mode, hop, host, port, keepN);
  if (bytes > 0) {
    out.down = await transfer(mode, hop, host, port, 'down', bytes);
    out.up = await transfer(mode, hop, host, port, 'up', bytes);
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

/** Buffers a socket's bytes until a step accepts some. */
function reader(sock) {
  let buf = Buffer.alloc(0);
  let ended = false;
  let error = null;
  let waiter = null;
  const kick = () => waiter?.();
  const onData = (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    kick();
  };
  const onEnd = () => ((ended = true), kick());
  const onError = (e) => ((error = e), kick());
  sock.on('data', onData);
  sock.on('end', onEnd);
  sock.on('error', onError);
  sock.on('close', onEnd);
  return {
    /** Resolves with the first `fn(buf)` bytes once fn returns a length (it returns -1 for "need more"). */
    take(fn, what) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const k = buf.length ? fn(buf) : -1;
          if (k >= 0) {
            waiter = null;
            const got = buf.subarray(0, k);
            buf = buf.subarray(k);
            resolve(got);
          } else if (error || ended) {
            waiter = null;
            reject(new Error(`${what}: ${error ? error.message : 'connection closed'}; had ${JSON.stringify(buf.toString('latin1').slice(0, 300))}`));
          }
        };
        waiter = check;
        check();
      });
    },
    /** Stops buffering; returns what was left. */
    detach() {
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.off('close', onEnd);
      sock.off('error', onError);
      sock.on('error', () => {});
      return buf;
    },
  };
}

/** Connects and does the proxy handshake: resolves when bytes to host:port may flow. */
async function open(mode, hop, host, port) {
  const t0 = now();
  const sock = net.connect({ host: hop.host, port: hop.port, noDelay: true });
  const r = reader(sock);
  const closed = new Promise((resolve) => sock.once('close', resolve));
  await new Promise((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  const tConnect = msSince(t0);
  if (mode === 'proxy') {
    const auth = hop.user || hop.pass ? `Proxy-Authorization: Basic ${Buffer.from(`${hop.user}:${hop.pass}`).toString('base64')}\r\n` : '';
    sock.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n${auth}\r\n`);
    const head = await r.take((b) => {
      const e = b.indexOf('\r\n\r\n');
      return e < 0 ? -1 : e + 4;
    }, 'proxy CONNECT');
    const status = head.toString('latin1').split('\r\n')[0];
    if (!/^HTTP\/1\.[01] 200/.test(status)) throw new Error(`proxy refused CONNECT ${host}:${port}: ${status}`);
  } else if (mode === 'socks') {
    const b = (xs) => Buffer.from(xs);
    sock.write(b([5, 1, 2])); // version 5, one method: username/password
    const m = await r.take((x) => (x.length >= 2 ? 2 : -1), 'SOCKS greeting');
    if (m[0] !== 5 || m[1] !== 2) throw new Error(`SOCKS: method ${m[1]} chosen, not username/password`);
    const u = Buffer.from(hop.user);
    const p = Buffer.from(hop.pass);
    sock.write(Buffer.concat([b([1, u.length]), u, b([p.length]), p]));
    const s = await r.take((x) => (x.length >= 2 ? 2 : -1), 'SOCKS auth');
    if (s[1] !== 0) throw new Error(`SOCKS auth refused (${s[1]})`);
    const ip = host.split('.').map(Number);
    const req = net.isIPv4(host) ? b([5, 1, 0, 1, ...ip, port >> 8, port & 255]) : Buffer.concat([b([5, 1, 0, 3, host.length]), Buffer.from(host), b([port >> 8, port & 255])]);
    sock.write(req);
    const rep = await r.take((x) => {
      if (x.length < 5) return -1;
      const len = x[3] === 1 ? 10 : x[3] === 4 ? 22 : 7 + x[4];
      return x.length >= len ? len : -1;
    }, 'SOCKS connect');
    if (rep[1] !== 0) throw new Error(`SOCKS connect to ${host}:${port} refused (reply ${rep[1]})`);
  }
  return { sock, r, t0, tConnect, tReady: msSince(t0), closed };
}

/** One request/response connection: [connect, ready (after the proxy handshake), first response byte, closed], ms from before connect(). */
async function pingOnce(mode, hop, host, port) {
  const c = await open(mode, hop, host, port);
  c.sock.write('ping\n');
  await c.r.take((b) => (b.length > 0 ? 0 : -1), 'response'); // peek: the first byte is here
  const tFirst = msSince(c.t0);
  await c.r.take(() => -1, 'close').catch(() => {}); // buffers the rest until the end
  await c.closed;
  const tClose = msSince(c.t0);
  const rest = c.r.detach().toString('latin1');
  if (rest !== 'pong\n') throw new Error(`unexpected response ${JSON.stringify(rest.slice(0, 200))}`);
  return [round3(c.tConnect), round3(c.tReady), round3(tFirst), round3(tClose)];
}

/**
 * Requests on one open connection (no connection set-up): `n` written in one
 * write, then `n` written in two (a head, then the rest on the next turn of the
 * event loop, as a client that writes headers and body separately does). A
 * relay hop whose socket keeps Nagle's algorithm on holds the second piece until
 * the first is acknowledged, and the server delays that ACK: about 40 ms.
 */
async function keepAlive(mode, hop, host, port, n) {
  const c = await open(mode, hop, host, port);
  c.sock.write('keep\n');
  const one = [];
  const split = [];
  const turn = () => new Promise((r) => setImmediate(r));
  for (let i = 0; i < 2 * n + 2; i++) {
    const two = i >= n + 1;
    const t0 = now();
    if (two) {
      c.sock.write(`req ${i}`);
      await turn();
      c.sock.write(' more\n');
    } else c.sock.write(`req ${i} more\n`);
    await c.r.take((b) => (b.indexOf(10) >= 0 ? b.indexOf(10) + 1 : -1), 'keep-alive reply');
    const ms = round3(msSince(t0));
    if (i === 0 || i === n + 1) continue; // one warm-up each
    (two ? split : one).push(ms);
  }
  c.sock.end();
  await c.closed;
  return { one, split };
}

async function transfer(mode, hop, host, port, dir, bytes) {
  const c = await open(mode, hop, host, port);
  const left = c.r.detach();
  let err = null;
  const ms = await new Promise((resolve, reject) => {
    c.sock.on('error', (e) => (err = e)); // then 'close': recorded below
    if (dir === 'down') {
      let got = left.length;
      let bad = left.length > 0 && !patternOk(left, 0) ? 0 : -1;
      let tFirst = null;
      c.sock.on('data', (d) => {
        tFirst ??= msSince(c.t0);
        if (bad < 0 && !patternOk(d, got)) bad = got;
        got += d.length;
      });
      // A short (or altered) transfer is recorded, not fatal: the bench counts them (a proxy that loses a tail is a finding).
      c.sock.once('close', () => resolve({ ms: msSince(c.t0), tFirst, got, ok: got === bytes && bad < 0, ...(bad >= 0 ? { badAt: bad } : {}) }));
      c.sock.write(`down ${bytes}\n`);
    } else {
      let reply = left.toString('latin1');
      c.sock.on('data', (d) => (reply += d.toString('latin1')));
      c.sock.once('close', () => resolve({ ms: msSince(c.t0), tFirst: null, got: reply === 'ok\n' ? bytes : null, ok: reply === 'ok\n', reply: reply.slice(0, 200) }));
      const chunk = PATTERN;
      let todo = bytes;
      c.sock.write(`up ${bytes}\n`);
      const pump = () => {
        while (todo > 0) {
          const k = Math.min(todo, chunk.length);
          todo -= k;
          if (!c.sock.write(k === chunk.length ? chunk : chunk.subarray(0, k))) return void c.sock.once('drain', pump);
        }
      };
      pump();
    }
  });
  const t = { bytes, ms: round3(ms.ms), firstByteMs: ms.tFirst === null ? null : round3(ms.tFirst), handshakeMs: round3(c.tReady), ok: ms.ok };
  if (!ms.ok) Object.assign(t, dir === 'down' ? { got: ms.got, ...(ms.badAt !== undefined ? { badAt: ms.badAt } : {}) } : { reply: ms.reply }, err ? { error: err.message } : {});
  return t;
}

function round3(x) {
  return Math.round(x * 1000) / 1000;
}

// ===========================================================================
// The bench (main)
// ===========================================================================

async function main() {
  // Here, not at the top: the client's copy in the workspace has no lib.js next to it.
  const {
    SRT_DIR, caseRows, commonFlags, die, droppedLines, ensureSrt, loadavg, log, machineInfo, mdTable, neverHang,
    parseOptions, pct, saveRaw, scratchDirs, seededShuffle, spawnTimed, srtSettings, targetsTable, withTimeout,
  } = await import('./lib.js');
  const here = path.dirname(fileURLToPath(import.meta.url));
  const root = path.dirname(here);
  const self = fileURLToPath(import.meta.url);
  const node = process.execPath;

  // ---- options ----
  const o = parseOptions(
    process.argv.slice(2),
    { n: 200, warmup: 20, rounds: 5, mib: 100, dnsN: 100, keepN: 100, hops: true, srt: true, srtDir: SRT_DIR, out: path.join(here, 'results', 'egress-latest.json') },
    {
      ...commonFlags,
      '--rounds': { key: 'rounds', whole: 1 },
      '--mib': { key: 'mib', whole: 0 },
      '--dns-n': { key: 'dnsN', whole: 0 },
      '--keep-n': { key: 'keepN', whole: 0 },
      '--no-hops': { key: 'hops', set: false },
    },
    import.meta.url,
  );
  const per = (total, r) => Math.floor(total / o.rounds) + (r < total % o.rounds ? 1 : 0);
  const bytes = o.mib * 1024 * 1024;

  // ---- never hang, clean up ----
  const scratch = scratchDirs();
  const tempDir = (prefix) => scratch.make(prefix);
  const children = new Set();
  const killChildren = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  const cleanup = () => {
    killChildren();
    scratch.removeAll();
  };
  // The helpers (server, Node hop, socat) must not outlive the bench, however it ends.
  process.on('exit', killChildren);
  neverHang(15 * 60_000, cleanup);
  const CLIENT_TIMEOUT_MS = 3 * 60_000;

  /** Spawn, collect stdout/stderr, resolve at close. Never hangs. */
  const runChild = (cmd, args, { timeoutMs = CLIENT_TIMEOUT_MS, ...opts } = {}) => spawnTimed(cmd, args, { ...opts, timeoutMs, children });
  const tail = (s) => s.trim().split('\n').slice(-6).join(' / ').slice(0, 800);

  // ---- Ward ----
  const distIndex = path.join(root, 'dist', 'index.js');
  if (!existsSync(distIndex)) die('Ward is not built: run `npm run build` first');
  const ward = await import(pathToFileURL(distIndex).href);

  const machine = machineInfo(root);

  // ---- the server (and the diagnostic hops), each a process of its own ----
  /** Spawns `node egress.js --role ROLE ...` and resolves with the port it printed. */
  const startHelper = async (args) => {
    const child = spawn(node, [self, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.add(child);
    const p = await withTimeout(
      new Promise((resolve, reject) => {
        let s = '';
        child.stdout.on('data', (d) => {
          s += d;
          const nl = s.indexOf('\n');
          if (nl >= 0) resolve(JSON.parse(s.slice(0, nl)).port);
        });
        child.once('exit', (c) => reject(new Error(`${args[1]} exited (${c})`)));
      }),
      10_000,
      `${args[1]} start`,
    );
    return { child, port: p };
  };
  const server = await startHelper(['--role', 'server']).catch((e) => die(e.message));
  const port = server.port;
  log(`server on 127.0.0.1:${port} (pid ${server.child.pid})`);

  // ---- the client, where every sandbox can read it ----
  const ws = tempDir('ward-bench-egress-ws-');
  const client = path.join(ws, 'egress-client.mjs');
  cpSync(self, client);
  const auditLog = path.join(tempDir('ward-bench-egress-audit-'), 'audit.jsonl');
  const NAME = 'bench.test';
  const policy = ward.preparePolicy({ policy: { extends: ['default'], network: { allow: [`${NAME}:${port}`] } } }, { workspace: ws });
  const egress = { resolve: async () => '127.0.0.1' };
  const clientArgs = (mode, host, r, { transfers = true, dns = false, to = port } = {}) => [
    client, '--role', 'client', '--mode', mode, '--host', host, '--port', String(to), '--keep-n', String(per(o.keepN, r)),
    '--n', String(per(o.n, r)), '--warmup', String(per(o.warmup, r)), '--bytes', String(transfers ? bytes : 0), '--dns-n', String(dns ? per(o.dnsN, r) : 0),
  ];
  const parseClient = (stdout, what) => {
    const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
    if (!line) throw new Error(`${what}: the client printed no result`);
    return JSON.parse(line);
  };

  const netChecks = {};
  const wardCase = (key, mode, audit) => async (r) => {
    const ac = new AbortController();
    const res = await withTimeout(
      ward.run(policy, [node, ...clientArgs(mode, NAME, r, { dns: mode === 'raw' })], { workspace: ws, stdin: 'ignore', signal: ac.signal, audit, egress }),
      CLIENT_TIMEOUT_MS,
      key,
    ).catch((e) => {
      ac.abort();
      throw e;
    });
    if (res.exitCode !== 0) throw new Error(`exit ${res.exitCode} (${res.reason}): ${tail(res.stderr.toString('utf8'))}`);
    const out = parseClient(res.stdout.toString('utf8'), key);
    // Every connection went through the broker, and it refused none.
    const kind = mode === 'raw' ? 'connect' : 'proxy';
    const allowed = res.net.filter((e) => e.kind === kind && e.verdict === 'allow').length;
    const denied = res.net.filter((e) => e.verdict === 'deny');
    const want = per(o.n, r) + per(o.warmup, r) + (per(o.keepN, r) > 0 ? 1 : 0) + (o.mib > 0 ? 2 : 0);
    if (allowed !== want || denied.length) throw new Error(`the broker reported ${allowed} allowed ${kind} connections (expected ${want}) and ${denied.length} refusals: ${JSON.stringify(denied.slice(0, 3))}`);
    // And the transfers went through it: one connection each way carried the whole size.
    const viaBroker = res.net.filter((e) => e.kind === kind && e.verdict === 'allow' && bytes > 0 && (e.bytes_in >= bytes || e.bytes_out >= bytes)).length;
    if (o.mib > 0 && viaBroker !== 2) throw new Error(`the broker's byte counts show ${viaBroker} of the 2 transfers of ${bytes} bytes`);
    netChecks[key] = { allowed, dns_events: res.net.filter((e) => e.kind === 'dns').length, big_transfers_seen_by_broker: viaBroker, synthetic_addr: out.addr };
    return out;
  };
  const hostCase = (key, cmd, argsOf) => async (r) => {
    const res = await runChild(cmd, argsOf(r), { cwd: ws });
    if (res.code !== 0) throw new Error(`exit ${res.code ?? res.signal}: ${tail(res.stderr)}`);
    return parseClient(res.stdout, key);
  };

  const cases = [
    { key: 'direct', label: 'direct (host client -> 127.0.0.1)', fn: hostCase('direct', node, (r) => clientArgs('direct', '127.0.0.1', r)) },
    { key: 'ward_raw', label: 'Ward raw `connect()` (DNS, relay; broker decides)', fn: wardCase('ward_raw', 'raw', auditLog) },
    { key: 'ward_proxy', label: 'Ward HTTP CONNECT via 127.0.0.1:3128', fn: wardCase('ward_proxy', 'proxy', auditLog) },
    { key: 'ward_raw_noaudit', label: 'Ward raw, audit log off (diagnostic)', fn: wardCase('ward_raw_noaudit', 'raw', false) },
  ];

  // ---- diagnostic hops on the host: one Node pipe (as the broker's), one C copy loop (socat, as the relay's) ----
  const hops = {};
  if (o.hops) {
    try {
      const h = await startHelper(['--role', 'pipe', String(port)]);
      hops.node = h.port;
      cases.push({ key: 'host_node_hop', label: 'host, one Node pipe hop (diagnostic)', fn: hostCase('host_node_hop', node, (r) => clientArgs('direct', '127.0.0.1', r, { to: h.port })) });
    } catch (e) {
      log(`Node hop not measured: ${e.message}`);
    }
    const socat = (await runChild('sh', ['-c', 'command -v socat'], { timeoutMs: 5000 })).stdout.trim();
    if (socat) {
      // A free port (closed again at once), then socat on it with the relay's 64 KiB buffer.
      const free = await new Promise((resolve) => {
        const t = net.createServer().listen(0, '127.0.0.1', () => {
          const p = t.address().port;
          t.close(() => resolve(p));
        });
      });
      const child = spawn(socat, ['-b', '65536', `TCP-LISTEN:${free},bind=127.0.0.1,reuseaddr,fork`, `TCP:127.0.0.1:${port}`], { stdio: ['pipe', 'ignore', 'pipe'] });
      children.add(child);
      let up = false;
      for (let i = 0; i < 50 && !up && child.exitCode === null; i++) {
        up = await new Promise((resolve) => {
          const c = net.connect(free, '127.0.0.1', () => (c.destroy(), resolve(true)));
          c.on('error', () => setTimeout(() => resolve(false), 50));
        });
      }
      if (up) {
        hops.socat = free;
        cases.push({ key: 'host_socat_hop', label: 'host, one socat hop, `-b 65536` (diagnostic)', fn: hostCase('host_socat_hop', node, (r) => clientArgs('direct', '127.0.0.1', r, { to: free })) });
      } else log('socat hop not measured: it did not listen');
    }
  }

  // ---- srt ----
  const srt = { available: false, version: null, error: null, settings: null };
  if (o.srt) {
    try {
      const { version, bin } = await ensureSrt(o.srtDir, { children });
      srt.version = version;
      // The server's address, allowed as an IP literal (srt never re-judges a literal; a *name*
      // resolving to loopback is refused by its resolved-address guard). No writes, nothing hidden.
      const settings = path.join(tempDir('ward-bench-egress-srtcfg-'), 'srt-settings.json');
      srt.settings = srtSettings([`127.0.0.1:${port}`]);
      writeFileSync(settings, JSON.stringify(srt.settings));
      // The CLI, one process per sample: its proxy lives in that process, as for a user of `srt`.
      // Arguments as separate words (srt quotes them into one shell word).
      const srtArgs = (mode) => (r) => [bin, '--settings', settings, node, ...clientArgs(mode, '127.0.0.1', r)];
      const probe = async (mode) => {
        const args = [bin, '--settings', settings, node, client, '--role', 'client', '--mode', mode, '--host', '127.0.0.1', '--port', String(port), '--n', '1', '--warmup', '0', '--bytes', '0'];
        const r = await runChild(node, args, { cwd: ws, timeoutMs: 60_000 });
        if (r.code !== 0) throw new Error(`srt client (${mode}) failed: exit ${r.code ?? r.signal}: ${tail(r.stderr)} ${tail(r.stdout)}`);
        parseClient(r.stdout, `srt ${mode}`);
      };
      await probe('proxy');
      cases.push({ key: 'srt_connect', label: `srt ${srt.version} HTTP CONNECT via its $HTTPS_PROXY`, fn: hostCase('srt_connect', node, srtArgs('proxy')) });
      try {
        await probe('socks');
        cases.push({ key: 'srt_socks', label: `srt ${srt.version} SOCKS5 via localhost:1080`, fn: hostCase('srt_socks', node, srtArgs('socks')) });
      } catch (e) {
        srt.socksError = e.message;
        log(`srt SOCKS not measured: ${e.message}`);
      }
      srt.available = true;
    } catch (e) {
      srt.error = e.message;
      log(`srt not measured: ${e.message}`);
    }
  } else srt.error = 'skipped (--no-srt)';

  // ---- rounds ----
  const shuffled = seededShuffle();
  const ORDER = ['direct', 'ward_raw', 'ward_proxy', 'srt_connect', 'srt_socks', 'ward_raw_noaudit', 'host_node_hop', 'host_socat_hop'];
  cases.sort((x, y) => ORDER.indexOf(x.key) - ORDER.indexOf(y.key));
  const results = Object.fromEntries(cases.map((c) => [c.key, { conns: [], dns: [], keepOne: [], keepSplit: [], down: [], up: [], runs: [] }]));
  const errors = {};
  const live = new Set(cases.map((c) => c.key));
  const t0 = now();
  log(`${cases.length} cases x ${o.rounds} rounds: ${o.warmup} warm-up + ${o.n} timed connections per case${o.mib ? `, ${o.rounds} x ${o.mib} MiB each way` : ''}`);
  for (let r = 0; r < o.rounds; r++) {
    for (const c of shuffled(cases)) {
      if (!live.has(c.key)) continue;
      const ts = now();
      try {
        const out = await c.fn(r);
        const acc = results[c.key];
        acc.conns.push(...out.conns);
        acc.dns.push(...out.dns);
        if (out.keep) acc.keepOne.push(...out.keep.one), acc.keepSplit.push(...out.keep.split);
        if (out.down) acc.down.push(out.down);
        if (out.up) acc.up.push(out.up);
        acc.runs.push({ round: r, wallMs: Number(msSince(ts).toFixed(1)), hop: out.hop, addr: out.addr, resolveMs: out.resolveMs });
      } catch (e) {
        errors[c.key] = e.message;
        live.delete(c.key);
        log(`${c.key} dropped: ${e.message}`);
      }
    }
    log(`round ${r + 1}/${o.rounds} (${(msSince(t0) / 1000).toFixed(0)} s)`);
  }
  for (const c of children) c.stdin?.end();

  // The nearest-rank p50 (an actual sample; the lower middle one for an even count), as
  // this bench has always reported it: not lib.js's median(), which averages the middle two.
  const median = (xs) => pct(xs, 50);

  // ---- diagnostic: what one audit record costs the broker's event loop ----
  // run() appends every net decision to the audit log synchronously, as it is reported
  // (an allowed connection when it ends; a DNS answer before it is sent). Timed here
  // alone: the same kind of record, appended one at a time to a log of our own.
  let auditAppend = null;
  try {
    const w = new ward.AuditWriter({ path: path.join(tempDir('ward-bench-egress-append-'), 'audit.jsonl') });
    const every = w.checkpointEvery;
    const ev = { type: 'net', kind: 'connect', host: NAME, port, rule: `${NAME}:${port}`, verdict: 'allow', bytes_out: 5, bytes_in: 5, duration_ms: 1, run_id: 'bench' };
    const times = [];
    for (let i = 0; i < 5 * every; i++) {
      const t = now();
      w.append([ev]);
      times.push(msSince(t));
    }
    // The log starts with log-start + a checkpoint; then a checkpoint after every `every` records.
    const at = (lo, hi) => times.filter((_, i) => i % every >= lo && i % every < hi);
    auditAppend = { n: times.length, checkpointEvery: every, p50: median(times), p90: pct(times, 90), max: Math.max(...times), first8: median(at(0, 8)), last8: median(at(every - 8, every)), samples: times.map(round3) };
  } catch (e) {
    auditAppend = { error: e.message };
  }

  // ---- report ----
  const MiB = 1024 * 1024;
  const rate = (t) => t.bytes / MiB / (t.ms / 1000);
  /** MiB/s over the complete transfers; short ones are counted, not timed. */
  const mibs = (ts) => {
    const ok = ts.filter((t) => t.ok).map(rate);
    if (!ts.length) return null;
    return { median: ok.length ? median(ok) : null, min: ok.length ? Math.min(...ok) : null, max: ok.length ? Math.max(...ok) : null, n: ok.length, short: ts.length - ok.length };
  };
  const summary = {};
  for (const c of cases) {
    const a = results[c.key];
    if (!a.conns.length) continue;
    const first = a.conns.map((x) => x[2]);
    const close = a.conns.map((x) => x[3]);
    const ready = a.conns.map((x) => x[1]);
    summary[c.key] = {
      label: c.label,
      n: first.length,
      first_byte: { p50: median(first), p90: pct(first, 90), p99: pct(first, 99), min: Math.min(...first), max: Math.max(...first) },
      close: { p50: median(close), p90: pct(close, 90), p99: pct(close, 99) },
      ready: { p50: median(ready) },
      dns: a.dns.length ? { n: a.dns.length, p50: median(a.dns), p90: pct(a.dns, 90), p99: pct(a.dns, 99) } : null,
      keep_one: a.keepOne.length ? { n: a.keepOne.length, p50: median(a.keepOne), p90: pct(a.keepOne, 90), p99: pct(a.keepOne, 99) } : null,
      keep_split: a.keepSplit.length ? { n: a.keepSplit.length, p50: median(a.keepSplit), p90: pct(a.keepSplit, 90), p99: pct(a.keepSplit, 99), over20: a.keepSplit.filter((x) => x > 20).length } : null,
      down_mibs: mibs(a.down),
      up_mibs: mibs(a.up),
    };
  }
  const d = summary.direct;
  const f2 = (x) => (x === null || x === undefined ? '—' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  const added = (s, k = 'first_byte') => (s && d ? s[k].p50 - d[k].p50 : null);
  const share = (s, k) => (s?.[k]?.median && d?.[k]?.median ? s[k].median / d[k].median : null);
  const pc = (x) => (x === null ? '—' : `${(x * 100).toFixed(0)}%`);
  const sign = (x) => (x === null ? '—' : `${x >= 0 ? '+' : ''}${f2(x)}`);

  const md = [];
  const vsDirect = (c, cell) => (c.key === 'direct' ? '—' : cell); // the direct row's comparisons with itself
  md.push(`### Per connection: connect -> "ping" -> first response byte (ms; ${o.n} connections per case after ${o.warmup} warm-ups, over ${o.rounds} rounds)`, '');
  const perConnection = (s, c) => [f2(s.first_byte.p50), f2(s.first_byte.p90), f2(s.first_byte.p99), vsDirect(c, sign(added(s))), f2(s.close.p50), vsDirect(c, sign(added(s, 'close')))];
  md.push(...mdTable(['Case', 'p50', 'p90', 'p99', 'added p50 vs direct', 'p50 to close', 'added p50 to close'], caseRows(cases, summary, perConnection)), '');
  for (const c of cases) {
    const s = summary[c.key];
    if (s && /proxy|connect|socks/.test(c.key)) md.push(`- ${c.key}: proxy handshake done at p50 ${f2(s.ready.p50)} ms (included above).`);
  }
  for (const k of ['ward_raw', 'ward_raw_noaudit']) {
    const x = summary[k]?.dns;
    if (x) md.push(`- ${k}: DNS, \`dns.lookup('${NAME}')\` inside (UDP -> relay -> broker; not in the times above): p50 ${f2(x.p50)}, p90 ${f2(x.p90)}, p99 ${f2(x.p99)} ms (n = ${x.n}).`);
  }
  if (auditAppend?.p50) md.push(`- Audit log, one \`net\` record appended alone (diagnostic, ${auditAppend.n} appends): p50 ${f2(auditAppend.p50)}, p90 ${f2(auditAppend.p90)}, max ${f2(auditAppend.max)} ms; ${f2(auditAppend.first8)} ms just after a checkpoint, ${f2(auditAppend.last8)} ms just before the next (one every ${auditAppend.checkpointEvery} records).`);
  else if (auditAppend?.error) md.push(`- Audit append not measured: ${auditAppend.error}`);
  md.push('');
  if (o.keepN > 0) {
    md.push(`### Per request on one open connection (ms; ${o.keepN} requests per case in one write, then ${o.keepN} written in two pieces)`, '');
    const header = ['Case', 'one write: p50', 'p90', 'p99', 'two writes: p50', 'p90', 'p99', 'two writes over 20 ms'];
    const perRequest = ({ keep_one: one, keep_split: two }) => [f2(one.p50), f2(one.p90), f2(one.p99), f2(two.p50), f2(two.p90), f2(two.p99), pc(two.over20 / two.n)];
    md.push(...mdTable(header, caseRows(cases.filter((c) => summary[c.key]?.keep_one), summary, perRequest)), '');
  }
  if (o.mib > 0) {
    md.push(`### Throughput: one ${o.mib} MiB transfer per round and direction (MiB/s, median of ${o.rounds}; from before connect() to the last byte / the server's "ok")`, '');
    const cell = (m) => (m ? `${f2(m.median)} (${f2(m.min)}–${f2(m.max)})${m.short ? `, **${m.short} of ${m.n + m.short} short**` : ''}` : '—');
    const perTransfer = (s, c) => [cell(s.down_mibs), vsDirect(c, pc(share(s, 'down_mibs'))), cell(s.up_mibs), vsDirect(c, pc(share(s, 'up_mibs')))];
    md.push(...mdTable(['Case', 'down (server -> client)', '% of direct', 'up (client -> server)', '% of direct'], caseRows(cases.filter((c) => summary[c.key]), summary, perTransfer)), '');
    for (const c of cases) {
      for (const dir of ['down', 'up']) {
        for (const t of results[c.key][dir].filter((x) => !x.ok)) md.push(`- ${c.key} ${dir}: short or altered transfer: ${dir === 'down' ? `${t.got} of ${t.bytes} bytes arrived${t.badAt !== undefined ? `, not the pattern in the chunk at ${t.badAt}` : ''}` : `the server's reply was ${JSON.stringify(t.reply)}`}${t.error ? ` (${t.error})` : ''}, then the connection closed normally.`);
      }
    }
    md.push('');
  }
  const targets = [];
  const target = (name, value, ok, shown) => targets.push({ name, value, met: value === null ? null : ok(value), shown: value === null ? 'not measured' : shown(value) });
  for (const k of ['ward_raw', 'ward_proxy']) {
    target(`${k}: <= 1 ms added per connection (p50, first byte)`, added(summary[k]), (v) => v <= 1, (v) => `${sign(v)} ms`);
  }
  if (o.mib > 0) {
    for (const k of ['ward_raw', 'ward_proxy']) {
      for (const dir of ['down', 'up']) target(`${k}: >= 80% of direct throughput, ${dir}`, share(summary[k], `${dir}_mibs`), (v) => v >= 0.8, pc);
    }
  }
  md.push(...targetsTable(targets));
  if (!srt.available) md.push(`srt: not measured: ${srt.error}`, '');
  if (srt.socksError) md.push(`srt SOCKS: not measured: ${srt.socksError}`, '');
  md.push(...droppedLines(errors));
  machine.loadavg_end = loadavg();
  machine.total_s = Number((msSince(t0) / 1000).toFixed(1));
  md.push(`Machine: ${machine.nproc} CPUs (${machine.cpu}), kernel ${machine.kernel}, Node ${machine.node}, uid ${machine.uid}, Ward ${machine.ward_commit}${machine.ward_tree_dirty ? ' (uncommitted changes)' : ''}, srt ${srt.version ?? 'n/a'}; load average ${machine.loadavg_start.join(' ')} at the start, ${machine.loadavg_end.join(' ')} at the end; ${machine.total_s} s.`);
  console.log(md.join('\n'));

  saveRaw(
    o.out,
    {
      machine,
      options: { n: o.n, warmup: o.warmup, rounds: o.rounds, mib: o.mib, dnsN: o.dnsN },
      method:
        'per connection, inside the client: [connect, proxy handshake done, first response byte, closed] in ms from before net.connect(), process.hrtime; each round runs every case once (one client process or sandbox run) in a shuffled order; transfers: ms from before connect() to the last byte (down) or the server\'s "ok" (up)',
      port,
      srt,
      summary,
      targets,
      audit_append: auditAppend,
      net_checks: netChecks,
      errors,
      samples: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { conns_fields: ['connect_ms', 'ready_ms', 'first_byte_ms', 'close_ms'], ...v }])),
    },
    1,
  );
  cleanup();
  process.exit(0);
}
