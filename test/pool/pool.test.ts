/**
 * Pooled sandboxes (src/pool/), in real sandboxes: a pooled command meets the same walls as an
 * unpooled one (each shown by a failed attack, pooled and unpooled side by side), no two commands
 * share a sandbox, a warm sandbox killed while it waits is never handed out, close() leaves
 * nothing behind, and bad input is refused with the problem named.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createPool, run, WardError, type PolicyInput, type Pool, type RunResult } from '../../src/index.js';
import { eventually, hasCgroup, pySyscall, sandboxFixture, tempDir, wardCgroupsOf, which } from '../helpers.js';
import { supervisedModeProblem } from '../../src/supervisor/preflight.js';
import { LAUNCHER_INSIDE } from '../../src/sandbox/bwrap.js';
import { stateDir } from '../../src/paths.js';

const pools: Pool[] = [];
after(async () => {
  for (const p of pools) await p.close();
});

function setup(policy: PolicyInput = { profile: 'default' }, size = 1, extra: { audit?: string | false } = {}) {
  const fx = sandboxFixture();
  const pool = createPool({ policy, size, workspace: fx.ws, env: fx.env, audit: extra.audit ?? false, allowDegraded: !hasCgroup });
  pools.push(pool);
  const unpooled = (argv: string[]) => run(policy, argv, { workspace: fx.ws, env: fx.env, audit: false, stdin: 'ignore', allowDegraded: !hasCgroup });
  return { ...fx, pool, unpooled };
}

const text = (r: RunResult) => ({ code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() });

/** Every process under `pid` (children, recursively), with its command line. */
function descendants(pid: number): { pid: number; cmd: string }[] {
  const out: { pid: number; cmd: string }[] = [];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    let kids = '';
    try {
      kids = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
    } catch {
      continue;
    }
    for (const k of kids ? kids.split(' ').map(Number) : []) {
      let cmd = '';
      try {
        cmd = readFileSync(`/proc/${k}/cmdline`, 'utf8').replace(/\0/g, ' ');
      } catch {
        /* gone */
      }
      out.push({ pid: k, cmd }, ...descendants(k));
    }
  }
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('pool: the same walls as an unpooled run', () => {
  it('a denied file read: /etc/shadow absent, and refused by Landlock when /etc is granted', async () => {
    const t = setup({ policy: { extends: ['default'], filesystem: { read: ['/etc'] } } });
    const pooled = text(await t.pool.run(['cat', '/etc/shadow']));
    const plain = text(await t.unpooled(['cat', '/etc/shadow']));
    assert.notEqual(pooled.code, 0);
    assert.match(pooled.err, /Permission denied/);
    assert.equal(pooled.out, '');
    assert.deepEqual(pooled, plain, 'pooled and unpooled answer alike');
  });

  it('a denied network connect: the sandbox has no network at all', async () => {
    const t = setup();
    const probe = ['python3', '-c', "import socket\ns = socket.socket()\ns.settimeout(3)\ntry:\n  s.connect(('1.1.1.1', 443)); print('CONNECTED')\nexcept OSError as e:\n  print('errno', e.errno)"];
    const pooled = text(await t.pool.run(probe));
    const plain = text(await t.unpooled(probe));
    assert.doesNotMatch(pooled.out, /CONNECTED/);
    assert.match(pooled.out, /errno 101\b/, 'ENETUNREACH: an empty network namespace');
    assert.equal(pooled.out, plain.out);
  });

  it('a seccomp-denied syscall (ptrace) gets EPERM; bpf too', async () => {
    const t = setup();
    const ptrace = text(await t.pool.run(pySyscall('r = libc.ptrace(0, 0, 0, 0)')));
    assert.match(ptrace.out, /errno=1\b/);
    const bpf = text(await t.pool.run(pySyscall('r = libc.syscall(321, 0, 0, 0)')));
    assert.match(bpf.out, /errno=1\b/);
    assert.equal(ptrace.out, text(await t.unpooled(pySyscall('r = libc.ptrace(0, 0, 0, 0)'))).out);
  });

  it('Landlock holds: a program copied to writable /tmp cannot be executed', async () => {
    const t = setup();
    const r = text(await t.pool.run(['sh', '-c', 'cp /bin/true /tmp/t && chmod +x /tmp/t && /tmp/t && echo EXECUTED']));
    assert.notEqual(r.code, 0);
    assert.match(r.err, /Permission denied/);
    assert.doesNotMatch(r.out, /EXECUTED/);
  });

  it('the command runs with no capabilities, no_new_privs, seccomp and Landlock, as observed from inside and by the launcher', async () => {
    const t = setup();
    const r = await t.pool.run(['sh', '-c', 'grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status']);
    const out = r.stdout.toString();
    assert.match(out, /CapEff:\s+0+\n/);
    assert.match(out, /NoNewPrivs:\s+1/);
    assert.match(out, /Seccomp:\s+2/);
    assert.equal(r.launch.observed?.landlock.status, 'applied');
    const plain = await t.unpooled(['true']);
    assert.deepEqual(r.launch.layers, plain.launch.layers, 'the same layers as an unpooled run of the policy');
    assert.equal(r.launch.plan_sha256, plain.launch.plan_sha256);
  });

  it('the argv channel is not in the sandbox: the command holds fds 0-2 only, and pid 1 holds nothing of Ward', async () => {
    const t = setup();
    const r = await t.pool.run(['sh', '-c', 'ls /proc/self/fd; echo ---; ls /proc/1/fd 2>/dev/null']);
    const [self, init] = r.stdout.toString().split('---\n');
    // ls's own directory fd is the 3 it lists.
    assert.deepEqual(self!.trim().split('\n'), ['0', '1', '2', '3']);
    assert.ok(!init!.split('\n').includes('10'), `bwrap's init does not hold the argv channel: ${init}`);
  });

  it('a limit kill: the wall clock stops a sleeper (124), counted from hand-out, not from warm-up', async () => {
    const t = setup({ policy: { extends: ['default'], resources: { wall_time: '2s' } } });
    await t.pool.ready();
    // Warm for longer than the limit: the clock must not have started.
    await new Promise((r) => setTimeout(r, 2500));
    const ok = await t.pool.run(['sh', '-c', 'sleep 0.3; echo done']);
    assert.equal(ok.exitCode, 0, ok.stderr.toString());
    assert.equal(ok.stdout.toString(), 'done\n');
    const killed = await t.pool.run(['sh', '-c', 'sleep 30; echo survived']);
    assert.equal(killed.exitCode, 124);
    assert.equal(killed.reason, 'timeout');
    assert.doesNotMatch(killed.stdout.toString(), /survived/);
  });

  it('a limit kill: a memory hog is killed by the cgroup (137, memory named)', { skip: !hasCgroup && 'no cgroup for this user: memory limits are refused here (tested in test/sandbox/limits.test.ts)' }, async () => {
    const t = setup({ policy: { extends: ['default'], resources: { memory: '64MiB', wall_time: '60s' } } });
    const r = await t.pool.run(['python3', '-c', 'a = []\nwhile True: a.append(bytearray(4 << 20))']);
    assert.equal(r.exitCode, 137);
    assert.equal(r.reason, 'memory');
  });
});

