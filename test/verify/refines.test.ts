// `ward verify --refines BASE` over every dimension of the effective policy, not only file
// grants and network.allow: each loosening (a limit lifted, Landlock off, a secret passed in,
// a syscall no longer refused, a rule dropped...) is VIOLATED, naming the key and both values;
// tightenings refine. And the table of decisions covers every key of the policy schema, so a
// key added to the schema without a refinement decision fails here.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { PolicyInput } from '../../src/api.js';
import { verify } from '../../src/cli/commands/verify.js';
import { policySchema } from '../../src/policy/schema.js';
import { verifyPolicy } from '../../src/verify/properties/index.js';
import { REFINES_TABLE } from '../../src/verify/properties/refines.js';
import { prop, verifyEnv } from './helpers.js';

const tmp = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'ward-refines-')));
after(() => rmSync(tmp, { recursive: true, force: true }));
const ws = path.join(tmp, 'ws');
const home = path.join(tmp, 'home');
for (const d of [ws, `${ws}/secrets`, home]) mkdirSync(d, { recursive: true });
const env = verifyEnv(home);

/** Every key of the schema: dotted, `x.*.y` inside a record's values, `x[].y` inside a list's objects. */
function schemaKeys(): string[] {
  const out: string[] = [];
  const unwrap = (s: any): any => {
    while (s?._zod?.def?.type === 'optional' || s?._zod?.def?.type === 'nullable' || s?._zod?.def?.type === 'default') s = s._zod.def.innerType;
    return s;
  };
  const walk = (s: any, prefix: string): void => {
    s = unwrap(s);
    const t = s?._zod?.def?.type;
    if (t === 'object') {
      for (const [k, v] of Object.entries(s.shape)) walk(v, prefix ? `${prefix}.${k}` : k);
      return;
    }
    if (t === 'array' && unwrap(s._zod.def.element)?._zod?.def?.type === 'object') return walk(s._zod.def.element, `${prefix}[]`);
    if (t === 'record' && unwrap(s._zod.def.valueType)?._zod?.def?.type === 'object') return walk(s._zod.def.valueType, `${prefix}.*`);
    out.push(prefix);
  };
  walk(policySchema(), '');
  return out.sort();
}

describe('the refinement table', () => {
  it('has a decision for every key of the policy schema, and none for a key the schema does not have', () => {
    const keys = schemaKeys();
    // The walk itself must see the nested keys, or this test would pass vacuously.
    for (const k of ['filesystem.read', 'resources.memory', 'secrets.*.hosts', 'rules[].revoke', 'sandbox.landlock', 'syscalls.allow_ia32']) assert.ok(keys.includes(k), k);
    assert.deepEqual(keys, Object.keys(REFINES_TABLE).sort(), 'a schema key without a refines decision (add it to REFINES_TABLE in src/verify/properties/refines.ts), or a stale entry');
    for (const [k, e] of Object.entries(REFINES_TABLE)) {
      if ('none' in e) assert.ok(e.none.length > 20, `${k}: say why it grants nothing`);
      else assert.equal(typeof e.run, 'function', k);
    }
  });
});

const BASE = {
  extends: ['minimal'],
  filesystem: { read: ['${WORKSPACE}'] },
  network: { allow: ['api.github.com:443', 'registry.npmjs.org:443'], allow_local: [5432] },
  resources: { memory: '2GiB', pids: 256, cpus: 2, cpu_time: '10m', wall_time: '30m', file_size: '1GiB', open_files: 1024, output: '10MiB' },
  env: { pass: ['NODE_ENV'], set: { FOO: 'bar' } },
  secrets: { GH_TOKEN: { from_env: 'GH_TOKEN', hosts: ['api.github.com:443'], header: 'Authorization' } },
  syscalls: { deny: ['ptrace', 'bpf'], allow_ia32: false },
  rules: [{ after: 'read ${WORKSPACE}/secrets/**', revoke: 'network' }],
  sandbox: { landlock: 'required', allow_degraded: false, home: 'none' },
};
type P = typeof BASE;
const obj = (p: Record<string, unknown>): PolicyInput => ({ policy: p });
const refines = async (mine: Record<string, unknown>, base: Record<string, unknown> = BASE) =>
  prop(await verifyPolicy(obj(mine), { workspace: ws, env, base: obj(base) }), 'refines');

