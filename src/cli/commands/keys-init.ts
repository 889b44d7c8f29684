import { existsSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { WardError } from '../../errors.js';
import { initKeys, shortKeyId } from '../../audit/keys.js';
import { acquireLock } from '../../audit/lock.js';
import { defaultAuditLog } from '../../audit/run-log.js';

/**
 * `ward keys init [--force]`: creates the Ed25519 key pair that signs the audit
 * log's checkpoints, in $XDG_CONFIG_HOME/ward (audit.key 0600, audit.pub).
 * Never overwrites a key without --force. With --force, the old public key is
 * kept (audit.<id>.pub) and the default log, signed with the old key, is moved
 * aside with its head file (one log, one key), so both stay verifiable.
 */
export function keysInit(args: string[]): number {
  let force = false;
  for (const a of args) {
    if (a === '--force') force = true;
    else throw new WardError(`unknown option ${a} for ward keys init`, { fix: 'ward keys init [--force]' });
  }
  const r = initKeys({ force });
  const out = [
    `created the audit signing key (Ed25519)`,
    `  private key  ${r.privateKey}  (mode 0600: never copy it anywhere)`,
    `  public key   ${r.publicKey}`,
    `  key id       ${r.keyId}`,
    `Keep a copy of ${path.basename(r.publicKey)} off this machine: \`ward audit verify --pubkey COPY\` then checks the log against a key nobody here can swap.`,
  ];
  if (r.replaced) {
    out.push(`replaced key ${shortKeyId(r.replaced.keyId)}; its public key is kept as ${r.replaced.publicKey}`);
    const moved = retireLog(defaultAuditLog(), r.replaced.keyId);
    if (moved) out.push(`the log signed with it was moved to ${moved} (verify it with \`ward audit verify ${moved} --pubkey ${r.replaced.publicKey}\`); the next run starts a new log`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

/** Moves LOG and LOG.head to audit-<old key>.jsonl(.head) if the log was started with that key. */
function retireLog(log: string, oldKeyId: string): string | null {
  if (!existsSync(log)) return null;
  let first: { key_id?: unknown };
  try {
    first = JSON.parse(readFileSync(log, 'utf8').split('\n', 1)[0] ?? '') as { key_id?: unknown };
  } catch {
    return null;
  }
  if (first.key_id !== oldKeyId) return null;
  const lock = acquireLock(`${log}.lock`);
  try {
    let dest = path.join(path.dirname(log), `audit-${shortKeyId(oldKeyId)}.jsonl`);
    if (existsSync(dest)) dest = path.join(path.dirname(log), `audit-${shortKeyId(oldKeyId)}-${Date.now()}.jsonl`);
    renameSync(log, dest);
    if (existsSync(`${log}.head`)) renameSync(`${log}.head`, `${dest}.head`);
    return dest;
  } finally {
    lock.release();
  }
}
