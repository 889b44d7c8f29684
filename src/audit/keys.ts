/**
 * The audit signing key: an Ed25519 key pair in Ward's config directory
 * ($XDG_CONFIG_HOME/ward, default ~/.config/ward), which is on the mandatory
 * deny list (policy/secrets.ts), so no sandbox can see it.
 *
 *   audit.key  PKCS#8 PEM, mode 0600 (Ward refuses a key others can read, as ssh does)
 *   audit.pub  SPKI PEM: copy it off this machine; `ward audit verify --pubkey` takes it
 *
 * key_id = SHA-256 of the public key's DER SubjectPublicKeyInfo, in hex.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { WardError } from '../errors.js';
import { xdgHome } from '../paths.js';

export interface KeyPaths {
  dir: string;
  privateKey: string;
  publicKey: string;
}

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  keyId: string;
  file: string;
}

/** Ward's config directory: $XDG_CONFIG_HOME/ward, default ~/.config/ward (matches secrets.ts). */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(xdgHome(env, 'XDG_CONFIG_HOME'), 'ward');
}

export function keyPaths(env: NodeJS.ProcessEnv = process.env): KeyPaths {
  const dir = configDir(env);
  return { dir, privateKey: path.join(dir, 'audit.key'), publicKey: path.join(dir, 'audit.pub') };
}

export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ format: 'der', type: 'spki' })).digest('hex');
}

/** A short form for people (the full id is in the records). */
export function shortKeyId(keyId: string): string {
  return keyId.slice(0, 16);
}

export interface InitResult {
  keyId: string;
  privateKey: string;
  publicKey: string;
  /** The replaced key's id and where its public half was kept (--force only). */
  replaced: { keyId: string; publicKey: string } | null;
}

/**
 * Creates the key pair. Without `force`, an existing key is never touched
 * (WardError). The private key is written to a temporary file with mode 0600
 * and linked into place, so it is never visible half-written or with a wider
 * mode, and two Wards creating it at once cannot both win.
 */
export function initKeys(opts: { env?: NodeJS.ProcessEnv; force?: boolean } = {}): InitResult {
  const p = keyPaths(opts.env);
  ensurePrivateDir(p.dir);
  let replaced: InitResult['replaced'] = null;
  if (exists(p.privateKey)) {
    if (!opts.force) {
      let id = 'unreadable';
      try {
        id = shortKeyId(keyIdOf(createPublicKey(readFileSync(p.privateKey))));
      } catch {
        /* say so below */
      }
      throw new WardError(`an audit key already exists at ${p.privateKey} (key id ${id})`, {
        step: 'keys',
        fix: 'keep it; to replace it run `ward keys init --force` (logs signed with the old key then verify only with the old audit.pub, which is kept beside the new one)',
      });
    }
    try {
      const old = createPublicKey(readFileSync(p.privateKey));
      const oldId = keyIdOf(old);
      const kept = path.join(p.dir, `audit.${shortKeyId(oldId)}.pub`);
      writeFileAtomic(kept, old.export({ format: 'pem', type: 'spki' }) as string, 0o644);
      replaced = { keyId: oldId, publicKey: kept };
    } catch {
      /* an unreadable old key: nothing to keep */
    }
  }
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  if (opts.force) writeFileAtomic(p.privateKey, pem, 0o600);
  else if (!linkNew(p.privateKey, pem, 0o600)) {
    throw new WardError(`an audit key was created at ${p.privateKey} by another process just now`, { step: 'keys', fix: 'use it, or run `ward keys init --force` to replace it' });
  }
  writeFileAtomic(p.publicKey, publicKey.export({ format: 'pem', type: 'spki' }) as string, 0o644);
  return { keyId: keyIdOf(publicKey), privateKey: p.privateKey, publicKey: p.publicKey, replaced };
}

/**
 * Loads the signing key. With `create`, a missing key is made first (the
 * default for `ward run`: every run is recorded with signed checkpoints from the
 * first one; `onCreate` tells the user where the new key is). A key file that
 * others can read or that another user owns is refused.
 */