describe('--refines: every loosening is VIOLATED, naming the key and both values', () => {
  it('the policy itself refines (the baseline is inside itself)', async () => {
    const p = await refines(BASE);
    assert.equal(p.status, 'PROVED', JSON.stringify(p));
  });

  const cases: [string, (p: P) => Record<string, unknown>, RegExp][] = [
    ['sandbox.landlock off', (p) => ({ ...p, sandbox: { ...p.sandbox, landlock: 'off' } }), /sandbox\.landlock: off \(baseline: required\)/],
    ['sandbox.landlock optional', (p) => ({ ...p, sandbox: { ...p.sandbox, landlock: 'optional' } }), /sandbox\.landlock: optional \(baseline: required\)/],
    ['sandbox.allow_degraded', (p) => ({ ...p, sandbox: { ...p.sandbox, allow_degraded: true } }), /sandbox\.allow_degraded: true \(baseline: false\)/],
    ['sandbox.home', (p) => ({ ...p, sandbox: { ...p.sandbox, home: 'tmpfs' } }), /sandbox\.home: tmpfs \(baseline: none\)/],
    ['resources.memory unlimited', (p) => ({ ...p, resources: { ...p.resources, memory: 'unlimited' } }), /resources\.memory: unlimited \(baseline: 2GiB\)/],
    ['resources.memory higher', (p) => ({ ...p, resources: { ...p.resources, memory: '4GiB' } }), /resources\.memory: 4GiB \(baseline: 2GiB\)/],
    ['resources.pids', (p) => ({ ...p, resources: { ...p.resources, pids: 'unlimited' } }), /resources\.pids: unlimited \(baseline: 256\)/],
    ['resources.cpus', (p) => ({ ...p, resources: { ...p.resources, cpus: 4 } }), /resources\.cpus: 4 \(baseline: 2\)/],
    ['resources.cpu_time', (p) => ({ ...p, resources: { ...p.resources, cpu_time: '1h' } }), /resources\.cpu_time: 3600s \(baseline: 600s\)/],
    ['resources.wall_time', (p) => ({ ...p, resources: { ...p.resources, wall_time: 'unlimited' } }), /resources\.wall_time: unlimited \(baseline: 1800s\)/],
    ['resources.file_size', (p) => ({ ...p, resources: { ...p.resources, file_size: '2GiB' } }), /resources\.file_size: 2GiB \(baseline: 1GiB\)/],
    ['resources.open_files', (p) => ({ ...p, resources: { ...p.resources, open_files: 4096 } }), /resources\.open_files: 4096 \(baseline: 1024\)/],
    ['resources.output', (p) => ({ ...p, resources: { ...p.resources, output: 'unlimited' } }), /resources\.output: unlimited \(baseline: 10MiB\)/],
    ['env.pass', (p) => ({ ...p, env: { ...p.env, pass: ['NODE_ENV', 'AWS_SECRET_ACCESS_KEY'] } }), /env\.pass: \[.*AWS_SECRET_ACCESS_KEY.*\] \(baseline: \[HOME, LANG, NODE_ENV, PATH, TERM\]\)/],
    ['env.set new', (p) => ({ ...p, env: { ...p.env, set: { FOO: 'bar', LD_PRELOAD: '/tmp/x.so' } } }), /env\.set\.LD_PRELOAD: "\/tmp\/x\.so" \(baseline: not set\)/],
    ['env.set changed', (p) => ({ ...p, env: { ...p.env, set: { FOO: 'baz' } } }), /env\.set\.FOO: "baz" \(baseline: "bar"\)/],
    ['secrets new', (p) => ({ ...p, secrets: { ...p.secrets, NPM_TOKEN: { from_env: 'NPM_TOKEN', hosts: ['registry.npmjs.org:443'] } } }), /secrets\.NPM_TOKEN: from env NPM_TOKEN to \[registry\.npmjs\.org:443\] \(baseline: absent\)/],
    ['secrets hosts', (p) => ({ ...p, secrets: { GH_TOKEN: { ...p.secrets.GH_TOKEN, hosts: ['api.github.com:443', 'registry.npmjs.org:443'] } } }), /secrets\.GH_TOKEN\.hosts: \[api\.github\.com:443, registry\.npmjs\.org:443\] \(baseline: \[api\.github\.com:443\]\)/],
    ['secrets header', (p) => ({ ...p, secrets: { GH_TOKEN: { from_env: 'GH_TOKEN', hosts: ['api.github.com:443'] } } }), /secrets\.GH_TOKEN\.header: any header \(baseline: authorization\)/],
    ['secrets source', (p) => ({ ...p, secrets: { GH_TOKEN: { ...p.secrets.GH_TOKEN, from_env: 'OTHER_TOKEN' } } }), /secrets\.GH_TOKEN\.from_env: from_env OTHER_TOKEN \(baseline: from_env GH_TOKEN\)/],
    ['syscalls.deny', (p) => ({ ...p, syscalls: { ...p.syscalls, deny: ['ptrace'] } }), /syscalls\.deny: \[ptrace\] \(baseline: \[bpf, ptrace\]\)/],
    ['syscalls.allow_ia32', (p) => ({ ...p, syscalls: { ...p.syscalls, allow_ia32: true } }), /syscalls\.allow_ia32: true \(baseline: false\)/],
    ['rules removed', (p) => ({ ...p, rules: [] }), /rules: baseline rules\[0\] \{after: read .*\/secrets, revoke: connect \*\} missing/],
    ['rules weakened', (p) => ({ ...p, rules: [{ after: ['read ${WORKSPACE}/secrets/**', 'connect *'], revoke: 'network' }] }), /rules: baseline rules\[0\]/],
    ['network.allow_local', (p) => ({ ...p, network: { ...p.network, allow_local: [5432, 6379] } }), /^connect 127\.0\.0\.1:6379$/],
    ['network.allow', (p) => ({ ...p, network: { ...p.network, allow: [...p.network.allow, '*.github.com:443'] } }), /^connect [a-z0-9_.-]+\.github\.com:443$/],
    ['filesystem', (p) => ({ ...p, filesystem: { read: ['${WORKSPACE}', '~'] } }), new RegExp(`^(read|see) ${home}`)],
  ];
  for (const [name, loosen, expected] of cases) {
    it(name, async () => {
      const p = await refines(loosen(BASE));
      assert.equal(p.status, 'VIOLATED', JSON.stringify(p));
      // The loosening is the counterexample, or one of several listed in the detail (turning
      // Landlock off also widens execute, a path found first).
      assert.ok(expected.test(p.counterexample!) || expected.test(p.detail!), JSON.stringify(p));
    });
  }

  it('lax.yaml against base.yaml: every loosening is listed, each with both values', async () => {
    const lax = {
      ...BASE,
      network: { ...BASE.network, allow_local: [5432, 6379] },
      resources: { ...BASE.resources, memory: 'unlimited', pids: 'unlimited', wall_time: 'unlimited' },
      env: { pass: ['NODE_ENV', 'AWS_SECRET_ACCESS_KEY', 'GITHUB_TOKEN'], set: { FOO: 'bar', LD_PRELOAD: '/tmp/evil.so' } },
      syscalls: { deny: ['ptrace'], allow_ia32: true },
      rules: [],
      sandbox: { landlock: 'off', allow_degraded: true, home: 'tmpfs' },
    };
    const files = { base: path.join(tmp, 'base.yaml'), lax: path.join(tmp, 'lax.yaml') };
    writeFileSync(files.base, JSON.stringify(BASE));
    writeFileSync(files.lax, JSON.stringify(lax));
    let out = '';
    const code = await verify([files.lax, '--refines', files.base, '-w', ws, '--json'], { write: (s: string) => (out += s) });
    assert.equal(code, 1);
    const p = (JSON.parse(out) as { properties: { id: string; status: string; detail?: string }[] }).properties.find((x) => x.id === 'refines')!;
    assert.equal(p.status, 'VIOLATED');
    for (const want of [
      'sandbox.landlock: off (baseline: required)',
      'sandbox.allow_degraded: true (baseline: false)',
      'sandbox.home: tmpfs (baseline: none)',
      'resources.memory: unlimited (baseline: 2GiB)',
      'resources.pids: unlimited (baseline: 256)',
      'resources.wall_time: unlimited (baseline: 1800s)',
      'syscalls.allow_ia32: true (baseline: false)',
      'syscalls.deny: [ptrace] (baseline: [bpf, ptrace])',
      'env.pass: [AWS_SECRET_ACCESS_KEY, GITHUB_TOKEN, HOME, LANG, NODE_ENV, PATH, TERM] (baseline: [HOME, LANG, NODE_ENV, PATH, TERM])',
      'env.set.LD_PRELOAD: "/tmp/evil.so" (baseline: not set)',
      'connect 127.0.0.1:6379',
      'rules: baseline rules[0]',
    ]) {
      assert.ok(p.detail!.includes(want), `${want} in ${p.detail}`);
    }
  });
});

