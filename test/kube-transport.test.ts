// Every API call shares one keep-alive connection pool (functions/kube-transport.ts),
// bounded by KUBE_MAX_CONNECTIONS: counted on the server side, through the
// real Kubernetes client, so that a change which makes calls open connections
// of their own again (the client's own transport does, one per call) fails here.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { ApiException, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import { microTime } from "../functions/event-object.ts";
import { connect, type ConnectedApi } from "../functions/kube-client.ts";
import { KubeError } from "../functions/kube-errors.ts";
import { createTransport, REUSE_CREDENTIALS_MS } from "../functions/kube-transport.ts";
import { startFakeApiServer, type FakeApiServer, type FakeApiServerOptions } from "./support/fake-apiserver.ts";

const MAX = 4;
const ref = (name: string) => ({ name, namespace: "default" });
const member = (name: string) => ({
  apiVersion: "helloworld.apimeister.com/v1",
  kind: "Member",
  metadata: { name, namespace: "default", uid: `uid-${name}`, resourceVersion: "1" },
  spec: { memberOf: "blue" },
});

let server: FakeApiServer;
let kube: ConnectedApi;
before(async () => {
  server = await startFakeApiServer();
  kube = connect({ kind: "kubeconfig", path: server.kubeconfig }, { timeoutMs: 5_000, maxConnections: MAX });
});
after(async () => {
  kube.close();
  await server.close();
});
beforeEach(() => server.delayAnswers(0));

/** A stand-in API server of the test's own, and the function's API on it; both closed after `body`. */
async function withOwnServer(
  options: FakeApiServerOptions & { readonly timeoutMs: number },
  body: (own: FakeApiServer, api: ConnectedApi) => Promise<void>,
): Promise<void> {
  const own = await startFakeApiServer(options);
  const api = connect({ kind: "kubeconfig", path: own.kubeconfig }, { timeoutMs: options.timeoutMs, maxConnections: MAX });
  try {
    await body(own, api);
  } finally {
    api.close();
    await own.close();
  }
}

