// What the hand-written baselines share with each other and with the greeter: the
// greeting rules (imported from the greeter's pure modules, so every contender
// decides the same way), the reply event, and the log line, written the way the
// greeter writes it (one JSON object per line, buffered, one write per turn).
import { randomUUID } from "node:crypto";
import { writeSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { HttpError } from "../functions/errors.ts";
import type { Greeting } from "../functions/greeting.ts";
import { greetingFromEvent, readMemberEvent } from "../functions/member-event.ts";
import { memberPath } from "../functions/member.ts";
import { GREETING_TYPE } from "../functions/event-types.ts";
export { GREETING_TYPE };
export { HttpError };
export type { Greeting };

export const GREETING_SOURCE = "/member-greeter";

/**
 * The greeting for one event, undefined when there is nothing to say, or an
 * HttpError: the greeter's own pure decision (functions/member-event.ts). No
 * cluster is configured in the baselines (nor in the benchmarked greeter), so
 * the event alone decides and Reference-mode add and update are refused.
 */
export function decide(type: string, data: unknown, kind: unknown, namespace: unknown): Greeting | undefined {
  const event = { specversion: "1.0", id: "-", source: "-", type, data, kind, namespace };
  const said = readMemberEvent(event);
  if (said.kind === "other" || said.kind === "resync") return undefined;
  return greetingFromEvent(said);
}

export interface GreetingData {
  readonly greeting: string;
  readonly reason: Greeting["reason"];
  readonly member: Greeting["member"];
}

export function replyData(greeting: Greeting): GreetingData {
  return { greeting: greeting.text, reason: greeting.reason, member: greeting.member };
}

/** The reply's headers: a binary-mode greeting CloudEvent, as the function answers. */
export function replyHeaders(greeting: Greeting): Record<string, string> {
  return {
    "content-type": "application/json",
    "ce-specversion": "1.0",
    "ce-id": randomUUID(),
    "ce-source": GREETING_SOURCE,
    "ce-type": GREETING_TYPE,
    "ce-subject": replySubject(greeting),
    "ce-time": new Date().toISOString(),
  };
}

export function replySubject(greeting: Greeting): string {
  return memberPath(greeting.member);
}

/** The greeter's log line for a greeting, field for field. */
export function greetingLine(greeting: Greeting, eventId: string, eventType: string): string {
  return `${JSON.stringify({
    time: new Date().toISOString(),
    level: "info",
    msg: greeting.text,
    member: greeting.member.name,
    namespace: greeting.member.namespace,
    team: greeting.member.team,
    reason: greeting.reason,
    eventId,
    eventType,
  })}\n`;
}

export function errorBody(err: HttpError): string {
  return JSON.stringify({ statusCode: err.status, code: err.code, message: err.message });
}

/** Accumulates lines and writes them to stdout once per event-loop turn (and on exit). */
export function createLineWriter(): { write(line: string): void; flush(): void } {
  let pending = "";
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (pending === "") return;
    let buf = Buffer.from(pending, "utf8");
    pending = "";
    while (buf.length > 0) {
      try {
        buf = buf.subarray(writeSync(1, buf));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
      }
    }
  };
  process.on("exit", flush);
  return {
    write(line) {
      pending += line;
      if (pending.length >= 64 * 1024) flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    flush,
  };
}

/**
 * Listens on PORT (default 8080) and HOST as the function does, logs the port,
 * and stops on SIGTERM or SIGINT: the plumbing the hand-written baselines share.
 */
export function serve(server: Server, log: { write(line: string): void; flush(): void }): void {
  server.keepAliveTimeout = 75_000;
  const host = process.env["HOST"] || undefined;
  server.listen({ port: Number(process.env["PORT"] ?? 8080), host }, () => {
    const { port } = server.address() as AddressInfo;
    log.write(`${JSON.stringify({ time: new Date().toISOString(), level: "info", msg: `listening on port ${port}`, port })}\n`);
  });
  const stop = (): void => {
    server.close();
    server.closeIdleConnections();
    log.flush();
    process.exit(0);
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
