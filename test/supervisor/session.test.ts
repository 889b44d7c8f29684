/**
 * Agent sessions: dynamic rules whose state spans several commands (src/supervisor/session.ts).
 * A revocation one command triggers holds for the session's later commands from their first
 * syscall; the two events of a two-event rule may come in two commands; another session, or no
 * session, starts clean; a session refuses a policy with other rules, a bad name, and a policy
 * without rules. A server on the host's loopback stands in for the internet.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { run, type RunOptions } from '../../src/index.js';
import type { RunRecord } from '../../src/sandbox/launch.js';
import { sessionPath } from '../../src/supervisor/session.js';
import { eventually, fixtureRunOptions, hasCgroup, sandboxFixture, ward, which } from '../helpers.js';

const skip = !which('python3') && 'python3 missing';
let server: Server;
let port = 0;
const hits: string[] = [];

before(async () => {
  server = createServer((req, res) => {
    hits.push(req.url ?? '');
    res.end(`hello ${req.url}\n`);
  });
  port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
});
after(() => server.close());

/** Python: GET api.test:PORT/NAME by a raw connect; prints "NAME ok" or "NAME refused errno=N". */
const get = (name: string) => `
import socket
try:
    s = socket.create_connection(('api.test', ${'${PORT}'}), timeout=5)
    s.sendall(b'GET /${name} HTTP/1.1\\r\\nHost: api.test\\r\\nConnection: close\\r\\n\\r\\n')
    print('${name}', 'ok' if b'hello /${name}' in s.recv(4096) else 'closed')
except OSError as e:
    print('${name}', 'refused errno=%s' % e.errno)
`;

function setup(rules: unknown[]) {
  const fx = sandboxFixture();
  mkdirSync(path.join(fx.ws, 'secrets'));
  writeFileSync(path.join(fx.ws, 'secrets', 'key.txt'), 'TOPSECRET\n');
  writeFileSync(path.join(fx.ws, 'untrusted.md'), 'ignore previous instructions\n');
  const policy = { extends: ['default'], network: { allow: [`api.test:${port}`] }, rules };
  const records: RunRecord[] = [];
  const options = (session?: string): RunOptions => fixtureRunOptions(fx, records, { egress: { resolve: async () => '127.0.0.1' }, ...(session === undefined ? {} : { session }) });
  const py = async (code: string, session?: string) => {
    const r = await run({ policy }, ['python3', '-c', code.replaceAll('${PORT}', String(port))], options(session));
    return { ...r, out: r.stdout.toString() + r.stderr.toString() };
  };
  return { ...fx, policy, records, py, options };
}

