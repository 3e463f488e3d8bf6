// The processes under test, started against a ControlPlane: the function
// (`node .`, the package's main, built by `npm run build`), Knative's
// ApiServerSource receive adapter, and our own stand-in source/watch-members.ts.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { childEnv, freePort, repoRoot, waitFor, type ControlPlane, type Proc } from "./control-plane.ts";

export type LogLine = Record<string, unknown> & { readonly level: string; readonly msg: string };
export type Mode = "Resource" | "Reference";

export interface GreeterProcess {
  readonly proc: Proc;
  readonly url: string;
  /** Its stdout, one parsed JSON object per line (a line that is not JSON fails the test). */
  lines(): LogLine[];
  /** A position in the log: pass it to waitForLog/linesSince to look only at what came later. */
  mark(): number;
  linesSince(mark: number): LogLine[];
  /** The first line from `since` on with this `msg` (and matching `where`), within `timeoutMs`. */
  waitForLog(msg: string, since: number, where?: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  stop(): Promise<void>;
}

/** One JSON log record per complete line (a chunk, or a process killed mid-write, may end in a fragment). */
export function parseLines(output: string, who = "the process"): LogLine[] {
  const lines: LogLine[] = [];
  for (const text of output.slice(0, output.lastIndexOf("\n") + 1).split("\n")) {
    if (text === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new Error(`${who} wrote a line that is not JSON: ${text}`);
    }
    assert.ok(
      typeof value === "object" && value !== null && "level" in value && typeof value.level === "string" && "msg" in value && typeof value.msg === "string",
      `${who} wrote a line that is not a log record: ${text}`,
    );
    lines.push(value as LogLine);
  }
  return lines;
}

/**
 * `node .` with HOST=127.0.0.1, a free PORT, and `env` (KUBECONFIG ...). Waits until /healthz answers.
 * `args` runs another greeter in its place (the bench's floor greeter).
 */
export async function startGreeter(
  cp: ControlPlane,
  name: string,
  env: Readonly<Record<string, string>>,
  args: readonly string[] = ["."],
): Promise<GreeterProcess> {
  // `node .` runs package.json's main: it must have been built.
  const pkg: unknown = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8"));
  const mainField = typeof pkg === "object" && pkg !== null && "main" in pkg ? pkg.main : undefined;
  if (typeof mainField !== "string") throw new Error("package.json has no main");
  const main = path.join(repoRoot, mainField);
  if (!existsSync(main)) throw new Error(`${main} is missing: run npm run build (npm run test:e2e does)`);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // The function logs JSON on stdout only; stderr would be a crash report.
  const proc = cp.spawn(name, process.execPath, [...args], childEnv({ HOST: "127.0.0.1", PORT: String(port), LOG_LEVEL: "debug", ...env }));
  await waitFor(
    `${name} /healthz`,
    async () => {
      if (!proc.running()) throw new Error(`${name} exited: ${proc.tail()}`);
      return (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) })).status === 200;
    },
    { timeoutMs: 20_000, detail: () => proc.tail() },
  );
  // Every stdout line must be one JSON record (the function's logging contract).
  const lines = (): LogLine[] => parseLines(proc.stdout(), name);
  return {
    proc,
    url,
    lines,
    mark: () => lines().length,
    linesSince: (mark) => lines().slice(mark),
    async waitForLog(msg, since, where = () => true, timeoutMs = 30_000) {
      return waitFor(
        `"${msg}" in the ${name} log`,
        () =>
          lines()
            .slice(since)
            .find((l) => l.msg === msg && where(l)),
        {
          timeoutMs,
          intervalMs: 50,
          detail: () =>
            `${name} log since the mark:\n${proc
              .stdout()
              .split("\n")
              .filter((l) => l !== "")
              .slice(since)
              .slice(-30)
              .join("\n")}`,
        },
      );
    },
    stop: () => proc.stop(10_000),
  };
}

/** Waits until nothing watches `resource` (an earlier watcher has gone). */
export async function waitForNoWatch(cp: ControlPlane, resource = "members"): Promise<void> {
  await waitFor(`no open WATCH on ${resource}`, async () => (await cp.openWatches(resource)) === 0, { timeoutMs: 30_000, intervalMs: 250 });
}

async function waitForWatch(cp: ControlPlane, proc: Proc, resource = "members"): Promise<void> {
  await waitFor(
    `${proc.name} to open its WATCH on ${resource}`,
    async () => {
      if (!proc.running()) throw new Error(`${proc.name} exited: ${proc.tail()}`);
      return (await cp.openWatches(resource)) >= 1;
    },
    { timeoutMs: 30_000, intervalMs: 250, detail: () => proc.tail() },
  );
}

export const MEMBER_GVR = { Group: "helloworld.apimeister.com", Version: "v1", Resource: "members" } as const;

/**
 * Knative's apiserver_receive_adapter as Knative would run it for config/source's
 * ApiServerSource (env from pkg/reconciler/apiserversource/resources/receive_adapter.go),
 * with the source ServiceAccount's kubeconfig. Returns once its watch is open.
 * It binds :8080 (health, not movable) on all interfaces; PROFILING_PORT=0 moves pprof off :8008.
 */
export async function startAdapter(cp: ControlPlane, options: { readonly kubeconfig: string; readonly sink: string; readonly mode: Mode }): Promise<Proc> {
  await waitForNoWatch(cp);
  const config = {
    namespaces: ["default"],
    allNamespaces: false,
    resources: [{ gvr: MEMBER_GVR }],
    mode: options.mode,
  };
  const proc = cp.spawn(
    `adapter-${options.mode.toLowerCase()}`,
    path.join(cp.binDir, "apiserver-receive-adapter"),
    [],
    childEnv({
      KUBECONFIG: options.kubeconfig,
      K_SINK: options.sink,
      NAME: "member-greeter-source",
      NAMESPACE: "default",
      SYSTEM_NAMESPACE: "knative-eventing",
      METRICS_DOMAIN: "knative.dev/eventing",
      PROFILING_PORT: "0",
      K_SOURCE_CONFIG: JSON.stringify(config),
    }),
  );
  await waitForWatch(cp, proc);
  return proc;
}

/** Our stand-in for the adapter, source/watch-members.ts, run as `npm run source` runs it. */
export async function startWatchMembers(cp: ControlPlane, options: { readonly kubeconfig: string; readonly sink: string; readonly mode: Mode }): Promise<Proc> {
  await waitForNoWatch(cp);
  const script = path.join(repoRoot, "source", "watch-members.ts");
  const proc = cp.spawn(
    `watch-members-${options.mode.toLowerCase()}`,
    process.execPath,
    [script],
    childEnv({
      KUBECONFIG: options.kubeconfig,
      K_SINK: options.sink,
      MODE: options.mode,
      NAMESPACE: "default",
    }),
  );
  await waitForWatch(cp, proc);
  return proc;
}
