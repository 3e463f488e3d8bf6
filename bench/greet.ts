// What the two baselines share with each other and with the greeter: the
// greeting rules (imported from the greeter's pure modules, so every contender
// decides the same way), the reply event, and the log line, written the way the
// greeter writes it (one JSON object per line, buffered, one write per turn).
import { writeSync } from "node:fs";
import { HttpError } from "../functions/errors.ts";
import type { Greeting } from "../functions/greeting.ts";
import { greetingFromEvent, readMemberEvent } from "../functions/member-event.ts";
import { memberPath } from "../functions/member.ts";

export { GREETING_TYPE } from "../functions/event-types.ts";
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
