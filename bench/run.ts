// `npm run bench`: the greeter against (a) a bare node:http greeter and (b) the
// same function on faas-js-runtime, on this machine, in one run (issue 5); and
// the greeter with METRICS=off, to show what metrics cost (issue 11).
//
// For each server, as a child process (`node <file>`) on a free 127.0.0.1 port
// with stdout piped to a sink that counts greeting lines:
//   - cold start: spawn → first 200 greeting reply (the POST is retried until answered);
//   - idle RSS: VmRSS after the first reply and a short settle;
//   - throughput and p99 latency of binary-mode resource.add Member events with
//     N concurrent connections (autocannon, or wrk where installed).
// Rounds are interleaved (greeter, bare, faas, greeter, …) and medians reported,
// with ratios greeter/bare and greeter/faas; the table goes to docs/benchmarks.md.
//
//   node bench/run.ts [--quick] [--rounds N] [--cold-rounds N] [--duration S]
//     [--warmup S] [--connections N] [--settle MS] [--loadgen auto|wrk|autocannon]
//     [--wrk-threads N] [--targets greeter,greeter-off,bare,faas] [--out FILE] [--no-write]
//     [--profile greeter|bare|faas]
//   node bench/run.ts --cluster [--quick] [--rounds N] [--members N] [--burst N]
//     [--concurrency N] [--settle MS] [--out FILE] [--no-write]
//     issue 12: the greeter against a fetch baseline on the e2e control plane
//     (bench/cluster/run.ts): cold start to the first recorded greeting, RSS,
//     recorded greetings/s, API connections; a burst through Knative's adapter.
//     Defaults 5 rounds, 300 Members at concurrency 20, a burst of 200; --quick:
//     1 round, 60 Members, a burst of 50.
// Every option also reads BENCH_<NAME> from the environment (BENCH_COLD_ROUNDS, …).
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { benchEvent, MEMBER_ADD_TYPE } from "./event.ts";
import { runLoad, wrkVersion, type LoadgenName, type LoadResult } from "./loadgen.ts";
import { profileMarkdown, summarise, type CpuProfile } from "./profile.ts";
import { CLUSTER_BEGIN, CLUSTER_END } from "./cluster/report.ts";
import { firstGreeting, greeterEntry, killAll, rssBytes, startServer, stopServer, type Running, type ServerSpec } from "./proc.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const MARKER = `"eventType":"${MEMBER_ADD_TYPE}"`;
const BEGIN = "<!-- bench:results:begin -->";
const END = "<!-- bench:results:end -->";

const TARGETS: readonly ServerSpec[] = [
  { key: "greeter", label: "member-greeter", args: ["(package.json main)"] },
  // The same build with metrics off (no prom-client loaded, nothing counted): what metrics cost, in the same run.
  { key: "greeter-off", label: "member-greeter, METRICS=off", args: ["(package.json main)"], env: { METRICS: "off" } },
  { key: "bare", label: "bare node:http", args: ["dist/bench/baseline-node-http.js"] },
  { key: "faas", label: "faas-js-runtime", args: ["dist/bench/baseline-faas.js"] },
];

// ---------------------------------------------------------------- options

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean" },
    rounds: { type: "string" },
    "cold-rounds": { type: "string" },
    duration: { type: "string" },
    warmup: { type: "string" },
    connections: { type: "string" },
    settle: { type: "string" },
    loadgen: { type: "string" },
    "wrk-threads": { type: "string" },
    targets: { type: "string" },
    out: { type: "string" },
    "no-write": { type: "boolean" },
    profile: { type: "string" },
    cluster: { type: "boolean" },
    members: { type: "string" },
    burst: { type: "string" },
    concurrency: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
  strict: true,
});

if (flags.help) {
  const header = readFileSync(fileURLToPath(import.meta.url), "utf8")
    .split("\n")
    .filter((l) => l.startsWith("//"));
  process.stdout.write(`${header.map((l) => l.slice(3)).join("\n")}\n`);
  process.exit(0);
}

const quick = flags.quick === true || process.env["BENCH_QUICK"] === "1";

function setting(flag: string | undefined, envName: string, fallback: string): string {
  return flag ?? process.env[envName] ?? fallback;
}

