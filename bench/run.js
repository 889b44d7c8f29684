#!/usr/bin/env node
// Ward's overhead benchmark: `npm run build && npm run bench`.
//
// Measures, in one run on one machine, the wall time from spawn (or library
// call) to the end of the process (exit + stdio closed), for:
//   bare /bin/true, bare bwrap with Ward's namespaces, `ward run true` (CLI),
//   Ward's library (run() with a prepared policy; launch() with a compiled plan),
//   the same with Landlock off (what the layer costs), a warm pool's pool.run() (src/pool/;
//   the pool refilled before each sample, not counted: bench/pool.js measures it in depth), and
//   @anthropic-ai/sandbox-runtime (srt) CLI and library, installed under /tmp;
// then a real build (tsc of Ward itself) bare vs inside Ward.
//
// Cases are interleaved (each round runs every case once, in a shuffled order),
// so a slow phase of a noisy machine hits every case alike: compare ratios
// within one run, not absolute numbers across runs.
//
// Options:
//   --n N           samples per micro case (default 30)
//   --warmup N      warm-up calls per micro case, not recorded (default 3)
//   --build-n N     samples per build case (default 5)
//   --gap MS        idle time before each micro sample, not counted (default 100):
//                   an agent's commands are not back to back, and kernel state
//                   (e.g. the cgroup v1 migration lock's RCU fast path) that a
//                   previous launch left warm would make the next one look cheaper
//   --no-srt        skip srt      --no-build   skip the build comparison
//   --srt-dir DIR   where srt is (or gets) installed (default /tmp/ward-bench-srt)
//   --out FILE      raw samples (default bench/results/latest.json)
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  SRT_DIR, caseRows, commonFlags, die, droppedLines, ensureSrt, firstLine, loadavg, log, machineInfo, mdTable, msSince, now, neverHang,
  parseOptions, saveRaw, scratchDirs, seededShuffle, shortErr, spawnTimed, srtSettings, stats, targetsTable, treeDirty, withTimeout,
} from './lib.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

const opts = parseOptions(
  process.argv.slice(2),
  { n: 30, warmup: 3, buildN: 5, gapMs: 100, srt: true, build: true, srtDir: SRT_DIR, out: path.join(here, 'results', 'latest.json') },
  { ...commonFlags, '--build-n': { key: 'buildN', whole: 1 }, '--gap': { key: 'gapMs', whole: 0 }, '--no-build': { key: 'build', set: false } },
  import.meta.url,
);

const MICRO_TIMEOUT_MS = 30_000;
const BUILD_TIMEOUT_MS = 10 * 60_000;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

const scratch = scratchDirs();
const tempDir = (prefix) => scratch.make(prefix);
let srtWorker = null;
let pool = null; // the warm pool of the ward_pool_run case
function cleanup() {
  void pool?.close();
  if (srtWorker && srtWorker.exitCode === null) srtWorker.kill('SIGKILL');
  scratch.removeAll();
}
// Never hang: the whole run has a ceiling, and every step below its own timeout.
neverHang(40 * 60_000, cleanup);

/** Spawn, wait for exit and closed stdio (the sample); stdout only for error messages. Never hangs. */
const timedSpawn = (cmd, args, { timeoutMs = MICRO_TIMEOUT_MS, ...o } = {}) => spawnTimed(cmd, args, { ...o, timeoutMs, stdoutLimit: 65536 });

const f1 = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const fx = (x) => `${x.toFixed(2)}×`;

// ---------------------------------------------------------------------------
// Preconditions and machine
// ---------------------------------------------------------------------------

const distIndex = path.join(root, 'dist', 'index.js');
if (!existsSync(distIndex) || !existsSync(path.join(root, 'dist', 'sandbox', 'launch.js'))) die('Ward is not built: run `npm run build` first');
const ward = await import(pathToFileURL(distIndex).href);
const { launch } = await import(pathToFileURL(path.join(root, 'dist', 'sandbox', 'launch.js')).href);
const wardBin = path.join(root, 'bin', 'ward.js');
const node = process.execPath;
const bwrapBin = firstLine('sh', ['-c', 'command -v bwrap']) ?? die('bwrap is not installed (apt-get install -y bubblewrap)');