describe('pool: dynamic rules (supervised mode) in pooled sandboxes', { skip: (!!supervisedModeProblem() || !which('python3')) && 'supervised mode or python3 unavailable here' }, () => {
  it('after reading secrets, writes under src/ are refused, in that sandbox only; each command starts with fresh rule state', async () => {
    const fx = sandboxFixture();
    mkdirSync(path.join(fx.ws, 'secrets'));
    mkdirSync(path.join(fx.ws, 'src'));
    writeFileSync(path.join(fx.ws, 'secrets', 'key.txt'), 'TOPSECRET\n');
    writeFileSync(path.join(fx.ws, 'src', 'main.c'), 'int main(){}\n');
    const policy = { policy: { extends: ['default'], rules: [{ after: 'read ${WORKSPACE}/secrets/**', revoke: 'write ${WORKSPACE}/src/**' }] } };
    const pool = createPool({ policy, size: 1, workspace: fx.ws, env: fx.env, audit: false, allowDegraded: !hasCgroup });
    pools.push(pool);
    const probe = `
def w(tag):
    try:
        open('src/main.c', 'a').write('//' + tag + '\\n'); print(tag, 'ok')
    except OSError as e:
        print(tag, 'refused errno=%s' % e.errno)
w('before')
open('secrets/key.txt').read()
w('after')
`;
    const r = await pool.run(['python3', '-c', probe]);
    const out = r.stdout.toString() + r.stderr.toString();
    assert.match(out, /^before ok$/m, out);
    assert.match(out, /^after refused errno=13$/m, out);
    assert.equal(r.revocations.length, 1);
    assert.ok(r.launch.layers.supervisor, 'the launch record names the supervisor');
    assert.ok(r.denials.some((d) => d.layer === 'supervisor'));
    // The next command gets a sandbox of its own with its own, untriggered rules.
    const r2 = await pool.run(['python3', '-c', "open('src/main.c', 'a').write('//next\\n'); print('next ok')"]);
    assert.equal(r2.stdout.toString(), 'next ok\n', r2.stderr.toString());
    assert.equal(readFileSync(path.join(fx.ws, 'src', 'main.c'), 'utf8'), 'int main(){}\n//before\n//next\n');
  });
});