describe("API calls share one keep-alive connection pool", () => {
  it("50 calls one after another: one connection, reused by all", async () => {
    server.members.set("default/seq", member("seq"));
    for (let i = 0; i < 50; i++) assert.ok(await kube.getMember(ref("seq")));
    assert.equal(server.connections().accepted, 1);
    assert.equal(kube.connections().opened, 1);
  });

  it("60 calls at once, every kind of call: never more connections than KUBE_MAX_CONNECTIONS, and all kept open for the next", async () => {
    server.delayAnswers(20);
    for (let i = 0; i < 20; i++) server.members.set(`default/m${i}`, member(`m${i}`));
    const calls = Array.from({ length: 20 }, (_, i) => [
      kube.getMember(ref(`m${i}`)),
      kube.patchMemberStatus(ref(`m${i}`), "1", { pendingEvent: null }),
      kube.createEvent({ name: `m${i}.e`, member: { ...ref(`m${i}`), uid: `uid-m${i}` }, reason: "Welcomed", message: `welcome m${i}`, time: new Date() }),
    ]).flat();
    await Promise.all(calls);
    assert.equal(server.connections().accepted, MAX, "the pool grew to its bound, and no further");
    assert.equal(kube.connections().opened, MAX);
    assert.equal(server.connections().open, MAX, "idle connections stay open for the next calls (keep-alive)");
    // The next burst opens nothing new.
    await Promise.all(Array.from({ length: 20 }, (_, i) => kube.getMember(ref(`m${i}`))));
    assert.equal(server.connections().accepted, MAX);
  });

  it("preconnect opens the pool's first connection (authenticated, GET /version), and the first call reuses it", async () => {
    await withOwnServer({ timeoutMs: 5_000 }, async (own, api) => {
      own.members.set("default/first", member("first"));
      const ms = await api.preconnect();
      assert.ok(ms >= 0);
      assert.deepEqual(
        own.requests.map((r) => `${r.method} ${r.path}`),
        ["GET /version"],
      );
      assert.deepEqual(own.connections(), { accepted: 1, open: 1 }, "the connection stays open for the first call");
      assert.ok(await api.getMember(ref("first")));
      assert.equal(own.connections().accepted, 1, "the first call went over the connection opened ahead of it");
      assert.equal(api.connections().opened, 1);
    });
  });

  it("preconnect fails as unavailable when nothing answers", async () => {
    const gone = await startFakeApiServer();
    const api = connect({ kind: "kubeconfig", path: gone.kubeconfig }, { timeoutMs: 2_000, maxConnections: MAX });
    await gone.close();
    try {
      await assert.rejects(api.preconnect(), (err: unknown) => err instanceof KubeError && err.kind === "unavailable");
    } finally {
      api.close();
    }
  });

  it("a server URL with a path (a proxy in front of the API server) keeps that path on every call", async () => {
    await withOwnServer({ timeoutMs: 5_000, pathPrefix: "/k8s/clusters/c-1" }, async (own, api) => {
      own.members.set("default/behind", member("behind"));
      assert.ok(await api.getMember(ref("behind")));
      await api.patchMemberStatus(ref("behind"), "1", { pendingEvent: null });
      assert.deepEqual(
        own.requests.map((r) => `${r.method} ${r.path}${r.search}`),
        [
          "GET /apis/helloworld.apimeister.com/v1/namespaces/default/members/behind",
          "PATCH /apis/helloworld.apimeister.com/v1/namespaces/default/members/behind/status?fieldManager=member-greeter",
        ],
      );
    });
  });

  it("writes Events as events.k8s.io/v1 with a MicroTime", async () => {
    server.events.length = 0;
    const time = new Date("2026-11-28T04:05:06.789Z");
    await kube.createEvent({ name: "ada.1", member: { ...ref("ada"), uid: "u-1" }, reason: "Welcomed", message: "welcome ada", time });
    assert.deepEqual(server.events[0], {
      apiVersion: "events.k8s.io/v1",
      kind: "Event",
      metadata: { name: "ada.1", namespace: "default" },
      regarding: { apiVersion: "helloworld.apimeister.com/v1", kind: "Member", name: "ada", namespace: "default", uid: "u-1" },
      reason: "Welcomed",
      note: "welcome ada",
      type: "Normal",
      action: "Greet",
      reportingController: "member-greeter",
      reportingInstance: (await import("node:os")).hostname(),
      eventTime: "2026-11-28T04:05:06.789000Z",
    });
    assert.equal(microTime(new Date("2026-01-02T03:04:05.000Z")), "2026-01-02T03:04:05.000000Z");
  });
});

describe("credentials", () => {
  it("sends the kubeconfig's token on every call over the shared connection (the stand-in answers 401 without it)", async () => {
    server.members.set("default/tok", member("tok"));
    const accepted = server.connections().accepted;
    assert.equal((await kube.getMember(ref("tok")))?.["kind"], "Member");
    assert.equal((await kube.getMember(ref("tok")))?.["kind"], "Member");
    assert.equal(server.connections().accepted, accepted);
  });

  it("refuses plain http unless the kubeconfig turns TLS verification off on purpose", async () => {
    const { writeFile } = await import("node:fs/promises");
    const path = `${server.kubeconfig}.plain`;
    const config = JSON.parse(await (await import("node:fs/promises")).readFile(server.kubeconfig, "utf8")) as {
      clusters: { cluster: Record<string, unknown> }[];
    };
    const [first] = config.clusters;
    assert.ok(first);
    delete first.cluster["insecure-skip-tls-verify"];
    await writeFile(path, JSON.stringify(config));
    assert.throws(
      () => connect({ kind: "kubeconfig", path }, { timeoutMs: 1_000, maxConnections: 1 }),
      /plain http is used only with insecure-skip-tls-verify/,
    );
  });
});

