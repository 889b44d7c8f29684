/**
 * `ward probe [--policy FILE | --profile NAME] [--json] [--only GROUP|ID,...]
 *             [--allow-degraded] [--audit-log FILE] [--report DIR]`
 *
 * Runs the escape probe suite under the policy: every attack in its own fresh
 * sandbox, each checked for *how* it was refused, plus legitimate work that
 * must succeed. Every probe's run is recorded in the audit log, like `ward run`.
 *
 * Exit status: 0 only when every probe held (skipped ones aside); 1 when a
 * promise is broken or a probe could not run; 125 when Ward itself refused
 * (bad policy, a sandbox the host cannot build, no report writer).
 */
import { accessSync, constants, mkdirSync, readFileSync, statSync } from 'node:fs';
import { defaultAuditLog, keyCreatedNotice, openAudit } from '../../audit/run-log.js';
import type { PolicyInput } from '../../api.js';
import { WardError } from '../../errors.js';
import { runProbes } from '../../probes/run.js';
import { ALL_PROBES } from '../../probes/suite.js';
import { PROBE_GROUPS, type ProbeReport, type ProbeStatus } from '../../probes/types.js';
import { policyFromFlag, takeValue } from '../main.js';

const USAGE = 'ward probe [--policy FILE | --profile NAME] [--json] [--only GROUP|ID,...] [--allow-degraded] [--audit-log FILE] [--report DIR]';

export async function probe(args: string[]): Promise<number> {
  let policy: PolicyInput;
  let json = false;
  let only: string[] | undefined;
  let allowDegraded = false;
  let auditLog: string | undefined;
  let reportDir: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    switch (a) {
      case '--policy':
      case '-p':
      case '--profile':
        policy = policyFromFlag(args, i++, policy, USAGE);
        break;
      case '--json':
        json = true;
        break;
      case '--only': {
        const list = takeValue(args, i++, a, 'a list').split(',').map((s) => s.trim()).filter(Boolean);
        // An empty list selects nothing, not everything: running the whole suite is not what was asked.
        if (list.length === 0) throw new WardError('--only was given no group or probe id', { fix: `name at least one: ${PROBE_GROUPS.join(', ')}, or probe ids (\`ward probe --help\`); or drop --only to run every probe` });
        only = [...(only ?? []), ...list];
        break;
      }
      case '--allow-degraded':
        allowDegraded = true;
        break;
      case '--audit-log':
        auditLog = takeValue(args, i++, a, 'a file');
        break;
      case '--report':
        reportDir = takeValue(args, i++, a, 'a directory');
        break;
      case '--help':
      case '-h':
        process.stdout.write(`usage: ${USAGE}\ngroups: ${PROBE_GROUPS.join(', ')} (${ALL_PROBES.length} probes)\n`);
        return 0;
      default:
        throw new WardError(a.startsWith('-') ? `unknown option ${a} for ward probe` : `unexpected argument "${a}"`, { fix: USAGE });
    }
  }

  // Refusals come before any probe runs: no report writer, no log.
  const reportWriter = reportDir !== undefined ? await loadReportWriter() : undefined;
  if (reportDir !== undefined) prepareReportDir(reportDir);
  // The log is opened (and the key made on first use) before anything runs, as for `ward run`.
  const logPath = auditLog ?? defaultAuditLog();
  const audit = openAudit(auditLog, process.env, (k) => process.stderr.write(`${keyCreatedNotice(k, logPath)}\n`));

  const total = only ? undefined : ALL_PROBES.length;
  let done = 0;
  const progress = !json && process.stderr.isTTY === true;
  const report = await runProbes({
    policy,
    only,
    allowDegraded,
    audit: audit ?? false,
    onResult: progress
      ? (r) => {
          done++;
          process.stderr.write(`\r\x1b[Kprobing ${done}${total ? `/${total}` : ''} ${r.id}`);
        }
      : undefined,
  });
  if (progress) process.stderr.write('\r\x1b[K');

  if (json) {
    const { probes, summary, policy_sha256, ...rest } = report;
    process.stdout.write(`${JSON.stringify({ probes, summary, policy_sha256, ...rest }, null, 2)}\n`);
  } else {
    process.stdout.write(renderTable(report, process.stdout.isTTY === true));
  }

  if (reportDir !== undefined && reportWriter) await writeReportTo(reportWriter, reportDir, report, policy);
  return report.summary.broken === 0 && report.summary.error === 0 ? 0 : 1;
}

/** The report's directory, made (or checked) before any probe runs, so a bad path costs no run. */
function prepareReportDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    if (!statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    accessSync(dir, constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new WardError(
      code === 'EEXIST' || code === 'ENOTDIR' ? `--report ${dir}: ${dir} (or a parent of it) exists and is not a directory` : `--report ${dir}: cannot make or write the directory (${(e as Error).message})`,
      { step: 'report', fix: '--report takes a directory (report.html and report.json are written in it): name a new or writable one' },
    );
  }
}

type ReportWriter = { writeReport: (dir: string, input: unknown) => Promise<{ json: string; html: string }> };

