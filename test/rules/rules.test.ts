// Dynamic rules as data: parsing (src/rules/parse.ts via the loader), their pure semantics
// (src/rules/index.ts), and their compilation into a supervised plan (enforced: test/supervisor/rules.test.ts).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { compile } from '../../src/api.js';
import { loadPolicy, loadPolicyObject } from '../../src/policy/load.js';
import { allowsAnyTarget, applyEvent, eventsBelow, initialState, isAllowed, isAllowedBelow, matchEvent, revocations, type Access, type Event, type Rule, type RuleState } from '../../src/rules/index.js';
import { matchBelow, matchDest, matchPath } from '../../src/rules/pattern.js';
import { policyError } from '../helpers.js';

const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'ward-rules-')));
after(() => rmSync(dir, { recursive: true, force: true }));
const ws = path.join(dir, 'ws');
const home = path.join(dir, 'home');
for (const d of [ws, `${ws}/secrets`, `${ws}/src`, home]) mkdirSync(d, { recursive: true });
const env = { HOME: home, PATH: '/usr/bin:/bin' };
const obj = (p: Record<string, unknown>) => loadPolicyObject({ extends: ['minimal'], ...p }, { workspace: ws, home, env });

describe('rules: loading', () => {
  it('parses after/revoke, expands ${WORKSPACE} and ~, keeps the trifecta list, and normalises network to connect *', () => {
    const p = obj({
      rules: [
        { after: 'read ${WORKSPACE}/secrets/**', revoke: 'network' },
        { after: ['read ~/private/**', 'connect *.example.com:443'], revoke: ['connect *', 'write ${WORKSPACE}/src'] },
        { after: 'exec ${WORKSPACE}/**/.git', revoke: 'execute ${WORKSPACE}' },
      ],
    });
    assert.deepEqual(p.effective.rules, [
      { after: [{ access: 'read', target: `${ws}/secrets` }], revoke: [{ access: 'connect', target: '*' }] },
      {
        after: [
          { access: 'read', target: `${home}/private` },
          { access: 'connect', target: '*.example.com:443' },
        ],
        revoke: [
          { access: 'connect', target: '*' },
          { access: 'write', target: `${ws}/src` },
        ],
      },
      { after: [{ access: 'exec', target: `${ws}/**/.git` }], revoke: [{ access: 'exec', target: ws }] },
    ]);
    // The rules are part of what is hashed.
    assert.match(p.canonical, /"rules":\[/);
  });

  it('a policy without rules or invariants has no such keys, so its hash is what it was', () => {
    const p = obj({ rules: [], invariants: [] });
    assert.equal('rules' in p.effective, false);
    assert.equal('invariants' in p.effective, false);
    assert.equal(p.sha256, obj({}).sha256);
  });

  it('rules from extended files are merged (union, each once)', () => {
    const base = path.join(dir, 'base.yaml');
    writeFileSync(base, 'extends: [minimal]\nrules:\n  - after: read ${WORKSPACE}/secrets/**\n    revoke: network\n');
    const top = path.join(dir, 'top.yaml');
    writeFileSync(top, 'extends: [./base.yaml]\nrules:\n  - after: read ${WORKSPACE}/secrets\n    revoke: network\n  - after: connect *\n    revoke: write ${WORKSPACE}/src\n');
    const p = loadPolicy({ file: top, workspace: ws, home, env });
    assert.equal(p.effective.rules?.length, 2);
  });

  it('bad events, bad patterns and unknown keys are errors naming the entry, the column and the fix', () => {
    let e = policyError(() => obj({ rules: [{ after: 'raed ${WORKSPACE}/secrets', revoke: 'network' }] }));
    assert.equal(e.keyPath, 'rules[0].after');
    assert.match(e.message, /column 1: unknown event kind "raed"/);
    assert.match(e.fix!, /read, write, exec, connect/);
    e = policyError(() => obj({ rules: [{ after: 'read', revoke: 'network' }] }));
    assert.match(e.message, /"read" needs a pattern/);
    e = policyError(() => obj({ rules: [{ after: 'read ${WORKSPACE}/secrets', revoke: ['network', 'write src/**'] }] }));
    assert.equal(e.keyPath, 'rules[0].revoke[1]');
    assert.match(e.message, /column 7: .*relative path/);
    e = policyError(() => obj({ rules: [{ after: 'connect example.com', revoke: 'network' }] }));
    assert.match(e.message, /not a destination pattern/);
    e = policyError(() => obj({ rules: [{ after: 'append /x', revoke: 'network' }] }));
    assert.match(e.message, /unknown event kind "append"/);
    e = policyError(() => obj({ rules: [{ after: 'read /x/**/a/b', revoke: 'network' }] }));
    assert.match(e.message, /one plain name/);
    e = policyError(() => obj({ rules: [{ after: 'read /x', revoke: 'network', grant: 'write /' }] }));
    assert.match(e.message, /unknown key "grant"/);
    e = policyError(() => obj({ rules: [{ after: 'read /x', revoke: 'network now' }] }));
    assert.match(e.message, /column 9: unexpected "now"/);
  });
});

describe('rules: semantics', () => {
  const rules: Rule[] = [
    { after: [{ access: 'read', target: '/w/secrets' }], revoke: [{ access: 'connect', target: '*' }] },
    {
      after: [
        { access: 'read', target: '/home/u/private' },
        { access: 'connect', target: '*.untrusted.example:443' },
      ],
      revoke: [{ access: 'write', target: '/w/src' }],
    },
  ];

  it('matchEvent: subtree, named-below, destination patterns', () => {
    assert.equal(matchEvent({ access: 'read', target: '/w/secrets' }, { access: 'read', target: '/w/secrets/k' }), true);
    assert.equal(matchEvent({ access: 'read', target: '/w/secrets' }, { access: 'read', target: '/w/secrets2' }), false);
    assert.equal(matchEvent({ access: 'read', target: '/w/secrets' }, { access: 'write', target: '/w/secrets/k' }), false);
    assert.equal(matchPath('/w/**/.env', '/w/a/b/.env'), true);
    assert.equal(matchPath('/w/**/.env', '/w/a/.env/x'), true);
    assert.equal(matchPath('/w/**/.env', '/w/.envx'), false);
    assert.equal(matchPath('/w/**/.env', '/x/.env'), false);
    assert.equal(matchDest('*.example.com:443', 'a.b.example.com:443'), true);
    assert.equal(matchDest('*.example.com:443', 'example.com:443'), false);
    assert.equal(matchDest('*.example.com:443', 'evilexample.com:443'), false);
    assert.equal(matchDest('*.example.com:443', 'a.example.com:80'), false);
    assert.equal(matchDest('api.example.com:*', 'api.example.com:8443'), true);
    assert.equal(matchDest('*', 'anything:1'), true);
  });

  it('read of a secret revokes the network, for good; other events change nothing', () => {
    let s = initialState(rules);
    assert.equal(isAllowed(s, 'connect', 'api.github.com:443'), true);
    let r = applyEvent(s, { access: 'read', target: '/w/README' });
    assert.deepEqual(r.fired, []);
    assert.equal(isAllowed(r.state, 'connect', 'api.github.com:443'), true);
    r = applyEvent(r.state, { access: 'read', target: '/w/secrets/token' });
    assert.deepEqual(r.fired, [0]);
    s = r.state;
    assert.equal(isAllowed(s, 'connect', 'api.github.com:443'), false);
    assert.equal(isAllowed(s, 'read', '/w/secrets/token'), true, 'only the network is revoked');
    // Firing again reports nothing new; the revocation stays.
    r = applyEvent(s, { access: 'read', target: '/w/secrets/other' });
    assert.deepEqual(r.fired, []);
    assert.equal(isAllowed(r.state, 'connect', 'x:1'), false);
  });

  it('the trifecta rule fires only once both events have happened, in either order; write revocation covers append', () => {
    for (const order of [
      [{ access: 'read' as const, target: '/home/u/private/notes' }, { access: 'connect' as const, target: 'evil.untrusted.example:443' }],
      [{ access: 'connect' as const, target: 'evil.untrusted.example:443' }, { access: 'read' as const, target: '/home/u/private/notes' }],
    ]) {
      const s0 = initialState(rules);
      const r1 = applyEvent(s0, order[0]!);
      assert.deepEqual(r1.fired, []);
      assert.equal(isAllowed(r1.state, 'write', '/w/src/main.c'), true);
      const r2 = applyEvent(r1.state, order[1]!);
      assert.deepEqual(r2.fired, [1]);
      assert.equal(isAllowed(r2.state, 'write', '/w/src/main.c'), false);
      assert.equal(isAllowed(r2.state, 'append', '/w/src/log'), false);
      assert.equal(isAllowed(r2.state, 'read', '/w/src/main.c'), true);
      assert.equal(isAllowed(r2.state, 'write', '/w/docs/a'), true);
      assert.deepEqual(revocations(r2.state), [{ access: 'write', target: '/w/src' }]);
      // applyEvent is pure: the earlier states are unchanged.
      assert.deepEqual(s0, initialState(rules));
      assert.deepEqual(r1.state.fired, [false, false]);
    }
  });
});

describe('rules: a directory moved as a whole (matchBelow, isAllowedBelow, eventsBelow)', () => {
  // Every path of up to 4 segments over a small alphabet that includes the patterns' own names.
  const SEGS = ['w', 'a', 'src', '.env', 'x'];
  const universe: string[] = ['/'];
  for (let depth = 1, layer = ['']; depth <= 4; depth++) {
    layer = layer.flatMap((p) => SEGS.map((s) => `${p}/${s}`));
    universe.push(...layer);
  }
  const PATTERNS = ['/w', '/w/a/src', '/w/**/.env', '/**/.env', '/w/a/**/.env', '/'];
  const below = (x: string, d: string) => d === '/' || x === d || x.startsWith(`${d}/`);

  it('matchBelow is exact: a path it returns is at or below the directory and matched; it answers null only when no path there is matched', () => {
    for (const pattern of PATTERNS) {
      for (const d of universe) {
        const w = matchBelow(pattern, d);
        const some = universe.some((x) => below(x, d) && matchPath(pattern, x));
        if (w !== null) assert.ok(below(w, d) && matchPath(pattern, w), `${pattern} at ${d}: ${w}`);
        // (The universe is finite, so a witness deeper than it can exist where it finds none.)
        if (some) assert.notEqual(w, null, `${pattern} at ${d}: a matched path exists below`);
      }
    }
    assert.equal(matchBelow('/w/a/src', '/w'), '/w/a/src');
    assert.equal(matchBelow('/w/a/src', '/w/b'), null);
    assert.equal(matchBelow('/w/**/.env', '/w/b/c'), '/w/b/c/.env');
    assert.equal(matchBelow('/w/**/.env', '/'), '/w/.env');
    assert.equal(matchBelow('/w/**/.env', '/v'), null);
  });

  it('isAllowedBelow refuses exactly where a revoked path lies at or below; eventsBelow are paths below the directory that the waiting patterns match', () => {
    const rules: Rule[] = [
      { after: [{ access: 'read', target: '/s' }], revoke: [{ access: 'write', target: '/w/a/src' }] },
      { after: [{ access: 'write', target: '/w/**/.env' }, { access: 'write', target: '/p/data' }], revoke: [{ access: 'read', target: '/n' }] },
    ];
    const fired = applyEvent(initialState(rules), { access: 'read', target: '/s/k' }).state;
    for (const d of universe) {
      const exact = universe.filter((x) => below(x, d)).every((x) => isAllowed(fired, 'write', x));
      if (!exact) assert.equal(isAllowedBelow(fired, 'write', d), false, d);
      assert.equal(isAllowedBelow(fired, 'write', d), matchBelow('/w/a/src', d) === null, d);
      assert.equal(isAllowedBelow(fired, 'read', d), true, d);
      assert.equal(isAllowedBelow(initialState(rules), 'write', d), true, d);
    }
    assert.equal(isAllowedBelow(fired, 'append', '/w'), false, 'a write revocation covers append');
    assert.deepEqual(eventsBelow(rules, 'write', '/p').map((e) => e.target).sort(), ['/p', '/p/data']);
    assert.deepEqual(eventsBelow(rules, 'write', '/w/b').map((e) => e.target).sort(), ['/w/b', '/w/b/.env']);
    assert.deepEqual(eventsBelow(rules, 'write', '/q').map((e) => e.target), ['/q']);
    // As ordinary events, they fire the rule a write of those paths would have fired.
    const s1 = eventsBelow(rules, 'write', '/').reduce((s, e) => applyEvent(s, e).state, initialState(rules));
    assert.deepEqual(s1.fired, [false, true]);
    for (const d of universe) for (const e of eventsBelow(rules, 'write', d)) assert.ok(below(e.target, d), `${e.target} below ${d}`);
  });
});

describe('rules: allowsAnyTarget (what the supervisor may decide without reading a path)', () => {
  const rules: Rule[] = [
    { after: [{ access: 'read', target: '/w/secrets' }], revoke: [{ access: 'write', target: '/w/src' }] },
    { after: [{ access: 'connect', target: 'evil.test:443' }], revoke: [{ access: 'append', target: '/w/log' }, { access: 'read', target: '/w/private' }] },
    { after: [{ access: 'write', target: '/w/**/.trigger' }, { access: 'exec', target: '/w/bin' }], revoke: [{ access: 'connect', target: '*' }] },
  ];
  const targets = ['/w/secrets/k', '/w/src/main.c', '/w/log/x', '/w/private/p', '/w/a/.trigger', '/w/.trigger', '/w/bin/tool', '/w/other', '/etc/passwd'];
  const events: Event[] = [
    ...targets.flatMap((t) => (['read', 'write', 'exec'] as const).map((access) => ({ access, target: t }))),
    { access: 'connect', target: 'evil.test:443' },
    { access: 'connect', target: 'ok.test:443' },
  ];
  const accessSets: Access[][] = [['read'], ['write'], ['append'], ['read', 'write'], ['write', 'append'], ['read', 'write', 'append']];
  const eventOf = (a: Access) => (a === 'append' ? 'write' : a) as Event['access'];

  /** Every state the rules can reach from the start through the events above. */
  function reachable(): RuleState[] {
    const key = (s: RuleState) => JSON.stringify([s.seen, s.fired]);
    const seen = new Map<string, RuleState>([[key(initialState(rules)), initialState(rules)]]);
    const todo = [initialState(rules)];
    while (todo.length > 0) {
      const s = todo.pop()!;
      for (const e of events) {
        const next = applyEvent(s, e).state;
        if (!seen.has(key(next))) {
          seen.set(key(next), next);
          todo.push(next);
        }
      }
    }
    return [...seen.values()];
  }

  it('whenever it says true, every target is allowed for those accesses and happening on it changes nothing (all reachable states)', () => {
    const states = reachable();
    // 2 (rule 0) x 2 (rule 1) x 4 (rule 2's two patterns): every combination was reached.
    assert.equal(states.length, 16);
    let yes = 0;
    let no = 0;
    for (const s of states) {
      for (const acc of accessSets) {
        if (!allowsAnyTarget(s, acc)) {
          no++;
          continue;
        }
        yes++;
        for (const a of acc) {
          for (const t of targets) {
            assert.equal(isAllowed(s, a, t), true, `${a} ${t} refused in a state said to allow any target`);
            const r = applyEvent(s, { access: eventOf(a), target: t });
            assert.deepEqual(r.fired, [], `${a} ${t} fired a rule in a state said to need no event`);
            assert.deepEqual(r.state.seen, s.seen, `${a} ${t} was an event that mattered`);
          }
        }
      }
    }
    // Both answers occur, so the property above is not vacuous.
    assert.ok(yes > 0 && no > 0, `yes=${yes} no=${no}`);
  });

  it('says false while a pattern of that kind waits or once a revocation of it fired, and true again once the pattern was seen', () => {
    let s = initialState(rules);
    assert.equal(allowsAnyTarget(s, ['read']), false, 'rule 0 waits for a read');
    assert.equal(allowsAnyTarget(s, ['write']), false, 'rule 2 waits for a write of a .trigger');
    s = applyEvent(s, { access: 'write', target: '/w/a/.trigger' }).state;
    assert.equal(allowsAnyTarget(s, ['write']), true, 'the write pattern was seen; nothing revokes writes yet');
    assert.equal(allowsAnyTarget(s, ['write', 'append']), true);
    s = applyEvent(s, { access: 'connect', target: 'evil.test:443' }).state;
    assert.equal(allowsAnyTarget(s, ['append']), false, 'rule 1 revoked append (of /w/log)');
    assert.equal(allowsAnyTarget(s, ['write']), true, 'an append revocation does not cover plain writes');
    s = applyEvent(s, { access: 'read', target: '/w/secrets/k' }).state;
    assert.equal(allowsAnyTarget(s, ['write']), false, 'rule 0 revoked write (of /w/src)');
    assert.equal(allowsAnyTarget(s, ['read']), false, 'rule 1 revoked read (of /w/private)');
    assert.equal(allowsAnyTarget(initialState([]), ['read', 'write', 'append']), true, 'no rules: nothing to decide');
  });
});

describe('rules: compiled into a supervised plan (no longer refused)', () => {
  it('compile makes a plan with the rules as data and the syscalls they need, both in the plan hash', () => {
    const p = obj({ rules: [{ after: 'read ${WORKSPACE}/secrets/**', revoke: 'network' }] });
    const plan = compile(p, { workspace: ws, env });
    // A read event needs the opens; revoking the network needs connect; nothing else.
    assert.deepEqual(plan.rules?.syscalls, ['connect', 'creat', 'open', 'openat', 'openat2']);
    assert.deepEqual(plan.rules?.rules, p.effective.rules);
    const none = compile(obj({}), { workspace: ws, env });
    assert.equal(none.rules, null);
    assert.notEqual(plan.sha256, none.sha256, 'the rules are in the plan hash');
    const other = compile(obj({ rules: [{ after: 'read ${WORKSPACE}/secrets/**', revoke: 'write ${WORKSPACE}/src' }] }), { workspace: ws, env });
    assert.notEqual(other.sha256, plan.sha256);
    // `rules: []` is no rules: the same plan, the same hash as before rules existed.
    assert.equal(compile(obj({ rules: [] }), { workspace: ws, env }).sha256, none.sha256);
  });

  it('only what the rules need is intercepted: exec events and revocations, write revocations (names, bytes and metadata; opens only when they could write), connect events (none: the broker)', () => {
    const sys = (rules: unknown[]) => compile(obj({ rules }), { workspace: ws, env }).rules?.syscalls;
    const conditions = (rules: unknown[]) => compile(obj({ rules }), { workspace: ws, env }).rules?.conditions;
    assert.deepEqual(sys([{ after: 'exec ${WORKSPACE}/src', revoke: 'exec ${WORKSPACE}' }]), ['execve', 'execveat']);
    // A write revocation is decided on resolved paths for everything that changes a name, the
    // bytes or the metadata of a file (by path, or by fd for the f* calls).
    // open and openat only when their flags could write (conditions.writeOpens): a read-only
    // open is nothing to a rule about writes.
    const writeCalls = ['chmod', 'chown', 'creat', 'fchmod', 'fchmodat', 'fchmodat2', 'fchown', 'fchownat', 'fremovexattr', 'fsetxattr', 'futimesat', 'lchown', 'link', 'linkat', 'lremovexattr', 'lsetxattr', 'mkdir', 'mkdirat', 'mknod', 'mknodat', 'openat2', 'removexattr', 'removexattrat', 'rename', 'renameat', 'renameat2', 'rmdir', 'setxattr', 'setxattrat', 'symlink', 'symlinkat', 'truncate', 'unlink', 'unlinkat', 'utime', 'utimensat', 'utimes'];
    assert.deepEqual(sys([{ after: 'connect *', revoke: 'write ${WORKSPACE}/src' }]), writeCalls);
    assert.deepEqual(conditions([{ after: 'connect *', revoke: 'write ${WORKSPACE}/src' }]), { writeOpens: true });
    assert.deepEqual(sys([{ after: 'connect a.example.com:443', revoke: 'connect b.example.com:443' }]), []);
    assert.deepEqual(sys([{ after: 'connect *', revoke: 'append ${WORKSPACE}/src' }]), ['creat', 'openat2']);
    // A write event is every call a write revocation refuses: a rename (a tree moved into or out
    // of the pattern), a link, symlink, mkdir, mknod, unlink or truncate into it, its metadata.
    assert.deepEqual(sys([{ after: 'write ${WORKSPACE}/x', revoke: 'network' }]), ['connect', ...writeCalls].sort());
    assert.deepEqual(conditions([{ after: 'write ${WORKSPACE}/x', revoke: 'network' }]), { writeOpens: true });
    // A rule about reads needs every open, whatever the flags: no condition.
    assert.deepEqual(sys([{ after: 'read ${WORKSPACE}/secrets', revoke: 'write ${WORKSPACE}/src' }]), [...writeCalls, 'open', 'openat'].sort());
    assert.equal(conditions([{ after: 'read ${WORKSPACE}/secrets', revoke: 'write ${WORKSPACE}/src' }]), undefined);
    assert.deepEqual(sys([{ after: 'connect *', revoke: 'read ${WORKSPACE}/secrets' }]), ['creat', 'open', 'openat', 'openat2']);
  });

  it('a write revocation or a write event takes MAKE_SOCK (letter n) from every Landlock rule whose tree meets the pattern, ancestors included, and from no other', () => {
    const withDefault = (rules: unknown[]) => compile(loadPolicyObject({ extends: ['default'], rules }, { workspace: ws, home, env }), { workspace: ws, env });
    const rights = (rules: unknown[]) => Object.fromEntries(withDefault(rules).mounts.landlock.map((r) => [r.path, r.rights]));
    const plain = rights([]);
    const rw = realpathSync(ws);
    // The workspace holds src/; $HOME and /dev do not, and no read-only rule gets a letter.
    const withRule = rights([{ after: 'connect *', revoke: 'write ${WORKSPACE}/src' }]);
    for (const [p, r] of Object.entries(plain)) {
      const meets = r.includes('w') && (rw.startsWith(p === '/' ? '/' : `${p}/`) || rw === p);
      assert.equal(withRule[p], meets ? `${r}n` : r, `${p}: ${r} -> ${withRule[p]}`);
    }
    assert.equal(withRule[rw], `${plain[rw]}n`);
    assert.equal(withRule['/dev'], plain['/dev']);
    // A named-below pattern meets every rule above or below its directory; other revocations take nothing.
    assert.equal(rights([{ after: 'connect *', revoke: 'write ${WORKSPACE}/**/.env' }])[rw], `${plain[rw]}n`);
    assert.deepEqual(rights([{ after: 'connect *', revoke: 'read ${WORKSPACE}/src' }]), plain);
    assert.deepEqual(rights([{ after: 'connect *', revoke: 'network' }]), plain);
    // A write waited for is the same: a socket node made in the pattern would be a write no rule saw.
    assert.deepEqual(rights([{ after: 'write ${WORKSPACE}/src', revoke: 'network' }]), withRule);
    assert.deepEqual(rights([{ after: 'read ${WORKSPACE}/src', revoke: 'network' }]), plain);
    // The plan says what it costs.
    assert.ok(withDefault([{ after: 'connect *', revoke: 'write ${WORKSPACE}/src' }]).notes.some((n) => n.startsWith(`no unix socket can be bound to a path under ${rw}`)));
  });

  it('run() enforces them (a write refused after the trigger), and launch() refuses a hand-made plan without them', async () => {
    const { run } = await import('../../src/index.js');
    const { launch } = await import('../../src/sandbox/launch.js');
    const { hasCgroup } = await import('../helpers.js');
    const p = loadPolicyObject({ extends: ['default'], rules: [{ after: 'read ${WORKSPACE}/secrets/**', revoke: 'write ${WORKSPACE}/src/**' }] }, { workspace: ws, home, env });
    writeFileSync(path.join(ws, 'secrets', 'k'), 'K\n');
    const r = await run(p, ['sh', '-c', 'echo a > src/f; cat secrets/k; echo b > src/f; echo "rc=$?"'], { workspace: ws, env, audit: false, stdin: 'ignore', allowDegraded: !hasCgroup });
    assert.match(r.stdout.toString(), /^K\nrc=2\n$/, r.stderr.toString());
    assert.equal(readFileSync(path.join(ws, 'src', 'f'), 'utf8'), 'a\n');
    assert.equal(r.revocations.length, 1);
    assert.ok(r.denials.some((d) => d.layer === 'supervisor' && d.what.endsWith(' ' + path.join(ws, 'src', 'f'))), JSON.stringify(r.denials));
    const plan = compile(obj({}), { workspace: ws, env });
    assert.throws(() => launch({ ...plan, policy: p }, ['true']), /dynamic rules are not the policy's/);
  });
});

describe('rules: the CLI', () => {
  it('`ward run` runs a policy with rules (supervised; the rules in the launch record); `ward policy check` lists the rules and what they intercept', async () => {
    const { ward, hasCgroup } = await import('../helpers.js');
    const file = path.join(dir, 'dynamic.yaml');
    writeFileSync(file, 'extends: [minimal]\nrules:\n  - after: read ${WORKSPACE}/secrets/**\n    revoke: network\ninvariants:\n  - never connect * after read ${WORKSPACE}/secrets/**\n');
    const audit = path.join(dir, 'audit.jsonl');
    const r = ward(['run', '--policy', file, '-w', ws, '--audit-log', audit, ...(hasCgroup ? [] : ['--allow-degraded']), '--', 'true'], { env: { ...process.env, ...env } });
    assert.equal(r.code, 0, r.stderr);
    const launchRec = readFileSync(audit, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; layers?: { rules?: string[]; supervisor?: { syscalls: string[] } } }).find((x) => x.type === 'launch');
    assert.deepEqual(launchRec?.layers?.rules, [`after read ${ws}/secrets -> revoke connect *`]);
    assert.deepEqual(launchRec?.layers?.supervisor?.syscalls, ['connect', 'creat', 'open', 'openat', 'openat2']);
    const c = ward(['policy', 'check', file, '-w', ws], { env: { ...process.env, ...env } });
    assert.equal(c.code, 0, c.stderr);
    assert.match(c.stdout, /plan sha256 +[0-9a-f]{64}\n/);
    assert.match(c.stdout, /rules \(1; enforced in supervised mode, intercepting connect, creat, open, openat, openat2\)/);
    assert.match(c.stdout, new RegExp(`after read ${ws}/secrets -> revoke connect \\*`));
    assert.match(c.stdout, /invariant:1 never connect \* after read/);
    const shown = ward(['policy', 'show', file, '-w', ws, '--plan'], { env: { ...process.env, ...env } });
    assert.equal(shown.code, 0, shown.stderr);
    const planView = JSON.parse(shown.stdout.trim().split('\n').at(-1)!) as { sha256: string; rules?: { syscalls: string[] } };
    assert.deepEqual(planView.rules?.syscalls, ['connect', 'creat', 'open', 'openat', 'openat2']);
    assert.match(c.stdout, new RegExp(`plan sha256 +${planView.sha256}`), 'policy check and policy show name the same plan');
  });
});
