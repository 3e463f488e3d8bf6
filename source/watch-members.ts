// A stand-in for Knative's ApiServerSource where Knative is not installed: it
// watches Members and POSTs each change to K_SINK as the same CloudEvent the
// adapter would send. For development clusters and tests, not production.
//
// Like the adapter it sends nothing for Members that exist when it starts (it
// lists first and watches from there), sends changes one at a time in order,
// and retries a failed send 5 times with exponential backoff from 50 ms on the
// statuses the adapter retries; then it drops the event and logs why.
import { CustomObjectsApi, KubeConfig, Watch } from "@kubernetes/client-node";
import { createLogger, isLevel } from "../functions/logger.ts";
import { MEMBER_GROUP, MEMBER_PLURAL, MEMBER_VERSION } from "../functions/member.ts";
import { memberCloudEvent, toBinaryRequest, type Mode, type WatchChange, type WatchedObject } from "./member-events.ts";

const RETRIED = new Set([404, 413, 425, 429, 502, 503, 504]);

export interface SourceOptions {
  readonly sink: string;
  readonly namespace: string;
  readonly mode: Mode;
  readonly kubeConfig: KubeConfig;
}

function fail(message: string): never {
  throw new Error(message);
}

export function optionsFromEnv(env: NodeJS.ProcessEnv): SourceOptions {
  const sink = env["K_SINK"] ?? fail("K_SINK must name the URL to send Member events to");
  const mode = env["MODE"] ?? "Resource";
  if (mode !== "Resource" && mode !== "Reference") fail(`MODE must be Resource or Reference, got ${JSON.stringify(mode)}`);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  return { sink, namespace: env["NAMESPACE"] ?? kubeConfig.getContextObject(kubeConfig.getCurrentContext())?.namespace ?? "default", mode, kubeConfig };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function runSource(options: SourceOptions, signal: AbortSignal): Promise<void> {
  const level = process.env["LOG_LEVEL"] ?? "info";
  const logger = createLogger({ level: isLevel(level) ? level : "info" });
  const { kubeConfig, namespace, mode, sink } = options;
  const server = kubeConfig.getCurrentCluster()?.server ?? "";
  const path = `/apis/${MEMBER_GROUP}/${MEMBER_VERSION}/namespaces/${namespace}/${MEMBER_PLURAL}`;
  let queue = Promise.resolve();

  const send = async (change: WatchChange, object: WatchedObject): Promise<void> => {
    const event = memberCloudEvent(change, object, mode, server);
    const { headers, body } = toBinaryRequest(event);
    const fields = { eventId: event.id, eventType: event.type, member: object.metadata?.name };
    for (let attempt = 0; attempt <= 5; attempt++) {
      if (attempt > 0) await sleep(50 * 2 ** (attempt - 1));
      try {
        const res = await fetch(sink, { method: "POST", headers, body, signal });
        await res.arrayBuffer();
        if (res.ok) {
          logger.info("event sent", { ...fields, status: res.status });
          return;
        }
        if (!RETRIED.has(res.status)) {
          logger.warn(`sink refused the event with ${res.status}; dropped`, fields);
          return;
        }
      } catch (err) {
        if (signal.aborted) return;
        logger.debug(`send failed: ${err instanceof Error ? err.message : String(err)}`, fields);
      }
    }
    logger.warn("sink did not take the event after 5 retries; dropped", fields);
  };

  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  // The listing only yields the resourceVersion to watch from: Members that
  // exist already get no events, as with the adapter.
  const list = async (): Promise<string> => {
    const listed = (await custom.listNamespacedCustomObject({ group: MEMBER_GROUP, version: MEMBER_VERSION, namespace, plural: MEMBER_PLURAL, limit: 1 })) as {
      metadata?: { resourceVersion?: string };
    };
    return listed.metadata?.resourceVersion ?? "";
  };

  const watch = new Watch(kubeConfig);
  while (!signal.aborted) {
    let resourceVersion: string;
    try {
      resourceVersion = await list();
    } catch (err) {
      if (signal.aborted) break;
      logger.warn(`${err instanceof Error ? err.message : String(err)}; retrying in 1 s`);
      await sleep(1000);
      continue;
    }
    logger.info(`watching members in namespace ${namespace}`, { mode, sink, resourceVersion });
    await new Promise<void>((resolve) => {
      void watch
        .watch(
          path,
          { resourceVersion, allowWatchBookmarks: false },
          (phase: string, object: WatchedObject) => {
            if (phase !== "ADDED" && phase !== "MODIFIED" && phase !== "DELETED") return;
            queue = queue.then(() => send(phase, object));
          },
          (err: unknown) => {
            // Ends on expiry (410 Gone), server timeouts and network errors alike: list again and go on.
            if (err && !signal.aborted) logger.info(`watch ended: ${err instanceof Error ? err.message : String(err)}`);
            resolve();
          },
        )
        .then((request) => signal.addEventListener("abort", () => request.abort(), { once: true }))
        .catch((err: unknown) => {
          logger.warn(`watch failed: ${err instanceof Error ? err.message : String(err)}`);
          void sleep(1000).then(resolve);
        });
    });
  }
  await queue;
  logger.flush();
}

if (import.meta.main) {
  const controller = new AbortController();
  process.once("SIGTERM", () => controller.abort());
  process.once("SIGINT", () => controller.abort());
  runSource(optionsFromEnv(process.env), controller.signal).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level: "error", msg: `fatal: ${err instanceof Error ? err.message : String(err)}` })}\n`);
      process.exit(1);
    },
  );
}
