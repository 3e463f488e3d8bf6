// The cluster bench's section of docs/benchmarks.md: medians per server, the
// ratios member-greeter / fetch baseline against issue 12's goals, the burst
// through Knative's adapter, every round, and how it was run.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { BurstSample } from "./burst.ts";
import type { RoundSample } from "./round.ts";

export const CLUSTER_BEGIN = "<!-- bench:cluster:begin -->";
export const CLUSTER_END = "<!-- bench:cluster:end -->";

const MiB = 1024 * 1024;

export function median(xs: readonly number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/**
 * The function's limit on connections to the API server: KUBE_MAX_CONNECTIONS's
 * default in functions/config.ts where the function has one, else the 16 issue 12 asks for.
 */
export function connectionLimit(root: string): { readonly limit: number; readonly from: string } {
  const file = join(root, "functions", "config.ts");
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  const match = /"KUBE_MAX_CONNECTIONS",\s*([\d_]+)/.exec(text);
  if (match?.[1] !== undefined) return { limit: Number(match[1].replaceAll("_", "")), from: "KUBE_MAX_CONNECTIONS's default in functions/config.ts" };
  return { limit: 16, from: "issue 12's default for KUBE_MAX_CONNECTIONS (not in functions/config.ts yet)" };
}

export interface ClusterReport {
  readonly started: Date;
  readonly seconds: number;
  readonly command: string;
  readonly machine: string;
  readonly load: readonly number[];
  readonly greeter: string;
  readonly setup: string;
  readonly rounds: number;
  readonly members: number;
  readonly concurrency: number;
  readonly burstSize: number;
  readonly settleMs: number;
  readonly samples: ReadonlyMap<string, readonly RoundSample[]>;
  readonly labels: ReadonlyMap<string, string>;
  readonly bursts: readonly BurstSample[];
  /** The same bursts with the floor greeter (bench/floor-greeter.ts) in the function's place, interleaved with its own. */
  readonly floors: readonly { readonly label: string; readonly bursts: readonly BurstSample[] }[];
  readonly limit: { readonly limit: number; readonly from: string };
  readonly problems: readonly string[];
}

const fmt = {
  ms: (x: number): string => (Number.isFinite(x) ? `${x.toFixed(1)} ms` : "n/a"),
  mib: (x: number): string => (Number.isFinite(x) ? `${(x / MiB).toFixed(1)} MiB` : "n/a"),
  rate: (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : "n/a"),
  count: (x: number): string => (Number.isFinite(x) ? String(Math.round(x)) : "n/a"),
  ratio: (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)}×` : "n/a"),
  s: (x: number): string => (Number.isFinite(x) ? `${(x / 1000).toFixed(2)} s` : "n/a"),
};

type Metric = "coldMs" | "rssFirst" | "greetingsPerSecond" | "rssAfter" | "connections" | "peakConnections" | "distinctConnections" | "backgroundSeconds";

/**
 * The function's bursts beside the floor greeter's, round by round: how close
 * to the goal the smallest greeter gets in the same run, its claim built by
 * hand and through @kubernetes/client-node.
 */
function floorTable(r: ClusterReport): string[] {
  if (r.floors.length === 0) return [];
  const ratios = (bursts: readonly BurstSample[]): number[] => bursts.map((b) => b.greetedMs / b.applyMs);
  const line = (label: string, bursts: readonly BurstSample[]): string =>
    `| ${label} | ${ratios(bursts).map(fmt.ratio).join(", ")} | ${fmt.ratio(median(ratios(bursts)))} |`;
  return [
    "Greeted / apply in the same bursts, with [the floor greeter](../bench/floor-greeter.ts) in the function's place (it claims and says, nothing else: no Events, no Express, no CloudEvents codec), interleaved round by round:",
    "",
    "| greeter | every round | median |",
    "|---|--:|--:|",
    line("member-greeter", r.bursts),
    ...r.floors.map((f) => line(f.label, f.bursts)),
    "",
  ];
}

export function clusterSection(r: ClusterReport): string {
  const med = (key: string, metric: Metric): number => median((r.samples.get(key) ?? []).map((s) => s[metric]));
  const ratio = (metric: Metric): number => med("greeter", metric) / med("fetch", metric);
  const keys = [...r.samples.keys()];
  const row = (key: string): string =>
    `| ${r.labels.get(key) ?? key} | ${fmt.ms(med(key, "coldMs"))} | ${fmt.mib(med(key, "rssFirst"))} | ${fmt.rate(med(key, "greetingsPerSecond"))} | ${fmt.mib(med(key, "rssAfter"))} | ${fmt.count(med(key, "connections"))} | ${fmt.count(med(key, "peakConnections"))} / ≥ ${fmt.count(med(key, "distinctConnections"))} | ${fmt.s(med(key, "backgroundSeconds") * 1000)} |`;
  const verdict = (met: boolean | undefined): string => (met === undefined ? "–" : met ? "PASS" : "MISS");
  const within = (x: number, op: "≤" | "≥", target: number): boolean | undefined => (Number.isFinite(x) ? (op === "≤" ? x <= target : x >= target) : undefined);
  const burstRatios = r.bursts.map((b) => b.greetedMs / b.applyMs);
  const burstRatio = median(burstRatios);
  const connections = med("greeter", "connections");
  const goals: [string, string, string, boolean | undefined][] = [
    ["cold start to first recorded greeting", "≤ 1.3×", fmt.ratio(ratio("coldMs")), within(ratio("coldMs"), "≤", 1.3)],
    ["RSS after the first greeting", "≤ 1.15×", fmt.ratio(ratio("rssFirst")), within(ratio("rssFirst"), "≤", 1.15)],
    ["recorded greetings/s", "≥ 0.8×", fmt.ratio(ratio("greetingsPerSecond")), within(ratio("greetingsPerSecond"), "≥", 0.8)],
    ["RSS after the load", "≤ 1.2×", fmt.ratio(ratio("rssAfter")), within(ratio("rssAfter"), "≤", 1.2)],
    ["API connections after the load (member-greeter)", `≤ ${r.limit.limit}`, fmt.count(connections), within(connections, "≤", r.limit.limit)],
    ["burst: all greeted / kubectl apply", "≤ 1.2×", fmt.ratio(burstRatio), within(burstRatio, "≤", 1.2)],
  ];
  const perRound = (name: string, metric: Metric, f: (x: number) => string): string =>
    `| ${name} | ${keys.map((k) => (r.samples.get(k) ?? []).map((s) => f(s[metric])).join(", ")).join(" | ")} |`;
  return [
    CLUSTER_BEGIN,
    `## Results in a cluster (${r.started.toISOString().slice(0, 16).replace("T", " ")} UTC)`,
    "",
    "_Written by `bench/run.ts --cluster`; everything between the bench:cluster markers is replaced on each run._",
    "",
    `- Command: \`${r.command}\``,
    `- Machine: ${r.machine}`,
    `- Load average (1/5/15 min) at start: ${r.load.map((x) => x.toFixed(2)).join(" / ")}`,
    `- Control plane: ${r.setup}`,
    `- Greeter: ${r.greeter}`,
    `- Per round and server: a fresh process; ${r.members} fresh Members greeted at concurrency ${r.concurrency} (one add event each, binary mode, their real resourceVersion); RSS after the first greeting read ${r.settleMs} ms after it; ${r.rounds} round${r.rounds === 1 ? "" : "s"}, interleaved, after an unrecorded warm-up round; took ${r.seconds.toFixed(0)} s`,
    "",
    `| median | cold start to first recorded greeting | RSS after it | recorded greetings/s (conc. ${r.concurrency}) | RSS after ${r.members} | API connections after ${r.members} | peak / opened (sampled) | marks cleared after the last reply |`,
    "|---|--:|--:|--:|--:|--:|--:|--:|",
    ...keys.map(row),
    `| member-greeter / fetch baseline | ${fmt.ratio(ratio("coldMs"))} | ${fmt.ratio(ratio("rssFirst"))} | ${fmt.ratio(ratio("greetingsPerSecond"))} | ${fmt.ratio(ratio("rssAfter"))} | ${fmt.ratio(ratio("connections"))} | | |`,
    "",
    `### Burst through Knative's ApiServerSource adapter (${r.burstSize} Members in one \`kubectl apply -f\`)`,
    "",
    "| | kubectl apply | first / last ADDED seen | all greeted (line and claim) | greeted / apply |",
    "|---|--:|--:|--:|--:|",
    ...r.bursts.map(
      (b, i) =>
        `| round ${i + 1} | ${fmt.s(b.applyMs)} | ${fmt.s(b.firstAddedMs)} / ${fmt.s(b.lastAddedMs)} | ${fmt.s(b.greetedMs)} | ${fmt.ratio(b.greetedMs / b.applyMs)} |`,
    ),
    `| **median** | ${fmt.s(median(r.bursts.map((b) => b.applyMs)))} | ${fmt.s(median(r.bursts.map((b) => b.firstAddedMs)))} / ${fmt.s(median(r.bursts.map((b) => b.lastAddedMs)))} | ${fmt.s(median(r.bursts.map((b) => b.greetedMs)))} | ${fmt.ratio(burstRatio)} |`,
    "",
    ...floorTable(r),
    "### Goals (issue 12, ratios in this run)",
    "",
    "| goal | target | measured | |",
    "|---|--:|--:|:-:|",
    ...goals.map(([what, target, measured, met]) => `| ${what} | ${target} | ${measured} | ${verdict(met)} |`),
    "",
    `Connection limit: ${r.limit.limit}, ${r.limit.from}.`,
    "",
    "### Every round",
    "",
    `| | ${keys.map((k) => r.labels.get(k) ?? k).join(" | ")} |`,
    `|---|${keys.map(() => "--:|").join("")}`,
    perRound("cold start (ms)", "coldMs", (x) => x.toFixed(1)),
    perRound("RSS after it (MiB)", "rssFirst", (x) => (x / MiB).toFixed(1)),
    perRound("greetings/s", "greetingsPerSecond", (x) => x.toFixed(1)),
    perRound(`RSS after ${r.members} (MiB)`, "rssAfter", (x) => (x / MiB).toFixed(1)),
    perRound("connections after", "connections", fmt.count),
    perRound("peak connections", "peakConnections", fmt.count),
    perRound("connections opened (≥)", "distinctConnections", fmt.count),
    "",
    `Checked in every round, through the API and the server's stdout: each of the ${r.members} Members got exactly one greeting line, one claim (status.greeting, status.team, no mark left) and one \`Welcomed\` Event; every reply was 200 with its greeting.` +
      (r.problems.length === 0 ? " All held." : ""),
    ...(r.problems.length === 0 ? [] : ["", `**Verification failed:** ${r.problems.join("; ")}`]),
    CLUSTER_END,
  ].join("\n");
}
