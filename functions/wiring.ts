// Wires the function together from its configuration: logger, cluster access,
// handler and HTTP app. No I/O happens here beyond looking for cluster
// credentials; the Kubernetes client is loaded on first use.
import { randomUUID } from "node:crypto";
import type express from "express";
import { createConverge } from "./claim.ts";
import { describeClusterAccess, detectClusterAccess, type ClusterAccess } from "./cluster-access.ts";
import type { Config, Env } from "./config.ts";
import { createHandler, type Claims, type MemberReader } from "./handler.ts";
import { createApp } from "./http-app.ts";
import type { KubeApi } from "./kube-client.ts";
import { KubeError } from "./kube-errors.ts";
import type { Logger } from "./logger.ts";
import { createRecorder } from "./recorder.ts";
import { createResync } from "./resync.ts";

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

type Connected = KubeApi & { readonly namespace: string | undefined };

const loadAndConnect = async (access: ClusterAccess, timeoutMs: number): Promise<Connected> => {
  const { connect } = await import("./kube-client.ts");
  return connect(access, timeoutMs);
};

export function wireGreeter(config: Config, deps: GreeterDeps): WiredGreeter {
  const { logger } = deps;
  const now = deps.now ?? (() => new Date());
  const access = detectClusterAccess(deps.env);
  let reader: MemberReader | undefined;
  let claims: Claims | undefined;

  if (access === undefined) {
    logger.info("no Kubernetes cluster configured: greetings are not recorded, Reference-mode add and update are refused");
  } else {
    let pending: Promise<Connected> | undefined;
    const api = (): Promise<Connected> => {
      pending ??= loadAndConnect(access, config.kubeTimeoutMs).catch((err: unknown) => {
        pending = undefined; // a later event tries again
        throw new KubeError("rejected", `cannot use ${describeClusterAccess(access)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      });
      return pending;
    };
    reader = { getMember: async (ref, signal) => (await api()).getMember(ref, signal) };
    if (config.recordGreetings === "off") {
      logger.info(`Kubernetes cluster configured (${describeClusterAccess(access)}); recording greetings is off`);
    } else {
      const policy = { finalizer: config.farewells === "finalizer" };
      const converge = createConverge({ api, policy, logger, now, verifyTimeoutMs: config.kubeTimeoutMs });
      const resync = createResync({
        api,
        namespace: async () => config.watchNamespace ?? (await api()).namespace ?? "default",
        converge,
        logger,
        memberTimeoutMs: config.eventTimeoutMs,
      });
      claims = { converge, resync, policy, recorder: createRecorder({ api, logger, now }) };
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
  });
  const app = createApp({ handle, logger, maxBodyBytes: config.maxBodyBytes, isReady: () => ready });
  return {
    app,
    setReady: (value) => {
      ready = value;
    },
    settle: async () => claims?.recorder.settle(),
  };
}
