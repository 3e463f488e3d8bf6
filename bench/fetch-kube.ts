// The fetch baseline's Kubernetes calls: a conditional status merge patch of a
// Member and the creation of an Event, each one request with Node's global
// fetch on its default dispatcher (undici's keep-alive pool, no connection
// limit). The body of each is what functions/kube-client.ts sends.
import { hostname } from "node:os";
import { getCACertificates, setDefaultCACertificates } from "node:tls";
import { COMPONENT, EVENTS, eventObject } from "../functions/event-object.ts";
import { memberPath, type MemberRef } from "../functions/member.ts";
import type { KubeTarget } from "./kubeconfig-lite.ts";

const TIMEOUT_MS = 2_000;

export interface Answer {
  readonly status: number;
  /** The body, parsed, when it is JSON. */
  readonly body: unknown;
}

/** The Event a claim owes, as recorder.ts describes it. */
export interface GreetingEvent {
  readonly name: string;
  readonly member: MemberRef & { readonly uid: string | undefined };
  readonly reason: string;
  readonly message: string;
  readonly time: Date;
}

export interface EventRequest {
  readonly path: string;
  readonly body: unknown;
}

/** The Event, as the function writes it (functions/event-object.ts builds both). */
export function eventsV1Event(event: GreetingEvent, instance: string): EventRequest {
  return { path: `/apis/${EVENTS.group}/${EVENTS.version}/namespaces/${event.member.namespace}/${EVENTS.plural}`, body: eventObject(event, instance) };
}

/** The one place that says which Events API the baseline writes to. */
export const eventRequest: (event: GreetingEvent, instance: string) => EventRequest = eventsV1Event;

export interface FetchKube {
  /** Merge-patches a Member's status under `resourceVersion` (409 when it changed since). */
  patchStatus(ref: MemberRef, resourceVersion: string, status: unknown): Promise<Answer>;
  /** Creates the Event (409: it exists already, from an earlier attempt). */
  createEvent(event: GreetingEvent): Promise<Answer>;
}

export function connectFetch(target: KubeTarget): FetchKube {
  // Global fetch takes no CA option: trust the cluster's CA process-wide (Node ≥ 24.5), as NODE_EXTRA_CA_CERTS would.
  if (target.ca !== undefined) setDefaultCACertificates([...getCACertificates("default"), target.ca]);
  const instance = hostname();
  const authorization = `Bearer ${target.token}`;

  const send = async (method: string, path: string, contentType: string, body: unknown): Promise<Answer> => {
    const res = await fetch(`${target.server}${path}`, {
      method,
      headers: { authorization, accept: "application/json", "content-type": contentType },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    // Read to the end, so that the connection goes back to the pool.
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed };
  };

  return {
    patchStatus: (ref, resourceVersion, status) =>
      send("PATCH", `${memberPath(ref)}/status?fieldManager=${COMPONENT}`, "application/merge-patch+json", { metadata: { resourceVersion }, status }),
    createEvent: (event) => {
      const request = eventRequest(event, instance);
      return send("POST", request.path, "application/json", request.body);
    },
  };
}
