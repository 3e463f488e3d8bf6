// Child-process plumbing shared by the benchmark and the parity test: start a
// server on a free 127.0.0.1 port with stdout piped to a counting sink, send
// it events, read its RSS, and stop it (always: children never outlive us).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { request, type IncomingHttpHeaders } from "node:http";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { TestEvent } from "./event.ts";

/** The greeter's production entry point, as `node .` would run it (package.json "main"). */
export function greeterEntry(root: string): string {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { main?: string };
  const main = pkg.main ?? "index.js";
  if (!existsSync(join(root, main))) throw new Error(`${main} (package.json "main") is missing: run \`npm run build\` first`);
  return main;
}

export interface ServerSpec {
  readonly key: string;
  readonly label: string;
  /** Arguments after `node`. */
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
}

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface Running {
  readonly spec: ServerSpec;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  readonly url: string;
  readonly spawnedAt: number;
  /** Lines on stdout that contain the marker, so far. */
  marked(): number;
  /** Everything written to stdout, when started with keepOutput. */
  output(): string;
  /** The last few KiB of stderr (and of stdout), for error messages. */
  tail(): string;
  readonly exited: Promise<number | null>;
}

const live = new Set<ChildProcess>();
let hooked = false;

/** Kill every child still running; called on exit, on signals and on failure. */
export function killAll(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  live.clear();
}

/** Kill `child` along with the servers if the bench stops early (used for wrk). */
export function track(child: ChildProcess): void {
  hookExit();
  live.add(child);
  child.once("close", () => live.delete(child));
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", killAll);
}

/** A port that is free on all interfaces (the faas runtime binds "::"). */
export async function freePort(): Promise<number> {
  const tryHost = (host: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const probe = createServer();
      probe.once("error", reject);
      probe.listen({ port: 0, host, exclusive: true }, () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
  try {
    return await tryHost("::");
  } catch {
    return tryHost("0.0.0.0");
  }
}

/** Counts occurrences of `marker` in a byte stream, across chunk boundaries. */
function markerCounter(marker: string): { push(chunk: Buffer): void; readonly count: number } {
  const needle = Buffer.from(marker);
  let carry: Buffer = Buffer.alloc(0);
  let count = 0;
  return {
    push(chunk) {
      const buf = carry.length === 0 ? chunk : Buffer.concat([carry, chunk]);
      let from = 0;
      let end = 0;
      for (;;) {
        const at = buf.indexOf(needle, from);
        if (at === -1) break;
        count++;
        from = at + needle.length;
        end = from;
      }
      carry = buf.subarray(Math.max(end, buf.length - needle.length + 1));
    },
    get count() {
      return count;
    },
  };
}

export interface StartOptions {
  readonly cwd: string;
  /** stdout lines containing this are counted. */
  readonly marker: string;
  readonly keepOutput?: boolean;
  /** Extra node flags, e.g. --cpu-prof. */
  readonly nodeFlags?: readonly string[];
}

/** Spawns `node <args>` with PORT and HOST set; returns at once (the server is not listening yet). */
export async function startServer(spec: ServerSpec, options: StartOptions): Promise<Running> {
  hookExit();
  const port = await freePort();
  const env: Record<string, string> = {};
  // A clean environment: no cluster credentials (the greeter would try to record
  // greetings), no NODE_OPTIONS from the caller's shell.
  for (const name of ["PATH", "HOME", "LANG", "TZ", "TMPDIR"]) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  Object.assign(env, { PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "info", RECORD_GREETINGS: "off" }, spec.env);
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), ...spec.args], {
    cwd: options.cwd,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  if (child.pid === undefined) {
    live.delete(child);
    throw new Error(`${spec.key}: could not spawn node ${spec.args.join(" ")}`);
  }
  const counter = markerCounter(options.marker);
  let kept = "";
  let errTail = "";
  let outTail = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    counter.push(chunk);
    if (options.keepOutput) kept += chunk.toString("utf8");
    outTail = (outTail + chunk.toString("utf8", Math.max(0, chunk.length - 2048))).slice(-2048);
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    errTail = (errTail + chunk.toString("utf8")).slice(-4096);
  });
  // Resolves when the process has exited and its stdout is fully read.
  const exited = new Promise<number | null>((resolve) => {
    child.once("close", (code) => {
      live.delete(child);
      resolve(code);
    });
  });
  return {
    spec,
    child,
    pid: child.pid,
    port,
    url: `http://127.0.0.1:${port}/`,
    spawnedAt,
    marked: () => counter.count,
    output: () => kept,
    tail: () => `stderr: ${errTail.trim() || "(empty)"}\nstdout (end): ${outTail.trim() || "(empty)"}`,
    exited,
  };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once stdout is drained. */
export async function stopServer(running: Running, graceMs = 5000): Promise<void> {
  const { child } = running;
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await running.exited;
  clearTimeout(timer);
}

/** One POST of the event on a fresh connection. */
export function post(port: number, event: Pick<TestEvent, "headers" | "body">, timeoutMs = 5000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const body = Buffer.from(event.body);
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method: "POST",
        path: "/",
        agent: false,
        headers: { ...event.headers, "content-length": String(body.length) },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Retries the POST until the server answers 200 with the expected greeting, and
 * returns the time from spawn to that answer (ms) with the reply. Bounded by
 * `timeoutMs`; fails early if the process exits.
 */
export async function firstGreeting(running: Running, event: TestEvent, timeoutMs = 15_000, pollMs = 2): Promise<{ ms: number; reply: Reply }> {
  const deadline = running.spawnedAt + timeoutMs;
  let last = "no attempt";
  while (performance.now() < deadline) {
    if (running.child.exitCode !== null || running.child.signalCode !== null) {
      throw new Error(`${running.spec.key} exited (${running.child.exitCode ?? running.child.signalCode}) before answering\n${running.tail()}`);
    }
    try {
      const reply = await post(running.port, event, Math.max(1, deadline - performance.now()));
      const at = performance.now();
      if (reply.status === 200 && (event.greeting === undefined || reply.body.includes(event.greeting))) {
        return { ms: at - running.spawnedAt, reply };
      }
      throw new Error(`${running.spec.key} answered ${reply.status}: ${reply.body.slice(0, 300)}`);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ECONNREFUSED" && code !== "ECONNRESET") throw err;
      last = code;
    }
    await sleep(pollMs);
  }
  throw new Error(`${running.spec.key} did not answer within ${timeoutMs} ms (last: ${last})\n${running.tail()}`);
}

/** VmRSS of a process in bytes, or undefined where /proc is not there. */
export function rssBytes(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
    return match?.[1] === undefined ? undefined : Number(match[1]) * 1024;
  } catch {
    return undefined;
  }
}
