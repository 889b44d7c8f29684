/**
 * An exclusive lock beside the audit log, so that several Ward processes (two
 * terminals, a library user running commands in parallel) append one chain.
 *
 * Node has no flock(2), so the lock is a file created with O_CREAT|O_EXCL,
 * holding "pid starttime host token". It is held only for the few hundred
 * microseconds of one append, and waited for by polling with a short sleep, in
 * the order of arrival (the queue, below acquireLock).
 *
 * A Ward killed while holding it leaves it behind: a lock whose pid no longer
 * runs on this host (or runs, but started at another time: a reused pid) is
 * stale. Breaking it is done by renaming it to a private name first and
 * checking that what was renamed is the very lock judged stale, so two Wards
 * breaking the same stale lock at once cannot remove a fresh one.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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
  const queue = `${file}.queue`;
  let ticket: string | null = null; // our place in the queue, once we have had to wait
  try {
    for (;;) {
      // How many wait before us: for a newcomer, every ticket, unless this process's turn
      // (since it took the lock past a queue, or free) is not yet TURN_NS old.
      const turn = turns.get(file);
      const inTurn = ticket === null && turn !== undefined && process.hrtime.bigint() - turn < TURN_NS;
      const ahead = ticket !== null ? placeInLine(queue, ticket) : inTurn ? 0 : waiting(queue).length;
      if (ahead === 0) {
        try {
          const fd = openSync(file, 'wx', 0o600);
          try {
            writeSync(fd, content);
          } finally {
            closeSync(fd);
          }
          if (!inTurn) turns.set(file, process.hrtime.bigint());
          return { file, release: () => release(file, content) };
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
            throw new WardError(`cannot create the audit log's lock ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
              step: 'audit:lock',
              fix: 'the audit log must be in a directory this user can write (the default is ~/.local/state/ward); pass --audit-log FILE elsewhere',
            });
          }
        }
        ticket ??= joinQueue(queue); // at once: until it is there, the holder may take the lock again
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
      }
      ticket ??= joinQueue(queue);
      if (Date.now() > deadline) throw lockedTooLong(file, timeoutMs);
      // The first in line polls the lock itself, often, and the second as often, to be first
      // in line as soon as the first takes the lock: the lock passes within about a millisecond.
      // The others only watch the queue, less often.
      const wait = ahead <= 1 ? HEAD_POLL_MS : QUEUE_POLL_MS;
      sleepMs(wait / 2 + Math.random() * wait / 2);
    }
  } finally {
    if (ticket !== null) leaveQueue(ticket);
  }
}

/*
 * Why a queue: a process that appends in a loop (a supervisor recording denial after denial
 * from a command that provokes them) releases the lock and takes it again within microseconds.
 * Pollers that sleep in between almost never find it free, so another Ward process could wait
 * out its timeout and have its run stopped: one sandboxed command starving the records of
 * another (bench: the old poller waited out seconds behind one such loop). So whoever finds
 * the lock held takes a ticket (a file named by CLOCK_MONOTONIC, the same clock in every process
 * of the host) in FILE.queue/; waiters take the lock oldest first, and a newcomer queues behind
 * them. A process that took the lock has a turn of TURN_NS, in which it takes the lock again
 * without looking at the queue: a lock passed at every append would cost about a millisecond of
 * polling each time, a tenth of the throughput of one process appending a burst. Anyone's wait
 * is then bounded by a turn for each process ahead of it.
 * A waiter touches its ticket at every poll; one untouched for ABANDONED_MS (its process was
 * killed or stopped) is removed by whoever sees it, so it holds no one up for longer.
 */
const TURN_NS = 5_000_000n;
const turns = new Map<string, bigint>();
const HEAD_POLL_MS = 0.5;
const QUEUE_POLL_MS = 4;
const ABANDONED_MS = 3000;

interface Ticket {
  path: string;
  at: bigint;
}

/** The live tickets, oldest first. */
function waiting(queue: string): Ticket[] {
  let names: string[];
  try {
    names = readdirSync(queue);
  } catch {
    return []; // no queue yet: no one has waited
  }
  const now = Date.now();
  const live: Ticket[] = [];
  for (const name of names) {
    const at = /^(\d+)-/.exec(name)?.[1];
    if (at === undefined) continue;
    const p = path.join(queue, name);
    try {
      // Either way: a clock stepped back would otherwise keep a dead waiter's ticket "fresh" for
      // as long as the step; a live waiter whose ticket is removed puts it back at its next poll.
      if (Math.abs(now - statSync(p).mtimeMs) > ABANDONED_MS) {
        unlinkSync(p);
        continue;
      }
    } catch {
      continue; // left the queue meanwhile
    }
    live.push({ path: p, at: BigInt(at) });
  }
  return live.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.path < b.path ? -1 : 1));
}

function joinQueue(queue: string): string {
  mkdirSync(queue, { recursive: true, mode: 0o700 });
  const ticket = path.join(queue, `${process.hrtime.bigint()}-${process.pid}-${randomBytes(4).toString('hex')}`);
  writeFileSync(ticket, '', { mode: 0o600 });
  return ticket;
}

/** Touches our ticket (putting it back if it was judged abandoned) and counts the older ones. */
function placeInLine(queue: string, ticket: string): number {
  const now = new Date();
  try {
    utimesSync(ticket, now, now);
  } catch {
    mkdirSync(queue, { recursive: true, mode: 0o700 });
    writeFileSync(ticket, '', { mode: 0o600 });
  }
  const line = waiting(queue);
  const place = line.findIndex((t) => t.path === ticket);
  return place === -1 ? line.length : place;
}

function leaveQueue(ticket: string): void {
  try {
    unlinkSync(ticket);
  } catch {
    /* judged abandoned and removed */
  }
}

function lockedTooLong(file: string, timeoutMs: number): WardError {
  let held = '';
  try {
    held = readFileSync(file, 'utf8');
  } catch {
    /* free now, but others were before us all along */
  }
  const [pid, , host] = held.trim().split(' ');
  if (!pid) {
    return new WardError(`the audit log was locked by other Ward processes, one after another, for more than ${timeoutMs / 1000} s (${file})`, {
      step: 'audit:lock',
      fix: 'run again once they are done, or give this run a log of its own with --audit-log FILE',
    });
  }
  return new WardError(`the audit log is locked by process ${pid} on ${host ?? '?'} for more than ${timeoutMs / 1000} s (${file})`, {
    step: 'audit:lock',
    fix: `if no Ward process is running, remove ${file}`,
  });
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
