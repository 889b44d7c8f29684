/**
 * What a sandbox gets as fds 0-2 when its caller asks for Ward's own ('inherit') or for none.
 *
 * An fd passed into the sandbox is an open file Landlock never judges (it checks paths at open),
 * so the command may change whatever it refers to by fd: fchmod, fchown, futimens, fsetxattr on
 * the file the caller redirected (`ward run ... < in.txt > out.txt`), a named FIFO, a device;
 * and a pipe, reopened through /proc/self/fd, hands out its other end. Only two kinds are passed:
 * a connected unix stream socket (it cannot be reopened, and talks only to its peer) and the
 * caller's controlling terminal (so it stays interactive; a gap: SECURITY-MODEL.md). Anything
 * else is relayed: the sandbox gets a pipe, and Ward copies between it and the caller's fd.
 *
 * The pipes are real pipes (pipe2 through koffi), not the socketpairs Node's 'pipe' makes: a
 * pipe can be reopened through /proc/self/fd, so `/dev/stdout`, `/dev/stderr` and `/dev/stdin`
 * keep working inside (a socket there is ENXIO), and one pipe can be both fd 1 and fd 2.
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, constants as fsConstants, fstatSync, openSync, read, readFileSync, write, writeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { isatty, ReadStream } from 'node:tty';
import { loadNative } from '../supervisor/native.js';

export type CallerFdUse = 'pass' | 'relay';

const AF_UNIX = 1;
const SOCK_STREAM = 1;

/** The calling process's controlling terminal (tty_nr of /proc/self/stat, as fstat's st_rdev), 0 for none. */
function controllingTty(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'latin1');
    // After the command name (which may hold spaces and parentheses): state ppid pgrp session tty_nr.
    const tty = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[4]);
    return Number.isInteger(tty) ? tty : 0;
  } catch {
    return 0;
  }
}

/**
 * 'pass' for a connected unix stream socket and for the caller's controlling terminal; 'relay'
 * for the rest, and for an fd that cannot be examined (failing closed: a relay of a broken fd
 * gives the command EOF or EPIPE).
 *
 * A pipe is relayed too, anonymous or not: reopened through /proc/self/fd with the other access
 * mode, it gives the command the end it was not given: it wrote into the caller's stdin pipe,
 * which the caller's shell read and ran after it (`(echo ls) | { ward run ...; sh; }`), and could
 * read a sibling's output off a shared stdout pipe. A socket cannot be reopened (ENXIO), but
 * one of another family or type is the host network namespace's: an inet socket can be
 * disconnected (connect AF_UNSPEC) and connected anywhere, a datagram one sent anywhere, a
 * listening one accepted on. A connected unix stream socket (what Node's and most harnesses'
 * 'pipe' is) only talks to its peer. A terminal other than the caller's controlling one
 * (`< /dev/ttyS0`, `> /dev/console` by root) is a device node the command could fchmod.
 */
export function callerFdUse(fd: number): CallerFdUse {
  let st;
  try {
    st = fstatSync(fd);
  } catch {
    return 'relay';
  }
  if (st.isSocket()) {
    let kind;
    try {
      kind = loadNative().sockKind(fd);
    } catch {
      return 'relay'; // no koffi: its kind is unknown
    }
    return kind && kind.domain === AF_UNIX && kind.type === SOCK_STREAM && !kind.listening ? 'pass' : 'relay';
  }
  if (st.isCharacterDevice() && isatty(fd)) {
    const ctty = controllingTty();
    return ctty !== 0 && st.rdev === ctty ? 'pass' : 'relay';
  }
  return 'relay';
}

