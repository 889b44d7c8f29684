/**
 * Small helpers the probe groups share: a Python prelude for raw syscalls
 * (x86_64 numbers), parsing the `key=value` lines probes print, the usual
 * checks ("every call refused with EPERM"), and host-side fixtures that a probe
 * attacks (a loopback server, a victim process).
 *
 * The convention: a probe prints one `name=N` line per attempt, N being the
 * errno the attempt failed with, or 0 if it succeeded. A check never trusts the
 * exit code alone: it reads *how* each attempt was refused.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { hostTool } from '../hostbin.js';
import { createServer, type Server } from 'node:net';
import os, { constants as osConstants } from 'node:os';
import type { ProbeContext, ProbeProgram, ProbeRun, Verdict } from './types.js';

export const E = osConstants.errno;

const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([n, v]) => [v, n] as [number, string]));

export function errnoName(n: number): string {
  return n === 0 ? 'success' : (ERRNO_NAMES.get(n) ?? `errno ${n}`);
}

/**
 * Imported by every Python probe. `sc(nr, ...)` calls a raw syscall and returns
 * the errno (0 on success); `sc2` also returns the result; `attempt(key, fn)`
 * runs fn and prints `key=errno`; `say(key, value)` prints one line, flushed
 * (a probe may be killed right after).
 */
export const PY_PRELUDE = `import ctypes, errno, os, socket, struct, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def _arg(a):
    return ctypes.c_long(a) if isinstance(a, int) else a
def sc2(nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[_arg(a) for a in args])
    return r, (ctypes.get_errno() if r == -1 else 0)
def sc(nr, *args):
    return sc2(nr, *args)[1]
def say(key, value):
    sys.stdout.write("%s=%s\\n" % (key, value))
    sys.stdout.flush()
def attempt(key, fn):
    try:
        fn()
        say(key, 0)
    except OSError as e:
        say(key, e.errno if e.errno is not None else -1)
`;

export const py = (body: string): ProbeProgram => ({ python: `${PY_PRELUDE}${body}\n` });

/**
 * Python: `drain(fd)`, every byte a pty master gives until no process holds its other side any
 * more (read fails with EIO then) or EOF.
 */
export const PY_DRAIN = `def drain(fd):
    got = b''
    while True:
        try:
            c = os.read(fd, 4096)
        except OSError:
            break
        if not c: break
        got += c
    return got
`;

/** `key=value` lines of a probe's stdout (the last value of a repeated key wins). */
export function kv(stdout: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0 && /^[A-Za-z0-9_.:/-]+$/.test(line.slice(0, i))) m.set(line.slice(0, i), line.slice(i + 1).trim());
  }
  return m;
}

export const held = (detail: string): Verdict => ({ status: 'held', detail });
export const broken = (detail: string): Verdict => ({ status: 'broken', detail });
export const error = (detail: string): Verdict => ({ status: 'error', detail });
export const skipped = (detail: string): Verdict => ({ status: 'skipped', detail });

/** The last line of stderr worth quoting in a detail. */
export function tail(text: string, max = 160): string {
  const line = text.trim().split('\n').filter(Boolean).at(-1) ?? '';
  return line.length > max ? `${line.slice(0, max)}...` : line;
}

/** Why a probe produced no result: the interpreter missing, a crash, a kill. */
export function noResult(run: ProbeRun, what: string): Verdict {
  if (run.exitCode === 127 || /not found|No such file or directory.*(python3|node)/.test(run.stderr)) {
    return error(`could not run the probe program (${tail(run.stderr) || `exit ${run.exitCode}`})`);
  }
  const how = run.reason === 'exit' ? `exit ${run.exitCode}` : `${run.reason} (exit ${run.exitCode})`;
  return error(`no result for ${what}: ${how}${run.stderr.trim() ? `; stderr: ${tail(run.stderr)}` : ''}`);
}

export interface ErrnoExpectation {
  /** The `key=errno` lines that must all be present. */
  keys: string[];
  /** Errnos that count as the expected refusal (e.g. [E.EPERM]). */
  refused: number[];
  /** The mechanism, as the detail names it ("seccomp", "no capabilities"). */
  by: string;
}

