// Types for the parts of prom-client that prometheus.ts imports one by one:
// its index also loads the Pushgateway (node:https, node:zlib) and the cluster
// aggregator, which the function never uses and which cost cold start. Each
// part is the CommonJS module whose export the index re-exports.
declare module "prom-client/lib/registry.js" {
  import type { Registry } from "prom-client";
  const part: typeof Registry;
  export = part;
}
declare module "prom-client/lib/counter.js" {
  import type { Counter } from "prom-client";
  const part: typeof Counter;
  export = part;
}
declare module "prom-client/lib/gauge.js" {
  import type { Gauge } from "prom-client";
  const part: typeof Gauge;
  export = part;
}
declare module "prom-client/lib/histogram.js" {
  import type { Histogram } from "prom-client";
  const part: typeof Histogram;
  export = part;
}
declare module "prom-client/lib/defaultMetrics.js" {
  import type { collectDefaultMetrics } from "prom-client";
  const part: typeof collectDefaultMetrics;
  export = part;
}