describe('--refines: tightenings refine', () => {
  it('stricter limits, more refused syscalls, an added rule, fewer variables and credentials, a stricter mode: PROVED', async () => {
    const loose = {
      ...BASE,
      secrets: { GH_TOKEN: { from_env: 'GH_TOKEN', hosts: ['*.github.com:443'] } },
      sandbox: { landlock: 'optional', allow_degraded: true, home: 'tmpfs' },
      network: { allow: [...BASE.network.allow, '*.github.com:443'], allow_local: [5432] },
    };
    const tight = {
      ...BASE,
      resources: { memory: '1GiB', pids: 64, cpus: 1, cpu_time: '1m', wall_time: '5m', file_size: '1MiB', open_files: 64, output: '1MiB' },
      env: { pass: [], set: {} },
      secrets: { GH_TOKEN: { from_env: 'GH_TOKEN', hosts: ['api.github.com:443'], header: 'Authorization' } },
      syscalls: { deny: ['ptrace', 'bpf', 'userfaultfd'], allow_ia32: false },
      rules: [...BASE.rules, { after: 'connect *', revoke: 'write ${WORKSPACE}' }],
      sandbox: { landlock: 'required', allow_degraded: false, home: 'none' },
    };
    const p = await refines(tight, loose);
    assert.equal(p.status, 'PROVED', JSON.stringify(p));
    assert.match(p.detail!, /compared directly/);
    // And not the other way round.
    assert.equal((await refines(loose, tight)).status, 'VIOLATED');
  });
});
