/**
 * The supervisor lives in Ward's process. If that process is killed (SIGKILL: no cleanup runs),
 * the sandbox must die with it, never keep running with nobody to answer its notifications.
 * (With the listener closed the kernel fails notified calls with ENOSYS; the launcher's
 * watchdog kills the sandbox when Ward's lifeline closes.)
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { eventually, ROOT, sandboxFixture } from '../helpers.js';

/** Host pids whose command line is exactly `sleep SECONDS`. */
function sleepers(seconds: string): number[] {
  const found: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8') === `sleep\0${seconds}\0`) found.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return found;
}

describe('supervised mode: Ward killed', () => {
  it('SIGKILL of the Ward process running the supervisor leaves no sandboxed process alive', async () => {
    const fx = sandboxFixture();
    writeFileSync(path.join(fx.ws, 'ok.txt'), 'ok\n');
    const seconds = `299.${String(process.pid).padStart(6, '0')}${Math.floor(Math.random() * 1e6)}`;
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/supervisor/ward-child.ts'), fx.ws, fx.home, seconds], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    try {
      assert.ok(await eventually(() => out.includes('launched') && sleepers(seconds).length === 1, 30_000), `the supervised command did not start: ${out}`);
      const [pid] = sleepers(seconds);
      child.kill('SIGKILL');
      assert.ok(await eventually(() => sleepers(seconds).length === 0, 10_000), `sandboxed pid ${pid} still alive after Ward was killed`);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