function positive(name: string, raw: string, integer: boolean): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new Error(`--${name} must be a positive ${integer ? "integer" : "number"}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

const options = {
  rounds: positive("rounds", setting(flags.rounds, "BENCH_ROUNDS", quick ? "1" : "3"), true),
  coldRounds: positive("cold-rounds", setting(flags["cold-rounds"], "BENCH_COLD_ROUNDS", quick ? "2" : "5"), true),
  duration: positive("duration", setting(flags.duration, "BENCH_DURATION", quick ? "2" : "5"), true),
  warmup: positive("warmup", setting(flags.warmup, "BENCH_WARMUP", quick ? "1" : "2"), true),
  connections: positive("connections", setting(flags.connections, "BENCH_CONNECTIONS", "32"), true),
  settleMs: positive("settle", setting(flags.settle, "BENCH_SETTLE_MS", "500"), true),
  wrkThreads: positive("wrk-threads", setting(flags["wrk-threads"], "BENCH_WRK_THREADS", "1"), true),
  out: resolve(ROOT, setting(flags.out, "BENCH_OUT", "docs/benchmarks.md")),
  write: flags["no-write"] !== true && process.env["BENCH_NO_WRITE"] !== "1",
};

const targetKeys = setting(flags.targets, "BENCH_TARGETS", TARGETS.map((t) => t.key).join(","))
  .split(",")
  .map((s) => s.trim())
  .filter((s) => s !== "");
const targets = targetKeys.map((key) => {
  const spec = TARGETS.find((t) => t.key === key);
  if (spec === undefined) throw new Error(`unknown target ${key}: use ${TARGETS.map((t) => t.key).join(", ")}`);
  return spec.key.startsWith("greeter") ? { ...spec, args: [greeterEntry(ROOT)] } : spec;
});

function chooseLoadgen(): { name: LoadgenName; version: string } {
  const wanted = setting(flags.loadgen, "BENCH_LOADGEN", "auto");
  const wrk = wanted === "autocannon" ? undefined : wrkVersion();
  if (wanted === "wrk" && wrk === undefined) throw new Error("--loadgen wrk: wrk is not installed");
  if (wanted !== "auto" && wanted !== "wrk" && wanted !== "autocannon") throw new Error(`--loadgen must be auto, wrk or autocannon, got ${wanted}`);
  if (wrk !== undefined && wanted !== "autocannon")
    return { name: "wrk", version: `${wrk} (${options.wrkThreads} thread${options.wrkThreads === 1 ? "" : "s"})` };
  return { name: "autocannon", version: `autocannon ${packageVersion("autocannon")} (in the bench process)` };
}

// ---------------------------------------------------------------- helpers

const require = createRequire(import.meta.url);

function packageVersion(name: string): string {
  let dir = dirname(require.resolve(name));
  for (let i = 0; i < 5; i++) {
    const file = join(dir, "package.json");
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: string; version?: string };
      if (pkg.name === name) return pkg.version ?? "?";
    }
    dir = dirname(dir);
  }
  return "?";
}

const say = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function median(xs: readonly number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

const MiB = 1024 * 1024;

/** Compile the baselines to plain JavaScript next to the greeter's build. */
function buildBaselines(): void {
  const tsc = realpathSync(join(ROOT, "node_modules/.bin/tsc"));
  const result = spawnSync(process.execPath, [tsc, "-p", "bench/tsconfig.build.json"], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
  if (result.status !== 0) throw new Error(`compiling the baselines failed:\n${result.stdout}${result.stderr}`);
}

/** Which greeter was measured: the commit, and whether the working tree differed from it. */
function greeterRevision(): string {
  const git = (...args: string[]): string | undefined => {
    const r = spawnSync("git", args, { cwd: ROOT, encoding: "utf8", timeout: 10_000 });
    return r.status === 0 ? r.stdout.trim() : undefined;
  };
  const head = git("rev-parse", "--short", "HEAD");
  if (head === undefined) return "not a git checkout";
  const dirty = git("status", "--porcelain", "--", "functions", "package.json", "tsconfig.build.json");
  if (dirty === undefined || dirty === "") return `commit ${head}`;
  const n = dirty.split("\n").length;
  return `commit ${head} plus uncommitted changes to ${n} file${n === 1 ? "" : "s"} (functions/, package.json, build config)`;
}

function commandLine(): string {
  const args = process.argv.slice(2).join(" ");
  const env = Object.keys(process.env)
    .filter((k) => k.startsWith("BENCH_"))
    .sort()
    .map((k) => `${k}=${process.env[k] ?? ""}`)
    .join(" ");
  const base =
    process.env["npm_lifecycle_event"] === "bench"
      ? `npm run bench${args === "" ? "" : ` -- ${args}`}`
      : process.env["npm_lifecycle_event"] === "bench:cluster"
        ? `npm run bench:cluster${args === "--cluster" ? "" : ` -- ${args.replace(/^--cluster ?/, "")}`}`
        : `node bench/run.ts${args === "" ? "" : ` ${args}`}`;
  return env === "" ? base : `${env} ${base}`;
}

// ---------------------------------------------------------------- phases

interface Samples {
  cold: number[];
  rss: number[];
  rps: number[];
  p99: number[];
  ok: number;
  non2xx: number;
  errors: number;
  logged: number;
  /** Greetings sent outside the load runs (the first request of each process). */
  extra: number;
}

const samples = new Map<string, Samples>(
  targets.map((t) => [t.key, { cold: [], rss: [], rps: [], p99: [], ok: 0, non2xx: 0, errors: 0, logged: 0, extra: 0 }]),
);
const sampleOf = (key: string): Samples => samples.get(key) as Samples;

async function coldRound(spec: ServerSpec, record: boolean): Promise<void> {
  const running = await startServer(spec, { cwd: ROOT, marker: MARKER });
  try {
    const { ms } = await firstGreeting(running, benchEvent);
    await sleep(options.settleMs);
    const rss = rssBytes(running.pid);
    await stopServer(running);
    if (running.marked() < 1) throw new Error(`${spec.key} answered but logged no greeting line\n${running.tail()}`);
    if (record) {
      sampleOf(spec.key).cold.push(ms);
      if (rss !== undefined) sampleOf(spec.key).rss.push(rss);
    }
    say(
      `  ${record ? "cold" : "warm-up spawn"} ${spec.key}: ${ms.toFixed(1)} ms to first greeting, idle RSS ${rss === undefined ? "n/a" : `${(rss / MiB).toFixed(1)} MiB`}`,
    );
  } finally {
    await stopServer(running);
  }
}

async function throughputPhase(loadgen: LoadgenName): Promise<void> {
  const running: Running[] = [];
  try {
    for (const spec of targets) {
      const r = await startServer(spec, { cwd: ROOT, marker: MARKER });
      running.push(r);
      await firstGreeting(r, benchEvent);
      sampleOf(spec.key).extra += 1;
    }
    const load = (r: Running, seconds: number): Promise<LoadResult> =>
      runLoad(loadgen, { url: r.url, event: benchEvent, connections: options.connections, seconds, wrkThreads: options.wrkThreads });
    const account = (key: string, result: LoadResult): void => {
      const s = sampleOf(key);
      s.ok += result.ok;
      s.non2xx += result.non2xx;
      s.errors += result.errors;
    };
    for (const r of running) {
      const result = await load(r, options.warmup);
      account(r.spec.key, result);
      say(`  warm-up ${r.spec.key}: ${result.rps.toFixed(0)} events/s`);
      await sleep(200);
    }
    for (let round = 1; round <= options.rounds; round++) {
      for (const r of running) {
        const result = await load(r, options.duration);
        account(r.spec.key, result);
        sampleOf(r.spec.key).rps.push(result.rps);
        sampleOf(r.spec.key).p99.push(result.p99Ms);
        say(
          `  round ${round}/${options.rounds} ${r.spec.key}: ${result.rps.toFixed(0)} events/s, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms${result.non2xx + result.errors > 0 ? `, ${result.non2xx} non-2xx, ${result.errors} errors` : ""}`,
        );
        await sleep(200);
      }
    }
    // Let the last buffered lines reach the pipe, then stop (each flushes on exit).
    await sleep(200);
    for (const r of running) {
      await stopServer(r);
      sampleOf(r.spec.key).logged = r.marked();
    }
  } finally {
    for (const r of running) await stopServer(r);
  }
}

/** Every 2xx reply was logged; the surplus is requests still in flight when a run ended. */
function verify(): string[] {
  const problems: string[] = [];
  for (const spec of targets) {
    const s = sampleOf(spec.key);
    const replied = s.ok + s.extra;
    if (s.non2xx > 0 || s.errors > 0) problems.push(`${spec.key}: ${s.non2xx} non-2xx replies and ${s.errors} errors under load`);
    if (s.logged < replied) problems.push(`${spec.key}: ${replied} greetings replied but only ${s.logged} greeting lines logged`);
    const slack = options.connections * (options.rounds + 1);
    if (s.logged > replied + slack) problems.push(`${spec.key}: ${s.logged} greeting lines logged for ${replied} replies`);
  }
  return problems;
}

// ---------------------------------------------------------------- report

const fmt = {
  rps: (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "n/a"),
  ms: (x: number): string => (Number.isFinite(x) ? x.toFixed(x < 10 ? 2 : 1) : "n/a"),
  mib: (x: number): string => (Number.isFinite(x) ? (x / MiB).toFixed(1) : "n/a"),
  ratio: (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)}×` : "n/a"),
};

