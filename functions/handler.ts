// What the function does with one CloudEvent: read what it says, decide, and
// where greetings are recorded, claim before saying (claim.ts); then say it
// (log line, Kubernetes Event) and build the reply. Kubernetes I/O comes in
// through ports, so this runs in tests with plain objects and no server.
import type { CloudEventV1 } from "cloudevents";
import type { Claimed, Converge } from "./claim.ts";
import { withDeadline } from "./deadline.ts";
import { GREETING_TYPE } from "./event-types.ts";
import { greetingFor, type Greeting } from "./greeting.ts";
import type { Logger } from "./logger.ts";
import { greetingFromEvent, readMemberEvent } from "./member-event.ts";
import { memberPath, parseMember, type JsonObject, type Member, type MemberRef } from "./member.ts";
import { noMetrics, type Metrics } from "./metrics.ts";
import { farewellOnDelete, type Policy } from "./next-step.ts";
import type { EventRecorder } from "./recorder.ts";
import type { RequestScope } from "./request-scope.ts";
import type { Resync } from "./resync.ts";
import type { Span } from "./trace-context.ts";

export { GREETING_TYPE } from "./event-types.ts";

/** Reads Members from the API server (Reference mode). */
export interface MemberReader {
  /** The Member object, or undefined when it no longer exists. Throws KubeError. */
  getMember(ref: MemberRef, signal?: AbortSignal, span?: Span): Promise<JsonObject | undefined>;
}

/** Where greetings are recorded on the cluster: claims, Events and the resync. */
export interface Claims {
  readonly converge: Converge;
  readonly recorder: EventRecorder;
  readonly resync: Resync;
  readonly policy: Policy;
}

/** The data of a reply event. */
export interface GreetingData {
  readonly greeting: string;
  readonly reason: Greeting["reason"];
  readonly member: Greeting["member"];
}

export type Outcome =
  | { readonly kind: "greeted"; readonly greeting: Greeting; readonly reply: CloudEventV1<GreetingData> }
  | { readonly kind: "ignored"; readonly reason: string };

export interface HandlerOptions {
  /** The `source` of reply events. */
  readonly source: string;
  readonly logger: Logger;
  /** Undefined where no cluster is configured: Reference-mode add/update then fail with 500. */
  readonly reader: MemberReader | undefined;
  /** Undefined where greetings are not recorded: the event alone decides, as the original did. */
  readonly claims: Claims | undefined;
  readonly newId: () => string;
  readonly now: () => Date;
  /** Budget for handling one event, API calls included: well under what senders wait. */
  readonly timeoutMs: number;
  readonly metrics?: Metrics;
}

/**
 * Handles one event. `scope`: the request it came in, whose logger (with its
 * trace ids) every line and whose span every API call it causes carries; the
 * reply continues that span's trace.
 */
export type Handler = (event: CloudEventV1<unknown>, scope?: RequestScope) => Promise<Outcome>;

