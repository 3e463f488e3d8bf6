// Trace context through the real server: an incoming W3C traceparent (as the
// CloudEvents distributed-tracing extension, in binary or structured mode, or
// as the W3C HTTP header) is continued in the reply CloudEvent, named on every
// log line of the request, and sent on each Kubernetes API call it causes.
// A malformed one is ignored: never a 4xx or 5xx, never in a log line.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createConverge } from "../functions/claim.ts";
import { scopeFor } from "../functions/request-scope.ts";
import { createResync } from "../functions/resync.ts";
import type { Span } from "../functions/trace-context.ts";
import { startFakeApiServer, type FakeApiServer } from "./support/fake-apiserver.ts";
import { binaryEvent, memberObject, post, startGreeter, type Reply, type TestGreeter } from "./support/greeter-server.ts";
import { captureLogs, MemoryKube } from "./support/memory-kube.ts";

const R = "dev.knative.apiserver.resource.";
const REF = "dev.knative.apiserver.ref.";
const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";
const TRACEPARENT = `00-${TRACE}-${PARENT}-01`;
const TRACESTATE = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";

let greeter: TestGreeter;
before(async () => {
  greeter = await startGreeter({});
});
after(async () => {
  await greeter.stop();
});

/** The reply's trace context: ce-traceparent read, and ce-tracestate. */
function replyTrace(reply: Reply): { traceId: string; spanId: string; flags: string; tracestate: string | null } {
  const value = reply.headers.get("ce-traceparent");
  const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(value ?? "");
  assert.ok(match, `the reply's ce-traceparent: ${value}`);
  const [, traceId = "", spanId = "", flags = ""] = match;
  const state = reply.headers.get("ce-tracestate");
  return { traceId, spanId, flags, tracestate: state === null ? null : decodeURIComponent(state) };
}

/** Sends one request and returns its reply and the log lines it added. */
async function sendOne(to: TestGreeter, headers: Record<string, string>, body: string) {
  const from = to.logs().length;
  const reply = await post(to.url, headers, body);
  return { reply, lines: to.logs().slice(from), raw: to.rawLines() };
}

describe("trace context continued in the reply and named in the log", () => {
  const binary = () => binaryEvent(`${R}add`, memberObject("patrick", "blue"), { "ce-traceparent": TRACEPARENT, "ce-tracestate": TRACESTATE });
  const structured = () => ({
    headers: { "content-type": "application/cloudevents+json" },
    body: JSON.stringify({
      specversion: "1.0",
      id: "s-1",
      source: "/s",
      type: `${R}add`,
      traceparent: TRACEPARENT,
      tracestate: TRACESTATE,
      data: memberObject("patrick", "blue"),
    }),
  });
  const header = () => {
    const event = binaryEvent(`${R}add`, memberObject("patrick", "blue"));
    return { headers: { ...event.headers, traceparent: TRACEPARENT, tracestate: TRACESTATE }, body: event.body };
  };

  for (const [mode, make] of [
    ["binary mode (ce-traceparent, ce-tracestate)", binary],
    ["structured mode (traceparent, tracestate attributes)", structured],
    ["the W3C HTTP headers", header],
  ] as const) {
    it(`${mode}: same trace, a new span of the function's own, the tracestate passed on; every line names them`, async () => {
      const { headers, body } = make();
      const { reply, lines } = await sendOne(greeter, headers, body);
      assert.equal(reply.status, 200, reply.text);
      const trace = replyTrace(reply);
      assert.equal(trace.traceId, TRACE);
      assert.notEqual(trace.spanId, PARENT, "a new span id");
      assert.notEqual(trace.spanId, "0".repeat(16));
      assert.equal(trace.flags, "01");
      assert.equal(trace.tracestate, TRACESTATE);
      assert.ok(lines.length >= 1);
      for (const line of lines) {
        assert.equal(line["trace_id"], TRACE, JSON.stringify(line));
        assert.equal(line["span_id"], trace.spanId, JSON.stringify(line));
      }
    });
  }

  it("each request gets a span of its own", async () => {
    const { headers, body } = binary();
    const one = replyTrace(await post(greeter.url, headers, body));
    const two = replyTrace(await post(greeter.url, headers, body));
    assert.equal(one.traceId, two.traceId);
    assert.notEqual(one.spanId, two.spanId);
  });

  it("the W3C header wins over the extension: it names the hop that delivered the event", async () => {
    const event = binaryEvent(`${R}add`, memberObject("patrick", "blue"), { "ce-traceparent": `00-${"a".repeat(32)}-${"b".repeat(16)}-00` });
    const { reply } = await sendOne(greeter, { ...event.headers, traceparent: TRACEPARENT }, event.body);
    assert.equal(replyTrace(reply).traceId, TRACE);
  });

  it("an error answer's log line names the trace too, from the W3C header even when there is no readable event", async () => {
    const { reply, lines } = await sendOne(greeter, { "content-type": "application/json", traceparent: TRACEPARENT }, "{}");
    assert.equal(reply.status, 400);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.level, "warn");
    assert.equal(lines[0]?.["trace_id"], TRACE);
    assert.match(String(lines[0]?.["span_id"]), /^[0-9a-f]{16}$/);
  });

  it("an event whose data is refused: its error line names the trace of its ce-traceparent", async () => {
    const event = binaryEvent(`${R}add`, memberObject("Not/A/Name"), { "ce-traceparent": TRACEPARENT });
    const { reply, lines } = await sendOne(greeter, event.headers, event.body);
    assert.equal(reply.status, 400);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.msg.startsWith("error: "), true);
    assert.equal(lines[0]?.["trace_id"], TRACE);
  });

  it("without trace context: no ce-traceparent on the reply, no trace fields on the lines", async () => {
    const { headers, body } = binaryEvent(`${R}add`, memberObject("patrick", "blue"));
    const { reply, lines } = await sendOne(greeter, headers, body);
    assert.equal(reply.status, 200);
    assert.equal(reply.headers.get("ce-traceparent"), null);
    assert.equal(reply.headers.get("ce-tracestate"), null);
    for (const line of lines) assert.ok(!("trace_id" in line) && !("span_id" in line), JSON.stringify(line));
  });
});

