#!/usr/bin/env node
// Pooled start latency (issue #6, Latency): `npm run build && node bench/pool.js`.
//
// Side by side in one run, each case once per round in a shuffled order (a noisy phase of the
// machine hits every case alike), N rounds, idle --gap ms before each sample:
//   pooled     pool.run(['true']) of a warm pool (default profile, size 2) until its result:
//              hand-out, execve, exit, teardown, cgroup removal and the audit records included.
//              Before each sample the pool is refilled (pool.ready(), not counted): the pool's
//              premise is that commands come slower than sandboxes are built; see "drained".
//   bwrap      bare bwrap with Ward's namespaces and a minimal root running /bin/true, spawned
//              from Node the same way bench/run.js does (spawn to exit + stdio closed)
//   run        Ward's run() of the same policy, unpooled (builds the sandbox per command)
//   noaudit    as pooled, with the audit log off: what the records cost (diagnostic)
//   drained    commands faster than the pool refills: on a pool of 1, the second of two
//              pool.run(['true']) back to back (only it is timed) waits for a sandbox being
//              built (diagnostic)
// Then "to first instruction": a static program that prints CLOCK_MONOTONIC first thing in
// main(); the sample is that time minus the time just before pool.run() / spawn() / run():
// from asking to the command's own first instruction, with the same clock on both sides (no
// time namespace). And the memory one warm sandbox holds: the Pss of its processes (bwrap,
// bwrap's init, the waiting launcher, the watchdog outside).
//
// Options:
//   --n N        samples per case (default 60)
//   --gap MS     idle time before each sample, not counted (default 100)
//   --out FILE   raw samples (default bench/results/pool.json)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { die, firstLine, loadavg, log, machineInfo, mdTable, msSince, neverHang, now, parseOptions, saveRaw, scratchDirs, seededShuffle, shortErr, spawnTimed, stats, withTimeout } from './lib.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(here);
const o = { n: 60, gapMs: 100, out: path.join(here, 'results', 'pool.json') };
parseOptions(process.argv.slice(2), o, { '--n': { key: 'n', whole: 50 }, '--gap': { key: 'gapMs', whole: 0 }, '--out': { key: 'out', path: 'a file' } }, import.meta.url);

const distIndex = path.join(root, 'dist', 'index.js');
if (!existsSync(distIndex)) die('Ward is not built: run `npm run build` first');
const ward = await import(pathToFileURL(distIndex).href);
if (typeof ward.createPool !== 'function') die('dist/ has no createPool: rebuild (`npm run build`)');
const bwrapBin = firstLine('sh', ['-c', 'command -v bwrap']) ?? die('bwrap is not installed');
const machine = machineInfo(root, { bwrap: firstLine(bwrapBin, ['--version']) });

const scratch = scratchDirs();
let pools = [];
const cleanup = () => {
  for (const p of pools) void p.close();
  scratch.removeAll();
};
neverHang(30 * 60_000, cleanup);

const ws = scratch.make('ward-bench-pool-ws-');
const auditLog = path.join(scratch.make('ward-bench-pool-audit-'), 'audit.jsonl');
const TIMEOUT_MS = 30_000;

// The same minimal bwrap as bench/run.js: Ward's namespaces, /usr read-only, /proc, /dev.
const bwrapArgs = (cmd) => [
  '--unshare-user', '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-net', '--unshare-cgroup',
  '--die-with-parent', '--new-session', '--cap-drop', 'ALL',
  '--ro-bind', '/usr', '/usr', '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64', '--symlink', 'usr/bin', '/bin',
  ...(cmd.startsWith(ws) ? ['--ro-bind', ws, ws] : []),
  '--proc', '/proc', '--dev', '/dev', '--', cmd,
];

// The first-instruction probe: static, so no dynamic loader runs before main().
const stampSrc = path.join(ws, 'stamp.c');
const stamp = path.join(ws, 'stamp');
writeFileSync(stampSrc, '#include <stdio.h>\n#include <time.h>\nint main(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);printf("%lld\\n",(long long)t.tv_sec*1000000000LL+t.tv_nsec);return 0;}\n');
let stampOk = true;
try {
  execFileSync('cc', ['-O2', '-static', '-o', stamp, stampSrc], { stdio: 'pipe' });
} catch (e) {
  stampOk = false;
  log(`no static build of the probe (${String(e.stderr ?? e.message).trim().split('\n')[0]}): first-instruction times skipped`);
}

