/**
 * Pre-warmed sandboxes for one policy (issue #6, Latency):
 *
 *   const pool = createPool({ policy: { profile: 'default' }, size: 2, workspace });
 *   const r = await pool.run(['npm', 'test']);     // same result shape as run()
 *   await pool.close();
 *
 * Each sandbox is built in full (cgroup, namespaces, mounts, seccomp, Landlock, rlimits) with
 * no command yet; its inner launcher waits on a channel only Ward can write
 * (src/sandbox/launch.ts launchWarm, ward-launch.c read_argv). A command is one message on that
 * channel and an execve: the ~5-10 ms of building the sandbox happen before it is asked for.
 *
 * One sandbox, one command: a handed-out sandbox is never handed out again, and is replaced in
 * the background. A warm sandbox that dies while it waits is dropped and replaced; one that dies
 * after the command was written but before it took it (the launcher acknowledges) did not run
 * it, and run() gives the command to another sandbox.
 */
import { WardError } from '../errors.js';
import { compile } from '../api.js';
import { assertLogHidden, openAudit } from '../audit/run-log.js';
import { launchWarm, type RunHandle, type RunRecord, type RunResult, type WarmSandbox } from '../sandbox/launch.js';
import { runAudit } from './audit.js';
import { encodeArgvMessage } from './message.js';
import { checkPoolOptions, checkRunOptions, unpoolable, type PoolOptions, type PoolRunOptions } from './options.js';

export interface PoolStats {
  /** Ready and unused. */
  warm: number;
  /** Being built. */
  starting: number;
  /** Handed out and still running. */
  running: number;
  /** The outer pids (bwrap's) of the warm sandboxes, for tests and diagnostics. */
  warmPids: number[];
  /** Sandboxes that ended unused (killed while warm) since the pool started. */
  lost: number;
}

export interface Pool {
  /** Runs argv in a warm sandbox and resolves when it has ended (as run()). */
  run(argv: string[], opts?: PoolRunOptions): Promise<RunResult>;
  /** Hands argv to a warm sandbox and returns at once (as start()); `stdin: 'pipe'` is possible here. */
  start(argv: string[], opts?: PoolRunOptions): Promise<RunHandle>;
  /** Resolves once `size` sandboxes are warm; rejects with the error if sandboxes cannot start. */
  ready(): Promise<void>;
  stats(): PoolStats;
  /** Kills every sandbox of the pool, warm or running, and resolves when all are gone and cleaned up. */
  close(): Promise<void>;
}

/** Warm starts that fail in a row before waiting callers get the error rather than wait on. */
const FAILURES_BEFORE_GIVING_UP = 3;
/** How long after a hand-out the replacement starts if the command is still running (see startOnce). */
const REFILL_DELAY_MS = 250;
/** A command whose sandbox died before taking it is given to another this many times more. */
const UNTAKEN_RETRIES = 2;

interface Slot {
  sb: WarmSandbox;
  /** Where the sandbox's records go once it is handed out. */
  forward: ((r: RunRecord) => void) | null;
  handedOut: boolean;
}

