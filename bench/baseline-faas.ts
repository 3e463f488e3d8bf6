// Baseline (b): the greeter as a Knative Functions CloudEvent function on
// faas-js-runtime, the runtime behind `func create -l node|typescript`. The
// runtime parses and validates the event (cloudevents SDK on Fastify); the
// function decides the greeting with the same rules, writes the same log line
// with the same buffered writer as the other baseline, and returns a
// CloudEvent, which the runtime sends back in binary mode.
//
// The runtime is left at its defaults (log level "warn": no per-request access
// log lines, metrics on), as `faas-js-runtime ./index.js` runs it. It only
// listens on all interfaces, and on PORT (it has no "pick a free port": 0
// means 8080).
import { randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import faas, { type Context, type StructuredReturn } from "faas-js-runtime";
import { createLineWriter, decide, errorBody, greetingLine, GREETING_SOURCE, GREETING_TYPE, HttpError, replyData, replySubject } from "./greet.ts";

// The SDK copy the runtime itself uses (its `instanceof CloudEvent` check and
// HTTP.binary are that copy's); a function project would depend on the same.
const require = createRequire(import.meta.url);
const { CloudEvent } = createRequire(require.resolve("faas-js-runtime"))("cloudevents") as typeof import("cloudevents");

const log = createLineWriter();

interface IncomingEvent {
  readonly id: string;
  readonly type: string;
  readonly data?: unknown;
  readonly [attribute: string]: unknown;
}

function handle(_context: Context, event?: IncomingEvent): InstanceType<typeof CloudEvent> | StructuredReturn | undefined {
  if (event === undefined) return { statusCode: 400, body: { message: "not a CloudEvent" } };
  try {
    const greeting = decide(event.type, event.data, event["kind"], event["namespace"]);
    if (greeting === undefined) return undefined; // 204
    log.write(greetingLine(greeting, event.id, event.type));
    return new CloudEvent({
      id: randomUUID(),
      source: GREETING_SOURCE,
      type: GREETING_TYPE,
      subject: replySubject(greeting),
      time: new Date().toISOString(),
      datacontenttype: "application/json",
      data: replyData(greeting),
    });
  } catch (err) {
    const httpError = err instanceof HttpError ? err : new HttpError("ERR_INTERNAL", "internal error");
    return { statusCode: httpError.status, headers: { "content-type": "application/json; charset=utf-8" }, body: errorBody(httpError) };
  }
}

await faas.start(handle, { port: Number(process.env["PORT"] ?? 8080) });
