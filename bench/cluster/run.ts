// `npm run bench -- --cluster` (issue 12): member-greeter against a fetch
// baseline (bench/baseline-fetch.ts) on the e2e control plane (etcd and
// kube-apiserver with RBAC, the CRD and config/'s RBAC, the greeter
// ServiceAccount's token), and a burst through Knative's ApiServerSource
// adapter. Everything started here is stopped at the end, on failure too; on
// a signal, the control plane's exit hooks kill what is left.
import { setUpCluster } from "../../test/e2e/cluster.ts";
import { greeterEntry, type ServerSpec } from "../proc.ts";
import { adminApi } from "./admin-api.ts";
import { FLOOR_BURSTS, FUNCTION_BURST, runBurst, type BurstSample } from "./burst.ts";
import { clusterSection, connectionLimit } from "./report.ts";
import { runRound, type RoundSample, type RoundSetting } from "./round.ts";

export interface ClusterBenchOptions {
  readonly root: string;
  readonly rounds: number;
  readonly members: number;
  readonly burst: number;
  readonly concurrency: number;
  readonly settleMs: number;
  readonly command: string;
  readonly machine: string;
  readonly greeter: string;
  readonly say: (line: string) => void;
}

export async function runClusterBench(o: ClusterBenchOptions): Promise<{ readonly section: string; readonly problems: readonly string[] }> {
  const started = new Date();
  const t0 = performance.now();
  const load = (await import("node:os")).loadavg();
  const cluster = await setUpCluster();
  const { cp } = cluster;
  const api = adminApi(cp.url, cp.caFile, cp.adminKubeconfig);
  try {
    // Same environment for both: the greeter ServiceAccount's kubeconfig, info-level logs, greetings recorded.
    const env = { KUBECONFIG: cluster.greeterKubeconfig, RECORD_GREETINGS: "auto", LOG_LEVEL: "info" };
    const specs: ServerSpec[] = [
      { key: "greeter", label: "member-greeter", args: [greeterEntry(o.root)], env },
      { key: "fetch", label: "fetch baseline", args: ["dist/bench/baseline-fetch.js"], env },
    ];
    const setting: RoundSetting = { root: o.root, api, server: cp.url, members: o.members, concurrency: o.concurrency, settleMs: o.settleMs, say: o.say };
    const samples = new Map<string, RoundSample[]>(specs.map((s) => [s.key, []]));
    const problems: string[] = [];

    o.say("warm-up round (file cache, API server caches; not recorded)");
    for (const spec of specs) await runRound(spec, "0", { ...setting, members: Math.min(20, o.members) });
    for (let round = 1; round <= o.rounds; round++) {
      o.say(`round ${round}/${o.rounds}`);
      for (const spec of specs) {
        const sample = await runRound(spec, String(round), setting);
        samples.get(spec.key)?.push(sample);
        problems.push(...sample.problems);
      }
    }

    const contenders = [FUNCTION_BURST, ...FLOOR_BURSTS];
    const bursts = new Map<string, BurstSample[]>(contenders.map((c) => [c.key, []]));
    o.say(`burst: ${o.burst} Members in one kubectl apply, through Knative's adapter; the function and the floor greeter in turn`);
    for (let round = 1; round <= o.rounds; round++) {
      // Interleaved, the order turned each round, so that a busier minute of the machine falls on each in turn.
      for (const contender of round % 2 === 0 ? contenders.toReversed() : contenders) {
        const sample = await runBurst(cluster, api, String(round), o.burst, o.say, contender);
        bursts.get(contender.key)?.push(sample);
        problems.push(...sample.problems);
      }
    }

    const section = clusterSection({
      started,
      seconds: (performance.now() - t0) / 1000,
      command: o.command,
      machine: o.machine,
      load,
      greeter: o.greeter,
      setup: `etcd and kube-apiserver (${cp.binDir.split("/").pop()?.slice(0, 12) ?? "?"}… from scripts/build-tools.sh) on 127.0.0.1, RBAC on; up in ${(cluster.setupMs.controlPlane / 1000).toFixed(1)} s`,
      rounds: o.rounds,
      members: o.members,
      concurrency: o.concurrency,
      burstSize: o.burst,
      settleMs: o.settleMs,
      samples,
      labels: new Map(specs.map((s) => [s.key, s.label])),
      bursts: bursts.get(FUNCTION_BURST.key) ?? [],
      floors: FLOOR_BURSTS.map((f) => ({ label: f.label, bursts: bursts.get(f.key) ?? [] })),
      limit: connectionLimit(o.root),
      problems,
    });
    return { section, problems };
  } catch (err) {
    o.say(`cluster bench: the processes' last lines:\n${cp.diagnostics(10)}`);
    throw err;
  } finally {
    api.close();
    await cp.stop();
  }
}
