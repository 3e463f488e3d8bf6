// GET /metrics on the real server: the scrape is Prometheus text (read by a
// strict parser), each of the greeter's metrics moves when its cause happens,
// by exactly what it should, and nothing else of the greeter's moves then;
// label values stay bounded under 10,000 distinct Members.
import assert from "node:assert/strict";
import { request, Agent } from "node:http";
import { connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { errorCodes, HttpError, type ErrorCode } from "../functions/errors.ts";
import { createApp } from "../functions/http-app.ts";
import { KubeError } from "../functions/kube-errors.ts";
import { createLogger } from "../functions/logger.ts";
import { createPrometheusMetrics } from "../functions/prometheus.ts";
import { startFakeApiServer, type FakeApiServer } from "./support/fake-apiserver.ts";
import { binaryEvent, memberObject, post, sample, startGreeter, type TestGreeter } from "./support/greeter-server.ts";
import { moved, PROMETHEUS_TEXT, scrape } from "./support/scrape.ts";
import { waitFor } from "./support/wait-for.ts";

const R = "dev.knative.apiserver.resource.";
const REF = "dev.knative.apiserver.ref.";
const refData = (name: string) => ({ kind: "Member", namespace: "default", name, apiVersion: "helloworld.apimeister.com/v1" });

const events = (type: string, outcome: string) => `member_greeter_events_total{outcome="${outcome}",type="${type}"}`;
const handled = (type: string) => `member_greeter_event_duration_seconds_count{type="${type}"}`;
const greetings = (reason: string) => `member_greeter_greetings_total{reason="${reason}"}`;
const rejected = (code: string) => `member_greeter_rejected_inputs_total{code="${code}"}`;
const serverErrors = (code: string) => `member_greeter_server_errors_total{code="${code}"}`;
const kube = (verb: string, resource: string, result: string) => `member_greeter_kube_requests_total{resource="${resource}",result="${result}",verb="${verb}"}`;
const kubeTimed = (verb: string, resource: string) => `member_greeter_kube_request_duration_seconds_count{resource="${resource}",verb="${verb}"}`;

let greeter: TestGreeter;
before(async () => {
  greeter = await startGreeter({ MAX_BODY_BYTES: "4096" });
});
after(async () => {
  await greeter.stop();
});

/** What `cause` moved, between a scrape before and one after it. */
async function movedBy(url: string, cause: () => Promise<unknown>): Promise<Record<string, number>> {
  const before = await scrape(url);
  await cause();
  return moved(before, await scrape(url));
}

describe("GET /metrics", () => {
  it("is Prometheus text: the greeter's families, typed and named by the conventions, and Node's process metrics", async () => {
    const { families } = await scrape(greeter.url);
    const ours = [...families.values()].filter((f) => f.name.startsWith("member_greeter_"));
    assert.deepEqual(ours.map((f) => `${f.name} ${f.type}`).sort(), [
      "member_greeter_claims_lost_total counter",
      "member_greeter_event_duration_seconds histogram",
      "member_greeter_events_total counter",
      "member_greeter_greetings_total counter",
      "member_greeter_kube_request_duration_seconds histogram",
      "member_greeter_kube_requests_total counter",
      "member_greeter_rejected_inputs_total counter",
      "member_greeter_resync_duration_seconds histogram",
      "member_greeter_resync_last_members gauge",
      "member_greeter_resync_members_total counter",
      "member_greeter_resync_runs_total counter",
      "member_greeter_server_errors_total counter",
    ]);
    for (const family of ours) {
      assert.ok((family.help ?? "").length > 20, `${family.name} has a HELP text`);
      if (family.type === "counter") assert.match(family.name, /_total$/);
      if (family.type === "histogram") assert.match(family.name, /_seconds$/);
    }
    for (const name of [
      "process_cpu_user_seconds_total",
      "process_resident_memory_bytes",
      "process_start_time_seconds",
      "nodejs_heap_size_used_bytes",
      "nodejs_eventloop_lag_seconds",
      "nodejs_gc_duration_seconds",
    ]) {
      assert.ok(families.has(name), `Node's default metric ${name}`);
    }
  });

  it("starts the known label sets at 0: every error code, every reason, every resync result", async () => {
    const { series } = await startedFresh();
    for (const [code, status] of Object.entries(errorCodes)) assert.equal(series.get(status < 500 ? rejected(code) : serverErrors(code)), 0, code);
    for (const reason of ["welcome", "team-change", "farewell"]) assert.equal(series.get(greetings(reason)), 0);
    for (const result of ["converged", "partial", "failed"]) assert.equal(series.get(`member_greeter_resync_runs_total{result="${result}"}`), 0);
    assert.equal(series.get("member_greeter_claims_lost_total"), 0);
  });

  it("does not count itself; HEAD answers too; other methods get 405 with Allow, counted as a rejected input and nothing else", async () => {
    assert.deepEqual(
      await movedBy(greeter.url, async () => {
        await scrape(greeter.url);
        const head = await fetch(`${greeter.url}/metrics`, { method: "HEAD" });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get("content-type"), PROMETHEUS_TEXT);
      }),
      {},
    );
    for (const method of ["POST", "PUT", "DELETE"]) {
      assert.deepEqual(
        await movedBy(greeter.url, async () => {
          const res = await fetch(`${greeter.url}/metrics`, { method });
          assert.equal(res.status, 405);
          assert.equal(res.headers.get("allow"), "GET, HEAD");
          assert.equal(((await res.json()) as { code: string }).code, "ERR_METHOD_NOT_ALLOWED");
        }),
        { [rejected("ERR_METHOD_NOT_ALLOWED")]: 1 },
      );
    }
  });

  it("with METRICS=off is not a route (404), and the function serves as before", async () => {
    const off = await startGreeter({ METRICS: "off" });
    try {
      assert.equal((await fetch(`${off.url}/metrics`)).status, 404);
      const { headers, body } = await sample("add-patrick-blue");
      assert.equal((await post(off.url, headers, body)).status, 200);
    } finally {
      await off.stop();
    }
  });
});

