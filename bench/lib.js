// What the benchmarks (bench/run.js, bench/egress.js) share: option parsing,
// child processes that never hang, scratch directories, statistics, the
// seeded case order, the machine description, srt's installation and the
// parts of the report that read alike. One copy, so that the two benchmarks
// cannot drift apart in how they time, order or summarise their samples.
//
// Only Node built-ins: bench/egress.js copies itself (not this file) into a
// sandbox's workspace as its client, and imports this file only in its main role.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// ---------------------------------------------------------------------------
// Clock and messages
// ---------------------------------------------------------------------------

export const now = () => process.hrtime.bigint();
export const msSince = (t0) => Number(now() - t0) / 1e6;

// Progress goes to stderr, so that stdout carries only the Markdown report.
export const log = (s) => process.stderr.write(`bench: ${s}\n`);

/** A usage or precondition error: exit 2, before anything was measured. Usable as an expression (`x ?? die(...)`). */
export function die(msg) {
  console.error(`bench: ${msg}`);
  process.exit(2);
}

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

/** A flag's value as a whole number >= 0; anything else (a missing value too) is a usage error. */
export function wholeNumber(v, flag) {
  const x = Number(v);
  if (!Number.isInteger(x) || x < 0) die(`${flag} needs a whole number, got ${v}`);
  return x;
}

/** Prints the script's header comment (its documentation, after the #! line) and exits 0. */
export function printHelp(scriptUrl) {
  const lines = readFileSync(fileURLToPath(scriptUrl), 'utf8').split('\n').slice(1);
  console.log(lines.slice(0, lines.findIndex((l) => !l.startsWith('//'))).map((l) => l.slice(3)).join('\n'));
  process.exit(0);
}

/** Where srt is (or gets) installed: outside the repo, and kept between runs (installing it takes a while). */
export const SRT_DIR = '/tmp/ward-bench-srt';

// The flags both benchmarks take, with the same meaning (each documents them in its header).
export const commonFlags = {
  '--n': { key: 'n', whole: 1 },
  '--warmup': { key: 'warmup', whole: 0 },
  '--no-srt': { key: 'srt', set: false },
  '--srt-dir': { key: 'srtDir', path: 'a directory' },
  '--out': { key: 'out', path: 'a file' },
};

/**
 * Reads argv into `o` (the defaults; changed in place and returned) by a table of flags:
 *   { key, whole: MIN }   takes a whole number; one below MIN counts as MIN
 *   { key, set: VALUE }   takes nothing; sets key to VALUE
 *   { key, path: WHAT }   takes a path, resolved against the working directory
 * `--help` / `-h` prints the header comment of scriptUrl (the script's import.meta.url).
 * A table rather than if/else chains: each script lists only what is its own.
 */
export function parseOptions(argv, o, flags, scriptUrl) {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const f = Object.hasOwn(flags, a) ? flags[a] : null;
    if (a === '--help' || a === '-h') printHelp(scriptUrl);
    else if (!f) die(`unknown option ${a} (see --help)`);
    else if ('whole' in f) o[f.key] = Math.max(f.whole, wholeNumber(argv[++i], a));
    else if ('set' in f) o[f.key] = f.set;
    else o[f.key] = path.resolve(argv[++i] ?? die(`${a} needs ${f.path}`));
  }
  return o;
}

// ---------------------------------------------------------------------------
// Never hang, leave nothing behind
// ---------------------------------------------------------------------------

/**
 * A ceiling on the whole run (exit 3), and cleanup on Ctrl-C / SIGTERM (exit 130): a
 * benchmark left unattended must end, and must not leave sandboxes, helpers or
 * scratch directories behind.
 */
export function neverHang(timeoutMs, cleanup) {
  setTimeout(() => {
    console.error(`bench: gave up after ${timeoutMs / 60_000} minutes`);
    cleanup();
    process.exit(3);
  }, timeoutMs).unref();
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      cleanup();
      process.exit(130);
    });
  }
}

