// What one CloudEvent says, read from untrusted input: a change to a Member
// (in full or by reference), a resync tick, or nothing for this function.
// Pure: the handler and the bench baselines both decide through it.
import type { CloudEventV1 } from "cloudevents";
import { HttpError } from "./errors.ts";
import { apiServerSourceTypes, RESYNC_TYPE } from "./event-types.ts";
import { farewellFor, greetingFor, type Change, type Greeting } from "./greeting.ts";
import { isObject, isOurMember, jsonType, parseMember, parseMemberRef, type Member, type MemberRef } from "./member.ts";

export type MemberEvent =
  | { readonly kind: "member"; readonly change: Change; readonly member: Member }
  | { readonly kind: "member-ref"; readonly change: Change; readonly ref: MemberRef }
  | { readonly kind: "resync" }
  | { readonly kind: "other"; readonly why: string };

function stringAttribute(event: CloudEventV1<unknown>, name: string): string | undefined {
  const value = event[name];
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** Reads the event. Throws HttpError (400) for data that is not a Member where one is due. */
export function readMemberEvent(event: CloudEventV1<unknown>): MemberEvent {
  if (event.type === RESYNC_TYPE) return { kind: "resync" };
  const meaning = apiServerSourceTypes.get(event.type);
  if (meaning === undefined) return { kind: "other", why: `event type ${event.type} is not a Member change` };
  const data = event.data;
  if (!isObject(data)) {
    throw new HttpError("ERR_INVALID_MEMBER", `data must be a JSON object for ${event.type}, got ${data === undefined ? "no data" : jsonType(data)}`);
  }
  if (!isOurMember(data, event["kind"])) return { kind: "other", why: "not a helloworld.apimeister.com Member" };
  const namespaceHint = stringAttribute(event, "namespace");
  if (meaning.mode === "resource") return { kind: "member", change: meaning.change, member: parseMember(data, namespaceHint) };
  return { kind: "member-ref", change: meaning.change, ref: parseMemberRef(data, namespaceHint) };
}

/**
 * Where nothing records greetings (no cluster, or RECORD_GREETINGS=off), the
 * event alone decides, as the original operator did: welcome on add, team
 * changes against status.team on update, farewell on delete. A Reference-mode
 * add or update needs the object first: undefined `member` means "read it".
 */
export function greetingFromEvent(event: Extract<MemberEvent, { kind: "member" | "member-ref" }>): Greeting | undefined {
  if (event.kind === "member") return greetingFor(event.change, event.member);
  if (event.change === "delete") return farewellFor(event.ref);
  throw new HttpError("ERR_NO_CLUSTER", "Reference-mode events need the Kubernetes API: run in a cluster or set KUBECONFIG");
}
