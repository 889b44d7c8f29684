import { WardError } from '../../errors.js';
import { loadVerifyKey, shortKeyId } from '../../audit/keys.js';
import { defaultAuditLog } from '../../audit/run-log.js';
import { verifyLogFile, type VerifyReport } from '../../audit/verify.js';
import { takeValue } from '../main.js';

const USAGE = 'ward audit verify [FILE] [--pubkey KEY] [--anchor SAVED_HEAD]... [--json]';

/**
 * `ward audit verify [FILE] [--pubkey KEY] [--anchor SAVED_HEAD]... [--json]`:
 * exit 0 only when the log is intact and wholly signed; 1 when it is not (the
 * first bad record is named exactly); 125 when it cannot be checked (no such
 * file, no key). --anchor takes copies of earlier `FILE.head` files kept off
 * this host: the log must still hold the records they name.
 */
export function auditVerify(args: string[]): number {
  let file: string | undefined;
  let pubkey: string | undefined;
  let json = false;
  const anchors: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--pubkey') pubkey = takeValue(args, i++, a, 'a key file');
    else if (a === '--anchor') anchors.push(takeValue(args, i++, a, 'a saved head file'));
    else if (a === '--json') json = true;
    else if (a.startsWith('-')) throw new WardError(`unknown option ${a} for ward audit verify`, { fix: USAGE });
    else if (file === undefined) file = a;
    else throw new WardError(`unexpected argument "${a}"`, { fix: USAGE });
  }
  file ??= defaultAuditLog();
  const key = loadVerifyKey(pubkey);
  const report = verifyLogFile(file, key, anchors);
  if (json) process.stdout.write(`${JSON.stringify({ ...report, public_key: key.file, anchors }, null, 2)}\n`);
  else process.stdout.write(render(report, key.file, anchors.length));
  return report.ok ? 0 : 1;
}

function render(r: VerifyReport, keyFile: string, anchors: number): string {
  const out: string[] = [];
  if (r.ok) {
    out.push(`intact: ${r.file}`);
    out.push(`  ${r.verified} records, ${r.checkpoints} signed checkpoints, the last at line ${r.last_checkpoint!.line}`);
    out.push(`  head: seq ${r.head!.seq}, hash ${r.head!.hash} (matches the signed head file)`);
    out.push(`  key ${shortKeyId(r.key_id!)} (${keyFile})`);
    out.push(
      anchors > 0
        ? `  contains the ${anchors} anchored head(s) given`
        : '  tamper-evident against anyone without the key; against this host\'s root, only with --anchor (docs/audit.md)',
    );
  } else {
    const p = r.problem!;
    const label = p.kind === 'unsigned-tail' ? 'NOT FULLY SIGNED' : p.kind === 'wrong-key' ? 'NOT VERIFIED' : 'TAMPERED';
    out.push(`${label}: ${r.file}`);
    out.push(`  ${p.kind}${p.line !== null ? ` at line ${p.line}` : ''}${p.seq !== null ? ` (seq ${p.seq})` : ''}: ${p.message}`);
    if (r.verified > 0) {
      out.push(`  lines 1-${r.verified} chain correctly${r.last_checkpoint ? `; the last good checkpoint is at line ${r.last_checkpoint.line} (seq ${r.last_checkpoint.seq})` : ''}`);
    }
  }
  return `${out.join('\n')}\n`;
}
