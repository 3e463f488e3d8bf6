// The real server on an ephemeral port, real HTTP requests: every event type,
// both content modes, every class of bad input.
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import { CloudEvent, HTTP } from "cloudevents";
import { GREETING_TYPE } from "../functions/handler.ts";
import { binaryEvent, memberObject, post, sample, startGreeter, type TestGreeter } from "./support/greeter-server.ts";

const R = "dev.knative.apiserver.resource.";

let greeter: TestGreeter;
before(async () => {
  greeter = await startGreeter({ MAX_BODY_BYTES: "4096" });
});
after(async () => {
  await greeter.stop();
});

function greetingOf(text: string): unknown {
  return (JSON.parse(text) as { greeting: unknown }).greeting;
}

describe("POST / with the sample events", () => {
  const expected: [string, number, string | undefined][] = [
    ["add-patrick-blue", 200, "welcome patrick to the team blue"],
    ["add-nina-no-team", 200, "welcome nina"],
    ["update-patrick-red", 200, "patrick moved from the team blue to the team red"],
    ["delete-patrick", 200, "sad to see you go patrick"],
    ["ref-delete-patrick", 200, "sad to see you go patrick"],
    ["structured-add-patrick-blue", 200, "welcome patrick to the team blue"],
  ];
  for (const [name, status, greeting] of expected) {
    it(`${name} → ${status} ${greeting ?? "(no greeting)"}`, async () => {
      const { headers, body } = await sample(name);
      const reply = await post(greeter.url, headers, body);
      assert.equal(reply.status, status, reply.text);
      assert.equal(greetingOf(reply.text), greeting);
      const id = headers["ce-id"] ?? (JSON.parse(body) as { id: string }).id;
      assert.ok(
        greeter.logs().some((l) => l.level === "info" && l.msg === greeting && l["eventId"] === id),
        "the greeting is logged",
      );
    });
  }

  it("ref-add-patrick without a cluster → 500 saying a cluster is needed (not retried by the adapter)", async () => {
    const { headers, body } = await sample("ref-add-patrick");
    const reply = await post(greeter.url, headers, body);
    assert.equal(reply.status, 500);
    assert.match(reply.text, /Reference-mode events need the Kubernetes API/);
  });
});

describe("the reply", () => {
  it("is a binary-mode greeting CloudEvent that the cloudevents SDK reads", async () => {
    const { headers, body } = binaryEvent(`${R}add`, memberObject("zoe", "green"));
    const reply = await post(greeter.url, headers, body);
    assert.equal(reply.status, 200);
    const received = HTTP.toEvent({ headers: Object.fromEntries(reply.headers), body: reply.text }) as CloudEvent<unknown>;
    received.validate();
    assert.equal(received.type, GREETING_TYPE);
    assert.equal(received.source, "/member-greeter");
    assert.equal(received.subject, "/apis/helloworld.apimeister.com/v1/namespaces/default/members/zoe");
    assert.notEqual(received.id, headers["ce-id"], "a new id");
    assert.deepEqual(received.data, {
      greeting: "welcome zoe to the team green",
      reason: "welcome",
      member: { name: "zoe", namespace: "default", team: "green" },
    });
  });

  it("is 204 with an empty body when there is nothing to greet", async () => {
    for (const [type, data] of [
      [`${R}update`, memberObject("zoe", "green", "green")],
      [`${R}update`, memberObject("zoe", "green")],
      [`${R}add`, { ...memberObject("p"), kind: "Pod" }],
      ["com.example.unrelated", { hello: "world" }],
    ] as const) {
      const { headers, body } = binaryEvent(type, data);
      const reply = await post(greeter.url, headers, body);
      assert.equal(reply.status, 204, `${type}: ${reply.text}`);
      assert.equal(reply.text, "");
    }
  });

  it("accepts events the SDK sends in structured mode", async () => {
    const event = new CloudEvent({ source: "/test", type: `${R}delete`, data: memberObject("zoe", "green", "green") });
    const message = HTTP.structured(event);
    const reply = await post(greeter.url, message.headers as Record<string, string>, String(message.body));
    assert.equal(reply.status, 200);
    assert.equal(greetingOf(reply.text), "sad to see you go zoe");
  });
});

