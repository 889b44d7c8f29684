/**
 * Grace periods that end only after Ward's event loop has looked for input once more.
 */

/**
 * A wait of `ms` that ends only after the event loop has also polled for input once since the
 * timer fired. A timer runs before the poll of its turn, so when Ward's loop is held by
 * synchronous work (a burst of audit appends held it for seconds on a loaded machine), input that
 * arrived meanwhile is read only after the expired timers have run: a plain timer decides
 * "nothing came in time" while the input sits unread in the kernel. It did: the signal pipe that
 * tells of a launch's exit is read when it is handled, so an exit that came during a stall was
 * seen at its end; the 200 ms grace for the status report then expired before the next poll, and
 * the report, written long before the exit, was still unread: the run failed as if bwrap had.
 * setImmediate runs after the poll of the timer's own turn.
 */
export function loopGrace(ms: number, ref: boolean): { start(): Promise<void>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  let turn: NodeJS.Immediate | undefined;
  let cancelled = false;
  return {
    // Started after cancel() (a race already won), it never ends and holds nothing.
    start: () =>
      new Promise<void>((resolve) => {
        if (cancelled) return;
        timer = setTimeout(() => (turn = setImmediate(resolve)), Math.max(0, ms));
        if (!ref) timer.unref();
      }),
    cancel: () => {
      cancelled = true;
      clearTimeout(timer);
      if (turn) clearImmediate(turn);
    },
  };
}
