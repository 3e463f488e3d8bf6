// Bad input never crashes the process and never answers 5xx: hundreds of
// mutated events (seeded, so a failure replays), each answered with a 2xx or a
// 4xx that carries a message, and the server still healthy afterwards.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { parseTraceparent } from "../functions/trace-context.ts";
import { binaryEvent, memberObject, post, startGreeter, type TestGreeter } from "./support/greeter-server.ts";

// mulberry32: small, seeded, good enough to pick mutations.
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env["FUZZ_SEED"] ?? 20261125);
const COUNT = Number(process.env["FUZZ_COUNT"] ?? 400);

const oddValues: readonly unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  1e308,
  "",
  " ",
  "x".repeat(300),
  "Ünïcødé",
  "\u0000\u001b[31m\u2028",
  [],
  [1, "a"],
  {},
  { nested: { deep: [null] } },
];
const resourceTypes = ["add", "update", "delete"].map((c) => `dev.knative.apiserver.resource.${c}`);

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)] as T;
}

/** Replaces one value somewhere in a JSON tree by an odd one. */
function mutate(rand: () => number, value: unknown, depth = 0): unknown {
  if (depth > 0 && rand() < 0.3) return pick(rand, oddValues);
  if (Array.isArray(value)) return value.map((v) => (rand() < 0.5 ? mutate(rand, v, depth + 1) : v));
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    const keys = Object.keys(out);
    const key = pick(rand, keys.length > 0 ? keys : ["extra"]);
    if (rand() < 0.15) delete out[key];
    else out[key] = mutate(rand, out[key], depth + 1);
    return out;
  }
  return pick(rand, oddValues);
}

function headerMutation(rand: () => number, headers: Record<string, string>): Record<string, string> {
  const out = { ...headers };
  const key = pick(rand, Object.keys(out));
  switch (Math.floor(rand() * 5)) {
    case 0:
      delete out[key];
      break;
    case 1:
      out[key] = "";
      break;
    case 2:
      out[key] = "%";
      break;
    case 3:
      out[key] = "%E2%80%A8%1B%0A";
      break;
    default:
      out[key] = pick(rand, ["text/plain", "application/cloudevents+json", "application/json; charset=latin1", "0.3", "a b"]);
  }
  return out;
}

let greeter: TestGreeter;
before(async () => {
  greeter = await startGreeter({ LOG_LEVEL: "silent", MAX_BODY_BYTES: "65536" });
});
after(async () => {
  await greeter.stop();
});

describe(`bad input, ${COUNT} mutated events (FUZZ_SEED=${SEED})`, () => {
  it("is answered with 2xx or a 4xx with a message, never 5xx, and the server stays up", async () => {
    const rand = prng(SEED);
    const seen = new Map<number, number>();
    for (let i = 0; i < COUNT; i++) {
      const base = binaryEvent(pick(rand, resourceTypes), memberObject("patrick", pick(rand, ["blue", "red", ""]), pick(rand, [undefined, "blue", ""])));
      let { headers, body } = base;
      const what = Math.floor(rand() * 4);
      if (what === 0 || what === 3) body = JSON.stringify(mutate(rand, JSON.parse(body)));
      if (what === 1 || what === 3) headers = headerMutation(rand, headers);
      if (what === 2) body = body.slice(0, Math.floor(rand() * body.length));
      const reply = await post(greeter.url, headers, body);
      seen.set(reply.status, (seen.get(reply.status) ?? 0) + 1);
      const context = `#${i} ${JSON.stringify(headers)} ${body.slice(0, 200)} → ${reply.status} ${reply.text.slice(0, 200)}`;
      assert.ok(reply.status < 500, context);
      if (reply.status >= 400) {
        const json = reply.json() as { message?: unknown; code?: unknown };
        assert.equal(typeof json.message, "string", context);
        assert.match(String(json.code), /^ERR_/, context);
      }
    }
    assert.equal((await fetch(`${greeter.url}/healthz`)).status, 200);
    // The mutations must reach both sides, or the test proves little.
    assert.ok(
      [...seen.keys()].some((s) => s < 300),
      `statuses seen: ${JSON.stringify([...seen])}`,
    );
    assert.ok(
      [...seen.keys()].some((s) => s >= 400),
      `statuses seen: ${JSON.stringify([...seen])}`,
    );
  });
});

describe(`trace context, ${COUNT} mutated traceparent and tracestate values (FUZZ_SEED=${SEED})`, () => {
  const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const alphabet = ["0", "f", "F", "-", "z", " ", "%", "\u2028", "\u0000", "\n", ",", "="];
  /** One character of `value` replaced, inserted or removed. */
  const nudge = (rand: () => number, value: string): string => {
    const at = Math.floor(rand() * (value.length + 1));
    const ch = pick(rand, alphabet);
    switch (Math.floor(rand() * 3)) {
      case 0:
        return value.slice(0, at) + ch + value.slice(at + 1);
      case 1:
        return value.slice(0, at) + ch + value.slice(at);
      default:
        return value.slice(0, at) + value.slice(at + 1);
    }
  };

  it("never changes the answer: 200 with the greeting, and a ce-traceparent only for a valid one, continuing its trace", async () => {
    const rand = prng(SEED + 1);
    let continued = 0;
    for (let i = 0; i < COUNT; i++) {
      let traceparent = TRACEPARENT;
      for (let n = Math.floor(rand() * 3); n > 0; n--) traceparent = nudge(rand, traceparent);
      const tracestate = nudge(rand, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
      const where = Math.floor(rand() * 3);
      const event = binaryEvent("dev.knative.apiserver.resource.add", memberObject("patrick", "blue"));
      let { headers, body } = event;
      if (where === 0) headers = { ...headers, "ce-traceparent": encodeURIComponent(traceparent), "ce-tracestate": encodeURIComponent(tracestate) };
      else if (where === 1) headers = { ...headers, traceparent: encodeURIComponent(traceparent), tracestate: encodeURIComponent(tracestate) };
      else {
        headers = { "content-type": "application/cloudevents+json" };
        body = JSON.stringify({
          specversion: "1.0",
          id: `f-${i}`,
          source: "/s",
          type: "dev.knative.apiserver.resource.add",
          traceparent,
          tracestate,
          data: JSON.parse(event.body),
        });
      }
      const reply = await post(greeter.url, headers, body);
      // A percent-encoded W3C header is not decoded (only ce-* headers are): it is what the parser sees.
      const sent = where === 1 ? encodeURIComponent(traceparent) : traceparent;
      const context = `#${i} ${JSON.stringify(sent)} in ${["ce-traceparent", "traceparent header", "structured"][where]} → ${reply.status} ${reply.text.slice(0, 200)}`;
      assert.equal(reply.status, 200, context);
      const parsed = parseTraceparent(sent);
      const out = reply.headers.get("ce-traceparent");
      if (parsed === undefined) assert.equal(out, null, context);
      else {
        continued++;
        assert.match(out ?? "", new RegExp(`^00-${parsed.traceId}-[0-9a-f]{16}-0[0-3]$`), context);
      }
    }
    // Both sides must be reached: some mutations stay valid (a nudged flag digit, say), most do not.
    assert.ok(continued > 0 && continued < COUNT, `${continued} of ${COUNT} continued`);
  });
});