/** A server of its own, never sent anything. */
async function startedFresh() {
  const fresh = await startGreeter({});
  try {
    return await scrape(fresh.url);
  } finally {
    await fresh.stop();
  }
}

describe("events, greetings and their latency", () => {
  const cases: [string, string, Record<string, number>][] = [
    ["add-patrick-blue", "welcome", { [events(`${R}add`, "greeted")]: 1, [handled(`${R}add`)]: 1, [greetings("welcome")]: 1 }],
    ["update-patrick-red", "team-change", { [events(`${R}update`, "greeted")]: 1, [handled(`${R}update`)]: 1, [greetings("team-change")]: 1 }],
    ["delete-patrick", "farewell", { [events(`${R}delete`, "greeted")]: 1, [handled(`${R}delete`)]: 1, [greetings("farewell")]: 1 }],
    ["structured-add-patrick-blue", "welcome", { [events(`${R}add`, "greeted")]: 1, [handled(`${R}add`)]: 1, [greetings("welcome")]: 1 }],
    ["ref-delete-patrick", "farewell", { [events(`${REF}delete`, "greeted")]: 1, [handled(`${REF}delete`)]: 1, [greetings("farewell")]: 1 }],
  ];
  for (const [name, reason, expected] of cases) {
    it(`${name}: one event greeted, one ${reason} greeting, one latency observation`, async () => {
      const { headers, body } = await sample(name);
      assert.deepEqual(await movedBy(greeter.url, async () => assert.equal((await post(greeter.url, headers, body)).status, 200)), expected);
    });
  }

  it("an update with no team change: ignored, no greeting", async () => {
    const { headers, body } = binaryEvent(`${R}update`, memberObject("zoe", "green", "green"));
    assert.deepEqual(await movedBy(greeter.url, async () => assert.equal((await post(greeter.url, headers, body)).status, 204)), {
      [events(`${R}update`, "ignored")]: 1,
      [handled(`${R}update`)]: 1,
    });
  });

  it("an unknown event type is labelled other, whatever it is; a request with no readable event, invalid", async () => {
    const other = binaryEvent("com.example.Patrick.was.here", { hello: "world" });
    assert.deepEqual(await movedBy(greeter.url, async () => assert.equal((await post(greeter.url, other.headers, other.body)).status, 204)), {
      [events("other", "ignored")]: 1,
      [handled("other")]: 1,
    });
    assert.deepEqual(
      await movedBy(greeter.url, async () => assert.equal((await post(greeter.url, { "content-type": "application/json" }, "{}")).status, 400)),
      { [events("invalid", "rejected")]: 1, [handled("invalid")]: 1, [rejected("ERR_NOT_A_CLOUDEVENT")]: 1 },
    );
  });

  it("a resync tick without a cluster: ignored, labelled with the PingSource type", async () => {
    const tick = binaryEvent("dev.knative.sources.ping", { resync: "members" });
    assert.deepEqual(await movedBy(greeter.url, async () => assert.equal((await post(greeter.url, tick.headers, tick.body)).status, 204)), {
      [events("dev.knative.sources.ping", "ignored")]: 1,
      [handled("dev.knative.sources.ping")]: 1,
    });
  });

  it("the latency histogram takes the handling time, in seconds", async () => {
    const before = await scrape(greeter.url);
    const { headers, body } = binaryEvent(`${R}add`, memberObject("lat", "x"));
    const t0 = performance.now();
    await post(greeter.url, headers, body);
    const took = (performance.now() - t0) / 1000;
    const after = await scrape(greeter.url);
    const sum = (s: typeof before) => s.series.get(`member_greeter_event_duration_seconds_sum{type="${R}add"}`) ?? 0;
    const observed = sum(after) - sum(before);
    assert.ok(observed > 0 && observed <= took, `observed ${observed} s for a request that took ${took} s`);
  });
});