export function loadSigningKey(opts: { env?: NodeJS.ProcessEnv; create?: boolean; file?: string; onCreate?: (r: InitResult) => void } = {}): SigningKey {
  const p = keyPaths(opts.env);
  const file = opts.file ?? p.privateKey;
  if (!exists(file)) {
    if (!opts.create || opts.file !== undefined) {
      throw new WardError(`no audit signing key at ${file}`, { step: 'audit:key', fix: 'create one with `ward keys init`' });
    }
    try {
      const r = initKeys({ env: opts.env });
      opts.onCreate?.(r);
    } catch (e) {
      // Another Ward made it between our check and our link: use theirs.
      if (!(e instanceof WardError && exists(file))) throw e;
    }
  }
  const st = statSync(file);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new WardError(`the audit key ${file} belongs to uid ${st.uid}, not to this user (uid ${uid})`, { step: 'audit:key', fix: `use your own key: \`ward keys init\` with your own XDG_CONFIG_HOME, or fix the owner (chown ${uid} ${file})` });
  }
  if ((st.mode & 0o077) !== 0) {
    throw new WardError(`the audit key ${file} is readable or writable by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')})`, {
      step: 'audit:key',
      fix: `chmod 600 ${file} (anyone who read it can forge checkpoints: if that may have happened, run \`ward keys init --force\`)`,
    });
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(readFileSync(file));
  } catch (e) {
    throw new WardError(`the audit key ${file} cannot be read: ${(e as Error).message}`, { step: 'audit:key', fix: 'restore it from a backup, or create a new one with `ward keys init --force`' });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new WardError(`the audit key ${file} is a ${privateKey.asymmetricKeyType} key, not Ed25519`, { step: 'audit:key', fix: 'create an Ed25519 key with `ward keys init --force`' });
  }
  const publicKey = createPublicKey(privateKey);
  // audit.pub is derived; put it back if it went missing, so `ward audit verify` finds it.
  if (opts.file === undefined && !exists(p.publicKey)) writeFileAtomic(p.publicKey, publicKey.export({ format: 'pem', type: 'spki' }) as string, 0o644);
  return { privateKey, publicKey, keyId: keyIdOf(publicKey), file };
}

/**
 * The key `ward audit verify` checks signatures with: a public key PEM (or a
 * private one, whose public half is used). Default: audit.pub, else audit.key.
 */
export function loadVerifyKey(file: string | undefined, env: NodeJS.ProcessEnv = process.env): { publicKey: KeyObject; keyId: string; file: string } {
  let chosen = file;
  if (chosen === undefined) {
    const p = keyPaths(env);
    chosen = exists(p.publicKey) ? p.publicKey : exists(p.privateKey) ? p.privateKey : undefined;
    if (chosen === undefined) {
      throw new WardError(`no public key to verify with: ${p.publicKey} does not exist`, {
        step: 'audit:key',
        fix: 'pass --pubkey FILE (the audit.pub of the machine that wrote the log, ideally a copy kept elsewhere), or create a key pair here with `ward keys init`',
      });
    }
  }
  let text: Buffer;
  try {
    text = readFileSync(chosen);
  } catch (e) {
    throw new WardError(`cannot read the public key ${chosen}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { step: 'audit:key', fix: 'pass --pubkey FILE with an audit.pub made by `ward keys init`' });
  }
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey(text);
  } catch (e) {
    throw new WardError(`${chosen} is not a PEM public key: ${(e as Error).message}`, { step: 'audit:key', fix: 'pass --pubkey FILE with an audit.pub made by `ward keys init`' });
  }
  if (publicKey.asymmetricKeyType !== 'ed25519') {
    throw new WardError(`${chosen} is a ${publicKey.asymmetricKeyType} key, not Ed25519`, { step: 'audit:key', fix: 'pass --pubkey FILE with an audit.pub made by `ward keys init`' });
  }
  return { publicKey, keyId: keyIdOf(publicKey), file: chosen };
}

// ---------------------------------------------------------------------------

function exists(file: string): boolean {
  try {
    statSync(file);
    return true;
  } catch {
    return false;
  }
}

/** Ward's own directory: created 0700, and tightened to 0700 if it is wider. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  if ((st.mode & 0o077) !== 0 && st.uid === process.getuid?.()) chmodSync(dir, 0o700);
}

function writeTemp(file: string, text: string, mode: number): string {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, mode); // the umask may have narrowed it (never widened)
  return tmp;
}

function writeFileAtomic(file: string, text: string, mode: number): void {
  const tmp = writeTemp(file, text, mode);
  renameSync(tmp, file);
}

/** Creates `file` only if it does not exist (link fails with EEXIST). false: it existed. */
function linkNew(file: string, text: string, mode: number): boolean {
  const tmp = writeTemp(file, text, mode);
  try {
    linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    unlinkSync(tmp);
  }
}
