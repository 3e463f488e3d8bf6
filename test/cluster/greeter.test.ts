// npm run test:cluster: the member-greeter in a real single-node Kubernetes with
// Knative Eventing (cluster.ts), deployed as a user without Knative Serving
// would (config/overlays/eventing-only, through test/cluster/overlay): Knative's
// controller starts the ApiServerSource's adapter as a pod and resolves the
// sink, the kubelet runs the function's image with the manifest's
// securityContext, and the PingSource fires the resync. Then the host is
// checked to be exactly as it was before (host.ts).
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, afterEach, before, describe, it, type TestContext } from "node:test";
import { repoRoot, waitFor } from "../e2e/control-plane.ts";
import { parseLines, type LogLine } from "../e2e/workloads.ts";
import { buildTools, startCluster, type Cluster } from "./cluster.ts";
import { differences, snapshot, type Snapshot } from "./host.ts";
import { cleanLeftovers, emergencyTeardown, lock, unlock } from "./node.ts";

const OVERLAY = path.join(repoRoot, "test", "cluster", "overlay");
const NS = "default";
const MEMBERS = "members.helloworld.apimeister.com";
const GREETER_SELECTOR = "app.kubernetes.io/name=member-greeter,app.kubernetes.io/component=function";
const ADAPTER_SELECTOR = "eventing.knative.dev/sourceName=member-greeter-source";
const KEEP_LOGS = process.env["GREETER_CLUSTER_KEEP_LOGS"] === "1";

type Obj = Record<string, unknown>;
const dig = (value: unknown, ...keys: (string | number)[]): unknown => {
  let here = value;
  for (const key of keys) here = typeof here === "object" && here !== null ? (here as Record<string | number, unknown>)[key] : undefined;
  return here;
};

let cluster: Cluster | undefined;
let hostBefore: Snapshot | undefined;
let logDir = "";
/** Set by the last step: logs are kept otherwise. */
let passed = false;
/** Set once the host was compared with its snapshot after teardown. */
let hostChecked = false;
const c = (): Cluster => {
  assert.ok(cluster, "the cluster did not come up");
  return cluster;
};

// Interrupted (Ctrl-C, CI's timeout): the node's processes die with this one
// (pdeathsig); what they leave on the host goes here.
process.on("exit", () => {
  if (cluster !== undefined) emergencyTeardown();
});

function member(name: string, memberOf?: string): string {
  return JSON.stringify({
    apiVersion: "helloworld.apimeister.com/v1",
    kind: "Member",
    metadata: { name, namespace: NS },
    spec: memberOf === undefined ? {} : { memberOf },
  });
}

async function greeterLog(): Promise<LogLine[]> {
  const out = await c().kubectlOk(["logs", "-n", NS, "-l", GREETER_SELECTOR, "-c", "greeter", "--tail=-1", "--prefix=false"]);
  return parseLines(out, "the greeter pod");
}

async function waitForLog(msg: string, where: (l: LogLine) => boolean = () => true, timeoutMs = 60_000): Promise<LogLine> {
  return waitFor(`"${msg}" in the greeter pod's log`, async () => (await greeterLog()).find((l) => l.msg === msg && where(l)), {
    timeoutMs,
    intervalMs: 1_000,
  });
}

async function getMember(name: string): Promise<Obj | undefined> {
  const out = await c().kubectlOk(["get", MEMBERS, name, "-n", NS, "-o", "json", "--ignore-not-found"]);
  return out.trim() === "" ? undefined : (JSON.parse(out) as Obj);
}

async function waitForStatus(name: string, team: string, greeting: string): Promise<Obj> {
  return waitFor(
    `status of ${name}: team ${JSON.stringify(team)}, "${greeting}"`,
    async () => {
      const m = await getMember(name);
      return dig(m, "status", "team") === team && dig(m, "status", "greeting") === greeting ? m : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 1_000 },
  );
}

async function waitForEvent(selector: string, message: string): Promise<Obj> {
  return waitFor(
    `an Event ${selector} "${message}"`,
    async () => {
      const list = await c().kubectlJson<{ items: Obj[] }>(["get", "events", "-n", NS, "--field-selector", selector]);
      return list.items.find((e) => e["message"] === message && e["type"] === "Normal");
    },
    { timeoutMs: 60_000, intervalMs: 1_000 },
  );
}

