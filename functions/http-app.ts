// The HTTP boundary: routes, and the one place where errors become responses.
import type { CloudEventV1 } from "cloudevents";
import express, { type NextFunction, type Request, type Response } from "express";
import { decodeHeaderValue, decodeHttp, encodeBinary } from "./cloudevent-http.ts";
import { HttpError, toHttpError } from "./errors.ts";
import type { Handler } from "./handler.ts";
import type { Logger } from "./logger.ts";
import { eventTypeLabel, noMetrics, type Metrics } from "./metrics.ts";
import type { Scrape } from "./prometheus.ts";
import { prefersReply } from "./prefer-reply.ts";
import { readBody } from "./read-body.ts";
import { scopeFor, type RequestScope } from "./request-scope.ts";
import type { TraceCarriers } from "./trace-context.ts";

export interface AppOptions {
  readonly handle: Handler;
  readonly logger: Logger;
  readonly maxBodyBytes: number;
  /** False once shutdown has begun. */
  readonly isReady: () => boolean;
  readonly metrics?: Metrics;
  /** Serves GET /metrics; undefined: no such route (metrics off). */
  readonly scrape?: (() => Promise<Scrape>) | undefined;
  /** REPLIES: "when-asked" answers a greeting with its reply event only where the request says `Prefer: reply`. */
  readonly replies?: "always" | "when-asked";
}

/** Where a request's trace context may be: the W3C headers, and the event's distributed-tracing extension. */
function carriers(req: Request, event: CloudEventV1<unknown> | undefined): TraceCarriers {
  return {
    headers: { traceparent: req.headers["traceparent"], tracestate: req.headers["tracestate"] },
    extension: { traceparent: event?.["traceparent"], tracestate: event?.["tracestate"] },
  };
}

const JSON_TYPE = "application/json; charset=utf-8";

// Not `import … from "node:http"`: an ES module import of node:http makes Node
// load undici as well (for http's lazy WebSocket exports), 25-40 ms of cold
// start and ~10 MiB of memory the function never uses.
const { STATUS_CODES } = process.getBuiltinModule("node:http");

function sendJson(res: Response, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, "content-type": JSON_TYPE, "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function methodNotAllowed(allow: string) {
  return (req: Request): never => {
    throw new HttpError("ERR_METHOD_NOT_ALLOWED", `method ${req.method} is not allowed on ${req.path}; allowed: ${allow}`, {
      headers: { allow },
    });
  };
}

