// The benchmark compares like with like: for the same events, the two
// baselines (bench/baseline-node-http.ts, bench/baseline-faas.ts) answer with
// the same reply CloudEvent and log the same line as the greeter. Each runs as
// a child process on a free port, as `npm run bench` runs it, and is stopped.
// The cluster bench's fetch baseline (bench/baseline-fetch.ts) is checked the
// same way against a local stand-in API server, with the writes it makes too.
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { memberEvent, type TestEvent } from "../bench/event.ts";
import { firstGreeting, greeterEntry, post, startServer, stopServer, type Reply, type Running, type ServerSpec } from "../bench/proc.ts";
import { startFakeApiServer, type FakeApiServer } from "./support/fake-apiserver.ts";
import { waitFor } from "./support/wait-for.ts";

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

// ---------------------------------------------------------------- with a cluster

/** Events for the greeter with claims on, and the Member each one finds on the API server. */
const clusterEvents: Record<string, TestEvent & { readonly stored?: (object: Record<string, unknown>) => Record<string, unknown> }> = {
  welcome: { ...memberEvent({ id: "cluster-welcome", name: "alice" }), greeting: "welcome alice to the team platform" },
  welcomeNoTeam: { ...memberEvent({ id: "cluster-welcome-no-team", name: "nina", team: "" }), greeting: "welcome nina" },
  teamChange: {
    ...memberEvent({ id: "cluster-team-change", name: "bob", type: "dev.knative.apiserver.resource.update", team: "data", recordedTeam: "platform" }),
    greeting: "bob moved from the team platform to the team data",
  },
  // Another delivery claimed it first: the Member on the server is at a later version, greeted.
  lostRace: {
    ...memberEvent({ id: "cluster-lost-race", name: "carol" }),
    greeting: undefined,
    stored: (object) => ({
      ...object,
      metadata: { ...(object["metadata"] as object), resourceVersion: "48999" },
      status: { team: "platform", greeting: "welcome carol to the team platform", greetedAt: "2026-11-25T10:00:01.000Z" },
    }),
  },
  farewell: { ...memberEvent({ id: "cluster-farewell", name: "dave", type: "dev.knative.apiserver.resource.delete" }), greeting: "sad to see you go dave" },
  redeliveredAdd: { ...memberEvent({ id: "cluster-redelivered", name: "erin", recordedTeam: "platform" }), greeting: undefined },
  notAMember: { ...memberEvent({ id: "cluster-not-a-member", name: "frank", kind: "ConfigMap" }), greeting: undefined },
};

interface ObservedWrites extends Observed {
  /** Per Member, the writes (PATCH, POST) in the order made, times and generated names replaced. */
  readonly writes: Record<string, unknown[]>;
}

const TIME = "<time>";

/**
 * A write as the API server saw it, with what is decided at run time (times,
 * the Event's name, which embeds the claim's time) replaced by placeholders,
 * after checking that the Event written is the one its claim named.
 */
function normaliseWrites(api: FakeApiServer): Record<string, unknown[]> {
  const byMember: Record<string, unknown[]> = {};
  const claimed = new Map<string, string>();
  for (const r of api.requests) {
    if (r.method !== "PATCH" && r.method !== "POST") continue;
    const body = JSON.parse(r.body) as Record<string, Record<string, unknown> | undefined>;
    const status = body["status"];
    const member = r.method === "PATCH" ? r.path.split("/")[7] : String((body["involvedObject"] ?? body["regarding"])?.["name"]);
    assert.ok(member !== undefined, r.path);
    if (status !== undefined && typeof status["greetedAt"] === "string") {
      assert.ok(!Number.isNaN(Date.parse(status["greetedAt"])), "greetedAt is a time");
      status["greetedAt"] = TIME;
      const pending = status["pendingEvent"] as Record<string, unknown> | undefined;
      if (pending !== undefined) {
        claimed.set(member, String(pending["name"]));
        pending["name"] = "<event name>";
      }
    }
    if (status?.["pendingEvent"] === null) {
      // Under the claim's version (the stand-in checks it: a wrong one leaves the mark, which the test sees).
      assert.equal(typeof body["metadata"]?.["resourceVersion"], "string");
      (body["metadata"] as Record<string, unknown>)["resourceVersion"] = "<claim's version>";
    }
    if (r.method === "POST") {
      const metadata = body["metadata"] as Record<string, unknown>;
      const owed = claimed.get(member);
      if (owed !== undefined) assert.equal(metadata["name"], owed, `the Event of ${member} is the one its claim named`);
      metadata["name"] = "<event name>";
      for (const key of ["firstTimestamp", "lastTimestamp", "eventTime"]) if (key in body) (body as Record<string, unknown>)[key] = TIME;
    }
    (byMember[member] ??= []).push({ method: r.method, path: r.path, search: r.search, contentType: r.contentType, body });
  }
  return byMember;
}

