// The CloudEvent types the function reads and writes.
import type { Change } from "./greeting.ts";

/** The type of the greeting events the function replies with. */
export const GREETING_TYPE = "com.apimeister.helloworld.greeting";

/** What a Knative PingSource sends on each tick: here, the signal to resync. */
export const RESYNC_TYPE = "dev.knative.sources.ping";

/** The six ApiServerSource event types: mode and watch change. */
export const apiServerSourceTypes: ReadonlyMap<string, { readonly mode: "resource" | "ref"; readonly change: Change }> = new Map([
  ["dev.knative.apiserver.resource.add", { mode: "resource", change: "add" }],
  ["dev.knative.apiserver.resource.update", { mode: "resource", change: "update" }],
  ["dev.knative.apiserver.resource.delete", { mode: "resource", change: "delete" }],
  ["dev.knative.apiserver.ref.add", { mode: "ref", change: "add" }],
  ["dev.knative.apiserver.ref.update", { mode: "ref", change: "update" }],
  ["dev.knative.apiserver.ref.delete", { mode: "ref", change: "delete" }],
]);
