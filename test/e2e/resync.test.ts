// The resync at scale, on the real control plane: 10,000 Members that nobody
// told the function about (no event source runs), one PingSource event, and
// each is welcomed exactly once, its claim in status and one Event; a second
// resync finds everything in step and says nothing. The times are reported
// (t.diagnostic), not asserted. GREETER_E2E_RESYNC_MEMBERS changes the count.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { binaryEvent, post } from "../support/greeter-server.ts";
import { clusterForSuite, MEMBERS, NAMESPACE } from "./cluster.ts";
import { startGreeter, type GreeterProcess } from "./workloads.ts";

const COUNT = Number(process.env["GREETER_E2E_RESYNC_MEMBERS"] ?? "10000");
const TEAMS = ["blue", "red", "green", ""];

let greeter: GreeterProcess | undefined;
const cluster = clusterForSuite({}, async ({ cp, greeterKubeconfig }) => {
  // info, not debug: 10,000 ignored-event lines would only slow the pipe.
  greeter = await startGreeter(cp, "greeter-resync", { KUBECONFIG: greeterKubeconfig, LOG_LEVEL: "info", KUBE_TIMEOUT_MS: "5000", EVENT_TIMEOUT_MS: "20000" });
});
const g = (): GreeterProcess => {
  if (greeter === undefined) throw new Error("the function did not start");
  return greeter;
};

const name = (i: number): string => `m${String(i).padStart(5, "0")}`;
const team = (i: number): string => TEAMS[i % TEAMS.length] ?? "";
const welcome = (i: number): string => (team(i) === "" ? `welcome ${name(i)}` : `welcome ${name(i)} to the team ${team(i)}`);

async function ping(url: string): Promise<{ status: number; ms: number; text: string }> {
  const event = binaryEvent(
    "dev.knative.sources.ping",
    { resync: "members" },
    { "ce-source": `/apis/v1/namespaces/${NAMESPACE}/pingsources/member-greeter-resync` },
  );
  const started = performance.now();
  const reply = await post(url, event.headers, event.body);
  return { status: reply.status, ms: performance.now() - started, text: reply.text };
}

describe(`resync of ${COUNT} Members`, { timeout: 900_000 }, () => {
  it(`creates ${COUNT} Members with no event source running`, async (t) => {
    const { cp } = cluster();
    const path = `/apis/helloworld.apimeister.com/v1/namespaces/${NAMESPACE}/members`;
    const started = performance.now();
    let next = 0;
    const worker = async (): Promise<void> => {
      for (let i = next++; i < COUNT; i = next++) {
        const body = {
          apiVersion: "helloworld.apimeister.com/v1",
          kind: "Member",
          metadata: { name: name(i) },
          spec: team(i) === "" ? {} : { memberOf: team(i) },
        };
        const res = await cp.request(cp.adminKubeconfig, "POST", path, { contentType: "application/json", text: JSON.stringify(body) });
        assert.equal(res.status, 201, res.body);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    t.diagnostic(`created ${COUNT} Members in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  });

  it("one resync welcomes every Member exactly once, each with its claim and one Event", async (t) => {
    const { cp } = cluster();
    const mark = g().mark();
    const started = performance.now();
    const first = await ping(g().url);
    assert.equal(first.status, 204, first.text);
    const done = await g().waitForLog("resync done", mark);
    assert.deepEqual(
      { listed: done["listed"], greeted: done["greeted"], failed: done["failed"], invalid: done["invalid"] },
      { listed: COUNT, greeted: COUNT, failed: 0, invalid: 0 },
    );
    t.diagnostic(
      `first resync (${COUNT} welcomes: ${COUNT} claims and ${COUNT} Events): ${(first.ms / 1000).toFixed(1)} s, ${Math.round(COUNT / (first.ms / 1000))} Members/s`,
    );

    const said = new Map<string, number>();
    for (const line of g().linesSince(mark)) if (line["reason"] === "welcome") said.set(line.msg, (said.get(line.msg) ?? 0) + 1);
    const lost: string[] = [];
    const doubled: string[] = [];
    for (let i = 0; i < COUNT; i++) {
      const times = said.get(welcome(i)) ?? 0;
      if (times === 0) lost.push(name(i));
      if (times > 1) doubled.push(name(i));
    }
    t.diagnostic(`greetings lost: ${lost.length}, duplicated: ${doubled.length}`);
    assert.deepEqual({ lost, doubled }, { lost: [], doubled: [] });

    const list = (await cp.kubectlJson(["get", MEMBERS, "-n", NAMESPACE, "-o", "json"])) as {
      items: { metadata: { name: string }; spec?: { memberOf?: string }; status?: { team?: string } }[];
    };
    assert.equal(list.items.length, COUNT);
    assert.deepEqual(
      list.items.filter((m) => m.status?.team !== (m.spec?.memberOf ?? "")).map((m) => m.metadata.name),
      [],
    );
    // Every claim names the Event it owes in status.pendingEvent until that Event exists:
    // the Events are all written once no Member carries the mark any more.
    const owing = async (): Promise<number> => {
      const members = (await cp.kubectlJson(["get", MEMBERS, "-n", NAMESPACE, "-o", "json"])) as { items: { status?: { pendingEvent?: unknown } }[] };
      return members.items.filter((m) => m.status?.pendingEvent !== undefined).length;
    };
    const deadline = Date.now() + 600_000;
    let owed = await owing();
    while (owed > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      owed = await owing();
    }
    t.diagnostic(`every Event written ${((performance.now() - started) / 1000).toFixed(1)} s after the resync began`);
    assert.equal(owed, 0, "Members still owed an Event");
    const events = (await cp.kubectlJson(["get", "events", "-n", NAMESPACE, "--field-selector", "reason=Welcomed", "-o", "json"])) as { items: unknown[] };
    assert.equal(events.items.length, COUNT, "one Welcomed Event per Member");
  });

  it("a second resync finds everything in step: it lists, says nothing, writes nothing", async (t) => {
    const mark = g().mark();
    const second = await ping(g().url);
    assert.equal(second.status, 204, second.text);
    const done = await g().waitForLog("resync done", mark);
    assert.deepEqual({ listed: done["listed"], greeted: done["greeted"], failed: done["failed"] }, { listed: COUNT, greeted: 0, failed: 0 });
    assert.deepEqual(
      g()
        .linesSince(mark)
        .filter((l) => typeof l["reason"] === "string"),
      [],
    );
    t.diagnostic(`second resync (all in step, list only): ${(second.ms / 1000).toFixed(2)} s`);
  });
});
