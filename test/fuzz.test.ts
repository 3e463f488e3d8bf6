// Bad input never crashes the process and never answers 5xx: hundreds of
// mutated events (seeded, so a failure replays), each answered with a 2xx or a
// 4xx that carries a message, and the server still healthy afterwards.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
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
