/**
 * A realistic audit log made through the writer API (not hundreds of sandbox
 * runs): runs of launch / denial / exit records with run-end checkpoints, a
 * refusal, a burst that crosses the every-N checkpoint, and fields with
 * escapes and non-ASCII text, so every part of the format is exercised.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { AuditWriter } from '../../src/audit/writer.js';
import { loadSigningKey, loadVerifyKey, type SigningKey } from '../../src/audit/keys.js';
import type { VerifyKey } from '../../src/audit/verify.js';
import { tempDir } from '../helpers.js';

export interface LogFixture {
  dir: string;
  env: NodeJS.ProcessEnv;
  key: SigningKey;
  verifyKey: VerifyKey;
  file: string;
  log: Buffer;
  head: string;
}

/** An environment whose HOME (and so Ward's config and state dirs) is a fresh directory. */
export function freshEnv(): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = tempDir('ward-audit-');
  const home = path.join(dir, 'home');
  mkdirSync(home);
  return { dir, env: { ...process.env, HOME: home, XDG_CONFIG_HOME: '', XDG_STATE_HOME: '' } };
}

export function launchEvent(i: number, runId: string): Record<string, unknown> & { type: 'launch' } {
  return {
    type: 'launch',
    run_id: runId,
    ward_version: '0.1.0',
    time: new Date().toISOString(),
    policy_sha256: 'ae7eecbdf71a490b047f1a613971222ac7d91a2e868fb1f0831acbd95c279c24',
    plan_sha256: '93f49c089e5966bf12ec22a7e331919f0574f1ab959c0b11297ba7efbbeb3afb',
    policy_sources: ['profile:minimal', 'profile:default'],
    argv: ['sh', '-c', `echo "run ${i}" \u00e9\u00e8 \u{1F512} \u001b[0m \\ "quoted" \t tab`],
    workspace: '/tmp/ws',
    cwd: '/tmp/ws',
    layers: {
      namespaces: ['user', 'pid', 'ipc', 'uts', 'net', 'cgroup', 'mount'],
      seccomp: { sha256: 'a93445f8609d77a9805403fc67cdc218962c00d97856d5bd8a5198707b9021f4', instructions: 93 },
      cgroup: { version: 1, applied: ['memory/memory.limit_in_bytes=4294967296', 'pids/pids.max=1024'] },
      rlimits: { core: [0, 0], nofile: [4096, 4096] },
      landlock_mode: 'required',
    },
    observed: {
      stage: 'inner',
      protocol: 1,
      landlock: { mode: 'required', abi: 7, status: 'applied', rules: 43, scoped: true, skipped: [] },
      proc_status: { NoNewPrivs: '1', Seccomp: '2', CapEff: '0000000000000000' },
      rlimits: { nofile: [4096, 4096], cpu: ['unlimited', 'unlimited'] },
    },
    degraded: [],
    notes: i % 7 === 0 ? ['a note with "quotes" and a newline\nin it'] : [],
  };
}

/** Writes ~300 records into a fresh log and returns its bytes and head file. */
export function makeLog(opts: { runs?: number; burst?: number } = {}): LogFixture {
  const { dir, env } = freshEnv();
  const key = loadSigningKey({ env, create: true });
  const file = path.join(dir, 'state', 'audit.jsonl');
  const w = new AuditWriter({ path: file, key });
  const runs = opts.runs ?? 50;
  for (let i = 0; i < runs; i++) {
    const runId = `run${String(i).padStart(5, '0')}`;
    w.append([launchEvent(i, runId)]);
    if (i % 3 === 0) w.append([{ type: 'denial', run_id: runId, layer: 'cgroup', what: 'pids', verdict: 'refused', detail: `${i} fork/clone calls refused` }]);
    if (i === 17) {
      w.append([{ type: 'launch-failed', run_id: 'refused0', step: 'policy', message: 'policy error in p.yaml:3 at filesystem.raed: unknown key "raed"', fix: 'did you mean "read"', argv: ['touch', 'x'], cwd: '/tmp/ws', ward_version: '0.1.0' }], { checkpoint: true });
    }
    w.append([{ type: 'exit', run_id: runId, exit_code: i % 5, raw_exit_code: i % 5, reason: 'exit', message: null, output_truncated: false, duration_ms: 30 + i }], { checkpoint: true });
  }
  // A burst with no run-end checkpoint in between: the every-64 rule signs it.
  const burst = opts.burst ?? 100;
  w.append(Array.from({ length: burst }, (_, j) => ({ type: 'denial', run_id: 'burst', layer: 'output', what: 'output', verdict: 'truncated', detail: `chunk ${j}` })), { checkpoint: true });
  const verifyKey = loadVerifyKey(undefined, env);
  return { dir, env, key, verifyKey, file, log: readFileSync(file), head: readFileSync(`${file}.head`, 'utf8') };
}

/** For each byte, the 1-based line holding it (a newline belongs to the line it ends). */
export function lineOfEachByte(log: Buffer): Uint32Array {
  const out = new Uint32Array(log.length);
  let line = 1;
  for (let i = 0; i < log.length; i++) {
    out[i] = line;
    if (log[i] === 0x0a) line++;
  }
  return out;
}

/** The log as lines without their newlines, and back. */
export function toLines(log: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let nl = log.indexOf(0x0a); nl >= 0; nl = log.indexOf(0x0a, start)) {
    out.push(log.subarray(start, nl));
    start = nl + 1;
  }
  return out;
}

export function fromLines(lines: Buffer[]): Buffer {
  return Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]));
}

export { rng } from '../helpers.js';
