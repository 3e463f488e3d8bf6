// What the function counts, as a port: the modules that see something happen
// (the HTTP boundary, the handler, the claim, the resync, the Kubernetes
// client) report it here in their own terms, and prometheus.ts turns that into
// prom-client metrics. Every label value is drawn from a fixed set, decided
// here: never a Member's name, a namespace or anything else a sender chooses,
// so that the number of series stays bounded whatever arrives.
import type { ErrorCode } from "./errors.ts";
import { apiServerSourceTypes, GREETING_TYPE, RESYNC_TYPE } from "./event-types.ts";
import type { Reason } from "./greeting.ts";
import type { KubeFailure } from "./kube-errors.ts";
import type { ResyncSummary } from "./resync.ts";

/** What became of one POST /: a greeting, nothing to say (204), bad input (4xx), or a failure (5xx). */
export type EventOutcome = "greeted" | "ignored" | "rejected" | "failed";

/** The event type as a label: the types the function knows, "other" for any other, "invalid" when no event could be read. */
export type EventTypeLabel = string;

export type KubeVerb = "get" | "list" | "patch" | "create";
export type KubeResource = "members" | "members/status" | "events";
export type KubeResult = "ok" | KubeFailure;

/** How a resync run ended: every Member converged, some left for the next run, or it could not run (the list failed). */
export type ResyncResult = "converged" | "partial" | "failed";

export interface Metrics {
  /** One POST / answered, with how long it took from the request to the answer. */
  eventHandled(type: EventTypeLabel, outcome: EventOutcome, seconds: number): void;
  /** A greeting said (logged and replied, or said by a resync). */
  greeted(reason: Reason): void;
  /** An error answer, by its stable code: 4xx count as rejected inputs, 5xx as server errors. */
  errorAnswered(code: ErrorCode, status: number): void;
  /** One Kubernetes API call, finished. */
  kubeCall(verb: KubeVerb, resource: KubeResource, result: KubeResult, seconds: number): void;
  /** A claim (the conditional status write) refused with 409: the Member changed meanwhile, another delivery won. */
  claimLost(): void;
  /** A resync run ended; `summary` is undefined when it could not list. */
  resyncDone(result: ResyncResult, summary: ResyncSummary | undefined, seconds: number): void;
}

const known = new Set<string>([...apiServerSourceTypes.keys(), RESYNC_TYPE, GREETING_TYPE]);

/** The label for an event type: bounded, so a sender cannot mint series. */
export function eventTypeLabel(type: string | undefined): EventTypeLabel {
  if (type === undefined) return "invalid";
  return known.has(type) ? type : "other";
}

/** Counts nothing: where metrics are off, and the default of every module that takes them. */
export const noMetrics: Metrics = {
  eventHandled() {},
  greeted() {},
  errorAnswered() {},
  kubeCall() {},
  claimLost() {},
  resyncDone() {},
};
