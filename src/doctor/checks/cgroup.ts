/**
 * Resource limits: can THIS user make the cgroup a run of the policy makes?
 * The check does what a run does (createCgroup with the policy's own limits, so
 * every controller the run needs is tried: cpus needs cpu, cpu_time cpuacct),
 * then removes the cgroup. As root that means the controllers are mounted
 * writable; as a user it means systemd (or an administrator) delegated a subtree
 * with those controllers enabled.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createCgroup, readCgroupMounts } from '../../sandbox/cgroup.js';
import type { CgroupLimits } from '../../plan/compile.js';
import type { Check } from '../types.js';

function readOr(file: string, fallback: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

/** What is mounted: `v2 at /sys/fs/cgroup (memory pids ...)`, `v1: memory, pids, ...`. */
export function cgroupInventory(): string {
  const v1: string[] = [];
  const v2: string[] = [];
  for (const m of readCgroupMounts()) {
    if (m.type === 'cgroup2') {
      const controllers = readOr(path.join(m.mountpoint, 'cgroup.controllers'), '').trim();
      v2.push(`v2 at ${m.mountpoint} (${controllers || 'no controllers'})`);
    } else {
      const known = m.options.filter((o) => ['memory', 'pids', 'cpu', 'cpuacct', 'cpuset', 'blkio', 'devices', 'freezer', 'hugetlb', 'net_cls', 'net_prio', 'perf_event', 'rdma', 'misc'].includes(o) || o.startsWith('name='));
      v1.push(known.join('+'));
    }
  }
  const out = [...v2];
  if (v1.length) out.push(`v1: ${v1.join(', ')}`);
  return out.length ? out.join('; ') : 'no cgroup filesystem mounted';
}

/** What the host offers when the policy sets no limit a cgroup holds (the common ones). */
const HOST_LIMITS: CgroupLimits = { memory: 64 * 1024 * 1024, pids: 64, cpus: null };

export const cgroupCheck: Check = {
  id: 'host.cgroup',
  title: "this user can create a cgroup with the policy's limits (memory, pids, cpus, and CPU accounting for cpu_time)",
  severity: 'high',
  async run(ctx) {
    const inventory = cgroupInventory();
    const res = ctx.policy.effective.resources;
    const policyWants = res.memory !== null || res.pids !== null || res.cpus !== null || res.cpu_time !== null;
    // cpu_time is enforced over the whole tree by a watchdog on the cgroup's CPU accounting.
    const cpuAccounting = res.cpu_time !== null;
    const limits: CgroupLimits = policyWants ? { memory: res.memory, pids: res.pids, cpus: res.cpus } : HOST_LIMITS;
    try {
      const cg = createCgroup(limits, { cpuAccounting });
      const where = cg.dirs.join(', ');
      const applied = cg.applied.join(' ');
      const accounted = cg.cpuSeconds() !== null;
      await cg.remove();
      if (cpuAccounting && !accounted) {
        return {
          status: 'fail',
          evidence: `created a cgroup v${cg.version} (${where}), but it does not account CPU time, which the policy's cpu_time needs; mounted: ${inventory}`,
          fix: 'mount the cpuacct controller (cgroup v1) or use cgroup v2; or set resources.cpu_time to "unlimited"',
          degrades: 'cpu_time over the whole process tree: runs are refused, or, with --allow-degraded and sandbox.allow_degraded, RLIMIT_CPU stands in per process (a tree of processes can use more in total)',
        };
      }
      return { status: 'pass', evidence: `created and removed a cgroup v${cg.version} (${where})${applied ? ` with ${applied}` : ''}${cpuAccounting ? ' and CPU accounting (for cpu_time)' : ''}; mounted: ${inventory}` };
    } catch (e) {
      const err = e as Error & { fix?: string };
      return {
        status: 'fail',
        severity: policyWants ? 'high' : 'medium',
        evidence: `${err.message}; mounted: ${inventory}${policyWants ? '' : '; the policy sets no memory, pids, cpus or cpu_time limit'}`,
        fix: err.fix ?? 'run Ward in a delegated cgroup: `systemd-run --user --scope -p Delegate=yes ward run ...`',
        degrades: `per-tree memory, pids, cpus and cpu_time limits (cgroup): runs whose policy sets them are refused, or, with --allow-degraded and sandbox.allow_degraded, per-process rlimits stand in (weaker: RLIMIT_DATA does not count shared memory, tmpfs or page cache; RLIMIT_CPU is per process; nothing limits cpus)${ctx.uid === 0 ? '; as root a policy with pids is refused even then, since the kernel never applies RLIMIT_NPROC to uid 0' : ''}`,
      };
    }
  },
};
