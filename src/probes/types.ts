/**
 * The escape probe suite's vocabulary. A probe is plain data: what it attacks,
 * which promise of the napkin it tests, which mechanism is expected to say no,
 * how it maps to OWASP's Agentic Top 10 and NIST SP 800-53, the program it runs
 * inside a fresh sandbox, and a check that reads the result (and the host) and
 * says whether the promise held.
 *
 * The report writer (src/report/) and the CLI (src/cli/commands/probe.ts) consume
 * `ProbeReport` and `ProbeResult`; nothing here depends on how they render it.
 */
import type { WardError } from '../errors.js';
import type { NetEvent } from '../net/broker.js';
import type { PolicyFile } from '../policy/schema.js';
import type { Denial, LaunchRecord, RevocationRecord, RunReason } from '../sandbox/launch.js';

/** One file per group under src/probes/groups/, in this order. */
export const PROBE_GROUPS = ['filesystem', 'processes', 'privileges', 'terminal', 'network', 'resources', 'secrets', 'supervised', 'positive'] as const;
export type ProbeGroup = (typeof PROBE_GROUPS)[number];

/** The napkin's rows (README "The security model in three minutes"), plus usability for positive probes. */
export const PROBE_PROMISES = ['filesystem', 'syscalls', 'egress', 'resources', 'escalation', 'secrets', 'dynamic-rules', 'usability'] as const;
export type ProbePromise = (typeof PROBE_PROMISES)[number];

/** What is expected to say no (or, for positive probes, what must let the work through). */
export const MECHANISMS = [
  'mount-namespace',
  'landlock',
  'seccomp',
  'capabilities',
  'no-new-privs',
  'user-namespace',
  'pid-namespace',
  'net-namespace',
  'egress-broker',
  'ipc-namespace',
  'uts-namespace',
  'new-session',
  'cgroup',
  'rlimit',
  'wall-clock',
  'output-cap',
  'env-scrub',
  'launcher',
  'sandbox',
  'supervisor',
] as const;
export type Mechanism = (typeof MECHANISMS)[number];

/** OWASP Top 10 for Agentic Applications (2026): ASI01 Goal Hijack ... ASI10 Rogue Agents. */
export type AsiId = 'ASI01' | 'ASI02' | 'ASI03' | 'ASI04' | 'ASI05' | 'ASI06' | 'ASI07' | 'ASI08' | 'ASI09' | 'ASI10';

/** NIST SP 800-53 control identifiers, e.g. "AC-6", "SC-7", "SC-39". */
export const NIST_ID = /^[A-Z]{2}-\d{1,2}(\(\d{1,2}\))?$/;

export type ProbeStatus = 'held' | 'broken' | 'error' | 'skipped';

/** What a check decides. `skipped` is for a layer this run could not have (e.g. no cgroup), with the reason. */
export interface Verdict {
  status: ProbeStatus;
  detail: string;
}

/** The program a probe runs inside the sandbox. Scripts are passed with -c / -e, never written to disk. */
export type ProbeProgram = { argv: string[] } | { sh: string } | { python: string } | { node: string };

/** A policy fragment merged over the policy under test (lists are unions, scalars override). */
export type PolicyOverlay = Pick<PolicyFile, 'filesystem' | 'resources' | 'env' | 'sandbox' | 'network' | 'secrets' | 'rules'>;

/**
 * Everything a probe may need about its own sandbox and the host, made fresh for
 * each probe and removed afterwards. Paths are host paths; the workspace is also
 * the command's working directory inside.
 */
export interface ProbeContext {
  id: string;
  /** The workspace (granted read/write by the default policy). */
  ws: string;
  /** The fake $HOME the sandbox is given, with planted credentials (see fixtures.ts). */
  home: string;
  /** A directory outside every grant, with a planted secret file. */
  outside: string;
  /** The random token every planted secret contains: seeing it in a probe's output means a leak. */
  canary: string;
  /** The process running the suite (a host pid the sandbox must not reach). */
  runnerPid: number;
  /** Node.js as the sandbox sees it (the same path: the node profile grants it). */
  node: string;
  /** True when the suite runs as root (uid 0 inside maps to the host's root). */
  isRoot: boolean;
  uid: number;
  /** Ward's real state, config and cache directories of the user running the suite. */
  wardDirs: string[];
  /** The audit log the suite's runs are recorded in (a resolved path), or null when not recorded. */
  auditLog: string | null;
  /** Scratch space for a probe's setup to pass values (ports, pids, counters) to its program and check. */
  state: Record<string, unknown>;
}

