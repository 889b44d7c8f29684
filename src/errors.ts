/**
 * Ward's own failures. Every refusal names what is wrong and how to fix it, and
 * exits 125 (like `env` and `timeout`), so a caller can tell Ward's "no" from the
 * command's own exit status.
 */
export const EXIT_WARD_ERROR = 125;
export const EXIT_TIMEOUT = 124;
export const EXIT_LIMIT_KILLED = 137;

export class WardError extends Error {
  readonly fix: string | undefined;
  readonly exitCode: number;
  /** The step of the launch path that refused (e.g. "preflight:bwrap"), for records. */
  readonly step: string | undefined;

  constructor(message: string, opts: { fix?: string; step?: string; exitCode?: number } = {}) {
    super(message);
    this.name = 'WardError';
    this.fix = opts.fix;
    this.step = opts.step;
    this.exitCode = opts.exitCode ?? EXIT_WARD_ERROR;
  }
}

/** A policy that cannot be accepted: names the file, the key path and the fix. */
export class PolicyError extends WardError {
  readonly file: string;
  readonly keyPath: string;
  readonly line: number | undefined;

  constructor(file: string, keyPath: string, problem: string, fix?: string, line?: number) {
    const where = `${file}${line !== undefined ? `:${line}` : ''}${keyPath ? ` at ${keyPath}` : ''}`;
    super(`policy error in ${where}: ${problem}`, fix === undefined ? { step: 'policy' } : { fix, step: 'policy' });
    this.name = 'PolicyError';
    this.file = file;
    this.keyPath = keyPath;
    this.line = line;
  }
}

/** Renders any error for a terminal: the message, then the fix on its own line. */
export function formatError(err: unknown): string {
  if (err instanceof WardError) {
    return `ward: ${err.message}${err.fix ? `\n  fix: ${err.fix}` : ''}`;
  }
  if (err instanceof Error) return `ward: internal error: ${err.stack ?? err.message}`;
  return `ward: internal error: ${String(err)}`;
}
