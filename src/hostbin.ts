/**
 * The programs Ward runs on the host, outside every sandbox (bwrap, the C compiler that builds the
 * launcher, the launcher itself). They are trust roots: whoever can change one runs code as the
 * caller on the next launch. So they are never looked up through PATH, which `npm run`, a
 * relative entry or a shell profile can point into a workspace a sandbox writes (run 1 plants
 * `node_modules/.bin/bwrap`, run 2 executes it on the host), and each is checked before it runs.
 */
import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import path from 'node:path';
import { lstatOrNull } from './paths.js';

/** Where host programs are looked for, in this order: system directories only, never PATH. */
export const SYSTEM_BIN_DIRS: readonly string[] = ['/usr/bin', '/bin', '/usr/local/bin', '/usr/sbin', '/sbin', '/usr/local/sbin'];

/** PATH for the host programs Ward starts itself (the compiler looks for `as` and `ld` on it). */
export const SYSTEM_PATH = '/usr/bin:/bin';

/** A path a sandbox of the plan about to run could write (its writable grants), for the check. */
export type SandboxWritable = (hostPath: string) => boolean;

const MAX_LINKS = 40;

function lstatOrProblem(p: string): Stats | string {
  try {
    return lstatSync(p);
  } catch (e) {
    return `${p}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
  }
}

/**
 * Why `file` must not be run on the host, or null when it may. Resolution is followed link by
 * link, and every directory passed through, every symlink and the file itself must be owned by
 * root or the caller and not writable by group or others (a sticky directory such as /tmp is
 * accepted: only an entry's owner can replace it there, and the entry's owner is checked next),
 * and none may lie in a path `writable` says a sandbox can change.
 */
export function hostBinaryProblem(file: string, writable?: SandboxWritable): string | null {
  if (!path.isAbsolute(file)) return `${file} is not an absolute path`;
  const uid = process.getuid?.() ?? 0;
  const checkOne = (p: string, st: Stats, what: string): string | null => {
    if (st.uid !== 0 && st.uid !== uid) return `${what} ${p} is owned by uid ${st.uid}, neither root nor you (uid ${uid})`;
    const sticky = st.isDirectory() && (st.mode & 0o1000) !== 0;
    if (!st.isSymbolicLink() && (st.mode & 0o022) !== 0 && !sticky) return `${what} ${p} is writable by group or others (mode ${(st.mode & 0o7777).toString(8)})`;
    if (writable?.(p)) return `${what} ${p} can be changed from inside the sandbox (a writable grant of the policy covers it)`;
    return null;
  };
  const root = lstatOrProblem('/');
  if (typeof root === 'string') return root;
  let problem = checkOne('/', root, 'the directory');
  if (problem) return problem;
  let cur = '/';
  let todo = file.split('/').filter((c) => c !== '' && c !== '.');
  let links = 0;
  while (todo.length > 0) {
    const name = todo.shift()!;
    if (name === '..') {
      cur = path.dirname(cur);
      continue;
    }
    const next = path.join(cur, name);
    const st = lstatOrProblem(next);
    if (typeof st === 'string') return `cannot look at ${st}`;
    if (st.isSymbolicLink()) {
      problem = checkOne(next, st, 'the symlink');
      if (problem) return problem;
      if (++links > MAX_LINKS) return `${file}: too many levels of symlinks`;
      const target = readlinkSync(next);
      if (path.isAbsolute(target)) cur = '/';
      todo = [...target.split('/').filter((c) => c !== '' && c !== '.'), ...todo];
      continue;
    }
    const last = todo.length === 0;
    problem = checkOne(next, st, last ? 'the file' : 'the directory');
    if (problem) return problem;
    if (!last && !st.isDirectory()) return `${next} (on the way to ${file}) is not a directory`;
    if (last && !st.isFile()) return `${next} is not a regular file`;
    if (last && (st.mode & 0o111) === 0) return `${next} is not executable`;
    cur = next;
  }
  return null;
}

/** The first `name` in SYSTEM_BIN_DIRS that exists (whatever its state: the caller checks it), or null. */
export function systemBinary(name: string, dirs: readonly string[] = SYSTEM_BIN_DIRS): string | null {
  return dirs.map((dir) => path.join(dir, name)).find((candidate) => lstatOrNull(candidate) !== null) ?? null;
}

/** `name` from the system directories, checked: for the helper programs Ward itself starts on the host. */
export function hostTool(name: string): string {
  const found = systemBinary(name);
  if (found === null) throw new Error(`${name} is not installed in ${SYSTEM_BIN_DIRS.join(', ')} (PATH is not searched for programs Ward runs on the host)`);
  const problem = hostBinaryProblem(found);
  if (problem !== null) throw new Error(`refusing to run ${found} on the host: ${problem}`);
  return found;
}