const machine = machineInfo(root, { bwrap: firstLine(bwrapBin, ['--version']) });

// ---------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------

const ws = tempDir('ward-bench-ws-');
const errors = {}; // case -> why it was dropped
const notes = [];

const BWRAP_ARGS = [
  '--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-net', '--unshare-cgroup',
  '--die-with-parent', '--new-session', '--cap-drop', 'ALL',
  '--ro-bind', '/usr', '/usr', '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64', '--symlink', 'usr/bin', '/bin',
  '--proc', '/proc', '--dev', '/dev', '--', '/bin/true',
];

const spawnCase = (cmd, args, cwd = ws) => async () => {
  const r = await timedSpawn(cmd, args, { cwd });
  if (r.code !== 0) throw new Error(shortErr(r));
  return r.ms;
};

// Ward's library, in this process.
const prepared = ward.preparePolicy({ profile: 'default' }, { workspace: ws });
const preparedNoLandlock = ward.preparePolicy({ policy: { extends: ['default'], sandbox: { landlock: 'off' } } }, { workspace: ws });
const plan = ward.compile({ profile: 'default' }, { workspace: ws });
const planNoLandlock = ward.compile({ policy: { extends: ['default'], sandbox: { landlock: 'off' } } }, { workspace: ws });
const planNoCgroup = ward.compile({ policy: { extends: ['default'], resources: { memory: 'unlimited', pids: 'unlimited' } } }, { workspace: ws });

