// End to end: kube-apiserver + etcd, the function as `node .` with the
// member-greeter ServiceAccount's token, and Knative's real ApiServerSource
// adapter (v0.50.0) with the member-greeter-source ServiceAccount's token,
// K_SINK at the function; once in Resource mode, once in Reference mode. Then
// the same scenario with our stand-in source/watch-members.ts. Last, the
// function as config/ deploys it behind a relay that counts the connections
// Knative's adapter opens to it.
import assert from "node:assert/strict";
import { createServer, connect, type Socket } from "node:net";
import { describe, it } from "node:test";
import { containerEnvValue, find } from "../support/kube.ts";
import { clusterForSuite, type Cluster } from "./cluster.ts";
import { waitFor } from "./control-plane.ts";
import { deleteAllMembers, memberManifest } from "./members.ts";
import { describeScenario, type ScenarioContext } from "./scenario.ts";
import { startAdapter, startGreeter, startWatchMembers, type GreeterProcess, type Mode } from "./workloads.ts";

let greeter: GreeterProcess | undefined;
const cluster = clusterForSuite({}, async ({ cp, greeterKubeconfig }) => {
  greeter = await startGreeter(cp, "greeter", { KUBECONFIG: greeterKubeconfig });
});

function context(start: (cluster: Cluster, mode: Mode, sink: string) => ReturnType<ScenarioContext["startSource"]>): () => ScenarioContext {
  return () => {
    const c = cluster();
    if (greeter === undefined) throw new Error("the function did not start");
    const g = greeter;
    return { cp: c.cp, greeter: g, startSource: (mode) => start(c, mode, g.url) };
  };
}

const knative = context((c, mode, sink) => startAdapter(c.cp, { kubeconfig: c.sourceKubeconfig, sink, mode }));
const standIn = context((c, mode, sink) => startWatchMembers(c.cp, { kubeconfig: c.sourceKubeconfig, sink, mode }));

describeScenario("Knative's ApiServerSource adapter, mode Resource", "Resource", knative);
describeScenario("Knative's ApiServerSource adapter, mode Reference", "Reference", knative);
describeScenario("our stand-in source/watch-members.ts, mode Resource", "Resource", standIn);
describeScenario("our stand-in source/watch-members.ts, mode Reference", "Reference", standIn);

describe("the function's own output", () => {
  it("wrote JSON lines on stdout only, no errors, nothing on stderr", () => {
    assert.ok(greeter !== undefined);
    assert.equal(greeter.proc.stderr(), "");
    const lines = greeter.lines();
    assert.ok(lines.length > 20);
    assert.deepEqual(
      lines.filter((l) => l.level === "error" || l.level === "warn"),
      [],
    );
  });
});

/** A TCP relay in front of `target` that counts the connections its clients open. */
async function countingRelay(target: URL): Promise<{ readonly url: string; accepted(): number; close(): Promise<void> }> {
  let accepted = 0;
  const open = new Set<Socket>();
  const relay = createServer((client) => {
    accepted++;
    const upstream = connect(Number(target.port), target.hostname);
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      open.add(a);
      a.pipe(b);
      a.on("error", () => b.destroy());
      a.on("close", () => {
        open.delete(a);
        b.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
  const { port } = relay.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    accepted: () => accepted,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        relay.close(() => resolve());
      }),
  };
}

describe("Knative's adapter keeps its connection to the function (REPLIES as config/ deploys it)", { timeout: 120_000 }, () => {
  it("30 Members created at once: each greeted, its claim's echo answered, all over at most 3 connections", async () => {
    const { cp, rendered, greeterKubeconfig, sourceKubeconfig } = cluster();
    const replies = containerEnvValue(find(rendered, "Service", "member-greeter", "serving.knative.dev"), "REPLIES");
    assert.equal(typeof replies, "string", "config/'s Knative Service sets REPLIES");
    await deleteAllMembers(cp);
    const deployed = await startGreeter(cp, "greeter-deployed", { KUBECONFIG: greeterKubeconfig, REPLIES: String(replies) });
    const relay = await countingRelay(new URL(deployed.url));
    const adapter = await startAdapter(cp, { kubeconfig: sourceKubeconfig, sink: relay.url, mode: "Resource" });
    try {
      const names = Array.from({ length: 30 }, (_, i) => `kept-${i}`);
      const items = names.map((name) => JSON.parse(memberManifest(name, "blue")) as unknown);
      await cp.kubectlOk(["apply", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "List", items }) });
      // Greeted, and the claim's echo answered without an API call: every add and every echo came through the relay.
      await waitFor(
        "every Member greeted and its claim's echo answered",
        () => {
          const lines = deployed.lines();
          const said = new Set(lines.filter((l) => l.msg === `welcome ${String(l["member"])} to the team blue`).map((l) => l["member"]));
          const echoed = new Set(lines.filter((l) => l.msg === "the owed Event is written here already").map((l) => l["member"]));
          return names.every((n) => said.has(n) && echoed.has(n));
        },
        { timeoutMs: 60_000, intervalMs: 100 },
      );
      // A connection per answer (what Go's HTTP client does after closing a body it did not read) would be 30 or more.
      assert.ok(relay.accepted() <= 3, `Knative's adapter opened ${relay.accepted()} connections to the function for ${names.length} Members`);
      assert.deepEqual(
        deployed.lines().filter((l) => l.level === "error" || l.level === "warn"),
        [],
      );
    } finally {
      await adapter.stop(5_000);
      await relay.close();
      await deployed.stop();
      await deleteAllMembers(cp);
    }
  });
});
