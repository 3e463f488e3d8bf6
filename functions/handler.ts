// What the function does with one CloudEvent: decide the greeting, say it,
// record it, and build the reply. Kubernetes I/O comes in through ports, so
// this runs in tests with plain objects and no server.
import type { CloudEventV1 } from "cloudevents";
import { HttpError } from "./errors.ts";
import { apiServerSourceTypes, GREETING_TYPE } from "./event-types.ts";
import { farewellFor, greetingFor, type Greeting } from "./greeting.ts";
import type { Logger } from "./logger.ts";
import { isObject, isOurMember, jsonType, memberPath, parseMember, parseMemberRef, type JsonObject, type Member, type MemberRef } from "./member.ts";

export { GREETING_TYPE } from "./event-types.ts";

/** Reads Members from the API server (Reference mode). */
export interface MemberReader {
  /** The Member object, or undefined when it no longer exists. Throws HttpError 503 when unreachable. */
  getMember(ref: MemberRef): Promise<JsonObject | undefined>;
}

/** Records a greeting on the cluster (status and a Kubernetes Event). Never throws. */
export interface GreetingRecorder {
  record(greeting: Greeting, member: Member | MemberRef): Promise<void>;
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
  /** Undefined where recording is off. */
  readonly recorder: GreetingRecorder | undefined;
  readonly newId: () => string;
  readonly now: () => Date;
}

export type Handler = (event: CloudEventV1<unknown>) => Promise<Outcome>;

function stringAttribute(event: CloudEventV1<unknown>, name: string): string | undefined {
  const value = event[name];
  return typeof value === "string" && value !== "" ? value : undefined;
}

export function createHandler(options: HandlerOptions): Handler {
  const { logger, source, reader, recorder, newId, now } = options;

  const ignore = (event: CloudEventV1<unknown>, reason: string): Outcome => {
    logger.debug(`ignored: ${reason}`, { eventId: event.id, eventType: event.type });
    return { kind: "ignored", reason };
  };

  const resolve = async (event: CloudEventV1<unknown>, ref: MemberRef): Promise<Member | undefined> => {
    if (reader === undefined) {
      throw new HttpError("ERR_NO_CLUSTER", "Reference-mode events need the Kubernetes API: run in a cluster or set KUBECONFIG");
    }
    const object = await reader.getMember(ref);
    if (object === undefined) {
      logger.info("member no longer exists, nothing to greet", {
        member: ref.name, namespace: ref.namespace, eventId: event.id, eventType: event.type,
      });
      return undefined;
    }
    return parseMember(object, ref.namespace);
  };

  return async (event) => {
    const meaning = apiServerSourceTypes.get(event.type);
    if (meaning === undefined) return ignore(event, `event type ${event.type} is not a Member change`);
    const data = event.data;
    if (!isObject(data)) {
      throw new HttpError("ERR_INVALID_MEMBER", `data must be a JSON object for ${event.type}, got ${data === undefined ? "no data" : jsonType(data)}`);
    }
    if (!isOurMember(data, event["kind"])) return ignore(event, "not a helloworld.apimeister.com Member");
    const namespaceHint = stringAttribute(event, "namespace");

    let member: Member | MemberRef | undefined;
    let greeting: Greeting | undefined;
    if (meaning.mode === "resource") {
      const full = parseMember(data, namespaceHint);
      member = full;
      greeting = greetingFor(meaning.change, full);
    } else {
      const ref = parseMemberRef(data, namespaceHint);
      if (meaning.change === "delete") {
        // The object is gone: the reference is all there is to say goodbye to.
        member = ref;
        greeting = farewellFor(ref);
      } else {
        const full = await resolve(event, ref);
        if (full === undefined) return { kind: "ignored", reason: "member no longer exists" };
        member = full;
        greeting = greetingFor(meaning.change, full);
      }
    }
    if (greeting === undefined) return ignore(event, "no team change to greet");

    // Said before anything can fail, so the greeting is never lost.
    logger.info(greeting.text, {
      member: greeting.member.name,
      namespace: greeting.member.namespace,
      team: greeting.member.team,
      reason: greeting.reason,
      eventId: event.id,
      eventType: event.type,
    });
    if (recorder !== undefined) await recorder.record(greeting, member);

    const reply: CloudEventV1<GreetingData> = {
      specversion: "1.0",
      id: newId(),
      source,
      type: GREETING_TYPE,
      subject: memberPath(greeting.member),
      time: now().toISOString(),
      datacontenttype: "application/json",
      data: { greeting: greeting.text, reason: greeting.reason, member: greeting.member },
    };
    return { kind: "greeted", greeting, reply };
  };
}
