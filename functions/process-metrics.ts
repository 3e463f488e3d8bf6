// Node's default process metrics (prom-client's collectDefaultMetrics: CPU,
// memory, heap, event-loop delay, GC, handles, file descriptors). A module of
// its own, loaded by the first scrape rather than at start-up: it brings the
// OpenTelemetry API along (for exemplars on the CPU counter), which a cold
// start would otherwise pay for on every pod, scraped or not.
import collectDefaultMetrics from "prom-client/lib/defaultMetrics.js";
import type { Registry } from "prom-client";

export function registerProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
}
