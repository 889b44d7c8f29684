/**
 * The `ward` command as a user meets it: exit codes, streams, errors that name
 * the problem and the fix, and refusals that happen before anything runs.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { hasCgroup, ROOT, sandboxFixture, tempDir, ward } from '../helpers.js';

const degraded = hasCgroup ? [] : ['--allow-degraded'];

describe('ward run', () => {
  it('passes the exit code, stdout, stderr and stdin through', () => {
    const fx = sandboxFixture();
    const r = ward(['run', ...degraded, '--', 'sh', '-c', 'read line; echo "out:$line"; echo err >&2; exit 7'], { cwd: fx.ws, env: fx.env, input: 'hello\n' });
    assert.equal(r.code, 7, r.stderr);
    assert.equal(r.stdout, 'out:hello\n');
    assert.match(r.stderr, /^err$/m);
  });

  it('stdin and stdout redirected to files, with resources.output (forwarded output): the command changes neither file by fd', () => {
    const fx = sandboxFixture();
    writeFileSync(path.join(fx.ws, 'p.yaml'), 'extends: [default]\nresources: {output: 1KiB}\n');
    const inFile = path.join(fx.ws, 'in.txt');
    const outFile = path.join(fx.ws, 'out.txt');
    writeFileSync(inFile, 'x'.repeat(4096), { mode: 0o600 });
    writeFileSync(outFile, '', { mode: 0o600 });
    const py = 'import os, sys\nfor fd in (0, 1):\n    try: os.fchmod(fd, 0o777)\n    except OSError: pass\nsys.stdout.write(sys.stdin.read())';
    const fdIn = openSync(inFile, 'r');
    const fdOut = openSync(outFile, 'w');
    let r;
    try {
      r = spawnSync(process.execPath, [path.join(ROOT, 'bin/ward.js'), 'run', '--quiet', ...degraded, '--policy', 'p.yaml', '--', 'python3', '-c', py], { cwd: fx.ws, env: fx.env, stdio: [fdIn, fdOut, 'pipe'], encoding: 'utf8', timeout: 60_000 });
    } finally {
      closeSync(fdIn);
      closeSync(fdOut);
    }
    assert.equal(r.status, 0, r.stderr);
    assert.equal(statSync(inFile).mode & 0o7777, 0o600);
    assert.equal(statSync(outFile).mode & 0o7777, 0o600);
    assert.equal(readFileSync(outFile, 'utf8'), 'x'.repeat(1024), 'the output cap still applies');
  });

  it('a command killed by a signal exits 128+N', () => {
    const fx = sandboxFixture();
    assert.equal(ward(['run', ...degraded, '--', 'sh', '-c', 'kill -KILL $$'], { cwd: fx.ws, env: fx.env }).code, 137);
  });

  it('wall_time: exit 124 and a message naming the limit', () => {
    const fx = sandboxFixture();
    writeFileSync(path.join(fx.ws, 'p.yaml'), 'extends: [default]\nresources: {wall_time: 1s}\n');
    const r = ward(['run', ...degraded, '--policy', 'p.yaml', '--', 'sleep', '20'], { cwd: fx.ws, env: fx.env });
    assert.equal(r.code, 124);
    assert.match(r.stderr, /ward: wall_time limit \(1s\) reached/);
  });

  it('an invalid policy: exit 125, the file, key and fix named, and nothing runs', () => {
    const fx = sandboxFixture();
    writeFileSync(path.join(fx.ws, 'bad.yaml'), 'filesystem:\n  write: ["${WORKSPACE}"]\n  raed: ["/etc"]\n');
    const r = ward(['run', '--policy', 'bad.yaml', '--', 'touch', 'ran'], { cwd: fx.ws, env: fx.env });
    assert.equal(r.code, 125);
    assert.match(r.stderr, /bad\.yaml:3 at filesystem\.raed: unknown key "raed"/);
    assert.match(r.stderr, /fix: did you mean "read"/);
    assert.equal(existsSync(path.join(fx.ws, 'ran')), false);
  });

  it('a network.allow entry the broker cannot enforce exactly (a wildcard port) is refused with the fix', () => {
    const fx = sandboxFixture();
    writeFileSync(path.join(fx.ws, 'net.yaml'), 'extends: [default]\nnetwork:\n  allow: ["registry.npmjs.org:*"]\n');
    const r = ward(['run', '--policy', 'net.yaml', '--', 'touch', 'ran'], { cwd: fx.ws, env: fx.env });
    assert.equal(r.code, 125);
    assert.match(r.stderr, /net\.yaml.*network\.allow\[0\].*wildcard port cannot be enforced/);
    assert.match(r.stderr, /registry\.npmjs\.org:443/);
    assert.equal(existsSync(path.join(fx.ws, 'ran')), false);
  });

  it('ward run with network.allow: a refused destination is named on stderr with the rule to add', () => {
    const fx = sandboxFixture();
    writeFileSync(path.join(fx.ws, 'net.yaml'), 'extends: [default]\nnetwork:\n  allow: ["registry.npmjs.org:443"]\n');
    const py = "import socket\ntry: socket.gethostbyname('evil.example.com')\nexcept OSError as e: print('nxdomain')\ns=socket.create_connection(('127.0.0.1',3128));s.sendall(b'CONNECT evil.example.com:443 HTTP/1.1\\r\\n\\r\\n');print(s.recv(12))";
    const r = ward(['run', ...(hasCgroup ? [] : ['--allow-degraded']), '--policy', 'net.yaml', '--', 'python3', '-c', py], { cwd: fx.ws, env: fx.env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /nxdomain/);
    assert.match(r.stdout, /HTTP\/1\.1 403/);
    assert.match(r.stderr, /ward: network: dns evil\.example\.com refused: not-allowed/);
    assert.match(r.stderr, /ward: network: proxy evil\.example\.com:443 refused: not-allowed \(to allow it: add "evil\.example\.com:443" to network\.allow\)/);
  });

  it('--verify records the ward verify result for this very policy and plan in the launch record; --verify-strict refuses unless all PROVED', () => {
    const fx = sandboxFixture();
    const log = path.join(fx.ws, '..', 'verify-audit.jsonl');
    const degraded = hasCgroup ? [] : ['--allow-degraded'];
    const ok = ward(['run', ...degraded, '--verify', '--audit-log', log, '--', 'true'], { cwd: fx.ws, env: fx.env, timeout: 120_000 });
    assert.equal(ok.code, 0, ok.stderr);
    const launch = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).find((r) => r.type === 'launch')!;
    const v = launch.verification as { policy_sha256: string; plan_sha256: string; ok: boolean; properties: { id: string; status: string; counterexample?: string }[] };
    assert.equal(v.policy_sha256, launch.policy_sha256, 'the verified policy is the one that ran');
    assert.equal(v.plan_sha256, launch.plan_sha256, 'the verified plan is the one that ran');
    // The default profile grants the workspace write + execute on purpose: W^X is reported, not hidden.
    const wx = v.properties.find((p) => p.id === 'w-xor-x')!;
    assert.equal(wx.status, 'VIOLATED');
    assert.equal(v.ok, false);
    assert.match(ward(['audit', 'show', log], { env: fx.env }).stdout, /verified \(ward verify, this policy and plan\): .*w-xor-x VIOLATED/);

    const strict = ward(['run', ...degraded, '--verify-strict', '--audit-log', log, '--', 'touch', 'ran'], { cwd: fx.ws, env: fx.env, timeout: 120_000 });
    assert.equal(strict.code, 125);
    assert.match(strict.stderr, /--verify-strict: .*w-xor-x VIOLATED/);
    assert.equal(existsSync(path.join(fx.ws, 'ran')), false);
    // The refusal is in the audit log, with the failed properties and the policy's hash.
    const refused = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((r) => r.type === 'launch-failed').at(-1)!;
    assert.equal(refused.step, 'verify');
    assert.match(String(refused.message), new RegExp(`--verify-strict: .*w-xor-x VIOLATED.*\\(policy sha256 ${launch.policy_sha256}\\)`));
    assert.deepEqual(refused.argv, ['touch', 'ran']);
    assert.equal(ward(['audit', 'verify', log], { env: fx.env }).code, 0, 'the log with the refusal still verifies');
    // minimal sets no limits that need a cgroup (and does not allow degraded runs).
    const minimal = ward(['run', '--profile', 'minimal', '--verify-strict', '--audit-log', log, '--', 'true'], { cwd: fx.ws, env: fx.env, timeout: 120_000 });
    assert.equal(minimal.code, 0, minimal.stderr);
  });

  it('a missing bubblewrap: exit 125 with the install command', () => {
    const fx = sandboxFixture();
    const r = ward(['run', '--', 'true'], { cwd: fx.ws, env: { ...fx.env, WARD_BWRAP: '/nonexistent/bwrap' } });
    assert.equal(r.code, 125);
    assert.match(r.stderr, /bubblewrap \(bwrap\) is not installed/);
    assert.match(r.stderr, /apt-get install -y bubblewrap/);
  });

  it('a missing workspace and an unknown option are clear errors', () => {
    const fx = sandboxFixture();
    const a = ward(['run', '--workspace', '/nonexistent-ward-ws', '--', 'true'], { cwd: fx.ws, env: fx.env });
    assert.equal(a.code, 125);
    assert.match(a.stderr, /workspace \/nonexistent-ward-ws does not exist/);
    const b = ward(['run', '--polcy', 'x', '--', 'true'], { cwd: fx.ws, env: fx.env });
    assert.equal(b.code, 125);
    assert.match(b.stderr, /unknown option --polcy/);
    const c = ward(['frobnicate'], { env: fx.env });
    assert.equal(c.code, 125);
  });

  it('a workspace or a grant of / is refused before anything runs: the host\'s /proc, /dev and /sys never replace the sandbox\'s', () => {
    const fx = sandboxFixture();
    // Before the fix, as root, this wrote the host's sysctl (and bwrap made /.ward/launch on the host's root).
    const marker = path.join(fx.ws, 'ran');
    const a = ward(['run', ...degraded, '--workspace', '/', '--', 'sh', '-c', `touch ${marker}; cat /proc/1/cmdline`], { cwd: fx.ws, env: fx.env });
    assert.equal(a.code, 125, a.stdout + a.stderr);
    assert.match(a.stderr, /workspace \/ contains \/proc/);
    assert.match(a.stderr, /fix: pass --workspace with the project directory/);
    assert.equal(existsSync(marker), false);
    writeFileSync(path.join(fx.ws, 'root.yaml'), 'extends: [default]\nfilesystem:\n  read: ["/"]\n');
    const b = ward(['run', ...degraded, '--policy', 'root.yaml', '--', 'sh', '-c', 'touch ran; ls /proc'], { cwd: fx.ws, env: fx.env });
    assert.equal(b.code, 125, b.stdout + b.stderr);
    assert.match(b.stderr, /root\.yaml at filesystem\.read\[0\]: \/ contains \/proc/);
    assert.match(b.stderr, /fix: grant the directories the command needs instead \(e\.g\. \/usr, \/etc, \/opt/);
    assert.equal(existsSync(marker), false);
    const c = ward(['policy', 'check', 'root.yaml'], { cwd: fx.ws, env: fx.env });
    assert.equal(c.code, 125);
    assert.match(c.stderr, /contains \/proc/);
  });

  it('ward started from ~ (the workspace is $HOME) is refused before anything runs, with the fix', () => {
    const fx = sandboxFixture();
    // Reproducer: from ~, the sandbox moved ~/.cache away, so the next run made Ward's cache
    // (its launcher) unmasked inside the writable home, and a third run executed what was planted.
    mkdirSync(path.join(fx.home, '.cache'), { recursive: true });
    const env = { ...fx.env, XDG_CACHE_HOME: '', XDG_CONFIG_HOME: '', XDG_STATE_HOME: '' };
    const r = ward(['run', ...degraded, '--', 'sh', '-c', 'mv ~/.cache ~/.cache-old; touch ran'], { cwd: fx.home, env });
    assert.equal(r.code, 125, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`the workspace ${fx.home} is writable and is your home directory ${fx.home}: a sandboxed command could rewrite ~/\\.bashrc, ~/\\.profile, systemd user units`));
    assert.match(r.stderr, /fix: use a project directory as the workspace: `ward run --workspace DIR`, or cd into it first/);
    assert.ok(existsSync(path.join(fx.home, '.cache')) && !existsSync(path.join(fx.home, 'ran')), 'nothing ran');
    // --workspace ~ is the same; a project directory below ~ runs.
    assert.equal(ward(['run', ...degraded, '--workspace', fx.home, '--', 'true'], { cwd: fx.ws, env }).code, 125);
    mkdirSync(path.join(fx.home, 'proj'));
    const ok = ward(['run', ...degraded, '--workspace', path.join(fx.home, 'proj'), '--', 'sh', '-c', 'touch made; mv ~/.cache ~/x'], { cwd: fx.ws, env });
    assert.ok(existsSync(path.join(fx.home, 'proj/made')), ok.stderr);
    assert.ok(existsSync(path.join(fx.home, '.cache')), 'the private $HOME inside is not the host\'s');
  });

  it("Ward's cache inside the workspace (XDG_CACHE_HOME) is refused: a sandbox must never write where the launcher and mask file live", () => {
    const fx = sandboxFixture();
    const r = ward(['run', ...degraded, '--', 'touch', 'ran'], { cwd: fx.ws, env: { ...fx.env, XDG_CACHE_HOME: path.join(fx.ws, '.cache') } });
    assert.equal(r.code, 125, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`the workspace ${fx.ws} is writable and contains Ward's own directory ${fx.ws}/\\.cache/ward`));
    assert.ok(!existsSync(path.join(fx.ws, 'ran')));
  });

  it('a mask file that is a symlink (or anything but our own empty mode-0000 file) is refused, and what it points at is left alone', () => {
    const fx = sandboxFixture();
    const cache = tempDir('ward-cache-');
    mkdirSync(path.join(cache, 'ward'), { mode: 0o700 });
    const mask = path.join(cache, 'ward', 'mask-0000');
    const victim = path.join(path.dirname(fx.ws), 'victim');
    writeFileSync(victim, 'precious\n', { mode: 0o644 });
    symlinkSync(victim, mask);
    const env = { ...fx.env, XDG_CACHE_HOME: cache };
    const r = ward(['run', ...degraded, '--', 'touch', 'ran'], { cwd: fx.ws, env });
    assert.equal(r.code, 125, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`refusing to use Ward's mask file ${mask}: it is a symlink \\(to ${victim}\\)`));
    assert.match(r.stderr, /fix: remove it \(`rm .*mask-0000`\) and Ward makes a new one/);
    assert.equal(statSync(victim).mode & 0o7777, 0o644, 'the victim was not chmodded');
    assert.ok(!existsSync(path.join(fx.ws, 'ran')));
    for (const [make, why] of [[() => writeFileSync(mask, '', { mode: 0o644 }), /mode 0644, not 0000/], [() => linkSync(victim, mask), /2 hard links/]] as const) {
      rmSync(mask);
      make();
      const x = ward(['run', ...degraded, '--', 'true'], { cwd: fx.ws, env });
      assert.equal(x.code, 125, x.stderr);
      assert.match(x.stderr, why);
    }
    rmSync(mask);
    assert.equal(ward(['run', ...degraded, '--', 'true'], { cwd: fx.ws, env }).code, 0, 'a fresh one is made');
    assert.equal(lstatSync(mask).mode & 0o7777, 0);
  });

  it('an empty HOME is refused before anything is written: the audit key never lands in the workspace', () => {
    const fx = sandboxFixture();
    for (const home of ['', 'relhome']) {
      const r = ward(['run', ...degraded, '--', 'sh', '-c', 'touch ran; cat .config/ward/audit.key relhome/.config/ward/audit.key'], { cwd: fx.ws, env: { ...fx.env, HOME: home, XDG_CONFIG_HOME: '', XDG_STATE_HOME: '', XDG_CACHE_HOME: '' } });
      assert.equal(r.code, 125, r.stdout + r.stderr);
      assert.match(r.stderr, /HOME is (empty|"relhome", a relative path)/);
      assert.match(r.stderr, /fix: set HOME to your home directory/);
      assert.deepEqual(readdirSync(fx.ws), [], 'nothing created in the workspace');
    }
  });

  it('a --record path that cannot be written is refused before the command runs (its exit status is not replaced by 125 afterwards)', () => {
    const fx = sandboxFixture();
    for (const rec of ['/nonexistent-ward-dir/x.json', fx.ws]) {
      const r = ward(['run', ...degraded, '--record', rec, '--', 'sh', '-c', 'touch ran; exit 3'], { cwd: fx.ws, env: fx.env });
      assert.equal(r.code, 125, r.stdout + r.stderr);
      assert.doesNotMatch(r.stderr, /internal error|    at /);
      assert.match(r.stderr, /--record .*: cannot open it for writing \((its directory does not exist|it is a directory)\); nothing was run/);
      assert.equal(existsSync(path.join(fx.ws, 'ran')), false);
    }
    const rec = path.join(path.dirname(fx.ws), 'rec.jsonl');
    const ok = ward(['run', ...degraded, '--record', rec, '--', 'sh', '-c', 'exit 3'], { cwd: fx.ws, env: fx.env });
    assert.equal(ok.code, 3, ok.stderr);
    assert.equal(readFileSync(rec, 'utf8').trim().split('\n').length, 2);
  });

  it('a --record path the sandbox can see is refused: the command could replace the file with records of its own', () => {
    const fx = sandboxFixture();
    // The attack: the command unlinks the record file Ward holds open and writes forged records
    // at its name, so Ward's real records go to the unlinked inode.
    const forge = `rm -f rec.jsonl; printf '%s\\n' '{"type":"launch","argv":["true"],"policy_sha256":"forged"}' '{"type":"exit","exit_code":0}' > rec.jsonl; exit 7`;
    const rec = path.join(fx.ws, 'rec.jsonl');
    const r = ward(['run', ...degraded, '--record', rec, '--', 'sh', '-c', forge], { cwd: fx.ws, env: fx.env });
    assert.equal(r.code, 125, r.stdout + r.stderr);
    assert.match(r.stderr, /--record .*rec\.jsonl is inside a path this policy lets the sandbox see/);
    assert.doesNotMatch(readFileSync(rec, 'utf8'), /forged/, 'the command never ran');
    // Through a symlink outside the grants that points into them: judged by where it leads.
    const link = path.join(path.dirname(fx.ws), 'rec-link.jsonl');
    symlinkSync(rec, link);
    const viaLink = ward(['run', ...degraded, '--record', link, '--', 'sh', '-c', forge], { cwd: fx.ws, env: fx.env });
    assert.equal(viaLink.code, 125, viaLink.stdout + viaLink.stderr);
    assert.doesNotMatch(readFileSync(rec, 'utf8'), /forged/);
  });

  it('--record writes the launch record with the same policy hash `ward policy show` prints', () => {
    const fx = sandboxFixture();
    const rec = path.join(path.dirname(fx.ws), 'record.jsonl');
    const r = ward(['run', ...degraded, '--record', rec, '--', 'true'], { cwd: fx.ws, env: fx.env });
    assert.equal(r.code, 0, r.stderr);
    const [launch, exit] = readFileSync(rec, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const show = ward(['policy', 'show'], { cwd: fx.ws, env: fx.env });
    const hash = /^sha256 ([0-9a-f]{64})$/m.exec(show.stdout)?.[1];
    assert.equal(launch.policy_sha256, hash);
    assert.equal(launch.type, 'launch');
    assert.deepEqual(launch.argv, ['true']);
    assert.equal(launch.observed.proc_status.Seccomp, '2');
    assert.equal(exit.exit_code, 0);
  });
});

describe('ward policy', () => {
  it('show prints canonical JSON whose SHA-256 is the printed hash', () => {
    const fx = sandboxFixture();
    const r = ward(['policy', 'show', '--profile', 'minimal'], { cwd: fx.ws, env: fx.env });
    assert.equal(r.code, 0, r.stderr);
    const [json, hashLine] = r.stdout.trim().split('\n');
    assert.equal(hashLine, `sha256 ${createHash('sha256').update(json!).digest('hex')}`);
    assert.equal(JSON.parse(json!).version, 1);
  });

  it('check accepts a good policy and rejects a bad one with exit 125', () => {
    const fx = sandboxFixture();
    writeFileSync(path.join(fx.ws, 'good.yaml'), 'extends: [node]\nfilesystem:\n  write: ["${WORKSPACE}"]\nresources: {memory: 1GiB}\n');
    const ok = ward(['policy', 'check', 'good.yaml'], { cwd: fx.ws, env: fx.env });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^ok: good\.yaml/);
    writeFileSync(path.join(fx.ws, 'rel.yaml'), 'filesystem:\n  write: [src]\n');
    const bad = ward(['policy', 'check', 'rel.yaml'], { cwd: fx.ws, env: fx.env });
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /rel\.yaml at filesystem\.write\[0\]: "src" is a relative path/);
    assert.match(bad.stderr, /fix: .*\$\{WORKSPACE\}\/src/);
  });

  it('check and run refuse a deny of a path that does not exist (it would hide nothing once the command made it), naming optional: true', () => {
    const fx = sandboxFixture();
    writeFileSync(path.join(fx.ws, 'd.yaml'), 'extends: [default]\nfilesystem:\n  deny: ["${WORKSPACE}/nope"]\n');
    const c = ward(['policy', 'check', 'd.yaml'], { cwd: fx.ws, env: fx.env });
    assert.equal(c.code, 125, c.stdout);
    assert.match(c.stderr, /d\.yaml at filesystem\.deny\[0\]: .*\/nope does not exist/);
    assert.match(c.stderr, /optional: true/);
    const r = ward(['run', ...degraded, '--policy', 'd.yaml', '--', 'sh', '-c', 'echo s3cret > nope; cat nope'], { cwd: fx.ws, env: fx.env });
    assert.equal(r.code, 125, r.stdout + r.stderr);
    assert.equal(existsSync(path.join(fx.ws, 'nope')), false);
    writeFileSync(path.join(fx.ws, 'o.yaml'), 'extends: [default]\nfilesystem:\n  deny: [{path: "${WORKSPACE}/nope", optional: true}]\n');
    const o = ward(['policy', 'check', 'o.yaml'], { cwd: fx.ws, env: fx.env });
    assert.equal(o.code, 0, o.stderr);
    assert.match(o.stdout, /note: denied .*\/nope does not exist now: if the command creates it/);
  });

  it('show --plan prints the compiled mounts, Landlock rules and seccomp hash', () => {
    const fx = sandboxFixture();
    const r = ward(['policy', 'show', '--plan'], { cwd: fx.ws, env: fx.env });
    assert.equal(r.code, 0, r.stderr);
    const plan = JSON.parse(r.stdout.trim().split('\n')[2]!);
    assert.ok(plan.mounts.some((m: { kind: string; dest: string }) => m.kind === 'bind' && m.dest === fx.ws));
    assert.match(plan.seccomp.sha256, /^[0-9a-f]{64}$/);
    assert.ok(plan.landlock.rules.length > 0);
  });
});

describe('ward demo', () => {
  it('runs the demo: work allowed, every attack denied', () => {
    const fx = sandboxFixture();
    const r = ward(['demo'], { cwd: fx.ws, env: fx.env, timeout: 120_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /Every promise held/);
    // Without a cgroup of its own, the demo says why it falls back to --allow-degraded, once.
    if (hasCgroup) assert.doesNotMatch(r.stdout, /note: /);
    else assert.equal((r.stdout.match(/The demo goes on with --allow-degraded/g) ?? []).length, 1);
    assert.doesNotMatch(r.stdout, /ESCAPED|FAILED/);
  });
});