interface Medians {
  rps: number;
  p99: number;
  cold: number;
  rss: number;
}

function mediansOf(key: string): Medians {
  const s = samples.get(key);
  if (s === undefined) return { rps: Number.NaN, p99: Number.NaN, cold: Number.NaN, rss: Number.NaN };
  return { rps: median(s.rps), p99: median(s.p99), cold: median(s.cold), rss: median(s.rss) };
}

function report(meta: { started: Date; seconds: number; loadgen: string; load: readonly number[]; problems: readonly string[] }): string {
  const m = new Map(targets.map((t) => [t.key, mediansOf(t.key)]));
  const g = m.get("greeter");
  const ratio = (metric: keyof Medians, other: string): number => {
    const o = m.get(other);
    return g === undefined || o === undefined ? Number.NaN : g[metric] / o[metric];
  };
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const rows: [string, keyof Medians, (x: number) => string][] = [
    ["throughput (events/s)", "rps", fmt.rps],
    ["p99 latency (ms)", "p99", fmt.ms],
    ["cold start (ms)", "cold", fmt.ms],
    ["idle RSS (MiB)", "rss", fmt.mib],
  ];
  // Where the METRICS=off greeter ran too, a column says what metrics cost.
  const others = ["bare", "faas", ...(m.has("greeter-off") ? ["greeter-off"] : [])];
  const otherHeader: Record<string, string> = { bare: "greeter / bare", faas: "greeter / faas", "greeter-off": "metrics on / off" };
  const header = `| median | ${targets.map((t) => t.label).join(" | ")} | ${others.map((o) => otherHeader[o]).join(" | ")} |`;
  const table = [
    header,
    `|---|${targets.map(() => "--:|").join("")}${others.map(() => "--:|").join("")}`,
    ...rows.map(
      ([name, metric, f]) =>
        `| ${name} | ${targets.map((t) => f(m.get(t.key)?.[metric] ?? Number.NaN)).join(" | ")} | ${others.map((o) => fmt.ratio(ratio(metric, o))).join(" | ")} |`,
    ),
  ];
  const goals: [string, keyof Medians, string, "≥" | "≤", number][] = [
    ["throughput", "rps", "bare", "≥", 0.55],
    ["throughput", "rps", "faas", "≥", 2.5],
    ["cold start", "cold", "bare", "≤", 1.4],
    ["cold start", "cold", "faas", "≤", 0.45],
    ["idle RSS", "rss", "bare", "≤", 1.15],
    ["p99 latency", "p99", "bare", "≤", 2],
  ];
  const goalRows = goals.map(([what, metric, other, op, target]) => {
    const r = ratio(metric, other);
    const met = !Number.isFinite(r) ? "–" : (op === "≥" ? r >= target : r <= target) ? "✓" : "✗";
    const otherLabel = TARGETS.find((t) => t.key === other)?.label ?? other;
    return `| ${what} vs ${otherLabel} | ${op} ${target}× | ${fmt.ratio(r)} | ${met} |`;
  });
  const perRound = (name: string, pick: (s: Samples) => readonly number[], f: (x: number) => string): string =>
    `| ${name} | ${targets.map((t) => pick(sampleOf(t.key)).map(f).join(", ")).join(" | ")} |`;
  const verification = targets.map((t) => {
    const s = sampleOf(t.key);
    return `${t.label} ${(s.ok + s.extra).toLocaleString("en-US")} replies / ${s.logged.toLocaleString("en-US")} lines`;
  });
  return [
    BEGIN,
    `## Results (${meta.started.toISOString().slice(0, 16).replace("T", " ")} UTC)`,
    "",
    "_Written by `bench/run.ts`; everything between the bench:results markers is replaced on each run._",
    "",
    `- Command: \`${commandLine()}\``,
    `- Machine: ${cpu}, ${availableParallelism()} cores, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM, Linux ${release()}; Node.js ${process.version}`,
    `- Load average (1/5/15 min) at start: ${meta.load.map((x) => x.toFixed(2)).join(" / ")} — other work on the machine adds noise; compare ratios, not absolute numbers`,
    `- Load: ${meta.loadgen}, ${options.connections} connections, binary-mode \`${MEMBER_ADD_TYPE}\` Member events (${benchEvent.body.length}-byte body), ${options.duration} s per round after ${options.warmup} s warm-up per server`,
    `- Rounds, interleaved ${targets.map((t) => t.key).join(", ")}, …: ${options.rounds} throughput, ${options.coldRounds} cold start (+1 unrecorded warm-up spawn each); idle RSS read ${options.settleMs} ms after the first reply; took ${meta.seconds.toFixed(0)} s`,
    `- Greeter: ${greeterRevision()}; express ${packageVersion("express")}; faas-js-runtime ${packageVersion("faas-js-runtime")}`,
    "",
    ...table,
    "",
    "### Goals (issue 5, ratios in this run)",
    "",
    "| goal | target | measured | met |",
    "|---|--:|--:|:-:|",
    ...goalRows,
    "",
    "### Every round",
    "",
    `| | ${targets.map((t) => t.label).join(" | ")} |`,
    `|---|${targets.map(() => "--:|").join("")}`,
    perRound("throughput (events/s)", (s) => s.rps, fmt.rps),
    perRound("p99 (ms)", (s) => s.p99, fmt.ms),
    perRound("cold start (ms)", (s) => s.cold, fmt.ms),
    perRound("idle RSS (MiB)", (s) => s.rss, fmt.mib),
    "",
    `Greeting lines checked in the stdout sink (2xx replies / lines logged; a few more lines than replies are requests in flight when a run stopped): ${verification.join("; ")}.`,
    ...(meta.problems.length === 0 ? [] : ["", `**Verification failed:** ${meta.problems.join("; ")}`]),
    END,
  ].join("\n");
}