const policy = ward.preparePolicy({ profile: 'default' }, { workspace: ws });
const pool = ward.createPool({ policy, size: 2, workspace: ws, audit: auditLog });
const drainedPool = ward.createPool({ policy, size: 1, workspace: ws, audit: auditLog });
const noAuditPool = ward.createPool({ policy, size: 2, workspace: ws, audit: false });
pools = [pool, drainedPool, noAuditPool];
await withTimeout(Promise.all(pools.map((p) => p.ready())), TIMEOUT_MS, 'pool.ready()');

const check = (name, r) => {
  if (r.exitCode !== 0) throw new Error(`${name}: exit ${r.exitCode} (${r.reason}): ${r.stderr.toString().trim().slice(0, 300)}`);
  if (r.launch.observed?.landlock.status !== 'applied') throw new Error(`${name}: Landlock not applied`);
};
const stampOf = (out) => BigInt(out.toString().trim());
/** Times one Ward call from just before it starts until its result is in, then checks the result. */
const timedCall = async (name, call, what) => {
  const t0 = now();
  const r = await withTimeout(call(), TIMEOUT_MS, what);
  const ms = msSince(t0);
  check(name, r);
  return { ms, r };
};

const cases = {
  pooled: {
    label: '`pool.run([\'true\'])`, warm pool (size 2)',
    before: () => withTimeout(pool.ready(), TIMEOUT_MS, 'refill'),
    fn: async () => {
      const { ms, r } = await timedCall('pooled', () => pool.run(['true']), 'pool.run');
      if (!r.launch.pooled) throw new Error('pooled: the launch record does not say pooled');
      return ms;
    },
  },
  bwrap: {
    label: 'bare bwrap (Ward\'s namespaces) `/bin/true`, spawned from Node',
    fn: async () => {
      const r = await spawnTimed(bwrapBin, bwrapArgs('/bin/true'), { cwd: ws, timeoutMs: TIMEOUT_MS });
      if (r.code !== 0) throw new Error(`bwrap: ${shortErr(r)}`);
      return r.ms;
    },
  },
  run: {
    label: 'Ward `run()` (unpooled, prepared policy)',
    fn: async () => (await timedCall('run', () => ward.run(policy, ['true'], { workspace: ws, stdin: 'ignore', audit: auditLog }), 'run')).ms,
  },
  noaudit: {
    label: '`pool.run([\'true\'])`, warm pool, audit log off (diagnostic)',
    before: () => withTimeout(noAuditPool.ready(), TIMEOUT_MS, 'refill'),
    fn: async () => (await timedCall('noaudit', () => noAuditPool.run(['true']), 'pool.run (no audit)')).ms,
  },
  drained: {
    label: 'the 2nd of 2 `pool.run([\'true\'])` back to back, pool of 1 (diagnostic)',
    before: () => withTimeout(drainedPool.ready(), TIMEOUT_MS, 'refill'),
    fn: async () => {
      check('drained', await withTimeout(drainedPool.run(['true']), TIMEOUT_MS, 'pool.run (drained, first)'));
      return (await timedCall('drained', () => drainedPool.run(['true']), 'pool.run (drained)')).ms;
    },
  },
};
if (stampOk) {
  Object.assign(cases, {
    first_pooled: {
      label: 'to first instruction: pooled',
      before: () => withTimeout(pool.ready(), TIMEOUT_MS, 'refill'),
      fn: async () => {
        const t0 = now();
        const r = await withTimeout(pool.run([stamp]), TIMEOUT_MS, 'pool.run stamp');
        check('first_pooled', r);
        return Number(stampOf(r.stdout) - t0) / 1e6;
      },
    },
    first_bwrap: {
      label: 'to first instruction: bare bwrap',
      fn: async () => {
        const t0 = now();
        const r = await spawnTimed(bwrapBin, bwrapArgs(stamp), { cwd: ws, timeoutMs: TIMEOUT_MS });
        if (r.code !== 0) throw new Error(`bwrap stamp: ${shortErr(r)}`);
        return Number(BigInt(r.stdout.trim()) - t0) / 1e6;
      },
    },
    first_run: {
      label: 'to first instruction: `run()`',
      fn: async () => {
        const t0 = now();
        const r = await withTimeout(ward.run(policy, [stamp], { workspace: ws, stdin: 'ignore', audit: auditLog }), TIMEOUT_MS, 'run stamp');
        check('first_run', r);
        return Number(stampOf(r.stdout) - t0) / 1e6;
      },
    },
  });
}

