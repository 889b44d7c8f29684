/**
 * The Node side of Ward's native launcher (src/launcher/ward-launch.c).
 *
 * Every command runs as
 *
 *   ward-launch outer ... -- bwrap ... -- ward-launch inner ... -- CMD ARGS
 *
 * This module finds (or compiles, once, into a cache) the launcher binary,
 * builds its argument lists so callers never hand-write flags, and parses the
 * JSON status lines it writes. A Node launcher would cost ~70 ms per command;
 * the C one costs about a millisecond, and is small enough to audit.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  accessSync,
  chmodSync,
  constants as fsConstants,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { constants as osConstants } from 'node:os';
import { cacheDir, lstatOrNull } from '../paths.js';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { hostBinaryProblem, SYSTEM_BIN_DIRS, SYSTEM_PATH, systemBinary } from '../hostbin.js';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/** Compiler flags; part of the binary's hash, so changing them rebuilds it. */
export const LAUNCHER_CFLAGS: readonly string[] = ['-std=c11', '-O2', '-Wall', '-Wextra', '-Werror'];

/** Compilers tried, in this order, in the system directories. */
const COMPILERS = ['cc', 'gcc', 'clang'] as const;

/** Version of the status JSON (WARD_STATUS_PROTOCOL in ward-launch.c). */
export const LAUNCHER_STATUS_PROTOCOL = 1;

/** Exit statuses of the launcher itself (the command's own exit status passes through). */
export const LAUNCHER_EXIT = {
  /** A launcher step or its command line failed (see the status line / stderr). */
  failure: 125,
  /** inner: the command exists but could not be executed. */
  cannotExecute: 126,
  /** inner: the command was not found. */
  notFound: 127,
} as const;

const SOURCE_RELATIVE = join('src', 'launcher', 'ward-launch.c');

// ---------------------------------------------------------------------------
// Locating and building the binary
// ---------------------------------------------------------------------------

/**
 * The package root: the nearest ancestor of this module holding package.json
 * and the launcher source. Works from src/launcher (tsx) and dist/launcher
 * (after `tsc -p tsconfig.build.json`).
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, SOURCE_RELATIVE))) return dir;
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(
        `cannot find Ward's package root (a directory with package.json and ${SOURCE_RELATIVE}) above ${fileURLToPath(import.meta.url)}`,
      );
    }
    dir = parent;
  }
}

/** Absolute path of ward-launch.c. */
export function launcherSource(): string {
  return join(packageRoot(), SOURCE_RELATIVE);
}

/** First 16 hex digits of sha256(source, NUL, flags): the binary's identity. */
export function launcherHash(source: Buffer = readFileSync(launcherSource())): string {
  return createHash('sha256')
    .update(source)
    .update('\0')
    .update(LAUNCHER_CFLAGS.join(' '))
    .digest('hex')
    .slice(0, 16);
}

/** `ward-launch-<hash>`: a changed source or flag set gets a new name, so it is rebuilt. */
export function launcherFileName(hash: string = launcherHash()): string {
  return `ward-launch-${hash}`;
}

/** `$XDG_CACHE_HOME/ward`, or `~/.cache/ward`: the place the mandatory denies hide (paths.ts; a relative value is refused). */
export function launcherCacheDir(): string {
  return cacheDir(process.env);
}

/**
 * The first of cc, gcc, clang in the system directories, or null; never PATH (src/hostbin.ts):
 * the compiler runs on the host and its output becomes the launcher. Throws when the one found
 * could have been changed by someone other than root or the caller.
 */
export function findCompiler(dirs: readonly string[] = SYSTEM_BIN_DIRS): string | null {
  for (const name of COMPILERS) {
    const candidate = systemBinary(name, dirs);
    if (candidate === null) continue;
    const problem = hostBinaryProblem(candidate);
    if (problem !== null) throw new Error(`refusing to run the C compiler ${candidate} to build Ward's launcher: ${problem}`);
    return candidate;
  }
  return null;
}

const NO_COMPILER =
  "no C compiler found to build Ward's launcher: install one with `apt-get install -y gcc libc6-dev`, " +
  'or run `npm run build` where one exists';

/**
 * Compile the launcher into `outDir/ward-launch-<hash>` unless it is there
 * already; returns its path. The compiler writes a temporary name in the same
 * directory which is then renamed: atomic, so parallel processes building the
 * same hash never see (or exec) a half-written binary.
 */
