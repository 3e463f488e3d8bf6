// A real Kubernetes control plane for the end-to-end tests: etcd and
// kube-apiserver on 127.0.0.1 (random free ports, a temporary folder, RBAC on),
// an admin kubeconfig for set-up, ServiceAccount token kubeconfigs for the
// workloads, and every child process tracked so that none outlives the test
// process. Flags and findings: docs/control-plane.md. The binaries come from
// scripts/build-tools.sh (built once, then cached).
import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createWriteStream, rmSync, type WriteStream } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { freePort } from "../support/ports.ts";
import { waitFor } from "../support/wait-for.ts";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";

export const repoRoot = path.resolve(import.meta.dirname, "..", "..");
export { knativeCrdDir } from "../support/kube.ts";

/** GREETER_E2E_KEEP=1 keeps the temporary folder (logs, kubeconfigs, etcd data) after the run. */
export const keepTemp = process.env["GREETER_E2E_KEEP"] === "1";

// ---------------------------------------------------------------------------
// Child processes: every one is tracked, and killed when this process exits,
// however it exits (test failure, uncaught error, signal).

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let hooksInstalled = false;

function killAllNow(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  if (!keepTemp) for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", killAllNow);
  const signals: [NodeJS.Signals, number][] = [
    ["SIGINT", 2],
    ["SIGTERM", 15],
    ["SIGHUP", 1],
  ];
  for (const [signal, number] of signals) {
    process.once(signal, () => {
      killAllNow();
      process.exit(128 + number);
    });
  }
}

// Where util-linux's setpriv can do it, children also get SIGKILL from the
// kernel when this process dies without running any hook (SIGKILL, OOM).
const pdeathsig = spawnSync("setpriv", ["--pdeathsig", "KILL", "--", "true"], { stdio: "ignore" }).status === 0;

export interface Proc {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves once the process has exited: its exit code, or null when a signal ended it. */
  readonly exited: Promise<number | null>;
  running(): boolean;
  /** Everything it wrote to stdout and stderr so far, interleaved (the last 4 MB). */
  output(): string;
  /** Its stdout alone (the last 4 MB). */
  stdout(): string;
  /** Its stderr alone (the last 4 MB). */
  stderr(): string;
  /** The last `lines` lines of its output, for failure messages. */
  tail(lines?: number): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  readonly logDir: string;
}

const MAX_OUTPUT = 4 * 1024 * 1024;

