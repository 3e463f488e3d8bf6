// The function's Kubernetes I/O: read and list Members, write a Member's status
// and finalizers under a resourceVersion precondition, create Events. With
// kube-transport.ts, which only it imports, it is all that loads
// @kubernetes/client-node, and it is itself imported only where a cluster is
// configured, in the background (see wiring.ts), never on the start-up path.
// Every failure leaves here as a KubeError that says what it means; every call
// is aborted at its deadline.
import { ApiException, KubeConfig, PatchStrategy, type HttpInfo, type RequestContext, type ResponseContext } from "@kubernetes/client-node";
// The generated request factory and response processor: the part of the client
// that knows the API (paths, query parameters, serialization, authentication,
// status codes). The package's API classes wrap them in three more layers (an
// object-parameter API, a promise API, an observable API) that merge
// per-call options and build an Observable middleware chain for every call;
// each call here goes from the factory straight to the pool and back.
import { CustomObjectsApiRequestFactory, CustomObjectsApiResponseProcessor } from "@kubernetes/client-node/dist/gen/apis/CustomObjectsApi.js";
import { hostname } from "node:os";
import type { ClusterAccess } from "./cluster-access.ts";
import { startDeadline } from "./deadline.ts";
import { KubeError } from "./kube-errors.ts";
import { COMPONENT, EVENTS, eventObject } from "./event-object.ts";
import { createTransport, type PoolStats } from "./kube-transport.ts";
import { noMetrics, type KubeResource, type KubeVerb, type Metrics } from "./metrics.ts";
import type { Span } from "./trace-context.ts";
import { MEMBER_GROUP, MEMBER_PLURAL, MEMBER_VERSION, isObject, type JsonObject, type MemberRef } from "./member.ts";

/** The Event a claim still owes: written by the claim, removed once the Event exists. */
export interface PendingEvent {
  readonly name: string;
  readonly reason: string;
}

export interface MemberStatus {
  readonly team: string;
  readonly greeting: string;
  readonly greetedAt: string;
  readonly observedGeneration?: number;
  readonly farewellAt?: string;
  readonly pendingEvent?: PendingEvent;
}

/** What a status merge patch may carry: a claim, or `pendingEvent: null` once its Event exists. */
export type StatusPatch = MemberStatus | { readonly pendingEvent: null };

export interface MemberEvent {
  /** The Event's own name: the same for every retry of one greeting, so a retried create cannot make a second Event. */
  readonly name: string;
  readonly member: MemberRef & { readonly uid?: string | undefined };
  readonly reason: string;
  readonly message: string;
  readonly time: Date;
}

export interface MemberPage {
  readonly items: readonly JsonObject[];
  /** The continue token for the next page; undefined on the last. */
  readonly continue: string | undefined;
}

/** What the rest of the function needs from the API server. Errors are KubeErrors. */
export interface KubeApi {
  /** The Member, or undefined when it does not exist. */
  getMember(ref: MemberRef, signal?: AbortSignal): Promise<JsonObject | undefined>;
  listMembers(namespace: string, page: { readonly limit: number; readonly continue?: string | undefined }, signal?: AbortSignal): Promise<MemberPage>;
  /** Merge-patches status if the Member is still at resourceVersion; returns the Member as written. */
  patchMemberStatus(ref: MemberRef, resourceVersion: string, status: StatusPatch, signal?: AbortSignal): Promise<JsonObject>;
  /** Replaces metadata.finalizers if the Member is still at resourceVersion; returns the Member as written. */
  patchMemberFinalizers(ref: MemberRef, resourceVersion: string, finalizers: readonly string[], signal?: AbortSignal): Promise<JsonObject>;
  /** Creates the Event; one that exists already (a retry that had reached the server) is success. */
  createEvent(event: MemberEvent, signal?: AbortSignal): Promise<void>;
}

