/**
 * Usability is a promise too: real work succeeds inside the same boundary that
 * refuses the attacks. A sandbox that blocks everything would fail here.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { run } from '../../src/index.js';
import { hasCgroup, sandboxFixture, which } from '../helpers.js';

async function inWs(argv: string[], setup?: (ws: string) => void) {
  const fx = sandboxFixture();
  setup?.(fx.ws);
  const r = await run({ profile: 'default' }, argv, { workspace: fx.ws, env: fx.env, stdin: 'ignore', allowDegraded: !hasCgroup });
  return { ...r, out: r.stdout.toString(), err: r.stderr.toString(), ws: fx.ws };
}

describe('real work succeeds in the default sandbox', () => {
  it('git init, add, commit and log in the workspace', { skip: !which('git') && 'git is not installed' }, async () => {
    const r = await inWs(['sh', '-c', 'git init -q && echo hi > a && git add a && git -c user.name=t -c user.email=t@example.invalid commit -qm first && git log --format=%s'], undefined);
    assert.equal(r.exitCode, 0, r.err);
    assert.equal(r.out.trim(), 'first');
  });

  it('runs a node script', async () => {
    const r = await inWs(['node', '-e', 'const fs=require("fs");fs.writeFileSync("out.json",JSON.stringify({ok:1}));console.log(require("os").cpus().length>0)']);
    assert.equal(r.exitCode, 0, r.err);
    assert.equal(r.out.trim(), 'true');
  });

  it('runs a python script with the standard library', { skip: !which('python3') && 'python3 is not installed' }, async () => {
    const r = await inWs(['python3', 'app.py'], (ws) => writeFileSync(path.join(ws, 'app.py'), 'import json, hashlib, sqlite3\ndb = sqlite3.connect("x.db")\ndb.execute("create table t(a)")\nprint(json.dumps({"h": hashlib.sha256(b"x").hexdigest()[:8]}))\n'));
    assert.equal(r.exitCode, 0, r.err);
    assert.equal(r.out.trim(), '{"h": "2d711642"}');
  });

  it('compiles and runs a C program with gcc', { skip: !which('gcc') && 'gcc is not installed' }, async () => {
    const r = await inWs(['sh', '-c', 'gcc -O1 -o hello hello.c && ./hello'], (ws) => writeFileSync(path.join(ws, 'hello.c'), '#include <stdio.h>\nint main(void){puts("compiled");return 0;}\n'));
    assert.equal(r.exitCode, 0, r.err);
    assert.equal(r.out.trim(), 'compiled');
  });

  it('npm works: init and run a script', async () => {
    const r = await inWs(['sh', '-c', 'npm init -y >/dev/null && npm pkg set scripts.hello="node -e \\"console.log(42)\\"" && npm run -s hello']);
    assert.equal(r.exitCode, 0, r.err);
    assert.equal(r.out.trim(), '42');
  });

  it('the exit code is the command\'s own, signals become 128+N', async () => {
    assert.equal((await inWs(['sh', '-c', 'exit 7'])).exitCode, 7);
    const k = await inWs(['sh', '-c', 'kill -TERM $$']);
    assert.equal(k.exitCode, 143);
    assert.equal(k.reason, 'signal');
  });

  it('a command that does not exist exits 127, like a shell', async () => {
    const r = await inWs(['no-such-command-ward']);
    assert.equal(r.exitCode, 127);
    assert.match(r.err, /no-such-command-ward/);
  });
});
