/**
 * The one place Ward talks to Z3. The solver is loaded lazily (it is ~35 MB of WASM and takes
 * ~200 ms to start), once per process, and every check runs with a timeout: an `unknown` answer
 * is passed up as UNKNOWN and is never turned into PROVED.
 *
 * Why the low-level API is wrapped (the cause of a wrong `unsat` seen once in CI): z3-solver
 * runs `check()` on a pthread, while the main thread is free. Its high-level objects release
 * their native terms from a FinalizationRegistry (`Z3.dec_ref` and friends), and those
 * callbacks run on the main thread whenever the garbage collector says so: during a check
 * too. Z3's term manager is not thread-safe, so a term freed on the main thread while the
 * solver thread creates terms in the same context corrupts it. Reproduced by forcing a GC
 * every 100 ms during the differential test (test/verify/decide.test.ts): wrong `unsat`
 * answers, "Sorts Bool and (RegEx String) are incompatible", and out-of-bounds crashes; with
 * the guard below, none (SECURITY-MODEL.md has the numbers). So while an asynchronous call
 * is in flight, releases are queued and run after it returns, and any other API call throws
 * (it would be the same race, caused by our own code). Z3's own `enable_concurrent_dec_ref`
 * (meant for finalizer threads) was tried instead of this guard: the GC test in
 * test/verify/exact.test.ts still failed 1 run in 3 with it.
 *
 * This removes the cause we found; it does not make Z3 infallible. Every PROVED is also
 * confirmed by an independent decision procedure (../properties/exact.ts).
 */
import type { Bool, Context, Model } from 'z3-solver';

export type Z3Context = Context<'ward'>;

let loading: Promise<Z3Context> | undefined;

/** The shared Z3 context (initialised on first use). */
export function z3(): Promise<Z3Context> {
  loading ??= (async () => {
    const api = await import('z3-solver');
    const { Z3, Context } = await api.init();
    guard(Z3 as unknown as Record<string, unknown>);
    return Context('ward');
  })();
  return loading;
}

/**
 * The calls that release native objects (what the finalizers call): every `*dec_ref`, the
 * `del_*` destructors and `rcf_del`; not `mk_set_del` (a term constructor) nor
 * `enable_concurrent_dec_ref` (a setting).
 */
const RELEASE = /^(?!enable_concurrent_)[a-z_]*dec_ref$|^del_(context|config|constructor|constructor_list)$|^rcf_del$/;
/**
 * Calls that only read the context's last error code: the high-level API makes them right
 * after starting a check (its `check(promise)` helper), so they run while it is in flight.
 */
const READ_ONLY = /^get_error_(code|msg)$/;

/** Counts, for tests and the write-up: releases deferred past a running check. */
export const guardStats = { deferred: 0, asyncCalls: 0 };

/**
 * Wraps every function of the low-level API object in place (the high-level API looks them up
 * on this same object at call time). While a call that returned a promise is unsettled,
 * releases are queued and other calls refused.
 */
function guard(api: Record<string, unknown>): void {
  let inFlight = 0;
  const queued: (() => void)[] = [];
  const drain = () => {
    while (inFlight === 0 && queued.length > 0) queued.shift()!();
  };
  for (const [name, f] of Object.entries(api)) {
    if (typeof f !== 'function') continue;
    const fn = f as (...a: unknown[]) => unknown;
    api[name] = (...args: unknown[]): unknown => {
      if (inFlight > 0 && !READ_ONLY.test(name)) {
        if (RELEASE.test(name)) {
          guardStats.deferred++;
          queued.push(() => fn(...args));
          return undefined;
        }
        throw new Error(`internal: Z3 ${name} called while a solver call runs on another thread (Z3 contexts are not thread-safe)`);
      }
      const r = fn(...args);
      if (r instanceof Promise) {
        guardStats.asyncCalls++;
        inFlight++;
        return r.finally(() => {
          inFlight--;
          drain();
        });
      }
      return r;
    };
  }
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

/** The check function the deciders use; tests pass one that lies to prove a lie is caught. */
export type CheckFn = typeof check;
