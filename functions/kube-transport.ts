// How the function's API calls reach the API server: one keep-alive connection
// pool shared by every call, at most `maxConnections` sockets.
//
// Why not the client's own transport: @kubernetes/client-node 2.0.1 builds a
// new undici Agent for every call (and reads the CA file again), so every call
// opened its own TCP and TLS connection — 602 connections after 300 greetings,
// most of the time and memory a greeting cost, and a load on the user's API
// server that client-go never puts there. The client's generated code takes
// the HTTP library and the authentication as parameters; this module gives it
// both. KubeConfig still decides everything about the credentials (in-cluster
// token file, kubeconfig certificates, exec and OIDC plugins); this module only
// decides how sockets are made and kept.
import type { Agent as HttpAgent, IncomingHttpHeaders, IncomingMessage } from "node:http";
import type { RequestOptions } from "node:https";
import {
  createConfiguration,
  HttpMethod,
  type Configuration,
  type KubeConfig,
  type RequestContext,
  ResponseContext,
  type SecurityAuthentication,
  SelfDecodingBody,
  ServerConfiguration,
  wrapHttpLibrary,
} from "@kubernetes/client-node";

// Not `import … from "node:http"` (nor node:https): an ES module import of
// node:http makes Node load undici too, for http's lazy WebSocket exports (see
// http-app.ts): 16-50 ms of the first greeting's wait, for nothing.
const { Agent: PlainAgent, request: httpRequest } = process.getBuiltinModule("node:http");
const { Agent: HttpsAgent, request: httpsRequest } = process.getBuiltinModule("node:https");

/** What the pool did, for tests and metrics: connections opened, and open now. */
export interface PoolStats {
  readonly opened: number;
  readonly open: number;
}

export interface Transport {
  /** The client configuration whose calls go through the pool, authenticated by `kc`. */
  readonly configuration: Configuration;
  /** Sends a request the client's request factory built (and authenticated) through the pool. */
  send(request: RequestContext): Promise<ResponseContext>;
  /**
   * Opens the pool's first connection ahead of the first call: GET /version,
   * authenticated like every call. Resolves once answered (any answer will do:
   * the connection is what counts), rejects when the server is unreachable.
   */
  preconnect(signal?: AbortSignal): Promise<void>;
  stats(): PoolStats;
  /** Closes every connection: for after the last call (shutdown, tests). */
  close(): void;
}

export interface TransportOptions {
  /** At most this many connections to the API server; calls beyond wait for one. */
  readonly maxConnections: number;
  /** The User-Agent header. */
  readonly userAgent: string;
  /** Called when the pool opens a connection. */
  readonly onConnection?: () => void;
  /** How long what KubeConfig applied (headers, TLS files) is reused before it is asked again. */
  readonly reuseCredentialsMs?: number;
  /** Milliseconds on a monotonic clock (tests pass their own). */
  readonly now?: () => number;
}

// An idle pooled connection is closed after this long; the API server closes
// idle ones itself after its own, longer timeout.
const IDLE_MS = 30_000;

/** A second: under load, one read of the credentials per second instead of one per call. */
export const REUSE_CREDENTIALS_MS = 1_000;

/** The TLS material an agent was made with; when a file it came from changes, a new agent is made. */
interface Tls {
  readonly ca: Buffer | undefined;
  readonly cert: Buffer | undefined;
  readonly key: Buffer | undefined;
  readonly rejectUnauthorized: boolean | undefined;
  readonly servername: string | undefined;
}

const sameBuffer = (a: Buffer | undefined, b: Buffer | undefined): boolean => (a === undefined ? b === undefined : b !== undefined && a.equals(b));
const sameTls = (a: Tls, b: Tls): boolean =>
  sameBuffer(a.ca, b.ca) &&
  sameBuffer(a.cert, b.cert) &&
  sameBuffer(a.key, b.key) &&
  a.rejectUnauthorized === b.rejectUnauthorized &&
  a.servername === b.servername;

const asBuffer = (value: unknown): Buffer | undefined => (Buffer.isBuffer(value) ? value : typeof value === "string" ? Buffer.from(value) : undefined);