/** Maps a failed call to what it means. */
function classify(err: unknown, what: string): KubeError {
  if (err instanceof KubeError) return err;
  if (err instanceof ApiException) {
    const code = err.code;
    if (code === 404) return new KubeError("not-found", `${what}: not found`, { cause: err });
    if (code === 409) return new KubeError("conflict", `${what}: the object was changed meanwhile (409)`, { cause: err });
    if (code === 429 || code >= 500) return new KubeError("unavailable", `${what}: API server answered ${code}`, { cause: err });
    return new KubeError("rejected", `${what}: API server answered ${code}${reasonOf(err.body)}`, { cause: err });
  }
  if (isAbort(err)) return new KubeError("unavailable", `${what}: no answer in time (aborted)`, { cause: err });
  if (isNetworkError(err)) return new KubeError("unavailable", `${what}: API server unreachable`, { cause: err });
  // Anything else (a kubeconfig the client refuses, a certificate that does not
  // verify) will not get better by retrying.
  return new KubeError("rejected", `${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}

function reasonOf(body: unknown): string {
  const parsed: unknown = typeof body === "string" ? safeParse(body) : body;
  return isObject(parsed) && typeof parsed["message"] === "string" ? `: ${parsed["message"]}` : "";
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === "AbortError" || err.name === "TimeoutError");
}

// Connection refused or reset, DNS, socket timeouts: errno-style codes, or
// undici's, somewhere on the cause chain (fetch wraps them in "fetch failed").
const networkCode = /^(E[A-Z]+|UND_ERR_[A-Z_]+)$/;
function isNetworkError(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === "string" && networkCode.test(code)) return true;
    if (isAbort(e)) return true;
  }
  return false;
}

function loadKubeConfig(access: ClusterAccess): KubeConfig {
  const kc = new KubeConfig();
  if (access.kind === "in-cluster") kc.loadFromCluster();
  else kc.loadFromFile(access.path);
  return kc;
}

/** The namespace the credentials belong to: the pod's, or the kubeconfig context's. */
export function namespaceOf(kc: KubeConfig): string | undefined {
  return kc.getContextObject(kc.getCurrentContext())?.namespace;
}

/** The API as connected: calls as children of no span, and `traced` for those of one. */
export interface ConnectedApi extends KubeApi {
  readonly namespace: string | undefined;
  /** The same API, each call sending `span`'s trace context. */
  traced(span: Span): KubeApi;
  /** Opens the pool's first connection before the first call needs it (see kube-transport.ts); resolves with how long it took. */
  preconnect(): Promise<number>;
  /** The connection pool's counts: every call shares it. */
  connections(): PoolStats;
  /** Closes the pool's connections, after the last call. */
  close(): void;
}

export interface ConnectOptions {
  /** Deadline of each call. */
  readonly timeoutMs: number;
  /** Connections to the API server at most (KUBE_MAX_CONNECTIONS). */
  readonly maxConnections: number;
  readonly metrics?: Metrics;
}

export function connect(access: ClusterAccess, options: ConnectOptions): ConnectedApi {
  const { timeoutMs } = options;
  const metrics = options.metrics ?? noMetrics;
  const kc = loadKubeConfig(access);
  const transport = createTransport(kc, { maxConnections: options.maxConnections, userAgent: `${COMPONENT} (@kubernetes/client-node)` });
  const requests = new CustomObjectsApiRequestFactory(transport.configuration);
  const responses = new CustomObjectsApiResponseProcessor();
  const instance = hostname();

  /**
   * Runs `run` under a call's deadline, ended with it: aborted at `timeoutMs`
   * or when the caller's signal fires, whichever is first; a failure leaves as
   * the KubeError that says what it means.
   */
  const bounded = async <T>(what: string, signal: AbortSignal | undefined, run: (signal: AbortSignal) => Promise<T>): Promise<T> => {
    const deadline = startDeadline(timeoutMs, signal);
    try {
      return await run(deadline.signal);
    } catch (err) {
      throw deadline.expired()
        ? new KubeError("unavailable", `${what}: API server did not answer within ${timeoutMs} ms`, { cause: err })
        : classify(err, what);
    } finally {
      deadline.end();
    }
  };

  /**
   * One API call, under its deadline (`bounded`); counted, with its duration,
   * by what it meant. The request carries the trace context of the span that
   * caused it (W3C headers); `contentType` overrides the factory's choice (a
   * merge patch, where the generated code would send a JSON patch).
   */
  const call = async (
    kind: { readonly verb: KubeVerb; readonly resource: KubeResource; readonly span: Span | undefined; readonly contentType?: string },
    what: string,
    signal: AbortSignal | undefined,
    request: () => Promise<RequestContext>,
    response: (answer: ResponseContext) => Promise<HttpInfo<unknown>>,
  ): Promise<unknown> => {
    const started = performance.now();
    try {
      const result = await bounded(what, signal, async (deadline) => {
        const context = await request();
        context.setSignal(deadline);
        if (kind.contentType !== undefined) context.setHeaderParam("Content-Type", kind.contentType);
        const { span } = kind;
        if (span !== undefined) {
          context.setHeaderParam("traceparent", span.traceparent);
          if (span.tracestate !== undefined) context.setHeaderParam("tracestate", span.tracestate);
        }
        return (await response(await transport.send(context))).data;
      });
      metrics.kubeCall(kind.verb, kind.resource, "ok", (performance.now() - started) / 1000);
      return result;
    } catch (err) {
      metrics.kubeCall(kind.verb, kind.resource, err instanceof KubeError ? err.kind : "rejected", (performance.now() - started) / 1000);
      throw err;
    }
  };

  const asObject = (value: unknown, what: string): JsonObject => {
    if (!isObject(value)) throw new KubeError("rejected", `${what}: API server returned something that is not an object`);
    return value;
  };

  const api = (span: Span | undefined): KubeApi => ({
    async getMember(ref, signal) {
      const what = `get member ${ref.namespace}/${ref.name}`;
      try {
        const answer = await call(
          { verb: "get", resource: "members", span },
          what,
          signal,
          () => requests.getNamespacedCustomObject(MEMBER_GROUP, MEMBER_VERSION, ref.namespace, MEMBER_PLURAL, ref.name),
          (r) => responses.getNamespacedCustomObjectWithHttpInfo(r),
        );
        return asObject(answer, what);
      } catch (err) {
        if (err instanceof KubeError && err.kind === "not-found") return undefined;
        throw err;
      }
    },

    async listMembers(namespace, page, signal) {
      const what = `list members in ${namespace}`;
      const list = asObject(
        await call(
          { verb: "list", resource: "members", span },
          what,
          signal,
          () =>
            requests.listNamespacedCustomObject(
              MEMBER_GROUP,
              MEMBER_VERSION,
              namespace,
              MEMBER_PLURAL,
              undefined,
              undefined,
              page.continue,
              undefined,
              undefined,
              page.limit,
            ),
          (r) => responses.listNamespacedCustomObjectWithHttpInfo(r),
        ),
        what,
      );
      const items = Array.isArray(list["items"]) ? list["items"].filter(isObject) : [];
      const meta = list["metadata"];
      const next = isObject(meta) && typeof meta["continue"] === "string" && meta["continue"] !== "" ? meta["continue"] : undefined;
      return { items, continue: next };
    },

    async patchMemberStatus(ref, resourceVersion, status, signal) {
      const what = `patch status of member ${ref.namespace}/${ref.name}`;
      // resourceVersion in a patch makes it conditional: 409 if the Member changed since.
      const body = { metadata: { resourceVersion }, status };
      return asObject(
        await call(
          { verb: "patch", resource: "members/status", span, contentType: PatchStrategy.MergePatch },
          what,
          signal,
          () => requests.patchNamespacedCustomObjectStatus(MEMBER_GROUP, MEMBER_VERSION, ref.namespace, MEMBER_PLURAL, ref.name, body, undefined, COMPONENT),
          (r) => responses.patchNamespacedCustomObjectStatusWithHttpInfo(r),
        ),
        what,
      );
    },

    async patchMemberFinalizers(ref, resourceVersion, finalizers, signal) {
      const what = `patch finalizers of member ${ref.namespace}/${ref.name}`;
      const body = { metadata: { resourceVersion, finalizers } };
      return asObject(
        await call(
          { verb: "patch", resource: "members", span, contentType: PatchStrategy.MergePatch },
          what,
          signal,
          () => requests.patchNamespacedCustomObject(MEMBER_GROUP, MEMBER_VERSION, ref.namespace, MEMBER_PLURAL, ref.name, body, undefined, COMPONENT),
          (r) => responses.patchNamespacedCustomObjectWithHttpInfo(r),
        ),
        what,
      );
    },

    async createEvent(event, signal) {
      const body = eventObject(event, instance);
      try {
        await call(
          { verb: "create", resource: "events", span },
          `create event for member ${event.member.namespace}/${event.member.name}`,
          signal,
          () => requests.createNamespacedCustomObject(EVENTS.group, EVENTS.version, event.member.namespace, EVENTS.plural, body),
          (r) => responses.createNamespacedCustomObjectWithHttpInfo(r),
        );
      } catch (err) {
        // AlreadyExists: an earlier attempt of this very Event reached the server.
        if (err instanceof KubeError && err.kind === "conflict") return;
        throw err;
      }
    },
  });

  return {
    ...api(undefined),
    namespace: namespaceOf(kc),
    traced: (span) => api(span),
    async preconnect() {
      const started = performance.now();
      await bounded("connect to the API server", undefined, (deadline) => transport.preconnect(deadline));
      return performance.now() - started;
    },
    connections: () => transport.stats(),
    close: () => transport.close(),
  };
}