async function observeWithCluster(spec: ServerSpec): Promise<ObservedWrites> {
  const api = await startFakeApiServer({ checkResourceVersion: true });
  try {
    for (const event of Object.values(clusterEvents)) {
      if (event.headers["ce-type"]?.endsWith(".delete")) continue;
      const object = JSON.parse(event.body) as Record<string, unknown>;
      const stored = event.stored === undefined ? object : event.stored(object);
      api.members.set(`default/${event.headers["ce-name"]}`, stored);
    }
    const running = await startServer(
      { ...spec, env: { KUBECONFIG: api.kubeconfig, RECORD_GREETINGS: "auto" } },
      { cwd: ROOT, marker: '"level":"info"', keepOutput: true },
    );
    const replies: Record<string, unknown> = {};
    try {
      const first = await firstGreeting(running, clusterEvents["welcome"] as TestEvent, 20_000, 10);
      replies["welcome"] = normaliseReply(first.reply);
      for (const [name, event] of Object.entries(clusterEvents)) {
        if (name !== "welcome") replies[name] = normaliseReply(await post(running.port, event));
      }
      // The Events and the clearing of the marks happen after the replies.
      for (let i = 0; i < 200 && [...api.members.values()].some((m) => (m["status"] as Record<string, unknown> | undefined)?.["pendingEvent"]); i++) {
        await sleep(25);
      }
      await sleep(100);
    } finally {
      await stopServer(running);
    }
    const lines: Record<string, unknown> = {};
    for (const text of running.output().split("\n")) {
      if (!text.includes('"eventId"')) continue;
      const line = JSON.parse(text) as Record<string, unknown>;
      delete line["time"];
      const name = Object.keys(clusterEvents).find((n) => clusterEvents[n]?.headers["ce-id"] === line["eventId"]);
      assert.ok(name !== undefined, `a log line for an event that was sent: ${text}`);
      assert.equal(lines[name], undefined, `one line per greeting (${name})`);
      lines[name] = line;
    }
    for (const [key, member] of api.members) {
      assert.equal((member["status"] as Record<string, unknown> | undefined)?.["pendingEvent"], undefined, `${spec.key}: the mark of ${key} is cleared`);
    }
    return { replies, lines, writes: normaliseWrites(api) };
  } finally {
    await api.close();
  }
}

describe("the fetch baseline matches the greeter with a cluster", { timeout: 60_000 }, () => {
  const specs: ServerSpec[] = [
    { key: "greeter", label: "member-greeter", args: [greeterEntry(ROOT)] },
    { key: "fetch", label: "fetch baseline", args: ["bench/baseline-fetch.ts"] },
  ];
  const seen = new Map<string, ObservedWrites>();

  before(async () => {
    for (const spec of specs) seen.set(spec.key, await observeWithCluster(spec));
  });
  after(() => seen.clear());

  it("the greeter claims, greets and records as expected", () => {
    const greeter = seen.get("greeter") as ObservedWrites;
    for (const [name, event] of Object.entries(clusterEvents)) {
      const reply = greeter.replies[name] as { status: number; data?: { greeting?: string } };
      assert.equal(reply.status, event.greeting === undefined ? 204 : 200, name);
      assert.equal((greeter.lines[name] as { msg?: string } | undefined)?.msg, event.greeting, name);
    }
    // A claim, its Event and the mark cleared for each greeting with a claim; the farewell's Event alone.
    assert.deepEqual(
      Object.fromEntries(Object.entries(greeter.writes).map(([member, writes]) => [member, writes.map((w) => (w as { method: string }).method)])),
      { alice: ["PATCH", "POST", "PATCH"], nina: ["PATCH", "POST", "PATCH"], bob: ["PATCH", "POST", "PATCH"], carol: ["PATCH"], dave: ["POST"] },
    );
  });

  it("fetch: the same replies as the greeter", () => {
    assert.deepEqual((seen.get("fetch") as ObservedWrites).replies, (seen.get("greeter") as ObservedWrites).replies);
  });
  it("fetch: the same log lines as the greeter", () => {
    assert.deepEqual((seen.get("fetch") as ObservedWrites).lines, (seen.get("greeter") as ObservedWrites).lines);
  });
  it("fetch: the same writes, in the same order, as the greeter", () => {
    assert.deepEqual((seen.get("fetch") as ObservedWrites).writes, (seen.get("greeter") as ObservedWrites).writes);
  });
});