describe("credentials are read once per reuse window, not once per call", () => {
  // KubeConfig reads the CA, certificate and key files on every apply: once a
  // second under load instead of three file reads per call.
  const setup = () => {
    const kc = new KubeConfig();
    kc.loadFromFile(server.kubeconfig);
    const original = kc.applyToHTTPSOptions.bind(kc);
    const applied = { count: 0, token: "test-token", fail: false };
    kc.applyToHTTPSOptions = async (options) => {
      applied.count++;
      if (applied.fail) throw new Error("exec plugin failed");
      await original(options);
      options.headers = { ...options.headers, Authorization: `Bearer ${applied.token}` };
    };
    let clock = 0;
    const transport = createTransport(kc, { maxConnections: 2, userAgent: "test", now: () => clock });
    const api = new CustomObjectsApi(transport.configuration);
    const get = () =>
      api.getNamespacedCustomObject({ group: "helloworld.apimeister.com", version: "v1", plural: "members", namespace: "default", name: "cred" });
    return { applied, get, transport, advance: (ms: number) => (clock += ms) };
  };

  it("20 calls in one window: one apply; the first call after it applies again, and sends what it applied now", async () => {
    server.members.set("default/cred", member("cred"));
    const { applied, get, transport, advance } = setup();
    try {
      for (let i = 0; i < 20; i++) await get();
      assert.equal(applied.count, 1);
      applied.token = "rotated";
      advance(REUSE_CREDENTIALS_MS - 1);
      await get();
      assert.equal(applied.count, 1, "still inside the window");
      advance(1);
      await assert.rejects(
        get(),
        (err: unknown) => err instanceof ApiException && err.code === 401,
        "the rotated token is sent (the stand-in knows only test-token)",
      );
      assert.equal(applied.count, 2);
    } finally {
      transport.close();
    }
  });

  it("a failed apply is not reused: the next call asks again", async () => {
    server.members.set("default/cred", member("cred"));
    const { applied, get, transport } = setup();
    try {
      applied.fail = true;
      await assert.rejects(get(), /exec plugin failed/);
      applied.fail = false;
      assert.equal((await get())["kind"], "Member");
      assert.equal(applied.count, 2);
    } finally {
      transport.close();
    }
  });
});

describe("a call that is not answered in time is cut off, and its connection with it", () => {
  it("past the call's deadline: 'unavailable' (a 503 to the sender), the connection closed, the next call on a fresh one", async () => {
    await withOwnServer({ timeoutMs: 100 }, async (own, api) => {
      own.members.set("default/slow", member("slow"));
      own.delayAnswers(2_000);
      const started = performance.now();
      await assert.rejects(
        api.getMember(ref("slow")),
        (err: unknown) => err instanceof KubeError && err.kind === "unavailable" && /did not answer within 100 ms/.test(err.message),
      );
      assert.ok(performance.now() - started < 1_500, "rejected at the deadline, not when the answer came");
      own.delayAnswers(0);
      assert.ok(await api.getMember(ref("slow")));
      assert.equal(own.connections().accepted, 2, "the cut-off call's connection was not reused half-read");
    });
  });

  it("the caller's signal aborts the call in flight, and a signal aborted already sends nothing", async () => {
    await withOwnServer({ timeoutMs: 5_000 }, async (own, api) => {
      own.members.set("default/gone", member("gone"));
      own.delayAnswers(2_000);
      const caller = new AbortController();
      const started = performance.now();
      const call = api.getMember(ref("gone"), caller.signal);
      setTimeout(() => caller.abort(new Error("shutting down")), 50);
      await assert.rejects(call, (err: unknown) => err instanceof KubeError && err.kind === "unavailable");
      assert.ok(performance.now() - started < 1_500, "rejected when the caller gave up");
      const sent = own.requests.length;
      await assert.rejects(api.getMember(ref("gone"), AbortSignal.abort()), (err: unknown) => err instanceof KubeError);
      assert.equal(own.requests.length, sent, "no request for a call given up before it started");
    });
  });
});