/** Whether fds a and b are the same file (`> log 2>&1`, `>> log 2>> log`). */
export function sameFile(a: number, b: number): boolean {
  try {
    const x = fstatSync(a);
    const y = fstatSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

type Entry = 'inherit' | 'pipe' | number;

export interface OutputRelays {
  done: Promise<void>;
  stopInput(): void;
  /**
   * Stop relaying output now (the run's wall_time is over): what the caller's fd has not taken
   * is dropped, and `done` resolves. Returns the caller's fds (1, 2) that still had output to
   * take, empty when every byte had been delivered.
   */
  cut(): (1 | 2)[];
}

export interface SandboxStdio {
  /** spawn()'s stdio entries for fds 0-2. */
  entries: [Entry, Entry, Entry];
  /**
   * After spawn: closes Ward's copies of the sandbox's pipe ends and starts the relays. `done`
   * resolves once relayed output is all written to the caller's fds, or once `cut()` gave up on
   * it; `stopInput` ends the stdin relay (the command has ended).
   */
  start(child: ChildProcess): OutputRelays;
  /** The spawn failed: closes every pipe made for it. */
  abandon(): void;
}

/**
 * The sandbox's fds 0-2. stdin: 'inherit' (Ward's fd 0, passed or relayed), 'ignore' (EOF:
 * never Node's 'ignore', which passes the host's /dev/null, a file a root caller's sandbox, host
 * uid 0, could fchmod) or 'pipe' (the caller writes). Output: 'inherit' passes or relays Ward's
 * fds 1 and 2; 'pipe' leaves them to the caller (capture, forward).
 */
export function sandboxStdio(stdin: 'inherit' | 'ignore' | 'pipe', output: 'inherit' | 'pipe'): SandboxStdio {
  const made: number[] = [];
  const pipe = (): [number, number] | null => {
    let r: [number, number] | number;
    try {
      r = loadNative().pipe();
    } catch {
      return null; // no koffi: Node's socketpair stands in (as safe; /dev/stdout inside is ENXIO)
    }
    if (typeof r === 'number') return null;
    made.push(...r);
    return r;
  };
  const entries: [Entry, Entry, Entry] = [stdin === 'pipe' ? 'pipe' : 'inherit', output, output];
  let inWrite: number | 'pipe' | null = null; // Ward's end of the stdin pipe, when Ward feeds it
  if (stdin === 'ignore' || (stdin === 'inherit' && callerFdUse(0) === 'relay')) {
    const p = pipe();
    entries[0] = p ? p[0] : 'pipe';
    inWrite = p ? p[1] : 'pipe';
  }
  const outRead: [number | 'pipe' | null, number | 'pipe' | null] = [null, null]; // Ward's ends for fds 1, 2
  if (output === 'inherit') {
    const relay1 = callerFdUse(1) === 'relay';
    const relay2 = callerFdUse(2) === 'relay';
    if (relay1) {
      const p = pipe();
      entries[1] = p ? p[1] : 'pipe';
      outRead[0] = p ? p[0] : 'pipe';
      // One file behind both: one pipe for both keeps the command's writes in the order it made them.
      if (relay2 && p && sameFile(1, 2)) entries[2] = p[1];
    }
    if (relay2 && entries[2] === 'inherit') {
      const p = pipe();
      entries[2] = p ? p[1] : 'pipe';
      outRead[1] = p ? p[0] : 'pipe';
    }
  }
  const closeChildEnds = () => {
    for (const e of new Set(entries)) {
      if (typeof e === 'number') closeSync(e);
    }
  };
  return {
    entries,
    abandon() {
      for (const fd of made) closeSync(fd);
      made.length = 0;
    },
    start(child) {
      closeChildEnds();
      const readable = (end: number | 'pipe', fd: 1 | 2): Readable => (end === 'pipe' ? (fd === 1 ? child.stdout! : child.stderr!) : new Socket({ fd: end, readable: true, writable: false }));
      const outs = outRead.flatMap((end, i) => (end === null ? [] : [relayOut(readable(end, i === 0 ? 1 : 2), i === 0 ? 1 : 2)]));
      const done = Promise.all(outs.map((o) => o.done)).then(() => {});
      const cut = () => outs.flatMap((o) => (o.cut() ? [o.fd] : []));
      let stopInput = () => {};
      if (inWrite !== null) {
        const to: Writable = inWrite === 'pipe' ? child.stdin! : new Socket({ fd: inWrite, readable: false, writable: true });
        to.on('error', () => {}); // EPIPE: the command closed stdin or ended; the relay stops below
        if (stdin === 'ignore') to.end();
        else stopInput = relayIn(0, to).stop;
      }
      return { done, stopInput, cut };
    },
  };
}

/**
 * Copies the caller's fd 0 into `to` until EOF, respecting backpressure. Stops when the command
 * closes its end (EPIPE: it stopped reading) or `stop()` is called (it ended). Ward reads ahead
 * of the command by up to a pipe's worth plus one chunk. The caller's fd is never closed (a
 * stream's destroy() would close it, even with autoClose off).
 */
function relayIn(fd: number, to: Writable): { stop(): void } {
  let stopped = false;
  let wake = () => {};
  let stopReading = () => {};
  const stop = () => {
    stopped = true;
    wake();
    stopReading();
    to.destroy();
  };
  to.on('close', stop);
  let polled = false;
  let tty = false;
  try {
    const st = fstatSync(fd);
    tty = st.isCharacterDevice() && isatty(fd);
    polled = st.isFIFO() || st.isSocket() || tty;
  } catch {
    /* unreadable: the read below fails and the command reads EOF */
  }
  if (polled) {
    // A pipe, a socket or a terminal may never deliver EOF, and an fs read blocks a pool thread
    // (and keeps the process alive) until it returns: read it through epoll instead, which stops
    // at once. libuv never closes fds 0-2; the O_NONBLOCK it sets on the caller's open file is
    // put back.
    const native = loadNative();
    const flags = native.getFlags(fd);
    let from: Socket;
    try {
      from = tty ? new ReadStream(fd) : new Socket({ fd, readable: true, writable: false });
    } catch {
      to.end(); // a socket kind Node cannot read (datagram): the command reads EOF
      return { stop };
    }
    from.on('error', () => to.end());
    from.on('close', () => {
      if (flags >= 0) native.setFlags(fd, flags);
    });
    stopReading = () => {
      from.unpipe(to);
      from.destroy();
    };
    from.pipe(to);
    return { stop };
  }
  void (async () => {
    for (;;) {
      const chunk = Buffer.allocUnsafe(64 * 1024);
      let n: number;
      try {
        n = await new Promise<number>((resolve, reject) => read(fd, chunk, 0, chunk.length, null, (e, got) => (e ? reject(e) : resolve(got))));
      } catch {
        n = 0; // a read error: the command reads EOF, as at the end of a file
      }
      if (stopped) return;
      if (n === 0) break;
      if (!to.write(chunk.subarray(0, n))) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          to.once('drain', resolve);
        });
        if (stopped) return;
      }
    }
    to.end();
  })();
  return { stop };
}

