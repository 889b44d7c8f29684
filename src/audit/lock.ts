/**
 * An exclusive lock beside the audit log, so that several Ward processes (two
 * terminals, a library user running commands in parallel) append one chain.
 *
 * Node has no flock(2), so the lock is a file created with O_CREAT|O_EXCL,
 * holding "pid starttime host token". It is held only for the few hundred
 * microseconds of one append, and waited for by polling with a short sleep.
 *
 * A Ward killed while holding it leaves it behind: a lock whose pid no longer
 * runs on this host (or runs, but started at another time: a reused pid) is
 * stale. Breaking it is done by renaming it to a private name first and
 * checking that what was renamed is the very lock judged stale, so two Wards
 * breaking the same stale lock at once cannot remove a fresh one.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, linkSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import os from 'node:os';
import { WardError } from '../errors.js';

export interface FileLock {
  file: string;
  release(): void;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepMs(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

let ownStart: string | null | undefined;

function isStale(content: string, mtimeMs: number): boolean {
  const [pidText, start, host] = content.trim().split(' ');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0 || host === undefined) {
    // Between O_EXCL and the write of its content: give the creator time.
    return Date.now() - mtimeMs > 2000;
  }
  if (host !== os.hostname()) return false; // another machine's pid: cannot tell
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return true;
  }
  const now = startTime(pid);
  return start !== '-' && now !== null && now !== start;
}

export function acquireLock(file: string, opts: { timeoutMs?: number } = {}): FileLock {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const token = randomBytes(8).toString('hex');
  if (ownStart === undefined) ownStart = startTime(process.pid);
  const content = `${process.pid} ${ownStart ?? '-'} ${os.hostname()} ${token}\n`;
  const deadline = Date.now() + timeoutMs;
  let wait = 1;
  for (;;) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      try {
        writeSync(fd, content);
      } finally {
        closeSync(fd);
      }
      return { file, release: () => release(file, content) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new WardError(`cannot create the audit log's lock ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
          step: 'audit:lock',
          fix: 'the audit log must be in a directory this user can write (the default is ~/.local/state/ward); pass --audit-log FILE elsewhere',
        });
      }
    }
    let held: string;
    let mtimeMs: number;
    try {
      held = readFileSync(file, 'utf8');
      mtimeMs = statSync(file).mtimeMs;
    } catch {
      continue; // released between our open and our read: try again at once
    }
    if (isStale(held, mtimeMs)) {
      breakStale(file, held);
      continue;
    }
    if (Date.now() > deadline) {
      const [pid, , host] = held.trim().split(' ');
      throw new WardError(`the audit log is locked by process ${pid ?? '?'} on ${host ?? '?'} for more than ${timeoutMs / 1000} s (${file})`, {
        step: 'audit:lock',
        fix: `if no Ward process is running, remove ${file}`,
      });
    }
    sleepMs(wait + Math.random() * wait);
    wait = Math.min(wait * 2, 20);
  }
}

function breakStale(file: string, judged: string): void {
  const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    renameSync(file, aside);
  } catch {
    return; // someone else broke or released it
  }
  let moved = '';
  try {
    moved = readFileSync(aside, 'utf8');
  } catch {
    /* treat as not ours */
  }
  if (moved !== judged) {
    // A live holder's lock was moved (it replaced the stale one between our read
    // and our rename): put it back unless someone has taken the name meanwhile.
    try {
      linkSync(aside, file);
    } catch {
      /* taken: the holder's release will find another token and leave it */
    }
  }
  try {
    unlinkSync(aside);
  } catch {
    /* gone */
  }
}

function release(file: string, content: string): void {
  try {
    if (readFileSync(file, 'utf8') === content) unlinkSync(file);
  } catch {
    /* already gone */
  }
}
