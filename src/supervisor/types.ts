/**
 * What the supervisor hands a decision function, and what it expects back. Plain data both
 * ways: the decision function runs in the supervisor's worker thread, on every notification,
 * so it must be cheap and synchronous.
 */
import type { Access } from './static.js';
import type { Writer, WriteRevoked } from './cut.js';
import type { SupervisedSyscall } from './filter.js';

export interface SupervisedEvent {
  /** The calling thread, in Ward's pid namespace. */
  pid: number;
  syscall: SupervisedSyscall;
  /**
   * unlink: unlink, unlinkat, rmdir; rename: rename(at, at2); link: link(at), symlink(at);
   * mkdir: mkdir(at), mknod(at); truncate: truncate by path; attr: chmod, chown, utime(s),
   * utimensat, setxattr, removexattr and variants (on the file the path resolves to); fd: ftruncate, fallocate, fcntl
   * F_SETFL, pwritev2, io_setup (decided on the caller's open file, only for append-only files).
   */
  kind: 'open' | 'exec' | 'connect' | 'unlink' | 'rename' | 'truncate' | 'link' | 'mkdir' | 'attr' | 'fd';
  /**
   * The path in the sandbox's view. For an open: the file actually opened, read back from the
   * kernel after the supervisor opened it (so symlinks and `..` are already resolved), or for a
   * file about to be created, its resolved parent directory plus the new name. For an exec: the
   * program the path resolves to from the sandbox's root as the kernel resolves it for the caller
   * (symlinks, `..`, /proc/self and the caller's own /proc/N/root, cwd, exe and fd/M followed:
   * worker.ts findProgram), or an interpreter or loader it runs (`via`); the path as given, made
   * absolute, for a refusal of one Ward cannot follow.
   * For a write by path (filter.ts PATH_OPS): the name it removes, replaces, truncates or makes,
   * as its resolved parent directory plus the last component (for rename, the old name; for
   * link, the existing file's name).
   * null for connect (its address is not read) and the fd calls.
   */
  path: string | null;
  /** rename: the new name; link and symlink: the name made. null otherwise. */
  path2?: string | null;
  /**
   * rename: a directory is moved or replaced (the old name, or the name replaced, is one), so
   * `path` and `path2` each stand for the whole tree below them: a rename of `proj` changes
   * what every `proj/...` path holds. Absent or false otherwise.
   */
  tree?: boolean;
  access: Access | 'exec' | 'connect';
  /** The open would create the file (O_CREAT and it did not exist). */
  create: boolean;
  /** The open flags as the program gave them (0 for exec). */
  flags: number;
  /**
   * For an open of an existing file: "dev:ino" of what was opened (fstat on the supervisor's
   * fd), so a decision can know the file under another name (a hard link, a rename); for an
   * exec, of the program the path resolves to; for a write by path, of the existing file it
   * names. null otherwise (blind calls, a file being created, an exec Ward cannot follow).
   */
  file: string | null;
  /**
   * For an exec: the file that made the kernel run this one without an exec of its own, when it
   * is the interpreter a script's `#!` line names or an ELF program's dynamic loader (PT_INTERP).
   * Absent for the program the exec names.
   */
  via?: { file: string; as: 'interpreter' | 'loader' };
}

export type Decision = { allow: true } | { errno: number; reason?: string };

/** The accesses a call to a file can be, as far as its registers tell (open flags, the syscall). */
export type FileAccess = 'read' | 'write' | 'append';

export type Decide = ((event: SupervisedEvent) => Decision) & {
  /**
   * Optional. True when, right now, the function would allow a call with these accesses whatever
   * file it named, and would not need to see it (it is no event that could change a later
   * answer). The supervisor then answers CONTINUE without reading the call's memory ("decided
   * blind", worker.ts): nothing was decided on what a racing thread could swap. Must be cheap;
   * when in doubt, false.
   */
  anyTarget?: (accesses: readonly (FileAccess | 'exec')[]) => boolean;
};

/**
 * Given to createDecider beside its data: `report` sends plain data to Ward's main thread
 * (launch()'s onReport), in order with the refusals, e.g. a rule that fired and what it revoked.
 */
export interface DeciderContext {
  report(data: unknown): void;
  /**
   * Shuts down every connected TCP socket the processes of `pid`'s sandbox hold (cut.ts), before
   * the call being decided is answered; returns how many. Given by the supervisor thread only.
   */
  cutConnections?(pid: number): number;
  /**
   * Kills every process of `pid`'s sandbox that can still write a file `revoked` says is revoked
   * (cut.ts killWriters), before the call being decided is answered; returns who and why.
   */
  killWriters?(pid: number, revoked: WriteRevoked): Writer[];
}

/**
 * The decision function is given as a module (it has to be loaded inside the worker thread; a
 * function cannot cross threads): an ES module exporting `createDecider(data, ctx) => decide`, where
 * `data` is structured-cloned from the caller. State that should evolve during the run (a
 * revocation) lives in the closure.
 */
export interface DeciderSpec {
  /** Absolute path or file: URL of the module. */
  module: string;
  data?: unknown;
}

/** A refusal the supervisor answered, as it reaches Ward's records. */
export interface SupervisorDenial {
  event: SupervisedEvent;
  errno: number;
  /** 'static policy' (a Landlock rule is missing) or the decision's reason. */
  reason: string;
}
