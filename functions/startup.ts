// Start-up, loaded by entry.ts: configuration from the environment, the JSON
// logger on stdout, the HTTP server, and graceful shutdown on SIGTERM/SIGINT.
import { type Config, ConfigError, loadConfig } from "./config.ts";
import { createLogger, formatLine, stdoutSink } from "./logger.ts";
import { startServer } from "./http-server.ts";

// After a normal shutdown, how long the last log lines may wait for stdout's
// reader: no longer than requests were given (SHUTDOWN_GRACE_MS), and at most
// 5 s, so that with the defaults the process is gone well within Knative's
// terminationGracePeriodSeconds (60) even when nobody reads its logs.
const LOG_DRAIN_MS = 5_000;
// On 'exit' no callback runs again: one short synchronous attempt.
const EXIT_FLUSH_MS = 200;

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    stdoutSink.writeSync(formatLine(new Date().toISOString(), "error", `invalid configuration: ${err.message}`), EXIT_FLUSH_MS);
    process.exitCode = 1;
    return;
  }
  const logger = createLogger({ level: config.logLevel });
  process.on("exit", () => logger.flushAtExit(EXIT_FLUSH_MS));

  const running = await startServer(config, { env: process.env, logger });
  const drainMs = Math.min(LOG_DRAIN_MS, config.shutdownGraceMs);
  const stop = (signal: NodeJS.Signals): void => {
    void running.shutdown(signal).then(async (code) => {
      await logger.drain(drainMs);
      process.exit(code);
    });
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

main().catch((err: unknown) => {
  stdoutSink.writeSync(
    formatLine(new Date().toISOString(), "error", `fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`),
    EXIT_FLUSH_MS,
  );
  process.exit(1);
});
