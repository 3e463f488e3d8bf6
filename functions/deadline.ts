// Deadlines that end with the work they bound. AbortSignal.timeout's timer
// cannot be cleared: every API call and every event left one behind, to fire
// seconds later on the event loop that serves the next events, build a
// DOMException with its stack and run the abort listeners of work long done.
// In a burst of 200 greetings that was ~600 stray timers firing mid-burst.

export interface Deadline {
  /** Aborts when the deadline passes (a TimeoutError) or the parent signal aborts (its reason). */
  readonly signal: AbortSignal;
  /** Whether it was this deadline, not the parent, that aborted the signal. */
  expired(): boolean;
  /** The work is over: clears the timer and lets go of the parent. Idempotent. */
  end(): void;
}

export function startDeadline(ms: number, parent?: AbortSignal): Deadline {
  const controller = new AbortController();
  let expired = false;
  const onParent = (): void => {
    clearTimeout(timer);
    controller.abort(parent?.reason);
  };
  const timer = setTimeout(() => {
    expired = true;
    parent?.removeEventListener("abort", onParent);
    controller.abort(new DOMException(`the deadline of ${ms} ms passed`, "TimeoutError"));
  }, ms);
  // A deadline never keeps the process alive on its own.
  timer.unref();
  if (parent !== undefined) {
    if (parent.aborted) onParent();
    else parent.addEventListener("abort", onParent, { once: true });
  }
  return {
    signal: controller.signal,
    expired: () => expired,
    end() {
      clearTimeout(timer);
      parent?.removeEventListener("abort", onParent);
    },
  };
}

/** Runs `work` under a deadline of its own, ended when the work settles. */
export async function withDeadline<T>(ms: number, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const deadline = startDeadline(ms);
  try {
    return await work(deadline.signal);
  } finally {
    deadline.end();
  }
}
