import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { compilePlan } from '../../src/plan/compile.js';
import { canonicalJson, sha256Hex } from '../../src/policy/canonical.js';
import { loadPolicy, loadPolicyObject } from '../../src/policy/load.js';
import { PROFILE_NAMES, PROFILES } from '../../src/policy/profiles/index.js';
import { policySchema } from '../../src/policy/schema.js';
import { parseDuration, parseSize } from '../../src/policy/units.js';
import { WardError } from '../../src/errors.js';
import { policyError } from '../helpers.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'ward-policy-test-'));
const ws = path.join(dir, 'ws');
mkdirSync(ws);
const home = path.join(dir, 'home');
mkdirSync(home);
const env = { HOME: home, PATH: '/usr/bin:/bin' };

function write(name: string, text: string): string {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
}
function load(text: string, name = `p-${Math.random().toString(36).slice(2)}.yaml`) {
  return loadPolicy({ file: write(name, text), workspace: ws, home, env });
}

describe('policy loading', () => {
  it('loads YAML, expands ~ and ${WORKSPACE}, and hashes the canonical JSON', () => {
    const p = load('filesystem:\n  read: ["~/notes", "${WORKSPACE}/src/**"]\n  write: ["${WORKSPACE}"]\n');
    const paths = p.effective.filesystem.read.map((e) => e.path);
    assert.deepEqual(paths, [`${home}/notes`, `${ws}/src`].sort());
    assert.equal(p.sha256, sha256Hex(p.canonical));
    assert.equal(p.canonical, canonicalJson(p.effective));
    assert.deepEqual(p.effective.filesystem.write, [{ path: ws }]);
  });

  it('gives the same hash for the same policy written as JSON, in another key order', () => {
    const a = load('filesystem: {write: ["${WORKSPACE}"], read: ["/usr"]}\nresources: {memory: 1GiB, pids: 64}\n');
    const b = load(JSON.stringify({ resources: { pids: 64, memory: 1024 ** 3 }, filesystem: { read: ['/usr'], write: ['${WORKSPACE}'] } }), 'same.json');
    assert.equal(a.sha256, b.sha256);
  });

  it('changes the hash when anything enforced changes', () => {
    const a = load('resources: {pids: 64}\n');
    const b = load('resources: {pids: 65}\n');
    assert.notEqual(a.sha256, b.sha256);
  });

  it('rejects an unknown key, naming file, key path and line, and suggests the right key', () => {
    const e = policyError(() => load('filesystem:\n  read: ["/usr"]\n  reed: ["/etc"]\n', 'typo.yaml'));
    assert.match(e.message, /typo\.yaml:3 at filesystem\.reed: unknown key "reed"/);
    assert.match(e.fix ?? '', /did you mean "read"/);
    assert.equal(e.exitCode, 125);
  });

  it('rejects an unknown top-level key', () => {
    const e = policyError(() => load('netwrk: {allow: []}\n'));
    assert.match(e.message, /unknown key "netwrk"/);
    assert.match(e.fix ?? '', /did you mean "network"/);
  });

  it('rejects a wrong type with the expected shape from the schema', () => {
    const e = policyError(() => load('resources:\n  pids: lots\n'));
    assert.match(e.message, /at resources\.pids: invalid value "lots"/);
    assert.match(e.fix ?? '', /whole number/);
  });

  it('rejects relative paths with a fix that uses ${WORKSPACE}', () => {
    const e = policyError(() => load('filesystem:\n  write: ["build"]\n'));
    assert.match(e.message, /filesystem\.write\[0\].*"build" is a relative path/);
    assert.match(e.fix ?? '', /\$\{WORKSPACE\}\/build/);
  });

  it('rejects .. segments, unsupported globs, unknown variables and ~user', () => {
    assert.match(policyError(() => load('filesystem: {read: ["${WORKSPACE}/../x"]}\n')).message, /"\.\." segments|contains "\." or "\.\."/);
    assert.match(policyError(() => load('filesystem: {read: ["/etc/*.conf"]}\n')).message, /glob patterns/);
    assert.match(policyError(() => load('filesystem: {read: ["${SECRET}/x"]}\n')).message, /unknown variable \$\{SECRET\}/);
    assert.match(policyError(() => load('filesystem: {read: ["~root/x"]}\n')).message, /~user is not supported/);
  });

  it('rejects contradictory grants where they were written', () => {
    const e = policyError(() => load('filesystem:\n  visible: ["/etc/passwd"]\n  read: ["/etc/passwd"]\n', 'contra.yaml'));
    assert.match(e.message, /contradictory grants: \/etc\/passwd is in both filesystem\.visible and filesystem\.read/);
    const e2 = policyError(() => load('filesystem:\n  append: ["${WORKSPACE}/log"]\n  write: ["${WORKSPACE}/log"]\n'));
    assert.match(e2.message, /append and filesystem\.write|filesystem\.append and filesystem\.write/);
  });

  it('reports YAML syntax errors with the line', () => {
    const e = policyError(() => load('filesystem:\n  read: [/usr\n  write: x\n', 'broken.yaml'));
    assert.match(e.message, /broken\.yaml:\d+.*not valid YAML/);
  });

  it('refuses a YAML alias bomb with a policy error, not a stack trace', () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
    const e = policyError(() => load(`${lines.join('\n')}\n`, 'bomb.yaml'));
    assert.match(e.message, /bomb\.yaml: not a usable policy: .*alias/i);
    assert.match(e.fix ?? '', /alias/);
  });

  it('rejects duplicate keys instead of silently taking one', () => {
    assert.match(policyError(() => load('resources: {pids: 1}\nresources: {pids: 2}\n')).message, /not valid YAML/);
  });

  it('rejects an empty file and a missing file', () => {
    assert.match(policyError(() => load('')).message, /empty/);
    assert.match(policyError(() => loadPolicy({ file: path.join(dir, 'nope.yaml'), workspace: ws, home, env })).message, /does not exist/);
  });

  it('merges extends in order: lists union, scalars last-wins, env.set by key', () => {
    write('base.yaml', 'filesystem: {read: ["/usr"]}\nresources: {pids: 10, memory: 1GiB}\nenv: {set: {A: "1", B: "1"}}\n');
    const p = load('extends: [./base.yaml]\nfilesystem: {read: ["/etc/hosts"]}\nresources: {pids: 20}\nenv: {set: {B: "2"}}\n');
    assert.deepEqual(p.effective.filesystem.read.map((e) => e.path), ['/etc/hosts', '/usr']);
    assert.equal(p.effective.resources.pids, 20);
    assert.equal(p.effective.resources.memory, 1024 ** 3);
    assert.deepEqual(p.effective.env.set, { A: '1', B: '2' });
    assert.deepEqual(p.sources.slice(-2).map((s) => path.basename(s)), ['base.yaml', path.basename(p.sources.at(-1)!)]);
  });

  it('detects extends cycles and unknown profiles', () => {
    write('c1.yaml', 'extends: [./c2.yaml]\n');
    write('c2.yaml', 'extends: [./c1.yaml]\n');
    assert.match(policyError(() => loadPolicy({ file: path.join(dir, 'c1.yaml'), workspace: ws, home, env })).message, /extends cycle/);
    const e = policyError(() => load('extends: [nodejs]\n'));
    assert.match(e.message, /unknown profile "nodejs"/);
    assert.match(e.fix ?? '', /minimal, node, python, default/);
  });

  it('always adds the mandatory denies (secrets and Ward state)', () => {
    const p = load('filesystem: {read: ["~"]}\n');
    const deny = p.effective.filesystem.deny.map((e) => e.path);
    for (const d of [`${home}/.ssh`, `${home}/.aws`, '/etc/shadow', `${home}/.cache/ward`, `${home}/.local/state/ward`]) assert.ok(deny.includes(d), d);
  });

  it('an empty or relative HOME (or XDG_*_HOME) is refused, naming the variable and the fix, never resolved against the current directory', () => {
    const obj = { filesystem: { read: ['/usr'] } };
    for (const [bad, name] of [[{ HOME: '' }, 'HOME is empty'], [{ HOME: 'rel/home' }, 'HOME is "rel/home", a relative path'], [{ HOME: home, XDG_STATE_HOME: 'state' }, 'XDG_STATE_HOME is "state"'], [{ HOME: home, XDG_CONFIG_HOME: './cfg' }, 'XDG_CONFIG_HOME is "./cfg"']] as const) {
      assert.throws(
        () => loadPolicyObject(obj, { workspace: ws, env: { PATH: '/usr/bin', ...bad } }),
        (e: unknown) => e instanceof WardError && e.message.startsWith(name) && /absolute path/.test(e.fix ?? ''),
        JSON.stringify(bad),
      );
    }
    // Empty XDG_* means unset (XDG): the default under HOME.
    const p = loadPolicyObject(obj, { workspace: ws, env: { HOME: home, XDG_STATE_HOME: '' } });
    assert.ok(p.effective.filesystem.deny.some((e) => e.path === `${home}/.local/state/ward`));
  });

  it('a mandatory deny that cannot be resolved is an error, not skipped', () => {
    const odd = path.join(dir, 'odd*home');
    const e = policyError(() => loadPolicyObject({ filesystem: { read: ['/usr'] } }, { workspace: ws, env: { HOME: odd, PATH: '/usr/bin' } }));
    assert.equal(e.file, 'ward:mandatory-deny');
    assert.match(e.message, /mandatory deny ~\/\.ssh cannot be resolved/);
    assert.match(e.fix ?? '', /set HOME/);
  });

  it('passes PATH, HOME, LANG, TERM by default and nothing else', () => {
    const p = load('filesystem: {read: ["/usr"]}\n');
    assert.deepEqual(p.effective.env.pass, ['HOME', 'LANG', 'PATH', 'TERM']);
  });

  it('loads every built-in profile, and a policy object', () => {
    for (const name of PROFILE_NAMES) {
      // Profiles skip validation at load time, so the test is where they meet the schema.
      const checked = policySchema().safeParse(PROFILES[name]);
      assert.ok(checked.success, `profile ${name}: ${JSON.stringify(checked.error?.issues)}`);
      const p = loadPolicy({ profile: name, workspace: ws, home, env });
      assert.equal(p.sources.at(-1), `profile:${name}`);
    }
    const d = loadPolicy({ workspace: ws, home, env });
    assert.ok(d.effective.filesystem.write.some((e) => e.path === ws), 'default profile writes the workspace');
    assert.equal(d.effective.network.allow.length, 0);
    assert.ok(d.effective.resources.memory !== null && d.effective.resources.pids !== null);
    const o = loadPolicyObject({ extends: ['minimal'], resources: { pids: 5 } }, { workspace: ws, home, env });
    assert.equal(o.effective.resources.pids, 5);
    assert.throws(() => loadPolicyObject({ filesystem: { raed: [] } }, { workspace: ws, home, env }), /unknown key "raed"/);
  });
});