describe("a malformed traceparent is ignored: answered as if absent, and never in a log line", () => {
  const forged = `00-${TRACE}-${PARENT}-01\n{"level":"error","msg":"forged"}\u2028\u001b[31m`;
  const cases: [string, Record<string, string>, string][] = [
    ["binary mode, not hex", { "ce-traceparent": `00-${"z".repeat(32)}-${PARENT}-01` }, "zzzz"],
    ["binary mode, a percent-encoded line break and escape", { "ce-traceparent": encodeURIComponent(forged) }, "forged"],
    ["the W3C header, all-zero trace id", { traceparent: `00-${"0".repeat(32)}-${PARENT}-01` }, "0000000000000000000"],
    ["the W3C header, version ff", { traceparent: `ff-${TRACE}-${PARENT}-01` }, "ff-"],
  ];
  for (const [what, extra, marker] of cases) {
    it(`${what}: 200, no trace on the reply or the lines`, async () => {
      const event = binaryEvent(`${R}add`, memberObject("patrick", "blue"));
      const before = greeter.rawLines().length;
      const { reply, lines } = await sendOne(greeter, { ...event.headers, ...extra }, event.body);
      assert.equal(reply.status, 200, reply.text);
      assert.equal(reply.headers.get("ce-traceparent"), null);
      for (const line of lines) assert.ok(!("trace_id" in line), JSON.stringify(line));
      for (const raw of greeter.rawLines().slice(before)) assert.ok(!raw.includes(marker), raw);
    });
  }

  it("structured mode: a traceparent that is not a string, or one that would forge a line, is ignored", async () => {
    for (const traceparent of [42, { evil: true }, forged]) {
      const before = greeter.rawLines().length;
      const body = JSON.stringify({ specversion: "1.0", id: "s-2", source: "/s", type: `${R}add`, traceparent, data: memberObject("patrick", "blue") });
      const reply = await post(greeter.url, { "content-type": "application/cloudevents+json" }, body);
      assert.equal(reply.status, 200, reply.text);
      assert.equal(reply.headers.get("ce-traceparent"), null);
      const added = greeter.rawLines().slice(before);
      assert.equal(added.length, 1, "one line, not split");
      // biome-ignore lint/suspicious/noControlCharactersInRegex: the characters a forged value would carry
      for (const raw of added) assert.ok(!/forged|[\u2028\u001b]/.test(raw), raw);
    }
  });
});