const observed = {}; // case -> what the launcher reported from inside (checked once)
function checkWard(name, r, wantLandlock) {
  if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode} (${r.reason}): ${r.stderr.toString('utf8').trim().slice(0, 400)}`);
  const ll = r.launch.observed?.landlock;
  if (!ll) throw new Error('the launcher did not report what was in force');
  if (wantLandlock && ll.status !== 'applied') throw new Error(`Landlock was expected on, the launcher says ${ll.status}`);
  if (!wantLandlock && ll.status !== 'off') throw new Error(`Landlock was expected off, the launcher says ${ll.status}`);
  observed[name] ??= { landlock: ll.status, landlock_abi: ll.abi, landlock_rules: ll.rules, cgroup: r.launch.layers.cgroup, degraded: r.launch.degraded, seccomp_instructions: r.launch.layers.seccomp.instructions };
}
// Ward records every run() and `ward run` in an audit log. The bench keeps that cost but
// writes to a log of its own (outside the workspace, removed at the end), not the user's.
const auditLog = path.join(tempDir('ward-bench-audit-'), 'audit.jsonl');
const cliHelp = spawnSync(node, [wardBin, '--help'], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '';
const cliAudit = cliHelp.includes('--audit-log') ? ['--audit-log', auditLog] : [];
const wardRun = (name, policy, wantLandlock, audit = auditLog) => async () => {
  const ac = new AbortController();
  const t0 = now();
  const r = await withTimeout(ward.run(policy, ['true'], { workspace: ws, stdin: 'ignore', signal: ac.signal, audit }), MICRO_TIMEOUT_MS, name).catch((e) => {
    ac.abort();
    throw e;
  });
  const ms = msSince(t0);
  checkWard(name, r, wantLandlock);
  return ms;
};
const wardLaunch = (name, p, wantLandlock) => async () => {
  const t0 = now();
  const h = launch(p, ['true'], { stdin: 'ignore' });
  const r = await withTimeout(h.result, MICRO_TIMEOUT_MS, name).catch((e) => {
    h.kill();
    throw e;
  });
  const ms = msSince(t0);
  checkWard(name, r, wantLandlock);
  return ms;
};

// The Ward CLI entry point, but exiting as soon as the command's result is in:
// shows how much of the CLI's time is spent after the command ended (a diagnostic,
// not a way to run Ward).
const cliEntry = ['ward.mjs', 'cli/main.js'].map((f) => path.join(root, 'dist', f)).find((f) => existsSync(f));
const cliExitAtResult = `import(${JSON.stringify(pathToFileURL(cliEntry).href)}).then(async (m) => process.exit(await m.main(process.argv.slice(1))))`;

const cases = [
  { key: 'true', label: 'bare `/bin/true`', group: 'base', fn: spawnCase('/bin/true', []) },
  { key: 'bwrap', label: 'bare bwrap (Ward\'s namespaces) `/bin/true`', group: 'base', fn: spawnCase(bwrapBin, BWRAP_ARGS) },
  { key: 'node', label: '`node -e 0` (Node startup, for reference)', group: 'base', fn: spawnCase(node, ['-e', '0']) },
  { key: 'ward_lib_run', label: 'Ward library `run()` (prepared policy), per call', group: 'ward', fn: wardRun('ward_lib_run', prepared, true) },
  { key: 'ward_lib_launch', label: 'Ward library `launch(plan)` (compiled plan), per call', group: 'ward', fn: wardLaunch('ward_lib_launch', plan, true) },
  { key: 'ward_lib_run_noaudit', label: 'Ward `run()`, audit log off (diagnostic)', group: 'ward', fn: wardRun('ward_lib_run_noaudit', prepared, true, false) },
  { key: 'ward_lib_run_nolandlock', label: 'Ward `run()`, Landlock off', group: 'ward', fn: wardRun('ward_lib_run_nolandlock', preparedNoLandlock, false) },
  { key: 'ward_lib_launch_nolandlock', label: 'Ward `launch(plan)`, Landlock off', group: 'ward', fn: wardLaunch('ward_lib_launch_nolandlock', planNoLandlock, false) },
  { key: 'ward_lib_launch_nocgroup', label: 'Ward `launch(plan)`, no cgroup limits (diagnostic)', group: 'ward', fn: wardLaunch('ward_lib_launch_nocgroup', planNoCgroup, true) },
  { key: 'ward_cli', label: '`ward run --profile default -- true` (CLI)', group: 'ward', fn: spawnCase(node, [wardBin, 'run', '--profile', 'default', ...cliAudit, '--workspace', ws, '--', 'true']) },
  { key: 'ward_cli_exit_at_result', label: 'Ward CLI, exiting at the result (diagnostic)', group: 'ward', fn: spawnCase(node, ['-e', cliExitAtResult, 'run', '--profile', 'default', ...cliAudit, '--workspace', ws, '--', 'true']) },
];

// A warm pool (issue #6): the sandbox is built before the command is asked for.
pool = typeof ward.createPool === 'function' ? ward.createPool({ policy: prepared, size: 2, workspace: ws, audit: auditLog }) : null;
if (pool) {
  cases.push({
    key: 'ward_pool_run',
    label: 'Ward `pool.run()`, warm pool of 2, per call',
    group: 'ward',
    fn: async () => {
      await withTimeout(pool.ready(), MICRO_TIMEOUT_MS, 'pool refill'); // not counted: see bench/pool.js
      const t0 = now();
      const r = await withTimeout(pool.run(['true']), MICRO_TIMEOUT_MS, 'pool.run');
      const ms = msSince(t0);
      checkWard('ward_pool_run', r, true);
      return ms;
    },
  });
}

// ---------------------------------------------------------------------------
// srt
// ---------------------------------------------------------------------------

let srt = { available: false, version: null, error: null, initMs: null };

async function setupSrt() {
  const { version, bin, index } = await ensureSrt(opts.srtDir);
  srt.version = version;
  // No network, no writes, nothing hidden: srt's most permissive filesystem and most
  // closed network, as measured in shared/design/srt.md (section 5).
  const settings = path.join(tempDir('ward-bench-srtcfg-'), 'srt-settings.json');
  writeFileSync(settings, JSON.stringify(srtSettings([])));
  notes.push(`srt ${srt.version} settings: ${readFileSync(settings, 'utf8')}`);

  // The CLI. Arguments are separate words (srt quotes them into one shell word).
  const cliArgs = [bin, '--settings', settings, 'true'];
  const probe = await timedSpawn(node, cliArgs, { cwd: ws });
  if (probe.code !== 0) throw new Error(`\`srt --settings FILE true\` failed: ${shortErr(probe)}`);
  cases.push({ key: 'srt_cli', label: `srt ${srt.version} CLI \`srt true\``, group: 'srt', fn: spawnCase(node, cliArgs) });

  // The library, in a worker process of its own.
  srtWorker = spawn(node, [path.join(here, 'srt-lib-worker.js'), index, settings], { cwd: ws, stdio: ['pipe', 'pipe', 'pipe'] });
  const stderr = [];
  srtWorker.stderr.on('data', (c) => stderr.push(c));
  const lines = createInterface({ input: srtWorker.stdout });
  const pending = [];
  const queue = [];
  lines.on('line', (l) => {
    let msg;
    try {
      msg = JSON.parse(l);
    } catch {
      return; // not ours (a library log line)
    }
    const w = pending.shift();
    if (w) w(msg);
    else queue.push(msg);
  });
  srtWorker.on('exit', () => {
    for (const w of pending.splice(0)) w({ error: `srt worker exited: ${Buffer.concat(stderr).toString('utf8').trim().slice(-600)}` });
  });
  const next = () => (queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => pending.push(r)));
  const ready = await withTimeout(next(), MICRO_TIMEOUT_MS, 'srt initialize()');
  if (!ready.ready) throw new Error(`srt library initialize() failed: ${ready.error}`);
  srt.initMs = ready.initMs;
  const call = async () => {
    srtWorker.stdin.write('call\n');
    const m = await withTimeout(next(), MICRO_TIMEOUT_MS, 'srt library call');
    if (m.error) throw new Error(m.error);
    if (m.code !== 0) throw new Error(`exit ${m.code}: ${m.stderr ?? ''}`);
    return m.ms;
  };
  const first = await call().catch((e) => e);
  if (first instanceof Error) throw new Error(`srt library wrapWithSandbox('true') + spawn failed: ${first.message}`);
  cases.push({ key: 'srt_lib', label: `srt ${srt.version} library: wrapWithSandbox + spawn + cleanup, per call`, group: 'srt', fn: call });
  srt.available = true;
}

