// End to end: kube-apiserver + etcd, the function as `node .` with the
// member-greeter ServiceAccount's token, and Knative's real ApiServerSource
// adapter (v0.50.0) with the member-greeter-source ServiceAccount's token,
// K_SINK at the function; once in Resource mode, once in Reference mode. Then
// the same scenario with our stand-in source/watch-members.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { clusterForSuite, type Cluster } from "./cluster.ts";
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