/** Sends `head` then only part of the body it announces, and hangs up. */
function abortedBody(url: string): Promise<void> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nce-specversion: 1.0\r\nce-id: 1\r\nce-source: /s\r\nce-type: t\r\ncontent-length: 100\r\n\r\n{",
        () => setTimeout(() => socket.destroy(), 50),
      );
    });
    socket.on("close", () => resolve());
    socket.on("error", reject);
  });
}

async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  await waitFor(what, check, { timeoutMs: 2_000, intervalMs: 20 });
}

describe("every error code moves its own counter, once", () => {
  const h = (extra: Record<string, string> = {}) => ({ ...binaryEvent(`${R}add`, {}).headers, ...extra });
  /** Each 4xx code and a request that causes it; ERR_BAD_REQUEST is a body cut off below. */
  const causes: [ErrorCode, string, string, Record<string, string>, string][] = [
    ["ERR_MALFORMED_JSON", "POST", "/", h(), '{"kind":'],
    ["ERR_INVALID_ENCODING", "POST", "/", h({ "ce-id": "%E0%A4%A" }), "{}"],
    ["ERR_NOT_A_CLOUDEVENT", "POST", "/", { "content-type": "application/json" }, "{}"],
    ["ERR_INVALID_ATTRIBUTE", "POST", "/", h({ "ce-id": "" }), "{}"],
    ["ERR_UNSUPPORTED_SPECVERSION", "POST", "/", h({ "ce-specversion": "0.3" }), "{}"],
    ["ERR_INVALID_MEMBER", "POST", "/", h(), JSON.stringify(memberObject("Not/A/Name"))],
    ["ERR_NOT_FOUND", "GET", "/nope", {}, ""],
    ["ERR_METHOD_NOT_ALLOWED", "PUT", "/", {}, "x"],
    ["ERR_BODY_TOO_LARGE", "POST", "/", h(), JSON.stringify({ pad: "x".repeat(5000) })],
    ["ERR_UNSUPPORTED_MEDIA_TYPE", "POST", "/", { "content-type": "application/cloudevents-batch+json" }, "[]"],
  ];

  it("the table below covers every 4xx code of functions/errors.ts", () => {
    const fourXx = Object.entries(errorCodes)
      .filter(([, status]) => status < 500)
      .map(([code]) => code)
      .sort();
    assert.deepEqual([...causes.map(([code]) => code), "ERR_BAD_REQUEST"].sort(), fourXx);
  });

  for (const [code, method, path, headers, body] of causes) {
    it(`${code}: ${method} ${path}`, async () => {
      const change = await movedBy(greeter.url, async () => {
        const res = await fetch(`${greeter.url}${path}`, { method, headers, ...(body === "" ? {} : { body }) });
        assert.equal(((await res.json()) as { code: string }).code, code);
      });
      const event = method === "POST" && path === "/";
      const type = code === "ERR_INVALID_MEMBER" ? `${R}add` : "invalid";
      assert.deepEqual(change, { [rejected(code)]: 1, ...(event ? { [events(type, "rejected")]: 1, [handled(type)]: 1 } : {}) });
    });
  }

  it("ERR_BAD_REQUEST: a body cut off before its content-length", async () => {
    const before = await scrape(greeter.url);
    await abortedBody(greeter.url);
    let change: Record<string, number> = {};
    await until(async () => {
      change = moved(before, await scrape(greeter.url));
      return Object.keys(change).length >= 3;
    }, "the cut-off body to be counted");
    assert.deepEqual(change, { [rejected("ERR_BAD_REQUEST")]: 1, [events("invalid", "rejected")]: 1, [handled("invalid")]: 1 });
  });

  it("ERR_NO_CLUSTER: a Reference-mode add without a cluster is a server error, not a rejected input", async () => {
    const { headers, body } = await sample("ref-add-patrick");
    assert.deepEqual(await movedBy(greeter.url, async () => assert.equal((await post(greeter.url, headers, body)).status, 500)), {
      [serverErrors("ERR_NO_CLUSTER")]: 1,
      [events(`${REF}add`, "failed")]: 1,
      [handled(`${REF}add`)]: 1,
    });
  });

  it("ERR_INTERNAL, ERR_CLUSTER_UNAVAILABLE, ERR_CLUSTER_REJECTED: what the handler throws, counted by the code it is answered with", async () => {
    const metrics = createPrometheusMetrics({ processMetrics: false });
    let next: unknown;
    const app = createApp({
      handle: async () => {
        throw next;
      },
      logger: createLogger({ level: "silent" }),
      maxBodyBytes: 4096,
      isReady: () => true,
      metrics,
      scrape: metrics.scrape,
    });
    const server = app.listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const thrown: [unknown, ErrorCode, number][] = [
        [new TypeError("a bug"), "ERR_INTERNAL", 500],
        [new KubeError("unavailable", "API server unreachable"), "ERR_CLUSTER_UNAVAILABLE", 503],
        [new KubeError("conflict", "kept changing"), "ERR_CLUSTER_UNAVAILABLE", 503],
        [new KubeError("rejected", "forbidden"), "ERR_CLUSTER_REJECTED", 500],
        [new HttpError("ERR_NO_CLUSTER", "no cluster"), "ERR_NO_CLUSTER", 500],
        [Object.assign(new Error("from a dependency"), { status: 400 }), "ERR_BAD_REQUEST", 400],
      ];
      for (const [error, code, status] of thrown) {
        next = error;
        const { headers, body } = binaryEvent(`${R}add`, memberObject("p", "x"));
        const change = await movedBy(url, async () => assert.equal((await post(url, headers, body)).status, status));
        const counter = status < 500 ? rejected(code) : serverErrors(code);
        const outcome = status < 500 ? "rejected" : "failed";
        assert.deepEqual(change, { [counter]: 1, [events(`${R}add`, outcome)]: 1, [handled(`${R}add`)]: 1 }, code);
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe("Kubernetes API calls, through the real client", () => {
  let api: FakeApiServer;
  let inCluster: TestGreeter;
  before(async () => {
    api = await startFakeApiServer();
    inCluster = await startGreeter({ KUBECONFIG: api.kubeconfig });
    // Its first connection (GET /version) made before any test, so that an injected failure meets the test's own call.
    await api.preconnected();
    await inCluster.logged("connected to the API server");
  });
  after(async () => {
    await inCluster.stop();
    await api.close();
  });

  const eventsSettled = () =>
    until(async () => {
      const status = api.members.get("default/ada")?.["status"] as Record<string, unknown> | undefined;
      return api.events.length === 1 && status?.["pendingEvent"] === undefined;
    }, "the Event and the cleared mark");

  it("a Reference-mode add: a get, the claim, the Event, the mark cleared; each by verb, resource and result, with its latency", async () => {
    api.members.set("default/ada", memberObject("ada", "blue"));
    const { headers, body } = binaryEvent(`${REF}add`, refData("ada"));
    const change = await movedBy(inCluster.url, async () => {
      assert.equal((await post(inCluster.url, headers, body)).status, 200);
      await eventsSettled();
    });
    assert.deepEqual(change, {
      [events(`${REF}add`, "greeted")]: 1,
      [handled(`${REF}add`)]: 1,
      [greetings("welcome")]: 1,
      [kube("get", "members", "ok")]: 1,
      [kubeTimed("get", "members")]: 1,
      [kube("patch", "members/status", "ok")]: 2,
      [kubeTimed("patch", "members/status")]: 2,
      [kube("create", "events", "ok")]: 1,
      [kubeTimed("create", "events")]: 1,
    });
  });

  for (const [status, result, code, httpStatus] of [
    [503, "unavailable", "ERR_CLUSTER_UNAVAILABLE", 503],
    [403, "rejected", "ERR_CLUSTER_REJECTED", 500],
  ] as const) {
    it(`an API server answering ${status}: result ${result}, answered ${httpStatus} ${code}`, async () => {
      api.members.set("default/bo", memberObject("bo", "blue"));
      api.failNext(1, status);
      const { headers, body } = binaryEvent(`${REF}add`, refData("bo"));
      const change = await movedBy(inCluster.url, async () => assert.equal((await post(inCluster.url, headers, body)).status, httpStatus));
      assert.deepEqual(change, {
        [events(`${REF}add`, "failed")]: 1,
        [handled(`${REF}add`)]: 1,
        [serverErrors(code)]: 1,
        [kube("get", "members", result)]: 1,
        [kubeTimed("get", "members")]: 1,
      });
    });
  }

  it("a Member gone: result not-found, answered 204", async () => {
    const { headers, body } = binaryEvent(`${REF}add`, refData("nobody"));
    const change = await movedBy(inCluster.url, async () => assert.equal((await post(inCluster.url, headers, body)).status, 204));
    assert.deepEqual(change, {
      [events(`${REF}add`, "ignored")]: 1,
      [handled(`${REF}add`)]: 1,
      [kube("get", "members", "not-found")]: 1,
      [kubeTimed("get", "members")]: 1,
    });
  });
});

describe("label cardinality", () => {
  it("stays bounded under 10,000 distinct Members, namespaces and event types", async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    const { hostname, port } = new URL(greeter.url);
    const send = (i: number): Promise<number> => {
      const type = i % 10 === 0 ? `com.example.type-${i}` : `${R}${["add", "update", "delete"][i % 3]}`;
      const event = binaryEvent(type, memberObject(`m-${i}`, `team-${i}`, i % 2 === 0 ? `old-${i}` : undefined, `ns-${i}`), { "ce-id": `id-${i}` });
      const body = Buffer.from(event.body);
      return new Promise((resolve, reject) => {
        const req = request({ host: hostname, port, agent, method: "POST", path: "/", headers: { ...event.headers, "content-length": body.length } }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        });
        req.on("error", reject);
        req.end(body);
      });
    };
    const drive = async (from: number, to: number): Promise<void> => {
      let next = from;
      const worker = async () => {
        for (let i = next++; i < to; i = next++) assert.ok([200, 204].includes(await send(i)));
      };
      await Promise.all(Array.from({ length: 16 }, worker));
    };
    const ours = (s: Awaited<ReturnType<typeof scrape>>) => [...s.series.keys()].filter((k) => k.startsWith("member_greeter_"));
    try {
      await drive(0, 100);
      const early = ours(await scrape(greeter.url));
      await drive(100, 10_000);
      const late = ours(await scrape(greeter.url));
      assert.deepEqual(late, early, "no series was added by 9,900 more Members");
      const labelValues = late.join("\n");
      assert.doesNotMatch(labelValues, /m-\d|ns-\d|team-\d|type-\d/, "no Member, namespace, team or sender-chosen type in a label");
      assert.ok(late.length < 400, `${late.length} series`);
    } finally {
      agent.destroy();
    }
  });
});
