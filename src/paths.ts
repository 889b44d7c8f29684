/**
 * Where Ward keeps its own files. All of them are on the mandatory deny list
 * (policy/secrets.ts), so no policy can expose them to a sandbox.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsConstants, fchmodSync, lstatSync, mkdirSync, openSync, readlinkSync, realpathSync, renameSync, type Stats } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WardError } from './errors.js';

/**
 * The user's home, which must be absolute: Ward's key, log and cache are found from it, and a
 * relative (or empty) HOME would put them relative to the current directory, usually the
 * workspace, where the sandbox can read the signing key and rewrite the launcher.
 */
export function homeDir(env: NodeJS.ProcessEnv = process.env): string {
  let home = env.HOME;
  if (home === undefined) {
    try {
      home = os.homedir();
    } catch {
      home = '';
    }
  }
  return checkAbsolute('HOME', home, 'set HOME to your home directory (an absolute path), e.g. `HOME=/home/you ward ...`');
}

/**
 * The home the password database gives this process's user (getpwuid), or undefined when it
 * has none or not an absolute one. An agent harness or CI often sets HOME to a scratch
 * directory; the account's own home, with its keys, shell startup files and Ward's files of
 * earlier runs, is still there, and is masked and guarded as $HOME is.
 */
export function accountHome(): string | undefined {
  let home: string;
  try {
    home = os.userInfo().homedir;
  } catch {
    return undefined; // no passwd entry for this uid (a container's arbitrary user)
  }
  return path.isAbsolute(home) ? path.normalize(home).replace(/(.)\/+$/, '$1') : undefined;
}

type XdgName = 'XDG_STATE_HOME' | 'XDG_CONFIG_HOME' | 'XDG_CACHE_HOME';
const XDG_DEFAULT: Record<XdgName, string> = { XDG_STATE_HOME: '.local/state', XDG_CONFIG_HOME: '.config', XDG_CACHE_HOME: '.cache' };

/**
 * $XDG_*_HOME, or its default under `home`. Unset and empty mean the default (XDG); a relative
 * value is refused rather than ignored, so that every part of Ward (the files it writes and the
 * mandatory denies that hide them) agrees on one place, and the user learns it was not used.
 */
export function xdgHome(env: NodeJS.ProcessEnv, name: XdgName, home?: string): string {
  const v = env[name];
  if (v) return checkAbsolute(name, v, `set ${name} to an absolute path, or unset it (default: ~/${XDG_DEFAULT[name]})`);
  return path.join(home ?? homeDir(env), XDG_DEFAULT[name]);
}

function checkAbsolute(name: string, value: string, fix: string): string {
  if (!path.isAbsolute(value)) {
    throw new WardError(
      `${name} is ${value === '' ? 'empty' : `"${value}", a relative path`}: Ward keeps its audit key, audit log and launcher under it, and would put them relative to the current directory (inside the workspace, where the sandbox could read the key)`,
      { step: 'preflight', fix },
    );
  }
  return value;
}

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(xdgHome(env, 'XDG_CACHE_HOME'), 'ward');
}

export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(xdgHome(env, 'XDG_STATE_HOME'), 'ward');
}

/**
 * Creates Ward's own directories (state, config, cache; 0700) if they are missing. Called before
 * a plan is made: a mask needs something to cover, so a directory Ward made only after planning
 * (the cache on a first run, the key on first use) would be left unmasked inside a grant, and a
 * sandbox that can write there could plant what a later run executes or trusts.
 */
export function ensureWardDirs(dirs: readonly string[]): void {
  for (const dir of dirs) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new WardError(`cannot create Ward's directory ${dir}: ${(e as Error).message}`, {
        step: 'preflight',
        fix: `create it (\`mkdir -p -m 700 ${dir}\`), or point HOME or XDG_STATE_HOME / XDG_CONFIG_HOME / XDG_CACHE_HOME at a place you can write`,
      });
    }
    const st = lstatSync(dir);
    if (!st.isDirectory()) {
      throw new WardError(`Ward's directory ${dir} is ${st.isSymbolicLink() ? 'a symlink' : 'not a directory'}: Ward keeps its keys, audit log and launcher there, and will not follow it to somewhere else`, {
        step: 'preflight',
        fix: `remove it (\`rm ${dir}\`) and Ward makes a fresh directory; if you moved Ward's files on purpose, set XDG_STATE_HOME / XDG_CONFIG_HOME / XDG_CACHE_HOME instead`,
      });
    }
  }
}

