// Load generators: autocannon (a dev dependency, run in this process) or wrk
// (when installed; a C program, so it leaves more CPU to the server on a small
// machine). Both keep `connections` connections busy for `seconds` with the
// same request and report 2xx replies per second and the p99 latency of 2xx replies.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import type { TestEvent } from "./event.ts";
import { track } from "./proc.ts";

export type LoadgenName = "autocannon" | "wrk";

export interface LoadResult {
  /** 2xx replies per second. */
  readonly rps: number;
  readonly ok: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly seconds: number;
}

export interface LoadOptions {
  readonly url: string;
  readonly event: Pick<TestEvent, "headers" | "body">;
  readonly connections: number;
  readonly seconds: number;
  readonly wrkThreads: number;
}

export function wrkVersion(): string | undefined {
  const probe = spawnSync("wrk", ["--version"], { encoding: "utf8", timeout: 5000 });
  if (probe.error !== undefined) return undefined;
  const text = `${probe.stdout}${probe.stderr}`;
  return /wrk\s+\S+/.exec(text)?.[0] ?? "wrk";
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

/** autocannon, with every 2xx latency kept (its own histogram has 1 ms resolution). */
function runAutocannon(options: LoadOptions): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    let latencies = new Float64Array(1 << 16);
    let n = 0;
    const instance = autocannon(
      {
        url: options.url,
        method: "POST",
        headers: { ...options.event.headers },
        body: options.event.body,
        connections: options.connections,
        pipelining: 1,
        duration: options.seconds,
        timeout: 10,
      },
      (err: unknown, result) => {
        if (err !== null && err !== undefined) {
          reject(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        const sorted = latencies.subarray(0, n).sort();
        resolve({
          rps: result["2xx"] / result.duration,
          ok: result["2xx"],
          non2xx: result.non2xx,
          errors: result.errors,
          p50Ms: percentile(sorted, 50),
          p99Ms: percentile(sorted, 99),
          seconds: result.duration,
        });
      },
    );
    instance.on("response", (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      if (statusCode < 200 || statusCode > 299) return;
      if (n === latencies.length) {
        const grown = new Float64Array(latencies.length * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[n++] = responseTime;
    });
  });
}

function luaLongString(text: string): string {
  let level = "";
  while (text.includes(`]${level}]`)) level += "=";
  return `[${level}[${text}]${level}]`;
}

let scriptDir: string | undefined;

/** wrk with a Lua script that sets the request and prints a JSON summary at the end. */
async function runWrk(options: LoadOptions): Promise<LoadResult> {
  if (scriptDir === undefined) {
    const dir = mkdtempSync(join(tmpdir(), "greeter-bench-"));
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    scriptDir = dir;
  }
  const script = join(scriptDir, "event.lua");
  const lines = ['wrk.method = "POST"', `wrk.body = ${luaLongString(options.event.body)}`];
  for (const [name, value] of Object.entries(options.event.headers)) lines.push(`wrk.headers[ ${luaLongString(name)} ] = ${luaLongString(value)}`);
  lines.push(
    "done = function(summary, latency, requests)",
    '  io.write(string.format("\\nBENCH-JSON {\\"requests\\":%d,\\"duration_us\\":%d,\\"status\\":%d,\\"connect\\":%d,\\"read\\":%d,\\"write\\":%d,\\"timeout\\":%d,\\"p50_us\\":%d,\\"p99_us\\":%d}\\n",',
    "    summary.requests, summary.duration, summary.errors.status, summary.errors.connect, summary.errors.read,",
    "    summary.errors.write, summary.errors.timeout, latency:percentile(50), latency:percentile(99)))",
    "end",
  );
  writeFileSync(script, `${lines.join("\n")}\n`);
  const args = [
    "-t",
    String(options.wrkThreads),
    "-c",
    String(options.connections),
    "-d",
    `${options.seconds}s`,
    "--timeout",
    "10s",
    "-s",
    script,
    options.url,
  ];
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn("wrk", args, { stdio: ["ignore", "pipe", "pipe"] });
    track(child);
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
    const timer = setTimeout(() => child.kill("SIGKILL"), (options.seconds + 30) * 1000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`wrk exited with ${code}: ${out.slice(-1000)}`));
    });
  });
  const json = /BENCH-JSON (\{.*\})/.exec(output)?.[1];
  if (json === undefined) throw new Error(`wrk printed no summary: ${output.slice(-1000)}`);
  const s = JSON.parse(json) as Record<string, number>;
  const num = (key: string): number => s[key] ?? 0;
  const seconds = num("duration_us") / 1e6;
  const ok = num("requests") - num("status");
  return {
    rps: ok / seconds,
    ok,
    non2xx: num("status"),
    errors: num("connect") + num("read") + num("write") + num("timeout"),
    p50Ms: num("p50_us") / 1000,
    p99Ms: num("p99_us") / 1000,
    seconds,
  };
}

export function runLoad(name: LoadgenName, options: LoadOptions): Promise<LoadResult> {
  return name === "wrk" ? runWrk(options) : runAutocannon(options);
}
