/**
 * Where Ward keeps its own files. All of them are on the mandatory deny list
 * (policy/secrets.ts), so no policy can expose them to a sandbox.
 */
import { chmodSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
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

let maskFile: string | undefined;

/**
 * An empty file with mode 0000, bound over every denied file that a grant would
 * expose: the sandbox (no capabilities, so no CAP_DAC_OVERRIDE even as uid 0)
 * gets EACCES on open, and nothing of the original content.
 */
export function ensureMaskFile(): string {
  if (maskFile !== undefined) return maskFile;
  const dir = cacheDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'mask-0000');
  if (!existsSync(file)) {
    // Made under a temporary name and renamed (atomic), so a parallel first run never binds a half-made file.
    const tmp = `${file}.${process.pid}`;
    writeFileSync(tmp, '', { mode: 0o000 });
    renameSync(tmp, file);
  }
  chmodSync(file, 0o000);
  maskFile = file;
  return file;
}
