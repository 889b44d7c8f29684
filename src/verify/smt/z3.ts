/**
 * The one place Ward talks to Z3. The solver is loaded lazily (it is ~35 MB of WASM and takes
 * ~200 ms to start), once per process, and every check runs with a timeout: an `unknown` answer
 * is passed up as UNKNOWN and is never turned into PROVED.
 */
import type { Bool, Context, Model } from 'z3-solver';

export type Z3Context = Context<'ward'>;

let loading: Promise<Z3Context> | undefined;

/** The shared Z3 context (initialised on first use). */
export function z3(): Promise<Z3Context> {
  loading ??= (async () => {
    const { init } = await import('z3-solver');
    const { Context } = await init();
    return Context('ward');
  })();
  return loading;
}

export type CheckResult = { status: 'sat'; model: Model<'ward'> } | { status: 'unsat' } | { status: 'unknown'; reason: string };

/** Is `formula` satisfiable? At most `timeoutMs` of solver time. */
export async function check(ctx: Z3Context, formula: Bool<'ward'>, timeoutMs: number): Promise<CheckResult> {
  const solver = new ctx.Solver();
  solver.set('timeout', Math.max(1, Math.floor(timeoutMs)));
  solver.add(formula);
  const r = await solver.check();
  if (r === 'sat') return { status: 'sat', model: solver.model() };
  if (r === 'unsat') return { status: 'unsat' };
  return { status: 'unknown', reason: solver.reasonUnknown() };
}