/** How many WATCH requests on Members the API server serves now (only the adapter watches them). */
async function memberWatches(): Promise<number> {
  const metrics = await c().kubectlOk(["get", "--raw", "/metrics"]);
  let open = 0;
  for (const line of metrics.split("\n")) {
    if (line.startsWith("apiserver_longrunning_requests{") && line.includes('resource="members"') && line.includes('verb="WATCH"')) {
      open += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return open;
}

function conditions(object: unknown): Record<string, string> {
  const list = dig(object, "status", "conditions");
  return Object.fromEntries((Array.isArray(list) ? list : []).map((cond: unknown) => [String(dig(cond, "type")), String(dig(cond, "status"))]));
}

describe("the member-greeter on a single-node Kubernetes with Knative Eventing", { timeout: 40 * 60_000 }, () => {
  let broken = false;
  const step = (name: string, fn: (t: TestContext) => Promise<void>): void => {
    it(name, async (t) => {
      if (broken) return t.skip("an earlier step failed");
      await fn(t);
    });
  };
  afterEach((t) => {
    if ((t as unknown as { passed?: boolean }).passed === false) broken = true;
  });

  before(async () => {
    logDir = await mkdtemp(path.join(tmpdir(), "member-greeter-cluster-logs-"));
    const started = performance.now();
    const tools = await buildTools();
    const built = performance.now();
    await lock(logDir);
    const leftovers = cleanLeftovers();
    if (leftovers.length > 0) process.stderr.write(`test:cluster: cleaned a previous run's leftovers: ${leftovers.join("; ")}\n`);
    hostBefore = await snapshot();
    cluster = await startCluster(tools, logDir);
    const up = performance.now();
    process.stderr.write(
      `test:cluster: tools and images ${((built - started) / 1000).toFixed(1)} s, cluster up in ${((up - built) / 1000).toFixed(1)} s ` +
        `(${Object.entries(cluster.timings)
          .map(([k, v]) => `${k} ${v} s`)
          .join(", ")}); logs in ${logDir}\n`,
    );
  });

  after(async () => {
    // When a step failed before the teardown step: tear down here, and check the host all the same.
    try {
      if (cluster !== undefined) {
        const left = await cluster.node.teardown();
        cluster = undefined;
        if (left.length > 0) throw new Error(`teardown after a failure left: ${left.join("; ")}`);
      }
      if (hostBefore !== undefined && !hostChecked) {
        const diffs = differences(hostBefore, await snapshot());
        if (diffs.length > 0) throw new Error(`teardown after a failure did not restore the host: ${diffs.join("; ")}`);
      }
    } finally {
      await unlock();
      if (!KEEP_LOGS && passed) await rm(logDir, { recursive: true, force: true });
      else process.stderr.write(`test:cluster: logs kept in ${logDir}\n`);
    }
  });

  step("kubectl apply -k of the eventing-only overlay: the ApiServerSource and the PingSource become Ready", async () => {
    await c().kubectlOk(["apply", "-k", OVERLAY]);
    await c().kubectlOk(["rollout", "status", "-n", NS, "deployment/member-greeter", "--timeout=180s"], { timeoutMs: 190_000 });
    for (const [kind, name, expected] of [
      ["apiserversource", "member-greeter-source", ["Ready", "Deployed", "SinkProvided", "SufficientPermissions"]],
      ["pingsource", "member-greeter-resync", ["Ready", "Deployed", "SinkProvided"]],
    ] as const) {
      const source = await waitFor(
        `${kind}/${name} Ready`,
        async () => {
          const s = await c().kubectlJson(["get", kind, name, "-n", NS]);
          return conditions(s)["Ready"] === "True" ? s : undefined;
        },
        { timeoutMs: 180_000, intervalMs: 2_000 },
      );
      const conds = conditions(source);
      for (const type of expected)
        assert.equal(conds[type], "True", `${kind}/${name} condition ${type}: ${JSON.stringify(dig(source, "status", "conditions"))}`);
      // The sink resolved to the plain Service's cluster-local address.
      assert.equal(dig(source, "status", "sinkUri"), "http://member-greeter.default.svc.cluster.local");
    }
    // The adapter's pod must be watching before Members change (it sends nothing for what exists already).
    await c().kubectlOk(["wait", "--for=condition=Ready", "pod", "-n", NS, "-l", ADAPTER_SELECTOR, "--timeout=120s"], { timeoutMs: 130_000 });
    await waitFor("the adapter's watch on Members", async () => (await memberWatches()) >= 1, { timeoutMs: 60_000, intervalMs: 500 });
  });

  step("the greeter pod runs as uid 1000, with a read-only root and no capabilities", async (t) => {
    const pods = await c().kubectlJson<{ items: Obj[] }>(["get", "pods", "-n", NS, "-l", GREETER_SELECTOR]);
    assert.equal(pods.items.length, 1);
    const pod = pods.items[0];
    const id = String(dig(pod, "status", "containerStatuses", 0, "containerID")).replace(/^containerd:\/\//, "");
    const tasks = await c().node.runInNode(path.join(c().tools.clusterBin, "containerd", "ctr"), ["--namespace", "k8s.io", "tasks", "ls"]);
    const pid = tasks.stdout
      .split("\n")
      .find((l) => l.startsWith(id))
      ?.split(/\s+/)[1];
    assert.ok(pid, `no task ${id}: ${tasks.stdout}`);
    const status = (await c().node.runInNode("cat", [`/proc/${pid}/status`])).stdout;
    const line = (key: string): string =>
      status
        .split("\n")
        .find((l) => l.startsWith(`${key}:`))
        ?.slice(key.length + 1)
        .trim() ?? "";
    assert.deepEqual(line("Uid").split(/\s+/), ["1000", "1000", "1000", "1000"]);
    assert.deepEqual(line("Gid").split(/\s+/), ["1000", "1000", "1000", "1000"]);
    for (const cap of ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]) assert.equal(line(cap), "0000000000000000", cap);
    assert.equal(line("NoNewPrivs"), "1");
    assert.equal(line("Seccomp"), "2", "seccomp RuntimeDefault (filter mode)");
    const mounts = (await c().node.runInNode("cat", [`/proc/${pid}/mountinfo`])).stdout;
    const root = mounts.split("\n").find((l) => l.split(" ")[4] === "/");
    assert.ok(root, mounts);
    assert.ok(root.split(" ")[5]?.split(",").includes("ro"), `root mount: ${root}`);
    t.diagnostic(`greeter pid ${pid} (node's PID namespace): ${root}`);
    greeterPid = pid;
  });

  let greeterPid = "";
  step("pods get no route out: only the cluster's ranges are routable from the pod and from the node", async () => {
    assert.ok(greeterPid);
    const podRoutes = (await c().node.runInNode("nsenter", ["--target", greeterPid, "--net", "--", "ip", "-4", "route", "show", "table", "all"])).stdout;
    const nodeRoutes = (await c().node.runInNode("ip", ["-4", "route", "show", "table", "all"])).stdout;
    for (const [who, routes] of [
      ["pod", podRoutes],
      ["node", nodeRoutes],
    ] as const) {
      assert.ok(routes.trim() !== "", `${who}: no routes read`);
      assert.doesNotMatch(routes, /^default/m, `${who} has a default route:\n${routes}`);
      for (const line of routes.split("\n").filter((l) => l !== "")) {
        const dst = line.split(" ")[0] === "local" || line.split(" ")[0] === "broadcast" ? line.split(" ")[1] : line.split(" ")[0];
        assert.match(String(dst), /^(10\.222\.|127\.)/, `${who} routes outside the cluster's ranges: ${line}`);
      }
    }
    const forward = (await c().node.runInNode("iptables", ["-w", "-S", "GREETER-CLUSTER-FWD"])).stdout;
    assert.match(forward, /-A GREETER-CLUSTER-FWD -j DROP/);
  });

  let patrickUid = "";
  step("create patrick with team blue: welcome in the pod's log, status and a Welcomed Event", async () => {
    await c().kubectlOk(["apply", "-f", "-"], { input: member("patrick", "blue") });
    const text = "welcome patrick to the team blue";
    const line = await waitForLog(text);
    assert.equal(line["eventType"], "dev.knative.apiserver.resource.add");
    assert.equal(line["reason"], "welcome");
    const m = await waitForStatus("patrick", "blue", text);
    patrickUid = String(dig(m, "metadata", "uid"));
    await waitForEvent(`involvedObject.uid=${patrickUid},reason=Welcomed`, text);
  });

  step("move patrick to team red: moved, in log, status and a TeamChanged Event", async () => {
    await c().kubectlOk(["apply", "-f", "-"], { input: member("patrick", "red") });
    const text = "patrick moved from the team blue to the team red";
    const line = await waitForLog(text);
    assert.equal(line["eventType"], "dev.knative.apiserver.resource.update");
    await waitForStatus("patrick", "red", text);
    await waitForEvent(`involvedObject.uid=${patrickUid},reason=TeamChanged`, text);
  });

  step("patrick leaves (memberOf removed): left, in log, status and an Event", async () => {
    await c().kubectlOk(["patch", MEMBERS, "patrick", "-n", NS, "--type=json", "-p", '[{"op":"remove","path":"/spec/memberOf"}]']);
    const text = "patrick left the team red";
    const line = await waitForLog(text);
    assert.equal(line["eventType"], "dev.knative.apiserver.resource.update");
    await waitForStatus("patrick", "", text);
    await waitForEvent(`involvedObject.uid=${patrickUid},reason=TeamChanged`, text);
  });

  step("delete patrick: farewell in the log and a SaidFarewell Event", async () => {
    await c().kubectlOk(["delete", MEMBERS, "patrick", "-n", NS, "--wait=true"]);
    const text = "sad to see you go patrick";
    const line = await waitForLog(text);
    assert.equal(line["eventType"], "dev.knative.apiserver.resource.delete");
    await waitForEvent(`involvedObject.name=patrick,reason=SaidFarewell`, text);
  });

  step("a Member created while the adapter's pod is deleted and recreated is welcomed by the next PingSource resync", async (t) => {
    // Cordoned, the node takes no new pod: the adapter's replacement waits until
    // the Member exists, and so never sees it created (it sends nothing for what exists).
    const before = await c().kubectlJson<{ items: Obj[] }>(["get", "pods", "-n", NS, "-l", ADAPTER_SELECTOR]);
    const oldPods = before.items.map((p) => String(dig(p, "metadata", "name")));
    assert.equal(oldPods.length, 1, "one adapter pod");
    await c().kubectlOk(["cordon", "greeter-node"]);
    try {
      await c().kubectlOk(["delete", "pod", "-n", NS, "-l", ADAPTER_SELECTOR, "--wait=true", "--timeout=120s"], { timeoutMs: 130_000 });
      await c().kubectlOk(["apply", "-f", "-"], { input: member("late", "green") });
    } finally {
      await c().kubectlOk(["uncordon", "greeter-node"]);
    }
    const created = Date.now();
    await c().kubectlOk(["wait", "--for=condition=Ready", "pod", "-n", NS, "-l", ADAPTER_SELECTOR, "--timeout=120s"], { timeoutMs: 130_000 });
    const after = await c().kubectlJson<{ items: Obj[] }>(["get", "pods", "-n", NS, "-l", ADAPTER_SELECTOR]);
    const newPods = after.items.map((p) => String(dig(p, "metadata", "name")));
    assert.equal(newPods.length, 1);
    assert.ok(!oldPods.includes(newPods[0] ?? ""), `a new adapter pod: ${oldPods} -> ${newPods}`);
    const text = "welcome late to the team green";
    const line = await waitForLog(text, () => true, 150_000);
    assert.equal(line["eventType"], "dev.knative.sources.ping", "greeted by the resync, not by the adapter");
    await waitForStatus("late", "green", text);
    await waitForEvent("involvedObject.name=late,reason=Welcomed", text);
    const log = await greeterLog();
    assert.equal(log.filter((l) => l.msg === text).length, 1, "welcomed once");
    assert.ok(log.some((l) => l.msg === "resync done" && Number(l["greeted"]) >= 1));
    t.diagnostic(`welcomed by the resync ${((Date.now() - created) / 1000).toFixed(0)} s after it was created`);
  });

  step("kubectl delete -k of the overlay completes (Knative's finalizers included)", async () => {
    await c().kubectlOk(["delete", "-k", OVERLAY, "--wait=true", "--timeout=180s"], { timeoutMs: 190_000 });
    const left = await c().kubectlOk([
      "get",
      "deployments,services,apiserversources,pingsources",
      "-n",
      NS,
      "-l",
      "app.kubernetes.io/part-of=member-greeter",
      "-o",
      "name",
    ]);
    assert.equal(left.trim(), "");
    const crd = await c().kubectl(["get", "crd", MEMBERS]);
    assert.notEqual(crd.code, 0, "the Member CRD is gone");
  });

  step("teardown restores the host: sysctls, iptables/nftables, mounts, cgroups, paths, network", async (t) => {
    const mem = c().node.memory();
    t.diagnostic(
      `cluster peak memory: ${(mem.maxUsageBytes / 2 ** 20).toFixed(0)} MiB cgroup max usage (RSS + page cache), ${(mem.maxRssBytes / 2 ** 20).toFixed(0)} MiB peak RSS sampled`,
    );
    const left = await c().node.teardown();
    cluster = undefined;
    assert.deepEqual(left, [], "teardown left something");
    assert.ok(hostBefore);
    hostChecked = true;
    assert.deepEqual(differences(hostBefore, await snapshot()), []);
    passed = true;
  });
});
