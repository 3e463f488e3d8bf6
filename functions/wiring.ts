// Wires the function together from its configuration: logger, metrics, cluster
// access, handler and HTTP app. No I/O happens here beyond looking for cluster
// credentials and loading prom-client (where metrics are on). Where a cluster
// is configured, the Kubernetes client starts loading at once, in the
// background, instead of on the first event, and then opens its first
// connection to the API server: that event would otherwise wait for both (a
// 367 KiB chunk, the kubeconfig, a TLS handshake), and in a burst every later
// event waits behind that one.
import { randomUUID } from "node:crypto";
import type express from "express";
import { createConverge } from "./claim.ts";
import { describeClusterAccess, detectClusterAccess, type ClusterAccess } from "./cluster-access.ts";
import type { Config, Env } from "./config.ts";
import { createHandler, type Claims, type MemberReader } from "./handler.ts";
import { createApp } from "./http-app.ts";
import type { ConnectedApi, KubeApi } from "./kube-client.ts";
import { KubeError } from "./kube-errors.ts";
import type { Logger } from "./logger.ts";
import { noMetrics, type Metrics } from "./metrics.ts";
import type { PrometheusMetrics } from "./prometheus.ts";
import { createRecorder } from "./recorder.ts";
import { createResync } from "./resync.ts";
import type { Span } from "./trace-context.ts";

export interface WiredGreeter {
  readonly app: express.Express;
  /** False once shutdown has begun; /readyz answers 503 from then on. */
  setReady(ready: boolean): void;
  /** Resolves once the Kubernetes Events still being written are written or given up. */
  settle(): Promise<void>;
}

export interface GreeterDeps {
  readonly env: Env;
  readonly logger: Logger;
  readonly now?: () => Date;
  readonly newId?: () => string;
}

const loadAndConnect = async (access: ClusterAccess, config: Config, metrics: Metrics): Promise<ConnectedApi> => {
  const { connect } = await import("./kube-client.ts");
  return connect(access, { timeoutMs: config.kubeTimeoutMs, maxConnections: config.kubeMaxConnections, metrics });
};

// prom-client is loaded only where metrics are on: METRICS=off costs nothing at start-up.
const loadMetrics = async (): Promise<PrometheusMetrics> => (await import("./prometheus.ts")).createPrometheusMetrics();

export async function wireGreeter(config: Config, deps: GreeterDeps): Promise<WiredGreeter> {
  const { logger } = deps;
  const now = deps.now ?? (() => new Date());
  const prometheus = config.metrics === "on" ? await loadMetrics() : undefined;
  const metrics = prometheus ?? noMetrics;
  const access = detectClusterAccess(deps.env);
  let reader: MemberReader | undefined;
  let claims: Claims | undefined;

  if (access === undefined) {
    logger.info("no Kubernetes cluster configured: greetings are not recorded, Reference-mode add and update are refused");
  } else {
    let pending: Promise<ConnectedApi> | undefined;
    const connected = (): Promise<ConnectedApi> => {
      pending ??= loadAndConnect(access, config, metrics).catch((err: unknown) => {
        pending = undefined; // a later event tries again
        throw new KubeError("rejected", `cannot use ${describeClusterAccess(access)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      });
      return pending;
    };
    // Nothing waits on this: a failure is reported by the first event that needs the client, which tries again.
    // Once loaded, it opens its first connection to the API server, so that the first event's claim does not wait for the handshake.
    const loading = performance.now();
    connected().then(
      (kube) => {
        logger.debug("Kubernetes client ready", { ms: Math.round(performance.now() - loading) });
        kube.preconnect().then(
          (ms) => logger.debug("connected to the API server", { ms: Math.round(ms) }),
          (err: unknown) => logger.debug(`could not connect to the API server yet: ${err instanceof Error ? err.message : String(err)}`),
        );
      },
      () => undefined,
    );
    const api = async (span?: Span): Promise<KubeApi> => {
      const kube = await connected();
      return span === undefined ? kube : kube.traced(span);
    };
    reader = { getMember: async (ref, signal, span) => (await api(span)).getMember(ref, signal) };
    if (config.recordGreetings === "off") {
      logger.info(`Kubernetes cluster configured (${describeClusterAccess(access)}); recording greetings is off`);
    } else {
      const policy = { finalizer: config.farewells === "finalizer" };
      const recorder = createRecorder({ api, logger, now });
      const converge = createConverge({ api, policy, logger, now, verifyTimeoutMs: config.kubeTimeoutMs, metrics, handlesEvent: recorder.handles });
      const resync = createResync({
        api,
        namespace: async () => config.watchNamespace ?? (await connected()).namespace ?? "default",
        converge,
        logger,
        memberTimeoutMs: config.eventTimeoutMs,
        metrics,
      });
      claims = { converge, resync, policy, recorder };
      logger.info(`Kubernetes cluster configured (${describeClusterAccess(access)}): greetings are claimed and recorded on the Members`, {
        farewells: config.farewells,
      });
    }
  }

  let ready = true;
  const handle = createHandler({
    source: config.greetingSource,
    logger,
    reader,
    claims,
    newId: deps.newId ?? randomUUID,
    now,
    timeoutMs: config.eventTimeoutMs,
    metrics,
  });
  const app = createApp({
    handle,
    logger,
    maxBodyBytes: config.maxBodyBytes,
    isReady: () => ready,
    metrics,
    scrape: prometheus?.scrape,
    replies: config.replies,
  });
  return {
    app,
    setReady: (value) => {
      ready = value;
    },
    settle: async () => claims?.recorder.settle(),
  };
}