// ---------------------------------------------------------------- the burst's floor

describe("the burst's floor greeter (bench/floor-greeter.ts) claims and says as the function does", { timeout: 60_000 }, () => {
  const welcome = clusterEvents["welcome"] as TestEvent;
  const echo: TestEvent = {
    ...memberEvent({ id: "floor-echo", name: "alice", type: "dev.knative.apiserver.resource.update", recordedTeam: "platform" }),
    greeting: undefined,
  };
  for (const via of ["https", "client-node"]) {
    it(`CLAIM_VIA=${via}: an add claimed once, said once, answered 202; its echo and a lost race answered 204 with no line`, async () => {
      const api = await startFakeApiServer({ checkResourceVersion: true });
      try {
        for (const name of ["welcome", "lostRace"]) {
          const event = clusterEvents[name];
          assert.ok(event);
          const object = JSON.parse(event.body) as Record<string, unknown>;
          api.members.set(`default/${event.headers["ce-name"]}`, event.stored === undefined ? object : event.stored(object));
        }
        const running = await startServer(
          { key: `floor-${via}`, label: "floor", args: ["bench/floor-greeter.ts"], env: { KUBECONFIG: api.kubeconfig, CLAIM_VIA: via } },
          { cwd: ROOT, marker: '"level":"info"', keepOutput: true },
        );
        const statuses: number[] = [];
        try {
          // Just spawned: its first info line says it listens.
          await waitFor(`floor-${via} listening`, () => running.marked() > 0, { timeoutMs: 10_000, intervalMs: 25, detail: () => running.tail() });
          statuses.push((await post(running.port, welcome)).status);
          const stored = api.members.get("default/alice");
          assert.ok(stored);
          // The claim's own echo, as the adapter sends it: the Member as written.
          statuses.push((await post(running.port, { headers: echo.headers, body: JSON.stringify(stored) })).status);
          statuses.push((await post(running.port, clusterEvents["lostRace"] as TestEvent)).status);
        } finally {
          await stopServer(running);
        }
        assert.deepEqual(statuses, [202, 204, 204]);
        const lines = running
          .output()
          .split("\n")
          .filter((text) => text.includes('"eventId"'))
          .map((text) => JSON.parse(text) as Record<string, unknown>);
        assert.deepEqual(
          lines.map((l) => [l["msg"], l["reason"], l["member"], l["eventId"]]),
          [["welcome alice to the team platform", "welcome", "alice", welcome.headers["ce-id"]]],
        );
        const writes = normaliseWrites(api);
        // carol's claim was refused (409): tried once, nothing said.
        assert.equal(writes["carol"]?.length, 1);
        assert.deepEqual(writes["alice"], [
          {
            method: "PATCH",
            path: "/apis/helloworld.apimeister.com/v1/namespaces/default/members/alice/status",
            search: "?fieldManager=member-greeter",
            contentType: "application/merge-patch+json",
            body: {
              metadata: { resourceVersion: "48213" },
              status: { team: "platform", greeting: "welcome alice to the team platform", greetedAt: TIME, observedGeneration: 1 },
            },
          },
        ]);
      } finally {
        await api.close();
      }
    });
  }
});
