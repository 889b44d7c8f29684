/**
 * The egress broker's unix socket, attacked from inside a real sandbox. A pathname unix socket
 * ignores the network namespace and the sandbox runs as the same uid, so a sandbox that can
 * reach a broker's socket could speak the relay's protocol to it: be let out by that run's
 * policy, or forge the byte counts of its own connections. Two things stop it: the run
 * directory lives under Ward's state directory (hidden by every policy), and the broker obeys
 * only a peer that sends the run's key (which only the relay has).
 *
 * Ward used to make its run directories in TMPDIR: while a run starts here, TMPDIR points at a
 * directory of this file's own (`runTmp`), so the sandboxes look for sockets only where this
 * file's runs made them, old code or new, never at other processes' brokers.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compile, start, WardError, type RunHandle } from '../../src/index.js';
import type { NetEvent } from '../../src/net/broker.js';
import { launch, type RunRecord } from '../../src/sandbox/launch.js';
import { stateDir } from '../../src/paths.js';
import { ROOT, sandboxFixture, tempDir } from '../helpers.js';
import { sweepRunDirs } from '../../src/sandbox/run-dir.js';

const runTmp = tempDir('ward-runsock-');

/** The unix sockets below `dir`, found on the host. */
function socketsBelow(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isSocket())
    .map((e) => path.join(e.parentPath, e.name));
}

