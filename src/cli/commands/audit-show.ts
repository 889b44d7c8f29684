import { readFileSync } from 'node:fs';
import { WardError } from '../../errors.js';
import { defaultAuditLog } from '../../audit/run-log.js';
import { parseLogLines, renderTimeline } from '../../audit/timeline.js';
import { printable } from '../../printable.js';

const USAGE = 'ward audit show [FILE] [--json]';

/** `ward audit show [FILE] [--json]`: the log as a timeline, or its records as a JSON array. */
export function auditShow(args: string[]): number {
  let file: string | undefined;
  let json = false;
  for (const a of args) {
    if (a === '--json') json = true;
    else if (a.startsWith('-')) throw new WardError(`unknown option ${a} for ward audit show`, { fix: USAGE });
    else if (file === undefined) file = a;
    else throw new WardError(`unexpected argument "${a}"`, { fix: USAGE });
  }
  file ??= defaultAuditLog();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new WardError(`cannot read the audit log ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      fix: 'give the log file (the default is ~/.local/state/ward/audit.jsonl; `ward run --audit-log FILE` writes elsewhere)',
    });
  }
  const lines = parseLogLines(text);
  if (json) {
    for (const l of lines) if ('error' in l) process.stderr.write(`ward: line ${l.line} is ${printable(l.error)}\n`);
    process.stdout.write(`${JSON.stringify(lines.flatMap((l) => ('record' in l ? [l.record] : [])), null, 2)}\n`);
  } else {
    process.stdout.write(renderTimeline(lines));
  }
  return 0;
}
