// Wires the function together from its configuration: logger, cluster access,
// handler and HTTP app. No I/O happens here beyond looking for cluster
// credentials; the Kubernetes client is loaded on first use.
import { randomUUID } from "node:crypto";
import type express from "express";
import { createApp } from "./http-app.ts";
import { describeClusterAccess, detectClusterAccess, type ClusterAccess } from "./cluster-access.ts";
import type { Config, Env } from "./config.ts";
import { HttpError } from "./errors.ts";
import { createHandler, type GreetingRecorder, type MemberReader } from "./handler.ts";
import type { KubeApi } from "./kube-client.ts";
import type { Logger } from "./logger.ts";
import { createRecorder } from "./recorder.ts";

export interface WiredGreeter {
  readonly app: express.Express;
  /** False once shutdown has begun; /readyz answers 503 from then on. */
  setReady(ready: boolean): void;
}

export interface GreeterDeps {
  readonly env: Env;
  readonly logger: Logger;
  readonly now?: () => Date;
  readonly newId?: () => string;
}

const loadAndConnect = async (access: ClusterAccess, timeoutMs: number): Promise<KubeApi> => {
  const { connect } = await import("./kube-client.ts");
  return connect(access, timeoutMs);
};

export function wireGreeter(config: Config, deps: GreeterDeps): WiredGreeter {
  const { logger } = deps;
  const now = deps.now ?? (() => new Date());
  const access = detectClusterAccess(deps.env);
  let reader: MemberReader | undefined;
  let recorder: GreetingRecorder | undefined;

  if (access === undefined) {
    logger.info("no Kubernetes cluster configured: greetings are not recorded, Reference-mode add and update are refused");
  } else {
    let pending: Promise<KubeApi> | undefined;
    const api = (): Promise<KubeApi> => {
      pending ??= loadAndConnect(access, config.kubeTimeoutMs).catch((err: unknown) => {
        pending = undefined; // a later event tries again
        throw new HttpError("ERR_NO_CLUSTER", `cannot use ${describeClusterAccess(access)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      });
      return pending;
    };
    reader = { getMember: async (ref) => (await api()).getMember(ref) };
    if (config.recordGreetings === "off") {
      logger.info(`Kubernetes cluster configured (${describeClusterAccess(access)}); recording greetings is off`);
    } else {
      recorder = createRecorder({ api, logger, now });
      logger.info(`Kubernetes cluster configured (${describeClusterAccess(access)}): greetings are recorded on the Members`);
    }
  }

  let ready = true;
  const handle = createHandler({
    source: config.greetingSource,
    logger,
    reader,
    recorder,
    newId: deps.newId ?? randomUUID,
    now,
  });
  const app = createApp({ handle, logger, maxBodyBytes: config.maxBodyBytes, isReady: () => ready });
  return {
    app,
    setReady: (value) => {
      ready = value;
    },
  };
}
