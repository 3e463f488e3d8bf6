// The function's Kubernetes I/O: read a Member, patch its status, create an
// Event. This is the only module that loads @kubernetes/client-node, and it is
// itself imported on first use (see kube.ts), never at start-up.
import { ApiException, CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions, type CoreV1Event } from "@kubernetes/client-node";
import { hostname } from "node:os";
import type { ClusterAccess } from "./cluster-access.ts";
import { HttpError } from "./errors.ts";
import { MEMBER_API_VERSION, MEMBER_GROUP, MEMBER_KIND, MEMBER_PLURAL, MEMBER_VERSION, isObject, type JsonObject, type MemberRef } from "./member.ts";

export interface MemberStatus {
  readonly team: string;
  readonly greeting: string;
  readonly greetedAt: string;
  readonly observedGeneration?: number;
}

export interface MemberEvent {
  readonly member: MemberRef & { readonly uid?: string | undefined };
  readonly reason: string;
  readonly message: string;
  readonly time: Date;
}

/** What the rest of the function needs from the API server. Errors are HttpErrors. */
export interface KubeApi {
  getMember(ref: MemberRef): Promise<JsonObject | undefined>;
  patchMemberStatus(ref: MemberRef, status: MemberStatus): Promise<void>;
  createEvent(event: MemberEvent): Promise<void>;
}

export const COMPONENT = "member-greeter";

/** Maps a failed call to what Knative should do about it. */
export function classify(err: unknown, what: string): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof ApiException) {
    const code = err.code;
    if (code === 429 || code === 409 || code >= 500) {
      return new HttpError("ERR_CLUSTER_UNAVAILABLE", `${what}: API server answered ${code}, try again later`, { cause: err });
    }
    return new HttpError("ERR_CLUSTER_REJECTED", `${what}: API server answered ${code}`, { cause: err });
  }
  if (isNetworkError(err)) {
    return new HttpError("ERR_CLUSTER_UNAVAILABLE", `${what}: API server unreachable`, { cause: err });
  }
  // Anything else (a kubeconfig the client refuses, a certificate that does not
  // verify) will not get better by retrying.
  return new HttpError("ERR_CLUSTER_REJECTED", `${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

// Connection refused or reset, DNS, socket timeouts: errno-style codes, or
// undici's, somewhere on the cause chain (fetch wraps them in "fetch failed").
const networkCode = /^(E[A-Z]+|UND_ERR_[A-Z_]+)$/;
function isNetworkError(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === "string" && networkCode.test(code)) return true;
  }
  return false;
}

function isNotFound(err: unknown): boolean {
  return err instanceof ApiException && err.code === 404;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HttpError("ERR_CLUSTER_UNAVAILABLE", `${what}: API server did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function loadKubeConfig(access: ClusterAccess): KubeConfig {
  const kc = new KubeConfig();
  if (access.kind === "in-cluster") kc.loadFromCluster();
  else kc.loadFromFile(access.path);
  return kc;
}

export function connect(access: ClusterAccess, timeoutMs: number): KubeApi {
  const kc = loadKubeConfig(access);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const core = kc.makeApiClient(CoreV1Api);
  const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
  const instance = hostname();
  const member = (ref: MemberRef) => ({
    group: MEMBER_GROUP,
    version: MEMBER_VERSION,
    plural: MEMBER_PLURAL,
    namespace: ref.namespace,
    name: ref.name,
  });

  const call = async <T>(what: string, run: () => Promise<T>): Promise<T> => {
    try {
      return await withTimeout(run(), timeoutMs, what);
    } catch (err) {
      if (isNotFound(err)) throw new HttpError("ERR_NOT_FOUND", `${what}: not found`, { cause: err });
      throw classify(err, what);
    }
  };

  return {
    async getMember(ref) {
      try {
        const object: unknown = await call(`get member ${ref.namespace}/${ref.name}`, () => custom.getNamespacedCustomObject(member(ref)));
        if (!isObject(object)) throw new HttpError("ERR_CLUSTER_REJECTED", "API server returned a member that is not an object");
        return object;
      } catch (err) {
        if (err instanceof HttpError && err.code === "ERR_NOT_FOUND") return undefined;
        throw err;
      }
    },

    async patchMemberStatus(ref, status) {
      await call(`patch status of member ${ref.namespace}/${ref.name}`, () =>
        custom.patchNamespacedCustomObjectStatus({ ...member(ref), body: { status }, fieldManager: COMPONENT }, mergePatch),
      );
    },

    async createEvent(event) {
      const body: CoreV1Event = {
        metadata: { generateName: `${event.member.name}.`, namespace: event.member.namespace },
        involvedObject: {
          apiVersion: MEMBER_API_VERSION,
          kind: MEMBER_KIND,
          name: event.member.name,
          namespace: event.member.namespace,
          ...(event.member.uid === undefined ? {} : { uid: event.member.uid }),
        },
        reason: event.reason,
        message: event.message,
        type: "Normal",
        source: { component: COMPONENT },
        reportingComponent: COMPONENT,
        reportingInstance: instance,
        firstTimestamp: event.time,
        lastTimestamp: event.time,
        count: 1,
      };
      await call(`create event for member ${event.member.namespace}/${event.member.name}`, () =>
        core.createNamespacedEvent({ namespace: event.member.namespace, body }),
      );
    },
  };
}
