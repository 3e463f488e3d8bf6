// The Kubernetes Event that records a greeting, as the API server receives it:
// events.k8s.io/v1, the API client-go's own event recorder writes, created with
// the generic client (the typed core client would be the largest part of what
// the function loads, for one call; see scripts/bundle.ts). Pure, so that the
// function (kube-client.ts) and the bench's hand-written fetch baseline send
// the very same object.
import type { MemberEvent } from "./kube-client.ts";
import { MEMBER_API_VERSION, MEMBER_KIND } from "./member.ts";

/** Where Events are created, through the generic client (no typed core client needed). */
export const EVENTS = { group: "events.k8s.io", version: "v1", plural: "events" } as const;

/** The reporting controller, and the field manager of the function's writes. */
export const COMPONENT = "member-greeter";

/** What the function did, in the events.k8s.io sense (reason says why). */
const EVENT_ACTION = "Greet";

/** A MicroTime: RFC 3339 with exactly six fractional digits, as the API server parses it. */
export function microTime(time: Date): string {
  return time.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export function eventObject(event: MemberEvent, instance: string): Record<string, unknown> {
  return {
    apiVersion: `${EVENTS.group}/${EVENTS.version}`,
    kind: "Event",
    metadata: { name: event.name, namespace: event.member.namespace },
    regarding: {
      apiVersion: MEMBER_API_VERSION,
      kind: MEMBER_KIND,
      name: event.member.name,
      namespace: event.member.namespace,
      ...(event.member.uid === undefined ? {} : { uid: event.member.uid }),
    },
    reason: event.reason,
    note: event.message,
    type: "Normal",
    action: EVENT_ACTION,
    reportingController: COMPONENT,
    reportingInstance: instance,
    eventTime: microTime(event.time),
  };
}
