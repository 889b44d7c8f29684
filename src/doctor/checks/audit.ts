/**
 * The evidence's own protection: the key that signs audit checkpoints, and the
 * directory the audit log lives in. A key others can read lets them sign a
 * forged log; a log directory others can write lets them replace the log.
 * Both live outside every sandbox (the mandatory deny list covers them); these
 * checks are about the *host's* other users and processes.
 */
import { readdirSync, type Stats } from 'node:fs';
import path from 'node:path';
import { keyPaths } from '../../audit/keys.js';
import { defaultAuditLog } from '../../audit/run-log.js';
import { stateDir } from '../../paths.js';
import { isGroupWritable, isWorldWritable, lstatOrNull, octal, statOrNull, worldWritableReasons } from '../files.js';
import type { Check, Outcome, Severity } from '../types.js';

const owner = (st: Stats) => `owner uid ${st.uid}`;

export const auditKeyCheck: Check = {
  id: 'keys.audit-key',
  title: 'the audit signing key exists, is yours and is private (0600)',
  severity: 'high',
  run(ctx) {
    const { dir: keyDir, privateKey: key, publicKey: pub } = keyPaths(ctx.env);
    const lst = lstatOrNull(key);
    if (!lst) {
      return {
        status: 'warn',
        severity: 'medium',
        evidence: `no key at ${key}`,
        fix: 'create one: `ward keys init` (Ed25519, written with mode 0600)',
        degrades: 'signed audit checkpoints: the hash chain still shows edits, but nothing shows that a whole log was rewritten',
      };
    }
    const problems: string[] = [];
    const fixes: string[] = [];
    if (lst.isSymbolicLink()) {
      problems.push(`${key} is a symlink`);
      fixes.push(`replace the link with the key file itself`);
    }
    const st = statOrNull(key);
    if (!st || !st.isFile()) {
      return { status: 'fail', evidence: `${key} is not a regular file`, fix: 'move it away and run `ward keys init`', degrades: 'signed audit checkpoints' };
    }
    if (st.uid !== ctx.uid) {
      problems.push(`${owner(st)}, not ${ctx.uid}`);
      fixes.push(`\`chown ${ctx.uid} ${key}\` (or \`ward keys init --force\` as the right user)`);
    }
    if ((st.mode & 0o077) !== 0) {
      problems.push(`mode ${octal(st.mode)}: ${(st.mode & 0o044) !== 0 ? 'readable' : 'accessible'} by ${(st.mode & 0o004) !== 0 ? 'every user' : 'its group'}, who could sign forged checkpoints`);
      fixes.push(`\`chmod 600 ${key}\`, and rotate it (\`ward keys init --force\`) if others may have read it`);
    }
    const dir = statOrNull(keyDir);
    if (dir && (isWorldWritable(dir) || isGroupWritable(dir))) {
      problems.push(`${keyDir} is writable by ${isWorldWritable(dir) ? 'every user' : 'its group'} (mode ${octal(dir.mode)}): the key can be replaced`);
      fixes.push(`\`chmod 700 ${keyDir}\``);
    }
    const pst = statOrNull(pub);
    if (pst && (isWorldWritable(pst) || isGroupWritable(pst))) {
      problems.push(`${pub} is writable by ${isWorldWritable(pst) ? 'every user' : 'its group'} (mode ${octal(pst.mode)}): a verifier on this host could be handed another key`);
      fixes.push(`\`chmod 644 ${pub}\``);
    }
    for (const r of worldWritableReasons(keyDir)) {
      if (r.path === keyDir) continue;
      problems.push(r.why);
      fixes.push(`keep ${keyDir} under a directory only you can write`);
    }
    if (problems.length) {
      return { status: 'fail', evidence: `${key}: ${problems.join('; ')}`, fix: fixes.join('; '), degrades: 'trustworthy signatures on audit checkpoints' };
    }
    return { status: 'pass', evidence: `${key}: mode ${octal(st.mode)}, ${owner(st)}${pst ? `; public half ${pub}` : `; no ${pub} (verifiers need it: \`ward keys init\` writes it)`}` };
  },
};

/** Regular files under dir, two levels deep (logs may be grouped by day or session). */
function filesUnder(dir: string, depth = 2): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const n of names) {
    const p = path.join(dir, n);
    const st = lstatOrNull(p);
    if (!st) continue;
    if (st.isFile()) out.push(p);
    else if (st.isDirectory() && depth > 1) out.push(...filesUnder(p, depth - 1));
  }
  return out;
}

const RANK: Record<Severity, number> = { critical: 4, high: 3, medium: 2, low: 1, info: 0 };

export const auditLogCheck: Check = {
  id: 'audit.log',
  title: 'the audit log directory (~/.local/state/ward) is 0700 and its files 0600, yours alone',
  severity: 'critical',
  run(ctx) {
    const dir = stateDir(ctx.env);
    const log = defaultAuditLog(ctx.env);
    const st = statOrNull(dir);
    if (!st) {
      const above = worldWritableReasons(dir);
      if (above.length) {
        return { status: 'fail', evidence: `${dir} does not exist yet, and ${above.map((r) => r.why).join('; ')}`, fix: `create it private first: \`mkdir -p -m 700 ${dir}\` under a directory only you can write`, degrades: 'a tamper-evident audit log' };
      }
      return { status: 'info', evidence: `no audit log yet: Ward will create ${log} in ${dir} (mode 0700) on first use` };
    }
    if (!st.isDirectory()) return { status: 'fail', evidence: `${dir} is not a directory`, fix: `move it away; Ward creates ${dir} itself`, degrades: 'the audit log' };

    const findings: { severity: Severity; what: string; fix: string }[] = [];
    const add = (severity: Severity, what: string, fix: string) => findings.push({ severity, what, fix });
    if (st.uid !== ctx.uid) add('high', `${dir} is owned by uid ${st.uid}, not ${ctx.uid}`, `\`chown -R ${ctx.uid} ${dir}\``);
    if (isWorldWritable(st)) add('critical', `${dir} is writable by every user (mode ${octal(st.mode)}): anyone can replace or delete the log`, `\`chmod 700 ${dir}\``);
    else if (isGroupWritable(st)) add('high', `${dir} is writable by its group (mode ${octal(st.mode)})`, `\`chmod 700 ${dir}\``);
    else if ((st.mode & 0o077) !== 0) add('low', `${dir} is readable by others (mode ${octal(st.mode)}): the log names commands, paths and policies`, `\`chmod 700 ${dir}\``);
    for (const r of worldWritableReasons(dir)) if (r.path !== dir) add('critical', r.why, `move ${dir} (XDG_STATE_HOME) under a directory only you can write`);

    const files = filesUnder(dir);
    for (const f of files) {
      const fst = statOrNull(f);
      if (!fst) continue;
      if (fst.uid !== ctx.uid) add('high', `${f} is owned by uid ${fst.uid}`, `\`chown ${ctx.uid} ${f}\``);
      if (isWorldWritable(fst)) add('critical', `${f} is writable by every user (mode ${octal(fst.mode)})`, `\`chmod 600 ${f}\``);
      else if (isGroupWritable(fst)) add('high', `${f} is writable by its group (mode ${octal(fst.mode)})`, `\`chmod 600 ${f}\``);
      else if ((fst.mode & 0o077) !== 0) add('low', `${f} is readable by others (mode ${octal(fst.mode)})`, `\`chmod 600 ${f}\``);
    }
    const summary = `${dir}: mode ${octal(st.mode)}, owner uid ${st.uid}; ${files.length} file${files.length === 1 ? '' : 's'}${files.includes(log) ? ` (the default log ${path.basename(log)} among them)` : ''}`;
    if (findings.length === 0) return { status: 'pass', evidence: `${summary}${files.length ? ', all private' : ''}` };
    const worst = findings.reduce((a, b) => (RANK[b.severity] > RANK[a.severity] ? b : a));
    const outcome: Outcome = {
      status: RANK[worst.severity] >= RANK.high ? 'fail' : 'warn',
      severity: worst.severity,
      evidence: `${summary}; ${findings.map((x) => x.what).join('; ')}`,
      fix: [...new Set(findings.map((x) => x.fix))].join('; '),
    };
    if (outcome.status === 'fail') outcome.degrades = 'a tamper-evident audit log: others on this host can change or remove it';
    return outcome;
  },
};