describe("the Kubernetes API calls a traced event causes carry its span", () => {
  let api: FakeApiServer;
  let inCluster: TestGreeter;
  before(async () => {
    api = await startFakeApiServer();
    inCluster = await startGreeter({ KUBECONFIG: api.kubeconfig });
    // Its connection opened ahead of the first event (GET /version): the test's calls and failures come after.
    // Its log line too, written once the answer is back: otherwise it can land among a test's lines.
    await api.preconnected();
    await inCluster.logged("connected to the API server");
  });
  after(async () => {
    await inCluster.stop();
    await api.close();
  });

  it("the read, the claim, the Event written after the reply and the mark cleared: each sends traceparent and tracestate as children of the function's span", async () => {
    api.members.set("default/ada", memberObject("ada", "blue"));
    const event = binaryEvent(
      `${REF}add`,
      { kind: "Member", namespace: "default", name: "ada", apiVersion: "helloworld.apimeister.com/v1" },
      {
        "ce-traceparent": TRACEPARENT,
        "ce-tracestate": TRACESTATE,
      },
    );
    const from = inCluster.logs().length;
    const { reply } = await sendOne(inCluster, event.headers, event.body);
    assert.equal(reply.status, 200, reply.text);
    const span = replyTrace(reply);
    for (let i = 0; i < 250 && (api.events.length < 1 || api.requests.length < 4); i++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(
      api.requests.map((r) => `${r.method} ${r.path.replace(/^.*\/namespaces\/default\//, "")}`),
      ["GET members/ada", "PATCH members/ada/status", "POST events", "PATCH members/ada/status"],
    );
    for (const request of api.requests) {
      assert.equal(request.traceparent, `00-${TRACE}-${span.spanId}-01`, `${request.method} ${request.path}`);
      assert.equal(request.tracestate, TRACESTATE);
    }
    // Every line since the request (the server had no other work) names the span.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const lines = inCluster.logs().slice(from);
    assert.ok(
      lines.some((l) => l.msg === "welcome ada to the team blue"),
      JSON.stringify(lines),
    );
    for (const line of lines) assert.equal(line["span_id"], span.spanId, JSON.stringify(line));
  });

  it("an untraced event sends no trace headers", async () => {
    api.requests.length = 0;
    api.members.set("default/bo", memberObject("bo", "blue"));
    const event = binaryEvent(`${REF}add`, { kind: "Member", namespace: "default", name: "bo", apiVersion: "helloworld.apimeister.com/v1" });
    assert.equal((await post(inCluster.url, event.headers, event.body)).status, 200);
    for (let i = 0; i < 250 && api.requests.length < 4; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(api.requests.length, 4);
    for (const request of api.requests) assert.equal(request.traceparent, undefined);
  });
});

describe("a resync started by a traced tick", () => {
  it("lists and converges as children of the tick's span, and its lines name it", async () => {
    const kube = new MemoryKube();
    for (const name of ["a", "b", "c"]) kube.add(name, { team: "blue" });
    const spans: (string | undefined)[] = [];
    const api = async (span?: Span) => {
      spans.push(span?.spanId);
      return kube;
    };
    const { logger, logs } = captureLogs();
    const converge = createConverge({ api, policy: { finalizer: false }, logger, now: () => new Date() });
    const resync = createResync({ api, namespace: async () => "default", converge, logger, memberTimeoutMs: 5_000 });
    const scope = scopeFor(
      logger,
      { headers: { traceparent: TRACEPARENT, tracestate: undefined }, extension: { traceparent: undefined, tracestate: undefined } },
      () => "b7ad6b7169203331",
    );
    const summary = await resync(() => {}, scope);
    assert.equal(summary.greeted, 3);
    assert.ok(spans.length >= 4, `${spans.length} API uses`);
    assert.deepEqual(new Set(spans), new Set(["b7ad6b7169203331"]));
    const done = logs().find((l) => l.msg === "resync done");
    assert.equal(done?.["trace_id"], TRACE);
    assert.equal(done?.["span_id"], "b7ad6b7169203331");
  });
});