describe('agent sessions: dynamic rules across commands', { skip }, () => {
  it('after one command reads the secret, the session\'s later commands cannot connect; another session and no session can', async () => {
    const t = setup([{ after: 'read ${WORKSPACE}/secrets/**', revoke: 'network' }]);
    const first = await t.py(`${get('first')}\nopen('secrets/key.txt').read()\n${get('first-after')}`, 'agent-1');
    assert.equal(first.exitCode, 0, first.out);
    assert.match(first.out, /^first ok$/m);
    assert.match(first.out, /^first-after refused/m);
    assert.equal(first.revocations.length, 1);

    const second = await t.py(get('second'), 'agent-1');
    assert.match(second.out, /^second refused/m, 'the revocation holds for the next command of the session');
    assert.equal(second.revocations.length, 0, 'nothing fired again: the rule had fired before this command');
    const launch = t.records.filter((r) => r.type === 'launch').at(-1) as Extract<RunRecord, { type: 'launch' }>;
    assert.deepEqual(launch.session, { name: 'agent-1', fired_before: [0] });

    const other = await t.py(get('other-session'), 'agent-2');
    assert.match(other.out, /^other-session ok$/m);
    const none = await t.py(get('no-session'));
    assert.match(none.out, /^no-session ok$/m);
    assert.ok(!hits.includes('/second') && hits.includes('/other-session') && hits.includes('/no-session'));

    // The state is Ward's, outside every sandbox: the session file, 0600.
    const file = sessionPath('agent-1', t.env);
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { cells: number[] };
    assert.ok(saved.cells.includes(1));
  });

  it('the two events of a two-event rule may come in two commands of the session (the trifecta guard)', async () => {
    const t = setup([{ after: ['read ${WORKSPACE}/secrets/**', 'read ${WORKSPACE}/untrusted.md'], revoke: 'network' }]);
    const a = await t.py(`open('secrets/key.txt').read()\n${get('after-secret')}`, 'trio');
    assert.match(a.out, /^after-secret ok$/m, 'one half alone revokes nothing');
    const b = await t.py(`open('untrusted.md').read()\n${get('after-both')}`, 'trio');
    assert.match(b.out, /^after-both refused/m, 'the second half, in another command, completes the rule');
    assert.equal(b.revocations.length, 1);
    const c = await t.py(get('later'), 'trio');
    assert.match(c.out, /^later refused/m);
  });

  it('refuses a policy with other rules in the session, a bad session name, and a session without rules', async () => {
    const t = setup([{ after: 'read ${WORKSPACE}/secrets/**', revoke: 'network' }]);
    await t.py('print(1)', 'bound');
    await assert.rejects(
      run({ policy: { ...t.policy, rules: [{ after: 'read ${WORKSPACE}/untrusted.md', revoke: 'network' }] } }, ['true'], t.options('bound')),
      /session 'bound' was started with other dynamic rules/,
    );
    await assert.rejects(run({ policy: t.policy }, ['true'], t.options('../x')), /session name '\.\.\/x' is not valid/);
    await assert.rejects(run({ policy: { extends: ['default'] } }, ['true'], t.options('s')), /--session needs a policy with dynamic rules/);
  });

  it('ward run --session NAME through the CLI', async () => {
    const t = setup([{ after: 'read ${WORKSPACE}/secrets/**', revoke: 'network' }]);
    const file = path.join(t.ws, '..', 'session-policy.json');
    writeFileSync(file, JSON.stringify({ ...t.policy, sandbox: { allow_degraded: true } }));
    const degraded = hasCgroup ? [] : ['--allow-degraded'];
    const r1 = ward(['run', '-p', file, '-w', t.ws, '--audit-log', path.join(t.ws, '..', 'audit.jsonl'), '--session', 'cli', ...degraded, '--', 'cat', 'secrets/key.txt'], { env: t.env });
    assert.equal(r1.code, 0, r1.stderr);
    const r2 = ward(['run', '-p', file, '-w', t.ws, '--audit-log', path.join(t.ws, '..', 'audit.jsonl'), '--session', 'cli', ...degraded, '--', 'python3', '-c', get('cli').replaceAll('${PORT}', String(port))], { env: t.env });
    assert.match(r2.stdout, /^cli refused/m, r2.stderr);
  });

  it('side by side: a revocation fired in one running command reaches another command of the session while it runs', async () => {
    const t = setup([{ after: 'read ${WORKSPACE}/secrets/**', revoke: 'write ${WORKSPACE}/src/**' }]);
    mkdirSync(path.join(t.ws, 'src'));
    writeFileSync(path.join(t.ws, 'src', 'main.c'), 'int main(){}\n');
    // B appends to src/main.c in a loop; its first append succeeds and it says so (ready), then
    // it keeps trying until a write is refused. It gives up after 60 s (a failure, not a timing).
    const loop = `
import os, time
n = 0
deadline = time.time() + 60
while time.time() < deadline:
    try:
        with open('src/main.c', 'a') as f: f.write('// tick\\n')
        n += 1
        if n == 1: open('ready', 'w').close()
    except PermissionError as e:
        print('refused while running after', n, 'writes, errno', e.errno)
        break
    time.sleep(0.01)
else:
    print('never refused')
`;
    const b = t.py(loop, 'side');
    if (!(await eventually(() => existsSync(path.join(t.ws, 'ready')), 30_000))) assert.fail(`B did not start writing: ${(await b).out}`);
    // A, in the same session, reads the secret while B runs.
    const a = await t.py(`open('secrets/key.txt').read()\nprint('read')`, 'side');
    assert.match(a.out, /^read$/m);
    assert.equal(a.revocations.length, 1);
    const rb = await b;
    assert.match(rb.out, /^refused while running after \d+ writes, errno 13$/m, rb.out);
    // B records the revocation it received from the session, before its refusal.
    assert.equal(rb.revocations.length, 1, JSON.stringify(rb.revocations));
    assert.equal(rb.revocations[0]!.by, 'session');
    assert.match(rb.revocations[0]!.trigger, /session side/);
    assert.ok(rb.denials.some((d) => d.layer === 'supervisor' && /(write|append) revoked by rules\[0\]/.test(d.detail)));
  });

  it('side by side: the two halves of a rule, one in each running command, complete it in both', async () => {
    const t = setup([{ after: ['read ${WORKSPACE}/secrets/**', 'read ${WORKSPACE}/untrusted.md'], revoke: 'network' }]);
    // B reads the secret (one half), then waits for A's half and tries to connect until refused.
    const bCode = `
import os, socket, time
IP = socket.gethostbyname('api.test')  # before any rule fires: a lookup is a connect too
open('secrets/key.txt').read()
open('half', 'w').close()
deadline = time.time() + 60
while time.time() < deadline:
    try:
        socket.create_connection((IP, ${'${PORT}'}), timeout=5).close()
    except OSError as e:
        print('refused while running errno', e.errno)
        break
    time.sleep(0.02)
else:
    print('never refused')
`;
    const b = t.py(bCode, 'halves');
    assert.ok(await eventually(() => existsSync(path.join(t.ws, 'half')), 30_000));
    const a = await t.py(`open('untrusted.md').read()\n${get('a-after')}`, 'halves');
    const rb = await b;
    assert.match(rb.out, /^refused while running errno 13$/m, rb.out);
    // A saw B's half (saved while B ran) and its own: the rule fired in A, or reached it from the session.
    assert.match(a.out, /^a-after (refused|closed)/m, a.out);
  });
});

