/**
 * `ward audit show`: the log as a timeline people can read. Presentation only:
 * it does not verify anything (that is `ward audit verify`), and it shows
 * whatever it can parse.
 */
import type { AuditRecord } from './format.js';
import { printable, shown } from '../printable.js';
import { shortKeyId } from './keys.js';

export type ShownLine = { line: number; record: AuditRecord } | { line: number; error: string };

/** Parses each line of the log; a line that is not a record is kept as an error. */
export function parseLogLines(text: string): ShownLine[] {
  const out: ShownLine[] = [];
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((l, i) => {
    try {
      const r = JSON.parse(l) as AuditRecord;
      if (typeof r !== 'object' || r === null || typeof r.type !== 'string') throw new Error('not a record');
      out.push({ line: i + 1, record: r });
    } catch {
      out.push({ line: i + 1, error: `not a record: ${l.slice(0, 80)}` });
    }
  });
  return out;
}

const INDENT = ' '.repeat(35);

/** One entry per record, in log order. */
export function renderTimeline(lines: ShownLine[]): string {
  const out: string[] = [];
  const runs = new Set<string>();
  let refusals = 0;
  for (const l of lines) {
    if ('error' in l) {
      out.push(`${'?'.padEnd(23)}  ${'-'.padEnd(8)}  line ${l.line}: ${printable(l.error)}`);
      continue;
    }
    // One record that is not in the form Ward writes (a tampered log) is shown as such; the
    // records around it are still shown.
    const before = out.length;
    try {
      refusals += renderRecord(l.record, out, runs);
    } catch (e) {
      out.length = before;
      out.push(`${'?'.padEnd(23)}  ${'-'.padEnd(8)}  line ${l.line}: a ${printable(String(l.record.type))} record not in the form Ward writes (${printable((e as Error).message)})`);
    }
  }
  const records = lines.filter((l) => 'record' in l).length;
  out.push('');
  out.push(`${records} records, ${runs.size} runs${refusals ? `, ${refusals} refused` : ''}. Shown, not verified: check with \`ward audit verify FILE\`.`);
  return `${out.join('\n')}\n`;
}

