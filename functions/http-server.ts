// The process lifecycle around the HTTP app: listen, and on shutdown stop
// taking work, let in-flight requests finish, and close within a grace period.
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Config } from "./config.ts";
import { wireGreeter, type GreeterDeps } from "./wiring.ts";

// See app.ts: a plain ES module import of node:http would also load undici.
const { createServer } = process.getBuiltinModule("node:http");

export interface RunningServer {
  readonly server: Server;
  readonly port: number;
  readonly url: string;
  /** Resolves with the exit code: 0 when every request finished in time, 1 when some were cut off. */
  shutdown(reason: string): Promise<number>;
}

export async function startServer(config: Config, deps: GreeterDeps): Promise<RunningServer> {
  const { logger } = deps;
  const greeter = await wireGreeter(config, deps);
  const server = createServer(greeter.app);
  // Knative's queue-proxy keeps connections open for a long time; stay above its idle timeout.
  server.keepAliveTimeout = 75_000;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port: config.port, host: config.host }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = config.host ?? "localhost";
  logger.info(`listening on port ${port}`, { port });

  let closing: Promise<number> | undefined;
  const shutdown = (reason: string): Promise<number> => {
    closing ??= new Promise<number>((resolve) => {
      greeter.setReady(false);
      // From now on every answer tells its client to open a new connection,
      // which reaches a pod that is not shutting down. (Here rather than as
      // Express middleware: no cost on each request while serving.)
      server.prependListener("request", (_req, res) => res.setHeader("connection", "close"));
      logger.info(`shutting down (${reason}): finishing in-flight requests`, { graceMs: config.shutdownGraceMs });
      let cutOff = false;
      let closed = false;
      const graceEnds = Date.now() + config.shutdownGraceMs;
      const close = (): void => {
        if (closed) return;
        closed = true;
        clearInterval(sweep);
        clearTimeout(deadline);
        server.close(() => {
          logger.info("server closed");
          // Kubernetes Events are written after the reply: wait for them too, within what is left of the grace period.
          let timer: NodeJS.Timeout | undefined;
          const late = new Promise<true>((done) => {
            timer = setTimeout(() => done(true), Math.max(0, graceEnds - Date.now()));
          });
          void Promise.race([greeter.settle().then(() => false as const), late]).then((timedOut) => {
            clearTimeout(timer);
            if (timedOut) {
              cutOff = true;
              logger.warn("shutdown grace period is over: Kubernetes Events still being written are given up");
            }
            resolve(cutOff ? 1 : 0);
          });
        });
        server.closeAllConnections();
      };
      // The listener stays open while requests are in flight, so that a probe
      // sees /readyz answer 503 rather than a refused connection; connections
      // are closed as they go idle, and once none is left the server closes.
      const sweep = setInterval(() => {
        server.closeIdleConnections();
        server.getConnections((err, count) => {
          if (err === null && count === 0) close();
        });
      }, 25);
      const deadline = setTimeout(() => {
        cutOff = true;
        logger.warn("shutdown grace period is over: closing the connections still open");
        close();
      }, config.shutdownGraceMs);
    });
    return closing;
  };

  return { server, port, url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`, shutdown };
}