// Memory held by one warm sandbox: Pss of every process of it (the pid Ward spawned is bwrap).
function treeOf(pid) {
  const out = [pid];
  let tasks = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tasks) {
    const kids = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
    for (const k of kids ? kids.split(' ').map(Number) : []) out.push(...treeOf(k));
  }
  return out;
}
// The watchdog is forked twice by `ward-launch outer` (it is no descendant of bwrap): found by its
// command line, the outer launcher's, which names this process's cgroups (ward-PID-N).
function watchdogs() {
  const mine = `ward-${process.pid}-`;
  const found = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      if (cmd.startsWith('ward-launch\0outer\0') && cmd.includes(mine)) found.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return found;
}
function memoryOf(pid, extra = []) {
  let pss = 0;
  let rss = 0;
  const procs = [...treeOf(pid), ...extra];
  for (const p of procs) {
    try {
      const text = readFileSync(`/proc/${p}/smaps_rollup`, 'utf8');
      pss += Number(/^Pss:\s+(\d+) kB/m.exec(text)?.[1] ?? 0);
      rss += Number(/^Rss:\s+(\d+) kB/m.exec(text)?.[1] ?? 0);
    } catch {
      /* gone, or not ours to read */
    }
  }
  return { processes: procs.length, pss_kib: pss, rss_kib: rss };
}
await withTimeout(pool.ready(), TIMEOUT_MS, 'refill');
// Every pool is warm and idle here: one watchdog per warm sandbox; each sandbox is counted with
// one of them (which one does not matter: they are the same program in the same state).
const dogs = watchdogs();
const nWarm = pools.reduce((n, p) => n + p.stats().warm, 0);
const memory = pool.stats().warmPids.map((pid, i) => memoryOf(pid, dogs.length === nWarm ? [dogs[i]] : []));
if (dogs.length !== nWarm) log(`found ${dogs.length} watchdogs for ${nWarm} warm sandboxes: watchdogs not counted`);

const keys = Object.keys(cases);
const samples = Object.fromEntries(keys.map((k) => [k, []]));
const errors = {};
const shuffle = seededShuffle();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
log(`${o.n} rounds of ${keys.length} cases, ${o.gapMs} ms idle before each sample; load ${loadavg().join(' ')}`);
for (let round = 0; round < o.n; round++) {
  for (const k of shuffle(keys)) {
    if (errors[k]) continue;
    const c = cases[k];
    try {
      await c.before?.();
      await sleep(o.gapMs);
      samples[k].push(await c.fn());
    } catch (e) {
      errors[k] = e.message;
      log(`${k} dropped: ${e.message}`);
    }
  }
  if ((round + 1) % 10 === 0) log(`round ${round + 1}/${o.n}; load ${loadavg().join(' ')}`);
}
await Promise.all(pools.map((p) => p.close()));
const loadEnd = loadavg();

const res = Object.fromEntries(keys.filter((k) => samples[k].length).map((k) => [k, stats(samples[k])]));
const f = (x) => (x == null ? '–' : x >= 100 ? x.toFixed(0) : x.toFixed(2));
const md = [];
md.push(`Machine: ${machine.nproc} cores, ${machine.cpu}, kernel ${machine.kernel}, ${machine.bwrap}, Node ${machine.node}, uid ${machine.uid}, Ward ${machine.ward_commit}${machine.ward_tree_dirty ? ' (dirty tree)' : ''}, ${machine.date}.`);
md.push(`Load average (1/5/15 min) at the start ${machine.loadavg_start.join(' / ')}, at the end ${loadEnd.join(' / ')}.`, '');
md.push(...mdTable(['Case (ms)', 'n', 'p50', 'p90', 'min', 'max', 'p50 / bare bwrap p50'], keys.filter((k) => res[k]).map((k) => [cases[k].label, res[k].n, f(res[k].median), f(res[k].p90), f(res[k].min), f(res[k].max), res.bwrap ? `${(res[k].median / res.bwrap.median).toFixed(2)}×` : '–'])), '');
md.push(`Memory per warm sandbox (Pss of its ${memory[0]?.processes ?? '?'} processes): ${memory.map((m) => `${(m.pss_kib / 1024).toFixed(2)} MiB (Rss ${(m.rss_kib / 1024).toFixed(2)} MiB)`).join('; ')}.`);
for (const [k, e] of Object.entries(errors)) md.push(`Dropped ${k}: ${e}`);
if (res.pooled && res.bwrap) md.push('', `Target pooled start below bare bwrap (p50): ${res.pooled.median < res.bwrap.median ? 'MET' : 'NOT MET'} (${f(res.pooled.median)} vs ${f(res.bwrap.median)} ms).`);
console.log(md.join('\n'));
saveRaw(o.out, { machine, loadavg_end: loadEnd, options: o, stats: res, samples, memory, errors });
cleanup();