/** The sandbox run as a check sees it. */
export interface ProbeRun {
  exitCode: number;
  reason: RunReason;
  message: string | null;
  stdout: string;
  stderr: string;
  denials: Denial[];
  /** The egress broker's decisions (empty without network.allow). */
  net: NetEvent[];
  /** The dynamic rules that fired (supervised mode), in order. */
  revocations: RevocationRecord[];
  launch: LaunchRecord;
  durationMs: number;
}

export interface Probe {
  /** Unique, `group-prefix.what`, e.g. `fs.read-ssh-key`. */
  id: string;
  group: ProbeGroup;
  promise: ProbePromise;
  title: string;
  mechanism: Mechanism;
  asi: AsiId[];
  nist: string[];
  /** `refused`: an attack that must fail; `works`: legitimate work that must succeed. */
  expect: 'refused' | 'works';
  program: ProbeProgram | ((ctx: ProbeContext) => ProbeProgram);
  /** Host-side preparation beyond the standard fixtures (servers, planted files, victim processes). */
  setup?: (ctx: ProbeContext) => void | Promise<void>;
  /** Undo what setup started (servers, processes); the fixture directories are removed by the runner. */
  teardown?: (ctx: ProbeContext) => void | Promise<void>;
  policy?: PolicyOverlay | ((ctx: ProbeContext) => PolicyOverlay);
  /** A reason to skip when an optional tool is missing (checked on the host first); null to run. */
  requires?: (ctx: ProbeContext) => string | null;
  check: (run: ProbeRun, ctx: ProbeContext) => Verdict;
  /** What Ward refusing the run (before the command started) means here; unset or null: an error. */
  refused?: (e: WardError, ctx: ProbeContext) => Verdict | null;
}

/** One probe's outcome, as `ward probe --json` prints it and the report consumes it. */
export interface ProbeResult {
  id: string;
  group: ProbeGroup;
  promise: ProbePromise;
  mechanism: Mechanism;
  asi: string[];
  nist: string[];
  status: ProbeStatus;
  detail: string;
  title: string;
  expect: 'refused' | 'works';
  exit_code: number | null;
  reason?: RunReason;
  /** Refusals Ward itself observed (limit kills, pids refusals, truncation). */
  denials: Denial[];
  /** The effective policy's hash for this probe's run (overlay included): matches its launch record. */
  policy_sha256: string | null;
  /** Layers missing in this run (degraded mode), as the launch record lists them. */
  degraded: string[];
  /** Records of this probe's run appended to the audit log (launch, denials, exit); 0 when the suite is not recorded. */
  audit_records?: number;
  duration_ms: number;
}

export interface ProbeSummary {
  held: number;
  broken: number;
  error: number;
  skipped: number;
}

export interface ProbeReport {
  ward_version: string;
  /**
   * SHA-256 of the policy under test as it applies to the user's workspace (the
   * current directory unless told otherwise): what `ward policy show` prints
   * there. Each probe ran in its own fresh workspace, so its own hash (in its
   * result and its launch record) differs by those paths.
   */
  policy_sha256: string;
  /** Canonical JSON of that effective policy (the bytes the hash covers). */
  policy_canonical?: string;
  /** Where the policy came from (profiles and files, in merge order). */
  policy_sources: string[];
  /** The audit log every probe's run was recorded in, or null when the suite was not recorded. */
  audit_log?: string | null;
  started: string;
  finished: string;
  host: { kernel: string; uid: number; arch: string; landlock_abi: number | null; cgroup: 'v1' | 'v2' | 'none' | 'unknown' };
  /** True when the runs were allowed to drop a layer (--allow-degraded). */
  allow_degraded: boolean;
  summary: ProbeSummary;
  probes: ProbeResult[];
}