/**
 * Every attempt refused with one of the expected errnos: held. One succeeded:
 * broken. One refused some other way: error (the probe cannot tell whether the
 * expected mechanism works, which the suite must not paper over).
 */
export function expectErrno(x: ErrnoExpectation): (run: ProbeRun) => Verdict {
  return (run) => verdictFromErrnos(kv(run.stdout), run, x);
}

export function verdictFromErrnos(values: Map<string, string>, run: ProbeRun, x: ErrnoExpectation): Verdict {
  const seen: string[] = [];
  for (const key of x.keys) {
    const raw = values.get(key);
    if (raw === undefined) return noResult(run, key);
    const n = Number(raw);
    if (!Number.isInteger(n)) return error(`${key}: unreadable result "${raw}"`);
    if (n === 0) return broken(`${key} succeeded: ${x.by} did not say no`);
    if (!x.refused.includes(n)) {
      return error(`${key} failed with ${errnoName(n)}, not ${x.refused.map(errnoName).join('/')} as ${x.by} would answer: the probe cannot tell whether ${x.by} holds`);
    }
    seen.push(`${key}: ${errnoName(n)}`);
  }
  return held(`refused by ${x.by} (${seen.join(', ')})`);
}

/** The process was killed by SIGSYS (seccomp's kill action): exit 159. */
export function killedBySigsys(run: ProbeRun, what: string): Verdict {
  if (run.exitCode === 128 + 31) return held(`${what}: the process was killed by SIGSYS (seccomp kill)`);
  const v = kv(run.stdout);
  if (v.get('survived') !== undefined) return broken(`${what} ran and returned ${v.get('survived')}: not killed`);
  return noResult(run, what);
}

// ---------------------------------------------------------------------------
// Host-side fixtures a probe attacks
// ---------------------------------------------------------------------------

export interface HostServer {
  server: Server;
  /** Connections accepted so far: any is a breach. */
  hits: number;
  /** Bytes received from all of them. */
  bytes: number;
  close(): Promise<void>;
}

/**
 * A server on the host (TCP port, or a unix/abstract socket path) that counts
 * connections and the bytes they send. `greeting`: 'end' answers HOST-SERVICE
 * and closes (the default); 'keep-open' answers and stays open; 'silent' waits
 * for the client to speak first, as a TLS server does.
 */
export async function startHostServer(listen: { port: 0; host: string } | { path: string }, greeting: 'end' | 'keep-open' | 'silent' = 'end'): Promise<HostServer> {
  const s: HostServer = {
    server: createServer((sock) => {
      s.hits++;
      sock.on('data', (d: Buffer) => (s.bytes += d.length));
      sock.on('error', () => {});
      if (greeting === 'end') sock.end('HOST-SERVICE\n');
      else if (greeting === 'keep-open') sock.write('HOST-SERVICE\n');
    }),
    hits: 0,
    bytes: 0,
    close: () => new Promise<void>((r) => s.server.close(() => r())),
  };
  await new Promise<void>((resolve, reject) => {
    s.server.once('error', reject);
    s.server.listen(listen, () => resolve());
  });
  return s;
}

/** The host's own non-loopback IPv4 addresses (a service bound to 0.0.0.0 listens there). */
export function hostAddresses(): string[] {
  return Object.values(os.networkInterfaces())
    .flat()
    .filter((a): a is os.NetworkInterfaceInfo => a !== undefined && a.family === 'IPv4' && !a.internal)
    .map((a) => a.address)
    .slice(0, 2);
}

export function serverPort(s: HostServer): number {
  const a = s.server.address();
  return typeof a === 'object' && a !== null ? a.port : -1;
}

/** A harmless host process (sleep) the sandbox must not be able to signal or open. */
export function startVictim(): ChildProcess {
  const c = spawn(hostTool('sleep'), ['120'], { stdio: 'ignore', detached: false });
  c.on('error', () => {});
  return c;
}

/** ctx.state accessors with a type, for values setup put there. */
export function st<T>(ctx: ProbeContext, key: string): T {
  return ctx.state[key] as T;
}
