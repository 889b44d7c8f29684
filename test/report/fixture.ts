/**
 * A probe run shaped like the probe suite's output: several groups, every
 * status, a promise no probe tests, and details full of hostile text (markup,
 * quotes, control bytes), plus an effective policy loaded the real way so its
 * hash is genuine.
 */
import { loadPolicy } from '../../src/policy/load.js';
import type { ProbeReport, ProbeResult, ReportInput } from '../../src/report/index.js';

export const HOSTILE = `<script>document.title="pwned";window.__pwned=1</script><img src=x onerror="document.title='pwned'">"'&amp;\u001b[31mred\u001b[0m`;

type Extra = Partial<ProbeResult>;

function probe(id: string, group: ProbeResult['group'], promise: ProbeResult['promise'], mechanism: ProbeResult['mechanism'], status: ProbeResult['status'], detail: string, extra: Extra = {}): ProbeResult {
  return {
    id,
    group,
    promise,
    mechanism,
    title: `${id.split('.')[1]!.replace(/-/g, ' ')}`,
    expect: promise === 'usability' ? 'works' : 'refused',
    asi: ['ASI05'],
    nist: ['SC-39'],
    status,
    detail,
    exit_code: status === 'held' ? 1 : 0,
    reason: 'exit',
    denials: [],
    policy_sha256: null,
    degraded: [],
    duration_ms: 42,
    ...extra,
  };
}

export function sampleProbes(): ProbeResult[] {
  return [
    probe('fs.read-ssh-key', 'filesystem', 'filesystem', 'mount-namespace', 'held', 'cat: /home/u/.ssh/id_ed25519: No such file or directory', { asi: ['ASI03'], nist: ['AC-3', 'AC-6'] }),
    probe('fs.etc-shadow', 'filesystem', 'filesystem', 'mount-namespace', 'held', 'open /etc/shadow: ENOENT', { asi: ['ASI03'], nist: ['AC-3'] }),
    probe('fs.exec-tmp', 'filesystem', 'filesystem', 'landlock', 'held', 'execve /tmp/x: EACCES', { nist: ['CM-7'] }),
    probe('fs.git-hooks', 'filesystem', 'filesystem', 'mount-namespace', 'broken', `wrote ${HOSTILE} into .git/hooks/pre-commit outside the grant`, {
      asi: ['ASI05', 'ASI10'],
      nist: ['AC-3', 'CM-5'],
      denials: [{ layer: 'landlock', what: HOSTILE, verdict: 'refused', detail: HOSTILE }],
    }),
    probe('fs.symlink-race', 'filesystem', 'filesystem', 'mount-namespace', 'held', 'x'.repeat(9000), { nist: ['AC-3'] }),
    probe('proc.ptrace-runner', 'processes', 'syscalls', 'seccomp', 'held', 'ptrace(PTRACE_ATTACH): EPERM', { nist: ['SC-39', 'AC-6(10)'] }),
    probe('proc.vm-writev', 'processes', 'syscalls', 'seccomp', 'held', 'process_vm_writev: EPERM'),
    probe('priv.io-uring', 'privileges', 'syscalls', 'seccomp', 'held', 'io_uring_setup: EPERM', { nist: ['CM-7'] }),
    probe('priv.unshare-user', 'privileges', 'escalation', 'seccomp', 'held', 'unshare(CLONE_NEWUSER): EPERM', { asi: ['ASI03'], nist: ['AC-6'] }),
    probe('priv.setuid-su', 'privileges', 'escalation', 'no-new-privs', 'error', 'su not installed in this image', { exit_code: null, reason: 'exec-failed' }),
    probe('net.tcp-out', 'network', 'egress', 'net-namespace', 'held', 'connect 1.1.1.1:443: ENETUNREACH', { asi: ['ASI02'], nist: ['SC-7'] }),
    probe('net.dns', 'network', 'egress', 'net-namespace', 'skipped', 'no resolver configured on the host'),
    probe('res.fork-bomb', 'resources', 'resources', 'cgroup', 'held', 'fork: EAGAIN after 256 processes', {
      asi: ['ASI08'],
      nist: ['SC-6'],
      reason: 'exit',
      denials: [{ layer: 'cgroup', what: 'pids', verdict: 'refused', detail: 'the pids limit (256) refused 1023 forks' }],
      degraded: ['cgroup: no delegated cgroup <v2>'],
    }),
    probe('sec.env-token', 'secrets', 'secrets', 'env-scrub', 'held', 'GITHUB_TOKEN absent', { asi: ['ASI03'], nist: ['IA-5'] }),
    probe('work.python', 'positive', 'usability', 'sandbox', 'held', 'python3 -c print(1): 1', { asi: [], nist: [], exit_code: 0 }),
  ];
}

export function sampleInput(opts: { workspace: string; home: string }): ReportInput {
  const policy = loadPolicy({ workspace: opts.workspace, home: opts.home, env: { HOME: opts.home } });
  const probes = sampleProbes();
  const summary = { held: 0, broken: 0, error: 0, skipped: 0 };
  for (const p of probes) summary[p.status]++;
  const report: ProbeReport = {
    ward_version: '0.1.0',
    policy_sha256: policy.sha256,
    policy_sources: policy.sources,
    started: '2026-05-01T10:00:00.000Z',
    finished: '2026-05-01T10:00:42.000Z',
    host: { kernel: '6.18.44', uid: 1000, arch: 'x86_64', landlock_abi: 7, cgroup: 'v1' },
    allow_degraded: false,
    summary,
    probes,
  };
  return {
    probes: report,
    policy: { sha256: policy.sha256, canonical: policy.canonical, sources: policy.sources },
    audit: {
      log: `${opts.home}/.local/state/ward/audit <1>.jsonl`,
      head: { seq: 1234, hash: 'a'.repeat(64), signature: 'c2lnbmF0dXJl'.repeat(7), key_id: '0123abcd'.repeat(8) },
    },
  };
}

/** The numbers a page shows, read back by their data-* attributes (from report.html or Chromium's DOM). */
export function pageNumbers(html: string) {
  const num = (key: string) => {
    const m = new RegExp(`data-summary="${key}">(\\d+)<`).exec(html);
    return m ? Number(m[1]) : undefined;
  };
  return {
    held: num('held'),
    broken: num('broken'),
    error: num('error'),
    skipped: num('skipped'),
    probes: num('probes'),
    rows: [...html.matchAll(/<tr id="probe-[^"]*" class="[^"]*" data-probe-id="([^"]*)" data-status="([^"]*)"/g)].map((m) => ({ id: m[1], status: m[2] })),
    policy: /id="policy-sha256" data-policy-sha256="([0-9a-f]{64})"/.exec(html)?.[1],
    verdict: /<h1 id="verdict" data-verdict="([a-z]+)"/.exec(html)?.[1],
  };
}