describe('resource values out of range', () => {
  it('sizes and durations that round to nothing, or beyond what the kernel and Ward can hold, are refused at load with the value named', () => {
    const cases: [string, RegExp][] = [
      ['memory: "0k"', /resources\.memory: "0k" is less than one byte/],
      ['memory: "0.5"', /resources\.memory: "0\.5" is less than one byte/],
      ['output: "0k"', /resources\.output: "0k" is less than one byte/],
      ['file_size: 99999999999TiB', /resources\.file_size: "99999999999TiB" is more than 8 PiB/],
      ['wall_time: "0ms"', /resources\.wall_time: "0ms" is no time at all/],
      ['cpu_time: 1e30', /resources\.cpu_time: 1e\+30 is more than a year/],
      ['pids: 99999999999', /resources\.pids: 99999999999 is more than the kernel accepts \(4194304\)/],
      ['cpus: 0.001', /resources\.cpus: 0\.001 is less than the kernel's smallest CPU quota/],
    ];
    for (const [line, re] of cases) {
      const e = policyError(() => load(`extends: [minimal]\nresources:\n  ${line}\n`));
      assert.match(e.message, re, line);
      assert.ok(e.fix, line);
    }
    // Long but representable: accepted (launch waits in steps beyond setTimeout's 2^31-1 ms).
    assert.equal(load('resources: {wall_time: 600h, cpu_time: 8760h, memory: 1, cpus: 0.01}\n').effective.resources.wall_time, 600 * 3600);
  });

  it('open_files above the host\'s fs.nr_open is refused when the plan is compiled, naming both', () => {
    const nrOpen = Number(readFileSync('/proc/sys/fs/nr_open', 'utf8').trim());
    const p = load(`resources: {open_files: ${nrOpen + 1}}\n`, 'nofile.yaml');
    const e = policyError(() => compilePlan(p, { home, env }));
    assert.match(e.message, new RegExp(`nofile\\.yaml at resources\\.open_files: ${nrOpen + 1} is more than this host's fs\\.nr_open \\(${nrOpen}\\)`));
  });
});

describe('syscalls.deny', () => {
  it('a legacy name denied without its modern variants gets a plan note naming them (libc calls openat, not open)', () => {
    const p = compilePlan(load('syscalls: {deny: [open, unlink, rename, renameat2, ptrace]}\n'), { home, env });
    const notes = p.notes.join('\n');
    assert.match(notes, /syscalls\.deny has open but not openat, openat2: .*add openat, openat2/);
    assert.match(notes, /syscalls\.deny has unlink but not unlinkat/);
    assert.match(notes, /syscalls\.deny has rename but not renameat:/);
    assert.doesNotMatch(notes, /has ptrace/);
    const complete = compilePlan(load('syscalls: {deny: [open, openat, openat2]}\n'), { home, env });
    assert.doesNotMatch(complete.notes.join('\n'), /syscalls\.deny/);
  });
});

describe('units', () => {
  it('parses sizes and durations', () => {
    assert.equal(parseSize('512MiB'), 512 * 1024 ** 2);
    assert.equal(parseSize('2G'), 2 * 1024 ** 3);
    assert.equal(parseSize('1kb'), 1000);
    assert.equal(parseSize(42), 42);
    assert.equal(parseSize('unlimited'), null);
    assert.equal(parseDuration('1500ms'), 1.5);
    assert.equal(parseDuration('10m'), 600);
    assert.equal(parseDuration('1h'), 3600);
    assert.equal(parseDuration(3), 3);
    assert.throws(() => parseSize('12 parsecs'));
  });
});
