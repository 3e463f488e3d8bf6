// Polling with a bound, for the tests' "until this shows up" waits.
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `probe` until it returns something other than undefined (or false),
 * bounded by `timeoutMs`. A probe that throws counts as "not yet"; the last
 * error and `detail()` go into the timeout message.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  options: { readonly timeoutMs?: number; readonly intervalMs?: number; readonly detail?: () => string } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const last = lastError === undefined ? "" : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      const detail = options.detail === undefined ? "" : `\n${options.detail()}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}${detail}`);
    }
    await sleep(options.intervalMs ?? 100);
  }
}