/** Scratch directories under the OS temp dir: make(prefix) one, removeAll() at the end (or on the way out). */
export function scratchDirs() {
  const dirs = [];
  return {
    make(prefix) {
      const d = mkdtempSync(path.join(os.tmpdir(), prefix));
      dirs.push(d);
      return d;
    },
    removeAll() {
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    },
  };
}

/**
 * Spawns cmd and resolves, at exit with stdio closed, { ms, code, signal, stdout, stderr }
 * (ms from before spawn(): run.js's samples are these). Never rejects, never hangs: killed
 * at timeoutMs, and given up on 5 s after exit if something still holds its stdio open.
 * stdoutLimit: keep only the first bytes of stdout (enough for error messages) and drain
 * the rest. children: a Set the child is in while it runs, for the caller to kill on the way out.
 */
export function spawnTimed(cmd, args, { cwd, env, timeoutMs, stdoutLimit = Infinity, children } = {}) {
  return new Promise((resolve) => {
    const t0 = now();
    const out = [];
    const err = [];
    let kept = 0;
    let child;
    let late;
    const done = (code, signal, error) => {
      const ms = msSince(t0);
      clearTimeout(late);
      children?.delete(child);
      resolve({ ms, code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: error ?? Buffer.concat(err).toString('utf8') });
    };
    try {
      child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    } catch (e) {
      done(null, null, e.message);
      return;
    }
    children?.add(child);
    child.stdout.on('data', (c) => {
      if (kept < stdoutLimit) out.push(c), (kept += c.length);
    });
    child.stderr.on('data', (c) => err.push(c));
    child.on('error', (e) => done(null, null, e.message));
    child.on('close', (code, signal) => done(code, signal));
    child.on('exit', (code, signal) => (late = setTimeout(() => done(code ?? null, signal ?? 'stdio-held-open'), 5000)).unref());
  });
}

/** A spawnTimed result that failed, in one line: the exit and the end of stderr. */
export function shortErr(r) {
  const text = (r.stderr ?? '').trim();
  return `exit ${r.code ?? r.signal}${text ? `: ${text.split('\n').slice(-4).join(' / ').slice(0, 600)}` : ''}`;
}