async function stopSrt() {
  if (!srtWorker || srtWorker.exitCode !== null) return;
  const exited = new Promise((r) => srtWorker.once('exit', r));
  srtWorker.stdin.end('quit\n');
  await withTimeout(exited, 10_000, 'srt worker exit').catch(() => srtWorker.kill('SIGKILL'));
}

if (opts.srt) {
  try {
    await setupSrt();
  } catch (e) {
    srt.error = e.message;
    log(`srt not measured: ${e.message}`);
    await stopSrt();
  }
} else srt.error = 'skipped (--no-srt)';

// ---------------------------------------------------------------------------
// Micro benchmark: warm-ups, then N rounds, each case once per round
// ---------------------------------------------------------------------------

const samples = Object.fromEntries(cases.map((c) => [c.key, []]));
const live = new Set(cases.map((c) => c.key));

async function sample(c) {
  try {
    return await c.fn();
  } catch (e) {
    errors[c.key] = e.message;
    live.delete(c.key);
    log(`${c.key} dropped: ${e.message}`);
    return null;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// A fixed-seed shuffle per round: no case always follows the same one, and runs are comparable.
const shuffled = seededShuffle();

log(`micro: ${cases.length} cases, ${opts.warmup} warm-ups + ${opts.n} rounds, ${opts.gapMs} ms idle before each sample`);
for (let w = 0; w < opts.warmup; w++) for (const c of cases) if (live.has(c.key)) await sample(c);
for (let round = 0; round < opts.n; round++) {
  for (const c of shuffled(cases)) {
    if (!live.has(c.key)) continue;
    if (opts.gapMs) await sleep(opts.gapMs);
    const ms = await sample(c);
    if (ms !== null) samples[c.key].push(ms);
  }
  if ((round + 1) % 10 === 0) log(`micro: round ${round + 1}/${opts.n}`);
}
await stopSrt();
await pool?.close();

const micro = {};
for (const c of cases) if (live.has(c.key) && samples[c.key].length) micro[c.key] = { label: c.label, ...stats(samples[c.key]), samples: samples[c.key] };

// ---------------------------------------------------------------------------
// Real build: tsc of Ward itself, bare vs inside Ward
// ---------------------------------------------------------------------------

let build = null;
if (opts.build) {
  try {
    build = await runBuild();
  } catch (e) {
    build = { error: e.message };
    log(`build not measured: ${e.message}`);
  }
}

async function runBuild() {
  // The sources as committed (HEAD), so edits in progress in the work tree cannot break the
  // workload; a plain copy outside a git checkout. node_modules is copied, not symlinked:
  // the sandbox sees the workspace, not the repo.
  const bws = tempDir('ward-bench-build-');
  const files = ['src', 'tsconfig.json', 'tsconfig.build.json', 'package.json'];
  const git = spawnSync('sh', ['-c', 'git -C "$1" archive --format=tar HEAD -- "$3" "$4" "$5" "$6" | tar -x -C "$2"', 'sh', root, bws, ...files], { encoding: 'utf8', timeout: 60_000 });
  if (git.status === 0 && existsSync(path.join(bws, 'src'))) notes.push('build workload: src/ and tsconfig*.json from git HEAD');
  else {
    for (const f of files) cpSync(path.join(root, f), path.join(bws, f), { recursive: true });
    notes.push('build workload: src/ and tsconfig*.json copied from the work tree');
  }
  cpSync(path.join(root, 'node_modules'), path.join(bws, 'node_modules'), { recursive: true, verbatimSymlinks: true });
  const tsc = ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json', '--outDir', 'out'];
  const fresh = () => rmSync(path.join(bws, 'out'), { recursive: true, force: true });
  const built = () => existsSync(path.join(bws, 'out', 'index.js'));
  const buildPlan = ward.compile({ profile: 'default' }, { workspace: bws });

  // The build runs under `sh -c '...; times'` (inside the sandbox for Ward): besides wall
  // time, the user+sys CPU time of tsc, which a busy machine inflates far less. (Measured
  // from outside, the sandboxed tree's CPU time is lost: bwrap's outer process learns the
  // exit status without reaping its pid 1, so nothing below it reaches our rusage.)
  const TIMES = '"$@"; s=$?; times >&2; exit $s';
  const cpuOf = (stderr) => {
    const lines = stderr.trim().split('\n').filter((l) => /^\d+m[\d.]+s \d+m[\d.]+s$/.test(l.trim()));
    const last = lines.at(-1);
    if (!last) return null;
    const [u, sy] = last.trim().split(' ').map((x) => {
      const m = /^(\d+)m([\d.]+)s$/.exec(x);
      return Number(m[1]) * 60_000 + Number(m[2]) * 1000;
    });
    return u + sy;
  };
  const variants = {
    bare: async () => {
      const r = await timedSpawn('sh', ['-c', TIMES, 'sh', node, ...tsc], { cwd: bws, timeoutMs: BUILD_TIMEOUT_MS });
      if (r.code !== 0) throw new Error(`bare tsc: ${shortErr(r)} ${r.stdout.slice(0, 600)}`);
      return { ms: r.ms, cpuMs: cpuOf(r.stderr) };
    },
    ward_cli: async () => {
      const r = await timedSpawn(node, [wardBin, 'run', '--profile', 'default', ...cliAudit, '--workspace', bws, '--', 'sh', '-c', TIMES, 'sh', node, ...tsc], { cwd: bws, timeoutMs: BUILD_TIMEOUT_MS });
      if (r.code !== 0) throw new Error(`ward run tsc: ${shortErr(r)} ${r.stdout.slice(0, 600)}`);
      return { ms: r.ms, cpuMs: cpuOf(r.stderr) };
    },
    ward_lib: async () => {
      const t0 = now();
      const h = launch(buildPlan, ['sh', '-c', TIMES, 'sh', node, ...tsc], { stdin: 'ignore' });
      const r = await withTimeout(h.result, BUILD_TIMEOUT_MS, 'ward launch(tsc)').catch((e) => {
        h.kill();
        throw e;
      });
      const ms = msSince(t0);
      if (r.exitCode !== 0) throw new Error(`ward launch(tsc): exit ${r.exitCode}: ${r.stdout.toString('utf8').slice(0, 300)} ${r.stderr.toString('utf8').slice(0, 300)}`);
      return { ms, cpuMs: cpuOf(r.stderr.toString('utf8')) };
    },
  };
  const keys = Object.keys(variants);
  const wall = Object.fromEntries(keys.map((k) => [k, []]));
  const cpu = Object.fromEntries(keys.map((k) => [k, []]));
  log(`build: 1 warm-up + ${opts.buildN} rounds of ${keys.join(', ')}`);
  for (let round = -1; round < opts.buildN; round++) {
    for (let k = 0; k < keys.length; k++) {
      const key = keys[(Math.max(round, 0) + k) % keys.length];
      fresh();
      const r = await variants[key]();
      if (!built()) throw new Error(`${key}: tsc exited 0 but wrote no out/index.js`);
      if (round >= 0) {
        wall[key].push(r.ms);
        if (r.cpuMs !== null) cpu[key].push(r.cpuMs);
      }
    }
    if (round >= 0) log(`build: round ${round + 1}/${opts.buildN}`);
  }
  fresh();
  return Object.fromEntries(keys.map((k) => [k, { ...stats(wall[k]), samples: wall[k], cpu: cpu[k].length ? { ...stats(cpu[k]), samples: cpu[k] } : null }]));
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

const med = (k) => micro[k]?.median ?? null;
const ratio = (a, b) => (a !== null && b !== null && b > 0 ? a / b : null);
const bw = med('bwrap');

const targets = [];
function target(name, value, limit, fmt, basis) {
  targets.push({ name, value, limit, met: value === null ? null : value <= limit, shown: value === null ? 'not measured' : fmt(value), basis });
}
target('Ward library per call <= 1.5× bare bwrap: `run()`', ratio(med('ward_lib_run'), bw), 1.5, fx, 'median / bare bwrap median');
target('Ward library per call <= 1.5× bare bwrap: `launch(plan)`', ratio(med('ward_lib_launch'), bw), 1.5, fx, 'median / bare bwrap median');
target('Ward CLI <= 0.5× srt CLI', ratio(med('ward_cli'), med('srt_cli')), 0.5, fx, 'ward CLI median / srt CLI median');
const buildOverhead = (k) => (build?.bare && build?.[k] ? (build[k].median / build.bare.median - 1) * 100 : null);
const buildCpuOverhead = (k) => (build?.bare?.cpu && build?.[k]?.cpu ? (build[k].cpu.median / build.bare.cpu.median - 1) * 100 : null);
target('Real build within 5% of bare: `ward run` CLI', buildOverhead('ward_cli'), 5, (v) => `${v >= 0 ? '+' : ''}${v.toFixed(1)}%`, 'median over bare median');
target('Real build within 5% of bare: library `launch(plan)`', buildOverhead('ward_lib'), 5, (v) => `${v >= 0 ? '+' : ''}${v.toFixed(1)}%`, 'median over bare median');
target('(same, CPU time) `ward run` CLI', buildCpuOverhead('ward_cli'), 5, (v) => `${v >= 0 ? '+' : ''}${v.toFixed(1)}%`, 'user+sys median over bare');
target('(same, CPU time) library `launch(plan)`', buildCpuOverhead('ward_lib'), 5, (v) => `${v >= 0 ? '+' : ''}${v.toFixed(1)}%`, 'user+sys median over bare');

const md = [];
md.push(`### Per call (median of ${opts.n}, after ${opts.warmup} warm-ups, ${opts.gapMs} ms idle before each; ms)`, '');
const times = (x) => (x === null ? '—' : fx(x));
const perCall = (s) => [f1(s.median), f1(s.p90), f1(s.min), times(ratio(s.median, med('true'))), times(ratio(s.median, bw))];
md.push(...mdTable(['Case', 'median', 'p90', 'min', '× bare `true`', '× bare bwrap'], caseRows(cases, micro, perCall)), '');
const extra = [];
if (med('ward_lib_run') !== null && med('srt_lib') !== null) extra.push(`Ward \`run()\` / srt library: ${fx(med('ward_lib_run') / med('srt_lib'))}`);
if (med('ward_cli') !== null && med('srt_cli') !== null) extra.push(`Ward CLI / srt CLI: ${fx(med('ward_cli') / med('srt_cli'))}`);
if (med('ward_lib_run') !== null && med('ward_lib_run_nolandlock') !== null) extra.push(`Landlock, \`run()\`: ${f1(med('ward_lib_run') - med('ward_lib_run_nolandlock'))} ms (${fx(med('ward_lib_run') / med('ward_lib_run_nolandlock'))})`);
if (med('ward_lib_launch') !== null && med('ward_lib_launch_nolandlock') !== null) extra.push(`Landlock, \`launch(plan)\`: ${f1(med('ward_lib_launch') - med('ward_lib_launch_nolandlock'))} ms (${fx(med('ward_lib_launch') / med('ward_lib_launch_nolandlock'))})`);
if (med('ward_lib_run') !== null && med('ward_lib_run_noaudit') !== null) extra.push(`audit log, \`run()\`: ${f1(med('ward_lib_run') - med('ward_lib_run_noaudit'))} ms`);
if (med('ward_lib_launch') !== null && med('ward_lib_launch_nocgroup') !== null) extra.push(`cgroup limits (create + join + remove), \`launch(plan)\`: ${f1(med('ward_lib_launch') - med('ward_lib_launch_nocgroup'))} ms`);
if (med('ward_cli') !== null && med('ward_cli_exit_at_result') !== null) extra.push(`Ward CLI time after the command's result: ${f1(med('ward_cli') - med('ward_cli_exit_at_result'))} ms`);
if (srt.initMs !== null) extra.push(`srt \`SandboxManager.initialize()\` (once): ${f1(srt.initMs)} ms`);
for (const e of extra) md.push(`- ${e}`);
if (extra.length) md.push('');
if (!srt.available) md.push(`srt: not measured: ${srt.error}`, '');
md.push(...droppedLines(errors));

if (build) {
  md.push(`### Real build: \`tsc -p tsconfig.build.json\` of Ward (median of ${opts.buildN}, after 1 warm-up; ms)`);
  md.push('');
  if (build.error) md.push(`not measured: ${build.error}`);
  else {
    const labels = { bare: 'bare `node tsc`', ward_cli: '`ward run --profile default -- node tsc` (CLI)', ward_lib: 'Ward library `launch(plan)`' };
    const pc = (v) => (v === null ? '—' : `${v >= 0 ? '+' : ''}${v.toFixed(1)}%`);
    const header = ['Case', 'wall median', 'wall p90', 'wall min', 'wall overhead (medians)', 'CPU median (user+sys)', 'CPU overhead (medians)'];
    const row = ([k, l]) => {
      const s = build[k];
      return [l, f1(s.median), f1(s.p90), f1(s.min), k === 'bare' ? '—' : pc(buildOverhead(k)), s.cpu ? f1(s.cpu.median) : '—', k === 'bare' ? '—' : pc(buildCpuOverhead(k))];
    };
    md.push(...mdTable(header, Object.entries(labels).map(row)));
    md.push('');
    md.push('CPU time: of `tsc` alone (sh `times`, run inside the sandbox for Ward), so it shows how much slower the work itself runs in the sandbox; the fixed cost of starting it is in the wall time.');
  }
  md.push('');
}

md.push(...targetsTable(targets));
machine.loadavg_end = loadavg();
machine.ward_tree_dirty = machine.ward_tree_dirty || treeDirty(root);
md.push(`Machine: ${machine.nproc} CPUs (${machine.cpu}), kernel ${machine.kernel}, ${machine.bwrap}, Node ${machine.node}, uid ${machine.uid}, Ward ${machine.ward_commit}${machine.ward_tree_dirty ? ' (uncommitted changes)' : ''}, srt ${srt.version ?? 'n/a'}; load average (1/5/15 min) ${machine.loadavg_start.join(' ')} at the start, ${machine.loadavg_end.join(' ')} at the end.`);
const o = observed.ward_lib_launch;
if (o) md.push(`Ward default profile as observed from inside: Landlock ${o.landlock} (ABI ${o.landlock_abi}, ${o.landlock_rules} rules), cgroup ${o.cgroup ? `v${o.cgroup.version}: ${o.cgroup.applied.join(', ')}` : 'none'}, seccomp ${o.seccomp_instructions} instructions${o.degraded.length ? `, degraded: ${o.degraded.join('; ')}` : ''}.`);

console.log(md.join('\n'));

saveRaw(opts.out, { machine, options: { n: opts.n, warmup: opts.warmup, buildN: opts.buildN, gapMs: opts.gapMs }, method: 'wall time from spawn() (or the library call) to exit with stdio closed, process.hrtime.bigint(); each round runs every case once in a shuffled order, with gapMs idle before each sample', srt, micro, build, targets, observed, errors, notes }, 2);
cleanup();
// Ward's launch leaves a short timer behind after each result; do not wait for it.
process.exit(0);