function tlsOf(options: RequestOptions): Tls {
  return {
    ca: asBuffer(options.ca),
    cert: asBuffer(options.cert),
    key: asBuffer(options.key),
    rejectUnauthorized: options.rejectUnauthorized,
    servername: options.servername ?? undefined,
  };
}

function flatten(headers: IncomingHttpHeaders): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return flat;
}

function readAll(response: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    response.on("data", (chunk: Buffer) => chunks.push(chunk));
    response.on("end", () => resolve(Buffer.concat(chunks)));
    response.on("error", reject);
    response.on("aborted", () => reject(Object.assign(new Error("the API server closed the connection mid-answer"), { code: "ECONNRESET" })));
  });
}

export function createTransport(kc: KubeConfig, options: TransportOptions): Transport {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error("the kubeconfig has no current cluster");
  const secure = new URL(cluster.server).protocol === "https:";
  // As the client itself does: a token is never sent in clear unless the kubeconfig says TLS is off on purpose.
  if (!secure && cluster.skipTLSVerify !== true) throw new Error(`${cluster.server}: plain http is used only with insecure-skip-tls-verify`);
  let opened = 0;
  const agents: HttpAgent[] = [];
  // Where every request goes, parsed once: the factory hands each request over
  // as a URL string, which node:http would otherwise parse again per call.
  const base = new URL(cluster.server);
  const target = { protocol: base.protocol, hostname: base.hostname.replace(/^\[(.*)\]$/, "$1"), port: base.port };
  const pathOf = (url: string): string => {
    if (url.startsWith(base.origin)) return url.slice(base.origin.length) || "/";
    const parsed = new URL(url);
    return `${parsed.pathname}${parsed.search}`;
  };

  const makeAgent = (tls: Tls): HttpAgent => {
    const common = {
      keepAlive: true,
      maxSockets: options.maxConnections,
      maxFreeSockets: options.maxConnections,
      timeout: IDLE_MS,
      scheduling: "lifo" as const,
    };
    const agent = secure
      ? new HttpsAgent({
          ...common,
          ...(tls.ca === undefined ? {} : { ca: tls.ca }),
          ...(tls.cert === undefined ? {} : { cert: tls.cert }),
          ...(tls.key === undefined ? {} : { key: tls.key }),
          ...(tls.rejectUnauthorized === undefined ? {} : { rejectUnauthorized: tls.rejectUnauthorized }),
          ...(tls.servername === undefined ? {} : { servername: tls.servername }),
        })
      : new PlainAgent(common);
    // Counted where sockets are made, so that a test sees any call that stops sharing them.
    const create = agent.createConnection.bind(agent);
    agent.createConnection = (...args: Parameters<typeof create>) => {
      opened++;
      options.onConnection?.();
      return create(...args);
    };
    agents.push(agent);
    return agent;
  };

  let current: { readonly tls: Tls; readonly agent: HttpAgent } | undefined;
  // A kubeconfig with a proxy-url: the client's own (cached) proxy agent carries the calls.
  let proxyAgent: HttpAgent | undefined;

  const agentFor = (tls: Tls): HttpAgent => {
    if (current === undefined || !sameTls(current.tls, tls)) {
      const previous = current?.agent;
      current = { tls, agent: makeAgent(tls) };
      // Rotated credentials: calls in flight finish on the old connections, idle ones go now.
      if (previous !== undefined) {
        for (const sockets of Object.values(previous.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
      }
    }
    return current.agent;
  };

  // KubeConfig decides the credentials (a token file it re-reads each minute,
  // exec or OIDC tokens it refreshes) and reads the TLS files, which tells us
  // when they were rotated. It reads those files from disk on every call,
  // though: three synchronous file reads per API call, on the event loop that
  // serves the events. What it applied is reused for `reuseCredentialsMs`,
  // far inside any token's life, then asked for again.
  interface Applied {
    readonly headers: readonly (readonly [string, string])[];
    readonly tls: Tls;
    readonly proxy: HttpAgent | undefined;
  }
  const reuseMs = options.reuseCredentialsMs ?? REUSE_CREDENTIALS_MS;
  const clock = options.now ?? (() => performance.now());
  const apply = async (): Promise<Applied> => {
    const applied: RequestOptions = {};
    await kc.applyToHTTPSOptions(applied);
    const headers: [string, string][] = [];
    for (const [name, value] of Object.entries(applied.headers ?? {})) {
      if (value !== undefined) headers.push([name, Array.isArray(value) ? value.join(", ") : String(value)]);
    }
    if (typeof applied.auth === "string") headers.push(["Authorization", `Basic ${Buffer.from(applied.auth).toString("base64")}`]);
    const proxy = cluster.proxyUrl !== undefined && applied.agent instanceof PlainAgent ? applied.agent : undefined;
    return { headers, tls: tlsOf(applied), proxy };
  };
  let cached: { readonly at: number; readonly applied: Promise<Applied> } | undefined;
  const credentials = (): Promise<Applied> => {
    const at = clock();
    if (cached === undefined || at - cached.at >= reuseMs) {
      const applied = apply();
      const entry = { at, applied };
      cached = entry;
      // A failure is not reused: the next call asks again.
      applied.catch(() => {
        if (cached === entry) cached = undefined;
      });
    }
    return cached.applied;
  };
  const auth: SecurityAuthentication = {
    getName: () => "member-greeter pooled kubeconfig authentication",
    async applySecurityAuthentication(context: RequestContext) {
      const { headers, tls, proxy } = await credentials();
      for (const [name, value] of headers) context.setHeaderParam(name, value);
      if (proxy !== undefined) proxyAgent = proxy;
      else agentFor(tls);
    },
  };

  const send = (request: RequestContext): Promise<ResponseContext> =>
    new Promise((resolve, reject) => {
      const body = request.getBody();
      if (body !== undefined && typeof body !== "string") {
        reject(new Error("only JSON request bodies are sent by this transport"));
        return;
      }
      const agent = proxyAgent ?? current?.agent ?? agentFor(tlsOf({}));
      const headers: Record<string, string> = { ...request.getHeaders(), "User-Agent": options.userAgent };
      if (body !== undefined) headers["Content-Length"] = String(Buffer.byteLength(body));
      const signal = request.getSignal();
      const aborted = (): Error => Object.assign(new Error("the API call was aborted", { cause: signal?.reason }), { name: "AbortError" });
      if (signal?.aborted === true) {
        reject(aborted());
        return;
      }
      const call = (secure ? httpsRequest : httpRequest)(
        { ...target, path: pathOf(request.getUrl()), method: request.getHttpMethod(), headers, agent },
        (response) => {
          readAll(response).then(
            (data) => resolve(new ResponseContext(response.statusCode ?? 0, flatten(response.headers), new SelfDecodingBody(Promise.resolve(data)))),
            reject,
          );
        },
      );
      call.on("error", reject);
      // The abort as node:http's `signal` option does it (destroy with an
      // AbortError), without the stream plumbing it sets up on every call
      // (addAbortSignal and an end-of-stream watcher): one listener, gone
      // when the call closes.
      if (signal !== undefined) {
        const abort = (): void => {
          call.destroy(aborted());
        };
        signal.addEventListener("abort", abort, { once: true });
        call.once("close", () => signal.removeEventListener("abort", abort));
      }
      call.end(body);
    });

  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: auth },
    httpApi: wrapHttpLibrary({ send }),
  });

  // The first call on a fresh pod would otherwise pay for the TCP and TLS
  // handshake (28-62 ms measured in a burst on a busy two-core node) and for
  // the first run of this code; a burst's first event waits for it, and
  // every later event waits behind that one. /version is readable by any
  // authenticated client (system:public-info-viewer) and costs the server
  // nothing.
  const preconnect = async (signal?: AbortSignal): Promise<void> => {
    const request = configuration.baseServer.makeRequestContext("/version", HttpMethod.GET);
    await auth.applySecurityAuthentication(request);
    if (signal !== undefined) request.setSignal(signal);
    await send(request);
  };

  return {
    configuration,
    send,
    preconnect,
    stats: () => {
      let open = 0;
      for (const agent of agents) {
        for (const sockets of [...Object.values(agent.sockets), ...Object.values(agent.freeSockets)]) open += sockets?.length ?? 0;
      }
      return { opened, open };
    },
    close: () => {
      for (const agent of agents) agent.destroy();
    },
  };
}
