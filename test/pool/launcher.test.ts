/**
 * ward-launch inner --argv-fd (the warm half of a pooled sandbox), run directly: "ready" comes
 * before any command is sent, the command arrives as one length-prefixed message, is
 * acknowledged, and runs holding fds 0-2 only; EOF or a malformed message ends the launcher
 * without exec, with a status line naming why.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { ensureLauncher } from '../../src/launcher/launcher.js';
import { encodeArgvMessage } from '../../src/pool/message.js';

interface Outcome {
  code: number | null;
  status: Record<string, unknown>[];
  stdout: string;
  stderr: string;
  ack: string;
}

/** Starts inner with --argv-fd 5, waits for its first status line, then lets `send` write (or not). */
async function inner(send: (ch: Writable) => void, extra: string[] = [], after: string[] = []): Promise<Outcome & { firstLineBeforeSend: boolean }> {
  const child = spawn(ensureLauncher(), ['inner', '--status-fd', '4', '--landlock', 'off', '--argv-fd', '5', ...extra, '--', ...after], {
    argv0: 'ward-launch',
    stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'pipe', 'pipe'],
  });
  const stdio = child.stdio as unknown as (Readable & Writable)[];
  const status: Buffer[] = [];
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const ack: Buffer[] = [];
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.on('data', (c: Buffer) => err.push(c));
  stdio[5]!.on('data', (c: Buffer) => ack.push(c));
  stdio[5]!.on('error', () => {});
  const exited = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  // The first line (ready, or a usage failure's EOF) comes before we send anything.
  const firstLine = await new Promise<boolean>((resolve) => {
    stdio[4]!.on('data', (c: Buffer) => {
      status.push(c);
      if (Buffer.concat(status).includes(0x0a)) resolve(true);
    });
    void exited.then(() => resolve(false));
  });
  if (firstLine) send(stdio[5]!);
  const code = await exited;
  return {
    code,
    firstLineBeforeSend: firstLine,
    status: Buffer.concat(status)
      .toString()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>),
    stdout: Buffer.concat(out).toString(),
    stderr: Buffer.concat(err).toString(),
    ack: Buffer.concat(ack).toString(),
  };
}

const header = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

describe('ward-launch inner --argv-fd', () => {
  it('reports ready with no command yet, then runs the command it is sent, acknowledged, holding fds 0-2 only', async () => {
    const r = await inner((ch) => ch.end(encodeArgvMessage(['sh', '-c', 'echo "$0 $1"; ls /proc/self/fd | tr "\\n" " "; exit 7', 'one', 'two words'])));
    assert.equal(r.firstLineBeforeSend, true);
    assert.equal(r.status.length, 1, JSON.stringify(r.status));
    assert.equal(r.status[0]!.stage, 'inner');
    assert.ok(r.status[0]!.landlock, 'the first line is the ready report');
    assert.equal(r.code, 7);
    assert.equal(r.ack, 'A');
    assert.equal(r.stdout, 'one two words\n0 1 2 3 ');
  });

  it('EOF before any command: no exec, exit 125, a status line names it', async () => {
    const r = await inner((ch) => ch.end());
    assert.equal(r.code, 125);
    assert.equal(r.status[1]!.step, 'argv-read');
    assert.match(String(r.status[1]!.detail), /no command was handed out/);
    assert.equal(r.ack, '');
  });

  const malformed: [string, Buffer, string, RegExp][] = [
    ['a length of 0', header(0), 'argv-message', /length is out of range/],
    ['a length over 1 MiB', header((1 << 20) + 1), 'argv-message', /length is out of range/],
    ['no closing NUL', Buffer.concat([header(4), Buffer.from('true')]), 'argv-message', /does not end with NUL/],
    ['an empty argv[0]', Buffer.concat([header(3), Buffer.from('\0x\0')]), 'argv-message', /argv\[0\]\) is empty/],
    ['a message cut short', Buffer.concat([header(10), Buffer.from('tr')]), 'argv-read', /ended early/],
    ['a length cut short', Buffer.from([1, 0]), 'argv-read', /length of the argv message/],
  ];
  for (const [what, bytes, step, detail] of malformed) {
    it(`${what}: no exec, exit 125, step ${step}`, async () => {
      const r = await inner((ch) => ch.end(bytes));
      assert.equal(r.code, 125, r.stderr);
      assert.equal(r.status.length, 2, JSON.stringify(r.status));
      assert.equal(r.status[1]!.step, step);
      assert.match(String(r.status[1]!.detail), detail);
      assert.equal(r.ack, '', 'nothing was taken');
      assert.equal(r.stdout, '');
    });
  }

  it('usage errors: a command after "--", an fd that is not open, the status fd reused', async () => {
    const a = await inner(() => {}, [], ['true']);
    assert.equal(a.code, 125);
    assert.match(a.stderr, /with --argv-fd the command comes from that fd: nothing may follow '--'/);
    const b = await inner(() => {}, ['--argv-fd', '9']);
    assert.equal(b.code, 125);
    assert.match(b.stderr, /--argv-fd given twice/);
    const child = spawn(ensureLauncher(), ['inner', '--landlock', 'off', '--argv-fd', '42', '--'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const err: Buffer[] = [];
    child.stderr!.on('data', (c: Buffer) => err.push(c));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    assert.equal(code, 125);
    assert.match(Buffer.concat(err).toString(), /option --argv-fd: '42' is not an open fd >= 3/);
  });
});

describe('the argv message (src/pool/message.ts)', () => {
  it('is a u32 length and NUL-terminated arguments', () => {
    const m = encodeArgvMessage(['a', 'bc']);
    assert.equal(m.readUInt32LE(0), 5);
    assert.equal(m.subarray(4).toString('latin1'), 'a\0bc\0');
  });

  it('refuses what the launcher would refuse, before sending', () => {
    assert.throws(() => encodeArgvMessage([]), /no command given/);
    assert.throws(() => encodeArgvMessage(['']), /argv\[0\]\) is empty/);
    assert.throws(() => encodeArgvMessage(['x', 'a\0b']), /argv\[1\] contains a NUL byte/);
    assert.throws(() => encodeArgvMessage(['x', 'y'.repeat(1 << 20)]), /at most 1048576/);
  });
});