/** Starts a run with TMPDIR at runTmp (where Ward made its run directory before; it reads TMPDIR as it starts one). */
function startHere(...args: Parameters<typeof start>): RunHandle {
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = runTmp;
  try {
    return start(...args);
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
}

/** A host sink on 127.0.0.1: counts what it gets, says "ok" once it has `want` bytes on one connection. */
interface Sink {
  server: Server;
  port: number;
  got: string[];
  bytes: number;
  conns: Set<Socket>;
}
let sink: Sink;
const WANT = 1_000_000;

before(async () => {
  const s: Sink = { server: createServer(), port: 0, got: [], bytes: 0, conns: new Set() };
  s.server.on('connection', (c: Socket) => {
    s.conns.add(c);
    c.on('close', () => s.conns.delete(c));
    c.on('error', () => {});
    let n = 0;
    c.on('data', (d: Buffer) => {
      s.bytes += d.length;
      if (s.got.length < 20) s.got.push(d.toString('latin1', 0, Math.min(d.length, 64)));
      n += d.length;
      if (n === WANT) c.write('ok\n');
    });
    c.on('end', () => c.end());
  });
  await new Promise<void>((r) => s.server.listen(0, '127.0.0.1', () => r()));
  s.port = (s.server.address() as AddressInfo).port;
  sink = s;
});
after(() => {
  // A connection whose relay side was cut by a count the broker took (the old code) stays open.
  for (const c of sink.conns) c.destroy();
  sink.server.close();
});

/**
 * Python, run in the sandbox: every broker socket it can find under the given globs, and what
 * it says to each, as the red team did: the relay's lines without a key, with a wrong key, and
 * "done" counts for the first ids. Prints "found N" and one line per answer it got.
 */
const PY_HOP = `import glob, socket, sys
port = int(sys.argv[1])
found = sorted({p for g in sys.argv[2:] for p in glob.glob(g, recursive=True)})
print('found', len(found))
def say(p, data):
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(p)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = s.recv(200)
        print('answer', p, repr(got))
    except OSError as e:
        print('refused', p, e)
for p in found:
    say(p, b'tcp 127.0.0.1 %d\\nHELLO-NOKEY\\n' % port)
    say(p, b'\\0' * 32 + b'tcp 127.0.0.1 %d\\nHELLO-BADKEY\\n' % port)
    for i in range(1, 21):
        say(p, b'done %d 7 7 -\\n' % i)
`;

/** Where a run's broker socket is, for a run whose Ward state is under `stateHome`, now and as it used to be (under TMPDIR). */
const socketGlobs = (stateHome: string) => [path.join(runTmp, 'ward-net-*', 'egress.sock'), path.join(stateHome, '**', 'egress.sock')];

describe('the egress broker socket, from inside a sandbox', { timeout: 120_000 }, () => {
  it("another run's broker, reached under a /tmp grant, lets nothing out and records nothing allowed", async () => {
    // Run B: allowed to reach the sink. Its Ward state is not A's (another XDG_STATE_HOME), so
    // A's mandatory denies do not hide it. Every socket a grant exposes is masked, so A is given
    // B's sockets by their own paths (as a careless policy could): only B's key keeps A from
    // speaking to B's broker.
    const fxB = sandboxFixture();
    const stateB = path.join(runTmp, 'stateB');
    const envB = { ...fxB.env, XDG_STATE_HOME: stateB };
    let launched!: () => void;
    const bReady = new Promise<void>((r) => (launched = r));
    const b = startHere({ policy: { extends: ['minimal'], network: { allow_local: [sink.port] } } }, ['cat'], {
      workspace: fxB.ws,
      env: envB,
      audit: false,
      stdin: 'pipe',
      onRecord: (rec: RunRecord) => rec.type === 'launch' && launched(),
    });
    await bReady;
    const bSockets = socketsBelow(stateB);
    assert.ok(bSockets.length > 0, `B's broker socket is under ${stateB}`);
    const fxA = sandboxFixture();
    const masked = await startHere({ policy: { extends: ['minimal'], filesystem: { write: [fxA.ws], read: [runTmp] } } }, ['python3', '-c', PY_HOP, String(sink.port), ...socketGlobs(stateB)], { workspace: fxA.ws, env: fxA.env, audit: false }).result;
    assert.doesNotMatch(masked.stdout.toString(), /^answer /m, 'under the /tmp grant alone, B\'s sockets are masked');
    assert.match(masked.stdout.toString(), /^refused .*Permission denied/m);
    const a = await startHere(
      { policy: { extends: ['minimal'], filesystem: { write: [fxA.ws], read: [runTmp, ...bSockets] } } },
      ['python3', '-c', PY_HOP, String(sink.port), ...socketGlobs(stateB)],
      { workspace: fxA.ws, env: fxA.env, audit: false },
    ).result;
    b.stdin!.end();
    const rb = await b.result;
    assert.equal(a.exitCode, 0, a.stderr.toString());
    const out = a.stdout.toString();
    assert.match(out, /^found [1-9]/m, `A found B's socket (the attack was tried): ${out}`);
    assert.equal(sink.bytes, 0, `the sink got ${JSON.stringify(sink.got)} from A through B's broker`);
    assert.doesNotMatch(out, /^answer .* b'.+'$/m, `B's broker said something to A: ${out}`);
    assert.equal(rb.exitCode, 0);
    const allowed = rb.net.filter((e: NetEvent) => e.verdict === 'allow');
    assert.deepEqual(allowed, [], 'nothing of A is recorded as allowed under B');
    assert.ok(rb.net.length > 0 && rb.net.every((e) => e.verdict === 'deny' && e.reason === 'not-the-relay'), `B records each of A's tries as not-the-relay: ${JSON.stringify(rb.net)}`);
  });

  it("a sandbox cannot forge its own connection's byte count: the record keeps what was sent", async () => {
    const fx = sandboxFixture();
    sink.bytes = 0;
    const r = await startHere(
      { policy: { extends: ['minimal'], filesystem: { write: [fx.ws, runTmp] }, network: { allow_local: [sink.port] } } },
      [
        'python3',
        '-c',
        // The connection stays open while the counts are forged: a count the broker took would
        // end it and stand as its record.
        `import socket, sys
c = socket.create_connection(('127.0.0.1', ${sink.port}), timeout=10)
c.sendall(b'x' * ${WANT})
assert c.recv(3) == b'ok\\n'
${PY_HOP.replace('port = int(sys.argv[1])', `port = ${sink.port}`)}
c.close()`,
        'unused',
        ...socketGlobs(stateDir(fx.env)),
      ],
      { workspace: fx.ws, env: fx.env, audit: false },
    ).result;
    assert.equal(r.exitCode, 0, r.stderr.toString());
    const conns = r.net.filter((e) => e.kind === 'connect' && e.verdict === 'allow');
    // One connection, counted as sent: none of the sandbox's own, none forged.
    assert.deepEqual(conns.map((e) => e.bytes_out), [WANT], `records ${JSON.stringify(r.net)}; the sandbox said: ${r.stdout.toString()}`);
    assert.match(r.stdout.toString(), /^found 0$/m, 'its own run directory is hidden from it');
    assert.equal(sink.bytes, WANT);
  });
});

describe('the run directory', { timeout: 60_000 }, () => {
  const policy = { policy: { extends: ['minimal'], network: { allow_local: [1] } } } as const;

  it("is under Ward's state directory and is removed after the run", async () => {
    const fx = sandboxFixture();
    const state = path.join(stateDir(fx.env), 'run');
    let during: string[] = [];
    const r = await startHere(policy, ['true'], {
      workspace: fx.ws,
      env: fx.env,
      audit: false,
      onRecord: (rec: RunRecord) => {
        if (rec.type === 'launch') during = readdirSync(state);
      },
    }).result;
    assert.equal(r.exitCode, 0, r.stderr.toString());
    assert.equal(during.length, 1, 'one run directory while it runs');
    assert.match(during[0]!, /^net-/);
    assert.deepEqual(readdirSync(state), []);
    assert.deepEqual(readdirSync(runTmp).filter((n) => n.startsWith('ward-net-')), []);
  });

  it('is refused when the plan would show it to the sandbox (a plan compiled for another environment)', () => {
    const fx = sandboxFixture();
    const shown = tempDir();
    const plan = compile({ policy: { extends: ['minimal'], filesystem: { read: [shown] }, network: { allow_local: [1] } } }, { workspace: fx.ws, env: fx.env });
    assert.throws(
      () => launch(plan, ['true'], { env: { ...fx.env, XDG_STATE_HOME: path.join(shown, 'state') } }),
      (e: unknown) => e instanceof WardError && e.step === 'egress' && /inside a path this policy lets the sandbox see/.test(e.message) && /XDG_STATE_HOME/.test(e.fix ?? ''),
    );
    assert.deepEqual(readdirSync(path.join(shown, 'state', 'ward', 'run')), [], 'no run directory was made');
  });

  it('may lie deeper than a unix socket path holds: the broker and the relay reach the socket from its directory', async () => {
    const fx = sandboxFixture();
    const deep = path.join(tempDir(), 'd'.repeat(60), 'e'.repeat(40));
    mkdirSync(deep, { recursive: true });
    assert.ok(Buffer.byteLength(path.join(deep, 'ward', 'run', 'net-XXXXXX', 'egress.sock')) > 107);
    writeFileSync(path.join(fx.ws, 'q.py'), `import socket\nprint(socket.gethostbyname('api.test'))\n`);
    const r = await startHere({ policy: { extends: ['minimal'], filesystem: { read: [fx.ws] }, network: { allow: ['api.test:443'] } } }, ['python3', 'q.py'], {
      workspace: fx.ws,
      env: { ...fx.env, XDG_STATE_HOME: deep },
      audit: false,
    }).result;
    assert.equal(r.exitCode, 0, r.stderr.toString());
    assert.equal(r.stdout.toString().trim(), '127.100.0.1');
    assert.ok(r.net.some((e) => e.kind === 'dns' && e.verdict === 'allow' && e.host === 'api.test'), JSON.stringify(r.net));
    assert.deepEqual(readdirSync(path.join(deep, 'ward', 'run')), []);
  });

  it('left by a Ward that was killed is swept by a later one; a live run\'s is not touched', async () => {
    const fx = sandboxFixture();
    const runs = path.join(stateDir(fx.env), 'run');
    const policyFile = path.join(fx.ws, '..', `p-${path.basename(fx.ws)}.json`);
    writeFileSync(policyFile, JSON.stringify(policy.policy));
    // A real Ward, SIGKILLed while its sandbox runs: nothing of it can clean up.
    const killed = spawn(process.execPath, [path.join(ROOT, 'bin/ward.js'), 'run', '--policy', policyFile, '--workspace', fx.ws, '--', 'sh', '-c', 'echo up; exec sleep 60'], { env: fx.env, stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      killed.stdout.on('data', (d: Buffer) => d.toString().includes('up') && resolve());
      let err = '';
      killed.stderr.on('data', (d: Buffer) => (err += d.toString()));
      killed.on('exit', (code) => reject(new Error(`ward exited ${code} before its command ran: ${err}`)));
    });
    const left = readdirSync(runs);
    assert.equal(left.length, 1, 'the killed run has its directory');
    assert.match(left[0]!, new RegExp(`^net-${killed.pid}-`));
    const gone = new Promise<void>((r) => killed.on('exit', () => r()));
    killed.kill('SIGKILL');
    await gone;
    assert.deepEqual(readdirSync(runs), left, 'nothing removed it: its Ward was killed');

    // A live run beside it: its directory stays, and its broker is not knocked on.
    let launched!: () => void;
    const launchedP = new Promise<void>((r) => (launched = r));
    const live = startHere(policy, ['sh', '-c', 'read x'], { workspace: fx.ws, env: fx.env, audit: false, stdin: 'pipe', onRecord: (rec: RunRecord) => rec.type === 'launch' && launched() });
    await launchedP;
    const liveDir = readdirSync(runs).find((n) => n.startsWith(`net-${process.pid}-`)) ?? '';
    try {
      assert.ok(liveDir, 'the live run made its directory');
      // The live run's start sweeps in the background; a sweep now finishes the job if that one
      // has not yet, and must leave the live run alone either way.
      await sweepRunDirs(runs);
      assert.deepEqual(readdirSync(runs), [liveDir], 'the killed run\'s directory is swept, the live run\'s stays');
    } finally {
      live.stdin!.end('x\n');
    }
    const r = await live.result;
    assert.equal(r.exitCode, 0, r.stderr.toString());
    assert.ok(!r.net.some((e) => JSON.stringify(e).includes('not-the-relay')), JSON.stringify(r.net));
    assert.deepEqual(readdirSync(runs), []);
  });
});