export function compileLauncher(outDir: string, dirMode = 0o755, compilerDirs: readonly string[] = SYSTEM_BIN_DIRS): string {
  const sourcePath = launcherSource();
  const source = readFileSync(sourcePath);
  const target = join(outDir, launcherFileName(launcherHash(source)));
  if (isExecutableFile(target)) return target;
  const compiler = findCompiler(compilerDirs);
  if (!compiler) throw new Error(NO_COMPILER);
  mkdirSync(outDir, { recursive: true, mode: dirMode });
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    // The compiler finds its assembler and linker through PATH and GCC_EXEC_PREFIX/COMPILER_PATH:
    // none of the caller's, only the system's.
    execFileSync(compiler, [...LAUNCHER_CFLAGS, '-o', tmp, sourcePath], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: SYSTEM_PATH, ...(process.env['TMPDIR'] ? { TMPDIR: process.env['TMPDIR'] } : {}) },
    });
    chmodSync(tmp, 0o755);
    renameSync(tmp, target);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // never created
    }
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(
      `compiling Ward's launcher (${compiler} ${LAUNCHER_CFLAGS.join(' ')} ${sourcePath}) failed` +
        (stderr ? `:\n${stderr}` : `: ${(err as Error).message}`),
    );
  }
  return target;
}

