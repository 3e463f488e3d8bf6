// A small local stand-in for the Kubernetes API server: just the calls the
// greeter makes (get a Member, merge-patch its status, create an Event, core/v1
// or events.k8s.io/v1, GET /version), with switches to make it fail. test/kubernetes.test.ts uses it only for what a
// real server cannot easily be made to do (a transient 503 on cue); API
// behaviour itself is tested against a real kube-apiserver in test/e2e/.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "./wait-for.ts";

type Json = Record<string, unknown>;

export interface FakeApiServer {
  readonly url: string;
  /** A kubeconfig file pointing at this server, for KUBECONFIG. */
  readonly kubeconfig: string;
  readonly members: Map<string, Json>;
  readonly events: Json[];
  readonly requests: {
    method: string;
    path: string;
    /** The query string, "?…" or "". */
    search: string;
    contentType: string | undefined;
    body: string;
    /** The W3C trace context headers the request carried. */
    traceparent: string | undefined;
    tracestate: string | undefined;
  }[];
  /** Answer the next `count` requests with `status` (e.g. 503, 403). */
  failNext(count: number, status: number): void;
  /** TCP connections accepted so far, and open now. */
  connections(): { readonly accepted: number; readonly open: number };
  /** Hold every answer this long, so that calls overlap. */
  delayAnswers(ms: number): void;
  /**
   * Resolves once a client has opened its connection ahead of its first call
   * (GET /version: kube-transport.ts's preconnect), and forgets that request,
   * so that a test's own calls and injected failures start after it.
   */
  preconnected(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const memberPath = /^\/apis\/helloworld\.apimeister\.com\/v1\/namespaces\/([^/]+)\/members\/([^/]+)(\/status)?$/;
// core/v1 and events.k8s.io/v1 Events are one resource in a real API server; here too.
const eventsPath = /^\/(?:api\/v1|apis\/events\.k8s\.io\/v1)\/namespaces\/([^/]+)\/events$/;

export interface FakeApiServerOptions {
  /**
   * Refuse a status patch whose metadata.resourceVersion is not the Member's
   * (409), as a real API server does; off by default, for the tests that
   * store Members without caring about versions.
   */
  readonly checkResourceVersion?: boolean;
  /**
   * Serve the API under this path (as a proxy in front of the API server
   * does, "/k8s/clusters/c-1"): the kubeconfig's server URL ends with it, and
   * a request outside it is answered 404.
   */
  readonly pathPrefix?: string;
}

function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return patch;
  const out: Json = typeof target === "object" && target !== null && !Array.isArray(target) ? { ...(target as Json) } : {};
  for (const [key, value] of Object.entries(patch as Json)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

function status(res: ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { "content-type": "application/json" });
  res.end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", reason, message, code }));
}

async function readAll(req: IncomingMessage): Promise<string> {
  let text = "";
  for await (const chunk of req) text += String(chunk);
  return text;
}

export async function startFakeApiServer(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
  const members = new Map<string, Json>();
  const events: Json[] = [];
  const requests: FakeApiServer["requests"] = [];
  let failures: { count: number; status: number } = { count: 0, status: 0 };
  let version = 100;
  let delayMs = 0;
  let accepted = 0;
  let open = 0;

  const server = createServer((req, res) => {
    void (async () => {
      const body = await readAll(req);
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      const { pathname: full, search } = new URL(req.url ?? "/", "http://x");
      const prefix = options.pathPrefix ?? "";
      const path = full.startsWith(prefix) ? full.slice(prefix.length) : `(outside ${prefix})${full}`;
      const one = (value: string | string[] | undefined) => (Array.isArray(value) ? value.join(",") : value);
      requests.push({
        method: req.method ?? "",
        path,
        search,
        contentType: req.headers["content-type"],
        body,
        traceparent: one(req.headers["traceparent"]),
        tracestate: one(req.headers["tracestate"]),
      });
      if (req.headers.authorization !== "Bearer test-token") return status(res, 401, "Unauthorized", "no token");
      if (failures.count > 0) {
        failures.count--;
        return status(res, failures.status, "Failure", `injected ${failures.status}`);
      }
      if (path === "/version" && req.method === "GET") {
        res.writeHead(200, { "content-type": "application/json" });
        return res.end(JSON.stringify({ major: "1", minor: "34", gitVersion: "v1.34.0-fake" }));
      }
      const m = memberPath.exec(path);
      if (m) {
        const key = `${m[1]}/${m[2]}`;
        const member = members.get(key);
        if (member === undefined) return status(res, 404, "NotFound", `members "${m[2]}" not found`);
        if (req.method === "GET" && !m[3]) {
          res.writeHead(200, { "content-type": "application/json" });
          return res.end(JSON.stringify(member));
        }
        if (req.method === "PATCH" && m[3]) {
          if (req.headers["content-type"] !== "application/merge-patch+json") return status(res, 415, "UnsupportedMediaType", "merge patch only");
          const patch = JSON.parse(body) as Json;
          const wanted = (patch["metadata"] as Json | undefined)?.["resourceVersion"];
          const current = (member["metadata"] as Json | undefined)?.["resourceVersion"];
          if (options.checkResourceVersion === true && wanted !== undefined && wanted !== current) {
            return status(res, 409, "Conflict", `the object has been modified (resourceVersion ${String(current)}, not ${String(wanted)})`);
          }
          const next = mergePatch(member, { status: patch["status"] }) as Json;
          (next["metadata"] as Json)["resourceVersion"] = String(++version);
          members.set(key, next);
          res.writeHead(200, { "content-type": "application/json" });
          return res.end(JSON.stringify(next));
        }
        return status(res, 405, "MethodNotAllowed", "not here");
      }
      const e = eventsPath.exec(path);
      if (e && req.method === "POST") {
        const event = JSON.parse(body) as Json;
        events.push(event);
        res.writeHead(201, { "content-type": "application/json" });
        return res.end(JSON.stringify({ ...event, metadata: { ...(event["metadata"] as Json), name: `ev-${events.length}` } }));
      }
      return status(res, 404, "NotFound", path);
    })();
  });
  server.on("connection", (socket) => {
    accepted++;
    open++;
    socket.on("close", () => open--);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dir = await mkdtemp(join(tmpdir(), "greeter-kube-"));
  const kubeconfig = join(dir, "kubeconfig");
  await writeFile(
    kubeconfig,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      // Plain http is refused unless TLS verification is explicitly off (functions/kube-transport.ts).
      clusters: [{ name: "fake", cluster: { server: `${url}${options.pathPrefix ?? ""}`, "insecure-skip-tls-verify": true } }],
      users: [{ name: "greeter", user: { token: "test-token" } }],
      contexts: [{ name: "fake", context: { cluster: "fake", user: "greeter", namespace: "default" } }],
      "current-context": "fake",
    }),
  );
  return {
    url,
    kubeconfig,
    members,
    events,
    requests,
    failNext(count, code) {
      failures = { count, status: code };
    },
    connections() {
      return { accepted, open };
    },
    delayAnswers(ms) {
      delayMs = ms;
    },
    async preconnected(timeoutMs = 5_000) {
      const at = await waitFor(
        "GET /version",
        () => {
          const index = requests.findIndex((r) => r.method === "GET" && r.path === "/version");
          return index === -1 ? undefined : index;
        },
        { timeoutMs, intervalMs: 10 },
      );
      requests.splice(at, 1);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
