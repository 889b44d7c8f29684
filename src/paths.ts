/**
 * Where Ward keeps its own files. All of them are on the mandatory deny list
 * (policy/secrets.ts), so no policy can expose them to a sandbox.
 */
import { chmodSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export function homeDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.HOME || os.homedir();
}

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.XDG_CACHE_HOME || path.join(homeDir(env), '.cache'), 'ward');
}

export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.XDG_STATE_HOME || path.join(homeDir(env), '.local', 'state'), 'ward');
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