/**
 * A second open file of the caller's FIFO, pipe or terminal on fd 1/2, non-blocking, so that a
 * reader who stops reading never leaves a write of Ward's stuck in the kernel: opened anew through
 * /proc/self/fd, it has flags of its own, and the caller's open file (shared with the caller's
 * shell) stays as it was. O_NOCTTY: a terminal opened here never becomes Ward's controlling one.
 * null when it cannot be opened (no reader left, a FIFO the caller may write through its fd but
 * not open): the blocking path stands in.
 */
function reopenNonBlocking(fd: number): number | null {
  try {
    return openSync(`/proc/self/fd/${fd}`, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY);
  } catch {
    return null;
  }
}

/**
 * How Ward writes to the caller's fd. A FIFO or pipe: a non-blocking second open, through a
 * stream (epoll says when it takes more). A socket: send(MSG_DONTWAIT), which never blocks
 * whatever the socket's flags (a socket cannot be reopened). A terminal: a non-blocking second
 * open. Those two are retried after a short sleep while full. Anything else (a regular file, a
 * device other than a terminal, whose open may have effects of its own): blocking writes on
 * libuv's threads. A cut stops waiting for those, but a write already in the kernel stays there
 * until it returns.
 */
type CallerWriter =
  | { kind: 'stream'; to: Socket }
  | { kind: 'polled'; write(buf: Buffer, off: number): number | 'full'; close(): void }
  | { kind: 'blocking' };

function callerWriter(fd: 1 | 2): CallerWriter {
  let st;
  try {
    st = fstatSync(fd);
  } catch {
    return { kind: 'blocking' };
  }
  if (st.isFIFO()) {
    const own = reopenNonBlocking(fd);
    if (own !== null) return { kind: 'stream', to: new Socket({ fd: own, readable: false, writable: true }) };
  } else if (st.isSocket()) {
    let native;
    try {
      native = loadNative();
    } catch {
      return { kind: 'blocking' };
    }
    return {
      kind: 'polled',
      write(buf, off) {
        const n = native.sendNoWait(fd, buf, off);
        if (n >= 0) return n;
        if (n === -osConstants.errno.EAGAIN || n === -osConstants.errno.EINTR) return 'full';
        throw new Error(`send: errno ${-n}`);
      },
      close() {},
    };
  } else if (st.isCharacterDevice() && isatty(fd)) {
    const own = reopenNonBlocking(fd);
    if (own !== null) {
      return {
        kind: 'polled',
        write(buf, off) {
          try {
            return writeSync(own, buf, off, buf.length - off);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return 'full';
            throw e;
          }
        },
        close: () => closeSync(own),
      };
    }
  }
  return { kind: 'blocking' };
}