describe("bad input: a clear 4xx, a warn line starting 'error:', and the process lives on", () => {
  const cases: [string, Record<string, string>, string, number, RegExp][] = [
    ["malformed JSON", binaryEvent(`${R}add`, {}).headers, '{"kind":', 400, /body is not valid JSON/],
    ["no CloudEvent headers", { "content-type": "application/json" }, "{}", 400, /not a CloudEvent/],
    ["empty ce-id", { ...binaryEvent(`${R}add`, {}).headers, "ce-id": "" }, "{}", 400, /ce-id must not be empty/],
    ["unsupported specversion", { ...binaryEvent(`${R}add`, {}).headers, "ce-specversion": "0.3" }, "{}", 400, /specversion "0.3" is not supported/],
    ["data not an object", binaryEvent(`${R}add`, {}).headers, '"patrick"', 400, /data must be a JSON object/],
    ["no data", binaryEvent(`${R}add`, {}).headers, "", 400, /got no data/],
    [
      "memberOf not a string",
      binaryEvent(`${R}add`, {}).headers,
      JSON.stringify({ ...memberObject("p"), spec: { memberOf: 5 } }),
      400,
      /data\.spec\.memberOf must be a string, got number/,
    ],
    ["no kind", binaryEvent(`${R}add`, {}).headers, JSON.stringify({ metadata: { name: "p", namespace: "d" } }), 400, /kind is missing/],
    ["invalid name", binaryEvent(`${R}add`, {}).headers, JSON.stringify(memberObject("Not/A/Name")), 400, /not a valid Kubernetes name/],
    ["text/plain data", { ...binaryEvent(`${R}add`, {}).headers, "content-type": "text/plain" }, "hello", 415, /content-type text\/plain is not supported/],
    ["batch mode", { "content-type": "application/cloudevents-batch+json" }, "[]", 415, /batched CloudEvents are not supported/],
    [
      "structured envelope missing type",
      { "content-type": "application/cloudevents+json" },
      '{"specversion":"1.0","id":"1","source":"/s"}',
      400,
      /attribute type is required/,
    ],
    ["body above the limit", binaryEvent(`${R}add`, {}).headers, JSON.stringify({ pad: "x".repeat(5000) }), 413, /larger than 4096 bytes/],
  ];
  for (const [title, headers, body, status, message] of cases) {
    it(`${title} → ${status}`, async () => {
      const reply = await post(greeter.url, headers, body);
      assert.equal(reply.status, status, reply.text);
      const json = reply.json() as { statusCode: number; code: string; message: string };
      assert.equal(json.statusCode, status);
      assert.match(json.code, /^ERR_/);
      assert.match(json.message, message);
      const warn = greeter
        .logs()
        .filter((l) => l.level === "warn")
        .at(-1);
      assert.ok(warn !== undefined, "a warn line");
      assert.ok(warn.msg.startsWith("error: "), "a warn line starting error:");
      assert.match(warn.msg, message);
    });
  }

  it("413 also for a chunked body with no content-length, and the server still serves", async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(greeter.url, { method: "POST", headers: binaryEvent(`${R}add`, {}).headers }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      for (let i = 0; i < 10; i++) req.write("x".repeat(1000));
      req.end();
    });
    assert.equal(status, 413);
    assert.equal((await fetch(`${greeter.url}/healthz`)).status, 200);
  });

  for (const [title, data, status] of [
    ["a greeting", memberObject("zoe", "green"), 200],
    ["an error", { metadata: {} }, 400],
  ] as const) {
    it(`cannot forge, split or colour ${title}'s log line through a percent-encoded attribute`, async () => {
      const { headers, body } = binaryEvent(`${R}add`, data);
      headers["ce-id"] = "x%0A%7B%22level%22%3A%22error%22%7D%1B%5B31m%E2%80%A8%C2%9B";
      const before = greeter.rawLines().length;
      const reply = await post(greeter.url, headers, body);
      assert.equal(reply.status, status);
      const added = greeter.rawLines().slice(before);
      assert.equal(added.length, 1, "one line for one request");
      // The line must hold none of the raw characters that could colour or split it.
      // biome-ignore lint/suspicious/noControlCharactersInRegex: these control characters are what the test looks for
      assert.ok(!/[\u001b\u2028\r\u009b]/.test(added[0] ?? ""), added[0]);
      assert.equal((JSON.parse(added[0] ?? "") as Record<string, unknown>)["eventId"], 'x\n{"level":"error"}\u001b[31m\u2028\u009b');
    });
  }
});

describe("other routes", () => {
  it("GET /healthz and /readyz answer 200", async () => {
    assert.equal((await fetch(`${greeter.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${greeter.url}/readyz`)).status, 200);
  });

  it("wrong method → 405 with Allow, unknown path → 404, each with a message", async () => {
    const get = await fetch(greeter.url);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get("allow"), "POST");
    assert.match(await get.text(), /method GET is not allowed on \/; allowed: POST/);
    const del = await fetch(`${greeter.url}/healthz`, { method: "DELETE" });
    assert.equal(del.status, 405);
    const missing = await fetch(`${greeter.url}/nope`, { method: "POST" });
    assert.equal(missing.status, 404);
    assert.match(await missing.text(), /no route for POST \/nope/);
  });
});

describe("REPLIES=when-asked: the reply event only for senders that say Prefer: reply", () => {
  let asked: TestGreeter;
  before(async () => {
    asked = await startGreeter({ REPLIES: "when-asked" });
  });
  after(async () => {
    await asked.stop();
  });

  it("a greeting without Prefer: reply → 202, no body, the greeting logged as ever", async () => {
    const { headers, body } = binaryEvent(`${R}add`, memberObject("quiet", "blue"));
    const reply = await post(asked.url, headers, body);
    assert.equal(reply.status, 202);
    assert.equal(reply.text, "");
    // Framed as empty, not as a chunked body of no chunks: Go's HTTP client (Knative's
    // adapters) closes an answer's body unread, and drops the connection if there was one.
    assert.equal(reply.headers.get("content-length"), "0");
    assert.equal(reply.headers.get("transfer-encoding"), null);
    assert.equal(reply.headers.get("ce-type"), null);
    assert.ok(asked.logs().some((l) => l.level === "info" && l.msg === "welcome quiet to the team blue"));
  });

  it("with Prefer: reply (a Broker's Trigger) → 200 and the reply event", async () => {
    const { headers, body } = binaryEvent(`${R}add`, memberObject("asked", "blue"));
    const reply = await post(asked.url, { ...headers, prefer: "reply" }, body);
    assert.equal(reply.status, 200);
    assert.equal(reply.headers.get("ce-type"), GREETING_TYPE);
    assert.equal(greetingOf(reply.text), "welcome asked to the team blue");
  });

  it("nothing to greet → 204 either way; bad input → 4xx either way", async () => {
    const { headers, body } = binaryEvent(`${R}update`, memberObject("same", "blue", "blue"));
    assert.equal((await post(asked.url, { ...headers, prefer: "reply" }, body)).status, 204);
    assert.equal((await post(asked.url, headers, body)).status, 204);
    assert.equal((await post(asked.url, { ...headers, "ce-specversion": "0.3" }, body)).status, 400);
  });
});
