// Member watch events as the CloudEvents Knative's ApiServerSource sends, built
// the way its adapter builds them (knative.dev/eventing pkg/adapter/apiserver/
// events: type per mode and change, subject = the object's API path, the kind,
// apiversion, name and namespace copied into extensions, JSON data).
import { CloudEvent, HTTP } from "cloudevents";
import { memberPath } from "../functions/member.ts";

export type WatchChange = "ADDED" | "MODIFIED" | "DELETED";
export type Mode = "Resource" | "Reference";

/** The parts of a watched object the event is made of. */
export interface WatchedObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: { readonly name?: string; readonly namespace?: string };
  readonly [key: string]: unknown;
}

const changeNames: Readonly<Record<WatchChange, string>> = { ADDED: "add", MODIFIED: "update", DELETED: "delete" };

export function eventType(change: WatchChange, mode: Mode): string {
  return `dev.knative.apiserver.${mode === "Resource" ? "resource" : "ref"}.${changeNames[change]}`;
}

export function memberCloudEvent(change: WatchChange, object: WatchedObject, mode: Mode, source: string): CloudEvent<unknown> {
  const apiVersion = object.apiVersion ?? "";
  const kind = object.kind ?? "";
  const name = object.metadata?.name ?? "";
  const namespace = object.metadata?.namespace ?? "";
  const data = mode === "Resource" ? object : { kind, namespace, name, apiVersion };
  return new CloudEvent<unknown>({
    type: eventType(change, mode),
    source,
    // The adapter's self link: the object's own apiVersion, the plural guessed from the kind.
    subject: memberPath({ name, namespace }, apiVersion),
    datacontenttype: "application/json",
    kind,
    apiversion: apiVersion,
    name,
    namespace,
    data,
  });
}

/** The HTTP request for an event in binary content mode, as the adapter sends it. */
export function toBinaryRequest(event: CloudEvent<unknown>): { headers: Record<string, string>; body: string } {
  const message = HTTP.binary(event);
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(message.headers)) {
    if (typeof value === "string") headers[key] = value;
  }
  return { headers, body: typeof message.body === "string" ? message.body : JSON.stringify(message.body) };
}
