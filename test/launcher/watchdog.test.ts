/**
 * ward-launch outer's watchdog: when Ward's lifeline closes (Ward finished,
 * or was SIGKILLed), the sandbox's init is killed, even one that bwrap lost
 * track of. Here a shell stands in for bwrap: it reports a "child-pid" on the
 * info fd like bwrap's --info-fd, or holds the status socket like bwrap's init.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { outerArgs } from '../../src/launcher/launcher.js';
import { eventually } from '../helpers.js';
import { launcher, outerUsage } from './helpers.js';

const STATUS = 4;
const LIFELINE = 6;
const INFO = 7;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie answers kill(0): only a process that is not dead counts.
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}


/** The `sleep` processes with the marker in their argv (the watchdog's own argv holds it too). */
function pidsWith(marker: string): number[] {
  const out: number[] = [];
  for (const n of readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    try {
      const argv = readFileSync(`/proc/${n}/cmdline`, 'utf8').split('\0');
      if (argv[0] === 'sleep' && argv[1] === marker) out.push(Number(n));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Start `outer` with a lifeline, running `script` as the stand-in for bwrap. */
function startOuter(script: string, extra: 'pipe' | 'ignore' = 'ignore'): { child: ChildProcess; lifeline: Readable; out: Promise<string> } {
  const args = outerArgs({ cgroupProcs: [], statusFd: STATUS, watchdog: { lifelineFd: LIFELINE, infoFd: INFO } });
  const child = spawn(launcher(), [...args, '/bin/sh', '-c', script], {
    stdio: ['ignore', 'pipe', 'inherit', extra, 'pipe', 'ignore', 'pipe'],
  });
  let text = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (text += d));
  const out = new Promise<string>((r) => child.stdout!.on('close', () => r(text)));
  const lifeline = (child.stdio as unknown as Readable[])[LIFELINE]!;
  lifeline.on('error', () => {});
  return { child, lifeline, out };
}

describe('outer: the watchdog', () => {
  test('closing the lifeline kills the process bwrap reported on --info-fd', async () => {
    const marker = `301.${process.pid}1`;
    // The stand-in reports a sleeper as "the init", closes the info fd, and leaves it running.
    const { child, lifeline } = startOuter(`sleep ${marker} & echo "{\\"child-pid\\": $!}" >&${INFO}; exec ${INFO}>&-; echo started`);
    await new Promise((r) => child.once('exit', r));
    assert.ok(await eventually(() => pidsWith(marker).length === 1), 'the sleeper runs after its parent exited');
    const [sleeper] = pidsWith(marker);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(alive(sleeper!), 'the watchdog leaves the init alone while the lifeline is open');
    lifeline.destroy();
    assert.ok(await eventually(() => !alive(sleeper!)), 'the watchdog killed the reported init');
  });

  test('without a reported pid, the holder of the status socket is killed (bwrap died before --info-fd)', async () => {
    const marker = `301.${process.pid}2`;
    // Like an orphaned bwrap init: it never reports and keeps the status fd open.
    const { child, lifeline } = startOuter(`exec ${INFO}>&-; sleep ${marker} & echo started`);
    await new Promise((r) => child.once('exit', r));
    assert.ok(await eventually(() => pidsWith(marker).length === 1));
    const [sleeper] = pidsWith(marker);
    assert.ok(readdirSync(`/proc/${sleeper}/fd`).includes(String(STATUS)), 'the sleeper holds the status socket');
    lifeline.destroy();
    assert.ok(await eventually(() => !alive(sleeper!)), 'the watchdog found and killed the holder');
  });

  test('the watchdog goes when the reported init exits: the lifeline sees EOF', async () => {
    const { lifeline, child } = startOuter(`sleep 0.2 & echo "{\\"child-pid\\": $!}" >&${INFO}; exec ${INFO}>&-; wait`);
    const ended = new Promise<boolean>((r) => {
      lifeline.on('end', () => r(true));
      lifeline.on('close', () => r(true));
      lifeline.resume();
    });
    await new Promise((r) => child.once('exit', r));
    assert.equal(await Promise.race([ended, new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]), true);
  });

  test('bwrap gets only 0-2, the status fd, the info fd and --keep-fd fds; not the lifeline, not stray fds', async () => {
    const args = outerArgs({ cgroupProcs: [], statusFd: STATUS, watchdog: { lifelineFd: LIFELINE, infoFd: INFO }, keepFds: [5] });
    // fd 3 and fd 8 stand for fds Ward inherited without close-on-exec.
    const child = spawn(launcher(), [...args, '/bin/sh', '-c', 'ls /proc/$$/fd'], {
      stdio: ['ignore', 'pipe', 'inherit', 'pipe', 'pipe', 'pipe', 'pipe', 'ignore', 'pipe'],
    });
    let text = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (text += d));
    await new Promise((r) => child.stdout!.on('close', r));
    ((child.stdio as unknown as Readable[])[LIFELINE]!).destroy(); // the watchdog (no init reported) waits for this
    const fds = text.split(/\s+/).filter(Boolean).map(Number).sort((a, b) => a - b);
    // /bin/sh may hold one more fd of its own for `ls` (the pipe it reads is not one), so compare the ones below 10.
    assert.deepEqual(
      fds.filter((fd) => fd < 10),
      [0, 1, 2, STATUS, 5, INFO],
    );
  });

  test('--lifeline-fd without --info-fd, an info fd already in use, or a closed lifeline: usage errors', async () => {
    const cases: [string[], RegExp][] = [
      [['--lifeline-fd', String(LIFELINE)], /go together/],
      [['--lifeline-fd', String(LIFELINE), '--info-fd', '5'], /already in use/],
      [['--lifeline-fd', '9', '--info-fd', String(INFO)], /not open/],
    ];
    for (const [opts, message] of cases) {
      const r = await outerUsage(opts);
      assert.equal(r.code, 125, opts.join(' '));
      assert.match(r.stderr, message);
    }
  });
});
