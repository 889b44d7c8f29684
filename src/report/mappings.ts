/**
 * Names for the framework ids probes carry, so an auditor reading the report
 * does not need the catalogues beside it. Only ids that appear in a report are
 * printed in its legend; an id not listed here is shown as it is.
 */

/** OWASP Top 10 for Agentic Applications (2026), from genai.owasp.org. */
export const ASI_NAMES: Readonly<Record<string, string>> = {
  ASI01: 'Agent Goal Hijack',
  ASI02: 'Tool Misuse and Exploitation',
  ASI03: 'Identity and Privilege Abuse',
  ASI04: 'Agentic Supply Chain Vulnerabilities',
  ASI05: 'Unexpected Code Execution (RCE)',
  ASI06: 'Memory & Context Poisoning',
  ASI07: 'Insecure Inter-Agent Communication',
  ASI08: 'Cascading Failures',
  ASI09: 'Human-Agent Trust Exploitation',
  ASI10: 'Rogue Agents',
};

/** NIST SP 800-53 Rev. 5 controls a sandbox's evidence speaks to. */
export const NIST_NAMES: Readonly<Record<string, string>> = {
  'AC-3': 'Access Enforcement',
  'AC-4': 'Information Flow Enforcement',
  'AC-6': 'Least Privilege',
  'AU-2': 'Event Logging',
  'AU-3': 'Content of Audit Records',
  'AU-6': 'Audit Record Review, Analysis, and Reporting',
  'AU-9': 'Protection of Audit Information',
  'AU-10': 'Non-repudiation',
  'AU-12': 'Audit Record Generation',
  'CA-8': 'Penetration Testing',
  'CM-5': 'Access Restrictions for Change',
  'CM-6': 'Configuration Settings',
  'CM-7': 'Least Functionality',
  'IA-5': 'Authenticator Management',
  'RA-5': 'Vulnerability Monitoring and Scanning',
  'SA-8': 'Security and Privacy Engineering Principles',
  'SC-2': 'Separation of System and User Functionality',
  'SC-3': 'Security Function Isolation',
  'SC-4': 'Information in Shared System Resources',
  'SC-5': 'Denial-of-Service Protection',
  'SC-6': 'Resource Availability',
  'SC-7': 'Boundary Protection',
  'SC-8': 'Transmission Confidentiality and Integrity',
  'SC-12': 'Cryptographic Key Establishment and Management',
  'SC-13': 'Cryptographic Protection',
  'SC-28': 'Protection of Information at Rest',
  'SC-39': 'Process Isolation',
  'SC-44': 'Detonation Chambers',
  'SI-3': 'Malicious Code Protection',
  'SI-4': 'System Monitoring',
  'SI-7': 'Software, Firmware, and Information Integrity',
  'SI-10': 'Information Input Validation',
  'SI-16': 'Memory Protection',
};

/** The name of a NIST control or enhancement: `AC-6(9)` is named after AC-6. */
export function nistName(id: string): string | undefined {
  return NIST_NAMES[id] ?? NIST_NAMES[id.replace(/\s*\(\d+\)$/, '')];
}

/**
 * The napkin's promises (README "The security model in three minutes"), keyed
 * as the probe suite names them, in the napkin's order: the promise in words and
 * what says no. A key not listed here is shown as it is, after these.
 */
export const PROMISES: readonly { key: string; text: string; says_no: string }[] = [
  { key: 'filesystem', text: 'sees only the files the policy names', says_no: 'an empty mount namespace (bwrap) with only granted paths bound in, plus Landlock' },
  { key: 'syscalls', text: 'no dangerous syscalls', says_no: 'a seccomp-bpf filter Ward compiles from the policy' },
  { key: 'egress', text: 'no egress', says_no: 'an empty network namespace' },
  { key: 'resources', text: 'hard resource limits', says_no: "a cgroup per run (v2, v1 fallback) + rlimits + Ward's own clocks, SIGKILL of the whole tree" },
  { key: 'escalation', text: 'cannot escalate', says_no: 'user namespace, all capabilities dropped, no_new_privs, no nested namespaces' },
  { key: 'secrets', text: 'secrets never enter', says_no: "environment scrubbed to a list of names; secret files masked; Ward's own state never grantable" },
  { key: 'dynamic-rules', text: 'decisions that change at run time (rules:) hold', says_no: "Ward's supervisor (seccomp user notification: opens emulated, connect/unlink/rename/exec decided) and the egress broker, on the rules' shared state" },
  { key: 'usability', text: 'legitimate work succeeds under the same policy', says_no: 'nothing may: a sandbox that blocks everything does not pass' },
];

/** The mechanisms probes name, in words. */
export const MECHANISM_NAMES: Readonly<Record<string, string>> = {
  'mount-namespace': 'mount namespace (bwrap)',
  landlock: 'Landlock',
  seccomp: 'seccomp filter',
  capabilities: 'capabilities dropped',
  'no-new-privs': 'no_new_privs',
  'user-namespace': 'user namespace',
  'pid-namespace': 'pid namespace',
  'net-namespace': 'empty network namespace',
  'ipc-namespace': 'ipc namespace',
  'uts-namespace': 'uts namespace',
  'new-session': 'new session (no controlling terminal)',
  cgroup: 'cgroup limits',
  rlimit: 'rlimits',
  'wall-clock': "Ward's wall clock",
  'output-cap': 'output cap',
  'env-scrub': 'environment rebuilt from env.pass',
  launcher: "Ward's launcher",
  sandbox: 'the sandbox as a whole',
  supervisor: "Ward's supervisor (supervised mode)",
};