/** Appends a record's lines to `out`; returns 1 for a refused launch. */
function renderRecord(r: AuditRecord, out: string[], runs: Set<string>): number {
  const time = typeof r.ts === 'string' ? printable(r.ts.replace('T', ' ').replace('Z', '')) : '?';
  const run = typeof r.run_id === 'string' ? printable(r.run_id.slice(0, 8)) : '-';
  if (typeof r.run_id === 'string') runs.add(r.run_id);
  const head = `${time.padEnd(23)}  ${run.padEnd(8)}  `;
  switch (r.type) {
    case 'log-start':
      out.push(`${head}log started: log ${shown(r.log_id).slice(0, 16)}, key ${shortKeyId(shown(r.key_id))}, ward ${shown(r.ward_version)}`);
      break;
    case 'launch':
      out.push(`${head}launch  ${shellLine(r.argv)}`);
      out.push(`${INDENT}policy ${shown(r.policy_sha256).slice(0, 12)}  plan ${shown(r.plan_sha256).slice(0, 12)}  cwd ${shown(r.cwd)}`);
      out.push(`${INDENT}layers: ${printable(layers(r))}`);
      if (Array.isArray(r.degraded) && r.degraded.length > 0) out.push(`${INDENT}DEGRADED: ${r.degraded.map(shown).join('; ')}`);
      if (r.verification && typeof r.verification === 'object') {
        const v = r.verification as { ok?: boolean; properties?: { id: string; status: string }[] };
        const notProved = (v.properties ?? []).filter((p) => p.status !== 'PROVED').map((p) => `${shown(p.id)} ${shown(p.status)}`);
        out.push(`${INDENT}verified (ward verify, this policy and plan): ${notProved.length === 0 ? `all ${(v.properties ?? []).length} properties PROVED` : notProved.join(', ')}`);
      }
      break;
    case 'denial':
      out.push(`${head}denial  ${shown(r.layer)} ${shown(r.what)} ${shown(r.verdict)}: ${shown(r.detail)}`);
      break;
    case 'revocation': {
      // A dynamic rule fired: what triggered it (and who), and what is refused from now on.
      const who = r.pid !== null && r.pid !== undefined ? `pid ${shown(r.pid)}, ${shown(r.by)}` : shown(r.by);
      out.push(`${head}revoke  rules[${shown(r.rule)}] fired on ${shown(r.trigger)} (${who}): ${(Array.isArray(r.revoked) ? r.revoked : []).map(shown).join(', ')} revoked${typeof r.connections_cut === 'number' ? `; ${r.connections_cut} open connection(s) cut` : ''}${Array.isArray(r.killed) && r.killed.length > 0 ? `; killed ${(r.killed as { pid?: unknown; file?: unknown; through?: unknown }[]).map((k) => `pid ${shown(k.pid)} (${shown(k.file)} open for writing, ${shown(k.through)})`).join(', ')}` : ''}`);
      break;
    }
    case 'net': {
      const dest = `${shown(r.host ?? '?')}${r.port !== undefined ? `:${shown(r.port)}` : ''}${r.qtype !== undefined ? ` ${shown(r.qtype)}` : ''}`;
      const why = r.verdict === 'deny' ? `DENIED (${shown(r.reason)})` : `allowed by ${shown(r.rule)}`;
      // Only what the record has: an http record counts bytes out alone (its bytes in are its
      // connection's), a summary has a count and no traffic at all.
      const traffic = [
        // null: the relay gave no count (the note says why); "0 B" would claim nothing went.
        r.bytes_out !== undefined ? (r.bytes_out === null ? 'unknown B out' : `${shown(r.bytes_out)} B out`) : null,
        r.bytes_in !== undefined ? (r.bytes_in === null ? 'unknown B in' : `${shown(r.bytes_in)} B in`) : null,
        r.duration_ms !== undefined ? `${shown(r.duration_ms)} ms` : null,
        r.count !== undefined ? `${shown(r.count)} times` : null,
      ].filter((t) => t !== null);
      const request = r.kind === 'http' && r.method !== undefined ? ` ${shown(r.method)} ${shown(r.path ?? '?')}` : '';
      const note = r.note !== undefined ? `  (${shown(r.note)})` : '';
      out.push(`${head}net ${shown(r.kind).padEnd(7)} ${dest}${request}  ${why}${traffic.length > 0 ? `  ${traffic.join(', ')}` : ''}${note}`);
      break;
    }
    case 'exit': {
      const limit = r.reason !== 'exit' && r.reason !== 'signal' ? ` (${shown(r.reason)})` : r.reason === 'signal' ? ' (signal)' : '';
      out.push(`${head}exit ${shown(r.exit_code)}${limit}  ${shown(r.duration_ms)} ms${r.output_truncated ? '  output truncated' : ''}${r.message ? `  ${shown(r.message)}` : ''}`);
      break;
    }
    case 'launch-failed':
      out.push(`${head}REFUSED at ${shown(r.step)}: ${shown(r.message)}`);
      if (Array.isArray(r.argv)) out.push(`${INDENT}command: ${shellLine(r.argv)}`);
      return 1;
    case 'checkpoint':
      out.push(`${head}checkpoint: ${shown(r.size)} records, head ${shown(r.head).slice(0, 16)}, signed by ${shortKeyId(shown(r.key_id))}`);
      break;
    default:
      out.push(`${head}${printable(r.type)}`);
  }
  return 0;
}

/** What the launcher observed from inside, in the words of /proc/self/status. */
function layers(r: AuditRecord): string {
  const parts: string[] = [];
  const observed = r.observed as { proc_status?: Record<string, string> | null; landlock?: { abi: number; status: string; rules: number } } | null;
  const ps = observed?.proc_status;
  if (ps) {
    for (const k of ['Seccomp', 'NoNewPrivs', 'CapEff']) if (ps[k] !== undefined) parts.push(`${k} ${k === 'CapEff' && /^0+$/.test(ps[k]!) ? '0' : ps[k]}`);
  } else parts.push('not observed');
  const ll = observed?.landlock;
  if (ll) parts.push(ll.status === 'applied' ? `Landlock ABI ${ll.abi} (${ll.rules} rules)` : `Landlock ${ll.status}`);
  const l = r.layers as { cgroup?: { version: number; applied: string[] } | null; namespaces?: string[] } | undefined;
  if (l?.cgroup) parts.push(`cgroup v${l.cgroup.version}${l.cgroup.applied.length ? ` (${l.cgroup.applied.map((a) => a.split('/').pop()).join(', ')})` : ''}`);
  else if (l) parts.push('no cgroup');
  if (l?.namespaces) parts.push(`ns ${l.namespaces.join(',')}`);
  return parts.join(', ');
}

function shellLine(argv: unknown): string {
  if (!Array.isArray(argv)) return '?';
  const s = argv.map((a) => (/^[\w@%+=:,./-]+$/.test(String(a)) ? String(a) : `'${shown(a).replace(/'/g, `'\\''`)}'`)).join(' ');
  return s.length > 160 ? `${s.slice(0, 157)}...` : s;
}