export function createApp(options: AppOptions): express.Express {
  const { handle, logger, maxBodyBytes, isReady, scrape } = options;
  const replyAlways = (options.replies ?? "always") === "always";
  const metrics = options.metrics ?? noMetrics;
  // The scope of each traced event request, for its error line (which the error handler writes).
  const scopes = new WeakMap<Request, RequestScope>();
  const untraced: RequestScope = { logger, span: undefined };
  const app = express();
  // Nothing here is cached by clients or reads query strings: skip the work.
  app.disable("x-powered-by");
  app.disable("etag");
  app.set("query parser", false);

  app.post("/", async (req, res) => {
    const started = performance.now();
    let type: string | undefined;
    try {
      const body = await readBody(req, maxBodyBytes);
      const { event } = decodeHttp({ headers: req.headers, body });
      type = event.type;
      // Most events carry no trace context: skip building the carriers for them.
      const traced = req.headers["traceparent"] !== undefined || event["traceparent"] !== undefined;
      const scope = traced ? scopeFor(logger, carriers(req, event)) : untraced;
      if (traced) scopes.set(req, scope);
      const outcome = await handle(event, scope);
      if (outcome.kind === "ignored") {
        // Empty 2xx: never a body that is not a CloudEvent (a Broker would count it as a failure).
        res.writeHead(204);
        res.end();
      } else if (!replyAlways && !prefersReply(req.headers["prefer"])) {
        // Greeted, and nobody to hand a reply to (an ApiServerSource sending
        // straight here discards it). An empty body also keeps the sender's
        // connection: Go's HTTP client, which Knative's adapters use, closes
        // a connection whose answer's body it did not read, so every reply
        // event cost it a new connection for the next event. The length
        // says so: without it Node frames the empty answer as a chunked body
        // (headers, then a last chunk), which Go also closes unread and drops.
        res.writeHead(202, { "content-length": "0" });
        res.end();
      } else {
        const reply = encodeBinary(outcome.reply);
        reply.headers["content-length"] = String(Buffer.byteLength(reply.body));
        res.writeHead(200, reply.headers);
        res.end(reply.body);
      }
      metrics.eventHandled(eventTypeLabel(type), outcome.kind, (performance.now() - started) / 1000);
    } catch (thrown) {
      const err = fromExpress(thrown);
      metrics.eventHandled(eventTypeLabel(type), err.isClientError ? "rejected" : "failed", (performance.now() - started) / 1000);
      throw err;
    }
  });
  app.all("/", methodNotAllowed("POST"));

  if (scrape !== undefined) {
    app.get("/metrics", async (_req, res) => {
      const { contentType, body } = await scrape();
      res.writeHead(200, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
      res.end(body);
    });
    app.all("/metrics", methodNotAllowed("GET, HEAD"));
  }

  app.get("/healthz", (_req, res) => sendJson(res, 200, { status: "ok" }));
  app.all("/healthz", methodNotAllowed("GET, HEAD"));
  app.get("/readyz", (_req, res) => {
    if (isReady()) sendJson(res, 200, { status: "ready" });
    else sendJson(res, 503, { status: "shutting down" });
  });
  app.all("/readyz", methodNotAllowed("GET, HEAD"));

  app.use((req: Request) => {
    throw new HttpError("ERR_NOT_FOUND", `no route for ${req.method} ${req.path}: send CloudEvents to POST /`);
  });

  app.use((thrown: unknown, req: Request, res: Response, _next: NextFunction) => {
    const err = fromExpress(thrown);
    metrics.errorAnswered(err.code, err.status);
    // A request that did not get as far as its event still has the W3C headers.
    const { logger: log } = scopes.get(req) ?? scopeFor(logger, carriers(req, undefined));
    const fields = {
      code: err.code,
      status: err.status,
      method: req.method,
      path: req.path,
      eventId: eventIdOf(req),
    };
    if (err.isClientError) log.warn(`error: ${err.message}`, fields);
    else log.error(`error: ${err.message}`, { ...fields, cause: describe(err.cause) });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const message = err.code === "ERR_INTERNAL" ? "internal error" : err.message;
    sendJson(res, err.status, { statusCode: err.status, code: err.code, error: STATUS_CODES[err.status], message }, err.headers);
  });

  return app;
}

// Express and its body of dependencies raise errors carrying a 4xx `status`
// (a malformed URL, say); keep their meaning, in our registry's terms.
function fromExpress(thrown: unknown): HttpError {
  if (thrown instanceof HttpError) return thrown;
  const status = (thrown as { status?: unknown } | null)?.status;
  if (typeof status === "number" && status >= 400 && status < 500) {
    return new HttpError("ERR_BAD_REQUEST", thrown instanceof Error ? thrown.message : "bad request", { cause: thrown });
  }
  return toHttpError(thrown);
}

// The event id as the greeting lines show it (decoded), or as sent when that fails.
function eventIdOf(req: Request): string | undefined {
  const raw = req.headers["ce-id"];
  if (typeof raw !== "string") return undefined;
  try {
    return decodeHeaderValue("ce-id", raw);
  } catch {
    return raw;
  }
}

function describe(cause: unknown): string | undefined {
  if (cause === undefined) return undefined;
  if (cause instanceof Error) return cause.stack ?? cause.message;
  return String(cause);
}