export function createPool(input: PoolOptions): Pool {
  const opts = checkPoolOptions(input);
  const env = opts.env ?? process.env;
  const plan = compile(opts.policy, { ...(opts.workspace !== undefined ? { workspace: opts.workspace } : {}), env });
  const bad = unpoolable(plan);
  if (bad) {
    throw new WardError(`this policy cannot run in a pool: ${bad.feature}: ${bad.why}`, {
      step: 'pool',
      fix: 'run it unpooled with run()/start() (every layer is in force there), or drop the feature from the policy',
    });
  }
  const writer = openAudit(opts.audit, env);
  writer?.prepare(); // a log that cannot take records stops the pool before anything runs
  if (writer) assertLogHidden(writer, plan);

  const warm: Slot[] = [];
  const starting = new Set<Slot>();
  const all = new Set<Slot>();
  const waiters: { resolve: (s: Slot) => void; reject: (e: unknown) => void }[] = [];
  const readyWaiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  let closed = false;
  let failures = 0;
  let lastError: unknown = null;
  let lost = 0;
  let refillTimer: NodeJS.Timeout | null = null;

  const settleReady = () => {
    if (warm.length >= opts.size) for (const w of readyWaiters.splice(0)) w.resolve();
  };

  const fill = () => {
    while (!closed && refillTimer === null && warm.length + starting.size < opts.size) spawnOne();
  };

  const onWarmFailure = (e: unknown) => {
    failures++;
    lastError = e;
    // The same error would greet every caller: give it to them rather than let them wait.
    if (failures >= FAILURES_BEFORE_GIVING_UP || warm.length + starting.size === 0) {
      for (const w of waiters.splice(0)) w.reject(e);
      for (const w of readyWaiters.splice(0)) w.reject(e);
    }
    // Back off, so a policy that cannot start here does not spin the machine.
    if (!closed && refillTimer === null) {
      refillTimer = setTimeout(() => ((refillTimer = null), fill()), Math.min(2000, 50 * 2 ** failures));
      refillTimer.unref();
    }
  };

  function spawnOne(): void {
    let sb: WarmSandbox;
    const slot = { forward: null, handedOut: false } as unknown as Slot;
    try {
      sb = launchWarm(plan, {
        onRecord: (r) => slot.forward?.(r),
        ...(opts.allowDegraded !== undefined ? { allowDegraded: opts.allowDegraded } : {}),
        ...(opts.verification !== undefined ? { verification: opts.verification } : {}),
        ...(opts.egress !== undefined ? { egress: opts.egress } : {}),
        env,
      });
    } catch (e) {
      onWarmFailure(e);
      return;
    }
    slot.sb = sb;
    starting.add(slot);
    all.add(slot);
    sb.ready.then(
      () => {
        starting.delete(slot);
        if (closed) return void sb.discard();
        failures = 0;
        lastError = null;
        const w = waiters.shift();
        if (w) w.resolve(slot);
        else warm.push(slot);
        settleReady();
      },
      (e: unknown) => {
        starting.delete(slot);
        if (!closed) onWarmFailure(e);
      },
    );
    void sb.ended.then(() => {
      all.delete(slot);
      const i = warm.indexOf(slot);
      if (i >= 0) {
        // Died while it waited (killed, or its launcher failed): dropped, never handed out.
        warm.splice(i, 1);
        lost++;
      }
      // After the caller has its result (a macrotask later): the spawn blocks this thread.
      setImmediate(fill);
    });
  }

  const acquire = (): Promise<Slot> => {
    if (closed) return Promise.reject(new WardError('the pool is closed', { step: 'pool', fix: 'create a new pool with createPool()' }));
    for (;;) {
      const slot = warm.shift();
      if (!slot) break;
      if (slot.sb.usable()) return Promise.resolve(slot);
      // Ended an instant ago; sb.ended will count it. Never handed out.
    }
    if (lastError !== null && failures >= FAILURES_BEFORE_GIVING_UP) return Promise.reject(lastError);
    const p = new Promise<Slot>((resolve, reject) => waiters.push({ resolve, reject }));
    fill();
    return p;
  };

  const startOnce = async (argv: string[], o: PoolRunOptions): Promise<RunHandle> => {
    for (;;) {
      const slot = await acquire();
      const audit = runAudit(writer, argv, plan.mounts.cwd);
      slot.forward = audit.onRecord;
      let h: RunHandle;
      try {
        h = slot.sb.handOut(argv, { stdin: o.stdin ?? 'ignore', output: o.output ?? 'capture', ...(o.signal ? { signal: o.signal } : {}) });
      } catch (e) {
        // Ended between acquire() and now: take another one; nothing was sent.
        if (!slot.sb.usable() && e instanceof WardError && e.step === 'pool:handout') continue;
        audit.failed(e);
        throw e;
      } finally {
        // Its replacement starts when the command ends (sb.ended), or REFILL_DELAY_MS after the
        // hand-out if it runs longer: building a sandbox (a synchronous spawn in this thread,
        // then bwrap) would otherwise compete with this command's start and end on a small
        // machine, and delay the caller's result.
        setTimeout(fill, REFILL_DELAY_MS);
      }
      slot.handedOut = true;
      return audit.wrap(h);
    }
  };

  // Each live sandbox holds one process 'exit' listener (launch.ts kills it if Ward exits): a pool
  // legitimately holds up to 2 × size (warm ones and running ones being replaced), which is no leak.
  const extraListeners = process.getMaxListeners() === 0 ? 0 : 2 * opts.size;
  process.setMaxListeners(process.getMaxListeners() + extraListeners);
  let listenersReturned = false;
  const returnListeners = () => {
    if (listenersReturned || extraListeners === 0) return;
    listenersReturned = true;
    process.setMaxListeners(Math.max(1, process.getMaxListeners() - extraListeners));
  };

  // Warm from the start. A policy that cannot start here at all (a refused cgroup, supervised mode
  // missing) fails now, with launch()'s error, rather than at the first command.
  fill();
  if (lastError !== null && starting.size === 0) {
    closed = true;
    if (refillTimer) clearTimeout(refillTimer);
    returnListeners();
    throw lastError;
  }

  return {
    async start(argv, ro) {
      const o = checkRunOptions(ro, false);
      encodeArgvMessage(argv); // bad argv is refused before a sandbox is spent on it
      return startOnce(argv, o);
    },
    async run(argv, ro) {
      const o = checkRunOptions(ro, true);
      encodeArgvMessage(argv);
      for (let attempt = 0; ; attempt++) {
        const h = await startOnce(argv, o);
        try {
          return await h.result;
        } catch (e) {
          // The sandbox died before it took the command: it never ran; another sandbox runs it.
          if (e instanceof WardError && e.step === 'pool:untaken' && attempt < UNTAKEN_RETRIES && !closed) continue;
          throw e;
        }
      }
    },
    ready() {
      if (warm.length >= opts.size) return Promise.resolve();
      if (closed) return Promise.reject(new WardError('the pool is closed', { step: 'pool' }));
      return new Promise<void>((resolve, reject) => {
        readyWaiters.push({ resolve, reject });
        fill();
      });
    },
    stats() {
      const running = [...all].filter((s) => s.handedOut).length;
      return { warm: warm.length, starting: starting.size, running, warmPids: warm.map((s) => s.sb.pid), lost };
    },
    async close() {
      closed = true;
      if (refillTimer) clearTimeout(refillTimer);
      refillTimer = null;
      const err = new WardError('the pool was closed', { step: 'pool' });
      for (const w of waiters.splice(0)) w.reject(err);
      for (const w of readyWaiters.splice(0)) w.reject(err);
      warm.length = 0;
      const slots = [...all];
      // Warm ones are discarded; running commands are killed too, so that nothing outlives the pool.
      await Promise.all(slots.map((s) => s.sb.discard()));
      returnListeners();
    },
  };
}