export function createHandler(options: HandlerOptions): Handler {
  const { source, reader, claims, newId, now, timeoutMs } = options;
  const metrics = options.metrics ?? noMetrics;

  const ignore = (event: CloudEventV1<unknown>, reason: string, scope: RequestScope): Outcome => {
    scope.logger.debug(`ignored: ${reason}`, { eventId: event.id, eventType: event.type });
    return { kind: "ignored", reason };
  };

  const say = (greeting: Greeting, event: CloudEventV1<unknown>, scope: RequestScope): void => {
    metrics.greeted(greeting.reason);
    scope.logger.info(greeting.text, {
      member: greeting.member.name,
      namespace: greeting.member.namespace,
      team: greeting.member.team,
      reason: greeting.reason,
      eventId: event.id,
      eventType: event.type,
    });
  };

  /**
   * A claimed greeting: said, and the Event its claim owes written off the reply
   * path; for a Member on its way out the convergence wrote it already, before
   * the finalizer (and the mark) went.
   */
  const sayClaimed = (claimed: Claimed, event: CloudEventV1<unknown>, scope: RequestScope): void => {
    say(claimed.greeting, event, scope);
    if (!claimed.member.deleting && claimed.member.pendingEvent !== undefined) claims?.recorder.recordPending(claimed.member, scope);
  };

  const reply = (greeting: Greeting, scope: RequestScope): Outcome => {
    const event: CloudEventV1<GreetingData> = {
      specversion: "1.0",
      id: newId(),
      source,
      type: GREETING_TYPE,
      subject: memberPath(greeting.member),
      time: now().toISOString(),
      datacontenttype: "application/json",
      data: { greeting: greeting.text, reason: greeting.reason, member: greeting.member },
    };
    // The distributed-tracing extension: the reply was made in this function's span.
    if (scope.span !== undefined) {
      event["traceparent"] = scope.span.traceparent;
      if (scope.span.tracestate !== undefined) event["tracestate"] = scope.span.tracestate;
    }
    return { kind: "greeted", greeting, reply: event };
  };

  const read = async (event: CloudEventV1<unknown>, ref: MemberRef, signal: AbortSignal, scope: RequestScope): Promise<Member | undefined> => {
    const object = await reader?.getMember(ref, signal, scope.span);
    if (object === undefined) {
      scope.logger.info("member no longer exists, nothing to greet", { member: ref.name, namespace: ref.namespace, eventId: event.id, eventType: event.type });
      return undefined;
    }
    return parseMember(object, ref.namespace);
  };

  /** No claims: the event alone decides (no cluster, or RECORD_GREETINGS=off). */
  const unrecorded = async (
    event: CloudEventV1<unknown>,
    said: Exclude<ReturnType<typeof readMemberEvent>, { kind: "resync" | "other" }>,
    scope: RequestScope,
  ): Promise<Outcome> => {
    let greeting: Greeting | undefined;
    if (said.kind === "member-ref" && said.change !== "delete" && reader !== undefined) {
      const member = await withDeadline(timeoutMs, (signal) => read(event, said.ref, signal, scope));
      if (member === undefined) return { kind: "ignored", reason: "member no longer exists" };
      greeting = greetingFor(said.change, member);
    } else {
      greeting = greetingFromEvent(said);
    }
    if (greeting === undefined) return ignore(event, "no team change to greet", scope);
    say(greeting, event, scope);
    return reply(greeting, scope);
  };

  return async (event, given) => {
    const scope: RequestScope = given ?? { logger: options.logger, span: undefined };
    const said = readMemberEvent(event);
    if (said.kind === "other") return ignore(event, said.why, scope);
    if (said.kind === "resync") {
      if (claims === undefined) return ignore(event, "resync needs a cluster where greetings are recorded", scope);
      await claims.resync((claimed) => sayClaimed(claimed, event, scope), scope);
      return { kind: "ignored", reason: "resync done" };
    }
    if (claims === undefined) return unrecorded(event, said, scope);

    if (said.change === "delete") {
      // The object is gone: nothing to claim on (see next-step.ts for what the finalizer changes).
      const member = said.kind === "member" ? said.member : undefined;
      if (!farewellOnDelete(member, claims.policy)) return ignore(event, "farewell said already, before the Member went", scope);
      const greeting = greetingFromEvent(said);
      if (greeting === undefined) return ignore(event, "nothing to say", scope);
      // The final object's uid and resourceVersion name this deletion's Event, however often
      // it is delivered; without a resourceVersion (a bare reference) only the delivery's id does.
      const key = member?.resourceVersion === undefined ? event.id : undefined;
      say(greeting, event, scope);
      claims.recorder.record(greeting, said.kind === "member" ? said.member : said.ref, key, scope);
      return reply(greeting, scope);
    }

    const start = said.kind === "member" ? said.member : said.ref;
    const claimed: Claimed | undefined = await withDeadline(timeoutMs, (signal) => claims.converge(start, signal, scope));
    if (claimed === undefined) return ignore(event, "nothing to greet: in step already, claimed by another delivery, or gone", scope);
    sayClaimed(claimed, event, scope);
    return reply(claimed.greeting, scope);
  };
}