/** Waits for `to` to take its queued bytes: 'drain', or why not ('close': it failed; 'cut'). */
function drained(to: Socket, cutP: Promise<'cut'>): Promise<'drain' | 'close' | 'cut'> {
  let off = () => {};
  const ev = new Promise<'drain' | 'close'>((resolve) => {
    const onDrain = () => resolve('drain');
    const onClose = () => resolve('close');
    to.once('drain', onDrain);
    to.once('close', onClose);
    off = () => (to.off('drain', onDrain), to.off('close', onClose));
  });
  return Promise.race([ev, cutP]).finally(off);
}

/**
 * Copies `from` (Ward's end of the sandbox's pipe) to the caller's fd, in order, with backpressure
 * (the command waits while the caller's file is slow), and `done` resolves once every byte is
 * written. Written through the caller's own open file (or, for a FIFO, a non-blocking second open
 * of it), never closed: its offset and O_APPEND are kept. If the caller's fd refuses a write (a
 * FIFO whose reader left, a full disk), Ward's end is closed: the command gets EPIPE, as it would
 * have writing there itself.
 *
 * `cut()` gives up (the run's wall_time is over and the caller is not reading): `done` resolves at
 * once, and it says whether anything was still undelivered. Why: a reader who stopped (`| less`
 * left on its first page, a FIFO nobody opens for reading) would otherwise keep Ward waiting
 * past the wall_time, with no exit record, for as long as it pleases. A blocking write on the
 * other kinds (a socket, a terminal, a file on a stalled filesystem) may stay in the kernel after
 * a cut; nothing more is written after it.
 */
function relayOut(from: Readable, fd: 1 | 2): { fd: 1 | 2; done: Promise<void>; cut(): boolean } {
  let finished = false;
  let cutNow = () => {};
  const cutP = new Promise<'cut'>((resolve) => (cutNow = () => resolve('cut')));
  const out = callerWriter(fd);
  const to = out.kind === 'stream' ? out.to : null;
  let failed = false;
  to?.on('error', () => {
    failed = true;
    from.destroy();
  });
  const copy = async (): Promise<void> => {
    try {
      for await (const chunk of from as AsyncIterable<Buffer>) {
        if (to) {
          if (failed) break;
          if (!to.write(chunk) && (await drained(to, cutP)) !== 'drain') return;
          continue;
        }
        let pause = 1;
        for (let off = 0; off < chunk.length; ) {
          if (out.kind === 'polled') {
            const n = out.write(chunk, off);
            if (n !== 'full') {
              off += n;
              pause = 1;
              continue;
            }
            // Full: the reader is slow or gone quiet. Look again soon, a little later each time.
            if ((await Promise.race([new Promise<'slept'>((r) => setTimeout(() => r('slept'), pause)), cutP])) === 'cut') return;
            pause = Math.min(pause * 2, 50);
            continue;
          }
          const n = await Promise.race([new Promise<number>((resolve, reject) => write(fd, chunk, off, chunk.length - off, null, (e, w) => (e ? reject(e) : resolve(w)))), cutP]);
          if (n === 'cut') return;
          off += n;
        }
      }
      // Every byte handed to the stream is in the caller's pipe before the relay is done.
      if (to && !failed && to.writableLength > 0) await drained(to, cutP);
    } catch {
      from.destroy();
    }
  };
  const done = Promise.race([copy(), cutP]).then(() => {
    finished = true;
    to?.destroy(); // our own fd (>2), never the caller's
    if (out.kind === 'polled') out.close();
  });
  return {
    fd,
    done,
    cut() {
      if (finished) return false;
      cutNow();
      from.destroy();
      return true;
    },
  };
}