const DOC_HEADER = `# Benchmarks

How the greeter compares with a bare \`node:http\` greeter and with the same
function on \`faas-js-runtime\` (issue 5). Run \`npm run bench\` (\`npm run bench -- --quick\`
for a short run, \`node bench/run.ts --help\` for the options).

`;

/** Prints the section (without its markers) and, unless --no-write, puts it in the doc between them. */
function publish(section: string, markers?: { begin: string; end: string }): void {
  process.stdout.write(
    `${section
      .split("\n")
      .filter((l) => !l.startsWith("<!--"))
      .join("\n")}\n`,
  );
  if (options.write) {
    writeDoc(section, markers);
    say(`written to ${options.out}`);
  }
}

function writeDoc(section: string, markers: { begin: string; end: string } = { begin: BEGIN, end: END }): void {
  let text = existsSync(options.out) ? readFileSync(options.out, "utf8") : DOC_HEADER;
  const begin = text.indexOf(markers.begin);
  const end = text.indexOf(markers.end);
  if (begin !== -1 && end > begin) text = text.slice(0, begin) + section + text.slice(end + markers.end.length);
  else text = `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(options.out, text);
}

// ---------------------------------------------------------------- profile mode

async function profile(key: string, loadgen: LoadgenName): Promise<void> {
  const known = TARGETS.find((t) => t.key === key);
  if (known === undefined) throw new Error(`--profile: unknown target ${key}`);
  const spec = known.key.startsWith("greeter") ? { ...known, args: [greeterEntry(ROOT)] } : known;
  const dir = mkdtempSync(join(tmpdir(), "greeter-prof-"));
  try {
    const running = await startServer(spec, { cwd: ROOT, marker: MARKER, nodeFlags: ["--cpu-prof", "--cpu-prof-dir", dir] });
    try {
      await firstGreeting(running, benchEvent);
      const opts = { url: running.url, event: benchEvent, connections: options.connections, wrkThreads: options.wrkThreads };
      await runLoad(loadgen, { ...opts, seconds: options.warmup });
      const result = await runLoad(loadgen, { ...opts, seconds: options.duration });
      say(`  ${key} under the profiler: ${result.rps.toFixed(0)} events/s, p99 ${result.p99Ms.toFixed(2)} ms`);
    } finally {
      await stopServer(running, 15_000);
    }
    const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
    if (file === undefined) throw new Error(`${key} wrote no CPU profile (did it exit cleanly on SIGTERM?)`);
    const summary = summarise(JSON.parse(readFileSync(join(dir, file), "utf8")) as CpuProfile, ROOT, 30);
    process.stdout.write(
      `${profileMarkdown(summary, `CPU profile: ${spec.label}, ${options.connections} connections, ${options.warmup} s warm-up + ${options.duration} s (self time)`)}\n`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- cluster mode

async function cluster(): Promise<void> {
  buildBaselines();
  const budgetMs = 45 * 60_000;
  setTimeout(() => {
    say(`bench: still running after ${Math.round(budgetMs / 60_000)} min, giving up`);
    killAll();
    process.exit(2);
  }, budgetMs).unref();
  const { runClusterBench } = await import("./cluster/run.ts");
  const { section, problems } = await runClusterBench({
    root: ROOT,
    rounds: positive("rounds", setting(flags.rounds, "BENCH_ROUNDS", quick ? "1" : "5"), true),
    members: positive("members", setting(flags.members, "BENCH_MEMBERS", quick ? "60" : "300"), true),
    burst: positive("burst", setting(flags.burst, "BENCH_BURST", quick ? "50" : "200"), true),
    concurrency: positive("concurrency", setting(flags.concurrency, "BENCH_CONCURRENCY", "20"), true),
    settleMs: options.settleMs,
    command: commandLine(),
    machine: `${cpus()[0]?.model ?? "unknown CPU"}, ${availableParallelism()} cores, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM, Linux ${release()}; Node.js ${process.version}`,
    greeter: `${greeterRevision()}; @kubernetes/client-node ${packageVersion("@kubernetes/client-node")}`,
    say,
  });
  publish(section, { begin: CLUSTER_BEGIN, end: CLUSTER_END });
  if (problems.length > 0) {
    say(`bench: verification failed: ${problems.join("; ")}`);
    process.exitCode = 1;
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  if (flags.cluster === true) return cluster();
  const started = new Date();
  const t0 = performance.now();
  const load = loadavg();
  const loadgen = chooseLoadgen();
  buildBaselines();

  // Never outlive a budget, whatever hangs.
  const budgetMs =
    120_000 +
    targets.length *
      ((options.coldRounds + 1) * (20_000 + options.settleMs) + (options.rounds * options.duration + options.warmup) * 1000 + 30_000 * (options.rounds + 1));
  setTimeout(() => {
    say(`bench: still running after ${Math.round(budgetMs / 1000)} s, giving up`);
    killAll();
    process.exit(2);
  }, budgetMs).unref();

  if (flags.profile !== undefined) {
    say(`profiling ${flags.profile} (${loadgen.version})`);
    await profile(flags.profile, loadgen.name);
    return;
  }

  say(`bench: ${targets.map((t) => t.key).join(", ")}; ${loadgen.version}; ${options.connections} connections`);
  say("cold start and idle RSS");
  for (const spec of targets) await coldRound(spec, false);
  for (let round = 1; round <= options.coldRounds; round++) {
    for (const spec of targets) await coldRound(spec, true);
  }
  say("throughput and p99 latency");
  await throughputPhase(loadgen.name);

  const problems = verify();
  const section = report({ started, seconds: (performance.now() - t0) / 1000, loadgen: loadgen.version, load, problems });
  publish(section);
  if (problems.length > 0) {
    say(`bench: verification failed: ${problems.join("; ")}`);
    process.exitCode = 1;
  }
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

main()
  .catch((err: unknown) => {
    say(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = 1;
  })
  .finally(() => {
    killAll();
    // autocannon can leave timers behind; the run is over.
    setTimeout(() => process.exit(), 100).unref();
  });
