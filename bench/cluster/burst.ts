// End to end through Knative's ApiServerSource adapter (Resource mode): the
// function and the adapter as test/e2e runs them, then one `kubectl apply -f`
// of a file of N Member manifests. How long the API server took to create
// them (kubectl's wall time; the first and last ADDED seen on a watch) against
// how long until every one was greeted: its greeting line logged and its claim
// (status.greeting) written, whichever came later.
import { writeFile } from "node:fs/promises";
import path from "node:path";
import type { Cluster } from "../../test/e2e/cluster.ts";
import { containerEnvValue, find } from "../../test/support/kube.ts";
import { parseExposition, seriesKey, seriesOf } from "../../test/support/prometheus-text.ts";
import { startAdapter, startGreeter } from "../../test/e2e/workloads.ts";
import { BATCH_LABEL, field, NAMESPACE, type AdminApi } from "./admin-api.ts";
import { waitUntilMarksCleared } from "./round.ts";

export interface BurstSample {
  /** kubectl apply's wall time. */
  readonly applyMs: number;
  /** From the start of kubectl apply to the first and last ADDED seen. */
  readonly firstAddedMs: number;
  readonly lastAddedMs: number;
  /** From the start of kubectl apply until the last Member was greeted (line and claim). */
  readonly greetedMs: number;
  readonly problems: readonly string[];
}

const TEAM = "burst";

/** Mean time per add and per update event, and per API call by kind, from the function's Prometheus text. */
function describeCosts(text: string): string {
  const series = seriesOf(parseExposition(text));
  const mean = (metric: string, labels: Readonly<Record<string, string>>, what: string): string => {
    const sum = series.get(seriesKey(`${metric}_sum`, labels));
    const count = series.get(seriesKey(`${metric}_count`, labels));
    return sum === undefined || count === undefined || count === 0 ? `${what}: none` : `${what}: ${count} × ${((1000 * sum) / count).toFixed(1)} ms`;
  };
  const event = "member_greeter_event_duration_seconds";
  const call = "member_greeter_kube_request_duration_seconds";
  return [
    mean(event, { type: "dev.knative.apiserver.resource.add" }, "add events"),
    mean(event, { type: "dev.knative.apiserver.resource.update" }, "update events"),
    mean(call, { verb: "patch", resource: "members/status" }, "status patches"),
    mean(call, { verb: "create", resource: "events" }, "Event creates"),
    mean(call, { verb: "get", resource: "members" }, "reads"),
  ].join("; ");
}
/** REPLIES as config/ deploys the function (its Knative Service's env), so that the adapter is answered as in a cluster. */
function deployedReplies(cluster: Cluster): string {
  const value = containerEnvValue(find(cluster.rendered, "Service", "member-greeter", "serving.knative.dev"), "REPLIES");
  if (typeof value !== "string") throw new Error("config/'s Knative Service sets no REPLIES");
  return value;
}
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** What a burst runs: the function, or the floor greeter (bench/floor-greeter.ts), which writes no Events. */
export interface BurstContender {
  readonly key: string;
  readonly label: string;
  /** node's arguments; the function (`node .`) when absent. */
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly writesEvents: boolean;
}

export const FUNCTION_BURST: BurstContender = { key: "greeter", label: "member-greeter", writesEvents: true };

/** The floor: the smallest greeter that claims and says, its claim built by hand or through @kubernetes/client-node. */
export const FLOOR_BURSTS: readonly BurstContender[] = [
  { key: "floor-https", label: "floor greeter, claim by hand", args: ["dist/bench/floor-greeter.js"], env: { CLAIM_VIA: "https" }, writesEvents: false },
  {
    key: "floor-client-node",
    label: "floor greeter, claim through @kubernetes/client-node",
    args: ["dist/bench/floor-greeter.js"],
    env: { CLAIM_VIA: "client-node" },
    writesEvents: false,
  },
];

