/**
 * Supervised mode, the part that runs in Ward's main thread: compile the notify filter, make
 * the socket the inner launcher hands its listener over, and start the worker thread that
 * answers notifications (worker.ts). launch() (src/sandbox/launch.ts) wires it in:
 *
 *   startSupervisor()  -> childFd goes to the launcher as fd 9 (`inner --supervise-fd 9`)
 *   worker             -> sends the filter, receives the listener, releases the launcher
 *   ready / onDenial   -> the launch record, then one denial record per refusal
 *   failed             -> launch kills the sandbox: a supervised command never runs unguarded
 *   stop()             -> after the sandbox has exited
 */
import { closeSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { LandlockRule } from '../launcher/launcher.js';
import { checkSupervisedSyscalls, compileNotifyFilter, conditionalCalls, type NotifyConditions, type NotifyFilter } from './filter.js';
import { seqpacketPair } from './native.js';
import type { DeciderSpec, SupervisorDenial } from './types.js';
import type { WorkerInput, WorkerMessage } from './worker.js';

export { SUPERVISABLE, compileNotifyFilter, conditionalCalls, checkSupervisedSyscalls, type NotifyConditions, type NotifyFilter, type SupervisedSyscall } from './filter.js';
export type { Decide, DeciderContext, Decision, DeciderSpec, SupervisedEvent, SupervisorDenial } from './types.js';
export { staticAllows } from './static.js';


export interface SuperviseOptions {
  /** The syscalls decided at run time (see SUPERVISABLE). */
  syscalls: string[];
  /** The module holding the decision function (loaded in the supervisor's thread). */
  decider: DeciderSpec;
  /** Calls notified only under argument conditions (filter.ts NotifyConditions). */
  conditions?: NotifyConditions;
  /** filesystem.append, real paths: append-only files the supervisor enforces (worker.ts). */
  append?: string[];
  /** filesystem.visible, real paths: visible-only files, never opened nor exec'd (worker.ts). */
  visible?: string[];
  /** "dev:ino" of the files inside directory entries of `append` / `visible` (rules-aliases.ts entryFileIds). */
  appendIds?: string[];
  visibleIds?: string[];
}

export interface SupervisorStart {
  filter: NotifyFilter;
  /** Landlock's rule list for this run, or null when Landlock is not in force (static.ts). */
  rules: LandlockRule[] | null;
  onDenial(d: SupervisorDenial): void;
  /** What the decision module reported (DeciderContext.report), in order with the refusals. */
  onReport?(data: unknown): void;
  /** Called once if the supervisor fails after it was started; the caller kills the sandbox. */
  onFailure(message: string): void;
}

/** What the thread found once the listener was in hand (the launch record's layers.supervisor). */
export interface SupervisorReady {
  capsDropped: boolean;
  syncWakeUp: boolean;
  /** The filter has SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: a signal cannot abandon a call Ward is performing. */
  waitKillable: boolean;
}

export interface Supervisor {
  /** The launcher's end of the handshake socket: pass it to the child, then call closeChildFd(). */
  childFd: number;
  closeChildFd(): void;
  /** Resolves once the launcher holds the filter and the loop runs. */
  ready: Promise<SupervisorReady>;
  /**
   * Ends the loop (if the sandbox's exit has not already) and waits for the thread. Returns how
   * many notifications it answered, and how many of those were decided blind (worker.ts).
   */
  stop(): Promise<{ notifications: number; blind: number }>;
}

let threadsStarted = 0;
const runningThreads = new Set<number>();
/** Kernel thread ids of the supervisor threads serving a run now (tests: signals aimed at one). */
export function supervisorThreadIds(): number[] {
  return [...runningThreads];
}
/** How many supervisor threads this process has started (tests: a thread serves run after run). */
export function supervisorThreadsStarted(): number {
  return threadsStarted;
}

/**
 * The worker thread: dist/supervisor/worker.js once built. Under tsx (the tests run the sources), a worker does
 * not inherit tsx's loader for its entry file, so a two-line bootstrap registers it first.
 */
function newWorker(): Worker {
  threadsStarted++;
  if (!import.meta.url.endsWith('.ts')) {
    // dist/supervisor/index.js has it beside it; the CLI bundle (dist/ward.mjs) one folder down.
    const beside = new URL('./worker.js', import.meta.url);
    return new Worker(existsSync(beside) ? beside : new URL('./supervisor/worker.js', import.meta.url));
  }
  const api = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./worker.ts', import.meta.url).href;
  return new Worker(`import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`, { eval: true });
}

/** The rules engine's decision module (rules-decider), found the way the worker file is. */
export function rulesDeciderModule(): string {
  if (import.meta.url.endsWith('.ts')) return fileURLToPath(new URL('./rules-decider.ts', import.meta.url));
  const beside = new URL('./rules-decider.js', import.meta.url);
  return fileURLToPath(existsSync(beside) ? beside : new URL('./supervisor/rules-decider.js', import.meta.url));
}

/**
 * One supervisor thread started ahead of time. Starting a worker and loading koffi costs tens of
 * milliseconds, and the launcher waits for the supervisor before it execs: a spare thread takes
 * that off the next run's start. It is unref'd (it never keeps Ward alive), holds no fd and no
 * run state, and is used for one run only. A plain cache, like the launcher path in
 * launcher.ts: nothing depends on it being there.
 */
let spare: Worker | null = null;

/** Start the spare thread now (e.g. when an agent session begins), so the first run is fast too. */
export function prewarmSupervisor(): void {
  if (spare) return;
  keepSpare(newWorker());
}

// While a thread waits as the spare, these forget it if it dies; they are removed when a run takes it.
let spareDrop: (() => void) | null = null;
function keepSpare(w: Worker): void {
  w.unref();
  const drop = () => {
    if (spare === w) spare = null;
  };
  w.once('exit', drop);
  w.once('error', drop);
  spare = w;
  spareDrop = () => {
    w.off('exit', drop);
    w.off('error', drop);
  };
}

function takeWorker(): Worker {
  let w: Worker;
  if (spare) {
    w = spare;
    spareDrop?.();
  } else w = newWorker();
  spare = null;
  spareDrop = null;
  w.ref();
  return w;
}

export function validateSupervise(opts: SuperviseOptions): NotifyFilter {
  checkSupervisedSyscalls(opts.syscalls);
  if (!opts.decider || typeof opts.decider.module !== 'string' || opts.decider.module === '') {
    throw new Error('supervise: decider.module must name the module that exports createDecider(data)');
  }
  return compileNotifyFilter(opts.syscalls, opts.conditions ?? {});
}

export function startSupervisor(opts: SuperviseOptions, start: SupervisorStart): Supervisor {
  const [ours, theirs] = seqpacketPair();
  const stopFlag = new SharedArrayBuffer(4);
  const input: WorkerInput = {
    sockFd: ours,
    program: new Uint8Array(start.filter.program),
    names: [...start.filter.names],
    // A call notified under a condition is decided like a listed one when it is notified.
    decided: [...new Set([...checkSupervisedSyscalls(opts.syscalls), ...conditionalCalls(opts.conditions)])],
    rules: start.rules,
    append: opts.append ?? [],
    visible: opts.visible ?? [],
    appendIds: opts.appendIds ?? [],
    visibleIds: opts.visibleIds ?? [],
    decider: opts.decider,
    stop: stopFlag,
  };
  let worker: Worker;
  try {
    worker = takeWorker();
    worker.postMessage(input);
  } catch (e) {
    closeSync(ours);
    closeSync(theirs);
    throw e;
  }
  let childOpen = true;
  let thread = -1;
  let notifications = 0;
  let blind = 0;
  let finished = false;
  let failedOnce = false;
  const fail = (message: string) => {
    if (finished || failedOnce) return;
    failedOnce = true;
    start.onFailure(message);
  };
  let readyResolve!: (v: SupervisorReady) => void;
  let readyReject!: (e: Error) => void;
  const ready = new Promise<SupervisorReady>((res, rej) => ((readyResolve = res), (readyReject = rej)));
  ready.catch(() => {});
  // Resolves when the thread is done with this run: reusable ('idle'), or gone ('exit').
  let endedResolve!: (reusable: boolean) => void;
  const ended = new Promise<boolean>((res) => (endedResolve = res));
  const onMessage = (m: WorkerMessage) => {
    if (m.type === 'ready') {
      thread = m.thread;
      runningThreads.add(thread);
      readyResolve({ capsDropped: m.capsDropped, syncWakeUp: m.syncWakeUp, waitKillable: m.waitKillable });
    }
    else if (m.type === 'denial') start.onDenial({ event: m.event, errno: m.errno, reason: m.reason });
    else if (m.type === 'report') start.onReport?.(m.data);
    else if (m.type === 'done') {
      // The loop ended because no process uses the filter any more: the sandbox is gone.
      notifications = m.notifications;
      blind = m.blind;
      finished = true;
    } else if (m.type === 'idle') endedResolve(true);
    else if (m.type === 'error') {
      readyReject(new Error(m.message));
      fail(`the supervisor failed: ${m.message}`);
    }
  };
  const onError = (e: Error) => {
    readyReject(e);
    fail(`the supervisor thread crashed: ${e.message}`);
  };
  const onExit = () => {
    readyReject(new Error('the supervisor thread exited before it was ready'));
    // An exit while the sandbox may still run (nobody called stop) is a failure.
    fail('the supervisor thread exited while the sandbox was running');
    endedResolve(false);
  };
  worker.on('message', onMessage);
  worker.on('error', onError);
  worker.once('exit', onExit);
  return {
    childFd: theirs,
    closeChildFd: () => {
      if (childOpen) closeSync(theirs);
      childOpen = false;
    },
    ready,
    async stop() {
      finished = true;
      Atomics.store(new Int32Array(stopFlag), 0, 1);
      const reusable = await ended;
      runningThreads.delete(thread);
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
      // A run just ended: another is likely to follow (an agent's next command). A thread whose
      // run ended cleanly takes it; otherwise a new one is started now.
      if (reusable && !spare) keepSpare(worker);
      else {
        if (reusable) void worker.terminate();
        prewarmSupervisor();
      }
      return { notifications, blind };
    },
  };
}