/** Build into `<package root>/build/` (used by `npm run build`, via bin/build-launcher.js). */
export function buildLauncher(): string {
  return compileLauncher(join(packageRoot(), 'build'));
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * The launcher is a trust root: it runs on the host, outside every sandbox. A cache directory
 * (or binary) that is a symlink, someone else's, or writable by others could be swapped for
 * anything; refuse rather than run it. (A file planted by a sandbox would be ours and 0755:
 * that is kept out by never letting a sandbox write Ward's directories, see plan/mounts.ts.)
 */
function checkPrivate(path: string, what: string, kind: 'directory' | 'file'): void {
  const st = lstatSync(path);
  const uid = process.getuid?.() ?? st.uid;
  const problem = st.isSymbolicLink()
    ? 'it is a symlink'
    : (kind === 'directory' ? !st.isDirectory() : !st.isFile())
      ? `it is not a ${kind}`
      : st.uid !== uid
        ? `it is owned by uid ${st.uid}, not you (${uid})`
        : (st.mode & 0o022) !== 0
          ? `it is writable by group or others (mode ${(st.mode & 0o777).toString(8)})`
          : null;
  if (problem !== null) {
    throw new Error(
      `refusing to use ${what} ${path}: ${problem}; it must be a ${kind} owned by you and not writable by group or others. ` +
        `Remove it and Ward will rebuild it`,
    );
  }
}

let cachedLauncher: string | null = null;

/**
 * Path of a compiled launcher for the current source. Prefers
 * `<package root>/build/ward-launch-<hash>` (from `npm run build`); otherwise
 * compiles once into the user cache (mode 0700). Cached after the first call,
 * so the hot path costs nothing.
 */
export function ensureLauncher(): string {
  if (cachedLauncher) return cachedLauncher;
  const name = launcherFileName();
  const built = join(packageRoot(), 'build', name);
  if (isExecutableFile(built)) {
    cachedLauncher = built;
    return built;
  }
  cachedLauncher = launcherInCache(launcherCacheDir());
  return cachedLauncher;
}

/** The launcher compiled into (or found in) the cache directory `dir`, after checking both. */
export function launcherInCache(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  checkPrivate(dir, "Ward's cache directory", 'directory');
  const target = join(dir, launcherFileName());
  // Checked before compileLauncher looks at it: a planted symlink there would otherwise be "already built".
  if (lstatOrNull(target)) checkPrivate(target, "Ward's launcher", 'file');
  const path = compileLauncher(dir, 0o700);
  checkPrivate(path, "Ward's launcher", 'file');
  return path;
}

/** The kernel's Landlock ABI version as the launcher sees it (0: unavailable). For `ward doctor`. */
export function landlockAbi(): number {
  const out = execFileSync(ensureLauncher(), ['landlock-abi'], { encoding: 'utf8' });
  const abi = Number.parseInt(out.trim(), 10);
  if (!Number.isInteger(abi) || abi < 0) throw new Error(`ward-launch landlock-abi printed '${out.trim()}'`);
  return abi;
}

// ---------------------------------------------------------------------------
// Argument lists
// ---------------------------------------------------------------------------

/** Resource names `--rlimit` accepts. */
export const RLIMIT_NAMES = ['cpu', 'fsize', 'nofile', 'nproc', 'as', 'data', 'core', 'stack', 'memlock', 'sigpending', 'msgqueue'] as const;
export type RlimitName = (typeof RLIMIT_NAMES)[number];
export type RlimitValue = number | 'unlimited';
export type LandlockMode = 'required' | 'optional' | 'off';

export interface LandlockRule {
  path: string;
  /** Letters: r read files + list dirs, w write/create/remove/rename, x execute, d device ioctls, n (with w) no unix socket bound to a path. */
  rights: string;
}

export interface InnerOptions {
  /** name -> [soft, hard]. */
  rlimits?: Record<string, [RlimitValue, RlimitValue]>;
  landlock: { mode: LandlockMode; rules: LandlockRule[]; scope?: boolean };
  chdir?: string;
  statusFd: number;
  /**
   * Supervised mode: the fd of a SOCK_SEQPACKET socket to Ward's supervisor. inner receives the
   * notify filter on it, installs it, sends the listener back (SCM_RIGHTS) and waits for the
   * supervisor's go-ahead before it execs (src/supervisor/).
   */
  superviseFd?: number;
  /**
   * Pooled sandboxes (src/pool/): inner does every step up to "ready", then reads the command's
   * argv from this fd (one length-prefixed message, see ward-launch.c read_argv) and execs it.
   * The command is then not given on the command line: nothing follows the final '--'.
   */
  argvFd?: number;
  /**
   * What inner must find in force before it execs (else it fails at step "confinement"): at least
   * `seccompFilters` seccomp filters (mode 2), no_new_privs and no capability in any set when
   * `unprivileged`, and a namespace other than the host's for each name (host inode given).
   */
  require?: Confinement;
}

export interface Confinement {
  seccompFilters: number;
  unprivileged: boolean;
  /** /proc/self/ns name (user, pid, ipc, uts, net, cgroup, mnt) -> the host's namespace inode. */
  namespaces: Record<string, number>;
}

export interface OuterOptions {
  /** cgroup.procs (v2) or tasks/cgroup.procs files (v1, one per hierarchy) to join. */
  cgroupProcs: string[];
  statusFd: number;
  /**
   * The watchdog (see ward-launch.c): `lifelineFd` is a socket only Ward holds the
   * other end of; `infoFd` is the free fd number where bwrap gets its --info-fd.
   */
  watchdog?: { lifelineFd: number; infoFd: number };
  /** Fds bwrap needs besides the status and info fds (its --args and --seccomp); every other fd >= 3 is closed. */
  keepFds?: number[];
  /**
   * The network relay (needs `watchdog`): it joins the sandbox's network namespace, listens on
   * `ports` (and 53) there, carries each connection to the broker's unix `socket`, and releases
   * bwrap through `blockFd` (bwrap --block-fd) once it listens. `keyFd` is an open fd the
   * launcher reads the broker's key from (32 bytes) before it forks anything, then closes: the
   * relay sends it first on every connection, so the broker obeys no other peer.
   */
  relay?: { socket: string; ports: number[]; blockFd: number; keyFd: number };
  /**
   * Limits of the sandbox's user namespace (/proc/sys/user/NAME, see ward-launch.c "user
   * namespace limits"), set by the watchdog before it releases bwrap through `blockFd` (the
   * relay's, when there is one). Needs `watchdog`.
   */
  userns?: { limits: Record<string, number>; blockFd: number };
}

/** The /proc/sys/user limits `--userns-limit` accepts. */
export const USERNS_LIMIT_NAMES = ['max_inotify_instances', 'max_inotify_watches', 'max_fanotify_groups', 'max_fanotify_marks'] as const;

function argError(message: string): never {
  throw new Error(`ward-launch arguments: ${message}`);
}

function checkStatusFd(fd: number): void {
  if (!Number.isInteger(fd) || fd < 3) argError(`statusFd must be an integer >= 3, got ${fd}`);
}

function checkPath(path: string, what: string): void {
  if (!isAbsolute(path) || path.includes('\0')) argError(`${what} must be an absolute path without NUL, got '${path}'`);
}

function limitArg(v: RlimitValue, name: string): string {
  if (v === 'unlimited') return v;
  if (!Number.isSafeInteger(v) || v < 0) argError(`rlimit ${name}: ${v} is not a non-negative integer`);
  return String(v);
}

/**
 * `['inner', ...options, '--']`: append the command and its arguments.
 * With Landlock mode 'off' the rules and scope are left out (the launcher
 * rejects them as contradictory).
 */
export function innerArgs(opts: InnerOptions): string[] {
  checkStatusFd(opts.statusFd);
  const args = ['inner', '--status-fd', String(opts.statusFd)];
  for (const [name, value] of Object.entries(opts.rlimits ?? {})) {
    if (!(RLIMIT_NAMES as readonly string[]).includes(name)) {
      argError(`unknown rlimit '${name}' (known: ${RLIMIT_NAMES.join(' ')})`);
    }
    const [soft, hard] = value;
    args.push('--rlimit', `${name}=${limitArg(soft, name)}:${limitArg(hard, name)}`);
  }
  const { mode, rules, scope } = opts.landlock;
  if (mode !== 'required' && mode !== 'optional' && mode !== 'off') argError(`unknown landlock mode '${String(mode)}'`);
  args.push('--landlock', mode);
  if (mode !== 'off') {
    for (const rule of rules) {
      if (!/^[rwxdn]+$/.test(rule.rights)) argError(`landlock rights '${rule.rights}' for ${rule.path}: use letters r, w, x, d, n`);
      checkPath(rule.path, 'a landlock rule path');
      args.push('--ll', `${rule.rights}:${rule.path}`);
    }
    if (scope) args.push('--ll-scope');
  }
  if (opts.chdir !== undefined) {
    if (!opts.chdir || opts.chdir.includes('\0')) argError(`chdir must be a non-empty path, got '${opts.chdir}'`);
    args.push('--chdir', opts.chdir);
  }
  if (opts.superviseFd !== undefined) {
    checkStatusFd(opts.superviseFd);
    if (opts.superviseFd === opts.statusFd) argError('the supervise and status fds must differ');
    args.push('--supervise-fd', String(opts.superviseFd));
  }
  if (opts.argvFd !== undefined) {
    checkStatusFd(opts.argvFd);
    if (opts.argvFd === opts.statusFd || opts.argvFd === opts.superviseFd) argError('the argv fd must differ from the status and supervise fds');
    args.push('--argv-fd', String(opts.argvFd));
  }
  if (opts.require) {
    const { seccompFilters, unprivileged, namespaces } = opts.require;
    if (!Number.isInteger(seccompFilters) || seccompFilters < 0 || seccompFilters > 1000) argError(`seccompFilters must be an integer in 0..1000, got ${seccompFilters}`);
    if (seccompFilters > 0) args.push('--require-seccomp', String(seccompFilters));
    if (unprivileged) args.push('--require-unprivileged');
    for (const [name, ino] of Object.entries(namespaces)) {
      if (!/^[a-z_]{1,15}$/.test(name) || !Number.isSafeInteger(ino) || ino < 0) argError(`namespace requirement ${name}:${ino} is not NAME:INODE`);
      args.push('--require-ns', `${name}:${ino}`);
    }
  }
  args.push('--');
  return args;
}

/** `['outer', ...options, '--']`: append bwrap and its arguments. */
export function outerArgs(opts: OuterOptions): string[] {
  checkStatusFd(opts.statusFd);
  const args = ['outer', '--status-fd', String(opts.statusFd)];
  if (opts.watchdog) {
    const { lifelineFd, infoFd } = opts.watchdog;
    for (const fd of [lifelineFd, infoFd]) checkStatusFd(fd);
    if (new Set([opts.statusFd, lifelineFd, infoFd]).size !== 3) argError('status, lifeline and info fds must differ');
    args.push('--lifeline-fd', String(lifelineFd), '--info-fd', String(infoFd));
  }
  if (opts.relay) {
    if (!opts.watchdog) argError('the relay needs the watchdog');
    const { socket, ports, blockFd, keyFd } = opts.relay;
    checkPath(socket, 'the relay socket');
    // The relay connects from the socket's directory: only the name must fit a unix socket's 107 bytes.
    if (Buffer.byteLength(basename(socket)) >= 108) argError(`the relay socket's name is too long for a unix socket (${socket})`);
    checkStatusFd(blockFd);
    checkStatusFd(keyFd);
    if (keyFd === blockFd) argError('the relay key fd must differ from the block fd');
    if (opts.userns && opts.userns.blockFd !== blockFd) argError('the relay and the user namespace limits share one block fd');
    args.push('--relay', socket, '--block-fd', String(blockFd), '--relay-key-fd', String(keyFd));
    for (const p of ports) {
      if (!Number.isInteger(p) || p < 1 || p > 65535) argError(`relay port ${p} is not a port number`);
      args.push('--relay-port', String(p));
    }
  }
  if (opts.userns) {
    if (!opts.watchdog) argError('user namespace limits need the watchdog');
    checkStatusFd(opts.userns.blockFd);
    if (!opts.relay) args.push('--block-fd', String(opts.userns.blockFd));
    for (const [name, value] of Object.entries(opts.userns.limits)) {
      if (!(USERNS_LIMIT_NAMES as readonly string[]).includes(name)) argError(`unknown user namespace limit '${name}' (known: ${USERNS_LIMIT_NAMES.join(' ')})`);
      if (!Number.isSafeInteger(value) || value < 0 || value > 0x7fffffff) argError(`user namespace limit ${name}: ${value} is not an integer in 0..2^31-1`);
      args.push('--userns-limit', `${name}=${value}`);
    }
  }
  for (const fd of opts.keepFds ?? []) {
    checkStatusFd(fd);
    args.push('--keep-fd', String(fd));
  }
  for (const file of opts.cgroupProcs) {
    checkPath(file, 'a cgroup procs file');
    args.push('--cgroup-procs', file);
  }
  args.push('--');
  return args;
}

// ---------------------------------------------------------------------------
// Status lines
// ---------------------------------------------------------------------------

const limitValue = z.union([z.number().int().nonnegative(), z.literal('unlimited')]);

const LandlockReportSchema = z.object({
  mode: z.enum(['required', 'optional', 'off']),
  /** The kernel's Landlock ABI version; 0 when unavailable. */
  abi: z.number().int().nonnegative(),
  status: z.enum(['applied', 'unavailable', 'off']),
  /** Rules added to the ruleset. */
  rules: z.number().int().nonnegative(),
  /** Whether the ABI 6 scopes (abstract unix sockets, signals) are in force. */
  scoped: z.boolean(),
  /** Rule paths that did not exist and were skipped. */
  skipped: z.array(z.string()),
  /** Why Landlock is unavailable (status 'unavailable' only). */
  errno: z.number().int().optional(),
});

const InnerReportSchema = z.object({
  stage: z.literal('inner'),
  protocol: z.literal(LAUNCHER_STATUS_PROTOCOL),
  landlock: LandlockReportSchema,
  /** Fields of /proc/self/status read after the restrictions (null: /proc unavailable). */
  proc_status: z.record(z.string(), z.string()).nullable(),
  /** Every known rlimit as [soft, hard], read back after setting. */
  rlimits: z.record(z.string(), z.tuple([limitValue, limitValue])),
});

const FailureSchema = z.object({
  stage: z.enum(['outer', 'inner', 'relay']),
  step: z.string(),
  error: z.string(),
  errno: z.number().int(),
  detail: z.string(),
  hint: z.string().optional(),
});

export type LandlockReport = z.infer<typeof LandlockReportSchema>;
/** What inner reported in force just before exec. */
export type InnerReport = z.infer<typeof InnerReportSchema>;
/** A failed launcher step; `code` is the errno name (e.g. 'ENOENT') when known. */
export type LauncherFailure = z.infer<typeof FailureSchema> & { code?: string };

export interface LauncherStatus {
  /** inner's report, if inner got as far as exec. */
  ready: InnerReport | null;
  /** The failure, if a stage reported one (outer, or inner including step 'exec'). */
  failure: LauncherFailure | null;
  /**
   * ready and no failure. Meaningful only on the text read until EOF: EOF
   * after the ready line means the exec succeeded (the fd is close-on-exec).
   * Empty text (neither) means the launcher never reported: e.g. bwrap
   * failed before running inner.
   */
  ok: boolean;
}

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(osConstants.errno).map(([name, value]) => [value, name] as [number, string]),
);

/** Parse everything read from the status fd (until EOF). Throws on anything malformed. */
export function parseLauncherStatus(text: string): LauncherStatus {
  let ready: InnerReport | null = null;
  let failure: LauncherFailure | null = null;
  for (const [index, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      throw new Error(`launcher status line ${index + 1} is not JSON: ${line.slice(0, 200)}`);
    }
    if (failure) throw new Error(`launcher status line ${index + 1} follows a failure: ${line.slice(0, 200)}`);
    const isFailure = typeof json === 'object' && json !== null && 'step' in json;
    const parsed = (isFailure ? FailureSchema : InnerReportSchema).safeParse(json);
    if (!parsed.success) {
      throw new Error(`launcher status line ${index + 1} is malformed (${parsed.error.message}): ${line.slice(0, 200)}`);
    }
    if (isFailure) {
      const f = parsed.data as z.infer<typeof FailureSchema>;
      const code = ERRNO_NAMES.get(f.errno);
      failure = code ? { ...f, code } : f;
    } else {
      if (ready) throw new Error(`launcher status line ${index + 1}: a second ready report`);
      ready = parsed.data as InnerReport;
    }
  }
  return { ready, failure, ok: ready !== null && failure === null };
}