export function spawnTracked(name: string, command: string, args: readonly string[], options: SpawnOptions): Proc {
  installExitHooks();
  const [cmd, argv] = pdeathsig ? ["setpriv", ["--pdeathsig", "KILL", "--", command, ...args]] : [command, [...args]];
  const child = spawn(cmd, argv, {
    cwd: options.cwd ?? repoRoot,
    env: { ...(options.env ?? {}) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  const logFile = path.join(options.logDir, `${name}.log`);
  const log: WriteStream = createWriteStream(logFile, { flags: "a" });
  let out = "";
  const streams = { stdout: "", stderr: "" };
  const bounded = (text: string): string => (text.length > MAX_OUTPUT ? text.slice(text.length - MAX_OUTPUT / 2) : text);
  const collect =
    (stream: "stdout" | "stderr") =>
    (chunk: Buffer): void => {
      log.write(chunk);
      const text = chunk.toString("utf8");
      out = bounded(out + text);
      streams[stream] = bounded(streams[stream] + text);
    };
  child.stdout?.on("data", collect("stdout"));
  child.stderr?.on("data", collect("stderr"));
  const exited = new Promise<number | null>((resolve) => {
    child.once("error", (err) => {
      out += `\n[spawn error: ${err.message}]\n`;
      live.delete(child);
      log.end();
      resolve(null);
    });
    // "close": the process has exited and its pipes are drained.
    child.once("close", (code) => {
      live.delete(child);
      log.end();
      resolve(code);
    });
  });
  const running = (): boolean => live.has(child);
  const tail = (lines = 30): string =>
    out
      .split("\n")
      .slice(-lines - 1)
      .join("\n");
  return {
    name,
    pid: child.pid ?? -1,
    logFile,
    exited,
    running,
    output: () => out,
    stdout: () => streams.stdout,
    stderr: () => streams.stderr,
    tail,
    async stop(graceMs = 5_000) {
      if (!running()) return;
      child.kill("SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), graceMs)));
      const outcome = await Promise.race([exited.then(() => "exited" as const), timeout]);
      clearTimeout(timer);
      if (outcome === "timeout") {
        child.kill("SIGKILL");
        await exited;
      }
    },
  };
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a short-lived command to completion (tracked like the rest, killed after `timeoutMs`). */
export function run(
  command: string,
  args: readonly string[],
  options: { readonly input?: string; readonly env?: Readonly<Record<string, string>>; readonly timeoutMs?: number } = {},
): Promise<RunResult> {
  installExitHooks();
  return new Promise((resolve) => {
    const child = spawn(command, [...args], {
      cwd: repoRoot,
      env: { ...(options.env ?? process.env) },
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    live.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${options.timeoutMs ?? 60_000} ms]`;
      child.kill("SIGKILL");
    }, options.timeoutMs ?? 60_000);
    child.once("error", (err) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code: null, stdout, stderr: `${stderr}${err.message}` });
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

export { freePort };
export { waitFor };

// ---------------------------------------------------------------------------
// The control plane

export interface Timings {
  /** From spawning etcd to its /health answering 200. */
  readonly etcdMs: number;
  /** From spawning kube-apiserver to /readyz answering 200. */
  readonly apiserverMs: number;
  readonly totalMs: number;
}

export interface KubectlOptions {
  readonly input?: string;
  readonly kubeconfig?: string;
  readonly timeoutMs?: number;
}

export interface ControlPlane {
  readonly dir: string;
  readonly binDir: string;
  readonly logDir: string;
  /** https://127.0.0.1:PORT */
  readonly url: string;
  /** The serving certificate and its CA, good as a CA bundle for clients. */
  readonly caFile: string;
  readonly adminKubeconfig: string;
  readonly timings: Timings;
  /** kubectl with the admin kubeconfig (or `options.kubeconfig`); never throws, check `code`. */
  kubectl(args: readonly string[], options?: KubectlOptions): Promise<RunResult>;
  /** kubectl that must succeed: its stdout, or an Error with its stderr. */
  kubectlOk(args: readonly string[], options?: KubectlOptions): Promise<string>;
  /** `kubectl ... -o json`, parsed. */
  kubectlJson(args: readonly string[], options?: KubectlOptions): Promise<unknown>;
  /** An HTTPS GET with the admin token. */
  adminGet(urlPath: string): Promise<{ status: number; body: string }>;
  /** An API request with the token of one of the kubeconfigs written here (kubectl may need more verbs than the call itself). */
  request(
    kubeconfig: string,
    method: string,
    urlPath: string,
    body?: { readonly contentType: string; readonly text: string },
  ): Promise<{ status: number; body: string }>;
  /** How many WATCH requests on `resource` the API server is serving now (apiserver_longrunning_requests). */
  openWatches(resource: string): Promise<number>;
  /** Creates a ServiceAccount (unless it exists), gets a TokenRequest token, writes a kubeconfig with it. */
  serviceAccountKubeconfig(name: string, namespace?: string): Promise<string>;
  /** Writes a kubeconfig for `token` against `server` (default: this API server). */
  writeKubeconfig(name: string, token: string, server?: string): Promise<string>;
  /** Starts a workload process (function, adapter) tracked by this control plane and stopped before it. */
  spawn(name: string, command: string, args: readonly string[], env: Readonly<Record<string, string>>): Proc;
  /** The last lines of every process's output, for a failure report. */
  diagnostics(lines?: number): string;
  /** Workloads first (newest first), then kube-apiserver, then etcd; then the temporary folder. */
  stop(): Promise<void>;
}

const execFileP = promisify(execFile);

/** The folder with etcd, kube-apiserver and apiserver-receive-adapter: the last stdout line of scripts/build-tools.sh. */
export async function toolsBinDir(): Promise<string> {
  const { stdout } = await execFileP("bash", [path.join(repoRoot, "scripts", "build-tools.sh")], { cwd: repoRoot, maxBuffer: 1024 * 1024, timeout: 3_600_000 });
  const bin = stdout.trim().split("\n").pop();
  if (bin === undefined || bin === "") throw new Error("scripts/build-tools.sh printed no folder");
  return bin;
}

function httpsGet(url: string, ca: Buffer, token: string, timeoutMs = 5_000): Promise<{ status: number; body: string }> {
  return httpsCall("GET", url, ca, token, undefined, timeoutMs);
}

function httpsCall(
  method: string,
  url: string,
  ca: Buffer,
  token: string,
  body: { readonly contentType: string; readonly text: string } | undefined,
  timeoutMs: number,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: "application/json" };
    if (body !== undefined) headers["content-type"] = body.contentType;
    const req = httpsRequest(url, { method, ca, headers, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body?.text);
  });
}

/** Baseline environment for children: no KUBECONFIG or proxies inherited from the developer's shell. */
export function childEnv(extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env["PATH"] ?? "/usr/bin:/bin" };
  for (const name of ["HOME", "TMPDIR", "LANG", "TZ"]) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...extra };
}

export interface ControlPlaneOptions {
  /**
   * Extra kube-apiserver flags, after the defaults (a flag given twice takes the
   * last value), e.g. a short --min-request-timeout so that watches expire in seconds.
   */
  readonly apiserverArgs?: readonly string[];
}

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  installExitHooks();
  const started = performance.now();
  const binDir = await toolsBinDir();
  const dir = await mkdtemp(path.join(tmpdir(), "member-greeter-e2e-"));
  tempDirs.add(dir);
  const logDir = path.join(dir, "logs");
  await mkdir(logDir);
  if (keepTemp) process.stderr.write(`e2e: keeping ${dir} (GREETER_E2E_KEEP=1)\n`);

  const controlPlane: Proc[] = [];
  const workloads: Proc[] = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    for (const proc of workloads.reverse()) await proc.stop(5_000);
    for (const proc of controlPlane.reverse()) await proc.stop(5_000);
    if (!keepTemp) {
      await rm(dir, { recursive: true, force: true });
      tempDirs.delete(dir);
    }
  };

  try {
    // Service-account token signing key: one RSA key pair.
    const { privateKey, publicKey } = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      privateKeyEncoding: { type: "pkcs1", format: "pem" },
      publicKeyEncoding: { type: "spki", format: "pem" },
    });
    const saKey = path.join(dir, "sa.key");
    const saPub = path.join(dir, "sa.pub");
    await writeFile(saKey, privateKey, { mode: 0o600 });
    await writeFile(saPub, publicKey);
    const adminToken = randomBytes(24).toString("hex");
    const tokenFile = path.join(dir, "tokens.csv");
    await writeFile(tokenFile, `${adminToken},admin,admin,"system:masters"\n`, { mode: 0o600 });

    // etcd
    const [clientPort, peerPort, securePort] = [await freePort(), await freePort(), await freePort()];
    const etcdStart = performance.now();
    const etcd = spawnTracked(
      "etcd",
      path.join(binDir, "etcd"),
      [
        `--data-dir=${path.join(dir, "etcd")}`,
        `--listen-client-urls=http://127.0.0.1:${clientPort}`,
        `--advertise-client-urls=http://127.0.0.1:${clientPort}`,
        `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
        "--unsafe-no-fsync",
        "--log-level=warn",
      ],
      { env: childEnv(), logDir },
    );
    controlPlane.push(etcd);
    await waitFor(
      "etcd /health",
      async () => {
        if (!etcd.running()) throw new Error(`etcd exited: ${etcd.tail()}`);
        const res = await fetch(`http://127.0.0.1:${clientPort}/health`, { signal: AbortSignal.timeout(2_000) });
        return res.status === 200;
      },
      { timeoutMs: 30_000, detail: () => etcd.tail() },
    );
    const etcdMs = performance.now() - etcdStart;

    // kube-apiserver
    const certDir = path.join(dir, "certs");
    const apiStart = performance.now();
    const apiserver = spawnTracked(
      "kube-apiserver",
      path.join(binDir, "kube-apiserver"),
      [
        `--etcd-servers=http://127.0.0.1:${clientPort}`,
        `--cert-dir=${certDir}`,
        `--secure-port=${securePort}`,
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        "--endpoint-reconciler-type=none",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        `--service-account-key-file=${saPub}`,
        `--service-account-signing-key-file=${saKey}`,
        `--token-auth-file=${tokenFile}`,
        "--authorization-mode=RBAC",
        "--shutdown-watch-termination-grace-period=2s",
        ...(options.apiserverArgs ?? []),
      ],
      { env: childEnv(), logDir },
    );
    controlPlane.push(apiserver);
    const url = `https://127.0.0.1:${securePort}`;
    const caFile = path.join(certDir, "apiserver.crt");
    let ca: Buffer | undefined;
    await waitFor(
      "kube-apiserver /readyz",
      async () => {
        if (!apiserver.running()) throw new Error(`kube-apiserver exited: ${apiserver.tail()}`);
        ca ??= await readFile(caFile);
        return (await httpsGet(`${url}/readyz`, ca, adminToken, 2_000)).status === 200;
      },
      { timeoutMs: 60_000, intervalMs: 200, detail: () => apiserver.tail() },
    );
    const apiserverMs = performance.now() - apiStart;
    const caBundle = ca ?? (await readFile(caFile));

    const writeKubeconfig = async (name: string, token: string, server = url): Promise<string> => {
      const file = path.join(dir, `${name}.kubeconfig`);
      const config = {
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "e2e", cluster: { server, "certificate-authority": caFile } }],
        users: [{ name, user: { token } }],
        contexts: [{ name, context: { cluster: "e2e", user: name, namespace: "default" } }],
        "current-context": name,
      };
      await writeFile(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
      return file;
    };
    const adminKubeconfig = await writeKubeconfig("admin", adminToken);
    const cacheDir = path.join(dir, "kubectl-cache");

    const kubectl = (args: readonly string[], options: KubectlOptions = {}): Promise<RunResult> => {
      const kubeconfig = options.kubeconfig ?? adminKubeconfig;
      return run("kubectl", [`--kubeconfig=${kubeconfig}`, `--cache-dir=${cacheDir}`, ...args], {
        env: childEnv({ KUBECONFIG: kubeconfig }),
        ...(options.input === undefined ? {} : { input: options.input }),
        timeoutMs: options.timeoutMs ?? 60_000,
      });
    };
    const kubectlOk = async (args: readonly string[], options: KubectlOptions = {}): Promise<string> => {
      const result = await kubectl(args, options);
      if (result.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${result.code}): ${result.stderr.trim()}`);
      return result.stdout;
    };
    const adminGet = (urlPath: string) => httpsGet(`${url}${urlPath}`, caBundle, adminToken, 10_000);

    const timings: Timings = { etcdMs, apiserverMs, totalMs: performance.now() - started };
    return {
      dir,
      binDir,
      logDir,
      url,
      caFile,
      adminKubeconfig,
      timings,
      kubectl,
      kubectlOk,
      async kubectlJson(args, options = {}) {
        return JSON.parse(await kubectlOk([...args, "-o", "json"], options)) as unknown;
      },
      adminGet,
      async request(kubeconfig, method, urlPath, body) {
        const config: unknown = JSON.parse(await readFile(kubeconfig, "utf8"));
        const users = (config as { users?: { user?: { token?: unknown } }[] }).users;
        const token = users?.[0]?.user?.token;
        if (typeof token !== "string") throw new Error(`${kubeconfig} has no token`);
        return httpsCall(method, `${url}${urlPath}`, caBundle, token, body, 10_000);
      },
      async openWatches(resource) {
        const { status, body } = await adminGet("/metrics");
        if (status !== 200) throw new Error(`/metrics answered ${status}`);
        let open = 0;
        for (const line of body.split("\n")) {
          if (!line.startsWith("apiserver_longrunning_requests{")) continue;
          if (!line.includes(`resource="${resource}"`) || !line.includes('verb="WATCH"')) continue;
          open += Number(line.slice(line.lastIndexOf(" ") + 1));
        }
        return open;
      },
      async serviceAccountKubeconfig(name, namespace = "default") {
        const exists = await kubectl(["get", "serviceaccount", name, "-n", namespace]);
        if (exists.code !== 0) await kubectlOk(["create", "serviceaccount", name, "-n", namespace]);
        const token = (await kubectlOk(["create", "token", name, "-n", namespace, "--duration=2h"])).trim();
        return writeKubeconfig(`${namespace}.${name}`, token);
      },
      writeKubeconfig,
      spawn(name, command, args, env) {
        const proc = spawnTracked(name, command, args, { env, logDir });
        workloads.push(proc);
        return proc;
      },
      diagnostics(lines = 20) {
        return [...controlPlane, ...workloads]
          .map((proc) => `--- ${proc.name} (pid ${proc.pid}, ${proc.running() ? "running" : "exited"}), last lines of ${proc.logFile}:\n${proc.tail(lines)}`)
          .join("\n");
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