export async function runBurst(
  cluster: Cluster,
  api: AdminApi,
  round: string,
  count: number,
  say: (line: string) => void,
  contender: BurstContender = FUNCTION_BURST,
): Promise<BurstSample> {
  const { cp } = cluster;
  const batch = `burst${round}-${contender.key}`;
  const names = Array.from({ length: count }, (_, i) => `${batch}-${String(i).padStart(4, "0")}`);
  const file = path.join(cp.dir, `${batch}.json`);
  const items = names.map((name) => ({
    apiVersion: "helloworld.apimeister.com/v1",
    kind: "Member",
    metadata: { name, namespace: NAMESPACE, labels: { [BATCH_LABEL]: batch } },
    spec: { memberOf: TEAM },
  }));
  await writeFile(file, JSON.stringify({ apiVersion: "v1", kind: "List", items }));

  const greeter = await startGreeter(
    cp,
    batch,
    {
      KUBECONFIG: cluster.greeterKubeconfig,
      LOG_LEVEL: "info",
      RECORD_GREETINGS: "auto",
      REPLIES: deployedReplies(cluster),
      ...contender.env,
    },
    contender.args,
  );
  let adapter: Awaited<ReturnType<typeof startAdapter>> | undefined;
  let watch: ReturnType<AdminApi["watchMembers"]> | undefined;
  try {
    adapter = await startAdapter(cp, { kubeconfig: cluster.sourceKubeconfig, sink: greeter.url, mode: "Resource" });
    const added = new Map<string, number>();
    const claimed = new Map<string, number>();
    watch = api.watchMembers(batch, ({ type, object, at }) => {
      const name = String(field(object, "metadata", "name"));
      if (type === "ADDED" && !added.has(name)) added.set(name, at);
      if (field(object, "status", "greeting") !== undefined && !claimed.has(name)) claimed.set(name, at);
    });
    await watch.ready;

    const t0 = Date.now();
    await cp.kubectlOk(["apply", "-f", file], { timeoutMs: 180_000 });
    const applyMs = Date.now() - t0;

    // Greeted: the line logged (its own timestamp) and the claim seen on the watch.
    const greetedAt = new Map<string, number>();
    const deadline = Date.now() + 180_000;
    while (greetedAt.size < names.length) {
      if (Date.now() > deadline) throw new Error(`${names.length - greetedAt.size} of ${names.length} Members not greeted after 180 s`);
      if (!greeter.proc.running()) throw new Error(`${contender.label} exited: ${greeter.proc.tail()}`);
      const logged = new Map<string, number>();
      for (const line of greeter.lines()) {
        if (typeof line["member"] === "string" && line["reason"] === "welcome" && !logged.has(line["member"]))
          logged.set(line["member"], Date.parse(String(line["time"])));
      }
      for (const name of names) {
        const said = logged.get(name);
        const written = claimed.get(name);
        if (said !== undefined && written !== undefined) greetedAt.set(name, Math.max(said, written));
      }
      await sleep(50);
    }
    const addedTimes = names.map((n) => added.get(n)).filter((t): t is number => t !== undefined);

    // Every Event written before the next round; and one greeting line per Member.
    if (contender.writesEvents) await waitUntilMarksCleared(api, batch, 120_000);
    const problems: string[] = [];
    if (addedTimes.length !== names.length) problems.push(`burst: ${names.length - addedTimes.length} ADDED events not seen on the watch`);
    const lines = new Map<string, number>();
    for (const line of greeter.lines())
      if (typeof line["member"] === "string" && line["reason"] !== undefined) lines.set(line["member"], (lines.get(line["member"]) ?? 0) + 1);
    const notOnce = names.filter((n) => lines.get(n) !== 1).length;
    if (notOnce > 0) problems.push(`burst: ${notOnce} Members without exactly one greeting line`);
    const errors = greeter.lines().filter((l) => l.level === "error" || l.level === "warn").length;
    if (errors > 0) problems.push(`burst: ${contender.label} logged ${errors} warnings or errors`);

    const sample: BurstSample = {
      applyMs,
      firstAddedMs: Math.min(...addedTimes) - t0,
      lastAddedMs: Math.max(...addedTimes) - t0,
      greetedMs: Math.max(...greetedAt.values()) - t0,
      problems,
    };
    say(
      `  burst ${round} (${contender.label}): ${count} Members applied in ${applyMs} ms (ADDED seen ${sample.firstAddedMs}–${sample.lastAddedMs} ms), all greeted at ${sample.greetedMs} ms: ` +
        `${(sample.greetedMs / applyMs).toFixed(2)}×${problems.length > 0 ? `; PROBLEMS: ${problems.join("; ")}` : ""}`,
    );
    return sample;
  } finally {
    // What each event and each API call cost the function (`node .`), from its own /metrics.
    if (contender.args === undefined) {
      const costs = await fetch(`${greeter.url}/metrics`)
        .then((r) => r.text())
        .then(describeCosts, (err: unknown) => `no /metrics: ${String(err)}`);
      say(`  burst ${round}, the function's own figures: ${costs}`);
    }
    watch?.stop();
    await adapter?.stop(10_000);
    await greeter.stop();
    await api.deleteMembers(batch);
    await api.deleteEvents();
  }
}