let maskFile: string | undefined;

const MASK_NAME = 'mask-0000';

/**
 * An empty file with mode 0000, bound over every denied file that a grant would
 * expose: the sandbox (no capabilities, so no CAP_DAC_OVERRIDE even as uid 0)
 * gets EACCES on open, and nothing of the original content.
 *
 * bwrap binds whatever is at this path, so it must be exactly the file Ward made: a symlink
 * would bind its target over every masked file (and a chmod would follow it), a hard link
 * would make the chmod change another file, and a file someone else owns may be changed under
 * us. Anything but our own regular, single-link, mode-0000 file is refused, never "repaired".
 */
export function ensureMaskFile(): string {
  if (maskFile !== undefined) return maskFile;
  const dir = cacheDir();
  ensureWardDirs([dir]);
  const file = path.join(dir, MASK_NAME);
  if (lstatOrNull(file) === null) {
    // Made under a temporary name and renamed (atomic), so a parallel first run never binds a
    // half-made file; O_EXCL|O_NOFOLLOW so the temporary name is ours, not a planted link.
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    const fd = openSync(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o000);
    try {
      fchmodSync(fd, 0o000); // the umask cannot add bits, but a mode is only trusted once set
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  }
  checkMaskFile(file);
  maskFile = file;
  return file;
}

/** Exported for tests: throws unless `file` is a mask file Ward can trust (see ensureMaskFile). */
export function checkMaskFile(file: string): void {
  const st = lstatSync(file);
  const uid = process.getuid?.() ?? st.uid;
  const problem = st.isSymbolicLink()
    ? `a symlink (to ${readlinkOr(file)})`
    : !st.isFile()
      ? 'not a regular file'
      : st.uid !== uid
        ? `owned by uid ${st.uid}, not you (${uid})`
        : st.nlink !== 1
          ? `a file with ${st.nlink} hard links`
          : (st.mode & 0o7777) !== 0
            ? `mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}, not 0000`
            : st.size !== 0
              ? `not empty (${st.size} bytes)`
              : null;
  if (problem !== null) {
    throw new WardError(`refusing to use Ward's mask file ${file}: it is ${problem}. Ward binds this file over every denied file a grant would expose, so it must be the empty, mode-0000 file Ward made`, {
      step: 'preflight',
      fix: `remove it (\`rm ${file}\`) and Ward makes a new one; if a sandbox could write ${path.dirname(file)}, check what else it changed there`,
    });
  }
}

/** lstat, or null when there is nothing at `p` (or it cannot be looked at). */
export function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}

/** `p`'s real path, or `p` made absolute when it cannot be resolved (missing, unreadable): the name decides then. */
export function realOr(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/**
 * Where the absolute path `p` leads on this host: its real path when it exists, and otherwise
 * the real path of its longest existing prefix with the rest appended as written, following
 * symlinks on the way even when they dangle (`/bin/nope` is `/usr/bin/nope` on a merged-/usr
 * host). For a path pattern whose tail may not exist yet, so that it can be compared with the
 * real paths the sandbox is built on (plan/mounts.ts binds and sets Landlock on those). A link
 * loop, or more than 40 links, leaves `p` as written: the kernel would refuse it (ELOOP).
 */
export function realPrefix(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    /* something on the way is missing, unreadable or a dangling link: walk it */
  }
  let cur = '/';
  let rest = p.split('/').filter(Boolean);
  for (let links = 0; rest.length > 0; ) {
    const [head, ...tail] = rest as [string, ...string[]];
    rest = tail;
    if (head === '.') continue;
    // `cur` has no links in it, so its lexical parent is its real parent.
    if (head === '..') {
      cur = path.posix.dirname(cur);
      continue;
    }
    const next = path.posix.join(cur, head);
    const st = lstatOrNull(next);
    if (st === null) return path.posix.join(next, ...rest);
    if (!st.isSymbolicLink()) {
      cur = next;
      continue;
    }
    if (++links > 40) return p;
    let target: string;
    try {
      target = readlinkSync(next);
    } catch {
      return path.posix.join(next, ...rest);
    }
    if (target.startsWith('/')) cur = '/';
    rest = [...target.split('/').filter(Boolean), ...rest];
  }
  return cur;
}

function readlinkOr(p: string): string {
  try {
    return readlinkSync(p);
  } catch {
    return '?';
  }
}
