// End to end: kube-apiserver + etcd, the function as `node .` with the
// member-greeter ServiceAccount's token, and Knative's real ApiServerSource
// adapter (v0.50.0) with the member-greeter-source ServiceAccount's token,
// K_SINK at the function; once in Resource mode, once in Reference mode. Then
// the same scenario with our stand-in source/watch-members.ts.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { setUpCluster, type Cluster } from "./cluster.ts";
import { describeScenario, type ScenarioContext } from "./scenario.ts";
import { startAdapter, startGreeter, startWatchMembers, type GreeterProcess, type Mode } from "./workloads.ts";

let cluster: Cluster | undefined;
let greeter: GreeterProcess | undefined;
let failed = false;

before(async () => {
  cluster = await setUpCluster();
  const { cp, greeterKubeconfig } = cluster;
  greeter = await startGreeter(cp, "greeter", { KUBECONFIG: greeterKubeconfig });
}, { timeout: 180_000 });

afterEach((t) => {
  if ((t as unknown as { passed?: boolean }).passed === false) failed = true;
});

after(async () => {
  if (cluster === undefined) return;
  if (failed) process.stderr.write(`e2e: a test failed; process logs (GREETER_E2E_KEEP=1 keeps ${cluster.cp.dir}):\n${cluster.cp.diagnostics()}\n`);
  await cluster.cp.stop();
});

function context(start: (cluster: Cluster, mode: Mode, sink: string) => ReturnType<ScenarioContext["startSource"]>): () => ScenarioContext {
  return () => {
    if (cluster === undefined || greeter === undefined) throw new Error("the control plane did not start");
    const c = cluster;
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
    assert.deepEqual(lines.filter((l) => l.level === "error" || l.level === "warn"), []);
  });
});
