// The benchmark compares like with like: for the same events, the two
// baselines (bench/baseline-node-http.ts, bench/baseline-faas.ts) answer with
// the same reply CloudEvent and log the same line as the greeter. Each runs as
// a child process on a free port, as `npm run bench` runs it, and is stopped.
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { memberEvent, type TestEvent } from "../bench/event.ts";
import { firstGreeting, greeterEntry, post, startServer, stopServer, type Reply, type Running, type ServerSpec } from "../bench/proc.ts";

const ROOT = resolve(import.meta.dirname, "..");

const events: Record<string, TestEvent> = {
  welcome: { ...memberEvent({ id: "parity-welcome" }), greeting: "welcome alice to the team platform" },
  welcomeNoTeam: { ...memberEvent({ id: "parity-welcome-no-team", name: "nina", team: "" }), greeting: "welcome nina" },
  teamChange: {
    ...memberEvent({ id: "parity-team-change", type: "dev.knative.apiserver.resource.update", team: "data", recordedTeam: "platform" }),
    greeting: "alice moved from the team platform to the team data",
  },
  farewell: { ...memberEvent({ id: "parity-farewell", type: "dev.knative.apiserver.resource.delete" }), greeting: "sad to see you go alice" },
  redeliveredAdd: { ...memberEvent({ id: "parity-redelivered", recordedTeam: "platform" }), greeting: undefined },
  notAMember: { ...memberEvent({ id: "parity-not-a-member", kind: "ConfigMap" }), greeting: undefined },
  otherType: { ...memberEvent({ id: "parity-other-type", type: "dev.knative.example" }), greeting: undefined },
};

interface Observed {
  readonly replies: Record<string, unknown>;
  readonly lines: Record<string, unknown>;
}

/** What must be equal across implementations: everything but generated ids, timestamps and runtime-specific headers. */
function normaliseReply(reply: Reply): unknown {
  const ce: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(reply.headers)) {
    if (!name.startsWith("ce-")) continue;
    if (name === "ce-id") assert.match(String(value), /^[0-9a-f-]{36}$/, "ce-id is a fresh UUID");
    else if (name === "ce-time") assert.ok(Math.abs(Date.parse(String(value)) - Date.now()) < 60_000, `ce-time ${String(value)} is now`);
    else ce[name] = value;
  }
  const mediaType = reply.headers["content-type"]?.split(";")[0]?.trim();
  return {
    status: reply.status,
    ce,
    hasId: "ce-id" in reply.headers,
    hasTime: "ce-time" in reply.headers,
    mediaType: reply.status === 204 ? undefined : mediaType,
    data: reply.body === "" ? undefined : (JSON.parse(reply.body) as unknown),
  };
}

async function observe(spec: ServerSpec): Promise<Observed> {
  const running: Running = await startServer(spec, { cwd: ROOT, marker: '"level":"info"', keepOutput: true });
  const replies: Record<string, unknown> = {};
  try {
    const first = await firstGreeting(running, events["welcome"] as TestEvent, 20_000, 10);
    replies["welcome"] = normaliseReply(first.reply);
    for (const [name, event] of Object.entries(events)) {
      if (name !== "welcome") replies[name] = normaliseReply(await post(running.port, event));
    }
  } finally {
    await stopServer(running);
  }
  const lines: Record<string, unknown> = {};
  for (const text of running.output().split("\n")) {
    if (!text.includes('"eventId"')) continue;
    const line = JSON.parse(text) as Record<string, unknown>;
    assert.equal(typeof line["time"], "string");
    assert.ok(!Number.isNaN(Date.parse(String(line["time"]))), "time is a timestamp");
    delete line["time"];
    const name = Object.keys(events).find((n) => events[n]?.headers["ce-id"] === line["eventId"]);
    assert.ok(name !== undefined, `a log line for an event that was sent: ${text}`);
    assert.equal(lines[name], undefined, `one line per greeting (${name})`);
    lines[name] = line;
  }
  return { replies, lines };
}

describe("bench baselines match the greeter", { timeout: 60_000 }, () => {
  const specs: ServerSpec[] = [
    { key: "greeter", label: "member-greeter", args: [greeterEntry(ROOT)] },
    { key: "bare", label: "bare node:http", args: ["bench/baseline-node-http.ts"] },
    { key: "faas", label: "faas-js-runtime", args: ["bench/baseline-faas.ts"] },
  ];
  const seen = new Map<string, Observed>();

  before(async () => {
    // One at a time: start-up is what the machine is busy with.
    for (const spec of specs) seen.set(spec.key, await observe(spec));
  });
  after(() => seen.clear());

  it("the greeter greets and logs as expected", () => {
    const greeter = seen.get("greeter") as Observed;
    for (const [name, event] of Object.entries(events)) {
      const reply = greeter.replies[name] as { status: number; data?: { greeting?: string } };
      if (event.greeting === undefined) {
        assert.equal(reply.status, 204, name);
        assert.equal(greeter.lines[name], undefined, `${name} is not logged`);
      } else {
        assert.equal(reply.status, 200, name);
        assert.equal(reply.data?.greeting, event.greeting, name);
        assert.equal((greeter.lines[name] as { msg?: string } | undefined)?.msg, event.greeting, `${name} is logged`);
      }
    }
  });

  for (const key of ["bare", "faas"]) {
    it(`${key}: the same replies as the greeter`, () => {
      assert.deepEqual((seen.get(key) as Observed).replies, (seen.get("greeter") as Observed).replies);
    });
    it(`${key}: the same log lines as the greeter`, () => {
      assert.deepEqual((seen.get(key) as Observed).lines, (seen.get("greeter") as Observed).lines);
    });
  }
});
