/**
 * Names the sandbox chooses reach Ward's own output: a file it opens becomes a rule's trigger
 * and a refusal's detail. Printed raw, a name with a newline forges a line of evidence in
 * `ward audit show`, and one with ESC sequences rewrites the terminal. Each such string is
 * shown on its one line, its controls escaped.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { printable } from '../../src/printable.js';
import { sandboxFixture, ward } from '../helpers.js';

describe('sandbox-chosen text in Ward\'s output', () => {
  it('printable escapes C0, DEL, C1, line separators, bidi controls and the backslash, and nothing else', () => {
    assert.equal(printable('a\nb\rc\td\x00e\x1b[31mf\x7f'), 'a\\nb\\rc\\td\\x00e\\x1b[31mf\\x7f');
    assert.equal(printable('x\u0085y\u009bz'), 'x\\u0085y\\u009bz');
    assert.equal(printable('p\u2028q\u2029r'), 'p\\u2028q\\u2029r');
    assert.equal(printable('\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c'), '\\u202a\\u202b\\u202c\\u202d\\u202e\\u2066\\u2067\\u2068\\u2069\\u200e\\u200f\\u061c');
    assert.equal(printable('a\\nb'), 'a\\\\nb', 'a name that spells an escape is not shown as one');
    assert.equal(printable('/ws/café ☃ 名前.txt'), '/ws/café ☃ 名前.txt');
  });

  it('file names with a forged line and ESC sequences: ward run and ward audit show keep each record on its one line', () => {
    const fx = sandboxFixture();
    mkdirSync(path.join(fx.ws, 'secrets'));
    mkdirSync(path.join(fx.ws, 'out'));
    const log = path.join(fx.ws, '..', 'escapes-audit.jsonl');
    writeFileSync(
      path.join(fx.ws, '..', 'p.yaml'),
      'extends: [minimal]\nfilesystem: {write: ["${WORKSPACE}"]}\nrules: [{after: "read ${WORKSPACE}/secrets/**", revoke: "write ${WORKSPACE}/out/**"}]\n',
    );
    // The command's own stderr (sh's error naming the file) is the command's: sent elsewhere.
    const script = 'exec 2>/dev/null; f="$(printf "secrets/x\\n2026-11-22 19:59:59.000  deadbeef  exit 0  5 ms\\033[2K\\033[1A")"; echo s > "$f"; cat "$f"; echo z > "out/$(printf "q\\nFAKE LINE\\033[31mRED\\342\\200\\256")"; true';
    // minimal sets no limits: no cgroup is needed, and it does not allow degraded runs.
    const r = ward(['run', '--audit-log', log, '--policy', '../p.yaml', '--', 'sh', '-c', script], { cwd: fx.ws, env: fx.env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 's\n');

    for (const [what, text] of [['ward run\'s stderr', r.stderr], ['ward audit show', ward(['audit', 'show', log], { env: fx.env }).stdout]] as const) {
      assert.doesNotMatch(text, /[\x1b\u202e]/, `${what}: no raw ESC or bidi override`);
      assert.doesNotMatch(text, /^2026-11-22 19:59:59\.000 {2}deadbeef/m, `${what}: no forged exit line`);
      assert.doesNotMatch(text, /^FAKE LINE/m, `${what}: no forged line`);
      // The trigger and the refusal are there, each on one line, the controls shown escaped.
      assert.match(text, /fired on read \S+\/secrets\/x\\n2026-11-22 19:59:59\.000 {2}deadbeef {2}exit 0 {2}5 ms\\x1b\[2K\\x1b\[1A /, what);
      assert.match(text, /openat \S+\/out\/q\\nFAKE LINE\\x1b\[31mRED\\u202e\b.*refused|refused openat \S+\/out\/q\\nFAKE LINE\\x1b\[31mRED\\u202e: write revoked/, what);
    }
  });
});