/** A promise with a deadline (rejects with "WHAT: no result after MS ms"). */
export function withTimeout(p, ms, what) {
  let timer;
  return Promise.race([p, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no result after ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

/** Median; the mean of the two middle values for an even count. */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile (an actual sample, never an interpolation); null for no samples. */
export function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] : null;
}

export function stats(xs) {
  return { n: xs.length, median: median(xs), p90: pct(xs, 90), min: Math.min(...xs), max: Math.max(...xs) };
}

// ---------------------------------------------------------------------------
// Case order
// ---------------------------------------------------------------------------

/**
 * A shuffle with a fixed seed (a small LCG), for the order of the cases in each round:
 * no case always follows the same one (a slow phase of a noisy machine, or state one case
 * leaves warm, hits every case alike), and two runs use the same orders. Each call
 * returns a shuffle with a sequence of its own.
 */
export function seededShuffle(seed = 0x5eed) {
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  return (xs) => {
    const a = [...xs];
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  };
}

// ---------------------------------------------------------------------------
// The machine
// ---------------------------------------------------------------------------

/** The first line a command prints, or null if it fails (for versions and the like). */
export function firstLine(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? `${r.stdout}${r.stderr}`.trim().split('\n')[0] : null;
}

/** Uncommitted changes to what dist/ and build/ are made from (then dist/ may not be HEAD); null outside git. */
export function treeDirty(root) {
  const r = spawnSync('git', ['-C', root, 'status', '--porcelain', '--', 'src', 'bin', 'scripts', 'package.json'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() !== '' : null;
}

/** The load average (1/5/15 min), recorded at the start and the end: how busy the machine was. */
export const loadavg = () => os.loadavg().map((x) => Number(x.toFixed(2)));

/** What the numbers were measured on; `extra` (e.g. tool versions) goes after the kernel. */
export function machineInfo(root, extra = {}) {
  return {
    date: new Date().toISOString(),
    nproc: Number(firstLine('nproc', [])) || os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    kernel: os.release(),
    ...extra,
    node: process.version,
    uid: process.getuid?.() ?? null,
    ward_commit: firstLine('git', ['-C', root, 'rev-parse', '--short', 'HEAD']),
    ward_tree_dirty: treeDirty(root),
    loadavg_start: loadavg(),
  };
}

// ---------------------------------------------------------------------------
// srt (@anthropic-ai/sandbox-runtime), the sandbox Ward is compared with
// ---------------------------------------------------------------------------

export const SRT_PKG = '@anthropic-ai/sandbox-runtime';

/**
 * srt as installed under dir, installing it there with npm first if it is not (outside
 * the repo: it is no dependency of Ward's). Resolves { version, bin (the CLI), index (the library) }.
 */
export async function ensureSrt(dir, { children } = {}) {
  const pkgDir = path.join(dir, 'node_modules', ...SRT_PKG.split('/'));
  if (!existsSync(path.join(pkgDir, 'package.json'))) {
    log(`installing ${SRT_PKG} into ${dir} (outside the repo)`);
    // Not recursive: the parent must exist (and Node 20's recursive mkdir can spin forever on /proc paths).
    if (!existsSync(dir)) mkdirSync(dir);
    const r = await spawnTimed('npm', ['install', '--prefix', dir, '--no-audit', '--no-fund', '--loglevel=error', SRT_PKG], { cwd: dir, timeoutMs: 5 * 60_000, children });
    if (r.code !== 0) throw new Error(`npm install --prefix ${dir} ${SRT_PKG} failed: ${shortErr(r)}`);
  }
  const pkg = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  return {
    version: pkg.version,
    bin: path.join(pkgDir, typeof pkg.bin === 'string' ? pkg.bin : pkg.bin.srt),
    index: path.join(pkgDir, pkg.main ?? 'dist/index.js'),
  };
}

/**
 * srt settings that leave the filesystem as open as srt allows (no writes, nothing
 * hidden) and the network closed but for allowedDomains: what both benchmarks compare
 * Ward with (shared/design/srt.md, section 5).
 */
export function srtSettings(allowedDomains = []) {
  return { network: { allowedDomains, deniedDomains: [] }, filesystem: { denyRead: [], allowWrite: [], denyWrite: [] } };
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

/**
 * A Markdown table: the header, the alignment row (the first column left, the others
 * right, as numbers are; or as `align` says, an 'l' or 'r' a column), a line a row. A
 * row shorter than the header (a case with no result) is filled out with '—'.
 */
export function mdTable(header, rows, align = `l${'r'.repeat(header.length - 1)}`) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  const rule = `|${[...align].map((a) => (a === 'r' ? '---:' : '---')).join('|')}|`;
  return [line(header), rule, ...rows.map((r) => line([...r, ...Array(Math.max(0, header.length - r.length)).fill('—')]))];
}

/** A row a case, in the cases' order: its label, then cellsOf(its result, the case); only the label for a case with no result. */
export function caseRows(cases, results, cellsOf) {
  return cases.map((c) => (results[c.key] ? [c.label, ...cellsOf(results[c.key], c)] : [c.label]));
}

/** The "### Targets" section: each { name, shown, met } (met null: not measured). */
export function targetsTable(targets) {
  const met = (t) => (t.met === null ? 'not measured' : t.met ? 'met' : '**not met**');
  return ['### Targets', '', ...mdTable(['Target', 'Measured', 'Met'], targets.map((t) => [t.name, t.shown, met(t)]), 'lrl'), ''];
}

/** One line per case dropped mid-run (case -> why), then a blank line; nothing if none was. */
export function droppedLines(errors) {
  const lines = Object.entries(errors).map(([k, e]) => `- dropped \`${k}\`: ${e}`);
  return lines.length ? [...lines, ''] : [];
}

/** Writes the raw results (JSON, `indent` spaces deep) to file, its directory made as needed, and says where. */
export function saveRaw(file, data, indent) {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(data, null, indent)}\n`);
  log(`raw samples: ${path.relative(process.cwd(), file) || file}`);
}
