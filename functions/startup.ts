// Start-up, loaded by entry.ts: configuration from the environment, the JSON
// logger on stdout, the HTTP server, and graceful shutdown on SIGTERM/SIGINT.
import { ConfigError, loadConfig } from "./config.ts";
import { createLogger, formatLine, stdoutSink } from "./logger.ts";
import { startServer } from "./http-server.ts";

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    stdoutSink.write(formatLine(new Date().toISOString(), "error", `invalid configuration: ${err.message}`));
    process.exitCode = 1;
    return;
  }
  const logger = createLogger({ level: config.logLevel });
  process.on("exit", () => logger.flush());

  const running = await startServer(config, { env: process.env, logger });
  const stop = (signal: NodeJS.Signals): void => {
    void running.shutdown(signal).then((code) => {
      logger.flush();
      process.exit(code);
    });
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

main().catch((err: unknown) => {
  stdoutSink.write(formatLine(new Date().toISOString(), "error", `fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`));
  process.exit(1);
});