/** The report writer (src/report) is loaded only when --report asks for it. */
async function loadReportWriter(): Promise<ReportWriter> {
  try {
    // `as string` keeps tsc from requiring the module; the literal still lets the bundler include it.
    const mod = (await import('../../report/index.js' as string)) as Partial<ReportWriter>;
    if (typeof mod.writeReport !== 'function') throw new Error('it has no writeReport');
    return mod as ReportWriter;
  } catch (e) {
    throw new WardError(`report writer not available (${(e as Error).message})`, { step: 'report', fix: 'build Ward with its report module (npm run build), or drop --report' });
  }
}

async function writeReportTo(mod: ReportWriter, dir: string, report: ProbeReport, policy: PolicyInput): Promise<void> {
  // The host's posture belongs in the report too; without the doctor the report says it has none.
  let doctor: unknown;
  try {
    const d = (await import('../../doctor/index.js' as string)) as { runDoctor: (o: { policy: PolicyInput }) => Promise<unknown> };
    doctor = await d.runDoctor({ policy });
  } catch {
    doctor = undefined;
  }
  const written = await writeOrExplain(dir, () => mod.writeReport(dir, {
    probes: report,
    ...(doctor ? { doctor } : {}),
    policy: { sha256: report.policy_sha256, canonical: report.policy_canonical ?? '', sources: report.policy_sources },
    ...(report.audit_log ? { audit: { log: report.audit_log, ...auditHead(report.audit_log) } } : {}),
  }));
  process.stderr.write(`ward: report written to ${written.html} and ${written.json}\n`);
}

async function writeOrExplain<T>(dir: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (e) {
    throw new WardError(`the report could not be written to ${dir}: ${(e as Error).message}`, { step: 'report', fix: 'check that the directory is writable and has space; the probe results are in the audit log' });
  }
}

/** The signed head beside the log (`FILE.head`), as the report names it; nothing if unreadable. */
function auditHead(log: string): { head?: { seq: number; hash: string; signature?: string; key_id?: string } } {
  try {
    const h = JSON.parse(readFileSync(`${log}.head`, 'utf8')) as { size: number; head: string; sig?: string; key_id?: string };
    return { head: { seq: h.size - 1, hash: h.head, ...(h.sig ? { signature: h.sig } : {}), ...(h.key_id ? { key_id: h.key_id } : {}) } };
  } catch {
    return {};
  }
}

const MARK: Record<ProbeStatus, string> = { held: '✓ held  ', broken: '✗ BROKEN', error: '! error ', skipped: '- skipped' };

export function renderTable(report: ProbeReport, color = false): string {
  const paint = (s: string, status: ProbeStatus) =>
    !color ? s : status === 'broken' ? `\x1b[1;31m${s}\x1b[0m` : status === 'error' ? `\x1b[33m${s}\x1b[0m` : status === 'held' ? `\x1b[32m${s}\x1b[0m` : `\x1b[2m${s}\x1b[0m`;
  const idWidth = Math.max(...report.probes.map((p) => p.id.length), 10);
  const lines: string[] = [];
  const h = report.host;
  lines.push(`ward probe: ${report.probes.length} probes, policy ${report.policy_sources.join(' + ') || '(policy object)'} (sha256 ${report.policy_sha256.slice(0, 16)}...)`);
  lines.push(`host: Linux ${h.kernel} ${h.arch}, uid ${h.uid}, Landlock ABI ${h.landlock_abi ?? 'none'}, cgroup ${h.cgroup}${report.allow_degraded ? ', degraded runs allowed' : ''}`);
  for (const group of PROBE_GROUPS) {
    const rows = report.probes.filter((p) => p.group === group);
    if (rows.length === 0) continue;
    const held = rows.filter((p) => p.status === 'held').length;
    lines.push('', `${group} (${held}/${rows.length} held)`);
    for (const p of rows) {
      const detail = p.status === 'held' ? shorten(p.detail, 100) : p.detail;
      lines.push(`  ${paint(MARK[p.status], p.status)}  ${p.id.padEnd(idWidth)}  ${p.mechanism.padEnd(15)}  ${p.status === 'held' || p.status === 'skipped' ? detail : p.title}`);
      if (p.status === 'broken' || p.status === 'error') lines.push(`  ${' '.repeat(10)}${paint(p.status === 'broken' ? 'PROMISE BROKEN: ' : 'could not run: ', p.status)}${detail}`);
    }
  }
  const s = report.summary;
  lines.push('');
  const broken = report.probes.filter((p) => p.status === 'broken');
  if (broken.length > 0) {
    lines.push(paint(`✗ ${broken.length} PROMISE${broken.length > 1 ? 'S' : ''} BROKEN: ${broken.map((p) => p.id).join(', ')}`, 'broken'));
  }
  lines.push(`summary: ${s.held} held, ${paint(`${s.broken} broken`, s.broken > 0 ? 'broken' : 'held')}, ${paint(`${s.error} error`, s.error > 0 ? 'error' : 'held')}, ${s.skipped} skipped (${elapsed(report)})`);
  if (s.broken === 0 && s.error === 0) lines.push('every probe held: each attack was refused by the mechanism expected, and the legitimate work ran.');
  return `${lines.join('\n')}\n`;
}

function shorten(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 3)}...` : s;
}

function elapsed(r: ProbeReport): string {
  const ms = Date.parse(r.finished) - Date.parse(r.started);
  return Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)}s` : '?';
}

