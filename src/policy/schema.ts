/**
 * The policy schema: the single source of truth for what a policy may say.
 * Every key is strict (an unknown key is an error, never ignored: a typo in a
 * deny list must not silently grant), and every `.describe()` text is what the
 * error message shows as the fix.
 */
import { z } from 'zod';

/**
 * Built on first use, not at import: constructing the schema costs ~10-15 ms of a cold
 * start, and `ward run` under a built-in profile never needs it (the profiles are typed
 * constants, checked against this schema by test/policy/load.test.ts).
 */
function build() {
  /** A path as written in a policy, before `~` and `${...}` are expanded. */
  const PathString = z
    .string()
    .min(1)
    .describe('an absolute path, or one starting with ~ or ${WORKSPACE} (e.g. "${WORKSPACE}/build", "~/.cache/pip")');

  const PathEntry = z.union([
    PathString,
    z.strictObject({
      path: PathString,
      optional: z
        .boolean()
        .optional()
        .describe('true: skip the entry when the path does not exist (profiles use it for /lib64 and the like)'),
    }),
  ]);

  const PathList = z.array(PathEntry).describe('a list of paths');

  /** Sizes: a number of bytes, or a string like "512MiB", "2G", "64k". */
  const Size = z
    .union([z.number().int().positive(), z.string().regex(/^\s*\d+(\.\d+)?\s*([kmgt]i?b?|b)?\s*$/i), z.literal('unlimited')])
    .describe('a size in bytes, or a string like "512MiB", "2GiB", "64k", or "unlimited"');

  /** Durations: seconds, or a string like "30s", "10m", "1h", "500ms". */
  const Duration = z
    .union([z.number().positive(), z.string().regex(/^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$/i), z.literal('unlimited')])
    .describe('a duration in seconds, or a string like "500ms", "30s", "10m", "1h", or "unlimited"');

  const Count = z
    .union([z.number().int().positive(), z.literal('unlimited')])
    .describe('a whole number greater than 0, or "unlimited"');

  const HostPort = z
    .string()
    .regex(/^(\*\.)?[A-Za-z0-9_.-]+:(\d{1,5}|\*)$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/)
    .describe('a "host:port" entry such as "registry.npmjs.org:443" or "*.github.com:443"');

  const LocalPort = z
    .union([z.number().int().min(1).max(65535), z.string().regex(/^(127\.0\.0\.1|localhost):\d{1,5}$/)])
    .describe('a port number (1-65535) or "127.0.0.1:PORT" / "localhost:PORT"');

  const EnvName = z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
    .describe('an environment variable name (letters, digits, underscore; not starting with a digit)');

  const PolicySchema = z
    .strictObject({
      version: z.literal(1).optional().describe('the policy format version; only 1 exists'),
      extends: z
        .array(z.string().min(1))
        .optional()
        .describe('built-in profiles (minimal, node, python, default) or policy files (relative to this file), merged in order before this file'),
      filesystem: z
        .strictObject({
          read: PathList.optional().describe('paths the sandbox may read (a directory grants everything below it)'),
          write: PathList.optional().describe('paths the sandbox may create, change and delete (implies read)'),
          execute: PathList.optional().describe('paths the sandbox may execute programs from (implies read)'),
          append: PathList.optional().describe('paths the sandbox may only append to (static tier: mounted read-only)'),
          visible: PathList.optional().describe('paths whose existence the sandbox may know but never read (static tier: hidden)'),
          deny: PathList.optional().describe('paths hidden from the sandbox whatever else grants them; deny wins'),
        })
        .optional(),
      network: z
        .strictObject({
          allow: z.array(HostPort).optional().describe('host:port destinations the sandbox may connect to; empty means no network'),
          allow_local: z
            .array(LocalPort)
            .optional()
            .describe('ports of services on the host\'s loopback (127.0.0.1) the sandbox may connect to, e.g. 3000 or "127.0.0.1:3000"'),
        })
        .optional(),
      resources: z
        .strictObject({
          memory: Size.optional().describe('memory limit for the whole process tree (cgroup), e.g. "2GiB"'),
          pids: Count.optional().describe('maximum number of processes and threads at once (cgroup pids, RLIMIT_NPROC)'),
          cpus: z
            .union([z.number().positive().max(1024), z.literal('unlimited')])
            .optional()
            .describe('CPU bandwidth in cores, e.g. 1.5 (cgroup cpu.max / cfs quota)'),
          cpu_time: Duration.optional().describe('total CPU time before the command is killed, e.g. "10m"'),
          wall_time: Duration.optional().describe('wall-clock time before the whole process tree is killed, e.g. "30m"'),
          file_size: Size.optional().describe('largest file the sandbox may write (RLIMIT_FSIZE), e.g. "1GiB"'),
          open_files: Count.optional().describe('maximum open file descriptors per process (RLIMIT_NOFILE)'),
          output: Size.optional().describe('bytes of stdout+stderr kept; the rest is dropped and the run says so'),
        })
        .optional(),
      env: z
        .strictObject({
          pass: z.array(EnvName).optional().describe('environment variable names passed through from the caller (PATH, HOME, LANG, TERM always are)'),
          set: z.record(EnvName, z.string()).optional().describe('environment variables set in the sandbox, as NAME: value'),
        })
        .optional(),
      secrets: z
        .record(
          EnvName,
          z
            .strictObject({
              from_env: EnvName.optional().describe("the variable in Ward's own environment that holds the value"),
              from_file: z.string().min(1).optional().describe('a file outside the sandbox that holds the value (its first line)'),
              hosts: z.array(HostPort).min(1).describe('the host:port destinations the credential may be sent to (each also in network.allow)'),
              header: z
                .string()
                .regex(/^[A-Za-z0-9-]+$/)
                .optional()
                .describe('the request header the credential may appear in, e.g. "Authorization"; default: any header'),
            })
            .describe('a brokered credential: the sandbox sees a placeholder in this variable; Ward adds the value on the way out'),
        )
        .optional()
        .describe('credentials the sandbox may use but never read, keyed by the variable name it sees'),
      syscalls: z
        .strictObject({
          deny: z.array(z.string().regex(/^[a-z0-9_]+$/)).optional().describe('extra x86_64 syscall names to refuse with EPERM'),
          allow_ia32: z.boolean().optional().describe('true: allow 32-bit (i386) programs, under the same syscall rules; default false kills them'),
        })
        .optional(),
      rules: z
        .array(
          z
            .strictObject({
              after: z
                .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
                .describe('the event that triggers the rule, "read|write|exec|connect PATTERN" (e.g. "read ${WORKSPACE}/secrets/**"), or a list of events that must all have happened'),
              revoke: z
                .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
                .describe('what is taken away from then on: "network", or "read|write|exec|append PATH-PATTERN", or "connect HOST:PORT", or a list of them'),
            })
            .describe('a dynamic rule: after EVENT, revoke ACCESS (rules only ever take permissions away)'),
        )
        .optional()
        .describe('dynamic rules, e.g. [{after: "read ~/secrets/**", revoke: network}]; they need supervised mode to run'),
      invariants: z
        .array(z.string().min(1).describe('an invariant such as "never read ~/secrets/**" or "never connect * after read ${WORKSPACE}/secrets/**"'))
        .optional()
        .describe('properties `ward verify` proves about this policy (see "Invariants" in docs/policy.md)'),
      sandbox: z
        .strictObject({
          landlock: z
            .enum(['required', 'optional', 'off'])
            .optional()
            .describe('Landlock, the second filesystem layer: required (refuse to run without it), optional, or off'),
          allow_degraded: z
            .boolean()
            .optional()
            .describe('true: `ward run --allow-degraded` may run with a missing layer (recorded); false: never'),
          home: z
            .enum(['tmpfs', 'none'])
            .optional()
            .describe('tmpfs: $HOME is an empty private directory (granted paths below it are bound in); none: $HOME does not exist'),
        })
        .optional(),
    })
    .describe('a Ward policy');
  return { PolicySchema, PathEntry };
}

let built: ReturnType<typeof build> | undefined;

/** The policy schema (zod), built once. */
export function policySchema(): ReturnType<typeof build>['PolicySchema'] {
  built ??= build();
  return built.PolicySchema;
}

export type PathEntry = z.infer<ReturnType<typeof build>['PathEntry']>;
export type PolicyFile = z.infer<ReturnType<typeof build>['PolicySchema']>;


/** The permission lists of `filesystem`, in a fixed order used everywhere. */
export const FS_KEYS = ['read', 'write', 'execute', 'append', 'visible', 'deny'] as const;
export type FsKey = (typeof FS_KEYS)[number];
