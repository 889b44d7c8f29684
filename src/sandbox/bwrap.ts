/**
 * Plan -> bubblewrap arguments. bwrap builds the namespaces and the mount tree,
 * drops every capability, sets no_new_privs and loads Ward's seccomp program,
 * then runs Ward's launcher (which adds Landlock and rlimits) inside.
 *
 * The options are handed to bwrap through `--args FD`, not argv: bwrap's pid 1
 * inside the sandbox keeps its argv, and /proc/1/cmdline is readable there, so
 * the host paths of the mount plan stay out of sight.
 */
import { statSync } from 'node:fs';
import { WARD_DIR_INSIDE, type MountOp } from '../plan/mounts.js';
import { isWithin } from '../policy/expand.js';

/** Where the launcher binary appears inside the sandbox (read-only, outside every grant: see planMounts). */
export const LAUNCHER_INSIDE = `${WARD_DIR_INSIDE}/launch`;

/**
 * The files Ward mounts over (its launcher, a run's /etc/resolv.conf and CA bundle) that lie
 * inside a bound host tree and do not exist there. bwrap creates a missing mount point before
 * it binds onto it, so inside a host bind that would be a new file on the host's own disk
 * (through a writable bind), or a failed launch (through a read-only one).
 */
export function hostMountPointsMissing(ops: MountOp[], dests: string[]): { dest: string; bind: string }[] {
  const binds = ops.filter((o): o is Extract<MountOp, { kind: 'bind' }> => o.kind === 'bind');
  const out: { dest: string; bind: string }[] = [];
  for (const dest of dests) {
    const bind = binds.filter((b) => isWithin(dest, b.dest)).sort((a, b) => b.dest.length - a.dest.length)[0];
    if (!bind) continue;
    try {
      // stat, not lstat: bwrap follows a symlink at the mount point, and creates its target if missing.
      if (statSync(dest).isFile()) continue;
    } catch {
      /* missing */
    }
    out.push({ dest, bind: bind.dest });
  }
  return out;
}

export const NAMESPACE_FLAGS = ['--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-net', '--unshare-cgroup'] as const;

export interface BwrapInput {
  ops: MountOp[];
  cwd: string;
  launcherPath: string;
  maskFile: string;
  seccompFd: number;
  /** Where bwrap reports the sandbox init's pid, for the launcher's watchdog. */
  infoFd?: number;
  /** bwrap waits on this fd before it starts the command (the network relay releases it). */
  blockFd?: number;
  /** Files Ward generated for this run, bound read-only (e.g. the sandbox's /etc/resolv.conf). */
  files?: { src: string; dest: string }[];
}

export function bwrapArgs(input: BwrapInput): string[] {
  const a: string[] = [
    ...NAMESPACE_FLAGS,
    // Not `--disable-userns`: it costs a second user namespace (~5 ms, a quarter of a
    // launch), and the seccomp filter already refuses every way to make one (unshare,
    // clone with CLONE_NEWUSER, clone3 -> ENOSYS, setns; x32/i386 killed), which the
    // filter tests check for every syscall number.
    '--die-with-parent',
    // A new session: the command has no controlling terminal, so TIOCSTI cannot push
    // keystrokes into the caller's shell (seccomp refuses the ioctl as well).
    '--new-session',
    // bwrap keeps capabilities for a root caller unless told; inside, uid 0 must be powerless.
    '--cap-drop',
    'ALL',
    '--hostname',
    'ward',
  ];
  for (const op of input.ops) {
    switch (op.kind) {
      case 'proc':
        // Read-only procfs. For a root caller, uid 0 inside is the host's root, and the
        // kernel's legacy "euid == 0" checks would let it write /proc/sys/kernel/core_pattern
        // (a host escape), /proc/sysrq-trigger and /proc/PID/mem even with every capability
        // dropped. Landlock refuses those writes too; this makes it hold without Landlock.
        a.push('--proc', op.dest, '--remount-ro', op.dest);
        break;
      case 'dev':
        a.push('--dev', op.dest);
        break;
      case 'tmpfs':
        // /tmp keeps its usual sticky, world-writable mode; a private $HOME is the owner's alone.
        a.push('--perms', op.dest === '/tmp' ? '1777' : '0700', '--tmpfs', op.dest);
        break;
      case 'bind':
        a.push(op.writable ? '--bind' : '--ro-bind', op.src, op.dest);
        break;
      case 'mask-dir':
        a.push('--perms', '0000', '--tmpfs', op.dest, '--remount-ro', op.dest);
        break;
      case 'mask-file':
        a.push('--ro-bind', input.maskFile, op.dest);
        break;
      case 'symlink':
        a.push('--symlink', op.target, op.dest);
        break;
    }
  }
  for (const f of input.files ?? []) a.push('--ro-bind', f.src, f.dest);
  a.push('--ro-bind', input.launcherPath, LAUNCHER_INSIDE);
  // The root tmpfs itself read-only: nothing can be created beside the bound trees.
  a.push('--remount-ro', '/');
  a.push('--chdir', input.cwd);
  a.push('--seccomp', String(input.seccompFd));
  if (input.infoFd !== undefined) a.push('--info-fd', String(input.infoFd));
  if (input.blockFd !== undefined) a.push('--block-fd', String(input.blockFd));
  return a;
}

/**
 * The part of bwrap's argv that must stay on the command line: bwrap parses
 * `--args FD` for options only and takes the command from its real argv. What
 * is visible here (the launcher's Landlock paths and rlimits, the command) is
 * nothing the sandbox does not know already.
 */
export function bwrapCommand(innerArgv: string[]): string[] {
  return ['--', LAUNCHER_INSIDE, ...innerArgv];
}

/** NUL-separated, as `bwrap --args FD` reads them. */
export function encodeArgs(args: string[]): Buffer {
  for (const x of args) if (x.includes('\0')) throw new Error(`argument contains NUL: ${JSON.stringify(x)}`);
  return Buffer.from(args.map((x) => `${x}\0`).join(''));
}