describe('pool: egress (network.allow) in pooled sandboxes', { skip: !which('python3') && 'python3 missing' }, () => {
  let server: Server;
  let port = 0;
  before(async () => {
    server = createServer((req, res) => res.end(`hello ${req.url}\n`));
    port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
  });
  after(() => server.close());

  it('the allowed name works, any other is refused, and each decision is recorded after the launch record', async () => {
    const fx = sandboxFixture();
    const log = path.join(tempDir('ward-pool-audit-'), 'audit.jsonl');
    // The brokers' run directories are under the fixture's Ward state, to be checked.
    const runDirs = path.join(stateDir(fx.env), 'run');
    const policy = { policy: { extends: ['default'], network: { allow: [`api.test:${port}`] } } };
    const pool = createPool({ policy, size: 1, workspace: fx.ws, env: fx.env, audit: log, allowDegraded: !hasCgroup, egress: { resolve: async () => '127.0.0.1' } });
    pools.push(pool);
    await pool.ready();
    assert.equal(readdirSync(runDirs).filter((d) => d.startsWith('net-')).length, 1, 'the warm sandbox has its broker up');
    const code = `
import socket
def get(host):
    try:
        ip = socket.gethostbyname(host)
        s = socket.create_connection((ip, ${port}), timeout=5)
        s.sendall(('GET /x HTTP/1.1\\r\\nHost: %s\\r\\nConnection: close\\r\\n\\r\\n' % host).encode())
        data = b''
        while True:
            c = s.recv(4096)
            if not c: break
            data += c
        print(host, 'ok' if b'hello /x' in data else 'closed')
    except OSError as e:
        print(host, 'refused', type(e).__name__)
get('api.test')
get('evil.test')
try:
    socket.create_connection(('1.1.1.1', 443), timeout=3); print('direct ok')
except OSError as e:
    print('direct refused errno=%s' % e.errno)
`;
    const r = await pool.run(['python3', '-c', code]);
    const out = r.stdout.toString();
    assert.match(out, /^api\.test ok$/m, out + r.stderr.toString());
    assert.match(out, /^evil\.test refused/m);
    assert.match(out, /^direct refused errno=\d+$/m);
    assert.ok(r.net.some((e) => JSON.stringify(e).includes('evil.test')), 'the refused lookup is recorded');
    assert.ok(r.launch.layers.network, 'the launch record names the egress path');
    const types = readFileSync(log, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { type: string }).type);
    assert.ok(types.includes('net'));
    assert.ok(types.indexOf('launch') >= 0 && types.indexOf('launch') < types.indexOf('net'), types.join(' '));
    assert.ok(types.lastIndexOf('net') < types.indexOf('exit'), types.join(' '));
    // Every broker and run directory (the used sandbox's and its warm replacement's) goes with close().
    await pool.close();
    assert.deepEqual(readdirSync(runDirs), []);
  });
});

