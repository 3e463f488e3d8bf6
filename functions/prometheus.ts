// The Metrics port (metrics.ts) on prom-client, in a registry of its own, and
// the scrape: Prometheus text format for GET /metrics. Names follow
// Prometheus' conventions: the `member_greeter_` prefix, `_total` on counters,
// seconds as the unit of time. Label sets are the bounded ones metrics.ts
// draws; the sets known in advance start at 0, so that rate() and increase()
// see the first occurrence too.
//
// Node's default process metrics join the registry on the first scrape
// (process-metrics.ts says why). CPU time, memory and the start time are read
// from the process then, so they cover its whole life; the GC and event-loop
// delay histograms count from that scrape on.
import Counter from "prom-client/lib/counter.js";
import Gauge from "prom-client/lib/gauge.js";
import Histogram from "prom-client/lib/histogram.js";
import Registry from "prom-client/lib/registry.js";
import { errorCodes, type ErrorCode } from "./errors.ts";
import type { Metrics } from "./metrics.ts";

export interface Scrape {
  readonly contentType: string;
  readonly body: string;
}

export interface PrometheusMetrics extends Metrics {
  scrape(): Promise<Scrape>;
}

// From 1 ms (an event needing no API call) to 60 s (Knative's request timeout).
const EVENT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
// An API call is cut off at KUBE_TIMEOUT_MS (2 s by default, 120 s at most).
const KUBE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120];
// A resync of 10,000 Members never greeted takes minutes.
const RESYNC_BUCKETS = [0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800];

const REASONS = ["welcome", "team-change", "farewell"] as const;
const RESYNC_RESULTS = ["converged", "partial", "failed"] as const;
const RESYNC_OUTCOMES = ["listed", "greeted", "failed", "invalid"] as const;

export interface PrometheusOptions {
  /** Node's default process metrics (prom-client's collectDefaultMetrics). */
  readonly processMetrics?: boolean;
}

export function createPrometheusMetrics(options: PrometheusOptions = {}): PrometheusMetrics {
  const registry = new Registry();
  const registers = [registry];
  let processMetrics: Promise<void> | undefined = options.processMetrics === false ? Promise.resolve() : undefined;

  const events = new Counter({
    name: "member_greeter_events_total",
    help: "CloudEvents received on POST /, by type (known types; other; invalid: no event could be read) and outcome (greeted, ignored, rejected: 4xx, failed: 5xx).",
    labelNames: ["type", "outcome"] as const,
    registers,
  });
  const eventSeconds = new Histogram({
    name: "member_greeter_event_duration_seconds",
    help: "Time from receiving a CloudEvent on POST / to answering it, by type; Kubernetes Events written after the reply are not included.",
    labelNames: ["type"] as const,
    buckets: EVENT_BUCKETS,
    registers,
  });
  const greetings = new Counter({
    name: "member_greeter_greetings_total",
    help: "Greetings said, by reason (welcome, team-change, farewell); those a resync said included.",
    labelNames: ["reason"] as const,
    registers,
  });
  const rejected = new Counter({
    name: "member_greeter_rejected_inputs_total",
    help: "Requests answered with a 4xx, by the error code of the answer (functions/errors.ts).",
    labelNames: ["code"] as const,
    registers,
  });
  const serverErrors = new Counter({
    name: "member_greeter_server_errors_total",
    help: "Requests answered with a 5xx, by the error code of the answer (functions/errors.ts): 503 asks the sender to retry.",
    labelNames: ["code"] as const,
    registers,
  });
  const kubeCalls = new Counter({
    name: "member_greeter_kube_requests_total",
    help: "Kubernetes API calls, by verb, resource and result (ok, or what the failure meant: unavailable, rejected, not-found, conflict).",
    labelNames: ["verb", "resource", "result"] as const,
    registers,
  });
  const kubeSeconds = new Histogram({
    name: "member_greeter_kube_request_duration_seconds",
    help: "Duration of Kubernetes API calls, by verb and resource, failed ones included.",
    labelNames: ["verb", "resource"] as const,
    buckets: KUBE_BUCKETS,
    registers,
  });
  const claimsLost = new Counter({
    name: "member_greeter_claims_lost_total",
    help: "Claims (the conditional status write before a greeting) refused with 409: the Member changed meanwhile, usually another delivery of the same change won.",
    registers,
  });
  const resyncRuns = new Counter({
    name: "member_greeter_resync_runs_total",
    help: "Resync runs, by result: converged (every Member), partial (some left for the next run), failed (could not list).",
    labelNames: ["result"] as const,
    registers,
  });
  const resyncMembers = new Counter({
    name: "member_greeter_resync_members_total",
    help: "Members seen by resync runs, by outcome: listed, greeted (converged with a greeting), failed (left for the next run), invalid (skipped).",
    labelNames: ["outcome"] as const,
    registers,
  });
  const resyncLast = new Gauge({
    name: "member_greeter_resync_last_members",
    help: "What the last resync run that listed did, by outcome (listed, greeted, failed, invalid).",
    labelNames: ["outcome"] as const,
    registers,
  });
  const resyncSeconds = new Histogram({
    name: "member_greeter_resync_duration_seconds",
    help: "Duration of resync runs, whatever their result.",
    buckets: RESYNC_BUCKETS,
    registers,
  });

  for (const reason of REASONS) greetings.inc({ reason }, 0);
  for (const result of RESYNC_RESULTS) resyncRuns.inc({ result }, 0);
  for (const outcome of RESYNC_OUTCOMES) resyncMembers.inc({ outcome }, 0);
  for (const [code, status] of Object.entries(errorCodes) as [ErrorCode, number][]) {
    (status < 500 ? rejected : serverErrors).inc({ code }, 0);
  }

  return {
    async scrape() {
      processMetrics ??= import("./process-metrics.ts").then(({ registerProcessMetrics }) => registerProcessMetrics(registry));
      await processMetrics;
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
    eventHandled(type, outcome, seconds) {
      events.inc({ type, outcome });
      eventSeconds.observe({ type }, seconds);
    },
    greeted(reason) {
      greetings.inc({ reason });
    },
    errorAnswered(code, status) {
      (status < 500 ? rejected : serverErrors).inc({ code });
    },
    kubeCall(verb, resource, result, seconds) {
      kubeCalls.inc({ verb, resource, result });
      kubeSeconds.observe({ verb, resource }, seconds);
    },
    claimLost() {
      claimsLost.inc();
    },
    resyncDone(result, summary, seconds) {
      resyncRuns.inc({ result });
      resyncSeconds.observe(seconds);
      if (summary === undefined) return;
      for (const outcome of RESYNC_OUTCOMES) {
        resyncMembers.inc({ outcome }, summary[outcome]);
        resyncLast.set({ outcome }, summary[outcome]);
      }
    },
  };
}