describe('pool: one sandbox, one command', () => {
  it('a file one command leaves in /tmp is absent for every next one', async () => {
    const t = setup({ profile: 'default' }, 2);
    for (let i = 0; i < 4; i++) {
      const r = await t.pool.run(['sh', '-c', `if [ -e /tmp/marker ]; then cat /tmp/marker; exit 9; fi; echo "$i" > /tmp/marker; echo $$`.replace('$i', String(i))]);
      assert.equal(r.exitCode, 0, `command ${i} found another command's /tmp/marker: ${r.stdout.toString()}`);
    }
  });

  it('stdin can be piped with start(); output can be forwarded', async () => {
    const t = setup();
    const h = await t.pool.start(['sh', '-c', 'read line; echo "got $line"'], { stdin: 'pipe' });
    h.stdin!.end('hello\n');
    const r = await h.result;
    assert.equal(r.stdout.toString(), 'got hello\n');
    const { PassThrough } = await import('node:stream');
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const f = await t.pool.run(['echo', 'forwarded'], { output: { stdout: out, stderr: new PassThrough() } });
    assert.equal(f.exitCode, 0);
    assert.equal(Buffer.concat(chunks).toString(), 'forwarded\n');
    assert.equal(f.stdout.length, 0, 'forwarded output is not kept');
  });

  it('a sandbox whose warm launcher is killed while it waits is dropped and replaced, never handed out', async () => {
    const t = setup();
    await t.pool.ready();
    const warmPid = t.pool.stats().warmPids[0]!;
    // The launcher itself (bwrap's own command lines name it too, after "--": not those).
    const inner = descendants(warmPid).find((p) => p.cmd.startsWith(`${LAUNCHER_INSIDE} inner `));
    assert.ok(inner, `the warm launcher is found under ${warmPid}`);
    process.kill(inner.pid, 'SIGKILL');
    // Asked for at once: the pool must not give the command to the dying sandbox (or, if it
    // was already written, must see it was never taken and run it elsewhere).
    const r = await t.pool.run(['sh', '-c', 'echo ran']);
    assert.equal(r.exitCode, 0, r.stderr.toString());
    assert.equal(r.stdout.toString(), 'ran\n');
    assert.ok(await eventually(() => t.pool.stats().lost >= 1 || !alive(warmPid)), 'the killed sandbox is gone');
    assert.ok(await eventually(() => t.pool.stats().warm === 1), 'and replaced');
    assert.notEqual(t.pool.stats().warmPids[0], warmPid);
  });

  it('the audit log gets the launch record at hand-out (pooled, warm time, hashes, argv) and the exit record', async () => {
    const log = path.join(tempDir('ward-pool-audit-'), 'audit.jsonl');
    const t = setup({ profile: 'default' }, 1, { audit: log });
    await t.pool.ready();
    const r = await t.pool.run(['sh', '-c', 'exit 4']);
    assert.equal(r.exitCode, 4);
    const records = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const launch = records.find((x) => x.type === 'launch')!;
    const exit = records.find((x) => x.type === 'exit')!;
    assert.ok(launch && exit);
    assert.equal(launch.run_id, exit.run_id);
    assert.deepEqual(launch.argv, ['sh', '-c', 'exit 4']);
    assert.equal(launch.policy_sha256, r.launch.policy_sha256);
    assert.equal(launch.plan_sha256, r.launch.plan_sha256);
    assert.equal(typeof (launch.pooled as { warm_ms: number }).warm_ms, 'number');
    assert.equal(exit.exit_code, 4);
    // One command, one launch record: warm sandboxes that ran nothing wrote nothing.
    assert.equal(records.filter((x) => x.type === 'launch').length, 1);
  });
});

describe('pool: close() and bad input', () => {
  it('close() kills warm and running sandboxes and leaves no process or cgroup behind', async () => {
    // The pools of the tests before go first: what is left is then left by close().
    for (const p of pools.splice(0)) await p.close();
    const t = setup({ profile: 'default' }, 2);
    await t.pool.ready();
    const running = t.pool.run(['sleep', '30']);
    await eventually(() => t.pool.stats().running === 1);
    const pids = [...t.pool.stats().warmPids];
    const tree = pids.flatMap((p) => [p, ...descendants(p).map((d) => d.pid)]);
    assert.ok(tree.length >= 2);
    await t.pool.close();
    const r = await running.catch((e: unknown) => e);
    assert.ok(!(r instanceof Error) || r instanceof WardError);
    if (!(r instanceof Error)) assert.notEqual((r as RunResult).exitCode, 0, 'the running command was killed');
    for (const p of tree) assert.equal(await eventually(() => !alive(p)), true, `process ${p} is gone`);
    assert.deepEqual(wardCgroupsOf(), []);
    assert.equal(descendants(process.pid).filter((d) => /bwrap|launch/.test(d.cmd)).length, 0);
    await assert.rejects(t.pool.run(['true']), /pool is closed|pool was closed/);
  });

  it('refuses bad options, naming the problem', () => {
    const fx = sandboxFixture();
    const base = { workspace: fx.ws, env: fx.env, audit: false as const };
    assert.throws(() => createPool({ ...base, size: 0 }), /size must be an integer from 1 to 32, got 0/);
    assert.throws(() => createPool({ ...base, size: 1.5 }), /size must be an integer/);
    assert.throws(() => createPool({ ...base, size: 33 }), /size must be an integer from 1 to 32/);
    assert.throws(() => createPool({ ...base } as never), /size must be an integer/);
    assert.throws(() => createPool({ ...base, size: 1, sise: 2 } as never), /unknown option 'sise'/);
    assert.throws(() => createPool(null as never), /needs an options object/);
  });

  it('refuses policy features it cannot pool rather than run them with less', () => {
    const fx = sandboxFixture();
    const base = { workspace: fx.ws, env: fx.env, audit: false as const, size: 1 };
    assert.throws(
      () => createPool({ ...base, env: { ...fx.env, TOKEN: 'x' }, policy: { policy: { extends: ['default'], network: { allow: ['api.test:443'] }, secrets: { TOKEN: { from_env: 'TOKEN', hosts: ['api.test:443'] } } } } }),
      /cannot run in a pool: brokered credentials \(`secrets:`\)/,
    );
    // A sandbox that cannot start at all fails createPool() itself, with launch()'s own error.
    assert.throws(() => createPool({ ...base, allowDegraded: true, policy: { policy: { extends: ['default'], sandbox: { allow_degraded: false } } } }), /does not allow degraded runs/);
  });

  it('refuses bad run input before spending a sandbox on it', async () => {
    const t = setup();
    await t.pool.ready();
    const pid = t.pool.stats().warmPids[0];
    await assert.rejects(t.pool.run([]), /no command given/);
    await assert.rejects(t.pool.run(['echo', 'a\0b']), /contains a NUL byte/);
    await assert.rejects(t.pool.run(['']), /argv\[0\]\) is empty/);
    await assert.rejects(t.pool.run(['true'], { stdin: 'inherit' } as never), /stdin must be 'pipe' or 'ignore'/);
    await assert.rejects(t.pool.run(['true'], { stdin: 'pipe' }), /needs the handle/);
    await assert.rejects(t.pool.run(['true'], { timeout: 5 } as never), /unknown option 'timeout'/);
    await assert.rejects(t.pool.run(['true'], { output: 'inherit' } as never), /output must be 'capture'/);
    assert.equal(t.pool.stats().warmPids[0], pid, 'the warm sandbox was not used');
    const nf = await t.pool.run(['no-such-command-here']);
    assert.equal(nf.exitCode, 127);
    assert.equal(nf.reason, 'exec-failed');
  });
});
